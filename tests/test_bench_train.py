"""Training speed: the thread runtime, heatmap targets made in the data pipeline, loss fetches once per
logging interval, and tools/bench_train.py's report. Behaviour only, never timings."""
import importlib.util
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import mxnet as mx
import pytest

from heatmap_baseline.codec import HeatmapCodec
from lotr_gluon.config import load_config
from lotr_gluon.data.targets import WithHeatmapTargets
from lotr_gluon.errors import UsageError
from lotr_gluon.runtime import THREADS_ENV, configure_threads, usable_cores
from lotr_gluon.trainer import Trainer, read_log

warnings.filterwarnings("ignore", category=UserWarning)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CFG = os.path.join(ROOT, "experiments", "datatang", "lotr_m.yaml")


def tiny_opts(datatang_root, **extra):
    opts = {"DATA.ROOT": str(datatang_root), "DATA.MAX_SAMPLES": "12", "DATA.INPUT_SIZE": "64",
            "MODEL.BACKBONE.NAME": "mobilenetv2_0.25", "MODEL.BACKBONE.PRETRAINED": "False", "TRAIN.BATCH_SIZE": "4", "TRAIN.EPOCHS": "1",
            "TRAIN.LOG_EVERY": "1", "TRAIN.VAL_EVERY": "0"}
    opts.update(extra)
    return [x for kv in opts.items() for x in kv]


# ------------------------------------------------------------------------------------------------ runtime

def test_runtime_sets_threads_to_the_cores_unless_the_user_did():
    env = {}
    got = configure_threads(env, cores=3)
    assert env["OMP_NUM_THREADS"] == "3" and got == {"threads": 3, "source": "cores",
                                                      "set_vars": {"OMP_NUM_THREADS": "3"}}
    env = {"OMP_NUM_THREADS": "1"}  # the user's value is kept, nothing is set
    got = configure_threads(env, cores=3)
    assert env == {"OMP_NUM_THREADS": "1"} and got["threads"] == 1 and got["source"] == "OMP_NUM_THREADS"
    assert got["set_vars"] == {}
    env = {THREADS_ENV: "5"}  # the project's override replaces the core count
    got = configure_threads(env, cores=3)
    assert env["OMP_NUM_THREADS"] == "5" and got["source"] == THREADS_ENV
    env = {THREADS_ENV: "5", "OMP_NUM_THREADS": "2"}  # ... but not a user's OMP_NUM_THREADS
    assert configure_threads(env, cores=3)["threads"] == 2 and env["OMP_NUM_THREADS"] == "2"
    env = {THREADS_ENV: "0"}  # 0: MXNet's own default, nothing set
    assert configure_threads(env, cores=3) == {"threads": None, "source": "mxnet-default", "set_vars": {}}
    assert env == {THREADS_ENV: "0"}
    for bad in ("two", "-1"):
        with pytest.raises(UsageError, match=THREADS_ENV):
            configure_threads({THREADS_ENV: bad}, cores=3)
    assert usable_cores() >= 1


@pytest.mark.parametrize("env_in,expected", [({}, "cores"), ({"OMP_NUM_THREADS": "1"}, "1"),
                                             ({THREADS_ENV: "3"}, "3")])
def test_importing_lotr_gluon_sets_omp_before_mxnet(env_in, expected):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", THREADS_ENV)}
    env.update(env_in)
    code = ("import os, sys, lotr_gluon; from lotr_gluon.runtime import SETTINGS; "
            "print(os.environ.get('OMP_NUM_THREADS'), SETTINGS['applied_before_mxnet'], 'mxnet' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    omp, before, mx_loaded = out.stdout.split()
    assert omp == (str(usable_cores()) if expected == "cores" else expected)
    assert before == "True" and mx_loaded == "False"  # lotr_gluon alone does not import mxnet


# ---------------------------------------------------------------------------------------- pipeline targets

class _Points(mx.gluon.data.Dataset):
    def __init__(self, pts):
        self.pts = pts

    def __len__(self):
        return len(self.pts)

    def __getitem__(self, i):
        return np.zeros((3, 8, 8), np.float32), self.pts[i]


def test_pipeline_targets_equal_batch_encoding_bit_for_bit():
    rng = np.random.default_rng(0)
    pts = rng.uniform(-10, 74, size=(6, 5, 2)).astype(np.float32)
    pts[2, 1] = np.nan  # a missing landmark: all-zero map in both
    codec = HeatmapCodec(64, 16, sigma=1.5)
    loader = mx.gluon.data.DataLoader(WithHeatmapTargets(_Points(pts), codec), batch_size=3)
    batches = list(loader)
    assert len(batches) == 2 and all(len(b) == 3 for b in batches)
    for b in batches:
        hm = b[2].asnumpy()
        assert hm.dtype == np.float32 and hm.shape == (3, 5, 16, 16)
        assert np.array_equal(hm, codec.encode(b[1].asnumpy()))  # the former in-step encoding
    hm0 = batches[0][2].asnumpy()
    assert not hm0[2, 1].any()
    # an independent value: landmark 0 of item 0 at heatmap position q = (p + 0.5) / 4 - 0.5 (stride 64 / 16,
    # pixel centres aligned), the Gaussian exp(-d^2 / (2 sigma^2)) at the nearest grid point
    q = (pts[0, 0].astype(np.float64) + 0.5) / 4.0 - 0.5
    ix, iy = int(np.clip(np.rint(q[0]), 0, 15)), int(np.clip(np.rint(q[1]), 0, 15))
    want = np.exp(-((ix - q[0]) ** 2 + (iy - q[1]) ** 2) / (2 * 1.5 ** 2))
    assert hm0[0, 0, iy, ix] == pytest.approx(want, rel=1e-6)


def test_trainer_loader_targets_equal_the_in_step_targets(datatang_root, tmp_path):
    cfg = load_config(CFG, tiny_opts(datatang_root))
    tr = Trainer(cfg, out_dir=str(tmp_path / "run"), progress=False)
    codec = tr.criterion.target_codec  # the auxiliary heatmap head's targets
    assert codec is not None and codec.heatmap_size == tr.net.aux_heatmap_size
    data, label, target = next(iter(tr._loader()))
    assert np.array_equal(target.asnumpy(), codec.encode(label.asnumpy()))
    tr.net.set_aux_heatmap_output(True)
    with mx.autograd.record():
        from_loader = tr._batch_loss(data, label, target)
        in_step = tr._batch_loss(data, label)  # target None: encoded in the step, as the step used to
    assert np.array_equal(from_loader[0].asnumpy(), in_step[0].asnumpy())
    assert np.array_equal(from_loader[1].asnumpy(), in_step[1].asnumpy())
    assert from_loader[1].asnumpy().min() > 0


def test_loss_values_do_not_depend_on_the_fetch_interval(datatang_root, tmp_path):
    """Losses fetched every step (LOG_EVERY 1) and once after 3 steps (LOG_EVERY 3) are the same numbers; the
    same seed gives the same training (bit for bit)."""
    logs = {}
    for every in (1, 3):
        cfg = load_config(CFG, tiny_opts(datatang_root, **{"TRAIN.LOG_EVERY": str(every)}))
        tr = Trainer(cfg, out_dir=str(tmp_path / ("run%d" % every)), progress=False)
        tr.fit()
        logs[every] = read_log(str(tmp_path / ("run%d" % every) / "log.jsonl"))
    per_step = [r for r in logs[1] if r["type"] == "train"]
    once = [r for r in logs[3] if r["type"] == "train"]
    assert [r["step"] for r in per_step] == [1, 2, 3] and [r["step"] for r in once] == [3]
    assert once[0]["loss"] == per_step[-1]["loss"] and once[0]["loss_aux_heatmap"] == per_step[-1]["loss_aux_heatmap"]
    ep1, ep3 = [[r for r in logs[k] if r["type"] == "epoch"][0] for k in (1, 3)]
    assert ep3["loss"] == ep1["loss"] == pytest.approx(np.mean([r["loss"] for r in per_step]), rel=1e-12)


# ------------------------------------------------------------------------------------------- bench_train

def test_bench_train_cli_writes_the_three_figures_and_ratios(datatang_root, tmp_path):
    spec = importlib.util.spec_from_file_location("bench_train_cli", os.path.join(ROOT, "tools", "bench_train.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "bt.json"
    mod.main(["--steps", "1", "--warmup", "1", "--breakdown-runs", "1", "--out", str(out),
              "DATA.ROOT", str(datatang_root), "DATA.MAX_SAMPLES", "8", "DATA.INPUT_SIZE", "64",
              "MODEL.BACKBONE.NAME", "mobilenetv2_0.25", "MODEL.BACKBONE.PRETRAINED", "False", "TRAIN.BATCH_SIZE", "4"])
    data = json.loads(out.read_text())
    res = data["results"]
    for k in ("training_step", "bare_backbone", "data_pipeline"):
        assert res[k]["images_per_s"] > 0
    assert data["ratios"]["a_over_b"] == pytest.approx(res["training_step"]["images_per_s"]
                                                       / res["bare_backbone"]["images_per_s"])
    assert data["ratios"]["c_over_a"] == pytest.approx(res["data_pipeline"]["images_per_s"]
                                                       / res["training_step"]["images_per_s"])
    assert res["data_pipeline"]["items"] == "(image, landmarks, heatmaps)"  # LOTR-M has the auxiliary head
    bd = data["breakdown"]
    for k in ("data_loading_augmentation_ms", "heatmap_targets_ms", "backbone_forward_ms", "backbone_backward_ms",
              "neck_transformer_head_loss_ms", "aux_heatmap_head_and_loss_ms", "optimizer_update_ms", "rest_ms"):
        assert k in bd
    assert sum(bd.values()) == pytest.approx(res["training_step"]["ms_per_batch"])
    assert data["settings"]["batch"] == 4 and data["settings"]["input_size"] == 64
    assert "OMP_NUM_THREADS" in data["machine"]["env"]
    assert (tmp_path / "bt.md").read_text().startswith("Training speed")
