"""Noise and agreement of a reproduced table (numpy, scipy): bootstrap intervals over faces, paired differences,
and how well our ordering of the cells follows the paper's.

**Bootstrap interval.** The val faces of a cell are resampled with replacement ``n_boot`` times (default 2000,
fixed ``seed``; the resampled index sets depend only on the number of faces and the seed, so every cell evaluated
on the same faces uses the *same* resamples). The statistic (NME = mean per-face NME; AUC, FR from
:func:`lotr_gluon.metrics.auc` / :func:`~lotr_gluon.metrics.failure_rate` of the resampled per-face NMEs at the
table's threshold) is recomputed on every resample; the 95% interval is the 2.5th and 97.5th percentile
(percentile bootstrap).

**Agreement with the paper** (:func:`agreement`). Over the pairs of cells that have both numbers and that the
paper *orders* (paper values differ), each pair is

* a **tie** when our difference is within noise: the 95% paired-bootstrap interval of ``ours(a) - ours(b)``
  (the same resampled faces for both cells) contains 0. Without per-face NMEs for both cells on the same faces
  (timing, size, parameters, GFLOPs: no face noise) a tie is an equal value at the column's printed decimals;
* otherwise it **agrees** when we order the two cells as the paper does, else it **disagrees**.

A non-finite number (the paper's NaN in LOTR Table VII, a run of ours that diverged or collapsed to a non-finite
value) ranks **last, worse than every finite value** (for AUC below every AUC, for NME above every NME). Two
non-finite values are equal: the paper does not order two of its NaNs (the pair is left out), and two of our
non-finite cells are a tie. A finite cell against a non-finite one is never a tie. Cells without a number (not
run yet, or a ``-`` of the paper) are left out; their pairs are counted as ``missing``.

**Kendall's tau** (tau-b, ties of either side corrected) compares our values with the paper's over the same
cells, with the same non-finite rule; point values, no noise. ``+1``: the same order, ``-1``: reversed.
"""
import math

import numpy as np
from scipy.stats import kendalltau

from .. import metrics as M

__all__ = ["N_BOOT", "SEED", "LEVEL", "direction", "stat_of_key", "bootstrap_indices", "bootstrap_stats",
           "bootstrap_interval", "interval", "paired_difference", "kendall_tau", "agreement", "format_agreement"]

N_BOOT = 2000
SEED = 0
LEVEL = 0.95


def direction(key):
    """+1 when higher is better (AUC), -1 when lower is better (NME, FR, ms, MB, parameters, GFLOPs).

    Raises
    ------
    KeyError
        A metric key of unknown direction.
    """
    k = str(key).lower()
    if k.startswith("auc"):
        return 1
    if k.startswith(("nme", "fr", "ms", "size", "params", "gflops")):
        return -1
    raise KeyError("no known direction (higher or lower is better) for metric %r" % (key,))


def stat_of_key(key):
    """``'auc'`` / ``'nme'`` / ``'fr'`` for a metric key computed from per-face NMEs (``auc_flip``, ``nme``,
    ``fr_noflip``), else None (timing, size...)."""
    base = str(key).split("_")[0]
    rest = str(key)[len(base):]
    return base if base in ("auc", "nme", "fr") and rest in ("", "_flip", "_noflip") else None


def bootstrap_indices(n, n_boot=N_BOOT, seed=SEED):
    """``(n_boot, n)`` int array of face indices drawn with replacement (numpy ``default_rng(seed)``).

    Raises
    ------
    ValueError
        ``n < 1`` or ``n_boot < 1``.
    """
    if n < 1 or n_boot < 1:
        raise ValueError("bootstrap needs n >= 1 faces and n_boot >= 1 resamples, got %d and %d" % (n, n_boot))
    return np.random.default_rng(seed).integers(0, n, size=(int(n_boot), int(n)))


def _stat(nmes, stat, threshold):
    if stat == "nme":
        return float(np.mean(nmes))
    if stat == "auc":
        return M.auc(nmes, threshold)
    if stat == "fr":
        return M.failure_rate(nmes, threshold)
    raise ValueError("unknown statistic %r (nme, auc, fr)" % (stat,))


def bootstrap_stats(nmes, stat, threshold=None, n_boot=N_BOOT, seed=SEED):
    """The statistic on every resample of the faces.

    Parameters
    ----------
    nmes : array_like, shape (M,)
        Per-face NMEs (fractions), finite.
    stat : {'nme', 'auc', 'fr'}
        Mean NME, or AUC / FR of :mod:`lotr_gluon.metrics` at ``threshold``.
    threshold : float
        The table's AUC / FR threshold (fraction, e.g. 0.08); needed for 'auc' and 'fr'.

    Returns
    -------
    ndarray, float64, shape (n_boot,)
        Fractions (not percent).

    Raises
    ------
    ValueError
        Empty or non-finite ``nmes``, a missing threshold, an unknown ``stat``.
    """
    x = np.asarray(nmes, dtype=np.float64).reshape(-1)
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError("bootstrap needs finite per-face NMEs (%d given, %d non-finite)"
                         % (x.size, int(np.sum(~np.isfinite(x)))))
    if stat in ("auc", "fr") and threshold is None:
        raise ValueError("%s needs the table's threshold" % stat)
    idx = bootstrap_indices(x.size, n_boot, seed)
    if stat == "nme":
        return x[idx].mean(axis=1)
    return np.array([_stat(x[i], stat, threshold) for i in idx])


def interval(samples, level=LEVEL):
    """Percentile interval ``(lo, hi)`` of bootstrap ``samples`` at ``level`` (0.95: 2.5th and 97.5th)."""
    a = (1.0 - level) / 2.0
    lo, hi = np.percentile(np.asarray(samples, dtype=np.float64), [100 * a, 100 * (1 - a)])
    return float(lo), float(hi)


def bootstrap_interval(nmes, stat, threshold=None, n_boot=N_BOOT, seed=SEED, level=LEVEL):
    """``(value, lo, hi)``: the statistic on all faces and its percentile bootstrap interval (fractions).

    All faces equal give a zero-width interval; the same seed gives the same interval."""
    x = np.asarray(nmes, dtype=np.float64).reshape(-1)
    s = bootstrap_stats(x, stat, threshold, n_boot, seed)
    lo, hi = interval(s, level)
    return _stat(x, stat, threshold), lo, hi


def paired_difference(nmes_a, nmes_b, stat, threshold=None, n_boot=N_BOOT, seed=SEED, level=LEVEL):
    """``(diff, lo, hi)`` of ``stat(a) - stat(b)`` over the same faces (face i of ``a`` is face i of ``b``),
    with the paired percentile bootstrap interval: both cells resampled with the same face indices.

    Raises
    ------
    ValueError
        Different numbers of faces, or as :func:`bootstrap_stats`.
    """
    a = np.asarray(nmes_a, dtype=np.float64).reshape(-1)
    b = np.asarray(nmes_b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError("paired bootstrap needs the same faces: %d vs %d NMEs" % (a.size, b.size))
    d = bootstrap_stats(a, stat, threshold, n_boot, seed) - bootstrap_stats(b, stat, threshold, n_boot, seed)
    lo, hi = interval(d, level)
    return _stat(a, stat, threshold) - _stat(b, stat, threshold), lo, hi


# ------------------------------------------------------------------------------------------ orderings
def _finite(x):
    return x is not None and isinstance(x, (int, float, np.floating, np.integer)) and math.isfinite(float(x))


def _present(x):
    """A number (NaN included: a result); None is 'no number'."""
    return x is not None and isinstance(x, (int, float, np.floating, np.integer)) and not isinstance(x, bool)


def _order(x, y, sign):
    """+1 when x is better than y, -1 when worse, 0 when equal; non-finite is worst, two non-finite equal."""
    fx, fy = _finite(x), _finite(y)
    if not fx and not fy:
        return 0
    if not fx:
        return -1
    if not fy:
        return 1
    d = (float(x) - float(y)) * sign
    return (d > 0) - (d < 0)


def _rank_value(x, sign):
    """``sign * x`` for a finite number, -inf (worst) for a non-finite one: higher is better on this scale."""
    return sign * float(x) if _finite(x) else -math.inf


def kendall_tau(ours, paper, sign=1, pairs=None):
    """Kendall's tau-b between two lists of values (None entries dropped; non-finite = worst, see module).

    Parameters
    ----------
    ours, paper : sequence of float or None
        Values of the same cells, in the same order.
    sign : {+1, -1}
        +1 when higher is better (only matters for non-finite values).
    pairs : iterable of (i, j), optional
        The pairs to count (default: all pairs of cells having both values); e.g. pairs within a column.

    Returns
    -------
    float
        tau-b in [-1, 1]; NaN with fewer than two cells or when either side has every pair tied.

    Notes
    -----
    Over all pairs this is ``scipy.stats.kendalltau(..., variant='b')``; a subset of ``pairs`` is counted here
    (scipy counts every pair), with the same tau-b formula.
    """
    keep = [i for i in range(len(ours)) if _present(ours[i]) and _present(paper[i])]
    if pairs is None:
        if len(keep) < 2:
            return float("nan")
        x = [_rank_value(ours[i], sign) for i in keep]
        y = [_rank_value(paper[i], sign) for i in keep]
        return float(kendalltau(x, y, variant="b").statistic)
    ks = set(keep)
    pairs = [(i, j) for i, j in pairs if i in ks and j in ks]
    conc = disc = tx = ty = 0
    for i, j in pairs:
        o, p = _order(ours[i], ours[j], sign), _order(paper[i], paper[j], sign)
        if o == 0:
            tx += 1
        if p == 0:
            ty += 1
        if o and p:
            conc += o == p
            disc += o != p
    n = len(pairs)
    den = math.sqrt(float(n - tx) * float(n - ty))
    return (conc - disc) / den if den > 0 else float("nan")


def agreement(cells, key, sign=None, decimals=2, n_boot=N_BOOT, seed=SEED, level=LEVEL):
    """Compare our ordering of ``cells`` with the paper's for one metric (rules in the module docstring).

    Parameters
    ----------
    cells : list of dict
        One per cell: ``name``, ``ours`` and ``paper`` (numbers in the table's units, None if absent, NaN/inf for
        non-finite), and optionally ``nmes`` (per-face NMEs, fractions, for ``key``'s evaluation), ``faces``
        (face names, same order) and ``threshold`` (fraction).
    key : str
        Metric key (``auc``, ``auc_flip``, ``ms_noflip``...): decides the direction and whether face noise applies.
    sign : {+1, -1}, optional
        Default :func:`direction` of ``key``.
    decimals : int
        Printed decimals of the column: the tie rule without face noise.

    Returns
    -------
    dict
        ``key``, ``ordered`` (pairs the paper orders with both numbers present), ``agree``, ``disagree``, ``tie``,
        ``missing`` (pairs the paper orders or might order where a number is absent), ``tau`` (Kendall tau-b, NaN
        if undefined), ``n_cells``, ``pairs`` (one dict per ordered pair: ``a``, ``b`` with ``a`` better in the
        paper, ``verdict``, ``ours_diff`` = ours(a) - ours(b), ``ci`` of that difference or None, ``rule``).
    """
    sign = direction(key) if sign is None else sign
    stat = stat_of_key(key)
    boot = {}

    def samples(c):
        if c["name"] not in boot:
            nm = c.get("nmes")
            ok = (stat is not None and nm is not None and len(nm) > 0 and c.get("threshold") is not None
                  and np.all(np.isfinite(np.asarray(nm, dtype=np.float64))))
            boot[c["name"]] = (100.0 * bootstrap_stats(nm, stat, c.get("threshold"), n_boot, seed)) if ok else None
        return boot[c["name"]]

    out = {"key": key, "ordered": 0, "agree": 0, "disagree": 0, "tie": 0, "missing": 0, "pairs": [],
           "n_cells": 0}
    have = [c for c in cells if _present(c.get("ours")) and _present(c.get("paper"))]
    out["n_cells"] = len(have)
    for i in range(len(cells)):
        for j in range(i + 1, len(cells)):
            a, b = cells[i], cells[j]
            if not (_present(a.get("ours")) and _present(a.get("paper")) and _present(b.get("ours"))
                    and _present(b.get("paper"))):
                pa, pb = a.get("paper"), b.get("paper")
                if not (_present(pa) and _present(pb) and _order(pa, pb, sign) == 0):
                    out["missing"] += 1
                continue
            p = _order(a["paper"], b["paper"], sign)
            if p == 0:
                continue
            if p < 0:
                a, b = b, a  # a is the better one in the paper
            o = _order(a["ours"], b["ours"], sign)
            diff = (float(a["ours"]) - float(b["ours"])) if _finite(a["ours"]) and _finite(b["ours"]) else None
            ci, rule = None, None
            if not _finite(a["ours"]) or not _finite(b["ours"]):
                rule = "non-finite ranks last"
                verdict = "tie" if o == 0 else ("agree" if o > 0 else "disagree")
            else:
                sa, sb = samples(a), samples(b)
                same_faces = (sa is not None and sb is not None and len(a["nmes"]) == len(b["nmes"])
                              and list(a.get("faces") or []) == list(b.get("faces") or []))
                if same_faces:
                    ci = interval(sa - sb, level)
                    rule = "paired bootstrap %d%%" % round(100 * level)
                    tie = ci[0] <= 0.0 <= ci[1]
                else:
                    rule = "equal at %d decimals" % decimals
                    tie = round(float(a["ours"]), decimals) == round(float(b["ours"]), decimals)
                verdict = "tie" if tie else ("agree" if o > 0 else "disagree")
            out["ordered"] += 1
            out[verdict] += 1
            out["pairs"].append({"a": a["name"], "b": b["name"], "verdict": verdict, "ours_diff": diff,
                                 "ci": list(ci) if ci else None, "rule": rule})
    names = [c["name"] for c in cells]
    out["tau"] = kendall_tau([c.get("ours") for c in cells], [c.get("paper") for c in cells], sign)
    out["cells"] = names
    return out


def format_agreement(label, ag, note=""):
    """``'LOTR Table VI LOTR-M, AUC: 7 of 10 pairs agree, 1 disagrees, 2 ties; Kendall tau 0.60'`` (``note`` and
    the number of pairs lacking a number of ours or of the paper in parentheses)."""
    tau = ag.get("tau")
    extra = [note] if note else []
    if ag.get("missing"):
        extra.append("%d pair%s without both numbers" % (ag["missing"], "" if ag["missing"] == 1 else "s"))
    if not ag["ordered"]:
        return "%s: no pair of cells with both numbers that the paper orders%s" % (
            label, (" (%s)" % "; ".join(extra)) if extra else "")
    s = "%s: %d of %d pair%s agree, %d disagree%s, %d tie%s; Kendall tau %s" % (
        label, ag["agree"], ag["ordered"], "" if ag["ordered"] == 1 else "s", ag["disagree"],
        "s" if ag["disagree"] == 1 else "", ag["tie"], "" if ag["tie"] == 1 else "s",
        "%.2f" % tau if tau is not None and math.isfinite(tau) else "n/a")
    return s + ((" (%s)" % "; ".join(extra)) if extra else "")
