"""Table reproduction (lotr_gluon.tables, tools/reproduce_table.py): grids, hashing, caching, resume,
rendering with missing cells, --dry-run, and one real tiny cell trained end to end on Datatang faces."""
import json
import os
import shutil
import sys
import warnings

import numpy as np
import pytest

from lotr_gluon.tables import (TABLES, cell_status, config_hash, get_table, load_paper, paper_value, parse_scale,
                               parse_table_id,
                               render_markdown, build_rows, report, resolve_cells, run_table, scale_overrides,
                               select_cells)
from lotr_gluon.tables.report import cell_train_log, plot_training_curves
from lotr_gluon.tables.spec import LOSSES
from lotr_gluon.trainer import TrainingDiverged

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import reproduce_table  # noqa: E402

warnings.filterwarnings("ignore", category=UserWarning)
MODELS = ["lotr_m", "lotr_m_plus", "lotr_r_plus"]


def _opts(**kw):
    return [x for kv in kw.items() for x in kv]


# ------------------------------------------------------------------------------------------ grids
def test_table6_grid():
    spec = get_table("lotr", 6)
    assert len(spec.cells) == 15 and len({c.name for c in spec.cells}) == 15
    for m in MODELS:
        for loss, _ in LOSSES:
            c = spec.cell("%s/%s" % (m, loss))
            assert c.cfg == m + ".yaml" and c.overrides == ("LOSS.NAME", loss) and not c.train_from
    # LOTR Table VI as printed: losses as rows, models as columns
    assert spec.rows == ["L2", "L1", "Smooth-L1", "Wing", "Smooth-Wing"] and spec.cols == ["LOTR-M", "LOTR-M+", "LOTR-R+"]
    assert spec.loss_curves and spec.loss_functions_figure and spec.primary_flip
    rs = resolve_cells(spec, "jd", "paper")
    assert [rc.cfg.LOSS.NAME for rc in rs[:5]] == [l for l, _ in LOSSES]
    assert {rc.cfg.MODEL.BACKBONE.NAME for rc in rs[10:]} == {"resnet50_v1"} and rs[0].cfg.TRAIN.EPOCHS == 100


def test_table7_grid():
    spec = get_table("lotr", "VII")
    assert len(spec.cells) == 18
    for m in MODELS:
        for n in range(1, 7):
            c = spec.cell("%s/L%d" % (m, n))
            assert c.overrides == ("MODEL.TRANSFORMER.ENC_LAYERS", str(n), "MODEL.TRANSFORMER.DEC_LAYERS", str(n))
    assert spec.rows == ["1", "2", "3", "4", "5", "6"] and spec.cols == ["LOTR-M", "LOTR-M+", "LOTR-R+"]
    rc = [r for r in resolve_cells(spec, "datatang", "smoke") if r.name == "lotr_r_plus/L6"][0]
    t = rc.cfg.MODEL.TRANSFORMER
    assert t.ENC_LAYERS == 6 and t.DEC_LAYERS == 6 and rc.cfg.MODEL.NECK.UPSAMPLE


def test_table5_rows():
    spec = get_table("lotr", 5)
    assert [c.name for c in spec.cells] == ["earp", "earp_r50", "earp_vector", "earp_r50_vector", "cnn_ffn_mnv2",
                                            "cnn_ffn_r50", "lotr_m", "lotr_m_plus", "lotr_r_plus"]
    assert [m.key for m in spec.metrics] == ["auc_noflip", "auc_flip", "ms_noflip", "ms_flip", "size_mb", "params_m"]
    assert spec.flips == (False, True) and spec.benchmark
    for data in ("jd", "datatang"):
        rs = {rc.name: rc for rc in resolve_cells(spec, data, "paper")}
        # "with vectorization": a Gaussian-vector model trained on its own (LOTR Sec. IV-G-1), same data and schedule
        for v, hm in ((rs["earp_vector"], rs["earp"]), (rs["earp_r50_vector"], rs["earp_r50"])):
            assert v.source is None and v.cfg.MODEL.NAME == "earp_vector" and hm.cfg.MODEL.NAME == "earp_heatmap"
            assert v.cfg.MODEL.BACKBONE.NAME == hm.cfg.MODEL.BACKBONE.NAME and v.train_hash != hm.train_hash
            for k in ("DATA", "AUG", "TRAIN"):
                assert v.cfg[k] == hm.cfg[k], k
        assert rs["earp_r50"].cfg.MODEL.BACKBONE.NAME == "resnet50_v1"
        assert rs["cnn_ffn_mnv2"].cfg.MODEL.NAME == "cnn_ffn"
        assert rs["cnn_ffn_r50"].cfg.MODEL.BACKBONE.NAME == "resnet50_v1"
        # same data, loss and tricks as the LOTR configs of the folder
        for k in ("DATA", "AUG", "LOSS", "TRAIN"):
            assert rs["cnn_ffn_r50"].cfg[k] == rs["lotr_r_plus"].cfg[k], k


def test_every_table_resolves_and_has_paper_data():
    for (paper, t), spec in TABLES.items():
        data = (spec.data or ("datatang",))[0]
        rs = resolve_cells(spec, data, "smoke")
        assert len(rs) == len(spec.cells) and rs[0].cfg.DATA.INPUT_SIZE == 64
        pd = load_paper(spec)
        assert pd is not None and "Table" in pd["source"] and pd["paper"] == paper and pd["table"] == t
        assert not set(spec.paper_only) & set(spec.rows) and set(spec.paper_only) <= set(pd["rows"]), spec.label
        if paper == "lotr":   # every LOTR cell finds its paper number for every compared metric
            for c in spec.cells:
                for met in spec.metrics:
                    assert paper_value(pd, c, met.key)[0] is not None, (spec.label, c.name, met.key)
    with pytest.raises(ValueError, match="wflw"):
        resolve_cells(get_table("lotr", 2), "datatang", "smoke")
    with pytest.raises(KeyError, match="available"):
        get_table("lotr", 4)


def test_table_ids_and_scales():
    assert parse_table_id("VI") == parse_table_id("table 6") == parse_table_id(6) == "6"
    assert parse_scale("epochs=10") == ("epochs", 10)
    with pytest.raises(ValueError):
        parse_scale("fast")
    from lotr_gluon.config import load_config
    base = load_config(os.path.join(ROOT, "experiments", "jd", "lotr_m.yaml"))
    assert scale_overrides("epochs=10", base) == ["TRAIN.EPOCHS", "10", "TRAIN.LR_STEPS", "[5, 8]"]
    assert scale_overrides("paper", base) == []
    assert "TRAIN.MAX_STEPS" in scale_overrides("smoke")


# ------------------------------------------------------------------------------------------ hashing
def test_config_hash():
    from lotr_gluon.config import load_config
    f = os.path.join(ROOT, "experiments", "datatang", "lotr_m.yaml")
    h = config_hash(load_config(f))
    assert h == config_hash(load_config(f)) and len(h) == 12
    assert h == config_hash(load_config(f, _opts(OUTPUT_DIR="/elsewhere", WORKERS="2")))
    assert h != config_hash(load_config(f, _opts(**{"LOSS.NAME": "wing"})))
    assert h != config_hash(load_config(f, _opts(**{"DATA.MAX_SAMPLES": "5"})))
    a = resolve_cells(get_table("lotr", 6), "datatang", "smoke")
    b = resolve_cells(get_table("lotr", 6), "datatang", "smoke", _opts(SEED="3"))
    assert all(x.train_hash != y.train_hash for x, y in zip(a, b))


# ------------------------------------------------------------------------------------------ caching / resume
class StubTrainer:
    """Records Trainer(...).fit(resume=...) calls and writes a model_best.params."""
    calls = []

    def __init__(self, cfg, out_dir=None, progress=True):
        self.cfg, self.out_dir = cfg, out_dir

    def fit(self, resume=False):
        StubTrainer.calls.append((self.out_dir, resume))
        with open(os.path.join(self.out_dir, "model_best.params"), "w") as f:
            f.write("stub")
        with open(os.path.join(self.out_dir, "log.jsonl"), "a") as f:
            for s in (1, 2):
                f.write(json.dumps({"type": "train", "step": s, "loss": 10.0 / s}) + "\n")


def stub_eval(cfg, params, flips, out_dir):
    assert os.path.isfile(params)
    nmes = [0.01, 0.02, 0.2]
    m = {"nme": float(np.mean(nmes)), "fr": 1 / 3, "auc": 0.5, "num_images": 3, "threshold": 0.08}
    return {"metrics": {("flip" if f else "noflip"): dict(m) for f in flips}, "names": ["a", "b", "c"],
            "nmes": {"flip": nmes, "noflip": nmes}, "threshold": 0.08, "mean_shape_baseline": dict(m)}


def _fail(*a, **k):
    raise AssertionError("must not be called")


class NeverTrain(StubTrainer):
    def __init__(self, *a, **k):
        raise AssertionError("a finished cell must not be trained again")


def test_finished_cell_is_skipped(tmp_path):
    rs = resolve_cells(get_table("lotr", 6), "datatang", "smoke", out_root=str(tmp_path))
    rc = rs[3]
    os.makedirs(rc.out_dir)
    with open(os.path.join(rc.out_dir, "metrics.json"), "w") as f:
        json.dump({"cell_hash": rc.cell_hash, "values": {"auc": 42.0, "nme": 3.0, "fr": 1.0}}, f)
    assert cell_status(rc)[0] == "done" and cell_status(rs[0])[0] == "missing"
    summary = run_table([rc], str(tmp_path), trainer_cls=NeverTrain, evaluate_fn=_fail, progress=False,
                        log=lambda m: None)
    assert summary[rc.name][0] == "cached"
    # a metrics.json of another configuration does not count
    with open(os.path.join(rc.out_dir, "metrics.json"), "w") as f:
        json.dump({"cell_hash": "0" * 12, "values": {"auc": 42.0}}, f)
    assert cell_status(rc)[0] == "missing"


def test_interrupted_cell_is_resumed(tmp_path):
    StubTrainer.calls = []
    rs = resolve_cells(get_table("lotr", 6), "datatang", "smoke", out_root=str(tmp_path))
    rc, fresh = rs[0], rs[1]
    os.makedirs(rc.out_dir)
    with open(os.path.join(rc.out_dir, "cell.json"), "w") as f:
        json.dump({"train_hash": rc.train_hash, "trained": False}, f)
    with open(os.path.join(rc.out_dir, "checkpoint_last.json"), "w") as f:
        json.dump({"epoch": 1, "step": 2, "best_nme": 1.0}, f)
    st, detail = cell_status(rc)
    assert st == "partial" and "epoch 1" in detail
    logs = []
    summary = run_table([rc, fresh], str(tmp_path), trainer_cls=StubTrainer, evaluate_fn=stub_eval, progress=False,
                        log=logs.append)
    assert StubTrainer.calls == [(rc.out_dir, True), (fresh.out_dir, False)]
    assert summary[rc.name][0] == summary[fresh.name][0] == "done"
    assert any("resuming" in line for line in logs)
    m = json.load(open(os.path.join(rc.out_dir, "metrics.json")))
    assert m["cell_hash"] == rc.cell_hash and m["values"]["auc"] == pytest.approx(50.0)
    assert cell_status(rc)[0] == "done"
    # the same training in another table (VII's lotr_m/L2 = VI's lotr_m/smooth_wing) is reused, not retrained
    sw = [r for r in rs if r.name == "lotr_m/smooth_wing"][0]
    run_table([sw], str(tmp_path), trainer_cls=StubTrainer, evaluate_fn=stub_eval, progress=False, log=lambda m: None)
    l2 = [r for r in resolve_cells(get_table("lotr", 7), "datatang", "smoke", out_root=str(tmp_path))
          if r.name == "lotr_m/L2"][0]
    assert l2.train_hash == sw.train_hash
    n = len(StubTrainer.calls)
    run_table([l2], str(tmp_path), trainer_cls=StubTrainer, evaluate_fn=stub_eval, progress=False, log=lambda m: None)
    assert len(StubTrainer.calls) == n and cell_status(l2)[0] == "done"


def test_run_of_another_configuration_is_stashed_and_restored(tmp_path):
    """A cell's folder holding a run of another configuration (e.g. after a schedule change): the run moves to
    .stash/ and the cell trains; going back to the first configuration restores its results without training."""
    StubTrainer.calls = []
    spec = get_table("lotr", 6)
    a = resolve_cells(spec, "datatang", "smoke", out_root=str(tmp_path))[0]
    b = resolve_cells(spec, "datatang", "smoke", opts=["TRAIN.EPOCHS", "3"], out_root=str(tmp_path))[0]
    assert a.out_dir == b.out_dir and a.train_hash != b.train_hash

    def run(rc):
        logs = []
        run_table([rc], str(tmp_path), trainer_cls=StubTrainer, evaluate_fn=stub_eval, progress=False,
                  log=logs.append)
        return logs
    run(a)
    assert cell_status(a)[0] == "done"
    other = "results of another configuration there (moved to .stash/ when run)"
    assert cell_status(b) == ("missing", other)
    logs = run(b)
    assert any(line.endswith("  training (%s)" % other) for line in logs), logs   # not "restoring"
    stash = os.path.join(a.table_dir, ".stash", "%s-%s" % (a.name.replace("/", "__"), a.train_hash))
    assert "    moved a run of another configuration (%s) to %s" % (a.train_hash, stash) in logs
    assert cell_status(b)[0] == "done" and len(StubTrainer.calls) == 2
    assert cell_status(a) == ("partial", "results of this configuration in .stash/, restored when run")
    logs = run(a)
    assert any(line.endswith("  restoring (results of this configuration in .stash/, restored when run)")
               for line in logs), logs
    assert cell_status(a)[0] == "done" and len(StubTrainer.calls) == 2      # nothing trained again
    assert cell_status(b)[0] == "partial"                                  # b's run is in .stash/ now


def test_cell_of_another_process_is_skipped(tmp_path, lock_holder):
    """Two reproduce_table commands side by side: a cell whose folder another process holds is left to it."""
    StubTrainer.calls = []
    rs = resolve_cells(get_table("lotr", 6), "datatang", "smoke", out_root=str(tmp_path))
    busy, free = rs[0], rs[1]
    proc = lock_holder(busy.train_cell.out_dir)
    logs = []
    summary = run_table([busy, free], str(tmp_path), trainer_cls=StubTrainer, evaluate_fn=stub_eval, progress=False,
                        log=logs.append)
    assert summary[busy.name][0] == "busy" and summary[free.name][0] == "done"
    assert StubTrainer.calls == [(free.out_dir, False)]
    assert any("running in another process, skipped" in line and "pid %d" % proc.pid in line for line in logs)
    assert cell_status(busy)[0] == "missing" and os.listdir(busy.out_dir) == [".lock"]
    proc.kill()
    proc.wait()
    summary = run_table([busy, free], str(tmp_path), trainer_cls=StubTrainer, evaluate_fn=stub_eval, progress=False,
                        log=logs.append)
    assert summary[busy.name][0] == "done" and summary[free.name][0] == "cached"


def test_diverged_cell_and_missing_benchmark(tmp_path):
    class Diverging(StubTrainer):
        def fit(self, resume=False):
            raise TrainingDiverged("loss is nan at step 3")
    rs = resolve_cells(get_table("lotr", 5), "datatang", "smoke", out_root=str(tmp_path))
    by = {r.name: r for r in rs}
    run_table([by["lotr_m_plus"]], str(tmp_path), trainer_cls=Diverging, evaluate_fn=stub_eval, progress=False,
              log=lambda m: None)
    run_table([by["lotr_m"]], str(tmp_path), trainer_cls=StubTrainer, evaluate_fn=stub_eval,
              benchmark=(None, "ImportError: no module"), progress=False, log=lambda m: None)
    rows = {r["cell"]: r for r in build_rows(rs)}
    assert rows["lotr_m_plus"]["diverged"] and cell_status(by["lotr_m_plus"])[0] == "done"
    assert rows["lotr_m"]["ours"]["ms_flip"] is None and rows["lotr_m"]["ours"]["auc_flip"] == pytest.approx(50)
    # model_info at 64x64: LOTR-M 2.764M + the Datatang recipe's per-landmark PFFN last layer (105 x 1026);
    # the training-only auxiliary heatmap head is not counted; at 64x64 the positional encoding has 2x2 instead
    # of 6x6 tokens (32 x 64 fewer parameters)
    assert rows["lotr_m"]["ours"]["params_m"] == pytest.approx(2.763906 + (105 * 1026 - 32 * 64) / 1e6, abs=5e-4)
    md = render_markdown(get_table("lotr", 5), list(rows.values()))
    line = [l for l in md.splitlines() if l.startswith("| lotr_m |")][0].split("|")
    # ms_noflip: paper (LOTR Table V, LOTR-M 5.46 ± 0.95) then ours (no timing)
    assert line[9].strip() == "5.46" and line[10].strip() == "—" and "timing columns empty" in md and "diverged" in md


def test_other_cpu_share_hand_values():
    from lotr_gluon.tables.runner import other_cpu_share
    # 10 s wall on 2 cores = 20 CPU s; the machine was busy 13 s, 3 of them this process: others used 10 of 20
    assert other_cpu_share((0.0, 100.0, 1.0), (10.0, 113.0, 4.0), cores=2) == 0.5
    assert other_cpu_share((0.0, 100.0, 1.0), (10.0, 103.0, 4.0), cores=2) == 0.0  # only this process
    assert other_cpu_share((0.0, None, 1.0), (10.0, 103.0, 4.0), cores=2) is None   # no /proc/stat


def test_retime_times_finished_cells_again_and_busy_timings_are_flagged(tmp_path, monkeypatch):
    from lotr_gluon.tables import runner
    rs = resolve_cells(get_table("lotr", 5), "datatang", "smoke", out_root=str(tmp_path))
    rc = [r for r in rs if r.name == "lotr_m"][0]
    calls = []

    def fake_bench(cfg, **kw):
        calls.append(kw["params"])
        return [{"batch": 1, "flip": False, "ms_per_image": 10.0 + len(calls)},
                {"batch": 1, "flip": True, "ms_per_image": 20.0 + len(calls)}]
    clocks = iter([(0.0, 100.0, 1.0), (10.0, 117.0, 5.0)])  # first timing: others used 13 of 20 CPU s
    monkeypatch.setattr(runner, "_cpu_clock", lambda: next(clocks))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    run_table([rc], str(tmp_path), trainer_cls=StubTrainer, evaluate_fn=stub_eval, benchmark=(fake_bench, None),
              progress=False, log=lambda m: None)
    m = json.load(open(os.path.join(rc.out_dir, "metrics.json")))
    assert m["values"]["ms_noflip"] == 11.0 and m["benchmark"]["other_cpu_share"] == 0.65
    md = render_markdown(rc.spec, build_rows([rc]), {"data": "datatang", "scale": "smoke"})
    assert "timed while other processes used the cores" in md and "lotr_m 65%" in md
    # a rerun leaves the finished cell alone; --retime times it again (accuracy untouched)
    run_table([rc], str(tmp_path), trainer_cls=NeverTrain, evaluate_fn=_fail, benchmark=(fake_bench, None),
              progress=False, log=lambda m: None)
    assert len(calls) == 1
    clocks = iter([(0.0, 100.0, 1.0), (10.0, 104.0, 4.0)])  # quiet: others used 1 of 20 CPU s
    summary = run_table([rc], str(tmp_path), trainer_cls=NeverTrain, evaluate_fn=_fail,
                        benchmark=(fake_bench, None), progress=False, log=lambda m: None, retime=True)
    m2 = json.load(open(os.path.join(rc.out_dir, "metrics.json")))
    assert summary[rc.name][0] == "cached" and len(calls) == 2
    assert (m2["values"]["ms_noflip"], m2["values"]["ms_flip"]) == (12.0, 22.0)
    assert m2["values"]["auc_flip"] == m["values"]["auc_flip"] and m2["benchmark"]["other_cpu_share"] == 0.05
    md = render_markdown(rc.spec, build_rows([rc]), {"data": "datatang", "scale": "smoke"})
    assert "timed while other processes" not in md


def test_cpu_clock_sees_another_busy_process():
    """The real /proc/stat reading: a second process spinning on a core shows as others' CPU time."""
    import subprocess
    import time as _time
    from lotr_gluon.tables.runner import _cpu_clock, other_cpu_share
    if not os.path.exists("/proc/stat"):
        pytest.skip("no /proc/stat on this platform")
    p = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 3: pass"])
    try:
        _time.sleep(0.3)
        a = _cpu_clock()
        _time.sleep(1.5)
        b = _cpu_clock()
    finally:
        p.wait()
    share = other_cpu_share(a, b)
    assert share is not None and share >= 0.4 / (os.cpu_count() or 1)  # about one core (1 / cores) of the machine


# ------------------------------------------------------------------------------------------ rendering
def test_render_missing_cells_never_shows_paper_value(tmp_path):
    spec = get_table("lotr", 6)
    rs = resolve_cells(spec, "datatang", "smoke", out_root=str(tmp_path))
    done = rs[4]  # lotr_m/smooth_wing
    os.makedirs(done.out_dir)
    with open(os.path.join(done.out_dir, "metrics.json"), "w") as f:
        json.dump({"cell_hash": done.cell_hash, "values": {"auc": 12.5, "nme": 9.0, "fr": 60.0}}, f)
    with open(os.path.join(done.out_dir, "log.jsonl"), "w") as f:  # two epochs, 60 s + 90 s, a resume between
        for rec in ({"type": "epoch", "epoch": 1, "step": 5, "seconds": 60.0, "images_per_s": 10.0},
                    {"type": "resume", "epoch": 1}, {"type": "train", "step": 6, "loss": 1.0},
                    {"type": "epoch", "epoch": 2, "step": 10, "seconds": 90.0, "images_per_s": 20.0}):
            f.write(json.dumps(rec) + "\n")
    rows = build_rows(rs)
    md = render_markdown(spec, rows, {"data": "datatang", "scale": "smoke"})
    epochs = done.train_cell.cfg.TRAIN.EPOCHS
    assert "- lotr_m/smooth_wing: 2 of %d epochs, 2.5 min, 15.0 images/s" % epochs in md.splitlines()
    assert sum(l.startswith("- lotr_m/") for l in md.splitlines()) == 1   # cells without a log: no line
    assert rows[4]["training"] == {"epochs": 2, "of": epochs, "minutes": 2.5, "images_per_s": 15.0}
    other = done.cfg.clone()   # a run of another configuration in the folder (stashed when the cell runs)
    other.defrost()
    other.TRAIN.EPOCHS += 1
    with open(os.path.join(done.out_dir, "config.yaml"), "w") as f:
        f.write(other.dump())
    assert build_rows(rs)[4]["training"] is None
    assert cell_train_log(done) is None                                  # nor its training curves
    assert plot_training_curves(spec, rs, str(tmp_path)) == []
    with open(os.path.join(done.out_dir, "config.yaml"), "w") as f:
        f.write(done.cfg.dump())
    assert build_rows(rs)[4]["training"]["epochs"] == 2
    assert cell_train_log(done) == os.path.join(done.out_dir, "log.jsonl")
    head = [c.strip() for c in md.splitlines()[[i for i, l in enumerate(md.splitlines())
                                                if l.startswith("| cell |")][0]].split("|")]
    ip, io_ = head.index("AUC (%) paper"), head.index("AUC ours")
    lines = {l.split("|")[1].strip(): [c.strip() for c in l.split("|")] for l in md.splitlines()
             if l.startswith("| lotr_")}
    assert len(lines) == 15
    assert lines["lotr_m/l2"][ip] == "84.52" and lines["lotr_m/l2"][io_] == "—"      # paper value, ours missing
    assert lines["lotr_m/smooth_wing"][io_] == "12.50" and lines["lotr_m/smooth_wing"][ip] == "87.05"
    # each row says how its backbone started (smoke scale: no ImageNet weights), and the table stays rectangular
    assert head[-2] == "backbone init" and lines["lotr_m/smooth_wing"][-2] == "scratch"
    table = [l for l in md.splitlines() if l.startswith("|")][:17]
    assert len({l.count("|") for l in table}) == 1
    assert lines["lotr_m/smooth_wing"][io_ + 1] == "-74.55"
    assert lines["lotr_r_plus/wing"][ip] == "87.68" and lines["lotr_r_plus/wing"][io_] == "—"
    for name, cells in lines.items():
        if name != "lotr_m/smooth_wing":
            assert cells[io_] == "—", name
    assert "paper" in md and "| L2 | — (paper 84.52) | — (paper 84.28) | — (paper 86.73) |" in md
    assert "| Smooth-Wing | 12.50 (paper 87.05) |" in md and "†" not in md and "offline" not in md
    # written files
    out_md, paths = report(spec, rs, str(tmp_path), {"data": "datatang", "scale": "smoke"}, plots=False)
    assert open(paths["md"]).read() == out_md
    csv_rows = open(paths["csv"]).read().splitlines()
    assert csv_rows[0].startswith("cell,row,col,status,auc_paper,auc_paper_provenance,auc_ours,auc_diff")
    import csv
    l2 = [r for r in csv.reader(csv_rows) if r[0] == "lotr_m/l2"][0]
    assert l2[4] == "84.52" and l2[5] == "Table VI, L2, LOTR-M" and l2[6] == ""
    js = json.load(open(paths["json"]))
    assert js["source"].startswith("Watchareeruetai") and len(js["cells"]) == 15


def test_dry_run_output(tmp_path, capsys):
    rc = reproduce_table.main(["--table", "6", "--scale", "smoke", "--dry-run", "--out", str(tmp_path),
                               "--cells", "lotr_m/*", "SEED", "2"])
    out = capsys.readouterr().out
    assert rc == 0
    lines = [l for l in out.splitlines() if l.startswith("| lotr_")]
    assert len(lines) == 5 and all(l.rstrip(" |").endswith("missing") for l in lines)
    assert "| lotr_m/wing | experiments/datatang/lotr_m.yaml | LOSS.NAME wing | missing |" in out
    assert "TRAIN.MAX_STEPS 2" in out and "extra overrides (every cell): SEED 2" in out
    with pytest.raises(SystemExit):
        reproduce_table.main(["--table", "6", "--dry-run", "--cells", "nope"])
    assert reproduce_table.main(["--list"]) == 0
    assert "--paper lotr --table 6" in capsys.readouterr().out
    sel = select_cells(resolve_cells(get_table("lotr", 7), "datatang", "smoke"), ["lotr_m_plus"])
    assert [r.name for r in sel] == ["lotr_m_plus/L%d" % n for n in range(1, 7)]


def test_cells_with_a_schedule_of_their_own(tmp_path, capsys):
    """--cell-scale: the ResNet50 rows of Table V at a reduced schedule, the rest unchanged and marked apart."""
    spec = get_table("lotr", 5)
    plain = {rc.name: rc for rc in resolve_cells(spec, "datatang", "paper", out_root=str(tmp_path))}
    rs = resolve_cells(spec, "datatang", "paper", out_root=str(tmp_path),
                       cell_scales=[("*r50*", "epochs=12"), ("lotr_r_plus", "epochs=12"), ("earp*", "smoke")])
    by = {rc.name: rc for rc in rs}
    reduced = {"earp_r50", "earp_r50_vector", "cnn_ffn_r50", "lotr_r_plus"}
    for name, rc in by.items():
        if name in reduced:  # first matching pair counts: earp_r50 is epochs=12, not smoke
            assert rc.scale == "epochs=12" and rc.cfg.TRAIN.EPOCHS == 12 and list(rc.cfg.TRAIN.LR_STEPS) == [9, 11]
            assert rc.train_hash != plain[name].train_hash
        elif name.startswith("earp"):
            assert rc.scale == "smoke" and rc.cfg.TRAIN.MAX_STEPS == 2
        else:  # untouched: same configuration and hashes as without --cell-scale
            assert rc.scale == "paper" and rc.cfg.TRAIN.EPOCHS == 36
            assert (rc.train_hash, rc.cell_hash) == (plain[name].train_hash, plain[name].cell_hash)
    with pytest.raises(ValueError, match="matches no cell; cells: earp, earp_r50"):
        resolve_cells(spec, "datatang", "paper", cell_scales=[("resnet*", "epochs=12")])
    with pytest.raises(ValueError):
        resolve_cells(spec, "datatang", "paper", cell_scales=[("*r50*", "fast")])
    md = render_markdown(spec, build_rows(rs), {"data": "datatang", "scale": "paper"})
    assert "| earp_r50 [epochs=12] |" in md and "| lotr_m |" in md
    assert ("cells at another schedule than the rest of the table (marked [epochs=12]): earp_r50, "
            "earp_r50_vector, cnn_ffn_r50, lotr_r_plus (overrides TRAIN.EPOCHS 12 TRAIN.LR_STEPS [9, 11])") in md
    assert reproduce_table.main(["--table", "5", "--dry-run", "--out", str(tmp_path), "--cell-scale", "*r50*",
                                 "epochs=12"]) == 0
    out = capsys.readouterr().out
    assert "| cnn_ffn_r50 [epochs=12] | experiments/datatang/cnn_ffn_r50.yaml | - | missing |" in out
    assert "scale overrides of cnn_ffn_r50 [epochs=12]: TRAIN.EPOCHS 12 TRAIN.LR_STEPS [9, 11]" in out


# ------------------------------------------------------------------------------------------ real run
def test_real_tiny_cell_end_to_end(datatang_root, tmp_path, capsys):
    """One cell of Table VI trained for real on 12 Datatang faces, evaluated like tools/test.py, cached on rerun."""
    opts = _opts(**{"DATA.ROOT": str(datatang_root), "MODEL.BACKBONE.NAME": "mobilenetv2_0.25", "MODEL.BACKBONE.PRETRAINED": "False",
                    "DATA.INPUT_SIZE": "64", "DATA.MAX_SAMPLES": "12", "TRAIN.BATCH_SIZE": "4", "TRAIN.EPOCHS": "1"})
    argv = ["--table", "6", "--scale", "smoke", "--out", str(tmp_path), "--cells", "lotr_m/smooth_wing", "--quiet"] + opts
    assert reproduce_table.main(argv) == 0
    out = capsys.readouterr().out
    d = tmp_path / "lotr-6" / "lotr_m" / "smooth_wing"
    m = json.load(open(d / "metrics.json"))
    assert m["num_images"] == 12 and m["metrics"]["flip"]["flip"] is True
    assert 0.0 <= m["values"]["auc"] <= 100.0 and np.isfinite(m["values"]["nme"])
    assert m["values"]["auc"] == pytest.approx(100 * m["metrics"]["flip"]["auc"])
    assert len(open(d / "per_image.csv").read().splitlines()) == 13
    for f in ("config.yaml", "log.jsonl", "model_best.params", "checkpoint_last.json", "cell.json"):
        assert (d / f).is_file(), f
    assert not (d / "checkpoint_last.states").exists()
    for f in ("table.md", "table.csv", "table.json", "ced_lotr_m.png", "loss_curves_lotr_m.png", "loss_functions.png"):
        assert (tmp_path / "lotr-6" / f).is_file(), f
    assert "[1/1] lotr_m/smooth_wing" in out and "done" in out
    assert "- lotr_m/smooth_wing: 1 of 1 epochs, " in out
    row = [l for l in out.splitlines() if l.startswith("| lotr_m/smooth_wing |")][0]
    assert "87.05" in row and "%.2f" % m["values"]["auc"] in row
    # rerun: skipped
    assert reproduce_table.main(argv) == 0
    assert "done (cached)" in capsys.readouterr().out
    # the cell's result record: what metrics.json says, every face's NME, how it was aligned, started, run
    rec = json.load(open(d / "record.json"))
    assert rec["kind"] == "table_cell" and rec["cell"] == "lotr_m/smooth_wing" and rec["cell_hash"] == m["cell_hash"]
    assert rec["values"] == m["values"] and set(rec["per_face_nme"]) == set(m["metrics"]) | {"mean_shape"}
    names = [l.split(",")[0] for l in open(d / "per_image.csv").read().splitlines()[1:]]
    assert sorted(rec["per_face_nme"]["flip"]) == sorted(names)
    assert np.mean(list(rec["per_face_nme"]["flip"].values())) == pytest.approx(m["metrics"]["flip"]["nme"], abs=1e-6)
    assert rec["alignment"].startswith("detector yunet") and rec["init"] == "scratch"
    assert rec["training"]["epochs"] == 1 and "MODEL:" in rec["config"] and rec["machine"]["cores"]
    assert set(rec["code"]) == {"commit", "dirty"}
    # committed records: saved, then the table renders from them alone, the same row as from the run folder
    dest = tmp_path / "results"
    assert reproduce_table.main(argv + ["--report-only", "--save-records", str(dest)]) == 0
    assert "saved 1 record(s)" in capsys.readouterr().out
    saved = dest / "lotr-6" / "lotr_m__smooth_wing.record.json"
    assert json.load(open(saved))["per_face_nme"] == rec["per_face_nme"]
    shutil.rmtree(tmp_path / "lotr-6")
    assert reproduce_table.main(argv + ["--report-only", "--from-records", str(dest), "--no-plots"]) == 0
    out2 = capsys.readouterr().out
    assert [l for l in out2.splitlines() if l.startswith("| lotr_m/smooth_wing |")][0] == row
    assert "14 of 15 cells finished" not in out2 and "1 of 15 cells finished" in out2
    from lotr_gluon.errors import UsageError
    with pytest.raises(UsageError, match="--report-only"):
        reproduce_table.main(argv + ["--from-records", str(dest)])  # records render only, never train


def test_cell_values_units_and_subsets():
    from lotr_gluon.tables import cell_values
    res = {"metrics": {"noflip": {"nme": 0.06, "fr": 0.2, "auc": 0.4},
                       "flip": {"nme": 0.05, "fr": 0.1, "auc": 0.5,
                                "subsets": {"pose": {"nme": 0.1, "fr": 0.3, "auc": 0.2}}}}}
    v = cell_values(get_table("lotr", 2), res, info={"params": 2.5e6, "size_mb": 9.5, "gmacs": 0.2, "gflops_2x_macs": 0.4},
                    bench={"ms_noflip": 1.0, "ms_flip": 1.5})
    assert v["auc"] == pytest.approx(50) and v["auc_noflip"] == pytest.approx(40) and v["nme_pose"] == pytest.approx(10)
    assert v["params_m"] == pytest.approx(2.5) and v["ms_flip"] == 1.5 and v["gflops"] == 0.2  # paper "GFLOPs" = GMACs


# ------------------------------------------------------------------------------------------ hashing
def test_canonical_config_is_what_differs_from_the_defaults(tmp_path, monkeypatch):
    """Hand-computed canonical config; a new key with a neutral default changes no hash; a changed setting
    changes it; a key set to its default counts as not set."""
    from lotr_gluon.config import defaults, load_config
    from lotr_gluon.tables import runner
    from lotr_gluon.tables.runner import canonical_config
    p = tmp_path / "x.yaml"
    p.write_text("MODEL:\n  TRANSFORMER:\n    ENC_LAYERS: 3\n    DROPOUT: 0.1\nTRAIN:\n  EPOCHS: 5\n"
                 "  LOG_EVERY: 7\nDATA:\n  CACHE: False\n")
    cfg = load_config(str(p), _opts(OUTPUT_DIR="/elsewhere", **{"TEST.BATCH_SIZE": "3"}))
    # DROPOUT 0.1 is the default; LOG_EVERY, CACHE, OUTPUT_DIR, TEST.BATCH_SIZE and CFG_NAME are volatile
    assert canonical_config(cfg) == {"MODEL.TRANSFORMER.ENC_LAYERS": 3, "TRAIN.EPOCHS": 5}
    h = config_hash(cfg)
    assert h == config_hash(load_config(str(p), ["MODEL.HEATMAP.SIGMA", "1.5"]))  # the default, spelled out
    assert h != config_hash(load_config(str(p), ["MODEL.TRANSFORMER.DEC_LAYERS", "3"]))
    assert h != config_hash(load_config(str(p), ["MODEL.AUX.HEATMAP_WEIGHT", "10.0"]))
    assert h != config_hash(load_config(str(p), ["MODEL.BACKBONE.NAME", "resnet50_v1"]))
    real = load_config(os.path.join(ROOT, "experiments", "datatang", "lotr_m.yaml"))
    h_real = config_hash(real)
    # a new Transformer lever whose default changes nothing: no hash changes; set to another value: it does
    grown = defaults._C.clone()
    grown.MODEL.TRANSFORMER.NEW_LEVER = "off"
    monkeypatch.setattr(defaults, "_C", grown)
    monkeypatch.setattr(runner, "_DEFAULTS", [])
    assert config_hash(load_config(str(p))) == h
    assert config_hash(load_config(os.path.join(ROOT, "experiments", "datatang", "lotr_m.yaml"))) == h_real
    on = load_config(str(p), ["MODEL.TRANSFORMER.NEW_LEVER", "on"])
    assert canonical_config(on)["MODEL.TRANSFORMER.NEW_LEVER"] == "on" and config_hash(on) != h


def test_changed_default_is_not_taken_for_the_cached_result(tmp_path, monkeypatch):
    """The hash counts non-default keys only, so a changed default keeps a cell's hash; its run folder's
    config.yaml (written with every key) then tells the cached result apart."""
    from lotr_gluon.config import defaults
    from lotr_gluon.tables import runner
    rc = resolve_cells(get_table("lotr", 6), "datatang", "smoke", out_root=str(tmp_path))[3]
    assert rc.cfg.MODEL.TRANSFORMER.NUM_HEADS == 8 and rc.source is None
    os.makedirs(rc.out_dir)
    with open(os.path.join(rc.out_dir, "config.yaml"), "w") as f:
        f.write(rc.cfg.dump())  # as the Trainer writes it
    with open(os.path.join(rc.out_dir, "metrics.json"), "w") as f:
        json.dump({"cell_hash": rc.cell_hash, "values": {"auc": 42.0}}, f)
    assert cell_status(rc)[0] == "done"
    changed = defaults._C.clone()
    changed.MODEL.TRANSFORMER.NUM_HEADS = 4
    monkeypatch.setattr(defaults, "_C", changed)
    monkeypatch.setattr(runner, "_DEFAULTS", [])
    rc2 = resolve_cells(get_table("lotr", 6), "datatang", "smoke", out_root=str(tmp_path))[3]
    assert rc2.cfg.MODEL.TRANSFORMER.NUM_HEADS == 4 and rc2.cell_hash == rc.cell_hash
    assert cell_status(rc2)[0] == "missing"
