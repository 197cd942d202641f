"""Result records: what a number came from, small enough to commit.

A record is one JSON file written next to a run's outputs (``record.json`` by ``tools/test.py``): the metrics
with and without the flip test, the NME of every face, the alignment and backbone initialisation, the resolved
configuration, the command line, the code's commit and whether the work tree differed from it, the machine,
and the training it evaluates (epochs, seconds, best epoch). The documentation's numbers are rendered from
records kept under ``results/``.
"""
import os
import platform
import shlex
import subprocess
import sys
import time

import mxnet as mx
import yaml

from .compare import summarise_run
from .files import atomic_json
from .pretrained import initialisation
from .build import split_label

__all__ = ["code_state", "machine", "alignment", "training_of", "evaluation_record", "write_record", "predictor_line", "metrics_line",
           "baseline_line", "RECORD_FILE"]

RECORD_FILE = "record.json"
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _git(*args):
    try:
        out = subprocess.run(["git", "-C", _REPO] + list(args), capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def code_state():
    """``{"commit": sha or None, "dirty": bool or None}`` of the repository holding this package; ``dirty``: a
    tracked file differs from the commit (untracked files do not count)."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def machine():
    """CPU model, cores, MXNet's threads and GPUs, versions: what a timing or a run depends on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "gpus": mx.context.num_gpus(), "mxnet": mx.__version__, "python": platform.python_version()}


def alignment(cfg):
    """How faces were aligned: ``"ground-truth five points"``, ``"detections <file>"`` (``DATA.DETECTIONS``) or
    ``"detector <name> (cache <folder>)"`` (``DATA.ALIGN detector``)."""
    if cfg.DATA.DETECTIONS:
        return "detections %s" % cfg.DATA.DETECTIONS
    if cfg.DATA.ALIGN == "detector":
        return "detector %s (cache %s)" % (cfg.DATA.DETECTOR, cfg.DATA.DETECTIONS_CACHE)
    return "ground-truth five points"


def training_of(params):
    """The training that wrote ``params``, from the ``log.jsonl`` beside it (None when there is none): epochs,
    steps, seconds (sum of the epoch times), images/s (median epoch), the best val epoch and NME."""
    folder = os.path.dirname(os.path.abspath(params))
    if not os.path.isfile(os.path.join(folder, "log.jsonl")):
        return None
    s = summarise_run(folder)
    out = {"run_folder": folder, "epochs": s["epochs"], "steps": s["steps"], "train_seconds": s["train_seconds"],
           "images_per_s": s["images_per_s"], "best_epoch": s["best_epoch"], "best_val_nme": s["best_nme"]}
    cfg_file = os.path.join(folder, "config.yaml")
    if os.path.isfile(cfg_file):  # how the training faces were aligned and jittered (older runs: no such keys)
        with open(cfg_file) as f:
            run_cfg = yaml.safe_load(f) or {}
        data, aug = run_cfg.get("DATA") or {}, run_cfg.get("AUG") or {}
        out["alignment"] = ("detections %s" % data["DETECTIONS"] if data.get("DETECTIONS")
                            else "detector %s" % data.get("DETECTOR", "yunet") if data.get("ALIGN") == "detector"
                            else "ground-truth five points")
        out["align_noise_std"] = list(aug.get("ALIGN_NOISE_STD") or [0.0, 0.0, 0.0])
        out["rotation_deg"] = aug.get("ROTATION")
    return out


def evaluation_record(cfg, params, runs, names, baseline=None, argv=None):
    """The record of an evaluation of ``params`` under ``cfg``.

    Parameters
    ----------
    runs : dict
        ``{flip (bool): (metrics dict, per-face NMEs (M,))}``.
    names : list of str
        The M faces, in the order of the NMEs.
    baseline : dict, optional
        The mean-shape metrics under the same alignment.
    """
    rec = {"kind": "evaluation", "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "command": " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv)),
           "code": code_state(), "machine": machine(), "config_name": cfg.CFG_NAME,
           "data": {"name": cfg.DATA.NAME, "root": cfg.DATA.ROOT, "split": cfg.DATA.TEST_SPLIT,
                    "label": split_label(cfg, cfg.DATA.TEST_SPLIT, len(names))},
           "alignment": alignment(cfg), "init": initialisation(cfg.MODEL.BACKBONE),
           "params": os.path.abspath(params), "training": training_of(params),
           "metrics": {}, "per_face_nme": {}, "mean_shape_baseline": baseline, "config": cfg.dump()}
    for flip, (metrics, nmes) in sorted(runs.items()):
        key = "flip" if flip else "no_flip"
        rec["metrics"][key] = metrics
        rec["per_face_nme"][key] = {n: round(float(v), 6) for n, v in zip(names, nmes)}
    return rec


def write_record(record, out_dir):
    """``out_dir/record.json`` (atomically); returns its path."""
    path = os.path.join(out_dir, RECORD_FILE)
    atomic_json(record, path)
    return path


def metrics_line(metrics, nme_interval, auc_interval, threshold, flip):
    """The line ``tools/test.py`` prints for an evaluation (and the documentation quotes from a record):
    ``NME 2.59% [2.37, 2.76]  AUC@0.08 67.66% [...]  FR@0.08 0.00%  (100 images, flip=False; 95% bootstrap over
    faces)``.

    Parameters
    ----------
    metrics : dict
        ``nme``, ``auc``, ``fr`` (fractions) and ``num_images``.
    nme_interval, auc_interval : sequence of float
        ``(lo, hi)`` fractions (:func:`lotr_gluon.tables.stats.bootstrap_interval`).
    threshold : float
        The failure / AUC threshold.
    flip : bool
        Whether the flip test was on.
    """
    return "NME %.2f%% [%.2f, %.2f]  AUC@%.2f %.2f%% [%.2f, %.2f]  FR@%.2f %.2f%%  (%d images, flip=%s; 95%% " \
        "bootstrap over faces)" % (100 * metrics["nme"], 100 * nme_interval[0], 100 * nme_interval[1], threshold,
                                   100 * metrics["auc"], 100 * auc_interval[0], 100 * auc_interval[1], threshold,
                                   100 * metrics["fr"], metrics["num_images"], bool(flip))


def predictor_line(pm, threshold):
    """The Predictor line ``tools/test.py --predictor`` prints: its NME with the interval, AUC, FR, misses and
    the largest per-face difference from the evaluation (``pm``: the ``predictor`` entry of metrics.json)."""
    return ("NME %.2f%% [%.2f, %.2f]  AUC@%.2f %.2f%%  FR@%.2f %.2f%%  (%s on the whole photos, end to end; %d faces "
            "missed; largest per-face difference from the line above %.4f points)" % (
                100 * pm["nme"], 100 * pm["nme_interval"][0], 100 * pm["nme_interval"][1], threshold,
                100 * pm["auc"], threshold, 100 * pm["fr"], pm["detector"], pm["detector_misses"],
                100 * pm["max_face_difference"]))


def baseline_line(baseline, threshold):
    """The mean-shape line ``tools/test.py`` prints: ``NME 4.66%  AUC@0.08 42.74%  FR@0.08 4.00%``."""
    return "NME %.2f%%  AUC@%.2f %.2f%%  FR@%.2f %.2f%%" % (100 * baseline["nme"], threshold, 100 * baseline["auc"],
                                                           threshold, 100 * baseline["fr"])
