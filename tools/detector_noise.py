#!/usr/bin/env python
"""A face detector's alignment error, measured against the ground truth: the size of the augmentation that imitates it.

``python tools/detector_noise.py --cfg experiments/datatang/lotr_m.yaml [--split train] [--out FILE] [KEY VALUE ...]``

For every face of the split that the detector found (``DATA.DETECTOR``; the detections come from the cache of
``DATA.ALIGN detector``, built when missing or stale), the face is aligned twice, on its ground-truth five
points and on the detector's (the crop of ``DATA.INPUT_SIZE`` and ``DATA.TEMPLATE_SCALE``), and the map from the
first crop to the second is decomposed into log scale, rotation (degrees) and shift of the crop centre (fraction
of the crop side) (:func:`lotr_gluon.data.align.alignment_residual`). The tool prints the mean, std and 95th
percentile of each, and the value of ``AUG.ALIGN_NOISE_STD`` that draws zero-mean gaussian noise of the
measured stds (shift: the mean of the x and y stds), and writes a record (per-face parameters, statistics,
detector, command, code state), by default ``results/<DATA.NAME>/detector_noise_<split>.json``.
"""
import os
import shlex
import sys
import time

import lotr_gluon  # noqa: F401  (first: lotr_gluon.runtime sets the CPU threads before mxnet is imported)

import numpy as np

from lotr_gluon.build import build_detections, build_samples, build_scheme, detections_path
from lotr_gluon.cli import ArgumentParser, ensure_output_file, load_cli_config, run_main
from lotr_gluon.data.align import alignment_residual, arcface_template, estimate_similarity, five_points_from_landmarks
from lotr_gluon.data.formats import load_detections_meta
from lotr_gluon.errors import DataError
from lotr_gluon.files import atomic_json
from lotr_gluon.records import code_state

PARAMETERS = ("log_scale", "rotation_deg", "shift_x", "shift_y")


def residuals(samples, detections, scheme, size, template_scale):
    """``{name: (4,) residual}`` of every sample with a detection (:func:`alignment_residual`)."""
    template = arcface_template(size, template_scale)
    out = {}
    for s in samples:
        det = detections.get(s.name)
        if det is None:
            continue
        m_gt = estimate_similarity(five_points_from_landmarks(s.landmarks, scheme), template)
        m_det = estimate_similarity(np.asarray(det.five_points, np.float64), template)
        out[s.name] = alignment_residual(m_gt, m_det, size)
    return out


def statistics(values):
    """Per parameter of ``values`` (K, 4): mean, std, 95th percentile of the absolute deviation from the mean."""
    v = np.asarray(values, np.float64)
    if v.ndim != 2 or v.shape[1] != len(PARAMETERS) or not len(v):
        raise DataError("no detected face to measure (got %s residuals)" % (v.shape,))
    mean, std = v.mean(0), v.std(0)
    p95 = np.percentile(np.abs(v - mean), 95, axis=0)
    return {p: {"mean": float(mean[i]), "std": float(std[i]), "p95_abs": float(p95[i])}
            for i, p in enumerate(PARAMETERS)}


def noise_std(stats, digits=3):
    """``AUG.ALIGN_NOISE_STD`` [log scale, degrees, crop fraction] of measured statistics, ``digits`` significant."""
    shift = (stats["shift_x"]["std"] + stats["shift_y"]["std"]) / 2.0
    return [float("%.*g" % (digits, v)) for v in (stats["log_scale"]["std"], stats["rotation_deg"]["std"], shift)]


def main(argv=None):
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("--cfg", required=True)
    ap.add_argument("--split", choices=("train", "val", "test"), default="train")
    ap.add_argument("--out", default=None, help="record (default results/<DATA.NAME>/detector_noise_<split>.json)")
    args = ap.parse_args(argv)
    cfg = load_cli_config(args.cfg, list(args.opts) + ["DATA.ALIGN", "detector"])
    out = args.out or os.path.join("results", cfg.DATA.NAME, "detector_noise_%s.json" % args.split)
    ensure_output_file(out, "record")
    samples = build_samples(cfg, args.split)
    detections = build_detections(cfg, args.split, samples)
    res = residuals(samples, detections, build_scheme(cfg), cfg.DATA.INPUT_SIZE, cfg.DATA.TEMPLATE_SCALE)
    stats = statistics(list(res.values()))
    std = noise_std(stats)
    cache = cfg.DATA.DETECTIONS or detections_path(cfg, args.split)
    meta = load_detections_meta(cache)
    record = {"kind": "detector_noise", "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "command": " ".join(shlex.quote(a) for a in (sys.argv if argv is None else ["tools/detector_noise.py"]
                                                           + list(argv))),
              "code": code_state(), "config_name": cfg.CFG_NAME,
              "data": {"name": cfg.DATA.NAME, "split": args.split, "faces": len(samples), "detected": len(res),
                       "input_size": cfg.DATA.INPUT_SIZE, "template_scale": cfg.DATA.TEMPLATE_SCALE},
              "detector": {"name": meta.get("detector", cfg.DATA.DETECTOR),
                           "model": os.path.basename(meta.get("model") or "") or None,
                           "model_sha256": meta.get("model_sha256"), "opencv": meta.get("opencv")},
              "parameters": list(PARAMETERS), "statistics": stats, "align_noise_std": std,
              "per_face": {n: [round(float(x), 6) for x in v] for n, v in sorted(res.items())}}
    atomic_json(record, out)
    print("%s split %s: %d faces, %d detected by %s; detector alignment vs ground-truth alignment "
          "(map from the ground-truth crop to the detector's):" % (cfg.DATA.NAME, args.split, len(samples), len(res),
                                                                   cfg.DATA.DETECTOR))
    print("%-14s %10s %10s %10s" % ("parameter", "mean", "std", "p95 |dev|"))
    for p in PARAMETERS:
        print("%-14s %10.4f %10.4f %10.4f" % (p, stats[p]["mean"], stats[p]["std"], stats[p]["p95_abs"]))
    print("AUG.ALIGN_NOISE_STD %s  (log scale, degrees, crop fraction)" % std)
    print("wrote %s" % out)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
