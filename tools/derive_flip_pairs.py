#!/usr/bin/env python
"""Derive the left/right flip pairs of a landmark layout from annotated faces, and check a scheme's pairs.

Method: the training faces are aligned by generalised Procrustes (similarity, no reflection); the mean shape is
mirrored (x -> -x) and matched to itself by the Hungarian algorithm, alternating with a similarity re-fit until
the matching is stable (:func:`lotr_gluon.data.schemes.derive_flip_permutation`). The script prints the pairs,
the midline points, the symmetry error of the mean shape (percent of sqrt(w*h) of its box), whether the pairs
equal those of ``--scheme``, and, for the nose, the midline point whose offset from the face midline changes
most with the head's yaw (the most protruding one: the nose tip), when the data has Datatang's ``orientation``.

Example::

    python tools/derive_flip_pairs.py --format datatang --root ../shared/data/datatang106 \
        --split splits/train.txt --scheme datatang106
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from lotr_gluon.data.align import generalized_procrustes  # noqa: E402
from lotr_gluon.data.formats import load_samples  # noqa: E402
from lotr_gluon.data.schemes import (derive_flip_permutation, get_scheme, mirror_symmetry_error,  # noqa: E402
                                     pairs_from_permutation)


def yaw_sensitivity(samples, candidates, perm):
    """Mean offset of each candidate point from the face midline (fraction of the inter-ocular distance of the
    paired-point midpoints) for leftward, forward and rightward faces (Datatang ``orientation``)."""
    pts = np.stack([s.landmarks for s in samples]).astype(np.float64)
    orient = np.array([str(s.attributes.get("orientation", "")) for s in samples])
    paired = [i for i in range(len(perm)) if perm[i] != i]
    mids = 0.5 * (pts[:, paired] + pts[:, perm[paired]])  # (M, P, 2): points on the midline
    centre = mids.mean(1)
    # left-to-right axis: from the mean of image-left points of pairs to their partners
    left = [i for i in paired if i < perm[i]]
    axis = (pts[:, perm[left]] - pts[:, left]).mean(1)
    scale = np.linalg.norm(axis, axis=1)
    axis /= scale[:, None]
    out = {}
    for k in candidates:
        off = ((pts[:, k] - centre) * axis).sum(1) / scale
        out[k] = {o: float(off[orient == o].mean()) for o in ("leftward", "forward", "rightward")
                  if (orient == o).any()}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--format", default="datatang", help="datatang | jd | wflw | 300w")
    ap.add_argument("--root", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                                                   "datatang106"))
    ap.add_argument("--split", default="splits/train.txt")
    ap.add_argument("--scheme", default="datatang106", help="scheme whose pairs are compared ('' = none)")
    ap.add_argument("--nose", default="71-85", help="index range searched for the nose tip (datatang: 71-85)")
    args = ap.parse_args(argv)

    samples = load_samples(args.format, args.root, split=args.split or None)
    shapes = np.stack([s.landmarks for s in samples])
    print("faces: %d, points: %d" % shapes.shape[:2])
    mean, _ = generalized_procrustes(shapes)
    perm = derive_flip_permutation(mean)
    involution = bool(np.array_equal(perm[perm], np.arange(len(perm))))
    print("involution: %s" % involution)
    if not involution:
        print("permutation: %s" % perm.tolist())
        return 1
    pairs = pairs_from_permutation(perm)
    err = mirror_symmetry_error(mean, perm)
    print("flip pairs (%d):" % len(pairs))
    print("    " + ", ".join("(%d, %d)" % p for p in pairs))
    print("midline points: %s" % [i for i in range(len(perm)) if perm[i] == i])
    print("mean-shape symmetry error (%% of sqrt(w*h) of the box): mean %.3f, max %.3f at point %d"
          % (100 * err.mean(), 100 * err.max(), int(err.argmax())))
    if args.scheme:
        scheme = get_scheme(args.scheme)
        same = tuple(sorted(tuple(sorted(p)) for p in scheme.flip_pairs)) == pairs
        print("equal to scheme %s: %s" % (scheme.name, same))
        err_s = mirror_symmetry_error(mean, scheme.flip_permutation())
        print("scheme %s symmetry error: mean %.3f, max %.3f" % (scheme.name, 100 * err_s.mean(), 100 * err_s.max()))
    if args.nose and any("orientation" in s.attributes for s in samples):
        lo, hi = (int(v) for v in args.nose.split("-"))
        cands = [k for k in range(lo, hi + 1) if perm[k] == k]
        sens = yaw_sensitivity(samples, cands, perm)
        print("midline nose points, mean offset from the midline / eye distance by orientation:")
        for k, v in sens.items():
            print("    %d: %s" % (k, ", ".join("%s %+.3f" % kv for kv in v.items())))
        if all("leftward" in v and "rightward" in v for v in sens.values()):
            tip = max(sens, key=lambda k: sens[k]["rightward"] - sens[k]["leftward"])
            print("nose tip (largest yaw sensitivity): %d" % tip)
    return 0


if __name__ == "__main__":
    from lotr_gluon.cli import run_main
    sys.exit(run_main(main))
