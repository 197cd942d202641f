#!/usr/bin/env python
"""Render the documentation's numbers from the committed result records under ``results/``.

``python tools/render_docs.py [--check] [--list]``

README.md and ``docs/*.md`` hold generated blocks between two markers::

    <!-- results:NAME -->
    ... (written by this tool; do not edit) ...
    <!-- /results:NAME -->

Each block NAME is rendered by one function of :data:`BLOCKS` from the records (``results/**/*.json``: the
``record.json`` of ``tools/test.py``, the table-cell records of ``tools/reproduce_table.py --save-records``, the
JSON of ``tools/benchmark.py`` / ``tools/bench_train.py`` and ``tools/detector_noise.py``, the training-run
summaries) and, for the paper's numbers, from :mod:`lotr_gluon.tables` (``lotr_gluon/tables/paper/*.json``, the
one place they are typed). Our NMEs and AUCs carry the 95% bootstrap interval over the faces, computed here from
each record's per-face NMEs (:mod:`lotr_gluon.tables.stats`, the same resampling as ``tools/test.py``), and every
row names its record file, alignment, initialisation, flip test and epochs. Without ``--check`` the blocks are
rewritten in place; with ``--check`` nothing is written and the exit status is 1 when a file differs from what
the records render (``tests/test_docs.py`` runs this check). A marker naming an unknown block is an error
(exit 2).
"""
import argparse
import glob
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # the repository root: lotr_gluon and tools.bench_train, from any working directory

from lotr_gluon import errors as E  # noqa: E402
from lotr_gluon.benchmark import render_markdown  # noqa: E402
from lotr_gluon.records import baseline_line, metrics_line, predictor_line  # noqa: E402
from lotr_gluon.tables import get_table, resolve_cells  # noqa: E402
from lotr_gluon.tables.records import load_records as load_cell_records  # noqa: E402
from lotr_gluon.tables.report import _num, build_rows, table_agreement  # noqa: E402
from lotr_gluon.tables.spec import load_paper, paper_value  # noqa: E402
from lotr_gluon.tables.stats import bootstrap_interval, paired_difference  # noqa: E402
from tools.bench_train import render  # noqa: E402
RESULTS = "results"
#: the files that may hold generated blocks (relative to the repository root)
DOC_GLOBS = ("README.md", "docs/*.md")
BLOCK_RE = re.compile(r"(<!-- results:([\w.-]+) -->\n)(.*?)(<!-- /results:\2 -->)", re.S)


# ------------------------------------------------------------------------------------------ records
def load_records(root=ROOT):
    """``{path relative to root: record}`` of every JSON file under ``results/``."""
    out = {}
    for path in sorted(glob.glob(os.path.join(root, RESULTS, "**", "*.json"), recursive=True)):
        with open(path) as f:
            out[os.path.relpath(path, root)] = json.load(f)
    return out


def kind_of(rec):
    """``'evaluation'``, ``'table_cell'``, ``'training runs'``, ``'detector_noise'``, ``'benchmark'``,
    ``'bench_train'`` or None."""
    return rec.get("kind") if isinstance(rec, dict) else None


def of_kind(records, kind):
    return [(p, r) for p, r in records.items() if kind_of(r) == kind]


def _pct(x, d=2):
    return "%.*f%%" % (d, 100.0 * x)


def _link(path, prefix):
    return "[`%s`](%s%s)" % (os.path.basename(path), prefix, path)


def _per_face(rec, key):
    """``(names, nmes)`` of a record's per-face NMEs under ``key`` (``no_flip`` / ``flip``; table cells:
    ``noflip`` / ``flip``)."""
    per = (rec.get("per_face_nme") or {}).get(key) or {}
    names = sorted(per)
    return names, [per[n] for n in names]


def interval(rec, key, stat="nme", threshold=None):
    """95% bootstrap interval (fractions) over the faces of a record's evaluation ``key``."""
    _, nmes = _per_face(rec, key)
    if not nmes:
        return None
    m = rec["metrics"][key]
    return bootstrap_interval(nmes, stat, threshold if threshold is not None else m["threshold"])[1:]


def _with_ci(rec, key, stat="nme"):
    m = (rec.get("metrics") or {}).get(key)
    if not m:
        return "—"
    ci = interval(rec, key, stat)
    s = _pct(m[stat])
    return s + (" [%.2f, %.2f]" % (100 * ci[0], 100 * ci[1]) if ci else "")


def _align(rec):
    a = rec.get("alignment") or "?"
    return "detector yunet" if a.startswith("detector yunet") else a


def _trained_on(rec):
    """How the training faces were aligned (``training.alignment`` of the record), with the alignment-noise
    augmentation when it was on; '?' when the record does not say."""
    t = rec.get("training") or {}
    if "alignment" not in t:
        return "?"
    return t["alignment"] + (" + measured noise" if any(t.get("align_noise_std") or ()) else "")


def _epochs(rec):
    t = rec.get("training") or {}
    return str(t["epochs"]) if t.get("epochs") else "—"


# ------------------------------------------------------------------------------------------ paper numbers
#: which paper number an evaluation of a config compares with: config name -> [(paper, table, row, key)]
PAPER_ROWS = {"lotr_m": [("lotr", 3, "LOTR-M", "nme"), ("lotr", 3, "LOTR-M", "auc")],
              "cnn_ffn_mnv2": [("lotr", 5, "CNN + FFN (MobileNetV2 1.0)", "auc_flip")]}
MODEL_NAMES = {"lotr_m": "LOTR-M", "cnn_ffn_mnv2": "CNN+FFN (MobileNetV2-1.0)", "lotr_m_plus": "LOTR-M+",
               "lotr_r_plus": "LOTR-R+"}


def paper_number(paper, table, row, key):
    """``(value, provenance)`` from ``lotr_gluon/tables/paper/`` (None, None when absent)."""
    return paper_value(load_paper(paper, table), row, key)


def _data(rec):
    """``datatang val (100)``: the data set, split and number of faces of an evaluation record."""
    d = rec.get("data") or {}
    m = next(iter((rec.get("metrics") or {}).values()), {})
    split = os.path.splitext(os.path.basename(str(d.get("split", "")).rstrip("/")))[0]
    return "%s %s (%s)" % (d.get("name", "?"), split, m.get("num_images", "?"))


#: data sets whose numbers sit next to the papers' JD-landmark numbers (106 points, the same normalisation)
JD_LIKE = ("datatang", "jd")


def _paper_cells(rec):
    nme = auc = "—"
    if (rec.get("data") or {}).get("name") not in JD_LIKE:
        return nme, auc
    for paper, table, row, key in PAPER_ROWS.get(rec.get("config_name"), []):
        v, prov = paper_number(paper, table, row, key)
        if v is None:
            continue
        s = "%.2f%% (%s %s)" % (v, paper.upper(), prov.split(",")[0])
        if key.startswith("nme"):
            nme = s
        else:
            auc = s
    return nme, auc


# ------------------------------------------------------------------------------------------ blocks
def _evaluations(records):
    """Evaluation records: Datatang first, then by data set; LOTR-M first, then by config; longer training first;
    ground-truth alignment first."""
    ev = of_kind(records, "evaluation")
    return sorted(ev, key=lambda pr: ((pr[1].get("data") or {}).get("name") != "datatang",
                                      (pr[1].get("data") or {}).get("name", ""),
                                      pr[1].get("config_name") != "lotr_m", pr[1].get("config_name"),
                                      -((pr[1].get("training") or {}).get("epochs") or 0), _align(pr[1]) != (
                                          "ground-truth five points"), pr[0]))


def block_quickstart(records, prefix):
    path = os.path.join(RESULTS, "datatang", "quickstart.record.json")
    rec = records.get(path)
    if rec is None:
        return "No quickstart record yet (`results/datatang/quickstart.record.json`).\n"
    t = rec["training"]
    mc = rec["machine"]
    lines = ["Measured (record %s): %d epochs, %.0f s of training (sum of the epoch times, median %.1f images/s), "
             "%s, %s cores, %s, `OMP_NUM_THREADS=%s`, backbone from %s, %s. Then `tools/test.py` prints, without "
             "and with the flip test:" % (_link(path, prefix), t["epochs"], t["train_seconds"], t["images_per_s"],
                                           mc["cpu"], mc["cores"], "GPU" if mc.get("gpus") else "CPU only",
                                           mc.get("omp_num_threads"), rec["init"], rec["alignment"]), "", "```"]
    for key in ("no_flip", "flip"):
        m = rec["metrics"][key]
        lines.append("model      : " + metrics_line(m, interval(rec, key, "nme"), interval(rec, key, "auc"),
                                                    m["threshold"], key == "flip"))
        if key == "no_flip" and rec.get("predictor"):
            lines.append("predictor  : " + predictor_line(rec["predictor"], m["threshold"]))
    base = rec.get("mean_shape_baseline")
    if base:
        lines.append("mean shape : " + baseline_line(base, base["threshold"]))
    lines.append("```")
    return "\n".join(lines) + "\n"


def block_glance(records, prefix):
    head = ["| model | data (faces) | backbone init | epochs | trained on | evaluated on | NME [95%] | NME, flip test | "
            "AUC, flip test | paper NME, flip test | paper AUC, flip test | record |",
            "|---|---|---|---:|---|---|---|---|---|---|---|---|"]
    rows = []
    for path, rec in _evaluations(records):
        if len(path.split(os.sep)) > 3:  # results/<data>/<file> only; studies in sub-folders are in docs/
            continue
        pn, pa = _paper_cells(rec)
        rows.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            MODEL_NAMES.get(rec.get("config_name"), rec.get("config_name")), _data(rec), rec.get("init"),
            _epochs(rec), _trained_on(rec),
            _align(rec), _with_ci(rec, "no_flip"), _with_ci(rec, "flip"), _with_ci(rec, "flip", "auc"), pn, pa,
            _link(path, prefix)))
    if not rows:
        return "No evaluation record under `results/` yet.\n"
    return "\n".join(head + rows) + "\n"


def block_evaluations(records, prefix):
    head = ["| model | config | data (faces) | init | epochs | trained on | evaluated on | flip | NME [95%] | AUC [95%] | "
            "FR | threshold | mean shape NME | record |", "|---|---|---|---|---:|---|---|---|---|---|---:|---:|---:|---|"]
    rows = []
    for path, rec in _evaluations(records):
        base = rec.get("mean_shape_baseline") or {}
        for key in ("no_flip", "flip"):
            m = (rec.get("metrics") or {}).get(key)
            if not m:
                continue
            rows.append("| %s | `%s` | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f | %s | %s |" % (
                MODEL_NAMES.get(rec.get("config_name"), rec.get("config_name")), rec.get("config_name"), _data(rec),
                rec.get("init"), _epochs(rec), _trained_on(rec), _align(rec), "on" if key == "flip" else "off",
                _with_ci(rec, key, "nme"), _with_ci(rec, key, "auc"), _pct(m["fr"]), m["threshold"],
                _pct(base["nme"]) if base else "—", _link(path, prefix)))
    return "\n".join(head + rows) + "\n" if rows else "No evaluation record under `results/` yet.\n"


#: paired comparisons over the same faces: (record a, record b, what the difference means)
PAIRS = [("datatang/lotr_m_imagenet_36ep.record.json", "datatang/cnn_ffn_mnv2_imagenet_36ep.record.json",
          "LOTR-M minus CNN+FFN, same recipe and schedule, ground-truth five points"),
         ("datatang/lotr_m_imagenet_36ep_yunet_eval.record.json", "datatang/lotr_m_imagenet_36ep.record.json",
          "the same LOTR-M weights aligned on YuNet's five points minus on the ground-truth five points"),
         ("datatang/quickstart.record.json", "datatang/quickstart_gt_eval.record.json",
          "the quickstart's weights on YuNet's five points (what the Predictor scores) minus on the ground-truth "
          "five points"),
         ("datatang/alignment_study/qs12cos_noise_det_eval_det.record.json",
          "datatang/alignment_study/qs12cos_det_eval_det.record.json",
          "LOTR-M, 12 epochs, trained and evaluated on YuNet's five points: with the measured alignment noise minus "
          "with rotation +-5 deg"),
         ("datatang/alignment_study/qs12cos_det_eval_det.record.json",
          "datatang/alignment_study/qs12cos_gt_eval_det.record.json",
          "LOTR-M, 12 epochs, evaluated on YuNet's five points: trained on YuNet's minus trained on the ground-truth "
          "five points"),
         ("datatang/alignment_study/qs12cos_noise_det_eval_det.record.json",
          "datatang/alignment_study/qs12cos_noise_gt_eval_gt.record.json",
          "the detector protocol (trained and evaluated on YuNet's five points) minus the ground-truth protocol, the "
          "same recipe (12 epochs, measured alignment noise)")]


def block_paired(records, prefix):
    head = ["| comparison | flip | NME difference [95% paired] | AUC difference [95% paired] | records |",
            "|---|---|---|---|---|"]
    rows = []
    for a, b, what in PAIRS:
        ra, rb = records.get(os.path.join(RESULTS, a)), records.get(os.path.join(RESULTS, b))
        if ra is None or rb is None:
            continue
        for key in ("no_flip", "flip"):
            na, xa = _per_face(ra, key)
            nb, xb = _per_face(rb, key)
            if not xa or na != nb:
                continue
            th = ra["metrics"][key]["threshold"]
            cells = []
            for stat in ("nme", "auc"):
                d, lo, hi = paired_difference(xa, xb, stat, th)
                cells.append("%+.2f [%.2f, %.2f] points" % (100 * d, 100 * lo, 100 * hi))
            rows.append("| %s | %s | %s | %s | %s, %s |" % (what, "on" if key == "flip" else "off", cells[0],
                                                            cells[1], _link(os.path.join(RESULTS, a), prefix),
                                                            _link(os.path.join(RESULTS, b), prefix)))
    return "\n".join(head + rows) + "\n" if rows else "No pair of records over the same faces yet.\n"


def block_training_runs(records, prefix):
    out = []
    for path, rec in of_kind(records, "training runs"):
        out += ["%s (record %s; %s)." % (rec.get("what", ""), _link(path, prefix), rec.get("machine", "")), "",
                "| run | epochs | best val NME (epoch) | last | images/s | training s | behaviour | overrides of the "
                "command |", "|---|---:|---|---|---:|---:|---|---|"]
        for name, r in rec["runs"].items():
            cmd = r.get("command", "")
            tail = cmd.split("--no-progress", 1)[1].strip() if "--no-progress" in cmd else cmd
            cfg = re.search(r"--cfg (\S+)", cmd)
            out.append("| %s | %d%s | %s (%d) | %s | %.1f | %.0f | %s | `%s`%s |" % (
                name, r["epochs"], " (stopped by hand)" if r.get("stopped_by_hand") else "", _pct(r["best_nme"]),
                r["best_epoch"], _pct(r["last_nme"]), r["images_per_s"], r["train_seconds"], r["behaviour"],
                tail, " on `%s`" % cfg.group(1) if cfg else ""))
        out.append("")
    return "\n".join(out) if out else "No training-run summary under `results/` yet.\n"


def block_detector_noise(records, prefix):
    head = ["| split | faces | detected | log scale std | rotation std (deg) | shift x std | shift y std | "
            "rotation p95 abs (deg) | record |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    rows = []
    for path, rec in of_kind(records, "detector_noise"):
        st = rec["statistics"]
        rows.append("| %s | %d | %d | %.4f | %.2f | %.4f | %.4f | %.2f | %s |" % (
            rec["data"]["split"], rec["data"]["faces"], rec["data"]["detected"], st["log_scale"]["std"],
            st["rotation_deg"]["std"], st["shift_x"]["std"], st["shift_y"]["std"], st["rotation_deg"]["p95_abs"],
            _link(path, prefix)))
    return "\n".join(head + rows) + "\n" if rows else "No detector-noise record under `results/` yet.\n"


def _table_block(paper, table, data="datatang"):
    def render(records, prefix):
        spec = get_table(paper, table)
        dest = os.path.join(ROOT, RESULTS, data, "tables")
        recs = load_cell_records(spec, dest)
        # a cell recorded at a schedule of its own (--cell-scale) is resolved at that schedule, and marked
        scales = [(n, r["scale"]) for n, r in sorted(recs.items()) if r.get("scale") not in (None, "paper")]
        rows = build_rows(resolve_cells(spec, data, cell_scales=scales), records=recs)
        mets = [m for m in spec.metrics]
        head = ["cell", spec.row_label] + ([spec.col_label] if spec.cols else [])
        for m in mets:
            head += ["%s paper" % m.label, "%s ours" % m.label]
        head += ["init", "alignment", "epochs", "record"]
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in rows:
            mark = " [%s]" % r["scale"] if r.get("scale") not in (None, "paper") else ""
            cells = [r["cell"] + mark, r["row"]] + ([r["col"]] if spec.cols else [])
            for m in mets:
                ci = (r.get("ci") or {}).get(m.key)
                ours = _num(r["ours"].get(m.key), m.decimals) + (
                    " [%s, %s]" % (_num(ci[0], m.decimals), _num(ci[1], m.decimals)) if ci else "")
                cells += [_num(r["paper"].get(m.key), m.decimals), ours if r["status"] == "done" else "—"]
            rec = r.get("record")
            cells += [r["init"], r.get("alignment") or "—",
                      str(r["training"]["epochs"]) if r.get("training") else "—",
                      _link(os.path.relpath(rec, ROOT), prefix) if rec else "—"]
            out.append("| " + " | ".join(cells) + " |")
        done = sum(r["status"] == "done" for r in rows)
        out += ["", "Paper: %s, on %s. Cells with a record of their current configuration: %d of %d." % (
            spec.label, _paper_dataset(spec), done, len(rows))]
        if done >= 2:
            out += [""] + ["- " + a["line"] for a in table_agreement(spec, rows)]
        return "\n".join(out) + "\n"
    return render


def _paper_dataset(spec):
    p = load_paper(spec) or {}
    return p.get("dataset", "?")


def block_speed(records, prefix):
    out = []
    for path, rec in of_kind(records, "benchmark"):
        out += ["Record %s, command `%s`:" % (_link(path, prefix), rec.get("command")), "",
                render_markdown(rec["rows"], machine=rec.get("machine"), notes=rec.get("notes")).rstrip("\n"), ""]
    for path, rec in of_kind(records, "bench_train"):
        out += ["Record %s, command `%s`:" % (_link(path, prefix), rec.get("command")), "", render(rec), ""]
    if not out:
        return ("No timing record under `results/` yet: run `python tools/benchmark.py --out "
                "results/<machine>/benchmark.json` or `python tools/bench_train.py --out "
                "results/<machine>/bench_train.json` on a quiet machine, commit the JSON and re-render.\n")
    return "\n".join(out).rstrip("\n") + "\n"


def block_errors(records, prefix):
    """The exit codes of :mod:`lotr_gluon.errors` (not a result: generated so that the page follows the code)."""
    import inspect
    out = ["| exit code | class | meaning |", "|---:|---|---|"]
    classes = [getattr(E, n) for n in E.__all__]
    for c in sorted(classes, key=lambda c: c.exit_code):
        code = "%d" % c.exit_code + (" / %d" % (128 + 15) if c is E.Interrupted else "")
        doc = " ".join(inspect.getdoc(c).split("\n\n")[0].split()).replace("``", "`")
        out.append("| %s | `%s` | %s |" % (code, c.__name__, doc))
    return "\n".join(out) + "\n"


#: block name -> renderer(records, link prefix from the document to the repository root)
def _peer_tables(records, prefix, ours_only):
    """The tables of ``tools/compare_peers.py`` (records of kind ``peer_comparison``), as the tool printed them,
    with their references; ``ours_only``: only the records that include one of our models."""
    out = []
    for path, rec in of_kind(records, "peer_comparison"):
        if ours_only and not any(r.get("kind") == "ours" for r in rec.get("rows", [])):
            continue
        what = "Record %s:" % _link(path, prefix) if ours_only else "Record %s, command `%s`:" % (
            _link(path, prefix), rec.get("command"))
        out += [what, "", rec["table"].rstrip("\n"), ""]
        out += ["Reference: %s." % r for r in rec.get("references", [])] + ([""] if rec.get("references") else [])
    return "\n".join(out).rstrip("\n") + "\n" if out else None


def block_peers(records, prefix):
    return _peer_tables(records, prefix, False) or "No peer comparison under `results/` yet.\n"


def block_peers_summary(records, prefix):
    return _peer_tables(records, prefix, True) or "No comparison of our models with a peer yet.\n"


BLOCKS = {"quickstart": block_quickstart, "peers": block_peers, "peers-summary": block_peers_summary,
          "glance": block_glance, "evaluations": block_evaluations,
          "paired": block_paired, "training-runs": block_training_runs, "detector-noise": block_detector_noise,
          "table-lotr-5": _table_block("lotr", 5), "table-lotr-6": _table_block("lotr", 6),
          "table-lotr-7": _table_block("lotr", 7), "table-earp-3": _table_block("earp", 3),
          "speed": block_speed, "errors": block_errors}


# ------------------------------------------------------------------------------------------ documents
def doc_files(root=ROOT):
    out = []
    for g in DOC_GLOBS:
        out += sorted(glob.glob(os.path.join(root, g)))
    return out


def blocks_in(text):
    """``[(name, body)]`` of the generated blocks of a document."""
    return [(m.group(2), m.group(3)) for m in BLOCK_RE.finditer(text)]


def render_text(text, records, prefix, cache=None):
    """``text`` with every generated block rendered from ``records``.

    Raises
    ------
    KeyError
        A block name that :data:`BLOCKS` does not know.
    """
    cache = {} if cache is None else cache

    def sub(m):
        name = m.group(2)
        if name not in BLOCKS:
            raise KeyError("unknown results block %r (known: %s)" % (name, ", ".join(sorted(BLOCKS))))
        key = (name, prefix)
        if key not in cache:
            cache[key] = BLOCKS[name](records, prefix)
        return m.group(1) + cache[key] + m.group(4)
    return BLOCK_RE.sub(sub, text)


def render_all(root=ROOT):
    """``{path: (current text, rendered text)}`` of every document."""
    records = load_records(root)
    cache, out = {}, {}
    for path in doc_files(root):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        prefix = os.path.relpath(root, os.path.dirname(path))
        prefix = "" if prefix == "." else prefix + "/"
        out[path] = (text, render_text(text, records, prefix, cache))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 when a document differs")
    ap.add_argument("--list", action="store_true", help="list the block names and where they are used")
    args = ap.parse_args(argv)
    try:
        docs = render_all()
    except KeyError as err:
        print("error: %s" % err.args[0], file=sys.stderr)
        return 2
    if args.list:
        for path, (text, _) in docs.items():
            for name, _ in blocks_in(text):
                print("%-16s %s" % (name, os.path.relpath(path, ROOT)))
        return 0
    stale = [p for p, (old, new) in docs.items() if old != new]
    if args.check:
        for p in stale:
            names = [n for (n, a), (_, b) in zip(blocks_in(docs[p][0]), blocks_in(docs[p][1])) if a != b]
            print("%s: generated blocks differ from the records: %s" % (os.path.relpath(p, ROOT), ", ".join(names)))
        if stale:
            print("run: python tools/render_docs.py", file=sys.stderr)
        return 1 if stale else 0
    for p in stale:
        with open(p, "w", encoding="utf-8") as f:
            f.write(docs[p][1])
        print("rendered %s" % os.path.relpath(p, ROOT))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    sys.exit(main())
