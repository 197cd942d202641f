#!/usr/bin/env python
"""Inference speed of LOTR and the heatmap baseline (LOTR Table V timing / size columns).

``python tools/benchmark.py [--models CFG ...] [--params P ...] [--runs 100] [--warmup 10] [--batch 1 32]
[--runtimes gluon symbol onnx] [--decoders dark argmax ...] [--flip both|on|off] [--flip-mode batch|twice]
[--threads N] [--ctx cpu|gpu0] [--out output/benchmark/NAME.json] [--opts KEY VALUE ...] [--note TEXT]``

For every model x runtime x batch size x flip test it times the network (forward + copy of the output to
host numpy, ``mx.nd.waitall()`` inside the timed region) and the decoding (heatmap decoding per decoder; for
LOTR only the flip un-mirroring / averaging) separately: mean and std over ``--runs`` runs after
``--warmup`` warm-up runs, ms per image and images/s. Flip on = the batch and its mirror run as one batch
of 2B (``--flip-mode batch``, default) or as two passes of B (``--flip-mode twice``), then the mirrored
prediction is un-mirrored with the scheme's flip permutation and averaged. See :mod:`lotr_gluon.benchmark`.

Without ``--params`` the weights are random (He init): inference time does not depend on the weight
values, and the output says so. Parameters (all, BatchNorm statistics included), float32 size and GMACs
(the papers' "GFLOPs") come from :func:`lotr_gluon.flops.model_info`.

Threads: ``--threads N`` (default 2) sets onnxruntime's intra-op threads and, before MXNet is imported,
``OMP_NUM_THREADS`` (without ``--threads`` an ``OMP_NUM_THREADS`` already in the environment is kept).
Run it on a quiet machine; on a shared one set ``OMP_WAIT_POLICY=passive`` (spin-waiting OpenMP threads
made MXNet's LOTR-M batch-1 pass 60x slower here while another job used the cores).

Writes ``--out`` (JSON: machine, settings, per-model info, rows with full timing statistics, LOTR/Earp
speed ratios) and the Markdown table next to it (same name, ``.md``), and prints the table.
"""
import argparse
import datetime
import json
import os
import sys
import warnings

DEFAULT_MODELS = ["experiments/datatang/lotr_m.yaml", "experiments/datatang/earp_mnv2_1.0_sdd.yaml"]
_NO_PARAMS = ("none", "random", "-", "")


def build_parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS, metavar="CFG",
                    help="experiment YAMLs (default: LOTR-M and the Earp MobileNetV2 SDD heatmap baseline)")
    ap.add_argument("--params", nargs="+", default=None, metavar="P",
                    help="weights, one per model ('none' = random init); default: random init for all")
    ap.add_argument("--runs", type=int, default=100, help="timed runs per measurement (default 100)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed warm-up runs (default 10)")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 32], help="batch sizes (default 1 32)")
    ap.add_argument("--runtimes", nargs="+", default=["gluon", "symbol", "onnx"],
                    choices=["gluon", "symbol", "onnx"], help="default: all three")
    ap.add_argument("--decoders", nargs="+", default=None, choices=["argmax", "argmax_shift", "dark", "vector"],
                    help="heatmap decoders (default: all four; ignored for LOTR)")
    ap.add_argument("--flip", choices=["both", "on", "off"], default="both", help="flip test (default both)")
    ap.add_argument("--flip-mode", choices=["batch", "twice"], default="batch",
                    help="flip test as one batch of 2B (default) or two forward passes of B")
    ap.add_argument("--threads", type=int, default=None,
                    help="onnxruntime intra-op threads and OMP_NUM_THREADS for MXNet (default 2; an "
                         "OMP_NUM_THREADS already set is then kept for MXNet)")
    ap.add_argument("--ctx", default="cpu", help="cpu (default) or gpu0 (mx.gpu(0), onnxruntime CUDA provider)")
    ap.add_argument("--out", default=None,
                    help="JSON file (default output/benchmark/benchmark_<ctx>_<date>.json); the .md goes next to it")
    ap.add_argument("--opts", nargs="+", default=[], metavar="KEY VALUE",
                    help="config overrides applied to every model, e.g. DATA.INPUT_SIZE 128")
    ap.add_argument("--note", action="append", default=[], help="free text added to the report (repeatable)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return ap


def main(argv=None):
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or min(args.batch) < 1:
        ap.error("--runs and --batch must be >= 1, --warmup >= 0")
    if args.threads is not None and args.threads < 1:
        ap.error("--threads must be >= 1")
    if args.params is not None and len(args.params) != len(args.models):
        ap.error("--params needs one entry per model (%d), 'none' for random init; got %d"
                 % (len(args.models), len(args.params)))
    if len(args.opts) % 2:
        ap.error("--opts must be KEY VALUE pairs")
    for m in args.models:
        if not os.path.isfile(m):
            ap.error("config not found: %s" % m)
    params = [None if (p is None or p.lower() in _NO_PARAMS) else p for p in (args.params or [None] * len(args.models))]
    for p in params:
        if p is not None and not os.path.isfile(p):
            ap.error("params file not found: %s" % p)

    # MXNet reads OMP_NUM_THREADS when it is imported
    threads = args.threads or 2
    if args.threads is not None or "OMP_NUM_THREADS" not in os.environ:
        if "mxnet" in sys.modules and os.environ.get("OMP_NUM_THREADS") != str(threads):
            print("note: mxnet is already imported; OMP_NUM_THREADS=%d may not take effect" % threads,
                  file=sys.stderr)
        os.environ["OMP_NUM_THREADS"] = str(threads)

    from lotr_gluon.benchmark import (WEIGHTS_NOTE, benchmark_model, machine_info, parse_ctx, render_markdown,
                                      speed_ratios)
    from lotr_gluon.config import ConfigError

    try:
        ctx = parse_ctx(args.ctx)
    except (RuntimeError, ValueError) as err:
        ap.error("--ctx %s: %s" % (args.ctx, err))
    if ctx.device_type == "gpu" and "onnx" in args.runtimes:
        import onnxruntime as ort
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            ap.error("--ctx %s with runtime onnx needs onnxruntime's CUDAExecutionProvider; this onnxruntime %s "
                     "offers %s (install onnxruntime-gpu, or drop onnx from --runtimes)"
                     % (args.ctx, ort.__version__, ", ".join(ort.get_available_providers())))

    flips = {"both": [False, True], "on": [True], "off": [False]}[args.flip]
    machine = machine_info(ctx)
    ctx_name = "gpu%d" % ctx.device_id if ctx.device_type == "gpu" else "cpu"
    out = args.out or os.path.join("output", "benchmark", "benchmark_%s_%s.json" % (
        ctx_name, datetime.datetime.now().strftime("%Y%m%d_%H%M%S")))
    md_path = os.path.splitext(out)[0] + ".md"
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    log = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))

    notes = list(args.note)
    weights = ["%s: %s" % (os.path.splitext(os.path.basename(m))[0], p or "random init")
               for m, p in zip(args.models, params)]
    notes.append("Weights: " + "; ".join(weights) + " (" + WEIGHTS_NOTE + ").")
    notes.append("Threads: onnxruntime %d intra-op (1 inter-op); MXNet OMP_NUM_THREADS=%s. Runtimes: gluon = "
                 "HybridBlock hybridized with static_alloc/static_shape; symbol = exported symbol + params as "
                 "SymbolBlock (same flags); onnx = onnxruntime %s, all graph optimisations, fixed input shape."
                 % (threads, os.environ.get("OMP_NUM_THREADS"), machine.get("onnxruntime")))
    if args.opts:
        notes.append("Config overrides for every model: %s." % " ".join(args.opts))
    from lotr_gluon.records import code_state
    report = {"kind": "benchmark", "code": code_state(), "date": machine["date"], "command": " ".join(["tools/benchmark.py"] + list(argv if argv is not None
                                                                                         else sys.argv[1:])),
              "machine": machine,
              "settings": {"models": args.models, "params": params, "runs": args.runs, "warmup": args.warmup,
                           "batches": args.batch, "runtimes": args.runtimes, "decoders": args.decoders,
                           "flips": flips, "flip_mode": args.flip_mode, "threads": threads,
                           "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "ctx": str(ctx),
                           "opts": args.opts, "seed": args.seed},
              "definitions": {
                  "network": "forward pass + copy of the output to host numpy (asnumpy, mx.nd.waitall) inside the "
                             "timed region; the input batch is already on the device",
                  "decode": "heatmap models: codec.decode per decoder (+ flip un-mirroring and averaging); LOTR: "
                            "only the flip un-mirroring and averaging (post-processing, about 0)",
                  "flip": "flip_mode 'batch': the batch and its mirror (built inside the timed network part) as one "
                          "batch of 2B; 'twice': two forward passes of B; then un-mirroring + averaging (decode)",
                  "ms_per_image": "(network mean + decode mean) / B; images_per_s = 1000 / ms_per_image",
                  "std": "sample standard deviation over the timed runs"},
              "weights_note": WEIGHTS_NOTE, "notes": notes, "models": [], "rows": [], "ratios": []}

    def save():
        report["ratios"] = speed_ratios(report["rows"])
        with open(out, "w") as f:
            json.dump(report, f, indent=1)
        md = render_markdown(report["rows"], machine=machine, notes=notes)
        with open(md_path, "w") as f:
            f.write(md)
        return md

    for cfg_file, p in zip(args.models, params):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rows = benchmark_model(cfg_file, params=p, runtimes=args.runtimes, batches=args.batch, flips=flips,
                                       decoders=args.decoders, runs=args.runs, warmup=args.warmup, ctx=ctx,
                                       threads=threads, flip_mode=args.flip_mode, opts=args.opts, seed=args.seed,
                                       log=log)
        except ConfigError as err:
            ap.error(str(err))
        if rows:
            r = rows[0]
            report["models"].append({k: r[k] for k in ("model", "cfg", "kind", "params", "params_m", "size_mb",
                                                       "gmacs", "input_size", "weights")})
        report["rows"].extend(rows)
        save()  # partial results survive an interrupted run
    md = save()
    print(md)
    print("wrote %s and %s" % (out, md_path))
    return 0


if __name__ == "__main__":
    from lotr_gluon.cli import run_main
    sys.exit(run_main(main))
