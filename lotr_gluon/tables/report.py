"""The comparison of a table with the paper: Markdown, CSV, JSON and plots.

Every number from the paper is labelled "paper" and comes from ``paper/<paper>_table<N>.json`` (table, row and
column in the CSV); a number the paper gives in its text rather than in the table carries a "*". A cell without
our result shows "—" in the "ours" column, never the paper's value; a "-" of the paper stays "-".
"""
import csv
import datetime
import json
import math
import os

from .. import markdown, vis
from ..compare import summarise_run
from ..errors import OutputError
from ..files import read_json
from ..pretrained import initialisation
from ..trainer import read_log
from . import stats
from .runner import cell_status, run_config_matches, table_dir
from .spec import PAPERS, load_paper, paper_entry, paper_grid, paper_value

__all__ = ["build_rows", "render_markdown", "render_dry_run", "render_paper_grid", "write_report", "make_plots",
           "report", "MISSING", "read_per_image", "table_agreement", "collapsed", "cell_train_log",
           "plot_training_curves"]

MISSING = "—"
PAPER_GAP = "-"        # a '-' printed in the paper
#: a timing is flagged when other processes used more than this share of the machine's CPU time while it ran
BUSY_SHARE = 0.2
TEXT_MARK = "*"        # a paper number from its text (or another table), not from the table's grid


def _num(x, decimals=2):
    if x is None:
        return MISSING
    if isinstance(x, float) and math.isnan(x):
        return "NaN"
    s = "%.*f" % (decimals, x)
    return s[1:] if s.startswith("-") and float(s) == 0 else s


def _record_status(rc, rec):
    """``(status, detail, record or None)`` of a cell from its committed record (:mod:`.records`): done when
    the record's cell hash is the cell's current one."""
    if rec is None:
        return "missing", "no record", None
    if rec.get("cell_hash") != rc.cell_hash:
        return "missing", "record of another configuration (%s)" % rec.get("cell_hash"), None
    return "done", "diverged" if rec.get("diverged") else "", rec


def _record_training(rc, rec):
    """:func:`training_summary` from a record's ``training``."""
    t = (rec or {}).get("training")
    if rc.source is not None or not t or not t.get("epochs"):
        return None
    return {"epochs": t["epochs"], "of": t.get("of", rc.train_cell.cfg.TRAIN.EPOCHS),
            "minutes": (t.get("train_seconds") or 0.0) / 60.0, "images_per_s": t.get("images_per_s")}


def _record_per_image(rec):
    """``(names, {'noflip': [...], ...})`` from a record's ``per_face_nme`` (as :func:`read_per_image`)."""
    per = (rec or {}).get("per_face_nme") or {}
    if not per:
        return None, {}
    names = list(next(iter(per.values())))
    return names, {k: [float(v[n]) for n in names] for k, v in per.items()}


def build_rows(resolved, paper=None, records=None):
    """One dict per cell: name, row, col, status, detail, ``paper`` / ``ours`` / ``diff`` (metric key ->
    number or None), ``provenance`` (metric key -> 'Table VI, L2, LOTR-M', 'gap' or None), diverged.

    ``records``: ``{cell name: record}`` (:func:`lotr_gluon.tables.records.load_records`): the cells' results
    come from these committed records instead of their run folders (``record``: the record's file)."""
    rows = []
    if not resolved:
        return rows
    spec = resolved[0].spec
    paper = paper if paper is not None else load_paper(spec)
    for rc in resolved:
        if records is None:
            status, detail = cell_status(rc)
            m = read_json(os.path.join(rc.out_dir, "metrics.json")) if status == "done" else None
        else:
            status, detail, m = _record_status(rc, records.get(rc.name))
        values = (m or {}).get("values") or {}
        diverged = bool(m and m.get("diverged"))
        r = {"cell": rc.name, "row": rc.cell.row, "col": rc.cell.col, "status": status, "detail": detail,
             "config": os.path.relpath(rc.cfg_file), "overrides": list(rc.cell.overrides),
             "eval_overrides": list(rc.cell.eval_overrides), "train_from": rc.cell.train_from,
             "diverged": diverged, "paper": {}, "ours": {}, "diff": {}, "provenance": {},
             "num_images": (m or {}).get("num_images"), "out_dir": rc.out_dir, "scale": rc.scale,
             "scale_opts": list(rc.scale_opts), "init": initialisation(rc.train_cell.cfg.MODEL.BACKBONE)}
        for met in tuple(spec.metrics) + tuple(spec.extras):
            ours = values.get(met.key) if status == "done" else None
            if diverged:
                ours = float("nan")
            r["ours"][met.key] = ours
            if met in spec.metrics:
                pv, prov = paper_value(paper, rc.cell, met.key)
                r["paper"][met.key] = pv
                r["provenance"][met.key] = prov
                r["diff"][met.key] = (ours - pv) if (ours is not None and pv is not None and not diverged
                                                     and not math.isnan(pv)) else None
        if m and (m.get("benchmark") or {}).get("error"):
            r["timing_error"] = m["benchmark"]["error"]
        if m and (m.get("benchmark") or {}).get("other_cpu_share") is not None:
            r["timing_other_cpu"] = m["benchmark"]["other_cpu_share"]
        if records is None:
            r["training"] = training_summary(rc)
            _add_intervals(spec, r, m, rc.out_dir)
        else:
            r["training"] = _record_training(rc, m)
            r["record"] = (m or {}).get("_path")
            if m:
                r["init"], r["alignment"] = m.get("init", r["init"]), m.get("alignment")
            _add_intervals(spec, r, m, rc.out_dir, per_image=_record_per_image(m))
        rows.append(r)
    return rows


def cell_train_log(rc):
    """Path of the ``log.jsonl`` of the cell's own training (``rc.train_dir``), or None when there is none yet or
    the folder holds a run of another configuration of the cell (:func:`run_config_matches` False; such a run
    is moved to ``.stash/`` when the cell runs). Every training line and curve of a report reads this."""
    p = os.path.join(rc.train_dir, "log.jsonl")
    if not os.path.isfile(p) or run_config_matches(rc.train_dir, rc.train_cell.cfg) is False:
        return None
    return p


def _train_records(rc):
    """The records of :func:`cell_train_log` (``trainer.read_log``), [] where it is None."""
    p = cell_train_log(rc)
    return read_log(p) if p else []


def training_summary(rc):
    """How a cell's training went, from its ``log.jsonl`` (every resumed run included): ``{"epochs": trained,
    "of": configured, "minutes": sum of the epoch times, "images_per_s": median epoch}``; None before the
    first epoch, for a cell that reuses another cell's weights (``train_from``: counted there), and for a folder
    that holds a run of another configuration of the cell (moved to ``.stash/`` when the cell runs)."""
    if rc.source is not None or cell_train_log(rc) is None:
        return None
    s = summarise_run(rc.train_dir)
    if not s["epochs"]:
        return None
    return {"epochs": s["epochs"], "of": rc.train_cell.cfg.TRAIN.EPOCHS, "minutes": s["train_seconds"] / 60.0,
            "images_per_s": s["images_per_s"]}


def render_training(rows):
    """Markdown lines: epochs, minutes and images/s of each cell's training (:func:`training_summary`)."""
    lines = ["- %s: %d of %d epochs, %.1f min%s" % (
        r["cell"], r["training"]["epochs"], r["training"]["of"], r["training"]["minutes"],
        "" if r["training"]["images_per_s"] is None else ", %.1f images/s" % r["training"]["images_per_s"])
        for r in rows if r.get("training")]
    if not lines:
        return []
    return ["", "Training (sum of the epoch times in the cell's log.jsonl, resumed runs included; images/s: median "
                "epoch; the sum includes any time the process was paused or shared the cores with another "
                "training):", ""] + lines


def read_per_image(out_dir):
    """``(names, {'noflip': [...], 'flip': [...], 'mean_shape': [...]})`` from a cell's ``per_image.csv`` (the
    runner's format: ``name,nme_noflip,nme_flip,nme_mean_shape``, fractions), or ``(None, {})`` without it.

    Raises
    ------
    OutputError
        A malformed file (names it and the line).
    """
    path = os.path.join(out_dir, "per_image.csv")
    if not os.path.isfile(path):
        return None, {}
    with open(path, newline="") as f:
        lines = list(csv.reader(f))
    if not lines or not lines[0] or lines[0][0] != "name":
        raise OutputError("%s: no header 'name,nme_...'" % path)
    keys = [h[4:] if h.startswith("nme_") else h for h in lines[0][1:]]
    names, cols = [], {k: [] for k in keys}
    for i, line in enumerate(lines[1:], 2):
        if not line:
            continue
        if len(line) != len(keys) + 1:
            raise OutputError("%s:%d: %d fields, expected %d" % (path, i, len(line), len(keys) + 1))
        names.append(line[0])
        for k, x in zip(keys, line[1:]):
            try:
                cols[k].append(float(x))
            except ValueError:
                raise OutputError("%s:%d: %r is not a number" % (path, i, x)) from None
    return names, cols


def _eval_of(spec, key, per_image):
    """Which evaluation (per-image column) a metric key refers to: ``*_flip``, ``*_noflip``, else the table's
    primary one (as :func:`lotr_gluon.tables.runner.cell_values`)."""
    if key.endswith("_noflip"):
        return "noflip"
    if key.endswith("_flip"):
        return "flip"
    return "flip" if spec.primary_flip and "flip" in per_image else "noflip"


def _add_intervals(spec, r, m, out_dir, per_image=None):
    """Per-face NMEs of a done cell (``r['faces']``, ``r['per_image']``, ``r['threshold']``) and the 95%
    bootstrap interval (``r['ci'][key] = [lo, hi]``, the table's units) of its NME / AUC metrics; the NMEs from
    ``per_image`` (``(names, {eval: nmes})``) when given, else from ``out_dir``'s ``per_image.csv``."""
    r["ci"] = {}
    r["faces"], r["per_image"], r["threshold"] = None, {}, None
    if r["status"] != "done" or r["diverged"] or not m:
        return
    names, per = per_image if per_image is not None else read_per_image(out_dir)
    if not names:
        return
    r["faces"], r["per_image"] = names, per
    r["threshold"] = m.get("threshold") or (read_json(os.path.join(out_dir, "per_image.json")) or {}).get("threshold")
    for met in tuple(spec.metrics) + tuple(spec.extras):
        st = stats.stat_of_key(met.key)
        nm = per.get(_eval_of(spec, met.key, per))
        if st not in ("nme", "auc") or not nm or r["ours"].get(met.key) is None or r["threshold"] is None:
            continue
        if not all(math.isfinite(x) for x in nm):
            continue
        _, lo, hi = stats.bootstrap_interval(nm, st, r["threshold"])
        r["ci"][met.key] = [100.0 * lo, 100.0 * hi]


def _ours(r, met):
    """Our number with its bootstrap interval where there is one: ``3.97 [3.61, 4.35]``."""
    s = _num(r["ours"][met.key], met.decimals)
    ci = (r.get("ci") or {}).get(met.key)
    return s + " [%s, %s]" % (_num(ci[0], met.decimals), _num(ci[1], met.decimals)) if ci else s


def _groups_of_rows(spec, rows):
    """(label, rows) per column of a two-way table (LOTR VI, VII: one model per column), else one group."""
    if not spec.cols:
        return [("", list(rows))]
    return [(col, [r for r in rows if r["col"] == col]) for col in spec.cols]


def table_agreement(spec, rows):
    """Agreement of our orderings with the paper's (:func:`lotr_gluon.tables.stats.agreement`), one entry per
    compared metric and, for two-way tables, per column; plus a ``total`` per metric over the columns (counts
    summed; tau-b over the same within-column pairs). Each entry: ``label``, ``column``, ``metric``, ``line`` (the
    printed sentence) and the counts of :func:`~lotr_gluon.tables.stats.agreement`."""
    out = []
    for met in spec.metrics:
        try:
            stats.direction(met.key)
        except KeyError:
            continue
        groups = _groups_of_rows(spec, rows)
        parts = []
        for col, grp in groups:
            cells = []
            for r in grp:
                nm = r.get("per_image", {}).get(_eval_of(spec, met.key, r.get("per_image") or {}))
                cells.append({"name": r["cell"], "ours": r["ours"].get(met.key), "paper": r["paper"].get(met.key),
                              "nmes": nm, "faces": r.get("faces"), "threshold": r.get("threshold")})
            ag = stats.agreement(cells, met.key, decimals=met.decimals)
            label = "%s%s, %s" % (spec.label, (" " + col) if col else "", met.label)
            ag.update(label=label, column=col, metric=met.key, line=stats.format_agreement(label, ag))
            out.append(ag)
            parts.append((grp, ag))
        if len(parts) > 1:
            tot = {k: sum(ag[k] for _, ag in parts) for k in ("ordered", "agree", "disagree", "tie", "missing")}
            allrows = [r for grp, _ in parts for r in grp]
            pairs, start = [], 0
            for grp, _ in parts:
                n = len(grp)
                pairs += [(start + i, start + j) for i in range(n) for j in range(i + 1, n)]
                start += n
            tot["tau"] = stats.kendall_tau([r["ours"].get(met.key) for r in allrows],
                                           [r["paper"].get(met.key) for r in allrows], stats.direction(met.key), pairs)
            label = "%s all columns, %s" % (spec.label, met.label)
            tot.update(key=met.key, label=label, column="total", metric=met.key, pairs=[],
                       line=stats.format_agreement(label, tot, "pairs within a column"))
            out.append(tot)
    return out


def collapsed(r):
    """Whether a done cell collapsed: it diverged (non-finite), a value of it is non-finite, or it is not
    better than the mean shape beyond noise: the 95% paired-bootstrap interval (same faces) of its mean NME
    (flip test where evaluated) minus the mean shape's does not lie below 0 (LOTR Table VII's collapsed models
    sit at the mean shape's AUC, about 44%)."""
    if r["status"] != "done":
        return False
    if r["diverged"] or any(isinstance(v, float) and not math.isfinite(v) for v in r["ours"].values()):
        return True
    per = r.get("per_image") or {}
    base = per.get("mean_shape")
    nm = per.get("flip") or per.get("noflip")
    if not base or not nm or len(base) != len(nm):
        return False
    if not all(math.isfinite(x) for x in nm):
        return True
    return stats.paired_difference(nm, base, "nme")[2] >= 0.0


def _paper_cell(x, prov, decimals):
    if x is None and prov == "gap":
        return PAPER_GAP
    s = _num(x, decimals)
    return s + TEXT_MARK if x is not None and prov and "(from " in prov else s


def _unit(met):
    return " (%s)" % met.unit if met.unit else ""


def render_markdown(spec, rows, context=None, paper=None, agreement=None):
    """Markdown: a header, the per-cell table (paper / ours / difference for each compared metric, then our
    extra metrics and the status), a grid view for two-way tables, and notes."""
    paper = paper if paper is not None else load_paper(spec)
    ctx = context or {}
    out = ["## %s — %s" % (spec.label, spec.title), ""]
    if paper:
        out.append("- paper: %s. %s" % (paper.get("source"), paper.get("caption", "")))
        out.append("- paper data: %s" % paper.get("dataset", ""))
    out.append("- ours: experiments/%s, scale %s%s; test split %s%s" % (
        ctx.get("data", "?"), ctx.get("scale", "?"),
        (", overrides %s" % " ".join(ctx["opts"])) if ctx.get("opts") else "", ctx.get("test_split", "?"),
        (", %s images" % ctx["num_images"]) if ctx.get("num_images") else ""))
    for line in _other_schedules(rows, ctx.get("scale")):
        out.append("- " + line)
    if spec.primary_flip and any(m.key in ("auc", "nme", "fr") for m in tuple(spec.metrics) + tuple(spec.extras)):
        out.append("- NME, FR, AUC in %% with the flip test%s." % (
            "" if len(spec.flips) == 1 else "; 'w/o flip' / 'flip' columns as labelled"))
    out.append("")
    single = len(rows) == 1
    if single:
        r = rows[0]
        body = [[met.label + _unit(met), _paper_cell(r["paper"][met.key], r["provenance"][met.key], met.decimals),
                 _ours(r, met), _num(r["diff"][met.key], met.decimals)] for met in spec.metrics]
        body += [[met.label + _unit(met), "", _ours(r, met), ""] for met in spec.extras]
        out += markdown.table(["metric", "paper", "ours", "ours − paper"], body, "lrrr")
        out.append("")
        out.append("cell %s: backbone from %s; status %s%s" % (r["cell"], r["init"], r["status"],
                                                             (" (%s)" % r["detail"]) if r["detail"] else ""))
    else:
        head = ["cell", spec.row_label] + ([spec.col_label] if spec.cols else [])
        for met in spec.metrics:
            head += ["%s%s paper" % (met.label, _unit(met)), "%s ours" % met.label, "Δ %s" % met.label]
        head += ["%s%s ours" % (met.label, _unit(met)) for met in spec.extras] + ["status", "backbone init"]
        body = []
        for r in rows:
            cells = [r["cell"] + _scale_mark(r.get("scale"), ctx.get("scale")), r["row"]] + \
                ([r["col"]] if spec.cols else [])
            for met in spec.metrics:
                cells += [_paper_cell(r["paper"][met.key], r["provenance"][met.key], met.decimals),
                          _ours(r, met), _num(r["diff"][met.key], met.decimals)]
            cells += [_ours(r, met) for met in spec.extras]
            st = r["status"] + (" (%s)" % r["detail"] if r["detail"] else "")
            cells += ["diverged" if r["diverged"] else st, r["init"]]
            body.append(cells)
        first = 2 + bool(spec.cols)
        out += markdown.table(head, body, "l" * first + "r" * (len(head) - first - 2) + "ll")
        if spec.cols:
            met = spec.metrics[0]
            out += ["", "%s%s, ours (paper):" % (met.label, _unit(met)), ""]
            by = {(r["row"], r["col"]): r for r in rows}
            body = []
            for row in spec.rows:
                cells = []
                for col in spec.cols:
                    r = by.get((row, col))
                    if r is None:
                        cells.append("")
                        continue
                    cells.append("%s (paper %s)" % (_ours(r, met),
                                                   _paper_cell(r["paper"][met.key], r["provenance"][met.key],
                                                               met.decimals)))
                body.append([row] + cells)
            out += markdown.table([spec.row_label] + list(spec.cols), body, "l" + "r" * len(spec.cols))
    if paper and not spec.cols:
        out += ["", render_paper_grid(spec, rows, paper).rstrip("\n")]
    out += [""] + render_agreement(spec, rows, agreement)
    out += render_training(rows)
    notes = ["%s = not measured yet (ours) or not printed in the paper (paper); %s = printed as '-' in the paper."
             % (MISSING, PAPER_GAP), "Δ = ours − paper, in the column's unit."]
    if any(p and "(from " in p for r in rows for p in r["provenance"].values()):
        notes.append("%s paper number from the paper's text or another table, not from this table: %s" % (
            TEXT_MARK, "; ".join(sorted({p for r in rows for p in r["provenance"].values() if p and "(from " in p}))))
    if paper:
        notes += list(paper.get("notes", []))
        notes.append("paper numbers: %s" % os.path.relpath(paper["_path"]))
    notes += list(spec.extra_notes)
    errs = sorted({r["timing_error"] for r in rows if r.get("timing_error")})
    notes += ["timing columns empty: %s" % e for e in errs]
    busy = ["%s %.0f%%" % (r["cell"], 100 * r["timing_other_cpu"]) for r in rows
            if r.get("timing_other_cpu") is not None and r["timing_other_cpu"] > BUSY_SHARE]
    if busy:
        notes.append("timed while other processes used the cores (their share of the machine's CPU time during the "
                     "timing): %s; those times are high, rerun with --retime on a quiet machine" % ", ".join(busy))
    if ctx.get("scale") == "smoke":
        notes.append("scale smoke: a few training steps on a few faces to check the machinery; the numbers are "
                     "not comparable with the paper's.")
    out += ["", "Notes:", ""] + ["- " + n for n in notes]
    return "\n".join(out) + "\n"


def _scale_mark(cell_scale, table_scale):
    """`` [epochs=18]`` after a cell trained at another scale than the table's (``--cell-scale``), else ``''``."""
    return " [%s]" % cell_scale if None not in (cell_scale, table_scale) and cell_scale != table_scale else ""


def _other_schedules(rows, scale):
    """Lines naming the cells trained at another scale than the table's (``--cell-scale``), one per scale."""
    by = {}
    for r in rows:
        if _scale_mark(r.get("scale"), scale):
            by.setdefault((r["scale"], " ".join(r.get("scale_opts", []))), []).append(r["cell"])
    return ["cells at another schedule than the rest of the table (marked [%s]): %s (overrides %s); their "
            "differences from the other rows mix the model with the schedule" % (sc, ", ".join(cells), opts or "none")
            for (sc, opts), cells in by.items()]


def render_agreement(spec, rows, agreement=None):
    """Markdown lines: which cells are missing, the agreement lines (:func:`table_agreement`) and what the
    intervals and the agreement mean."""
    agreement = table_agreement(spec, rows) if agreement is None else agreement
    out = []
    missing = [r["cell"] for r in rows if r["status"] != "done"]
    out.append("Cells done: %d of %d%s" % (len(rows) - len(missing), len(rows),
                                         ("; missing: %s" % ", ".join(missing)) if missing else "."))
    bad = [r["cell"] for r in rows if collapsed(r)]
    if bad:
        out.append("Collapsed (diverged, non-finite, or not better than the mean shape beyond noise): %s"
                   % ", ".join(bad))
    out += ["", "Agreement with the paper:", ""]
    out += ["- " + a["line"] for a in agreement] or ["- no metric with a direction to compare"]
    out += ["", "[lo, hi] after a number: 95%% bootstrap interval over the faces (%d resamples, seed %d, "
            "percentile). Agreement: of the pairs of cells the paper orders (its numbers differ), a tie when the "
            "95%% paired-bootstrap interval of our difference (same resampled faces) contains 0 (without per-face "
            "NMEs, e.g. time or size: equal at the printed decimals); otherwise agree / disagree with the paper's "
            "order. NaN or non-finite (paper or ours) ranks worst; two of them are not ordered. Kendall tau-b on "
            "the point values." % (stats.N_BOOT, stats.SEED)]
    return out


def render_paper_grid(spec, rows=None, paper=None):
    """The paper's table as printed (its rows, columns and groups, in its order) with ours beside each number.

    A number the table has a cell for reads ``paper / ours`` (ours "—" until measured); a row the project does not
    train (``spec.paper_only``, leaderboard entries) shows the paper's number alone. ``rows``: :func:`build_rows`
    (None: every ours "—"). Empty string when the paper has no file for the table.
    """
    paper = paper if paper is not None else load_paper(spec)
    if not paper:
        return ""
    cols, lines = paper_grid(paper)
    mets = {m.key: m for m in tuple(spec.metrics) + tuple(spec.extras)}
    ours = {(r["row"], r["col"]): r for r in rows or []}
    if rows is None:
        ours = {(c.row, c.col): None for c in spec.cells}
    grouped = any(g for g, _, _ in lines)
    head = (["group"] if grouped else []) + [paper.get("row_header") or spec.row_label] + cols
    body = []
    for group, row, entries in lines:
        cells = []
        for col in cols:
            e = entries.get(col)
            if e is None:
                cells.append("")
                continue
            p = e.get("printed") or _num(e["value"])
            p += TEXT_MARK if e.get("source") else ""
            match = None
            for (orow, ocol), r in ours.items():
                if e["key"] in mets and paper_entry(paper, (orow, ocol), e["key"]) is e:
                    match = (r, mets[e["key"]])
                    break
            if match is None:
                cells.append(p)
            else:
                r, met = match
                cells.append("%s / %s" % (p, _num(r["ours"].get(met.key) if r else None, met.decimals)))
        label = row + (" (paper only)" if row in spec.paper_only else "")
        body.append(([group or ""] if grouped else []) + [label] + cells)
    out = ["%s as printed, paper / ours:" % spec.label, ""] + markdown.table(
        head, body, "l" * (1 + grouped) + "r" * len(cols))
    return "\n".join(out) + "\n"


def render_dry_run(spec, resolved, context=None):
    """What would be trained: cell, config, overrides, status; then the paper's table beside our (empty until
    measured) cells (:func:`render_paper_grid`)."""
    ctx = context or {}
    lines = ["%s — %s: %d cells, experiments/%s, scale %s" % (spec.label, spec.title, len(resolved),
                                                            ctx.get("data", "?"), ctx.get("scale", "?")), ""]
    body = []
    for rc in resolved:
        status, detail = cell_status(rc)
        ov = " ".join(rc.cell.overrides) or "-"
        if rc.cell.train_from:
            ov += " (weights of %s; eval %s)" % (rc.cell.train_from, " ".join(rc.cell.eval_overrides))
        body.append([rc.name + _scale_mark(rc.scale, ctx.get("scale")), os.path.relpath(rc.cfg_file), ov,
                     status + (" (%s)" % detail if detail else "")])
    lines += markdown.table(["cell", "config", "overrides", "status"], body)
    if resolved:
        main = [rc for rc in resolved if not _scale_mark(rc.scale, ctx.get("scale"))]
        if main and main[0].scale_opts:
            lines += ["", "scale overrides (every cell%s): " % (" but those in [ ]" if len(main) < len(resolved)
                                                                 else "") + " ".join(main[0].scale_opts)]
        for rc in resolved:
            if rc not in main:
                lines += ["scale overrides of %s [%s]: %s" % (rc.name, rc.scale, " ".join(rc.scale_opts) or "none")]
        if ctx.get("opts"):
            lines += ["extra overrides (every cell): " + " ".join(ctx["opts"])]
        lines += ["results: %s/<cell>/metrics.json" % resolved[0].table_dir]
    grid = render_paper_grid(spec, build_rows(resolved) if resolved else None)
    if grid:
        lines += ["", grid.rstrip("\n")]
    return "\n".join(lines) + "\n"


def write_report(spec, rows, markdown, out_dir, context=None, agreement=None):
    """``table.md``, ``table.csv`` and ``table.json`` in ``out_dir``; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    p = os.path.join(out_dir, "table.md")
    with open(p, "w") as f:
        f.write(markdown)
    paths["md"] = p
    p = os.path.join(out_dir, "table.csv")
    head = ["cell", "row", "col", "status"]
    for met in spec.metrics:
        head += [met.key + "_paper", met.key + "_paper_provenance", met.key + "_ours", met.key + "_diff"]
    head += [met.key + "_ours" for met in spec.extras]
    ci_keys = [met.key for met in tuple(spec.metrics) + tuple(spec.extras)
               if stats.stat_of_key(met.key) in ("nme", "auc")]
    head += [k + s for k in ci_keys for s in ("_ours_lo", "_ours_hi")]
    with open(p, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(head)
        for r in rows:
            line = [r["cell"], r["row"], r["col"], "diverged" if r["diverged"] else r["status"]]
            for met in spec.metrics:
                line += [_csv(r["paper"][met.key]), r["provenance"][met.key] or "", _csv(r["ours"][met.key]),
                         _csv(r["diff"][met.key])]
            line += [_csv(r["ours"][met.key]) for met in spec.extras]
            for k in ci_keys:
                ci = (r.get("ci") or {}).get(k)
                line += [_csv(ci[0]), _csv(ci[1])] if ci else ["", ""]
            w.writerow(line)
    paths["csv"] = p
    p = os.path.join(out_dir, "table.json")
    paper = load_paper(spec)
    obj = {"paper": spec.paper, "paper_title": PAPERS.get(spec.paper), "table": spec.table, "label": spec.label,
           "title": spec.title, "source": paper.get("source") if paper else None,
           "generated": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
           "context": context or {},
           "metrics": [dict(m._asdict()) for m in spec.metrics], "extras": [dict(m._asdict()) for m in spec.extras],
           "cells": [dict({k: v for k, v in r.items() if k not in ("out_dir", "per_image", "faces")},
                          collapsed=collapsed(r)) for r in rows],
           "missing_cells": [r["cell"] for r in rows if r["status"] != "done"],
           "bootstrap": {"resamples": stats.N_BOOT, "seed": stats.SEED, "level": stats.LEVEL,
                         "interval": "percentile, over the val faces",
                         "tie": "95% paired-bootstrap interval of our difference contains 0 (same resampled faces); "
                                "without per-face NMEs: equal at the printed decimals",
                         "non_finite": "ranks worst; two non-finite values are not ordered"},
           "agreement": _finite_or_none(table_agreement(spec, rows) if agreement is None else agreement)}
    with open(p, "w") as f:
        json.dump(obj, f, indent=1, default=lambda o: None if isinstance(o, float) and math.isnan(o) else str(o))
    paths["json"] = p
    return paths


def _finite_or_none(o):
    """``o`` with every non-finite float replaced by None (valid JSON)."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _finite_or_none(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite_or_none(v) for v in o]
    return o


def _csv(x):
    if x is None:
        return ""
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    return "%.6g" % x


# ------------------------------------------------------------------------------------------ plots
def _groups(spec, resolved):
    """CED / loss-curve groups: one per model of two-way tables (the cells sharing a name prefix, ``lotr_m/*``;
    labelled by the grid label they share), else one for the whole table."""
    if spec.cols:
        order, by = [], {}
        for rc in resolved:
            k = rc.name.split("/")[0]
            if k not in by:
                order.append(k)
                by[k] = []
            by[k].append(rc)
        out = []
        for k in order:
            c = by[k][0].cell
            out.append((c.col if _col_is_model(spec, c) else c.row, by[k]))
        return out
    return [("", list(resolved))]


def _col_is_model(spec, cell):
    """Whether the cells sharing ``cell``'s name prefix share its column (LOTR VI/VII: the model is the column)."""
    prefix = cell.name.split("/")[0]
    return len({c.col for c in spec.cells if c.name.split("/")[0] == prefix}) == 1


def _curve_label(spec, rc):
    """The grid label that varies within a group (the loss of a Table VI model, the layer count of Table VII)."""
    if spec.cols:
        return (rc.cell.row if _col_is_model(spec, rc.cell) else rc.cell.col) or rc.name
    return rc.cell.col or rc.cell.row or rc.name


def _suffix(group, cells):
    """File-name suffix of a group: the cells' common name prefix (``lotr_m_plus`` for ``lotr_m_plus/*``)."""
    return "_" + _slug(cells[0].name.split("/")[0]) if group else ""


def _slug(s):
    return "".join(c if c.isalnum() else "_" for c in s.lower()).strip("_").replace("__", "_")


def _epoch_series(recs):
    """``(epochs, train loss)`` and ``(epochs, val NME in %)`` of a trainer log (records of type epoch / val;
    non-finite values kept as NaN so that a diverged epoch shows as a gap). A resumed run's repeated epoch keeps
    its last record."""
    loss, val = {}, {}
    for r in recs:
        if r.get("type") == "epoch" and "epoch" in r and isinstance(r.get("loss"), (int, float)):
            loss[r["epoch"]] = float(r["loss"])
        elif r.get("type") == "val" and "epoch" in r and isinstance(r.get("nme"), (int, float)):
            val[r["epoch"]] = 100.0 * float(r["nme"])
    return (sorted(loss), [loss[e] for e in sorted(loss)]), (sorted(val), [val[e] for e in sorted(val)])


def plot_training_curves(spec, resolved, out_dir, rows=None):
    """``train_curves[_<model>].png`` per group (:func:`_groups`): training loss (log scale, each loss in its own
    units) and val NME (%) by epoch, both on a log scale where positive, one line per cell. Collapsed cells
    (:func:`collapsed`: diverged, non-finite, or not better than the mean shape beyond noise) are drawn dashed,
    labelled "collapsed", with an x at their last epoch; the mean shape's val NME is a dotted line. Returns the
    written paths."""
    rows = build_rows(resolved) if rows is None else rows
    by_row = {r["cell"]: r for r in rows}
    paths = []
    for group, cells in _groups(spec, resolved):
        series, base = [], None
        for rc in cells:
            recs = _train_records(rc)
            (le, lv), (ve, vv) = _epoch_series(recs)
            if not le and not ve:
                continue
            for r in recs:
                if r.get("type") == "mean_shape_baseline" and isinstance(r.get("nme"), (int, float)):
                    base = 100.0 * float(r["nme"])
            row = by_row.get(rc.name)
            series.append((_curve_label(spec, rc), (le, lv), (ve, vv), bool(row and collapsed(row))))
        if not series:
            continue
        p = os.path.join(out_dir, "train_curves%s.png" % _suffix(group, cells))
        title = "%s training curves%s" % (spec.label, (", " + group) if group else "")
        vis.plot_training_runs(series, p, title=title, baseline=base)
        paths.append(p)
    return paths


def make_plots(spec, resolved, out_dir, log=print, rows=None):
    """CED curves of the done cells (per-image NMEs, the table's primary evaluation, with the mean shape of
    the first cell), training-loss curves per loss function (Table VI), training curves of every cell (loss and
    val NME by epoch, collapsed cells marked: :func:`plot_training_curves`), LOTR Fig. 2 (Table VI). Returns the
    written paths."""
    paths = []
    key = "nme_flip" if spec.primary_flip else "nme_noflip"
    for group, cells in _groups(spec, resolved):
        curves, threshold, base = {}, None, None
        for rc in cells:
            if cell_status(rc)[0] != "done":
                continue
            pi = read_json(os.path.join(rc.out_dir, "per_image.json")) or {}
            _, per = read_per_image(rc.out_dir)  # per_image.csv first, per_image.json where it is alone
            pi = dict(pi, **{"nme_" + k: v for k, v in per.items()})
            if not pi:
                continue
            nmes = pi.get(key) or pi.get("nme_noflip") or pi.get("nme_flip")
            if not nmes:
                continue
            curves[_curve_label(spec, rc)] = nmes
            threshold = threshold or pi.get("threshold") or (
                read_json(os.path.join(rc.out_dir, "metrics.json")) or {}).get("threshold")
            base = base or pi.get("nme_mean_shape")
        if curves:
            if base:
                curves["mean shape"] = base
            p = os.path.join(out_dir, "ced%s.png" % _suffix(group, cells))
            vis.plot_ced(curves, threshold, p, title="%s CED%s%s" % (spec.label, (", " + group) if group else "",
                                                                    " (flip test)" if key == "nme_flip" else ""))
            paths.append(p)
    if spec.loss_curves:
        for group, cells in _groups(spec, resolved):
            series = {}
            for rc in cells:
                recs = _train_records(rc)
                tr = [(r["step"], r["loss"]) for r in recs if r.get("type") == "train"]
                if len(tr) < 2:
                    tr = [(r["epoch"], r["loss"]) for r in recs if r.get("type") == "epoch"]
                if tr:
                    series[_curve_label(spec, rc)] = tuple(zip(*tr))
            if series:
                p = os.path.join(out_dir, "loss_curves%s.png" % _suffix(group, cells))
                vis.plot_loss_curves(series, p, title="%s training loss, %s (each loss in its own units)"
                                     % (spec.label, group or "all"), logy=True)
                paths.append(p)
    try:
        paths += plot_training_curves(spec, resolved, out_dir, rows)
    except Exception as err:  # noqa: BLE001  (one figure must not hide the others)
        log("training curves failed: %s: %s" % (type(err).__name__, err))
    if spec.loss_functions_figure and resolved:
        L = resolved[0].cfg.LOSS
        p = os.path.join(out_dir, "loss_functions.png")
        vis.plot_loss_functions(p, t=L.SMOOTH_WING_T, w=L.WING_W, eps=L.WING_EPS, beta=L.SMOOTH_L1_BETA)
        paths.append(p)
    return paths


def report(spec, resolved, out_root="output/tables", context=None, plots=True, log=print, records=None):
    """Build, render and write the comparison (and the plots); returns ``(markdown, paths)``. ``records``: as
    :func:`build_rows` (the plots, which need the run folders, are then left out)."""
    rows = build_rows(resolved, records=records)
    plots = plots and records is None
    ctx = dict(context or {})
    done = [r for r in rows if r["num_images"]]
    if done and "num_images" not in ctx:
        ctx["num_images"] = done[0]["num_images"]
    if resolved and "test_split" not in ctx:
        ctx["test_split"] = resolved[0].eval_cfg.DATA.TEST_SPLIT
    agreement = table_agreement(spec, rows)
    md = render_markdown(spec, rows, ctx, agreement=agreement)
    tdir = table_dir(spec, out_root)
    paths = write_report(spec, rows, md, tdir, ctx, agreement=agreement)
    if plots:
        try:
            paths["plots"] = make_plots(spec, resolved, tdir, log, rows)
        except Exception as err:  # noqa: BLE001  (a plot must not hide the table)
            log("plots failed: %s: %s" % (type(err).__name__, err))
            paths["plots"] = []
    return md, paths
