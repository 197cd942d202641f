"""Summaries and plots of training runs from their ``log.jsonl`` (used by tools/compare_runs.py)."""
import os

import numpy as np

from . import markdown
from .trainer import read_log
from .vis import plot_training_runs

__all__ = ["summarise_run", "render_table", "plot_runs", "curve_behaviour"]


def curve_behaviour(val_nmes, baseline_nme=None, collapse_nme=0.15):
    """Label a validation-NME curve: 'collapsed' (stays far above the mean shape, > ``collapse_nme``),
    'at mean shape' (within 5% relative of the baseline), 'learning' (best below 95% of the baseline) or
    'above mean shape'."""
    if not val_nmes:
        return "no validation"
    best = min(val_nmes)
    if best > collapse_nme:
        return "collapsed"
    if baseline_nme:
        if best < 0.95 * baseline_nme:
            return "learning"
        if best <= 1.05 * baseline_nme:
            return "at mean shape"
    return "above mean shape"


def summarise_run(run_dir):
    """One dict per run: name, epochs, steps, last/best val NME, AUC, FR (fractions), mean-shape baseline
    NME, images/s (median epoch), seconds of training (sum of the epoch times), behaviour, and the last
    validation's prediction spread across faces next to the ground truth's (pixels); a figure a log does not
    record (older or hand-written logs) is None."""
    recs = read_log(os.path.join(run_dir, "log.jsonl"))
    val = [r for r in recs if r.get("type") == "val"]
    ep = [r for r in recs if r.get("type") == "epoch"]
    base = next((r for r in recs if r.get("type") == "mean_shape_baseline"), None)
    best = min(val, key=lambda r: r["nme"]) if val else None
    last = val[-1] if val else None
    ips = [r["images_per_s"] for r in ep if r.get("images_per_s") is not None]
    return {
        "run": os.path.basename(os.path.normpath(run_dir)),
        "epochs": ep[-1]["epoch"] if ep else 0,
        "steps": ep[-1]["step"] if ep else 0,
        "last_nme": last["nme"] if last else None,
        "best_nme": best["nme"] if best else None,
        "best_epoch": best["epoch"] if best else None,
        "best_auc": best.get("auc") if best else None,
        "best_fr": best.get("fr") if best else None,
        "baseline_nme": base["nme"] if base else None,
        "images_per_s": float(np.median(ips)) if ips else None,
        "train_seconds": float(sum(r.get("seconds", 0.0) for r in ep)),
        "behaviour": curve_behaviour([r["nme"] for r in val], base["nme"] if base else None),
        "last_spread_px": last.get("pred_spread_px") if last else None,
        "gt_spread_px": last.get("gt_spread_px") if last else None,
    }


def _pct(x):
    return "-" if x is None else "%.2f" % (100 * x)


def render_table(rows):
    head = ["run", "epochs", "steps", "val NME last (%)", "val NME best (%) @epoch", "AUC (%)", "FR (%)",
            "mean shape NME (%)", "img/s", "spread px (pred / gt)", "curve"]
    body = []
    for r in rows:
        spread = "-" if r.get("last_spread_px") is None else "%.2f / %.2f" % (r["last_spread_px"],
                                                                              r["gt_spread_px"])
        body.append([r["run"], "%d" % r["epochs"], "%d" % r["steps"], _pct(r["last_nme"]),
                     "%s @%s" % (_pct(r["best_nme"]), r["best_epoch"]), _pct(r["best_auc"]), _pct(r["best_fr"]),
                     _pct(r["baseline_nme"]), "-" if r["images_per_s"] is None else "%.1f" % r["images_per_s"],
                     spread, r["behaviour"]])
    return "\n".join(markdown.table(head, body))


def plot_runs(run_dirs, path):
    """Training loss per step and validation NME (%) per epoch of several runs, one line per run, with the mean
    shape's val NME (:func:`lotr_gluon.vis.plot_training_runs`)."""
    runs, base = [], None
    for run in run_dirs:
        recs = read_log(os.path.join(run, "log.jsonl"))
        tr = [(r["step"], r["loss"]) for r in recs if r.get("type") == "train"]
        va = [(r["epoch"], 100 * r["nme"]) for r in recs if r.get("type") == "val"]
        b = next((r for r in recs if r.get("type") == "mean_shape_baseline"), None)
        base = base or (b and 100 * b["nme"])
        runs.append((os.path.basename(os.path.normpath(run)), tuple(zip(*tr)) or ((), ()),
                     tuple(zip(*va)) or ((), ()), False))
    return plot_training_runs(runs, path, baseline=base, loss_xlabel="step")
