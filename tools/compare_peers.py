#!/usr/bin/env python
"""Our models and an outside landmark detector on the same faces, scored by the same code, in one table:
``python tools/compare_peers.py --cfg FILE [--params FILE] [--model NAME=CFG:PARAMS ...] [--split test|val]
[--peer-box yunet|yunet_mapped|dlib] [--no-peer] [--flip] [--out DIR] [KEY VALUE ...]``.

Rows: the model of ``--cfg`` with ``--params`` (named after the config), each ``--model NAME=CFG:PARAMS`` (with
``--flip`` also their flip-test rows), the peer (dlib's 68-point shape predictor, :mod:`lotr_gluon.peers`; an
optional extra: ``make peers``) and the mean training shape (the yardstick; ``--no-baseline`` leaves it out).
Without ``--params`` and ``--model`` only the peer and the mean shape are scored. Every row is scored on the faces
of ``--split`` of ``--cfg``'s data (each model's config must name the same faces; the split is named by the
config's ``DATA.SPLIT_LABELS``, e.g. "300-W subset (HELEN test, 220 faces; not the full 300-W protocol)") by
:mod:`lotr_gluon.metrics`:
NME with the scheme's normaliser (300-W: outer eye corners 36 and 45), FR and AUC at the scheme's threshold, each
with its 95% percentile bootstrap interval over the faces, and the paired bootstrap difference of each row from the
first (:mod:`lotr_gluon.tables.stats`: the same resampled faces for both).

Inputs of each model: ours are aligned on YuNet's five points (``DATA.ALIGN detector``) and evaluated by
:func:`lotr_gluon.evaluate.evaluate_weights`; the peer starts from a face box (``--peer-box``): ``yunet``, the box
of the same YuNet detection (from the detections cache), ``yunet_mapped``, that box mapped into the convention of
dlib's boxes (the median relation of the two detectors' boxes of the same faces on ``--map-split``, default val),
or ``dlib``, dlib's own HOG detector (the boxes its model was trained on; :data:`lotr_gluon.peers.BOX_SOURCES`).
The default, ``yunet_mapped``, starts dlib from the same YuNet detection as our models, placed where dlib's model
expects a box (raw YuNet boxes sit higher and are taller than dlib's). A face without a matching detection follows
:data:`lotr_gluon.peers.MISS_RULE` for every model and is counted in the ``misses`` column.

ms per face: the landmark model alone on one face on this machine (no image read, detection or alignment): ours by
:func:`lotr_gluon.benchmark.benchmark_model` (Gluon, batch 1, no flip, mean of ``--timing-runs`` calls after
warm-up), the peer by the mean time of its ``predict`` over the faces. Size: our float32 inference weights
(:func:`lotr_gluon.flops.model_info`), the peer's model file; MiB.

Writes to ``--out`` (default ``output/<DATA.NAME>/compare_peers_<split>``): ``compare.json`` (the table, every
face's NME per row, the command, the code's commit and state, the machine), ``per_face.csv`` (one column per
row) and ``ced.png``.
"""
import os
import shlex
import sys
import time

import lotr_gluon  # noqa: F401  (first: lotr_gluon.runtime sets the CPU threads before mxnet is imported)

import numpy as np

from lotr_gluon.benchmark import benchmark_model
from lotr_gluon.build import (build_dataset, build_samples, build_scheme, check_params_file, detections_path,
                              split_label, split_path)
from lotr_gluon.cli import ArgumentParser, ensure_output_dir, load_cli_config, run_main
from lotr_gluon.data.dataset import mean_shape
from lotr_gluon.data.formats import load_detections
from lotr_gluon.detection_cache import ensure_detections
from lotr_gluon.errors import UsageError
from lotr_gluon.evaluate import evaluate_weights, mean_shape_baseline
from lotr_gluon.files import atomic_json, atomic_text
from lotr_gluon.flops import model_info
from lotr_gluon.metrics import nme_per_image
from lotr_gluon.peers import (BOX_SOURCES, DLIB_TRAINING_NOTE, MISS_RULE, DlibShapePredictor, apply_box_relation,
                              box_relation, dlib_detector_boxes, find_dlib_model, import_dlib, peer_boxes,
                              predict_peer)
from lotr_gluon.records import alignment, code_state, machine
from lotr_gluon.tables import stats
from lotr_gluon.vis import plot_ced

SPLITS = ("train", "val", "test")

#: Published numbers printed under the table as a reference on other data (never a row of it).
REFERENCES = {
    "300w": ["PIPNet MobileNetV2 (PIPNet Table 3, inter-ocular NME): 300-W common subset 2.94%, full set 3.40%; "
             "trained on 3,148 300-W faces (here 1,107), tested on 554 / 689 faces (LFPW + HELEN test, + iBUG): "
             "a reference on other data, not a row of this table"],
}


#: What the peer's boxes are, for the note under the table.
BOX_NOTES = {"yunet": "YuNet's boxes (the detections that align our models)",
             "yunet_mapped": "YuNet's boxes mapped into the convention of dlib's HOG boxes (median relation fitted "
                             "on --map-split)",
             "dlib": "dlib's HOG detector boxes (those its model was trained on)"}


def parse_model(spec):
    """``NAME=CFG:PARAMS`` -> ``(name, cfg, params)``; UsageError when malformed."""
    name, eq, rest = spec.partition("=")
    cfg, colon, params = rest.partition(":")
    if not (eq and colon and name and cfg and params):
        raise UsageError("--model %r: expected NAME=CFG:PARAMS (e.g. earp=experiments/300w/earp_mnv2_1.0_sdd.yaml:"
                         "output/300w/earp_mnv2_1.0_sdd/model_best.params)" % spec)
    return name, cfg, params


def _split_opts(cfg, split):
    """Overrides that make ``split`` the evaluated one (``DATA.TEST_SPLIT``)."""
    return [] if split == "test" else ["DATA.TEST_SPLIT", split_path(cfg, split)]


def _summary(nmes, threshold, first, n_boot):
    """NME / FR / AUC with intervals, and the paired difference from the first row's NMEs (None for the first)."""
    out = {}
    for stat in ("nme", "fr", "auc"):
        v, lo, hi = stats.bootstrap_interval(nmes, stat, threshold, n_boot=n_boot)
        out[stat], out[stat + "_ci"] = v, [lo, hi]
        if first is not None:
            d, dlo, dhi = stats.paired_difference(nmes, first, stat, threshold, n_boot=n_boot)
            out["d_" + stat], out["d_" + stat + "_ci"] = d, [dlo, dhi]
    return out


def _pct(v, ci=None):
    s = "%.2f" % (100 * v)
    return s if ci is None else "%s [%.2f, %.2f]" % (s, 100 * ci[0], 100 * ci[1])


def norm_text(scheme):
    """What the scheme's NME is normalised by, in words."""
    if scheme.norm == "inter_ocular":
        return "the outer-eye-corner distance (points %d and %d)" % tuple(scheme.norm_indices)
    return "the square root of the ground-truth landmarks' box area"


def render_table(rows, threshold, label, box_note, norm="the scheme's normaliser"):
    """The markdown table and its notes (one string)."""
    first = rows[0]["name"]
    head = ("| model | NME (%%) [95%%] | FR@%.2f (%%) [95%%] | AUC@%.2f (%%) [95%%] | NME - %s (points) [95%%] | "
            "ms per face | size (MiB) | misses | note |" % (threshold, threshold, first))
    lines = ["%s; NME normalised by %s, 95%% percentile bootstrap intervals over the faces" % (label, norm), "",
             head, "|" + "---|" * 9]
    for r in rows:
        m = r["metrics"]
        diff = "-" if "d_nme" not in m else _pct(m["d_nme"], m["d_nme_ci"])
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["name"], _pct(m["nme"], m["nme_ci"]), _pct(m["fr"], m["fr_ci"]), _pct(m["auc"], m["auc_ci"]), diff,
            "-" if r.get("ms_per_face") is None else "%.2f" % r["ms_per_face"],
            "-" if r.get("size_mib") is None else "%.2f" % r["size_mib"],
            "-" if r.get("misses") is None else "%d" % r["misses"], r.get("note", "")))
    lines += ["", box_note]
    return "\n".join(lines)


def _our_rows(specs, opts, split, flip, faces, timing_runs, timing_warmup):
    """Evaluate each ``(name, cfg file, params)``; rows without the summary (added by the caller)."""
    rows = []
    for name, cfg_file, params in specs:
        base = load_cli_config(cfg_file, opts)
        cfg = load_cli_config(cfg_file, opts, _split_opts(base, split))
        check_params_file(params, "train first, or pass another --params / --model")
        run = evaluate_weights(cfg, params, flips=(False, True) if flip else (False,), baseline=False)
        names = [s.name for s in run.test_set.samples]
        if names != faces:
            raise UsageError("model %s (%s) is evaluated on other faces than --cfg (%d vs %d faces, or another "
                             "order): compare models of the same data" % (name, cfg_file, len(names), len(faces)))
        bench = benchmark_model(cfg, params, runtimes=("gluon",), batches=(1,), flips=(False,), decoders="default",
                                runs=timing_runs, warmup=timing_warmup)[0]
        size = model_info(cfg)["size_mb"]
        for f in sorted(run.runs):
            metrics, nmes = run.runs[f][:2]
            rows.append({"name": name + (" +flip" if f else ""), "kind": "ours", "cfg": cfg_file,
                         "params": os.path.abspath(params), "flip": f, "nmes": np.asarray(nmes, np.float64),
                         "ms_per_face": None if f else bench["ms_per_image"], "size_mib": size,
                         "misses": metrics.get("detector_misses"), "miss_names": metrics.get("detector_miss_names"),
                         "alignment": alignment(cfg), "note": ""})
    return rows


def _yunet_boxes(cfg, samples, progress):
    """YuNet's matched boxes of the evaluated split (``DATA.TEST_SPLIT``) from the detections cache: {name: box}."""
    path, _ = ensure_detections(detections_path(cfg, "test", "yunet"), samples, "yunet", progress=progress,
                                on_error=cfg.DATA.ON_ERROR, dataset=cfg.DATA.NAME,
                                root=os.path.abspath(cfg.DATA.ROOT), split=split_path(cfg, "test"))
    return {n: d.box for n, d in load_detections(path).items()}


def _peer_row(cfg, fit_cfg, samples, scheme, box_source, progress):
    """The dlib row; ``fit_cfg``: the config whose ``DATA.TEST_SPLIT`` fits the ``yunet_mapped`` relation."""
    if scheme.name != "300w68":
        raise UsageError("the dlib peer predicts iBUG's 68 points (scheme 300w68); DATA.SCHEME is %s: use --no-peer"
                         % scheme.name)
    peer = DlibShapePredictor()
    t0 = time.perf_counter()
    det_ms, mapping = None, None
    if box_source == "dlib":
        found, seconds = dlib_detector_boxes(peer, samples)
        det_ms = 1e3 * seconds / max(len(samples), 1)
    else:
        found = _yunet_boxes(cfg, samples, progress)
    if box_source == "yunet_mapped":  # HOG boxes against YuNet boxes of the same faces, on another split
        fit = build_samples(fit_cfg, "test")
        yunet, (hog, _) = _yunet_boxes(fit_cfg, fit, progress), dlib_detector_boxes(peer, fit)
        both = sorted(set(yunet) & set(hog))
        if not both:
            raise UsageError("--peer-box yunet_mapped: no face of %s found by both YuNet and dlib's detector"
                             % fit_cfg.DATA.TEST_SPLIT)
        rel = box_relation([hog[n] for n in both], [yunet[n] for n in both])
        found = {n: apply_box_relation(b, rel) for n, b in found.items()}
        mapping = {"split": fit_cfg.DATA.TEST_SPLIT, "faces": len(both), "relation_dx_dy_sx_sy": rel.tolist()}
    boxes, misses, conv = peer_boxes(samples, found)
    preds, ms = predict_peer(peer, samples, boxes)
    gt = np.stack([s.landmarks for s in samples])
    nmes = nme_per_image(preds, gt, scheme.norm, scheme.norm_indices or None)
    return {"name": "dlib (%s box)" % box_source.replace("_", " "), "kind": "peer", "peer": peer.identity(),
            "flip": False, "nmes": nmes, "ms_per_face": ms, "size_mib": peer.size_mb, "misses": len(misses),
            "miss_names": misses, "box_source": box_source, "yunet_to_dlib_box_mapping": mapping,
            "box_relation_for_misses": conv.tolist(), "detector_ms_per_face": det_ms,
            "seconds": time.perf_counter() - t0, "note": DLIB_TRAINING_NOTE}


def main(argv=None):
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("--cfg", required=True, help="config of the data (and of --params' model)")
    ap.add_argument("--params", default=None, help="weights of --cfg's model (none: no model of ours from --cfg)")
    ap.add_argument("--model", action="append", default=[], metavar="NAME=CFG:PARAMS", help="another model of ours")
    ap.add_argument("--split", choices=SPLITS, default="test")
    ap.add_argument("--peer-box", choices=BOX_SOURCES, default="yunet_mapped",
                    help="the peer's face boxes (lotr_gluon.peers.BOX_SOURCES): YuNet's (the detection our alignment "
                         "uses), YuNet's mapped into dlib's box convention, or dlib's HOG detector")
    ap.add_argument("--map-split", choices=SPLITS, default="val",
                    help="--peer-box yunet_mapped: the split its YuNet-to-dlib box relation is fitted on")
    ap.add_argument("--no-peer", action="store_true", help="our models only (no dlib needed)")
    ap.add_argument("--no-baseline", action="store_true", help="no mean-shape row (it reads the train split)")
    ap.add_argument("--flip", action="store_true", help="also the flip-test rows of our models")
    ap.add_argument("--n-boot", type=int, default=stats.N_BOOT, help="bootstrap resamples")
    ap.add_argument("--timing-runs", type=int, default=50, help="timed batch-1 calls per model of ours")
    ap.add_argument("--timing-warmup", type=int, default=5, help="untimed calls before them")
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)  # KEY VALUE overrides anywhere on the line -> args.opts
    if args.n_boot < 1 or args.timing_runs < 1 or args.timing_warmup < 0:
        raise UsageError("--n-boot and --timing-runs must be >= 1, --timing-warmup >= 0")
    base = load_cli_config(args.cfg, args.opts)
    specs = ([(base.CFG_NAME, args.cfg, args.params)] if args.params else []) + [parse_model(m) for m in args.model]
    if not specs and args.no_peer:
        raise UsageError("nothing to compare: give --params or --model, or leave out --no-peer")
    if len({s[0] for s in specs}) != len(specs):
        raise UsageError("two models named alike: %s" % ", ".join(s[0] for s in specs))
    if not args.no_peer:  # fail before any work when the extra is missing
        import_dlib()
        find_dlib_model()
    cfg = load_cli_config(args.cfg, args.opts, _split_opts(base, args.split))
    out = args.out or os.path.join(cfg.OUTPUT_DIR, cfg.DATA.NAME, "compare_peers_%s" % args.split)
    ensure_output_dir(out)
    scheme = build_scheme(cfg)
    test_set = build_dataset(load_cli_config(args.cfg, args.opts, _split_opts(base, args.split) + ["DATA.CACHE",
                                                                                                "False"]), "test")
    samples = test_set.samples
    faces = [s.name for s in samples]
    label = split_label(cfg, cfg.DATA.TEST_SPLIT, len(faces))  # DATA.SPLIT_LABELS

    rows = _our_rows(specs, args.opts, args.split, args.flip, faces, args.timing_runs, args.timing_warmup)
    if not args.no_peer:
        if args.peer_box == "yunet_mapped" and args.map_split == args.split:
            raise UsageError("--map-split %s is the evaluated split: fit the box mapping on another" % args.split)
        fit_cfg = load_cli_config(args.cfg, args.opts, _split_opts(base, args.map_split))
        rows.append(_peer_row(cfg, fit_cfg, samples, scheme, args.peer_box, not args.no_progress))
    if not args.no_baseline:
        train_cfg = load_cli_config(args.cfg, args.opts, ["DATA.CACHE", "False"])  # the landmarks, no crops
        _, nmes = mean_shape_baseline(mean_shape(build_dataset(train_cfg, "train")), test_set, scheme)
        rows.append({"name": "mean shape", "kind": "baseline", "flip": False, "nmes": nmes,
                     "note": "mean aligned training shape, %s" % alignment(cfg)})
    first = rows[0]["nmes"]
    for i, r in enumerate(rows):
        r["metrics"] = _summary(r["nmes"], scheme.threshold, first if i else None, args.n_boot)
    box_note = ("inputs: our models on YuNet's five points (DATA.ALIGN detector); %s; %s."
                % ("dlib on %s" % BOX_NOTES[args.peer_box] if not args.no_peer else "no peer", MISS_RULE))
    table = render_table(rows, scheme.threshold, label, box_note, norm_text(scheme))
    refs = REFERENCES.get(cfg.DATA.NAME, [])
    print(table)
    for ref in refs:
        print("reference: " + ref)

    command = ["tools/compare_peers.py"] + list(sys.argv[1:] if argv is None else argv)
    record = {"kind": "peer_comparison", "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "command": " ".join(shlex.quote(a) for a in command), "code": code_state(), "machine": machine(),
              "data": {"name": cfg.DATA.NAME, "root": cfg.DATA.ROOT, "split": args.split,
                       "split_value": cfg.DATA.TEST_SPLIT, "label": label, "faces": len(faces)},
              "metric": {"norm": scheme.norm, "norm_indices": list(scheme.norm_indices or ()),
                         "threshold": scheme.threshold, "bootstrap": {"n_boot": args.n_boot, "seed": stats.SEED,
                                                                      "level": stats.LEVEL},
                         "paired_difference_vs": rows[0]["name"]},
              "peer_box": None if args.no_peer else args.peer_box, "miss_rule": box_note, "references": refs,
              "table": table, "rows": [], "per_face_nme": {}}
    for r in rows:
        rec = {k: v for k, v in r.items() if k != "nmes"}
        record["rows"].append(rec)
        record["per_face_nme"][r["name"]] = {n: round(float(v), 6) for n, v in zip(faces, r["nmes"])}
    atomic_json(record, os.path.join(out, "compare.json"))
    header = "name," + ",".join('"%s"' % r["name"] for r in rows) + "\n"
    body = "".join("%s,%s\n" % (n, ",".join("%.6f" % r["nmes"][i] for r in rows)) for i, n in enumerate(faces))
    atomic_text(header + body, os.path.join(out, "per_face.csv"))
    plot_ced({r["name"]: r["nmes"] for r in rows}, scheme.threshold, os.path.join(out, "ced.png"),
             title="CED, %s" % label)
    print("wrote %s (compare.json, per_face.csv, ced.png)" % out)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
