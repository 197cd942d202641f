#!/usr/bin/env python
"""Run a face detector over a config's split(s) and write each annotated face's five points:
``python tools/detect_faces.py --cfg FILE [--split train|val|test|all] [--out FILE] [--detector yunet]
[KEY VALUE ...]``.

Both papers align every face on a face detector's five points (eye centres, nose tip, mouth corners; LOTR
Sec. IV-A, Earp Sec. 3.1). This runs the detector (``--detector``, default ``DATA.DETECTOR``: YuNet) once on
every image of the split(s) (a tqdm bar) and takes, for each annotated face, the detection whose box overlaps
the box of its ground-truth landmarks most, when that IoU is at least
:data:`lotr_gluon.detection_cache.MATCH_IOU` (0.4). The file is in the format of ``DATA.DETECTIONS``
(:func:`lotr_gluon.data.formats.load_detections`), with a ``"_meta"`` object: the detector's name, its model file
and sha256, OpenCV's version, the match threshold, each image's fingerprint (size and modification time, and
its sha256) and the faces missed (no face detected, or none with IoU >= the threshold) with the reason.

Output: ``--out FILE`` (one file for every split asked for), else the cache file of each split
(:func:`lotr_gluon.build.detections_path`: ``DATA.DETECTIONS_CACHE/<DATA.NAME>_<split file stem>_<detector>.json``,
which ``DATA.ALIGN detector`` reads and checks). Splits that name the same file (Datatang's val and test) are
detected once. An image that cannot be read stops the run with one line naming it (``DATA.ON_ERROR warn``:
its faces are listed as misses instead). At the end a report: faces found / missed / badly matched per split, the worst cases, the
files written and the wall time.

A face the detector misses (no detection with IoU >= 0.4 to its landmarks' box) is aligned on its
ground-truth five points in training and in evaluation, where it is scored that way and counted in
``detector_misses``.
"""
import os
import sys
import time

import lotr_gluon  # noqa: F401  (first: lotr_gluon.runtime sets the CPU threads before mxnet is imported)

from lotr_gluon.build import build_samples, detections_path, split_path
from lotr_gluon.cli import ArgumentParser, ensure_output_file, load_cli_config, run_main
from lotr_gluon.detection_cache import (FIVE_POINT_DETECTORS, LOW_IOU, MATCH_IOU, DetectionRun, detect_samples,
                                        detector_identity, five_point_detector, write_detections)
from lotr_gluon.errors import DataError

SPLITS = ("train", "val", "test")


def split_groups(cfg, which):
    """``[(split value, [split names])]``: the splits asked for (``which``: a split or ``'all'``), grouped by
    the file they name (``DATA.<SPLIT>_SPLIT``); a split with an empty value is left out."""
    groups = {}
    for split in (SPLITS if which == "all" else (which,)):
        value = split_path(cfg, split)
        if value:
            groups.setdefault(value, []).append(split)
    return list(groups.items())


def merge_samples(per_split):
    """The samples of several splits, each name once; DataError when one name stands for two images."""
    seen, out = {}, []
    for split, samples in per_split:
        for s in samples:
            first = seen.setdefault(s.name, (split, s))
            if first[1] is s:
                out.append(s)
            elif os.path.abspath(first[1].image_path) != os.path.abspath(s.image_path):
                raise DataError("sample %s is %s in split %s and %s in split %s; one --out file cannot hold both "
                                "(run one --split at a time)" % (s.name, first[1].image_path, first[0],
                                                                 s.image_path, split))
    return out


def split_counts(run, names):
    """``(faces, found, missed, badly matched)`` of the samples ``names`` in ``run``."""
    missed = sum(1 for n in names if n in run.misses and run.misses[n]["reason"] != LOW_IOU)
    bad = sum(1 for n in names if n in run.misses and run.misses[n]["reason"] == LOW_IOU)
    return len(names), sum(1 for n in names if n in run.detections), missed, bad


def worst_cases(run, k):
    """The ``k`` worst faces: misses first (no face, then lowest IoU), then the matches of lowest IoU:
    ``[(name, iou or None, text)]``."""
    rows = [(n, m["iou"], m["message"]) for n, m in run.misses.items()]
    rows.sort(key=lambda r: -1.0 if r[1] is None else r[1])
    matched = sorted(run.detections.items(), key=lambda kv: kv[1].iou)
    rows += [(n, d.iou, "matched, IoU %.2f, score %.2f" % (d.iou, d.score)) for n, d in matched]
    return rows[:k]


def combined(runs):
    """One :class:`DetectionRun` holding the entries of several."""
    out = DetectionRun()
    for r in runs:
        out.detections.update(r.detections)
        out.misses.update(r.misses)
        out.samples.update(r.samples)
    return out


def report(run, splits, identity, written, seconds, k=10):
    """The lines of the end-of-run report.

    Parameters
    ----------
    run : DetectionRun
        Every face detected.
    splits : list of (str, list of str, str or None)
        Split name, its sample names, and the split whose file it shares (counted once in the total) or None.
    identity : dict
        :func:`lotr_gluon.detection_cache.detector_identity`.
    written : list of str
        Files written.
    seconds : float
        Wall time of loading and detecting.
    k : int
        Worst cases listed.
    """
    sha = identity["model_sha256"] or "?"
    lines = ["detector %s (%s, sha256 %s), OpenCV %s, match IoU >= %.2f"
             % (identity["detector"], os.path.basename(identity["model"] or "?"), sha[:12], identity["opencv"],
                MATCH_IOU),
             "%-6s %6s %6s %7s %14s" % ("split", "faces", "found", "missed", "badly matched")]
    totals = [0, 0, 0, 0]
    where = {}
    for split, names, same_as in splits:
        c = split_counts(run, names)
        note = " (same split file as %s)" % same_as if same_as else ""
        lines.append("%-6s %6d %6d %7d %14d%s" % ((split,) + c + (note,)))
        if not same_as:
            totals = [t + v for t, v in zip(totals, c)]
        for n in names:
            where.setdefault(n, split)
    lines.append("%-6s %6d %6d %7d %14d" % tuple(["all"] + totals))
    lines.append("worst cases (misses, then the lowest IoU):")
    for name, _, text in worst_cases(run, k):
        lines.append("  %-12s %-6s %s" % (name, where.get(name, ""), text))
    lines += ["wrote %s" % p for p in written]
    lines.append("wall time %.1f s (%d images)" % (seconds, len({v["path"] for v in run.samples.values()})))
    return lines


def main(argv=None):
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("--cfg", required=True)
    ap.add_argument("--split", choices=SPLITS + ("all",), default="all")
    ap.add_argument("--out", default=None, help="one detections file for every split asked for (default: the "
                                                  "cache file of each split, lotr_gluon.build.detections_path)")
    ap.add_argument("--detector", choices=FIVE_POINT_DETECTORS, default=None, help="default: DATA.DETECTOR")
    ap.add_argument("--worst", type=int, default=10, help="worst cases listed in the report")
    ap.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    args = ap.parse_args(argv)  # KEY VALUE overrides anywhere on the line -> args.opts
    cfg = load_cli_config(args.cfg, args.opts)
    name = args.detector or cfg.DATA.DETECTOR
    groups = split_groups(cfg, args.split)
    if not groups:
        raise DataError("%s: no split to detect (DATA.%s_SPLIT is empty)" % (args.cfg, args.split.upper()))
    outs = [args.out] if args.out else [detections_path(cfg, splits[0], name) for _, splits in groups]
    for p in outs:
        ensure_output_file(p, "detections file")
    detector = five_point_detector(name)
    identity = detector_identity(detector)
    extra = dict(dataset=cfg.DATA.NAME, root=os.path.abspath(cfg.DATA.ROOT))
    progress = not args.no_progress
    t0 = time.time()
    per_group = [(value, splits, build_samples(cfg, splits[0])) for value, splits in groups]
    if args.out:  # one file: each image detected once, even when splits share it
        samples = merge_samples([(splits[0], group) for _, splits, group in per_group])
        run = detect_samples(samples, detector, MATCH_IOU, progress, "detecting faces (%s)" % ", ".join(
            sp for _, splits, _ in per_group for sp in splits), cfg.DATA.ON_ERROR)
        write_detections(args.out, run, identity, MATCH_IOU, split=[v for v, _, _ in per_group], **extra)
    else:
        runs = []
        for (value, splits, group), path in zip(per_group, outs):
            desc = "detecting faces (%s)" % ", ".join(splits)
            runs.append(detect_samples(group, detector, MATCH_IOU, progress, desc, cfg.DATA.ON_ERROR))
            write_detections(path, runs[-1], identity, MATCH_IOU, split=value, **extra)
        run = combined(runs)
    seconds = time.time() - t0
    order = {s: i for i, s in enumerate(SPLITS)}
    rows = sorted(((sp, [s.name for s in group], splits[0] if i else None)
                   for _, splits, group in per_group for i, sp in enumerate(splits)), key=lambda r: order[r[0]])
    print("\n".join(report(run, rows, identity, outs, seconds, args.worst)))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
