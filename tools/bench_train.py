#!/usr/bin/env python
"""Training speed of a config against its limit: the real step, the bare backbone, the data pipeline.

``python tools/bench_train.py [--cfg experiments/datatang/lotr_m.yaml] [--threads N] [--batch B] [--steps N]
[--warmup W] [--breakdown-runs R] [--out output/benchmark/bench_train_<date>.json] [KEY VALUE ...]``

One run measures, on the config's real training faces, at the config's batch (or ``--batch``), input size and
the same threads:

(a) **training step**: images/s of :meth:`lotr_gluon.trainer.Trainer.train_epoch`, the Trainer's own step code
    (data loading and augmentation, heatmap targets, forward, loss, backward, optimizer update, its host
    synchronisations), ``--steps`` steps after ``--warmup`` untimed steps;
(b) **bare backbone** (the limit): the config's backbone trunk alone (``MODEL.BACKBONE.NAME``, hybridized with
    ``static_alloc``), forward + backward of the mean output + SGD step on a fixed random batch, with
    ``mx.nd.waitall()`` after every step;
(c) **data pipeline**: images/s of the Trainer's DataLoader alone (``Trainer._loader()``, as configured:
    ``WORKERS``, ``DATA.CACHE``, augmentation, heatmap targets when the step needs them);

the ratios a/b (how close training is to the limit) and c/a (how many times faster the data comes than the
step uses it), and a step-time breakdown in ms per batch, each part timed alone on one real batch between
``mx.nd.waitall()`` boundaries (the fastest of ``--breakdown-runs`` runs after one warm-up run, the run least
disturbed by other jobs; "fwd+bwd" parts by ablation: with / without the part):

* data loading + augmentation (from (c), without the target encoding), heatmap-target encoding (``codec.encode``
  of one batch of landmarks, numpy);
* backbone forward, backbone backward; neck + Transformer + PFFN head + coordinate loss (the model without its
  auxiliary head minus the backbone); auxiliary heatmap head + its loss (the model with minus without it);
  optimizer update (forward + backward + ``trainer.step`` minus forward + backward);
* rest = (a)'s time per batch minus the sum of the parts: Python, host synchronisations, engine scheduling,
  and (negative) what overlaps (the data of the next batch loads while the engine runs the current step).

Threads: ``--threads N`` sets ``OMP_NUM_THREADS`` before MXNet is imported; without it the project's default
(:mod:`lotr_gluon.runtime`: the usable cores, unless ``OMP_NUM_THREADS`` / ``LOTR_NUM_THREADS`` is set). All
three figures run in one process with the same setting. Measure on a quiet machine; the load average at the
start and end is recorded (another job on the cores makes every figure lower and noisier, the ratios less so).

Prints a table and writes ``--out`` (JSON in the style of ``tools/benchmark.py``: date, command, machine,
settings, definitions, results, breakdown, notes).
"""
import argparse
import datetime
import json
import os
import sys
import tempfile
import time
import warnings

DEFAULT_CFG = "experiments/datatang/lotr_m.yaml"


def build_parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cfg", default=DEFAULT_CFG, help="experiment YAML (default %s)" % DEFAULT_CFG)
    ap.add_argument("--threads", type=int, default=None,
                    help="OMP_NUM_THREADS for MXNet (default: lotr_gluon.runtime's, the usable cores)")
    ap.add_argument("--batch", type=int, default=None, help="batch size (default TRAIN.BATCH_SIZE)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps / batches for (a), (b), (c) (default 20)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed warm-up steps (default 2)")
    ap.add_argument("--breakdown-runs", type=int, default=3,
                    help="timed runs per breakdown part; the fastest counts (default 3)")
    ap.add_argument("--no-breakdown", action="store_true", help="only (a), (b), (c)")
    ap.add_argument("--out", default=None, help="JSON file (default output/benchmark/bench_train_<date>.json)")
    ap.add_argument("--note", action="append", default=[], help="free text added to the report (repeatable)")
    ap.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return ap


# ------------------------------------------------------------------------------------------ measurements

def _train_opts(opts, batch, max_steps):
    o = list(opts) + ["TRAIN.VAL_EVERY", "0", "TRAIN.EPOCHS", "1", "TRAIN.MAX_STEPS", str(max_steps)]
    if batch:
        o += ["TRAIN.BATCH_SIZE", str(batch)]
    return o


def time_training(trainer, load_config, cfg_file, opts, batch, steps, warmup):
    """(a): images/s of ``trainer.train_epoch`` over ``steps`` steps after ``warmup`` untimed ones."""
    trainer.cfg = load_config(cfg_file, _train_opts(opts, batch, warmup))
    spe = max(1, len(trainer.train_set) // trainer.cfg.TRAIN.BATCH_SIZE)
    while trainer.step < warmup:
        trainer.train_epoch(spe)
    trainer.cfg = load_config(cfg_file, _train_opts(opts, batch, warmup + steps))
    t0 = time.perf_counter()
    done0 = trainer.step
    while trainer.step < warmup + steps:
        trainer.train_epoch(spe)
    dt = time.perf_counter() - t0
    done = trainer.step - done0
    b = trainer.cfg.TRAIN.BATCH_SIZE
    return {"steps": done, "seconds": dt, "ms_per_batch": 1e3 * dt / done, "images_per_s": done * b / dt}


def time_bare_backbone(cfg, batch, steps, warmup, time_callable):
    """(b): the backbone trunk alone, forward + backward + SGD on a fixed random batch, waitall per step."""
    import mxnet as mx
    from mxnet import autograd, gluon
    from lotr_gluon.blocks.backbones import get_backbone

    net, _, _, _ = get_backbone(cfg.MODEL.BACKBONE.NAME)
    net.initialize(mx.init.Xavier(), ctx=mx.cpu())
    net.hybridize(static_alloc=True)
    s = cfg.DATA.INPUT_SIZE
    x = mx.nd.random.normal(shape=(batch, 3, s, s))
    tr = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 1e-4, "momentum": 0.9})

    def step():
        with autograd.record():
            y = net(x).mean()
        y.backward()
        tr.step(batch)
        mx.nd.waitall()

    t = time_callable(step, runs=steps, warmup=warmup)
    return {"steps": steps, "ms_per_batch": t["mean_ms"], "std_ms": t["std_ms"],
            "images_per_s": 1e3 * batch / t["mean_ms"], "backbone": cfg.MODEL.BACKBONE.NAME}


def time_pipeline(trainer, steps, warmup):
    """(c): images/s of the Trainer's DataLoader alone (``steps`` batches after ``warmup``)."""
    it = iter(trainer._loader())
    n_img = 0
    for _ in range(warmup):
        next(it)
    t0 = time.perf_counter()
    done = 0
    while done < steps:
        try:
            batch = next(it)
        except StopIteration:
            it = iter(trainer._loader())
            continue
        batch[0].wait_to_read()
        n_img += batch[0].shape[0]
        done += 1
    dt = time.perf_counter() - t0
    return {"batches": done, "ms_per_batch": 1e3 * dt / done, "images_per_s": n_img / dt,
            "items": "(image, landmarks, heatmaps)" if len(batch) > 2 else "(image, landmarks)"}


def breakdown(trainer, runs, time_callable, stat="min_ms"):
    """Per-part ms per batch on one real batch, parts timed alone between ``mx.nd.waitall()`` boundaries.

    ``stat``: which statistic of the runs stands for a part (default the fastest run, the one least disturbed
    by other jobs on the cores)."""
    import numpy as np
    import mxnet as mx
    from mxnet import autograd
    from lotr_gluon.build import Criterion

    batch = next(iter(trainer._loader()))
    data, label = batch[0], batch[1]
    b = data.shape[0]
    crit = trainer.criterion
    codec = crit.target_codec  # the codec of the step's targets, or None
    net = trainer.net
    parts = {}
    target = None
    if codec is not None:
        pts = label.asnumpy()
        t = time_callable(lambda: codec.encode(pts), runs=max(runs, 3), warmup=1)
        parts["heatmap_targets_ms"] = t[stat]
        target = batch[2] if len(batch) > 2 else None

    def fwd_bwd(fn):
        def run():
            with autograd.record():
                loss = fn()
            loss.backward()
            mx.nd.waitall()
        return run

    def fwd_only(fn):
        def run():
            with autograd.record():
                fn()
            mx.nd.waitall()
        return run

    aux = crit.aux_loss is not None
    crit.training_outputs(net, True)
    backbone = net.backbone if hasattr(net, "backbone") else None
    coord_only = Criterion(crit.loss, deep_supervision=crit.deep_supervision)  # without the auxiliary head

    def full_loss():
        return trainer._batch_loss(data, label, target)[0]

    def full_step():
        fwd_bwd(full_loss)()
        trainer.trainer.step(b)
        mx.nd.waitall()

    def no_aux_loss():
        return coord_only(net(data), label)[0]

    # the parts are timed in interleaved rounds (one timed run of each per round, after one untimed run where
    # the graph changed), so that a change of the load on a shared machine hits every part alike
    timed = {"full_fwd_bwd": [], "full_fwd_bwd_update": [], "backbone_fwd": [], "backbone_fwd_bwd": [],
             "no_aux_fwd_bwd": []}

    def once(key, fn, warm=False):
        if warm:
            fn()
        t0 = time.perf_counter()
        fn()
        timed[key].append(1e3 * (time.perf_counter() - t0))

    for r in range(runs):
        crit.training_outputs(net, True)
        once("full_fwd_bwd", fwd_bwd(full_loss), warm=(r == 0 or aux))
        once("full_fwd_bwd_update", full_step)
        if backbone is not None:
            once("backbone_fwd", fwd_only(lambda: backbone(data)), warm=(r == 0))
            once("backbone_fwd_bwd", fwd_bwd(lambda: backbone(data).mean()), warm=(r == 0))
        if aux:
            crit.training_outputs(net, False)
            once("no_aux_fwd_bwd", fwd_bwd(no_aux_loss), warm=True)  # re-traced graph: one untimed run
    pick = {"min_ms": min, "max_ms": max, "median_ms": lambda v: float(np.median(v)),
            "mean_ms": lambda v: float(np.mean(v))}[stat]
    res = {k: pick(v) for k, v in timed.items() if v}
    if backbone is not None:
        parts["backbone_forward_ms"] = res["backbone_fwd"]
        parts["backbone_backward_ms"] = res["backbone_fwd_bwd"] - res["backbone_fwd"]
        rest_model = res.get("no_aux_fwd_bwd", res["full_fwd_bwd"])
        parts["neck_transformer_head_loss_ms"] = rest_model - res["backbone_fwd_bwd"]
    else:
        parts["model_forward_backward_ms"] = res["full_fwd_bwd"]
    if aux:
        parts["aux_heatmap_head_and_loss_ms"] = res["full_fwd_bwd"] - res["no_aux_fwd_bwd"]
    parts["optimizer_update_ms"] = res["full_fwd_bwd_update"] - res["full_fwd_bwd"]
    return parts, res


# --------------------------------------------------------------------------------------------- report

ROWS = [("data_loading_augmentation_ms", "data loading + augmentation (main thread unless WORKERS > 0)"),
        ("heatmap_targets_ms", "heatmap-target encoding (numpy, codec.encode)"),
        ("backbone_forward_ms", "backbone forward"),
        ("backbone_backward_ms", "backbone backward"),
        ("neck_transformer_head_loss_ms", "neck + Transformer + PFFN head + coordinate loss (fwd+bwd)"),
        ("model_forward_backward_ms", "model forward + backward"),
        ("aux_heatmap_head_and_loss_ms", "auxiliary heatmap head + its loss (fwd+bwd)"),
        ("optimizer_update_ms", "optimizer update"),
        ("rest_ms", "rest: Python, host syncs, scheduling; negative = overlap")]


def render(report):
    r = report["results"]
    m = report["machine"]
    lines = ["Training speed: %s, batch %d, input %d, OMP_NUM_THREADS=%s (%s), %d cores, load average %s -> %s"
             % (report["settings"]["cfg"], report["settings"]["batch"], report["settings"]["input_size"],
                report["settings"]["omp_num_threads"], report["settings"]["threads_source"], m["cpu_count"],
                m.get("load_avg_1_5_15"), report.get("load_avg_end")), ""]
    lines.append("| figure | images/s | ms/batch |")
    lines.append("|---|---:|---:|")
    for key, name in (("training_step", "(a) training step (Trainer.train_epoch)"),
                      ("bare_backbone", "(b) bare backbone fwd+bwd+SGD (limit)"),
                      ("data_pipeline", "(c) data pipeline alone")):
        lines.append("| %s | %.2f | %.0f |" % (name, r[key]["images_per_s"], r[key]["ms_per_batch"]))
    lines.append("")
    lines.append("ratios: a/b = %.2f (training / limit), c/a = %.2f (data / training)"
                 % (report["ratios"]["a_over_b"], report["ratios"]["c_over_a"]))
    if report.get("breakdown"):
        bd = report["breakdown"]
        total = report["results"]["training_step"]["ms_per_batch"]
        lines += ["", "| step part | ms/batch | share of (a) |", "|---|---:|---:|"]
        for key, name in ROWS:
            if key in bd:
                lines.append("| %s | %.0f | %.0f%% |" % (name, bd[key], 100.0 * bd[key] / total))
        lines.append("| (a) training step, measured | %.0f | 100%% |" % total)
    for n in report["notes"]:
        lines.append("")
        lines.append("Note: " + n)
    return "\n".join(lines)


def main(argv=None):
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.breakdown_runs < 1:
        ap.error("--steps and --breakdown-runs must be >= 1, --warmup >= 0")
    if args.threads is not None:
        if args.threads < 1:
            ap.error("--threads must be >= 1")
        if "mxnet" in sys.modules:
            print("note: mxnet is already imported; --threads may not take effect", file=sys.stderr)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if len(args.opts) % 2:
        ap.error("config overrides must be KEY VALUE pairs")
    if not os.path.isfile(args.cfg):
        ap.error("config not found: %s" % args.cfg)

    import lotr_gluon  # noqa: F401  (lotr_gluon.runtime sets the threads before mxnet is imported)
    try:
        from lotr_gluon.runtime import SETTINGS as runtime_settings
    except ImportError:  # older trees (without lotr_gluon.runtime) have no runtime module
        runtime_settings = {"threads": None, "source": "none (no lotr_gluon.runtime)"}
    threads_source = "--threads" if args.threads is not None else runtime_settings.get("source")
    import mxnet as mx
    from lotr_gluon.benchmark import machine_info, time_callable
    from lotr_gluon.config import ConfigError, load_config
    from lotr_gluon.trainer import Trainer

    warnings.filterwarnings("ignore", category=UserWarning)
    machine = machine_info()
    try:
        cfg = load_config(args.cfg, _train_opts(args.opts, args.batch, args.warmup))
    except ConfigError as err:
        ap.error(str(err))
    batch = cfg.TRAIN.BATCH_SIZE
    out = args.out or os.path.join("output", "benchmark", "bench_train_%s.json"
                                   % datetime.datetime.now().strftime("%Y%m%d_%H%M%S"))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731

    from lotr_gluon.records import code_state
    report = {"kind": "bench_train", "code": code_state(), "date": machine["date"],
              "command": " ".join(["tools/bench_train.py"] + list(argv if argv is not None else sys.argv[1:])),
              "machine": machine,
              "settings": {"cfg": args.cfg, "opts": args.opts, "batch": batch, "input_size": cfg.DATA.INPUT_SIZE,
                           "steps": args.steps, "warmup": args.warmup, "breakdown_runs": args.breakdown_runs,
                           "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "threads_source": threads_source,
                           "mxnet_cpu_worker_nthreads": os.environ.get("MXNET_CPU_WORKER_NTHREADS"),
                           "workers": cfg.WORKERS, "data_cache": cfg.DATA.CACHE, "hybridize": cfg.TRAIN.HYBRIDIZE,
                           "optimizer": cfg.TRAIN.OPTIMIZER, "log_every": cfg.TRAIN.LOG_EVERY},
              "definitions": {
                  "training_step": "(a) images/s of Trainer.train_epoch (the Trainer's own step: data, targets, "
                                   "forward, loss, backward, update, host syncs) over `steps` steps after "
                                   "`warmup` untimed steps, real training faces",
                  "bare_backbone": "(b) the config's backbone trunk alone, hybridized (static_alloc), forward + "
                                   "backward of the mean output + SGD (momentum 0.9) on a fixed random batch, "
                                   "mx.nd.waitall() per step, measured first (before the Trainer is built): the limit",
                  "data_pipeline": "(c) images/s of Trainer._loader() alone (as configured), `steps` batches",
                  "a_over_b": "(a) / (b)", "c_over_a": "(c) / (a)",
                  "breakdown": "ms per batch, each part timed alone on one real batch between mx.nd.waitall() "
                               "boundaries (fastest of breakdown_runs runs after one warm-up); fwd+bwd parts by "
                               "ablation; data loading + augmentation = (c) ms/batch minus the target "
                               "encoding; rest = (a) ms/batch minus the sum of the parts"},
              "notes": list(args.note), "results": {}, "ratios": {}, "breakdown": {}}

    with tempfile.TemporaryDirectory(prefix="lotr_bench_train_") as tmp:
        # (b) first, before the Trainer exists: on a quiet 2-core machine the bare trunk measured 21-22 images/s
        # in a fresh process but 15-17 in the same process after a few training steps (cause not found), so
        # measuring it after (a) understated the limit.
        log("(b) bare backbone ...")
        b = time_bare_backbone(cfg, batch, args.steps, args.warmup, time_callable)
        log("    %.2f images/s" % b["images_per_s"])
        log("building the Trainer (%s, batch %d, OMP_NUM_THREADS=%s) ..."
            % (args.cfg, batch, os.environ.get("OMP_NUM_THREADS")))
        trainer = Trainer(cfg, out_dir=tmp, progress=False)
        log("(a) training step: %d warm-up + %d timed steps ..." % (args.warmup, args.steps))
        a = time_training(trainer, load_config, args.cfg, args.opts, args.batch, args.steps, args.warmup)
        log("    %.2f images/s" % a["images_per_s"])
        log("(c) data pipeline ...")
        c = time_pipeline(trainer, args.steps, min(args.warmup, 1))
        log("    %.2f images/s" % c["images_per_s"])
        report["results"] = {"training_step": a, "bare_backbone": b, "data_pipeline": c}
        report["ratios"] = {"a_over_b": a["images_per_s"] / b["images_per_s"],
                            "c_over_a": c["images_per_s"] / a["images_per_s"]}
        if not args.no_breakdown:
            log("breakdown (%d runs per part) ..." % args.breakdown_runs)
            parts, raw = breakdown(trainer, args.breakdown_runs, time_callable)
            data_ms = c["ms_per_batch"] - parts.get("heatmap_targets_ms", 0.0) * (
                1 if c["items"].startswith("(image, landmarks, heatmaps") else 0)
            bd = {"data_loading_augmentation_ms": data_ms}
            bd.update(parts)
            bd["rest_ms"] = a["ms_per_batch"] - sum(bd.values())
            report["breakdown"] = bd
            report["breakdown_raw_ms"] = raw
        del trainer
        mx.nd.waitall()
    try:
        report["load_avg_end"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        report["load_avg_end"] = None
    if (machine.get("load_avg_1_5_15") or [0])[0] > 0.5 * (machine.get("cpu_count") or 1) or \
            (report["load_avg_end"] or [0])[0] > 0.5 * (machine.get("cpu_count") or 1) + 1:
        report["notes"].append("the machine was not quiet (load average %s at the start, %s at the end): "
                               "figures are low and noisy; compare the ratios, re-measure alone"
                               % (machine.get("load_avg_1_5_15"), report["load_avg_end"]))
    text = render(report)
    with open(out, "w") as f:
        json.dump(report, f, indent=1)
    with open(os.path.splitext(out)[0] + ".md", "w") as f:
        f.write(text + "\n")
    print(text)
    print("\nwrote %s and %s" % (out, os.path.splitext(out)[0] + ".md"))
    return report


if __name__ == "__main__":
    main()
    sys.exit(0)
