"""Result records of table cells: one small JSON per finished cell, to commit under ``results/<data>/tables/``.

A cell's record (``record.json`` in its run folder, written by :func:`lotr_gluon.tables.runner.run_cell`) holds
what ``metrics.json`` holds (values in the paper's units, full metrics with and without flip, cell and train
hashes, timing) plus the NME of every face (with and without flip, and of the mean shape), the alignment and
backbone initialisation, the resolved training configuration, the command line, the code's commit and whether
the tree was dirty, the machine, and the training (epochs, seconds). :func:`save_records` copies the finished
cells' records to ``<dest>/<paper>-<table>/<cell>.record.json`` (``/`` in a cell name becomes ``__``);
:func:`load_records` reads them back for ``tools/reproduce_table.py --report-only --from-records`` and for the
documentation (``tools/render_docs.py``).
"""
import os
import shlex
import sys
import time

from ..files import atomic_json, read_json
from ..compare import summarise_run
from ..pretrained import initialisation
from ..records import alignment, code_state, machine

__all__ = ["RECORD_FILE", "cell_record", "write_cell_record", "record_path", "save_records", "load_records"]

RECORD_FILE = "record.json"


def _training(train_dir, cfg):
    if not os.path.isfile(os.path.join(train_dir, "log.jsonl")):
        return None
    s = summarise_run(train_dir)
    return {"epochs": s["epochs"], "of": cfg.TRAIN.EPOCHS, "steps": s["steps"], "train_seconds": s["train_seconds"],
            "images_per_s": s["images_per_s"], "best_epoch": s["best_epoch"], "best_val_nme": s["best_nme"]}


def cell_record(rc, metrics_record, result, argv=None):
    """The record of a finished cell.

    Parameters
    ----------
    rc : lotr_gluon.tables.runner.ResolvedCell
        The cell.
    metrics_record : dict
        What :func:`lotr_gluon.tables.runner.run_cell` writes to ``metrics.json``.
    result : dict
        The evaluation (:func:`lotr_gluon.tables.runner.evaluate_cell`): ``names``, ``nmes``.
    argv : list of str, optional
        The command line (default ``sys.argv``).

    Returns
    -------
    dict
        ``kind: "table_cell"`` and the fields of the module docstring.
    """
    names = list(result.get("names") or [])
    per_face = {k: {n: round(float(v), 6) for n, v in zip(names, vals)}
                for k, vals in (result.get("nmes") or {}).items()}
    rec = {"kind": "table_cell", "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "command": " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv)),
           "code": code_state(), "machine": machine(),
           "paper": rc.spec.paper, "table": rc.spec.table, "table_key": rc.spec.key, "cell": rc.name,
           "cfg_file": os.path.relpath(rc.cfg_file), "config_name": rc.train_cell.cfg.CFG_NAME, "scale": rc.scale,
           "overrides": list(rc.opts), "eval_overrides": list(rc.cell.eval_overrides),
           "alignment": alignment(rc.eval_cfg), "init": initialisation(rc.train_cell.cfg.MODEL.BACKBONE),
           "data": {"name": rc.eval_cfg.DATA.NAME, "root": rc.eval_cfg.DATA.ROOT,
                    "split": rc.eval_cfg.DATA.TEST_SPLIT},
           "training": _training(rc.train_dir, rc.train_cell.cfg), "per_face_nme": per_face,
           "config": rc.train_cell.cfg.dump()}
    rec.update({k: v for k, v in metrics_record.items() if k not in rec})
    return rec


def write_cell_record(rc, metrics_record, result, argv=None):
    """``<cell folder>/record.json`` (:func:`cell_record`); returns its path."""
    path = os.path.join(rc.out_dir, RECORD_FILE)
    atomic_json(cell_record(rc, metrics_record, result, argv), path)
    return path


def record_path(dest, spec, cell_name):
    """``<dest>/<paper>-<table>/<cell>.record.json`` (``/`` in the cell name as ``__``)."""
    return os.path.join(dest, spec.key, cell_name.replace("/", "__") + ".record.json")


def save_records(resolved, dest, log=print):
    """Copy the record of every finished cell of ``resolved`` (its ``record.json``, current cell hash) to
    :func:`record_path`; returns the paths written. Cells without a record (not finished, or finished before
    records were written: rerun the cell's evaluation) are listed in the log."""
    written, without = [], []
    for rc in resolved:
        rec = read_json(os.path.join(rc.out_dir, RECORD_FILE))
        if rec is None or rec.get("cell_hash") != rc.cell_hash:
            without.append(rc.name)
            continue
        path = record_path(dest, rc.spec, rc.name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic_json(rec, path)
        written.append(path)
    if without:
        log("no record of the current configuration for: %s" % ", ".join(without))
    return written


def load_records(spec, dest):
    """``{cell name: record}`` of the records of table ``spec`` under ``dest`` (:func:`record_path`); each record
    gets ``_path``, the file it was read from."""
    out = {}
    for c in spec.cells:
        path = record_path(dest, spec, c.name)
        rec = read_json(path)
        if rec is not None:
            rec["_path"] = path
            out[c.name] = rec
    return out
