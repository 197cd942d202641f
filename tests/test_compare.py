"""Run summaries of tools/compare_runs.py from hand-written log.jsonl files."""
import json

import pytest

from lotr_gluon.compare import curve_behaviour, plot_runs, render_table, summarise_run


def _write_log(path, val_nmes, baseline=0.0466, spread=None):
    path.mkdir(parents=True)
    with open(path / "log.jsonl", "w") as f:
        f.write(json.dumps({"type": "mean_shape_baseline", "nme": baseline}) + "\n")
        for e, nme in enumerate(val_nmes, 1):
            f.write(json.dumps({"type": "train", "epoch": e, "step": 10 * e, "loss": 100.0 / e}) + "\n")
            v = {"type": "val", "epoch": e, "step": 10 * e, "nme": nme, "auc": 0.4, "fr": 0.05}
            if spread is not None:
                v.update(pred_spread_px=spread, gt_spread_px=5.5)
            f.write(json.dumps(v) + "\n")
            f.write(json.dumps({"type": "epoch", "epoch": e, "step": 10 * e, "loss": 100.0 / e,
                                "images_per_s": 8.0 + e, "seconds": 90.0}) + "\n")


def test_curve_behaviour_labels():
    assert curve_behaviour([]) == "no validation"
    assert curve_behaviour([0.40, 0.36], 0.0466) == "collapsed"
    assert curve_behaviour([0.047, 0.0466], 0.0466) == "at mean shape"
    assert curve_behaviour([0.05, 0.040], 0.0466) == "learning"
    assert curve_behaviour([0.06, 0.055], 0.0466) == "above mean shape"


def test_summarise_and_render(tmp_path):
    _write_log(tmp_path / "a", [0.06, 0.04, 0.045], spread=2.5)
    _write_log(tmp_path / "b", [0.0467, 0.0466])
    a, b = summarise_run(str(tmp_path / "a")), summarise_run(str(tmp_path / "b"))
    assert (a["epochs"], a["steps"], a["best_epoch"]) == (3, 30, 2)
    assert a["best_nme"] == pytest.approx(0.04) and a["last_nme"] == pytest.approx(0.045)
    assert a["images_per_s"] == pytest.approx(10.0) and a["train_seconds"] == pytest.approx(270.0)
    assert a["behaviour"] == "learning" and b["behaviour"] == "at mean shape"
    assert a["last_spread_px"] == 2.5 and b["last_spread_px"] is None
    table = render_table([a, b])
    lines = table.splitlines()
    assert len(lines) == 4 and lines[0].count("|") == lines[2].count("|") == 12
    assert "| a | 3 | 30 | 4.50 | 4.00 @2 |" in table and "2.50 / 5.50" in table
    plot_runs([str(tmp_path / "a"), str(tmp_path / "b")], str(tmp_path / "c.png"))
    assert (tmp_path / "c.png").stat().st_size > 0


def test_markdown_tables_have_one_renderer():
    from lotr_gluon import markdown
    assert markdown.table(["a", "b"], [[1, "x"], ["", 2.5]], "lr") == ["| a | b |", "|---|---:|", "| 1 | x |",
                                                                       "|  | 2.5 |"]
    with pytest.raises(ValueError, match="3 cells under 2 columns"):
        markdown.table(["a", "b"], [[1, 2, 3]])
    with pytest.raises(ValueError, match="l or r"):
        markdown.table(["a"], [], "c")
