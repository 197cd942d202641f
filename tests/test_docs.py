"""The documentation's numbers come from the result records under ``results/``.

Rules (kept simple on purpose):

1. **Rendered.** Every generated block (``<!-- results:NAME -->`` ... ``<!-- /results:NAME -->``) of README.md and
   ``docs/*.md`` is exactly what ``tools/render_docs.py`` renders from the records; a marker naming an unknown
   block fails.
2. **No hand-typed results.** Outside the generated blocks, README.md and ``docs/*.md`` hold no percentage and no
   ``ms`` / ``images/s`` / ``img/s`` figure, except the tokens of :data:`ALLOWED` (each a setting or a tolerance,
   not a result). Paper numbers are rendered too (from ``lotr_gluon/tables/paper/``, their one owner).
3. **Short README.** README.md has at most :data:`README_MAX_LINES` lines.
4. **Fresh records.** Every record names the commit of the code that produced it (``code.commit``, with
   ``code.dirty``). For an evaluation or table-cell record, a commit after the record's commit that changed one of
   :data:`DEPENDS` or the record's config file fails the test unless the record lists it in
   ``accepted_changes`` (``[{"commit": sha, "why": text}]``: reviewed, does not change the record's numbers).
   A record whose commit is not in this checkout's history is skipped with a message; so is the whole rule
   outside a git checkout. A dirty tree at recording time is reported by the record, not failed here.
"""
import glob
import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tools import render_docs  # noqa: E402

README_MAX_LINES = 250
#: number tokens allowed outside generated blocks: token -> why it is not a result
ALLOWED = {"95%": "the level of the bootstrap intervals (lotr_gluon.tables.stats.LEVEL)",
           "3%": "the tolerance of tests/test_models.py on LOTR Table V's parameter counts",
           "20%": "the tolerance of tests/test_flops.py on the papers' GFLOPs"}
#: code an evaluation's numbers depend on (rule 4), besides the record's config file
DEPENDS = ("lotr_gluon/models/", "lotr_gluon/blocks/", "heatmap_baseline/", "lotr_gluon/losses.py",
           "lotr_gluon/metrics.py", "lotr_gluon/evaluate.py")
NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*\s?(?:%|ms\b|images/s|img/s)")


def _docs():
    return [p for p in render_docs.doc_files(ROOT)]


def test_docs_are_what_the_records_render():
    stale = []
    for path, (text, rendered) in render_docs.render_all(ROOT).items():
        if text != rendered:
            names = [n for (n, a), (_, b) in zip(render_docs.blocks_in(text), render_docs.blocks_in(rendered))
                     if a != b]
            stale.append("%s: %s" % (os.path.relpath(path, ROOT), ", ".join(names)))
    assert not stale, "run python tools/render_docs.py: %s" % "; ".join(stale)


def test_unknown_block_is_an_error():
    text = "<!-- results:no-such-block -->\nx\n<!-- /results:no-such-block -->\n"
    with pytest.raises(KeyError, match="no-such-block"):
        render_docs.render_text(text, {}, "")


def test_render_replaces_only_the_block():
    text = "before 1.5%\n<!-- results:errors -->\nold\n<!-- /results:errors -->\nafter\n"
    out = render_docs.render_text(text, {}, "")
    assert out.startswith("before 1.5%\n<!-- results:errors -->\n| exit code |") and out.endswith(
        "<!-- /results:errors -->\nafter\n")
    assert "| 4 | `ModelError` |" in out and "| 130 / 143 | `Interrupted` |" in out


def outside_blocks(text):
    """``text`` without the bodies of its generated blocks."""
    return render_docs.BLOCK_RE.sub(lambda m: m.group(1) + m.group(4), text)


def test_number_tokens_rule():
    assert NUMBER.findall("NME 2.59% and 12.5 ms, 16.5 images/s, 3 img/s; v1.9.1 0.08") == \
        ["2.59%", "12.5 ms", "16.5 images/s", "3 img/s"]
    assert outside_blocks("a 1%\n<!-- results:x -->\n2%\n<!-- /results:x -->\n") == \
        "a 1%\n<!-- results:x -->\n<!-- /results:x -->\n"


def test_no_result_numbers_outside_generated_blocks():
    bad = []
    for path in _docs():
        with open(path, encoding="utf-8") as f:
            text = outside_blocks(f.read())
        for i, line in enumerate(text.splitlines(), 1):
            bad += ["%s: %r in %r" % (os.path.relpath(path, ROOT), t, line.strip()[:100])
                    for t in NUMBER.findall(line) if t not in ALLOWED]
    assert not bad, "numbers typed outside a generated block (render them from a record): %s" % bad


def test_readme_is_short():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        n = len(f.read().splitlines())
    assert n <= README_MAX_LINES, "README.md has %d lines (at most %d): move detail to docs/" % (n, README_MAX_LINES)


def test_readme_links_resolve():
    """Every relative link of README.md and docs/*.md points at a file or folder of the repository (except the
    architecture page, which another part of the documentation adds)."""
    missing = []
    for path in _docs():
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for target in re.findall(r"\]\(([^)#\s]+)\)", text):
            if "://" in target or target.endswith("architecture.md"):
                continue
            if not os.path.exists(os.path.normpath(os.path.join(os.path.dirname(path), target))):
                missing.append("%s -> %s" % (os.path.relpath(path, ROOT), target))
    assert not missing, missing


# ------------------------------------------------------------------------------------------ rule 4
def _git(*args):
    out = subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def _records():
    return sorted(glob.glob(os.path.join(ROOT, render_docs.RESULTS, "**", "*.json"), recursive=True))


def _config_file(rec):
    if rec.get("cfg_file"):
        return rec["cfg_file"]
    m = re.search(r"--cfg (\S+)", rec.get("command", ""))
    return m.group(1) if m else None


def test_every_record_names_its_code():
    bad = []
    for path in _records():
        with open(path) as f:
            rec = json.load(f)
        code = rec.get("code") or {}
        commit = code.get("commit") or rec.get("code_commit_at_summary")
        if not (isinstance(commit, str) and re.fullmatch(r"[0-9a-f]{40}", commit)):
            bad.append(os.path.relpath(path, ROOT))
    assert not bad, "records without the commit of their code: %s" % bad


def _result_records():
    """The evaluation and table-cell records (rule 4)."""
    out = []
    for p in _records():
        with open(p) as f:
            if json.load(f).get("kind") in ("evaluation", "table_cell"):
                out.append(os.path.relpath(p, ROOT))
    return out


def unaccepted_changes(rec):
    """``["<sha> <subject>"]`` of the commits after ``rec``'s code commit that changed :data:`DEPENDS` or its
    config file and that ``rec["accepted_changes"]`` does not list (rule 4)."""
    paths = list(DEPENDS) + [p for p in [_config_file(rec)] if p]
    changed = (_git("log", "--no-merges", "--format=%H %s", rec["code"]["commit"] + "..HEAD", "--", *paths)
               or "").splitlines()
    accepted = {a["commit"] for a in rec.get("accepted_changes", [])}
    return [c for c in changed if c.split()[0] not in accepted]


def _need_git():
    if _git("rev-parse", "--is-inside-work-tree") != "true":
        pytest.skip("not a git checkout: record freshness not checked")


def test_freshness_rule_sees_a_change_after_the_record_and_its_acceptance():
    _need_git()
    last = _git("log", "-1", "--no-merges", "--format=%H", "--", "lotr_gluon/models/heads.py")
    before = _git("rev-parse", last + "^")
    if not last or not before:
        pytest.skip("no history of lotr_gluon/models/heads.py in this checkout")
    rec = {"code": {"commit": before}, "command": "tools/test.py --cfg experiments/datatang/lotr_m.yaml"}
    assert last in [c.split()[0] for c in unaccepted_changes(rec)]
    rec["accepted_changes"] = [{"commit": last, "why": "test"}]
    assert last not in [c.split()[0] for c in unaccepted_changes(rec)]
    assert unaccepted_changes({"code": {"commit": _git("rev-parse", "HEAD")}}) == []


@pytest.mark.parametrize("path", _result_records())
def test_record_is_not_older_than_the_code_it_depends_on(path):
    with open(os.path.join(ROOT, path)) as f:
        rec = json.load(f)
    _need_git()
    commit = rec["code"]["commit"]
    if _git("cat-file", "-e", commit + "^{commit}") is None:
        pytest.skip("%s: its code commit %s is not in this checkout's history (shallow clone?)" % (path, commit))
    paths = list(DEPENDS) + [p for p in [_config_file(rec)] if p]
    missing = [c[:12] + c[40:80] for c in unaccepted_changes(rec)]
    assert not missing, ("%s was produced at %s; since then these commits changed the code it depends on (%s): "
                         "re-run it, or add each to its accepted_changes with why it does not change the numbers: "
                         "%s" % (path, commit[:12], ", ".join(paths), missing))


def test_a_table_block_shows_a_cell_record_next_to_the_paper(tmp_path, monkeypatch):
    """A committed cell record of the current configuration fills its row: ours with the interval over its
    faces, the paper's number from lotr_gluon/tables/paper/, init, alignment, epochs and the record's file; a
    record of another configuration does not count."""
    import numpy as np
    from lotr_gluon.metrics import auc
    from lotr_gluon.tables import get_table, resolve_cells
    from lotr_gluon.tables.records import record_path
    from lotr_gluon.tables.stats import bootstrap_interval
    spec = get_table("lotr", 6)
    rc = [r for r in resolve_cells(spec, "datatang") if r.name == "lotr_m/l1"][0]
    nmes = np.random.RandomState(0).uniform(0.01, 0.05, 100)
    rec = {"kind": "table_cell", "cell": rc.name, "cell_hash": rc.cell_hash, "threshold": 0.08,
           "values": {"auc": 100 * auc(nmes, 0.08)}, "init": "ImageNet", "alignment": "ground-truth five points",
           "training": {"epochs": 36, "of": 36, "train_seconds": 60.0, "images_per_s": 10.0},
           "per_face_nme": {"flip": {"%06d" % i: float(x) for i, x in enumerate(nmes)}}}
    path = record_path(str(tmp_path / "results" / "datatang" / "tables"), spec, rc.name)
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:
        json.dump(rec, f)
    monkeypatch.setattr(render_docs, "ROOT", str(tmp_path))
    out = render_docs.BLOCKS["table-lotr-6"]({}, "")
    _, lo, hi = bootstrap_interval(nmes, "auc", 0.08)
    paper = "%.2f" % render_docs.paper_number("lotr", 6, ("L1", "LOTR-M"), "auc")[0]
    line = [l for l in out.splitlines() if l.startswith("| lotr_m/l1 |")][0]
    assert line == ("| lotr_m/l1 | L1 | LOTR-M | %s | %.2f [%.2f, %.2f] | ImageNet | ground-truth five points | 36 | "
                    "[`lotr_m__l1.record.json`](results/datatang/tables/lotr-6/lotr_m__l1.record.json) |"
                    % (paper, rec["values"]["auc"], 100 * lo, 100 * hi))
    assert "Cells with a record of their current configuration: 1 of 15." in out
    rec["cell_hash"] = "0" * 12
    with open(path, "w") as f:
        json.dump(rec, f)
    out = render_docs.BLOCKS["table-lotr-6"]({}, "")
    assert "| lotr_m/l1 | L1 | LOTR-M | %s | — |" % paper in out and "0 of 15" in out
    # a cell recorded at a schedule of its own (--cell-scale) counts at that schedule and is marked
    short = [r for r in resolve_cells(spec, "datatang", cell_scales=[("lotr_m/l1", "epochs=18")])
             if r.name == "lotr_m/l1"][0]
    rec.update(cell_hash=short.cell_hash, scale="epochs=18")
    with open(path, "w") as f:
        json.dump(rec, f)
    out = render_docs.BLOCKS["table-lotr-6"]({}, "")
    assert "| lotr_m/l1 [epochs=18] | L1 | LOTR-M | %s | %.2f [" % (paper, rec["values"]["auc"]) in out
