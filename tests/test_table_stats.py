"""Bootstrap intervals, agreement with the paper and the report-only render (lotr_gluon.tables.stats).

Expected values are worked out by hand in the comments (the per-face AUC contribution of an NME e at threshold T
is clip(1 - e / T, 0, 1), LOTR's AUC being their mean)."""
import json
import math
import os

import numpy as np
import pytest

from lotr_gluon.tables import get_table, resolve_cells
from lotr_gluon.tables import stats
from lotr_gluon.tables.report import collapsed, report

T = 0.08


# ------------------------------------------------------------------------------------------ bootstrap
def test_all_faces_equal_give_a_zero_width_interval():
    assert stats.bootstrap_interval([0.04] * 30, "nme") == pytest.approx((0.04, 0.04, 0.04))
    # every face 0.04 at T = 0.08 contributes 1 - 0.5 = 0.5
    assert stats.bootstrap_interval([0.04] * 30, "auc", T) == pytest.approx((0.5, 0.5, 0.5))


def test_two_faces_hand_computed():
    # faces 0 and T: a resample of 2 has AUC 1 (both 0), 0.5 or 0 (both T) with p = 1/4, 1/2, 1/4, so the
    # 2.5th / 97.5th percentiles of 2000 resamples are 0 and 1; NME likewise 0 and T
    v, lo, hi = stats.bootstrap_interval([0.0, T], "auc", T)
    assert (v, lo, hi) == pytest.approx((0.5, 0.0, 1.0))
    assert stats.bootstrap_interval([0.0, T], "nme") == pytest.approx((T / 2, 0.0, T))
    s = stats.bootstrap_stats([0.0, T], "auc", T)
    assert set(np.round(s, 9)) == {0.0, 0.5, 1.0} and abs(np.mean(s == 0.5) - 0.5) < 0.05


def test_interval_contains_the_value_and_is_reproducible():
    x = np.random.default_rng(3).gamma(2.0, 0.02, size=100)
    for st, thr in (("nme", None), ("auc", T)):
        v, lo, hi = stats.bootstrap_interval(x, st, thr)
        assert lo < v < hi
        assert stats.bootstrap_interval(x, st, thr) == (v, lo, hi)           # fixed seed
        assert stats.bootstrap_interval(x, st, thr, seed=1) != (v, lo, hi)   # the seed matters
    # AUC of each resample = mean of the per-face contributions of the resampled faces
    idx = stats.bootstrap_indices(x.size)
    assert idx.shape == (stats.N_BOOT, 100) and idx.min() >= 0 and idx.max() < 100
    by_hand = np.clip(1 - x[idx] / T, 0, 1).mean(axis=1)
    assert np.allclose(stats.bootstrap_stats(x, "auc", T), by_hand)
    # a 95% interval of the mean is about +-1.96 standard errors
    v, lo, hi = stats.bootstrap_interval(x, "nme")
    se = x.std(ddof=1) / math.sqrt(x.size)
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_bootstrap_refuses_non_finite_and_missing_threshold():
    with pytest.raises(ValueError):
        stats.bootstrap_interval([0.01, float("nan")], "nme")
    with pytest.raises(ValueError):
        stats.bootstrap_interval([0.01, 0.02], "auc")
    with pytest.raises(ValueError):
        stats.paired_difference([0.01, 0.02], [0.01], "nme")


def test_paired_difference_sees_a_small_shift_that_unpaired_intervals_hide():
    x = np.random.default_rng(0).uniform(0.0, 0.07, size=100)
    d, lo, hi = stats.paired_difference(x + 0.001, x, "nme")
    assert (d, lo, hi) == pytest.approx((0.001, 0.001, 0.001))        # same faces: exactly the shift
    _, alo, ahi = stats.bootstrap_interval(x + 0.001, "nme")
    _, blo, bhi = stats.bootstrap_interval(x, "nme")
    assert alo < bhi and blo < ahi                                     # the two intervals overlap


def test_direction_and_stat_of_key():
    assert stats.direction("auc_flip") == 1 and stats.direction("nme") == -1 and stats.direction("ms_flip") == -1
    assert stats.direction("size_mb") == -1
    with pytest.raises(KeyError):
        stats.direction("tar")
    assert stats.stat_of_key("auc_noflip") == "auc" and stats.stat_of_key("nme") == "nme"
    assert stats.stat_of_key("ms_flip") is None and stats.stat_of_key("nme_pose") is None


# ------------------------------------------------------------------------------------------ agreement
def _cell(name, paper, nmes=None, ours=None, n=20):
    if isinstance(nmes, float):
        nmes = [nmes] * n
    if nmes is not None and ours is None:
        ours = 100 * float(np.mean(np.clip(1 - np.asarray(nmes) / T, 0, 1)))
    return {"name": name, "paper": paper, "ours": ours, "nmes": nmes, "threshold": T,
            "faces": ["f%d" % i for i in range(n)] if nmes is not None else None}


def test_agreement_counts_by_hand():
    # 20 faces. Paper order (AUC, best first): A 90 > B 85 > E 83 > C 80 > F 70 > D NaN.
    # Ours: A 87.5 (all 0.01), B 50 (all 0.04), C 95 (all 0.004), E 50 noisy (10 faces 0, 10 faces T: a resample
    # has AUC Bin(20, 1/2) / 20, inside [0.3, 0.7] in 95% of resamples), D 10 (all 0.072), F diverged (NaN);
    # G not run (paper 60).
    cells = [_cell("A", 90.0, 0.01), _cell("B", 85.0, 0.04), _cell("E", 83.0, [0.0] * 10 + [T] * 10),
             _cell("C", 80.0, 0.004), _cell("F", 70.0, None, ours=float("nan")), _cell("D", float("nan"), 0.072),
             _cell("G", 60.0, None)]
    ag = stats.agreement(cells, "auc")
    v = {(p["a"], p["b"]): p["verdict"] for p in ag["pairs"]}
    # agree: A>B, A>E (87.5 above E's whole interval), A>F, A>D, B>F, B>D, E>F, E>D, C>F, C>D
    # disagree: A<C, B<C, E<C (paper says better, ours worse), F-D (paper: F 70 > NaN; ours: F NaN < D 10)
    # tie: B-E (50 vs 50 +- noise: the paired interval of the difference contains 0)
    assert v[("B", "E")] == "tie" and v[("A", "C")] == "disagree" and v[("F", "D")] == "disagree"
    assert v[("A", "E")] == "agree" and v[("E", "D")] == "agree" and v[("A", "F")] == "agree"
    assert (ag["ordered"], ag["agree"], ag["disagree"], ag["tie"]) == (15, 10, 4, 1)
    assert ag["missing"] == 6                          # G with each of the six others
    # tau-b on point values: 10 concordant, 4 discordant, our B = E tied once, 15 pairs
    assert ag["tau"] == pytest.approx((10 - 4) / math.sqrt((15 - 1) * 15))
    line = stats.format_agreement("T", ag)
    assert line == "T: 10 of 15 pairs agree, 4 disagree, 1 tie; Kendall tau 0.41 (6 pairs without both numbers)"


def test_kendall_tau_matches_scipy_with_nan_as_worst():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(5)
    ours = list(rng.normal(size=8)) + [float("nan")]
    paper = list(rng.normal(size=8)) + [1.0]
    ours[2] = ours[5]                                  # a tie of ours
    for sign in (1, -1):
        worst = -1e9 if sign == 1 else 1e9
        ref = scipy_stats.kendalltau([worst if math.isnan(x) else x for x in ours], paper).statistic
        assert stats.kendall_tau(ours, paper, sign) == pytest.approx(ref)
    assert stats.kendall_tau([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert stats.kendall_tau([3, 2, 1], [1, 2, 3]) == pytest.approx(-1.0)
    assert math.isnan(stats.kendall_tau([1.0], [1.0]))


def test_kendall_tau_over_given_pairs():
    rng = np.random.default_rng(7)
    ours = list(rng.normal(size=7)) + [float("nan"), None]
    paper = list(rng.normal(size=7)) + [2.0, 1.0]
    ours[1] = ours[4]
    every = [(i, j) for i in range(9) for j in range(i + 1, 9)]
    for sign in (1, -1):
        assert stats.kendall_tau(ours, paper, sign, every) == pytest.approx(stats.kendall_tau(ours, paper, sign))
    # pairs within two columns: 3 concordant in the first, 3 discordant in the second, the None cell left out
    ours, paper = [1, 2, 3, 3, 2, 1, None], [1, 2, 3, 1, 2, 3, 4]
    within = [(0, 1), (0, 2), (1, 2), (3, 4), (3, 5), (4, 5), (5, 6)]
    assert stats.kendall_tau(ours, paper, 1, within) == pytest.approx(0.0)
    assert stats.kendall_tau(ours, paper, 1, within[:3]) == pytest.approx(1.0)


def test_lower_is_better_and_two_nans_not_ordered():
    # NME: paper A 3 < B 4 < C NaN (NaN worst = highest); ours A 3.5, B 3.2, C 5 (no per-face NMEs: exact rule)
    cells = [{"name": "A", "paper": 3.0, "ours": 3.5}, {"name": "B", "paper": 4.0, "ours": 3.2},
             {"name": "C", "paper": float("nan"), "ours": 5.0}]
    ag = stats.agreement(cells, "nme")
    assert (ag["ordered"], ag["agree"], ag["disagree"], ag["tie"]) == (3, 2, 1, 0)
    assert ag["tau"] == pytest.approx(1 / 3)
    # two NaNs of the paper are not ordered; two of ours (both diverged) are a tie
    cells = [{"name": "A", "paper": float("nan"), "ours": 40.0}, {"name": "B", "paper": float("nan"), "ours": 50.0},
             {"name": "C", "paper": 80.0, "ours": float("nan")}, {"name": "D", "paper": 70.0, "ours": float("nan")}]
    ag = stats.agreement(cells, "auc")
    v = {(p["a"], p["b"]): p["verdict"] for p in ag["pairs"]}
    assert ("A", "B") not in v and ("B", "A") not in v and v[("C", "D")] == "tie"
    assert v[("C", "A")] == "disagree" and ag["ordered"] == 5
    # without per-face NMEs, equal at the printed decimals is a tie
    ag = stats.agreement([{"name": "A", "paper": 5.0, "ours": 1.234}, {"name": "B", "paper": 6.0, "ours": 1.231}],
                         "ms_flip", decimals=2)
    assert ag["tie"] == 1 and ag["pairs"][0]["rule"] == "equal at 2 decimals"


# ------------------------------------------------------------------------------------------ report-only
# LOTR-M column of Table VI on 20 synthetic faces. Paper AUC: Smooth-Wing 87.05 > Wing 86.92 > L1 86.90 >
# Smooth-L1 86.87 > L2 84.52. Ours: L2 all 0.04 -> 50; L1 all 0.02 -> 75; Smooth-L1 all 0.005 -> 93.75;
# Wing 10 faces 0 + 10 faces 0.04 -> 75 (per resample 0.5 + 0.5 Bin(20, 1/2) / 20, within [0.5, 0.9]);
# Smooth-Wing all 0.05 -> 37.5 (worse than the mean shape's 0.045: collapsed).
# Pairs: agree Wing>L2, L1>L2, Smooth-L1>L2 (3); tie Wing-L1 (1); disagree the other 6;
# tau-b = (3 - 6) / sqrt((10 - 1) * 10) = -0.316.
SYNTH = {"l2": [0.04] * 20, "l1": [0.02] * 20, "smooth_l1": [0.005] * 20, "wing": [0.0] * 10 + [0.04] * 10,
         "smooth_wing": [0.05] * 20}


def _write_cell(rc, nmes, epochs=3):
    os.makedirs(rc.out_dir)
    auc = 100 * float(np.mean(np.clip(1 - np.asarray(nmes) / T, 0, 1)))
    nme = 100 * float(np.mean(nmes))
    with open(os.path.join(rc.out_dir, "metrics.json"), "w") as f:
        json.dump({"cell": rc.name, "cell_hash": rc.cell_hash, "train_hash": rc.train_hash, "threshold": T,
                   "num_images": len(nmes), "values": {"auc": auc, "nme": nme, "fr": 0.0, "auc_flip": auc,
                                                       "nme_flip": nme, "fr_flip": 0.0}}, f)
    with open(os.path.join(rc.out_dir, "per_image.csv"), "w") as f:
        f.write("name,nme_flip,nme_mean_shape\n")
        for i, x in enumerate(nmes):
            f.write("%06d,%.6f,%.6f\n" % (i, x, 0.045))
    with open(os.path.join(rc.out_dir, "log.jsonl"), "w") as f:
        f.write(json.dumps({"type": "mean_shape_baseline", "nme": 0.045}) + "\n")
        for e in range(1, epochs + 1):
            f.write(json.dumps({"type": "epoch", "epoch": e, "step": 10 * e, "loss": 10.0 / e}) + "\n")
            f.write(json.dumps({"type": "val", "epoch": e, "step": 10 * e, "nme": nme / 100 + 0.01 / e}) + "\n")


def test_report_only_render_from_finished_cells(tmp_path, capsys):
    import importlib.util
    spec = get_table("lotr", 6)
    rs = resolve_cells(spec, "datatang", "smoke", out_root=str(tmp_path))
    by = {rc.name: rc for rc in rs}
    for loss, nmes in SYNTH.items():
        _write_cell(by["lotr_m/" + loss], nmes)
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "reproduce_table.py")
    mod_spec = importlib.util.spec_from_file_location("reproduce_table", path)
    tool = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(tool)
    assert tool.main(["--table", "6", "--data", "datatang", "--scale", "smoke", "--out", str(tmp_path),
                      "--report-only"]) == 0
    out = capsys.readouterr().out
    # constant faces: zero-width intervals; Wing's AUC interval lies inside [50, 90] and contains 75
    assert "| lotr_m/l2 | L2 | LOTR-M | 84.52 | 50.00 [50.00, 50.00] | -34.52 | 4.00 [4.00, 4.00] |" in out
    wing = [l for l in out.splitlines() if l.startswith("| lotr_m/wing |")][0].split("|")[5].strip()
    lo, hi = (float(x) for x in wing.split("[")[1].rstrip("]").split(","))
    assert wing.startswith("75.00 [") and 50 <= lo < 75 < hi <= 90
    assert "LOTR Table VI LOTR-M, AUC: 3 of 10 pairs agree, 6 disagree, 1 tie; Kendall tau -0.32" in out
    assert "LOTR Table VI LOTR-M+, AUC: no pair of cells with both numbers that the paper orders" in out
    assert "Cells done: 5 of 15; missing: lotr_m_plus/l2," in out and "5 of 15 cells finished; missing:" in out
    assert "Collapsed (diverged, non-finite, or not better than the mean shape beyond noise): lotr_m/smooth_wing" in out
    js = json.load(open(tmp_path / "lotr-6" / "table.json"))
    ag = [a for a in js["agreement"] if a["column"] == "LOTR-M"][0]
    assert (ag["ordered"], ag["agree"], ag["disagree"], ag["tie"]) == (10, 3, 6, 1)
    assert ag["tau"] == pytest.approx(-3 / math.sqrt(90))
    tie = [p for p in ag["pairs"] if p["verdict"] == "tie"][0]
    assert {tie["a"], tie["b"]} == {"lotr_m/wing", "lotr_m/l1"} and tie["ci"][0] < 0 < tie["ci"][1]
    cells = {c["cell"]: c for c in js["cells"]}
    assert cells["lotr_m/l2"]["ci"]["auc"] == pytest.approx([50.0, 50.0])
    assert cells["lotr_m/smooth_wing"]["collapsed"] and not cells["lotr_m/l1"]["collapsed"]
    assert len(js["missing_cells"]) == 10 and js["bootstrap"]["resamples"] == stats.N_BOOT
    csv_head = open(tmp_path / "lotr-6" / "table.csv").readline().strip().split(",")
    assert csv_head[-4:] == ["auc_ours_lo", "auc_ours_hi", "nme_ours_lo", "nme_ours_hi"]
    # plots: CED and training curves of the LOTR-M column
    assert (tmp_path / "lotr-6" / "ced_lotr_m.png").is_file()
    assert (tmp_path / "lotr-6" / "train_curves_lotr_m.png").is_file()


def test_collapsed_rule():
    base = {"status": "done", "diverged": False, "ours": {"auc": 50.0}}
    assert collapsed(dict(base, diverged=True))
    assert collapsed(dict(base, ours={"auc": float("nan")}))
    # not better than the mean shape beyond noise: the paired interval of NME - mean shape's reaches 0
    assert collapsed(dict(base, per_image={"flip": [0.05, 0.05], "mean_shape": [0.04, 0.06]}))    # same mean
    # 40 faces: 0.001 better on 39 of them, 0.02 worse on one (mean 0.0005 better): a resample holding that face
    # k >= 2 times (k ~ Bin(40, 1/40), P(k >= 2) = 0.26) is worse, so the interval reaches above 0
    assert collapsed(dict(base, per_image={"flip": [0.049] * 39 + [0.07], "mean_shape": [0.05] * 40}))
    assert not collapsed(dict(base, per_image={"flip": [0.049] * 40, "mean_shape": [0.05] * 40}))  # better on all
    assert not collapsed(dict(base, per_image={"flip": [0.01, 0.02], "mean_shape": [0.04, 0.06]}))
    assert not collapsed(dict(base, status="missing", diverged=True))
