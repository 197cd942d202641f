"""Tiny end-to-end runs on real Datatang faces: train, validate, checkpoint, resume, NaN stop, two CPU
contexts, and tools/test.py's outputs."""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import mxnet as mx
import pytest

from lotr_gluon.config import load_config
from lotr_gluon.trainer import Trainer, TrainingDiverged, lr_at, read_log

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CFG = os.path.join(ROOT, "experiments", "datatang", "lotr_m.yaml")

warnings.filterwarnings("ignore", category=UserWarning)


def tiny_opts(datatang_root, out, **extra):
    opts = {"DATA.ROOT": str(datatang_root), "DATA.MAX_SAMPLES": "12", "DATA.INPUT_SIZE": "64",
            "MODEL.BACKBONE.NAME": "mobilenetv2_0.25", "MODEL.BACKBONE.PRETRAINED": "False", "TRAIN.BATCH_SIZE": "4", "TRAIN.EPOCHS": "1",
            "TRAIN.LOG_EVERY": "1", "OUTPUT_DIR": str(out)}
    opts.update(extra)
    return [x for kv in opts.items() for x in kv]


def test_lr_schedule():
    assert lr_at(0, 1e-3, [50, 75], 0.1) == pytest.approx(1e-3)
    assert lr_at(50, 1e-3, [50, 75], 0.1) == pytest.approx(1e-4)
    assert lr_at(80, 1e-3, [50, 75], 0.1) == pytest.approx(1e-5)
    assert lr_at(0.5, 1e-3, [], 0.1, warmup_epochs=1) == pytest.approx(0.5e-3, rel=1e-2)


def test_train_checkpoint_resume(datatang_root, tmp_path):
    cfg = load_config(CFG, tiny_opts(datatang_root, tmp_path))
    tr = Trainer(cfg, out_dir=str(tmp_path / "run"), progress=False)
    metrics = tr.fit()
    run = tmp_path / "run"
    for f in ("config.yaml", "log.jsonl", "checkpoint_last.params", "checkpoint_last.states",
              "checkpoint_last.json", "model_best.params", "loss_curve.png"):
        assert (run / f).is_file(), f
    assert not list(run.glob("*.tmp"))
    assert tr.step == 3 and metrics["num_images"] == 12 and np.isfinite(metrics["nme"])
    # the spreads are those of the final weights' crop predictions and of the ground truth, recomputed here
    from lotr_gluon.evaluate import predict
    preds_crop, _ = predict(tr.net, tr.val_set, tr.ctx[0], cfg.TEST.BATCH_SIZE, post=tr.post)
    assert metrics["pred_spread_px"] == pytest.approx(float(preds_crop.std(axis=0).mean()), rel=1e-4, abs=1e-6)
    gt_crop = tr.val_set.aligned_landmarks()
    assert metrics["gt_spread_px"] == pytest.approx(float(gt_crop.std(axis=0).mean()), rel=1e-4)
    assert metrics["gt_spread_px"] > 1.0 and metrics["pred_spread_px"] > 0  # 12 different faces
    recs = read_log(str(run / "log.jsonl"))
    assert {"mean_shape_baseline", "train", "val", "epoch"} <= {r["type"] for r in recs}
    # resume: a new process-like trainer continues at epoch 1, step 3
    cfg2 = load_config(CFG, tiny_opts(datatang_root, tmp_path, **{"TRAIN.EPOCHS": "2"}))
    tr2 = Trainer(cfg2, out_dir=str(run), progress=False)
    w_saved = tr.net.collect_params()[tr.net.query_embed.name].data().asnumpy()
    tr2.fit(resume=True)
    assert tr2.epoch == 2 and tr2.step == 6
    recs = read_log(str(run / "log.jsonl"))
    assert any(r["type"] == "resume" and r["epoch"] == 1 and r["step"] == 3 for r in recs)
    assert json.load(open(run / "checkpoint_last.json"))["epoch"] == 2
    # the resumed trainer started from the saved weights, not from a fresh init
    assert not np.allclose(w_saved, tr2.net.query_embed.data().asnumpy())


def test_nan_loss_stops_and_keeps_last_checkpoint(datatang_root, tmp_path):
    cfg = load_config(CFG, tiny_opts(datatang_root, tmp_path, **{"TRAIN.EPOCHS": "2"}))
    tr = Trainer(cfg, out_dir=str(tmp_path / "run"), progress=False)
    tr.fit()  # 2 good epochs -> checkpoint at epoch 2
    ckpt = tmp_path / "run" / "checkpoint_last.params"
    before = ckpt.read_bytes()
    cfg3 = load_config(CFG, tiny_opts(datatang_root, tmp_path, **{"TRAIN.EPOCHS": "3"}))
    tr3 = Trainer(cfg3, out_dir=str(tmp_path / "run"), progress=False)
    good_loss = tr3.criterion.loss

    def nan_loss(pred, label):
        return good_loss(pred, label) * float("nan")
    tr3.criterion.loss = nan_loss
    with pytest.raises(TrainingDiverged) as e:
        tr3.fit(resume=True)
    assert "step 7" in str(e.value) and "checkpoint_last.params" in str(e.value)
    assert ckpt.read_bytes() == before
    assert json.load(open(tmp_path / "run" / "checkpoint_last.json"))["epoch"] == 2


def test_two_cpu_contexts_data_parallel(datatang_root, tmp_path):
    cfg = load_config(CFG, tiny_opts(datatang_root, tmp_path, **{"NUM_CPU_CONTEXTS": "2",
                                                                  "TRAIN.VAL_EVERY": "0"}))
    tr = Trainer(cfg, out_dir=str(tmp_path / "run"), progress=False)
    assert len(tr.ctx) == 2
    tr.fit()
    assert tr.step == 3
    p = tr.net.query_embed
    a, b = (p.data(c).asnumpy() for c in tr.ctx)
    np.testing.assert_allclose(a, b, rtol=1e-6)  # the kvstore kept both copies in sync
    assert np.isfinite(a).all()


def test_test_tool_writes_metrics_and_plots(datatang_root, tmp_path):
    cfg = load_config(CFG, tiny_opts(datatang_root, tmp_path))
    Trainer(cfg, out_dir=str(tmp_path / "run"), progress=False).fit()
    split = tmp_path / "five.txt"
    stems = open(os.path.join(datatang_root, "splits", "val.txt")).read().split()[:5]
    split.write_text("\n".join(stems) + "\n")
    out = tmp_path / "test"
    cmd = [sys.executable, os.path.join(ROOT, "tools", "test.py"), "--cfg", CFG,
           "--params", str(tmp_path / "run" / "model_best.params"), "--out", str(out), "--flip"]
    cmd += tiny_opts(datatang_root, tmp_path, **{"DATA.TEST_SPLIT": str(split), "DATA.MAX_SAMPLES": "0"})
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.load(open(out / "metrics.json"))
    assert m["num_images"] == 5 and m["flip"] is True and m["threshold"] == 0.08
    for k in ("nme", "fr", "auc"):
        assert 0.0 <= m[k] and (k == "nme" or m[k] <= 1.0)
    assert 0.0 < m["mean_shape_baseline"]["nme"] < 0.2
    assert (out / "ced.png").stat().st_size > 0 and (out / "predictions.png").stat().st_size > 0
    assert len(open(out / "per_image.csv").read().strip().splitlines()) == 6
    assert "mean shape" in r.stdout


def test_missing_data_root_is_a_clear_error(tmp_path):
    cfg = load_config(CFG, ["DATA.ROOT", str(tmp_path / "nope")])
    with pytest.raises(FileNotFoundError, match="DATA.ROOT"):
        Trainer(cfg, out_dir=str(tmp_path / "run"), progress=False)


def test_heatmap_model_trains_on_real_faces(datatang_root, tmp_path):
    """Earp heatmap baseline through the same trainer: Gaussian targets from the codec, heatmap MSE,
    validation decoded with DARK in the original image frame."""
    cfg_file = os.path.join(ROOT, "experiments", "datatang", "earp_mnv2_1.0_sdd.yaml")
    cfg = load_config(cfg_file, tiny_opts(datatang_root, tmp_path, **{"TRAIN.EPOCHS": "2"}))
    tr = Trainer(cfg, out_dir=str(tmp_path / "run"), progress=False)
    # the criterion compares the heatmaps with the codec's targets, which the data pipeline encodes
    assert tr.criterion.dense and tr.criterion.target_codec is tr.post.codec is tr.net.codec
    metrics = tr.fit()
    losses = [r["loss"] for r in read_log(str(tmp_path / "run" / "log.jsonl")) if r["type"] == "train"]
    assert len(losses) == 6 and all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert metrics["decoder"] == "dark" and np.isfinite(metrics["nme"]) and metrics["num_images"] == 12


def test_lotr_with_aux_heatmap_loss_trains(datatang_root, tmp_path):
    """MODEL.AUX.HEATMAP_WEIGHT > 0: the trainer adds the weighted heatmap MSE of the training-only head
    (logged apart), and validation runs on landmarks only."""
    cfg = load_config(CFG, tiny_opts(datatang_root, tmp_path, **{
        "MODEL.AUX.HEATMAP_WEIGHT": "1000.0", "MODEL.HEATMAP.UPSAMPLER": "SD", "TRAIN.OPTIMIZER": "adam"}))
    tr = Trainer(cfg, out_dir=str(tmp_path / "run"), progress=False)
    codec = tr.criterion.target_codec
    assert codec.heatmap_size == tr.net.aux_heatmap_size == 8 and tr.criterion.aux_loss is not None
    assert tr.post.codec is None  # the landmarks are the output: nothing to decode
    metrics = tr.fit()
    recs = read_log(str(tmp_path / "run" / "log.jsonl"))
    train = [r for r in recs if r["type"] == "train"]
    assert len(train) == 3
    for r in train:  # the total includes the auxiliary part, which is positive
        assert 0 < r["loss_aux_heatmap"] < r["loss"]
    assert np.isfinite(metrics["nme"]) and metrics["num_images"] == 12
    assert not tr.net._emit_aux_heatmap  # back to landmarks only after the epoch
    with pytest.raises(ValueError, match="lotr only"):
        load_cfg = load_config(CFG, tiny_opts(datatang_root, tmp_path, **{
            "MODEL.NAME": "cnn_ffn", "MODEL.AUX.HEATMAP_WEIGHT": "1.0"}))
        Trainer(load_cfg, out_dir=str(tmp_path / "run2"), progress=False)


def test_cosine_schedule_by_hand():
    # base * (1 + cos(pi t / T)) / 2: 1 at 0, 1/2 at T/2, (1 + cos(pi/4)) / 2 at T/4, 0 at T and after
    assert lr_at(0, 1e-3, [5], 0.1, schedule="cosine", epochs=12) == pytest.approx(1e-3)
    assert lr_at(6, 1e-3, [5], 0.1, schedule="cosine", epochs=12) == pytest.approx(0.5e-3)
    assert lr_at(3, 1e-3, [5], 0.1, schedule="cosine", epochs=12) == pytest.approx(1e-3 * (1 + 0.5 ** 0.5) / 2)
    assert lr_at(12, 1e-3, [], 0.1, schedule="cosine", epochs=12) == pytest.approx(0.0, abs=1e-15)
    assert lr_at(13, 1e-3, [], 0.1, schedule="cosine", epochs=12) == pytest.approx(0.0, abs=1e-15)
    # the warm-up multiplies the cosine
    assert lr_at(0.5, 1e-3, [], 0.1, warmup_epochs=1, schedule="cosine", epochs=12) == pytest.approx(
        1e-3 * (1 + np.cos(np.pi * 0.5 / 12)) / 2 * (0.5 + 1e-3), rel=1e-9)
    with pytest.raises(ValueError, match="epochs"):
        lr_at(1, 1e-3, [], 0.1, schedule="cosine")
    with pytest.raises(ValueError, match="schedule"):
        lr_at(1, 1e-3, [], 0.1, schedule="poly", epochs=3)
