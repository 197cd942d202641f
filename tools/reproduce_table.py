#!/usr/bin/env python
"""Regenerate a table of the LOTR paper (or of Earp et al.) from real training runs, next to the paper's numbers.

``python tools/reproduce_table.py --table 6 [--paper lotr|earp] [--data datatang|jd|wflw]
[--scale paper|smoke|epochs=N] [--cell-scale GLOB SCALE ...] [--cells GLOB ...] [--dry-run] [--report-only]
[--save-records DIR] [--from-records DIR] [--out output/tables] [KEY VALUE ...]``

Tables (``--list``): LOTR II (WFLW, LOTR-HR+; needs ``--data wflw``), III (LOTR models + heatmap baseline on
the test set), V (AUC without / with flip, inference time without / with flip, size, parameters of the heatmap
baseline and of the Gaussian-vector model "with vectorization", CNN+FFN, LOTR-M/M+/R+), VI (5 losses x 3 models), VII (1-6
encoder/decoder layers x 3 models); Earp et al. 2, 3 (upsampling strategies), 4 (filters).

Every cell (``--dry-run`` lists them) is ``experiments/<data>/<file>.yaml`` + overrides, trained with
:class:`lotr_gluon.trainer.Trainer` and evaluated like ``tools/test.py`` (flip test where the table needs it).
Results: ``<out>/<paper>-<table>/<cell>/`` (run folder + ``metrics.json`` + ``per_image.csv``); a rerun skips
finished cells and resumes interrupted ones (Ctrl-C is safe). Then ``table.md`` / ``.csv`` / ``.json``, CED
curves (``ced*.png``), training curves of every cell (``train_curves*.png``: loss and val NME by epoch, collapsed
cells dashed), training-loss curves and LOTR Fig. 2 (Table VI) in ``<out>/<paper>-<table>/``.

Noise and agreement (:mod:`lotr_gluon.tables.stats`): every NME / AUC of ours carries its 95% bootstrap interval
over the val faces (``3.97 [3.61, 4.35]``); for every compared metric (per model column in Tables VI, VII) the
report counts, of the pairs of cells the paper orders, how many we order the same way, the other way, or tie
within noise (the paired-bootstrap interval of our difference contains 0), with Kendall's tau
(``table.json``: ``agreement``). ``--report-only`` renders finished cells only and lists the missing ones.

Records: every evaluated cell writes ``record.json`` (:mod:`lotr_gluon.tables.records`: values, per-face NMEs,
alignment, initialisation, configuration, command, code commit, machine, training). ``--save-records DIR``
copies the finished cells' records to ``DIR/<paper>-<table>/`` (commit them under ``results/<data>/tables``);
``--report-only --from-records DIR`` renders the table from those records alone.

Scales: ``paper`` (the configs' schedules, default), ``smoke`` (1 epoch of 2 steps, 16 faces, 64x64 input: checks
the machinery in minutes, numbers meaningless), ``epochs=N`` (N epochs, lr steps scaled). ``--cell-scale GLOB
SCALE`` gives the matching cells a scale of their own (e.g. the ResNet50 rows of Table V at ``epochs=12``, the
rest at ``paper``); give the same ``--cell-scale`` to ``--report-only``, which marks those cells ``[epochs=12]``. ``KEY VALUE`` pairs
override every cell (e.g. ``DATA.ROOT /data/JD-landmark DEVICES [0]``).

The paper's numbers come from ``lotr_gluon/tables/paper/*.json`` (every number of LOTR Tables II-VII and Earp et
al. Tables 1-7, with table, row and column) and are labelled "paper"; a cell we have not run is "—" in the "ours"
column. ``--dry-run`` and the report show the paper's table as printed (e.g. Table VI: losses as rows, models as
columns) with ours beside each number; rows the project does not train (leaderboard entries) show the paper's
number alone.
"""
import os
import sys
import time
import warnings

from lotr_gluon.cli import ArgumentParser, ensure_output_dir, run_main
from lotr_gluon.config import ConfigError
from lotr_gluon.tables import (cell_status, get_table, list_tables, parse_scale, render_dry_run, report,
                               resolve_cells, run_table, select_cells)
from lotr_gluon.tables.records import load_records, save_records


def build_parser():
    # KEY VALUE overrides anywhere on the line, also after --cells GLOB ... (lotr_gluon.cli); usage errors: one line
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("--table", help="table number or roman numeral (6, VI)")
    ap.add_argument("--paper", default="lotr", choices=["lotr", "earp"], help="default lotr")
    ap.add_argument("--data", default="datatang",
                    help="experiment folder experiments/<data>/: datatang (default, the sample here), jd (paper "
                         "scale, set DATA.ROOT), wflw (Table II)")
    ap.add_argument("--scale", default="paper", help="paper (default) | smoke | epochs=N")
    ap.add_argument("--cell-scale", nargs=2, action="append", default=[], metavar=("GLOB", "SCALE"),
                    help="these cells at another scale than --scale (repeatable; first match counts), e.g. "
                         "--cell-scale '*r50*' epochs=12; the report marks them")
    ap.add_argument("--cells", nargs="+", default=None, metavar="GLOB",
                    help="run only these cells (names or globs, e.g. 'lotr_m/*' or lotr_m_plus/wing)")
    ap.add_argument("--dry-run", action="store_true",
                    help="list the cells (config, overrides, status) and the paper's table beside ours, and exit")
    ap.add_argument("--report-only", action="store_true", help="no training: render what is there")
    ap.add_argument("--save-records", default=None, metavar="DIR",
                    help="copy every finished cell's result record to DIR/<paper>-<table>/<cell>.record.json "
                         "(to commit, e.g. results/datatang/tables)")
    ap.add_argument("--from-records", default=None, metavar="DIR",
                    help="with --report-only: render from the committed records in DIR (e.g. "
                         "results/datatang/tables) instead of the run folders (no plots)")
    ap.add_argument("--out", default=os.path.join("output", "tables"), help="results root (default output/tables)")
    ap.add_argument("--no-reuse", action="store_true",
                    help="do not reuse a finished run of the same configuration from another table")
    ap.add_argument("--keep-checkpoints", action="store_true",
                    help="keep checkpoint_last.params/.states of finished cells (removed by default)")
    ap.add_argument("--retime", action="store_true",
                    help="time the finished cells of a timing table (V) again, e.g. on a quiet machine")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--quiet", action="store_true", help="no tqdm bars")
    ap.add_argument("--list", action="store_true", help="list the tables and exit")
    return ap


def main(argv=None):
    ap = build_parser()
    args = ap.parse_args(argv)  # KEY VALUE overrides anywhere on the line -> args.opts
    if args.list:
        for paper, table, label, title, n in list_tables():
            print("--paper %-4s --table %-2s %-22s %-60s %2d cells" % (paper, table, label, title, n))
        return 0
    if not args.table:
        ap.error("--table is required (or --list)")
    try:
        spec = get_table(args.paper, args.table)
        parse_scale(args.scale)
    except (KeyError, ValueError) as err:
        ap.error(str(err).strip('"'))
    if len(args.opts) % 2:
        ap.error("overrides must be KEY VALUE pairs, got %r" % (args.opts,))
    try:
        resolved = resolve_cells(spec, args.data, args.scale, args.opts, args.out, cell_scales=args.cell_scale)
        selected = select_cells(resolved, args.cells)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        ap.error(str(err))
    ctx = {"data": args.data, "scale": args.scale, "opts": list(args.opts), "out_root": args.out,
           "cell_scales": [list(cs) for cs in args.cell_scale]}
    if args.dry_run:
        print(render_dry_run(spec, selected, ctx), end="")
        return 0
    if args.from_records and not args.report_only:
        ap.error("--from-records renders committed records: use it with --report-only")
    records = None
    if args.from_records:
        records = load_records(spec, args.from_records)
    ensure_output_dir(args.out, "results folder")
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    t0 = time.time()
    summary = {}
    if not args.report_only:
        log("%s — %s: %d cell(s), experiments/%s, scale %s, results in %s" % (
            spec.label, spec.title, len(selected), args.data, args.scale, selected[0].table_dir))
        warnings.filterwarnings("ignore", category=UserWarning)
        try:
            summary = run_table(selected, args.out, progress=not args.quiet, log=log, reuse=not args.no_reuse,
                                keep_checkpoints=args.keep_checkpoints, retime=args.retime)
        except KeyboardInterrupt:
            log("interrupted; finished cells are kept, the running one resumes from its last epoch")
            return 130
    md, paths = report(spec, resolved, args.out, ctx, plots=not args.no_plots, log=log, records=records)
    print()
    print(md)
    print("wrote %s" % ", ".join([paths["md"], paths["csv"], paths["json"]] + list(paths.get("plots", []))))
    if args.save_records:
        saved = save_records(resolved, args.save_records, log=log)
        print("saved %d record(s) under %s" % (len(saved), os.path.join(args.save_records, spec.key)))
    if args.report_only:
        if records is not None:
            missing = [rc.name for rc in resolved if records.get(rc.name, {}).get("cell_hash") != rc.cell_hash]
        else:
            missing = [rc.name for rc in resolved if cell_status(rc)[0] != "done"]
        print("%d of %d cells finished%s" % (len(resolved) - len(missing), len(resolved),
                                             ("; missing: %s" % ", ".join(missing)) if missing else ""))
    if summary:
        print("total %.0f s" % (time.time() - t0))
    busy = [k for k, v in summary.items() if v[0] == "busy"]
    if busy:
        print("running in another process, skipped: %s (rerun this command when they finish)" % ", ".join(busy))
    failed = [k for k, v in summary.items() if v[0] == "failed"]
    if failed:
        print("failed cells: %s" % ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
