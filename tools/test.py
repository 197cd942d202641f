#!/usr/bin/env python
"""Evaluate a trained model: ``python tools/test.py --cfg FILE --params FILE [--flip] [KEY VALUE ...]``.

Writes to ``--out`` (default: the run folder's ``test_<split-stem>[_flip]/``):
``metrics.json`` (nme, fr, auc as fractions, threshold, num_images, flip, per-subset values, ``label`` (what the
faces are, ``DATA.SPLIT_LABELS``; printed first), and the
mean-shape baseline), ``per_image.csv`` (NME per image), ``ced.png`` (model vs mean shape) and
``predictions.png`` (a grid of faces with predicted (green) and ground-truth (red) landmarks), and
``record.json`` (:mod:`lotr_gluon.records`: the metrics with and without flip, every face's NME, alignment,
initialisation, config, command, commit, machine and the training the weights come from).
``DATA.ROOT <dir>`` and ``DATA.TEST_SPLIT <file>`` evaluate any folder in the dataset's layout.

``--predictor`` also scores the model end to end as a user runs it on a photo
(:func:`lotr_gluon.predictor.evaluate_predictor`: :class:`~lotr_gluon.predictor.Predictor` with ``DATA.DETECTOR``
on each whole image), prints that NME next to the evaluation's and stores it as ``predictor`` in metrics.json
and record.json, with the largest per-face difference between the two (they agree under ``DATA.ALIGN detector``).
"""
import os
import sys

import lotr_gluon  # noqa: F401  (first: lotr_gluon.runtime sets the CPU threads before mxnet is imported)

from lotr_gluon.build import check_params_file, split_label
from lotr_gluon.cli import ArgumentParser, ensure_output_dir, load_cli_config, run_main
from lotr_gluon.config import run_dir
from lotr_gluon.evaluate import evaluate_weights
from lotr_gluon.files import atomic_json, atomic_text
from lotr_gluon.predictor import Predictor, evaluate_predictor
from lotr_gluon.records import (alignment, baseline_line, evaluation_record, metrics_line, predictor_line,
                                write_record)
from lotr_gluon.tables.stats import bootstrap_interval
from lotr_gluon.vis import plot_ced, save_prediction_grid


def main(argv=None):
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("--cfg", required=True)
    ap.add_argument("--params", default=None, help="weights (default: the run folder's model_best.params)")
    ap.add_argument("--flip", action="store_true", help="flip test")
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-baseline", action="store_true", help="skip the mean-shape baseline (needs the train split)")
    ap.add_argument("--predictor", action="store_true", help="also score the Predictor end to end on the photos "
                                                             "(DATA.DETECTOR on each whole image)")
    args = ap.parse_args(argv)  # KEY VALUE overrides anywhere on the line -> args.opts
    cfg = load_cli_config(args.cfg, args.opts)
    params = args.params or os.path.join(run_dir(cfg), "model_best.params")
    check_params_file(params, "train first, or pass --params")
    split_stem = os.path.splitext(os.path.basename(cfg.DATA.TEST_SPLIT.rstrip("/")))[0] or "test"
    out = args.out or os.path.join(run_dir(cfg), "test_%s%s" % (split_stem, "_flip" if args.flip else ""))
    ensure_output_dir(out)

    run = evaluate_weights(cfg, params, flips=(False, True), baseline=not args.no_baseline)
    scheme, test_set = run.scheme, run.test_set
    metrics, nmes, preds, preds_crop = run.runs[args.flip]
    metrics["params"] = os.path.abspath(params)
    metrics["label"] = label = split_label(cfg, cfg.DATA.TEST_SPLIT, len(test_set))  # DATA.SPLIT_LABELS
    baseline = None
    if run.baseline is not None:
        baseline, base_nmes = run.baseline
        metrics["mean_shape_baseline"] = baseline
    for stat in ("nme", "auc"):  # 95% percentile bootstrap over the faces (lotr_gluon.tables.stats)
        metrics["%s_interval" % stat] = list(bootstrap_interval(nmes, stat, scheme.threshold)[1:])
    if args.predictor:
        pred = Predictor.from_model(cfg, params, detector=cfg.DATA.DETECTOR)
        p_metrics, p_nmes, _ = evaluate_predictor(pred, test_set.samples, scheme, flip=args.flip)
        p_metrics["detector"] = cfg.DATA.DETECTOR
        p_metrics["max_face_difference"] = float(abs(p_nmes - nmes).max()) if len(nmes) else 0.0
        p_metrics["nme_interval"] = list(bootstrap_interval(p_nmes, "nme", scheme.threshold)[1:])
        metrics["predictor"] = p_metrics
    atomic_json(metrics, os.path.join(out, "metrics.json"))
    atomic_text("name,nme\n" + "".join("%s,%.6f\n" % (s.name, v) for s, v in zip(test_set.samples, nmes)),
                os.path.join(out, "per_image.csv"))
    command = ["tools/test.py"] + list(sys.argv[1:] if argv is None else argv)
    record = evaluation_record(cfg, params, {f: r[:2] for f, r in run.runs.items()},
                               [s.name for s in test_set.samples], baseline, argv=command)
    if args.predictor:
        record["predictor"] = metrics["predictor"]
    write_record(record, out)

    curves = {"%s%s" % (cfg.CFG_NAME, " +flip" if args.flip else ""): nmes}
    if baseline is not None:
        curves["mean shape"] = base_nmes
    plot_ced(curves, scheme.threshold, os.path.join(out, "ced.png"), title="CED, %s" % label)
    k = min(cfg.TEST.GRID_IMAGES, len(test_set))
    gts = test_set.aligned_landmarks()[:k]
    images = [test_set.crop(i) for i in range(k)]
    save_prediction_grid(images, preds_crop[:k], gts, os.path.join(out, "predictions.png"), nmes=nmes[:k])

    line = metrics_line(metrics, metrics["nme_interval"], metrics["auc_interval"], scheme.threshold, args.flip)
    print("data       : " + label)
    print("model      : " + line)
    if "detector_misses" in metrics:  # DATA.ALIGN detector / DATA.DETECTIONS
        print("alignment  : %s; %d of %d faces missed by the detector, scored on ground-truth five points%s" % (
            alignment(cfg), metrics["detector_misses"], metrics["num_images"],
            " (%s)" % ", ".join(metrics["detector_miss_names"][:10]) if metrics["detector_misses"] else ""))
    if args.predictor:
        print("predictor  : " + predictor_line(metrics["predictor"], scheme.threshold))
    if baseline is not None:
        print("mean shape : " + baseline_line(baseline, scheme.threshold))
    print("wrote %s" % out)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
