"""Train and evaluate the cells of a table, with caching, resume and reuse.

Layout (``out_root`` = ``output/tables`` by default)::

    <out_root>/<paper>-<table>/<cell>/      the cell's run folder (Trainer output: config.yaml, log.jsonl,
                                            checkpoint_last.json, model_best.params, loss_curve.png, ...)
        cell.json                           train hash, config, overrides, whether training finished
        metrics.json                        cell hash, values in the paper's units, full metrics, timing
        per_image.csv / per_image.json      NME of every test face (with / without flip)
        record.json                         the committable result record (:mod:`lotr_gluon.tables.records`)
    <out_root>/<paper>-<table>/.stash/      runs of other configurations of a cell, kept by train hash

* **done**: ``metrics.json`` exists, its ``cell_hash`` is the cell's current hash and the training run's
  ``config.yaml`` (if any) gives the cell's configuration: skipped on a rerun.
* **partial**: the folder holds a run of the same training configuration that has not finished
  (``checkpoint_last.json``): continued with ``Trainer.fit(resume=True)``; or a finished training that
  was not evaluated yet.
* **missing**: nothing usable. A run of a *different* configuration of the cell is moved to ``.stash/``
  (and moved back when that configuration is asked for again); a finished run with the same training hash
  anywhere under ``out_root`` (another table's cell) is reused instead of training again.

The hashes come from the keys whose value differs from the defaults (:func:`canonical_config`), so a new
option with a default that changes nothing changes no hash; keys that do not change the result (output folder,
device list, data-loader workers, logging period, test batch size: :data:`VOLATILE_KEYS`) are left out. A run
folder holds the training of a cell when its ``config.yaml``, merged over the current defaults, gives the
cell's canonical configuration (:func:`run_config_matches`); ``cell.json``'s train hash is used only
before the trainer wrote ``config.yaml``.
"""
import fnmatch
import glob
import inspect
import json
import math
import os
import shutil
import time
import hashlib
import traceback
from dataclasses import dataclass, field
from typing import List, Optional

from ..benchmark import benchmark_model
from ..build import inference_config
from ..config import get_defaults, load_config
from ..errors import LotrError
from ..evaluate import evaluate_weights
from ..files import atomic_json, read_json
from ..flops import model_info
from ..runlock import LOCK_FILE, RunFolderBusy, run_lock
from ..trainer import Trainer, TrainingDiverged
from .records import write_cell_record
from .spec import benchmark_settings, parse_scale, scale_overrides

__all__ = ["ResolvedCell", "resolve_cells", "cell_scale", "select_cells", "config_hash", "canonical_config",
           "run_config_matches", "cell_status",
           "ensure_trained", "run_cell", "run_table", "evaluate_cell", "cell_values", "load_benchmark", "run_benchmark",
           "other_cpu_share",
           "experiments_dir", "table_dir", "VOLATILE_KEYS"]

#: config keys that do not change a result, left out of the hashes
VOLATILE_KEYS = ("CFG_NAME", "OUTPUT_DIR", "DEVICES", "NUM_CPU_CONTEXTS", "KVSTORE", "WORKERS", "TRAIN.LOG_EVERY",
                 "TRAIN.HYBRIDIZE", "TEST.BATCH_SIZE", "TEST.GRID_IMAGES", "DATA.CACHE",
                 # reliability guards: they stop a run or reject bad data, never change a finished run's numbers
                 "DATA.OUTSIDE_MARGIN", "TRAIN.DIVERGENCE_FACTOR", "TRAIN.DIVERGENCE_WINDOW",
                 "TRAIN.DIVERGENCE_VAL_FACTOR")
#: bump when the content of metrics.json changes meaning
VALUES_VERSION = 1
_RUN_FILES_KEEP = ("model_best.params", "model_best.json", "log.jsonl", "config.yaml", "loss_curve.png",
                   "val_curve.png", "checkpoint_last.json")


def experiments_dir():
    """``<repo>/experiments`` (next to the ``lotr_gluon`` package)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "experiments")


def table_dir(spec, out_root="output/tables"):
    return os.path.join(out_root, spec.key)


# ------------------------------------------------------------------------------------------ hashing
def _flat_dict(cfg):
    """``{dotted key: value}`` of a CfgNode, values as YAML gives them back (lists, floats, ...)."""
    import yaml
    out = {}

    def walk(node, prefix):
        for k, v in node.items():
            if isinstance(v, dict):
                walk(v, prefix + k + ".")
            else:
                out[prefix + k] = v
    walk(yaml.safe_load(cfg.dump()), "")
    return out


_DEFAULTS = []


def _flat_defaults():
    if not _DEFAULTS:
        _DEFAULTS.append(_flat_dict(get_defaults()))
    return _DEFAULTS[0]


def canonical_config(cfg, drop=VOLATILE_KEYS):
    """The training configuration that identifies a cell: ``{dotted key: value}`` of the keys whose value
    differs from the defaults (:func:`lotr_gluon.config.get_defaults`), without the ``drop`` keys
    (:data:`VOLATILE_KEYS`). A new key holding its default is absent, so adding an option with a default
    that changes nothing changes no hash."""
    ref = _flat_defaults()
    return {k: v for k, v in _flat_dict(cfg).items() if k not in drop and (k not in ref or ref[k] != v)}


def _digest(obj):
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def config_hash(cfg):
    """12 hex digits identifying a training configuration (of :func:`canonical_config`)."""
    return _digest(canonical_config(cfg))


def run_config_matches(run_dir, cfg):
    """Whether the run in ``run_dir`` was trained with ``cfg``: the canonical configuration of its
    ``config.yaml`` (merged over the current defaults: :func:`lotr_gluon.config.load_config`) equals
    ``cfg``'s.

    Returns
    -------
    bool or None
        None when the folder has no ``config.yaml`` (the trainer has not started); False when it cannot be
        read as a configuration (e.g. a key removed or moved since).
    """
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.isfile(path):
        return None
    try:
        run_cfg = load_config(path)
    except LotrError:
        return False
    return canonical_config(run_cfg) == canonical_config(cfg)


def _same_training(rc, d, meta):
    """Whether folder ``d`` (its ``cell.json`` read as ``meta``) holds a run of ``rc``'s training
    configuration: the train hash of cell.json is the cell's and its config.yaml, once written, gives the cell's
    configuration (:func:`run_config_matches`; a changed default keeps the hash but not the config)."""
    return meta is not None and meta.get("train_hash") == rc.train_hash and run_config_matches(d, rc.cfg) is not False


# ------------------------------------------------------------------------------------------ cells
@dataclass
class ResolvedCell:
    """A cell with its configuration resolved for a dataset folder, a scale and extra overrides."""
    spec: object
    cell: object
    cfg_file: str
    opts: List[str]                # all training overrides, in order: scale, cell, user
    cfg: object                    # training config (frozen)
    eval_cfg: object               # config for evaluation / timing (eval_overrides on top)
    train_hash: str
    cell_hash: str
    out_dir: str
    source: Optional["ResolvedCell"] = None   # cell whose weights are evaluated (train_from)
    bench: dict = field(default_factory=dict)  # timing settings (runs, warmup) of benchmark tables
    scale_opts: List[str] = field(default_factory=list)
    table_dir: str = ""
    scale: str = "paper"                       # this cell's scale (the table's, or a --cell-scale of its own)

    @property
    def name(self):
        return self.cell.name

    @property
    def train_dir(self):
        return self.source.out_dir if self.source is not None else self.out_dir

    @property
    def train_cell(self):
        return self.source if self.source is not None else self


def _matches(name, pattern):
    """A cell name matches a glob (``lotr_m/*``) or lies under it (``lotr_m`` covers ``lotr_m/...``)."""
    return fnmatch.fnmatchcase(name, pattern) or name.startswith(pattern.rstrip("/") + "/")


def cell_scale(name, scale, cell_scales=()):
    """The scale of the cell ``name``: that of the first ``(glob, scale)`` of ``cell_scales`` it matches, else
    the table's ``scale``."""
    for pattern, s in cell_scales:
        if _matches(name, pattern):
            return s
    return scale


def resolve_cells(spec, data="datatang", scale="paper", opts=(), out_root="output/tables", exp_dir=None,
                  cell_scales=()):
    """Every cell of ``spec`` resolved for ``experiments/<data>/``, ``scale`` and the extra ``opts``.

    ``cell_scales``: ``(glob, scale)`` pairs giving some cells a schedule of their own (e.g. the ResNet50 rows of
    Table V at ``epochs=12`` while the others train at ``paper``); the first matching pair counts. A cell's
    scale is part of its training configuration (its hash): the report marks cells whose scale is not the
    table's.

    Raises
    ------
    FileNotFoundError
        A config file the table needs is not in ``experiments/<data>/``.
    ValueError
        Bad scale, a ``cell_scales`` glob that matches no cell (the message lists the cells), or the table is
        not meant for this dataset folder (LOTR Table II needs WFLW).
    """
    parse_scale(scale)
    cell_scales = [tuple(cs) for cs in cell_scales]
    for pattern, s in cell_scales:
        parse_scale(s)
        if not any(_matches(c.name, pattern) for c in spec.cells):
            raise ValueError("--cell-scale %r matches no cell; cells: %s"
                             % (pattern, ", ".join(c.name for c in spec.cells)))
    exp_dir = exp_dir or experiments_dir()
    if spec.data is not None and data not in spec.data:
        raise ValueError("%s is for the dataset folder(s) %s, not %r. %s" % (
            spec.label, ", ".join(spec.data), data, spec.note))
    folder = os.path.join(exp_dir, data)
    if not os.path.isdir(folder):
        raise FileNotFoundError("no experiment folder %s (choose --data among: %s)" % (
            folder, ", ".join(sorted(d for d in os.listdir(exp_dir) if os.path.isdir(os.path.join(exp_dir, d))))))
    opts = list(opts or [])
    tdir = table_dir(spec, out_root)
    resolved = {}
    for cell in spec.cells:
        cfg_file = os.path.join(folder, cell.cfg)
        if not os.path.isfile(cfg_file):
            raise FileNotFoundError("%s cell %s needs %s" % (spec.label, cell.name, cfg_file))
        base = load_config(cfg_file)
        cscale = cell_scale(cell.name, scale, cell_scales)
        bench = benchmark_settings(cscale) if spec.benchmark else {}
        sopts = scale_overrides(cscale, base)
        train_opts = sopts + list(cell.overrides) + opts
        cfg = load_config(cfg_file, train_opts)
        eval_cfg = load_config(cfg_file, train_opts + list(cell.eval_overrides)) if cell.eval_overrides else cfg
        th = config_hash(cfg)
        ch = _digest({"train": th, "eval": canonical_config(eval_cfg), "flips": list(spec.flips),
                      "primary_flip": spec.primary_flip, "benchmark": bench, "model_info": spec.model_info,
                      "version": VALUES_VERSION})
        resolved[cell.name] = ResolvedCell(spec, cell, cfg_file, train_opts, cfg, eval_cfg, th, ch,
                                           os.path.join(tdir, *cell.name.split("/")), bench=bench,
                                           scale_opts=sopts, table_dir=tdir, scale=cscale)
    for rc in resolved.values():
        if rc.cell.train_from:
            rc.source = resolved[rc.cell.train_from]
    return [resolved[c.name] for c in spec.cells]


def select_cells(resolved, patterns):
    """The cells whose name matches one of the glob ``patterns`` (``lotr_m/*``) or lies under it
    (``lotr_m`` selects ``lotr_m/...``).

    Raises
    ------
    ValueError
        A pattern that matches no cell; the message lists the cell names.
    """
    if not patterns:
        return list(resolved)
    out = []
    for pat in patterns:
        hit = [rc for rc in resolved if _matches(rc.name, pat)]
        if not hit:
            raise ValueError("--cells %r matches no cell; cells: %s" % (pat, ", ".join(rc.name for rc in resolved)))
        out += [rc for rc in hit if rc not in out]
    return [rc for rc in resolved if rc in out]


# ------------------------------------------------------------------------------------------ status

def _train_state(rc):
    """('trained' | 'partial' | 'other' | 'none', detail) of the training folder of a cell."""
    d = rc.train_cell.out_dir
    meta = read_json(os.path.join(d, "cell.json"))
    ckpt = read_json(os.path.join(d, "checkpoint_last.json"))
    if meta is None:
        return ("other", "files of an unknown run") if ckpt or os.path.isfile(os.path.join(d, "model_best.params")) \
            else ("none", "")
    if not _same_training(rc.train_cell, d, meta):
        return "other", "run of another configuration (%s)" % meta.get("train_hash")
    if meta.get("trained") and os.path.isfile(os.path.join(d, "model_best.params")):
        return "trained", "trained"
    if ckpt:
        return "partial", "epoch %s/%s, step %s" % (ckpt.get("epoch"), rc.train_cell.cfg.TRAIN.EPOCHS, ckpt.get("step"))
    return "none", ""


#: ``cell_status`` details of a cell whose own run waits in ``.stash/`` (the runner says "restoring" for these)
STASHED_RESULTS = "results of this configuration in .stash/, restored when run"
STASHED_RUN = "a run of this configuration in .stash/, restored when run"


def cell_status(rc):
    """``(status, detail)``: status is 'done', 'partial' or 'missing' (see the module docstring)."""
    m = read_json(os.path.join(rc.out_dir, "metrics.json"))
    # the hash counts only non-default keys: after a default changed, the run's config.yaml tells them apart
    if m is not None and m.get("cell_hash") == rc.cell_hash \
            and run_config_matches(rc.train_dir, rc.train_cell.cfg) is not False:
        return "done", "diverged" if m.get("diverged") else ""
    state, detail = _train_state(rc)
    if state == "trained":
        return "partial", "trained, not evaluated" if rc.source is None else "weights of %s ready" % rc.source.name
    if state == "partial":
        return "partial", detail + (" (of %s)" % rc.source.name if rc.source is not None else "")
    if rc.source is None:
        stash = os.path.join(rc.table_dir, ".stash", "%s-%s" % (rc.name.replace("/", "__"), rc.train_hash))
        sm = read_json(os.path.join(stash, "metrics.json"))
        if sm is not None and sm.get("cell_hash") == rc.cell_hash:
            return "partial", STASHED_RESULTS
        if os.path.isfile(os.path.join(stash, "cell.json")):
            return "partial", STASHED_RUN
    if m is not None or state == "other":
        return "missing", "results of another configuration there (moved to .stash/ when run)"
    return "missing", ""


# ------------------------------------------------------------------------------------------ stash / reuse
def _table_root(rc, out_root):
    return table_dir(rc.spec, out_root)


def _files(d):
    """The run's files in ``d`` (the lock file stays where it is: it is held while a run uses the folder)."""
    return [f for f in os.listdir(d) if f != LOCK_FILE and os.path.isfile(os.path.join(d, f))] \
        if os.path.isdir(d) else []


def _stash_dir(rc, out_root, train_hash):
    return os.path.join(rc.table_dir or _table_root(rc, out_root), ".stash", "%s-%s" % (rc.name.replace("/", "__"), train_hash))


def _prepare_dir(rc, out_root, log):
    """Move a run of another configuration to .stash/; bring back a stashed run of this one."""
    d = rc.out_dir
    os.makedirs(d, exist_ok=True)
    meta_path = os.path.join(d, "cell.json")
    meta = read_json(meta_path)
    files = _files(d)
    if files and not _same_training(rc, d, meta):
        old = (meta or {}).get("train_hash") or "unknown-%d" % int(time.time())
        if old == rc.train_hash:  # same hash, other config.yaml (a default changed since): keep both apart
            old = "%s-other-%d" % (old, int(time.time()))
        dst = _stash_dir(rc, out_root, old)
        os.makedirs(dst, exist_ok=True)
        for f in files:
            os.replace(os.path.join(d, f), os.path.join(dst, f))
        log("    moved a run of another configuration (%s) to %s" % (old, dst))
    if not _files(d):
        src = _stash_dir(rc, out_root, rc.train_hash)
        if os.path.isdir(src) and run_config_matches(src, rc.cfg) is not False:
            for f in _files(src):
                os.replace(os.path.join(src, f), os.path.join(d, f))
            shutil.rmtree(src, ignore_errors=True)
            log("    restored the stashed run of this configuration from %s" % src)


def _find_reusable(rc, out_root):
    """A finished training with the same train hash elsewhere under ``out_root`` (another table's cell)."""
    for path in glob.glob(os.path.join(out_root, "**", "cell.json"), recursive=True):
        d = os.path.dirname(path)
        if os.path.abspath(d) == os.path.abspath(rc.out_dir) or "%s.stash%s" % (os.sep, os.sep) in d + os.sep:
            continue
        meta = read_json(path)
        if meta and meta.get("trained") and os.path.isfile(os.path.join(d, "model_best.params")) \
                and _same_training(rc, d, meta):
            return d
    return None


# ------------------------------------------------------------------------------------------ training
def _default_trainer():
    return Trainer


def ensure_trained(rc, out_root="output/tables", trainer_cls=None, progress=True, log=print, reuse=True,
                   keep_checkpoints=False):
    """Train the cell (or resume it, or reuse an identical finished run); returns the folder with its
    ``model_best.params``. Raises what the trainer raises (e.g. :class:`lotr_gluon.trainer.TrainingDiverged`)."""
    rc = rc.train_cell
    _prepare_dir(rc, out_root, log)
    d = rc.out_dir
    meta_path = os.path.join(d, "cell.json")
    meta = read_json(meta_path)
    if meta and meta.get("train_hash") == rc.train_hash and meta.get("trained") \
            and os.path.isfile(os.path.join(d, "model_best.params")):
        return d
    base = {"cell": rc.name, "table": rc.spec.key, "train_hash": rc.train_hash, "cfg_file": rc.cfg_file,
            "overrides": rc.opts, "trained": False}
    if reuse and not (meta and meta.get("train_hash") == rc.train_hash):
        src = _find_reusable(rc, out_root)
        if src:
            for f in _RUN_FILES_KEEP:
                if os.path.isfile(os.path.join(src, f)):
                    shutil.copy2(os.path.join(src, f), os.path.join(d, f))
            atomic_json(dict(base, trained=True, reused_from=src, finished=time.time()), meta_path)
            log("    reused the finished run %s (same training configuration)" % src)
            return d
    resume = bool(meta and meta.get("train_hash") == rc.train_hash
                  and os.path.isfile(os.path.join(d, "checkpoint_last.json")))
    if not resume:
        for f in _files(d):  # leftovers without a checkpoint (e.g. killed before the first epoch)
            if f not in ("cell.json",):
                os.remove(os.path.join(d, f))
    atomic_json(dict(base, started=time.time()), meta_path)
    trainer_cls = trainer_cls or _default_trainer()
    t0 = time.time()
    trainer = trainer_cls(rc.cfg, out_dir=d, progress=progress)
    trainer.fit(resume=resume)
    atomic_json(dict(base, trained=True, resumed=resume, finished=time.time(), train_seconds=time.time() - t0),
                meta_path)
    if not keep_checkpoints:
        for f in ("checkpoint_last.params", "checkpoint_last.states"):
            if os.path.isfile(os.path.join(d, f)):
                os.remove(os.path.join(d, f))
    return d


# ------------------------------------------------------------------------------------------ evaluation
def evaluate_cell(cfg, params, flips=(False, True), out_dir=None):
    """Evaluate weights on ``DATA.TEST_SPLIT`` with ``tools/test.py``'s evaluation
    (:func:`lotr_gluon.evaluate.evaluate_weights`), once per entry of ``flips``; writes ``per_image.csv`` /
    ``per_image.json``.

    Returns
    -------
    dict
        ``metrics`` ({'noflip' / 'flip': metrics dict of :func:`lotr_gluon.evaluate.evaluate_dataset`}),
        ``nmes`` (same keys, lists), ``names``, ``threshold``, ``mean_shape_baseline``.
    """

    run = evaluate_weights(cfg, params, flips=flips, baseline=True)  # the evaluation of tools/test.py
    out = {"metrics": {}, "nmes": {}, "names": [s.name for s in run.test_set.samples],
           "threshold": run.scheme.threshold}
    for flip in flips:
        key = "flip" if flip else "noflip"
        metrics, nmes, _, _ = run.runs[bool(flip)]
        out["metrics"][key] = metrics
        out["nmes"][key] = [float(x) for x in nmes]
    base, base_nmes = run.baseline
    out["mean_shape_baseline"] = base
    out["nmes"]["mean_shape"] = [float(x) for x in base_nmes]
    if out_dir:
        atomic_json({"names": out["names"], "threshold": run.scheme.threshold,
                     **{"nme_" + k: v for k, v in out["nmes"].items()}}, os.path.join(out_dir, "per_image.json"))
        keys = [k for k in ("noflip", "flip", "mean_shape") if k in out["nmes"]]
        with open(os.path.join(out_dir, "per_image.csv"), "w") as f:
            f.write("name,%s\n" % ",".join("nme_" + k for k in keys))
            for i, name in enumerate(out["names"]):
                f.write("%s,%s\n" % (name, ",".join("%.6f" % out["nmes"][k][i] for k in keys)))
    return out


def _model_info(cfg):
    c = inference_config(cfg)  # no backbone weights read; training-only heads are not counted anyway
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model_info(c)


# ------------------------------------------------------------------------------------------ timing
def load_benchmark():
    """``(benchmark_model, None)``: the timing function of :mod:`lotr_gluon.benchmark` (the pair's second
    element, a reason why timing is unavailable, is None)."""
    return benchmark_model, None


def run_benchmark(fn, cfg, params, runs=100, warmup=10):
    """Time a model with ``fn`` (``benchmark_model``): Gluon runtime, batch 1, without and with flip.

    Returns ``{"ms_noflip", "ms_flip", "rows"}`` (ms per image, network + decoding)."""
    kwargs = {"params": params, "runtimes": ("gluon",), "batches": (1,), "flips": (False, True),
              "decoders": "default"}  # heatmap models: the config's decoder only
    try:
        accepted = set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        accepted = set()
    for k, v in (("runs", runs), ("warmup", warmup), ("ctx", "gpu%d" % cfg.DEVICES[0] if cfg.DEVICES else "cpu")):
        if k in accepted:
            kwargs[k] = v
    rows = fn(cfg, **kwargs)
    out = {"ms_noflip": None, "ms_flip": None, "rows": []}
    for r in rows:
        if r.get("batch", 1) != 1:
            continue
        out["ms_flip" if r.get("flip") else "ms_noflip"] = float(r["ms_per_image"])
        out["rows"].append({k: v for k, v in r.items() if k not in ("net_timing", "decode_timing")})
    return out


# ------------------------------------------------------------------------------------------ values
def cell_values(spec, result, info=None, bench=None):
    """The cell's numbers in the paper's units (percent, ms, MB, millions): ``nme``, ``fr``, ``auc`` (of the
    table's primary evaluation), ``*_noflip`` / ``*_flip``, WFLW subsets (``nme_pose``, ...), and
    ``params_m``, ``size_mb``, ``gflops``, ``ms_noflip``, ``ms_flip`` where measured. ``gflops`` is the papers'
    "GFLOPs", which count multiply-accumulates: our ``gmacs`` (:mod:`lotr_gluon.flops`)."""
    v = {}
    for key, m in result.get("metrics", {}).items():
        for k in ("nme", "fr", "auc"):
            v["%s_%s" % (k, key)] = 100.0 * m[k] if m.get(k) is not None else None
        for sub, sm in (m.get("subsets") or {}).items():
            for k in ("nme", "fr", "auc"):
                x = sm.get(k)
                v["%s_%s_%s" % (k, sub, key)] = 100.0 * x if x is not None and math.isfinite(x) else None
    primary = "flip" if spec.primary_flip and "flip" in result.get("metrics", {}) else "noflip"
    for k in list(v):
        if k.endswith("_" + primary):
            v[k[: -len(primary) - 1]] = v[k]
    if info:
        v["params_m"] = info["params"] / 1e6
        v["size_mb"] = info["size_mb"]
        v["gflops"] = info["gmacs"]  # the papers' "GFLOPs" are GMACs (LOTR Sec. IV-E, Earp Table 6)
    if bench:
        v["ms_noflip"] = bench.get("ms_noflip")
        v["ms_flip"] = bench.get("ms_flip")
    return v


# ------------------------------------------------------------------------------------------ one cell
def _fmt_seconds(s):
    s = int(round(s))
    return "%dh%02dm%02ds" % (s // 3600, s % 3600 // 60, s % 60) if s >= 3600 else \
        ("%dm%02ds" % (s // 60, s % 60) if s >= 60 else "%ds" % s)


def run_cell(rc, out_root="output/tables", trainer_cls=None, evaluate_fn=None, benchmark=None, progress=True,
             log=print, reuse=True, keep_checkpoints=False):
    """Train (or resume, or reuse) and evaluate one cell; writes ``metrics.json``. Returns the metrics dict.

    A diverging training (NaN loss, :class:`lotr_gluon.trainer.TrainingDiverged`) is a result: metrics.json
    records ``diverged: true`` and the values are NaN (LOTR Table VII reports NaN for the deepest models).
    """
    evaluate_fn = evaluate_fn or evaluate_cell
    t0 = time.time()
    record = {"cell": rc.name, "table": rc.spec.key, "cell_hash": rc.cell_hash, "train_hash": rc.train_hash,
              "cfg_file": rc.cfg_file, "overrides": rc.opts, "eval_overrides": list(rc.cell.eval_overrides),
              "train_from": rc.cell.train_from, "version": VALUES_VERSION}
    try:
        train_dir = ensure_trained(rc, out_root, trainer_cls, progress, log, reuse, keep_checkpoints)
    except TrainingDiverged as err:
        os.makedirs(rc.out_dir, exist_ok=True)
        record.update(diverged=True, error=str(err), values={}, seconds=time.time() - t0)
        atomic_json(record, os.path.join(rc.out_dir, "metrics.json"))
        write_cell_record(rc, record, {})
        return record
    done = read_json(os.path.join(rc.out_dir, "metrics.json"))
    if done and done.get("cell_hash") == rc.cell_hash:  # restored from .stash/ with its results
        log("    results of this configuration restored from .stash/")
        return done
    if rc.source is not None:
        os.makedirs(rc.out_dir, exist_ok=True)
        old = read_json(os.path.join(rc.out_dir, "metrics.json"))
        if old and old.get("cell_hash") != rc.cell_hash:  # results of another configuration of this
            for f in _files(rc.out_dir):                    # evaluation-only cell: recomputed below
                os.remove(os.path.join(rc.out_dir, f))
    params = os.path.join(train_dir, "model_best.params")
    log("    evaluating %s on %s (flip test: %s)" % (params, rc.eval_cfg.DATA.TEST_SPLIT,
                                                     "/".join("on" if f else "off" for f in rc.spec.flips)))
    result = evaluate_fn(rc.eval_cfg, params, rc.spec.flips, rc.out_dir)
    info = _model_info(rc.eval_cfg) if rc.spec.model_info else None
    bench = None
    if rc.spec.benchmark:
        bench = _bench(rc, params, benchmark, log)
    train_meta = read_json(os.path.join(train_dir, "cell.json")) or {}
    record.update(values=cell_values(rc.spec, result, info, bench), metrics=result.get("metrics"),
                  mean_shape_baseline=result.get("mean_shape_baseline"), threshold=result.get("threshold"),
                  num_images=len(result.get("names", [])), model_info=info, benchmark=bench,
                  train_dir=os.path.abspath(train_dir), train_seconds=train_meta.get("train_seconds"),
                  reused_from=train_meta.get("reused_from"), seconds=time.time() - t0, finished=time.time())
    atomic_json(record, os.path.join(rc.out_dir, "metrics.json"))
    write_cell_record(rc, record, result)  # the committable record (lotr_gluon.tables.records)
    return record


def _cpu_clock():
    """``(wall s, busy CPU s of the whole machine, CPU s of this process)``; the machine's figure from
    ``/proc/stat`` (Linux), None elsewhere."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:9]]
        busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    except (OSError, ValueError, IndexError):
        busy = None
    t = os.times()
    return time.time(), busy, t.user + t.system


def other_cpu_share(before, after, cores=None):
    """Share of the machine's CPU time (0-1) that other processes used between two :func:`_cpu_clock`
    readings, e.g. a training beside a timing (which makes the timing slow); None without ``/proc/stat``."""
    if before[1] is None or after[1] is None or after[0] <= before[0]:
        return None
    other = (after[1] - before[1]) - (after[2] - before[2])
    return round(max(0.0, other) / ((after[0] - before[0]) * (cores or os.cpu_count() or 1)), 3)


def _bench(rc, params, benchmark, log):
    """Timing through the benchmark adapter; ``{"error": ...}`` when unavailable or failing."""
    fn, why = benchmark if benchmark is not None else load_benchmark()
    if fn is None:
        log("    timing skipped: lotr_gluon.benchmark unavailable (%s)" % why)
        return {"ms_noflip": None, "ms_flip": None, "error": "lotr_gluon.benchmark unavailable: %s" % why}
    try:
        log("    timing (batch 1, %d runs after %d warm-up)" % (rc.bench.get("runs", 0), rc.bench.get("warmup", 0)))
        before = _cpu_clock()
        out = run_benchmark(fn, rc.eval_cfg, params, **rc.bench)
        out["other_cpu_share"] = other_cpu_share(before, _cpu_clock())
        return out
    except Exception as err:  # noqa: BLE001  (timing must not lose the accuracy results)
        log("    timing failed: %s: %s" % (type(err).__name__, err))
        return {"ms_noflip": None, "ms_flip": None, "error": "%s: %s" % (type(err).__name__, err)}


# ------------------------------------------------------------------------------------------ a table
def run_table(resolved, out_root="output/tables", trainer_cls=None, evaluate_fn=None, benchmark=None,
              progress=True, log=print, reuse=True, keep_checkpoints=False, retime=False):
    """Run the given resolved cells in order, one progress line per cell; finished cells are skipped.

    Returns ``{cell name: (status, seconds, error or None)}``; status is 'cached', 'done', 'diverged', 'failed'
    or 'busy'. Exceptions other than KeyboardInterrupt are logged and the next cell runs. ``retime``: time the
    finished cells of a timing table again (e.g. on a quiet machine, after they were trained and timed while
    another training shared the cores); accuracy is not recomputed. A cell whose training
    folder another process has locked (:func:`lotr_gluon.runlock.run_lock`: a second ``reproduce_table.py`` or a
    ``train.py`` working there) is skipped as 'busy', so two commands started side by side share the cells.
    """
    summary = {}
    n = len(resolved)
    width = max([len(rc.name) for rc in resolved] + [4])
    for i, rc in enumerate(resolved, 1):
        head = "[%*d/%d] %-*s" % (len(str(n)), i, n, width, rc.name)
        status, detail = cell_status(rc)
        if status == "done":
            m = read_json(os.path.join(rc.out_dir, "metrics.json")) or {}
            if rc.spec.benchmark and (retime or (m.get("values") or {}).get("ms_noflip") is None) \
                    and not m.get("diverged"):
                fn, _ = benchmark if benchmark is not None else load_benchmark()
                if fn is not None:  # retime, or the benchmark module appeared since: the timing only
                    m["benchmark"] = _bench(rc, os.path.join(m.get("train_dir", rc.train_dir), "model_best.params"),
                                            (fn, None), log)
                    m.setdefault("values", {}).update(ms_noflip=m["benchmark"].get("ms_noflip"),
                                                      ms_flip=m["benchmark"].get("ms_flip"))
                    atomic_json(m, os.path.join(rc.out_dir, "metrics.json"))
                    rec = read_json(os.path.join(rc.out_dir, "record.json"))
                    if rec is not None:  # the record carries the new timing too
                        rec.update(benchmark=m["benchmark"], values=m["values"])
                        atomic_json(rec, os.path.join(rc.out_dir, "record.json"))
            log("%s  done (cached%s)  %s" % (head, ", " + detail if detail else "", _short(rc.spec, m)))
            summary[rc.name] = ("cached", 0.0, None)
            continue
        try:
            with run_lock(rc.train_cell.out_dir):
                summary[rc.name] = _run_locked(rc, head, out_root, trainer_cls, evaluate_fn, benchmark, progress,
                                               log, reuse, keep_checkpoints)
        except RunFolderBusy as err:  # another reproduce_table / train.py works on this cell: take the next one
            log("%s  running in another process, skipped (%s)" % (head, err))
            summary[rc.name] = ("busy", 0.0, str(err))
    return summary


def _run_locked(rc, head, out_root, trainer_cls, evaluate_fn, benchmark, progress, log, reuse, keep_checkpoints):
    """One cell that is not done, its training folder locked by this process: ``(status, seconds, error)``."""
    t0 = time.time()
    status, detail = cell_status(rc)  # again: another process may have moved it on before the lock was ours
    if status == "done":
        log("%s  done (finished by another process)" % head)
        return "cached", 0.0, None
    what = {"partial": "resuming (%s)" % detail, "missing": "training" + (" (%s)" % detail if detail else "")}[status]
    if detail in (STASHED_RESULTS, STASHED_RUN):
        what = "restoring (%s)" % detail
    elif rc.source is not None and status == "partial" and detail.startswith("weights"):
        what = "evaluating the weights of %s" % rc.source.name
    log("%s  %s" % (head, what))
    try:
        m = run_cell(rc, out_root, trainer_cls, evaluate_fn, benchmark, progress, log, reuse, keep_checkpoints)
    except KeyboardInterrupt:
        log("%s  interrupted after %s; rerun the same command to resume" % (head, _fmt_seconds(time.time() - t0)))
        raise
    except Exception as err:  # noqa: BLE001
        log("%s  FAILED after %s: %s: %s" % (head, _fmt_seconds(time.time() - t0), type(err).__name__, err))
        log(traceback.format_exc())
        return "failed", time.time() - t0, "%s: %s" % (type(err).__name__, err)
    st = "diverged" if m.get("diverged") else "done"
    log("%s  %s  %s  %s" % (head, st, _short(rc.spec, m), _fmt_seconds(time.time() - t0)))
    return st, time.time() - t0, None


def _short(spec, m):
    v = m.get("values") or {}
    if m.get("diverged"):
        return "NaN loss (diverged)"
    parts = []
    for met in tuple(spec.metrics) + tuple(spec.extras):
        x = v.get(met.key)
        if x is not None and len(parts) < 4:
            parts.append("%s %.*f%s" % (met.label, met.decimals, x, met.unit if met.unit == "%" else " " + met.unit
                                        if met.unit else ""))
    return "  ".join(parts)
