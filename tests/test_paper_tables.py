"""The papers' numbers (lotr_gluon/tables/paper/*.json): every printed number of LOTR Tables II-VII and Earp et al.
Tables 1-7 with table/row/column, NaN where the paper prints NaN, a marked gap only where it prints '-'; spot checks
against numbers read in shared/papers/lotr.md and earp.md by hand; the grids as printed; the dry-run shows them."""
import glob
import json
import math
import os
import sys

import pytest

from lotr_gluon.tables import build_rows, get_table, render_markdown, resolve_cells
from lotr_gluon.tables import spec as S
from lotr_gluon.tables.report import render_paper_grid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import reproduce_table  # noqa: E402

ROMAN = {"2": "II", "3": "III", "4": "IV", "5": "V", "6": "VI", "7": "VII"}
# printed numbers per table (rows x columns of the paper's grid, plus numbers taken from the text)
COUNTS = {("lotr", "2"): 3 * 7 * 7, ("lotr", "3"): 8 * 3 + 5, ("lotr", "4"): 2 * 4 * 6,
          ("lotr", "5"): 9 * 8,  # AUC x2, GPU mean and std x2, size, params
          ("lotr", "6"): 5 * 3, ("lotr", "7"): 6 * 3,
          ("earp", "1"): 5 * 2, ("earp", "2"): 2 * 3, ("earp", "3"): 11 * 3, ("earp", "4"): 4 * 2,
          ("earp", "5"): 11 * 3, ("earp", "6"): 4 * 3, ("earp", "7"): 4 * 7}


def _all():
    return {(p, t): S.load_paper(p, t) for p, t in COUNTS}


def _get(d, row, column, key=None, group=None):
    found = [e for e in d["values"] if e["row"] == row and e["column"] == column and (key is None or e["key"] == key)
             and (group is None or e.get("group") == group)]
    assert len(found) == 1, (d["label"], row, column, key, group, len(found))
    return found[0]


def test_every_file_every_cell_has_a_number_with_table_row_column():
    files = sorted(os.path.basename(f) for f in glob.glob(os.path.join(S.PAPER_DIR, "*.json")))
    assert files == sorted("%s_table%s.json" % k for k in COUNTS)
    nans, gaps = [], []
    for (paper, t), d in _all().items():
        assert d["paper"] == paper and d["table"] == t
        raw = open(d["_path"], encoding="utf-8").read().lower()
        assert "secondary" not in raw and "offline" not in raw and "provenance" not in raw, d["_path"]
        assert len(d["values"]) == COUNTS[(paper, t)], d["label"]
        printed_table = ROMAN[t] if paper == "lotr" else t
        lines = {}
        for e in d["values"]:
            assert e["table"] == printed_table and e["row"] and e["column"] and e["key"], e
            v = e["value"]
            if v is None:
                assert e["gap"] == "-" and e["printed"] == "-", e
                gaps.append((paper, t, e["row"], e["key"]))
            else:
                assert isinstance(v, float), e
                if math.isnan(v):
                    assert e["printed"] == "NaN"
                    nans.append((paper, t, e["row"], e["column"]))
                else:   # the stored number is the printed one
                    assert v == pytest.approx(float(e["printed"].split("±")[0 if not e["key"].endswith("_std")
                                                                          else 1]), abs=1e-9), e
            if not e.get("source"):
                lines.setdefault((e.get("group"), e["row"]), set()).add(e["column"].replace(" (std)", ""))
        # the grid is complete: every printed line has every printed column; rows as listed, in the paper's order
        for k, cols in lines.items():
            assert cols == set(d["columns"]), (d["label"], k)
        order = []
        for g, r in lines:
            if r not in order:
                order.append(r)
        assert order == d["rows"], d["label"]
        assert set(d.get("groups") or [None]) == {g for g, _ in lines}, d["label"]
    # the only NaNs are LOTR Table VII's 6-layer LOTR-M and LOTR-R+; the only '-' are LUVLi's WFLW subsets
    assert sorted(nans) == [("lotr", "7", "6", "LOTR-M"), ("lotr", "7", "6", "LOTR-R+")]
    assert len(gaps) == 18 and {(p, t, r) for p, t, r, _ in gaps} == {("lotr", "2", "LUVLi")}
    assert {k for _, _, _, k in gaps} == {m + s for m in ("nme_", "fr_", "auc_") for s in
                                          ("pose", "expression", "illumination", "makeup", "occlusion", "blur")}


def test_spot_checks_against_the_paper_text():
    """Numbers read by hand in shared/papers/lotr.md and earp.md."""
    d = _all()
    lotr5 = d[("lotr", "5")]
    assert _get(lotr5, "LOTR-M (MobileNetV2 1.0)", "Params (x10^6)")["value"] == 2.81
    assert _get(lotr5, "LOTR-R+ (ResNet50)", "GPU (ms) Flip")["value"] == 11.55
    assert _get(lotr5, "LOTR-R+ (ResNet50)", "GPU (ms) Flip (std)")["value"] == 1.03
    assert _get(lotr5, "Earp et al. with vectorization (MobileNetV2 1.0)", "AUC (%) No flip")["value"] == 84.31
    assert _get(lotr5, "CNN + FFN (ResNet50)", "Size (MB)")["value"] == 96.09
    assert _get(d[("lotr", "2")], "HIH", "Make-up", group="Failure rate (%)")["value"] == 1.46
    assert _get(d[("lotr", "2")], "LOTR-HR+", "Pose", group="AUC (%)")["value"] == 36.59
    assert _get(d[("lotr", "3")], "USTC", "Failure rate (%)")["value"] == 0.05
    assert _get(d[("lotr", "3")], "USTC", "Failure rate (%)")["mark"] == "‡"
    assert _get(d[("lotr", "3")], "LOTR-M+", "GFLOPS (text)")["value"] == 0.44
    e = _get(d[("lotr", "4")], "LOTR-M+", "CFP-FP", group="RetinaFace [67]")
    assert e["value"] == 96.23 and e["bold"] and e["key"] == "tar_cfp_fp"
    assert _get(d[("lotr", "4")], "From detector", "CPLFW", group="PyramidKey [74]")["value"] == 53.77
    assert _get(d[("lotr", "6")], "L2", "LOTR-R+")["value"] == 86.73
    assert _get(d[("lotr", "7")], "6", "LOTR-M+")["value"] == 44.14
    assert _get(d[("lotr", "7")], "4", "LOTR-R+")["value"] == 60.84
    assert _get(d[("earp", "1")], "VIC", "AUC (%)")["value"] == 82.22
    assert _get(d[("earp", "2")], "DDDD", "Size (MB)")["value"] == 18.26
    assert _get(d[("earp", "3")], "DSDS", "GFLOPS")["value"] == 1.73
    assert _get(d[("earp", "4")], "SDDSD", "GFLOPS")["value"] == 0.61
    assert _get(d[("earp", "5")], "Sogou AI", "NME (%)", group="Challenge 2")["value"] == 1.52
    assert _get(d[("earp", "6")], "CPU (ms)", "ResNet18")["value"] == 131.5
    assert _get(d[("earp", "7")], "ResNet50 + 106p", "CPU total (ms)")["value"] == 326.9
    assert d[("earp", "3")]["rows"] == ["SSSS", "DSSS", "DDSS", "DSSD", "DSDS", "DDDS", "SSSD", "SDSD", "SSDD",
                                        "SDDD", "DDDD"]


def test_numbers_the_papers_print_twice_agree():
    """Independent of the transcription order: the same model printed in two tables has the same number."""
    d = _all()
    v = lambda p, t, row, key, col=None, group=None: S.paper_value(  # noqa: E731
        d[(p, t)], (row, col or ""), key, group)[0]
    # LOTR Table III Earp rows = Earp Table 5 (Challenge 1) = LOTR Table V with flip
    assert v("lotr", "3", "Earp et al. (ResNet50)", "auc") == v("earp", "5", "ResNet50", "auc") == \
        v("lotr", "5", "Earp et al. (ResNet50)", "auc_flip") == 87.06
    assert v("lotr", "3", "Earp et al. (MobileNetV2 1.0)", "nme") == v("earp", "5", "MNetV2-1.0", "nme") == 1.08
    # LOTR models: Table III = Table V flip = Table VI Smooth-Wing = Table VII two layers
    for m, auc in (("LOTR-M", 87.05), ("LOTR-M+", 87.21), ("LOTR-R+", 87.71)):
        assert v("lotr", "3", m, "auc") == v("lotr", "6", "Smooth-Wing", "auc", m) == \
            v("lotr", "7", "2", "auc", m) == auc
    assert v("lotr", "5", "LOTR-R+ (ResNet50)", "auc_flip") == 87.71
    # Earp: the baseline (Table 1) is Table 2/3's DDDD; sizes of Table 6 = LOTR Table V
    assert v("earp", "1", "MNetV2-0.25", "auc") == v("earp", "2", "DDDD", "auc") == v("earp", "3", "DDDD", "auc")
    assert v("earp", "6", "ResNet50", "size_mb") == v("lotr", "5", "Earp et al. (ResNet50)", "size_mb") == 94.10
    assert v("earp", "6", "MNetV2-1.0", "gflops") == v("earp", "4", "SDD", "gflops") == 0.43
    # Table 2 is the SSSS and DDDD rows of Table 3
    for row in ("SSSS", "DDDD"):
        for key in ("auc", "gflops", "size_mb"):
            assert v("earp", "2", row, key) == v("earp", "3", row, key)


def test_loader_nan_gap_and_errors(tmp_path, monkeypatch):
    d = S.load_paper("lotr", "VII")
    e = _get(d, "6", "LOTR-M")
    assert isinstance(e["value"], float) and math.isnan(e["value"])
    assert '"value": "NaN"' in open(d["_path"], encoding="utf-8").read()
    v, prov = S.paper_value(d, get_table("lotr", 7).cell("lotr_r_plus/L6"), "auc")
    assert math.isnan(v) and prov == "Table VII, 6, LOTR-R+"
    assert S.paper_value(S.load_paper("lotr", 2), "LUVLi", "nme_pose") == (None, "gap")
    assert S.paper_value(S.load_paper("lotr", 2), "LUVLi", "nme")[0] == 4.37
    assert S.paper_value(d, "7", "auc") == (None, None)
    # Earp Table 6 prints the backbones as columns: a lookup by backbone
    assert S.paper_value(S.load_paper("earp", 6), "ResNet50", "gflops")[0] == 3.23
    # Earp Table 5: without a group, Challenge 1 (the JD-landmark test set)
    d5 = S.load_paper("earp", 5)
    assert S.paper_value(d5, "ResNet50", "auc")[0] == 87.06
    assert S.paper_value(d5, "ResNet50", "auc", group="Challenge 2")[0] == 81.64
    # text numbers say where they come from
    assert "Sec. IV-E" in S.paper_value(S.load_paper("lotr", 3), "LOTR-M", "gflops")[1]
    # malformed files
    monkeypatch.setattr(S, "PAPER_DIR", str(tmp_path))
    base = {"paper": "lotr", "table": "6", "rows": ["L2"], "columns": ["LOTR-M"]}
    bad = [({"table": "VI", "row": "L2", "column": "LOTR-M", "key": "auc", "value": None}, "gap"),
           ({"table": "VI", "row": "L2", "column": "LOTR-M", "key": "auc", "value": "84.5"}, "value"),
           ({"table": "VI", "row": "L2", "column": "LOTR-M", "value": 84.5}, "lacks key")]
    for entry, msg in bad:
        with open(tmp_path / "lotr_table6.json", "w") as f:
            json.dump(dict(base, values=[entry]), f)
        with pytest.raises(S.PaperTableError, match=msg):
            S.load_paper("lotr", 6)
    twice = {"table": "VI", "row": "L2", "column": "LOTR-M", "key": "auc", "value": 1.0}
    with open(tmp_path / "lotr_table6.json", "w") as f:
        json.dump(dict(base, values=[twice, twice]), f)
    with pytest.raises(S.PaperTableError, match="repeats"):
        S.load_paper("lotr", 6)


def test_lotr_grids_follow_the_paper():
    d = _all()
    t3 = get_table("lotr", 3)
    assert t3.rows == ["LOTR-R+", "LOTR-M+", "Earp et al. (ResNet50)", "LOTR-M", "Earp et al. (MobileNetV2 1.0)"]
    assert t3.rows + list(t3.paper_only) == d[("lotr", "3")]["rows"]
    assert [m.key for m in t3.metrics] == ["auc", "fr", "nme", "gflops"]
    rs = {rc.name: rc for rc in resolve_cells(t3, "datatang", "smoke")}
    assert rs["earp_r50"].cfg.MODEL.BACKBONE.NAME == "resnet50_v1" and rs["earp_r50"].cfg.MODEL.NAME == \
        rs["earp"].cfg.MODEL.NAME
    t5 = get_table("lotr", 5)
    assert t5.rows == d[("lotr", "5")]["rows"] and not t5.paper_only
    assert {c.name for c in t5.cells if "ResNet50" in c.row} == {"earp_r50", "earp_r50_vector", "cnn_ffn_r50",
                                                                   "lotr_r_plus"}
    for t in ("6", "7"):
        spec = get_table("lotr", t)
        assert spec.rows == d[("lotr", t)]["rows"] and spec.cols == d[("lotr", t)]["columns"]
    assert get_table("lotr", 6).cell("lotr_m_plus/smooth_l1").row == "Smooth-L1"
    assert get_table("lotr", 7).cell("lotr_m/L4").row == "4" and get_table("lotr", 7).cell("lotr_m/L4").col == "LOTR-M"
    assert get_table("lotr", 2).paper_only == ("LAB", "Wing", "AWing", "LUVLi", "GV", "HIH")


def test_dry_run_shows_the_paper_grid(tmp_path, capsys):
    assert reproduce_table.main(["--table", "6", "--data", "datatang", "--scale", "smoke", "--dry-run",
                                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "LOTR Table VI as printed, paper / ours:" in out and "| Loss | LOTR-M | LOTR-M+ | LOTR-R+ |" in out
    assert "| L2 | 84.52 / — | 84.28 / — | 86.73 / — |" in out
    assert "| Smooth-Wing | 87.05 / — | 87.21 / — | 87.71 / — |" in out
    assert reproduce_table.main(["--table", "7", "--scale", "smoke", "--dry-run", "--out", str(tmp_path)]) == 0
    assert "| 6 | NaN / — | 44.14 / — | NaN / — |" in capsys.readouterr().out
    assert reproduce_table.main(["--table", "3", "--scale", "smoke", "--dry-run", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| Earp et al. (ResNet50) | 87.06 / — | 0.00 / — | 1.03 / — | 3.23* / — |" in out
    assert "| Baidu-VIS (paper only) | 84.01 | 0.10 | 1.31 |  |" in out   # no ours cell
    assert "| earp_r50 | experiments/datatang/earp_mnv2_1.0_sdd.yaml | MODEL.BACKBONE.NAME resnet50_v1 |" in out
    assert reproduce_table.main(["--table", "5", "--scale", "smoke", "--dry-run", "--out", str(tmp_path)]) == 0
    assert "| LOTR-M (MobileNetV2 1.0) | 86.39 / — | 87.05 / — | 5.46 ± 0.95 / — | 7.68 ± 1.08 / — | 10.59 / — " \
           "| 2.81 / — |" in capsys.readouterr().out


def test_report_shows_ours_beside_the_paper(tmp_path):
    spec = get_table("lotr", 3)
    rs = resolve_cells(spec, "datatang", "smoke", out_root=str(tmp_path))
    done = [r for r in rs if r.name == "lotr_m"][0]
    os.makedirs(done.out_dir)
    with open(os.path.join(done.out_dir, "metrics.json"), "w") as f:
        json.dump({"cell_hash": done.cell_hash, "values": {"auc": 12.5, "nme": 9.0, "fr": 60.0, "gflops": 0.2}}, f)
    rows = build_rows(rs)
    grid = render_paper_grid(spec, rows)
    assert "| LOTR-M | 87.05 / 12.50 | 0.00 / 60.00 | 1.03 / 9.00 | 0.23* / 0.200 |" in grid
    md = render_markdown(spec, rows, {"data": "datatang", "scale": "smoke"})
    assert grid.strip() in md and "USTC (paper only)" in md and "Sec. IV-E" in md
    lm = {r["cell"]: r for r in rows}["lotr_m"]
    assert lm["diff"]["auc"] == pytest.approx(12.5 - 87.05) and lm["provenance"]["auc"] == "Table III, LOTR-M, AUC (%)"
    # a NaN of the paper gives no difference
    spec7 = get_table("lotr", 7)
    rs7 = resolve_cells(spec7, "datatang", "smoke", out_root=str(tmp_path))
    l6 = [r for r in rs7 if r.name == "lotr_m/L6"][0]
    os.makedirs(l6.out_dir)
    with open(os.path.join(l6.out_dir, "metrics.json"), "w") as f:
        json.dump({"cell_hash": l6.cell_hash, "values": {"auc": 40.0}}, f)
    r = {x["cell"]: x for x in build_rows(rs7)}["lotr_m/L6"]
    assert math.isnan(r["paper"]["auc"]) and r["ours"]["auc"] == 40.0 and r["diff"]["auc"] is None


# header line of each table in shared/papers/<paper>.md and how many label cells start its lines
HEADERS = {("lotr", "2"): ("Metric\tMethod\tTest set", 2), ("lotr", "3"): ("Model\tAUC (%)\tFailure rate", 1),
           ("lotr", "4"): ("Face detector\tFace landmarks", 2), ("lotr", "5"): ("Model\tBackbone\tAUC (%)", 2),
           ("lotr", "6"): ("Loss\tLOTR-M", 1), ("lotr", "7"): ("Encoder/ decoder layers\t", 1),
           ("earp", "1"): ("Model\tAUC (%)\tNME (%)", 1), ("earp", "2"): ("Strategy\tAUC (%)", 1),
           ("earp", "4"): ("Backbone\tStrategy\tAUC", 2), ("earp", "5"): ("\tBackbone\tAUC (%)\tFailure", 2),
           ("earp", "6"): ("\tMNetV2 <sub>1.0</sub>\tResNet18", 1), ("earp", "7"): ("\tLFW\tCFP-FP", 1)}
PAPERS_DIR = next((d for d in (os.path.join(ROOT, "..", "shared", "papers"), "/work/shared/papers")
                   if os.path.isfile(os.path.join(d, "lotr.md"))), None)


def _printed_cells(paper, header, skip, nth=0):
    """The number cells of the nth table whose header line starts with ``header``, row by row, as printed."""
    import re
    lines = open(os.path.join(PAPERS_DIR, paper + ".md"), encoding="utf-8").read().split("\n")
    start = [i for i, l in enumerate(lines) if l.startswith(header)][nth]
    out = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        for c in line.split("\t")[skip:]:
            c = re.sub(r"<[^>]+>", "", c).replace("$\\pm$", "±").strip()
            if re.fullmatch(r"-|NaN|\d+\.\d+( ± \d+\.\d+)?", c):
                out.append(c)
    return out


@pytest.mark.skipif(PAPERS_DIR is None, reason="shared/papers not here")
def test_json_equals_the_paper_text_cell_by_cell():
    """A second, independent reading of the paper texts: every table's number cells in printed order equal the
    JSON's ``printed`` fields in its order (the std half of a 'mean ± std' cell is the same printed cell)."""
    for (paper, t), d in _all().items():
        if (paper, t) == ("earp", "3"):
            header, skip, nth = "Strategy\tAUC (%)", 1, 1      # the second table with this header
        else:
            (header, skip), nth = HEADERS[(paper, t)], 0
        ours = [e["printed"] for e in d["values"] if not e.get("source") and not e["key"].endswith("_std")]
        assert ours == _printed_cells(paper, header, skip, nth), d["label"]
