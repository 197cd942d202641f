"""The 300-W configs (experiments/300w) on real faces of ../shared/data/300w_public: they build, align on YuNet's
five points and train one tiny epoch; tools/compare_peers.py scores a tiny model (and dlib when installed) end to
end on three HELEN test faces."""
import contextlib
import csv
import io
import json
import os
import shutil
import warnings

import numpy as np
import pytest

from lotr_gluon.build import detections_path, split_label
from lotr_gluon.errors import UsageError
from lotr_gluon.config import load_config
from lotr_gluon.data.formats import load_detections, load_detections_meta
from lotr_gluon.data.schemes import get_scheme
from lotr_gluon.evaluate import evaluate_weights
from conftest import load_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = ("lotr_m", "earp_mnv2_1.0_sdd", "cnn_ffn_mnv2")
#: faces copied per split: (split folder, count); the first ones of the shared split lists
COUNTS = (("train", 6), ("val", 8), ("test", 3))

warnings.filterwarnings("ignore", category=UserWarning)


@pytest.fixture(scope="module")
def tiny_300w(w300_root, shared_dir, tmp_path_factory):
    """A 300-W folder of a few real faces per split (images and .pts copied from the shared folder) and the
    folder for the detections cache: ``(data root, cache folder, tmp folder)``."""
    if not (shared_dir / "models" / "face_detection_yunet.onnx").is_file():
        pytest.skip("YuNet model not found in %s" % (shared_dir / "models"))
    base = tmp_path_factory.mktemp("w300")
    for split, n in COUNTS:
        (base / "data" / split).mkdir(parents=True)
        stems = (w300_root / "splits" / ("%s.txt" % split)).read_text().split()[:n]
        for stem in stems:
            for ext in (".jpg", ".pts"):
                shutil.copy(str(w300_root / split / (stem + ext)), str(base / "data" / split / (stem + ext)))
    return base / "data", base / "cache", base


def tiny_opts(data, cache, out):
    return ["DATA.ROOT", str(data), "DATA.DETECTIONS_CACHE", str(cache), "DATA.INPUT_SIZE", "64",
            "MODEL.BACKBONE.NAME", "mobilenetv2_0.25", "MODEL.BACKBONE.PRETRAINED", "False", "TRAIN.BATCH_SIZE", "3",
            "TRAIN.EPOCHS", "1", "TRAIN.MAX_STEPS", "2", "TRAIN.LOG_EVERY", "1", "TEST.BATCH_SIZE", "4",
            "OUTPUT_DIR", str(out)]


@pytest.fixture(scope="module")
def trained(tiny_300w):
    """Each 300-W config trained for one tiny epoch (two steps): ``{name: (cfg, run folder)}``."""
    from lotr_gluon.trainer import Trainer
    data, cache, base = tiny_300w
    runs = {}
    for name in CONFIGS:
        cfg = load_config(os.path.join(ROOT, "experiments", "300w", name + ".yaml"), tiny_opts(data, cache, base))
        run = base / "runs" / name
        metrics = Trainer(cfg, out_dir=str(run), progress=False).fit()
        runs[name] = (cfg, run, metrics)
    return runs


def test_300w_configs_name_the_protocol():
    for name in CONFIGS:
        cfg = load_config(os.path.join(ROOT, "experiments", "300w", name + ".yaml"))
        d = cfg.DATA
        assert (d.NAME, d.FORMAT, d.SCHEME, d.ALIGN) == ("300w", "300w", "300w68", "detector"), name
        assert (d.TRAIN_SPLIT, d.VAL_SPLIT, d.TEST_SPLIT) == ("train", "val", "test"), name
        assert cfg.MODEL.NUM_POINTS == 68 and cfg.MODEL.BACKBONE.PRETRAINED, name
    s = get_scheme("300w68")  # PIPNet Table 3: inter-ocular (outer eye corners) normalisation
    assert (s.norm, tuple(s.norm_indices), s.threshold) == ("inter_ocular", (36, 45), 0.08)


def test_split_label_names_the_subset_wherever_a_number_is_printed():
    cfg = load_config(os.path.join(ROOT, "experiments", "300w", "lotr_m.yaml"))
    assert split_label(cfg, "test", 220) == "300-W subset (HELEN test, 220 faces; not the full 300-W protocol)"
    assert split_label(cfg, "val", 100) == "300-W subset (AFW + HELEN train, val 100 faces; not the full 300-W protocol)"
    assert split_label(cfg, "other", 7) == "300w other (7 faces)"  # a split value without a label
    bad = load_config(os.path.join(ROOT, "experiments", "300w", "lotr_m.yaml"), ["DATA.SPLIT_LABELS", "['test']"])
    with pytest.raises(UsageError, match="VALUE=LABEL"):
        split_label(bad, "test", 1)


@pytest.mark.parametrize("name", CONFIGS)
def test_300w_config_trains_one_tiny_epoch_on_real_faces(trained, name):
    cfg, run, metrics = trained[name]
    assert (run / "model_best.params").is_file() and (run / "log.jsonl").is_file()
    assert metrics["num_images"] == 8 and np.isfinite(metrics["nme"]) and metrics["nme"] > 0
    for split, n in COUNTS[:2]:  # aligned on YuNet's five points (DATA.ALIGN detector), cached per split
        dets = load_detections(detections_path(cfg, split))
        assert len(dets) == n and load_detections_meta(detections_path(cfg, split))["misses"] == {}, split


def test_compare_peers_scores_a_tiny_model_end_to_end(trained, tiny_300w, tmp_path):
    cfg, run, _ = trained["lotr_m"]
    data, cache, base = tiny_300w
    params = str(run / "model_best.params")
    cfg_file = os.path.join(ROOT, "experiments", "300w", "lotr_m.yaml")
    opts = tiny_opts(data, cache, base)
    out = tmp_path / "cmp"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert load_tool("compare_peers").main(
            ["--cfg", cfg_file, "--params", params, "--no-peer", "--flip", "--out", str(out), "--n-boot", "50",
             "--timing-runs", "2", "--timing-warmup", "1"] + opts) == 0
    text = stdout.getvalue()
    assert "300-W subset (HELEN test, 3 faces; not the full 300-W protocol)" in text
    assert "PIPNet Table 3" in text and "2.94%" in text
    rec = json.loads((out / "compare.json").read_text())
    assert [r["name"] for r in rec["rows"]] == ["lotr_m", "lotr_m +flip", "mean shape"]
    assert rec["code"]["commit"] and rec["machine"]["cores"] and "compare_peers.py" in rec["command"]
    # the same per-face NMEs as the project's evaluation of the same weights
    ref = evaluate_weights(load_config(cfg_file, opts), params, flips=(False,), baseline=False)
    nmes = ref.runs[False][1]
    faces = [s.name for s in ref.test_set.samples]
    assert list(rec["per_face_nme"]["lotr_m"]) == faces
    assert np.allclose([rec["per_face_nme"]["lotr_m"][f] for f in faces], nmes, atol=1e-6)
    first, base_row = rec["rows"][0], rec["rows"][2]
    assert first["metrics"]["nme"] == pytest.approx(float(np.mean(nmes)))
    assert "d_nme" not in first["metrics"] and first["misses"] == 0 and first["ms_per_face"] > 0
    assert first["size_mib"] > 0
    base_nmes = np.array([rec["per_face_nme"]["mean shape"][f] for f in faces])
    assert base_row["metrics"]["d_nme"] == pytest.approx(float(np.mean(base_nmes - nmes)), abs=1e-6)
    with open(str(out / "per_face.csv")) as f:
        table = list(csv.reader(f))
    assert table[0] == ["name", "lotr_m", "lotr_m +flip", "mean shape"] and [r[0] for r in table[1:]] == faces
    assert (out / "ced.png").stat().st_size > 0


def test_test_tool_names_the_subset_next_to_its_numbers(trained, tiny_300w, tmp_path):
    cfg, run, _ = trained["earp_mnv2_1.0_sdd"]
    data, cache, base = tiny_300w
    out = tmp_path / "test"
    with contextlib.redirect_stdout(io.StringIO()) as stdout:
        assert load_tool("test").main(["--cfg", os.path.join(ROOT, "experiments", "300w", "earp_mnv2_1.0_sdd.yaml"),
                                       "--params", str(run / "model_best.params"), "--out", str(out)]
                                      + tiny_opts(data, cache, base)) == 0
    label = "300-W subset (HELEN test, 3 faces; not the full 300-W protocol)"
    assert stdout.getvalue().splitlines()[0] == "data       : " + label
    assert json.loads((out / "metrics.json").read_text())["label"] == label
    rec = json.loads((out / "record.json").read_text())
    assert rec["data"]["label"] == label and set(rec["per_face_nme"]) == {"no_flip", "flip"}
    assert len(rec["per_face_nme"]["flip"]) == 3 and rec["metrics"]["no_flip"]["detector_misses"] == 0


def test_compare_peers_runs_dlib_on_the_same_faces(trained, tiny_300w, tmp_path):
    pytest.importorskip("dlib")
    from lotr_gluon.errors import PeerError
    from lotr_gluon.peers import find_dlib_model
    try:
        find_dlib_model()
    except PeerError as e:
        pytest.skip(str(e))
    data, cache, base = tiny_300w
    out = tmp_path / "cmp"
    with contextlib.redirect_stdout(io.StringIO()) as stdout:
        assert load_tool("compare_peers").main(
            ["--cfg", os.path.join(ROOT, "experiments", "300w", "lotr_m.yaml"), "--out", str(out), "--n-boot", "50",
             "--no-baseline", "--no-progress"] + tiny_opts(data, cache, base)) == 0
    rec = json.loads((out / "compare.json").read_text())
    (row,) = rec["rows"]
    assert row["name"] == "dlib (yunet mapped box)" and row["misses"] == 0 and row["size_mib"] > 90
    assert row["yunet_to_dlib_box_mapping"]["split"] == "val" and row["yunet_to_dlib_box_mapping"]["faces"] == 8
    per_face = sorted(rec["per_face_nme"][row["name"]].values())
    assert per_face[1] < 0.05  # the median face; the third, a hard one, is at 26% (dlib's own detector misses it)
    assert "may include these HELEN test faces" in stdout.getvalue()
