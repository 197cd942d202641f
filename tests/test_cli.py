"""One-line errors of the command-line tools (lotr_gluon.cli.run_main): each test builds the bad input, runs a
tool's ``main`` in-process through ``run_main`` and checks the exit code (lotr_gluon.errors) and the one line
on stderr (the file, the key, the cause). Also: flags anywhere on the line, ``--debug``, the optimiser check on
resume, and weights of a model trained with the auxiliary heatmap head load without Gluon's "not used" warning.

The model is LOTR with MobileNetV2-0.25 at 64 px on 3 + 1 Datatang faces copied to a temporary folder.
"""
import json
import os
import shutil
import warnings

import numpy as np
import mxnet as mx
import pytest

from lotr_gluon.cli import ArgumentParser, ArgumentUsageError, ensure_output_dir, ensure_output_file, run_main
from lotr_gluon.errors import DataError, ModelError, OutputError, RunFolderError, UsageError
from conftest import load_tool, write_tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
S = 64
TRAIN_STEMS = ("000016", "000019", "000022")
VAL_STEMS = ("000002",)


_tool = load_tool


@pytest.fixture(scope="module")
def tools():
    return {n: _tool(n) for n in ("train", "test", "demo", "export", "model_info", "reproduce_table")}


def _write_cfg(path, root, extra=""):
    return write_tiny_config(path, root, model_extra="""  NECK:
    HIDDEN_DIM: 16
  AUX:
    HEATMAP_WEIGHT: 1.0
""", extra="""TRAIN:
  OPTIMIZER: adam
  BATCH_SIZE: 2
  EPOCHS: 1
  HYBRIDIZE: False
%s""" % extra)


@pytest.fixture(scope="module")
def tiny(datatang_root, tmp_path_factory):
    """A 3 + 1 face copy of the Datatang sample, its config, weights of its model (with the auxiliary heatmap
    head) and weights of another architecture."""
    base = tmp_path_factory.mktemp("cli")
    data = base / "data"
    (data / "images").mkdir(parents=True)
    (data / "splits").mkdir()
    for s in TRAIN_STEMS + VAL_STEMS:
        for ext in (".jpg", ".json"):
            shutil.copy(os.path.join(str(datatang_root), "images", s + ext), str(data / "images" / (s + ext)))
    (data / "splits" / "train.txt").write_text("\n".join(TRAIN_STEMS) + "\n")
    (data / "splits" / "val.txt").write_text("\n".join(VAL_STEMS) + "\n")
    (data / "splits" / "empty.txt").write_text("")
    cfg = _write_cfg(base / "tiny.yaml", str(data))

    from lotr_gluon.config import load_config
    from lotr_gluon.model_zoo import build_model
    mx.random.seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = build_model(load_config(cfg), ctx=mx.cpu())
        net(mx.nd.zeros((1, 3, S, S)))
        params = str(base / "lotr_aux.params")
        net.save_parameters(params)
        other = build_model(load_config(cfg, ["MODEL.NAME", "cnn_ffn", "MODEL.AUX.HEATMAP_WEIGHT", "0.0"]),
                            ctx=mx.cpu())
        other(mx.nd.zeros((1, 3, S, S)))
        other_params = str(base / "cnn_ffn.params")
        other.save_parameters(other_params)
    return dict(base=base, data=data, cfg=cfg, params=params, other=other_params)


def _one_line(capsys):
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# ------------------------------------------------------------------------------------------ configuration

def test_yaml_syntax_error_names_file_and_line(tools, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("DATA:\n  NAME: datatang\n  ROOT: [unclosed\nMODEL:\n  NAME: lotr\n")
    assert run_main(tools["model_info"].main, ["--cfg", str(bad)]) == 2
    line = _one_line(capsys)
    # the parser stops at line 4 ('MODEL:'), inside the flow sequence opened on line 3
    assert str(bad) in line and "line 4" in line and "starts at line 3" in line and "YAML" in line


def test_type_mismatch_names_key_and_expected_type(tools, tiny, tmp_path, capsys):
    assert run_main(tools["model_info"].main, ["--cfg", tiny["cfg"], "TRAIN.EPOCHS", "abc"]) == 2
    line = _one_line(capsys)
    assert "TRAIN.EPOCHS" in line and "expects int" in line and "'abc'" in line and "command line" in line
    assert run_main(tools["model_info"].main, ["--cfg", tiny["cfg"], "TRAIN.LR", "1"]) == 2
    assert "TRAIN.LR" in _one_line(capsys)  # yacs takes no int for a float: say so
    typ = _write_cfg(tmp_path / "typ.yaml", str(tiny["data"]))
    (tmp_path / "typ.yaml").write_text(open(typ).read().replace("EPOCHS: 1", "EPOCHS: 2.5"))
    assert run_main(tools["model_info"].main, ["--cfg", typ]) == 2
    line = _one_line(capsys)
    assert typ in line and "TRAIN.EPOCHS" in line and "expects int" in line and "2.5" in line


def test_missing_cfg_and_missing_file(tools, tiny, capsys):
    assert run_main(tools["test"].main, ["--params", tiny["params"]]) == 2
    assert "--cfg" in _one_line(capsys)
    assert run_main(tools["train"].main, []) == 2
    assert "--cfg" in _one_line(capsys)
    nope = str(tiny["base"] / "nope.yaml")
    assert run_main(tools["demo"].main, ["--cfg", nope, "--random-init", "--image", "x.jpg",
                                         "--out", str(tiny["base"] / "x.png")]) == 2
    assert nope in _one_line(capsys)


def test_unknown_backbone_is_reported_before_the_data_loads(tools, tiny, capsys):
    # DATA.ROOT does not exist either: the backbone is checked first
    argv = ["--cfg", tiny["cfg"], "MODEL.BACKBONE.NAME", "resnet99", "DATA.ROOT", str(tiny["base"] / "no_data"),
            "--out", str(tiny["base"] / "run_bb")]
    assert run_main(tools["train"].main, argv) == 4
    line = _one_line(capsys)
    assert "MODEL.BACKBONE.NAME 'resnet99'" in line and "mobilenetv2_1.0" in line and "resnet50_v1" in line
    assert not os.path.exists(str(tiny["base"] / "run_bb"))


# ---------------------------------------------------------------------------------------- flags anywhere

def test_flags_anywhere_on_the_line():
    ap = ArgumentParser()
    ap.add_argument("--cfg", required=True)
    ap.add_argument("--out")
    ap.add_argument("--resume", action="store_true")
    a = ap.parse_args(["--cfg", "F", "DATA.ROOT", "X", "--out", "Y", "TRAIN.LR", "-1.0", "--resume"])
    assert a.cfg == "F" and a.out == "Y" and a.resume and a.opts == ["DATA.ROOT", "X", "TRAIN.LR", "-1.0"]
    a = ap.parse_args(["DATA.ROOT", "X", "--cfg", "F"])
    assert a.opts == ["DATA.ROOT", "X"] and a.out is None
    with pytest.raises(UsageError, match="unrecognized arguments: --ouy"):
        ap.parse_args(["--cfg", "F", "--ouy", "Y"])
    with pytest.raises(UsageError, match="KEY VALUE pairs"):
        ap.parse_args(["--cfg", "F", "DATA.ROOT"])
    with pytest.raises(SystemExit):  # argparse's behaviour is kept for callers that expect it
        ap.parse_args([])


def test_train_flags_after_overrides_and_optimizer_change_on_resume(tools, tiny, capsys):
    out = str(tiny["base"] / "run")
    # --out after the overrides: today's failure was "unknown config key '--out'"
    argv = ["--cfg", tiny["cfg"], "DATA.ROOT", str(tiny["data"]), "--out", out, "TRAIN.MAX_STEPS", "1",
            "--no-progress"]
    assert run_main(tools["train"].main, argv) == 0, capsys.readouterr().err
    assert os.path.isfile(os.path.join(out, "checkpoint_last.states"))
    capsys.readouterr()
    # resume with another optimiser: gluon.Trainer.load_states would silently keep Adam
    argv = ["--cfg", tiny["cfg"], "--out", out, "--resume", "TRAIN.OPTIMIZER", "sgd", "TRAIN.MAX_STEPS", "2",
            "--no-progress"]
    assert run_main(tools["train"].main, argv) == RunFolderError.exit_code
    line = _one_line(capsys)
    assert "adam" in line and "sgd" in line and "TRAIN.OPTIMIZER" in line and os.path.basename(out) in line
    argv = ["--cfg", tiny["cfg"], "--out", out, "--resume", "TRAIN.WD", "0.5", "TRAIN.MAX_STEPS", "2",
            "--no-progress"]
    assert run_main(tools["train"].main, argv) == RunFolderError.exit_code
    assert "wd 0, the config now 0.5" in _one_line(capsys)


# ------------------------------------------------------------------------------------------------ weights

def test_truncated_or_foreign_params_name_the_file(tools, tiny, capsys):
    trunc = str(tiny["base"] / "trunc.params")
    with open(tiny["params"], "rb") as f:
        data = f.read()
    with open(trunc, "wb") as f:
        f.write(data[:len(data) // 2])
    text = str(tiny["base"] / "text.params")
    with open(text, "w") as f:
        f.write("not a params file\n")
    for bad in (trunc, text):
        argv = ["--cfg", tiny["cfg"], "--params", bad, "--out", str(tiny["base"] / "exp" / "m")]
        assert run_main(tools["export"].main, argv) == ModelError.exit_code
        line = _one_line(capsys)
        assert bad in line and "not an MXNet .params file, or truncated" in line


def test_params_of_another_architecture(tools, tiny, capsys):
    argv = ["--cfg", tiny["cfg"], "--params", tiny["other"], "--image", str(tiny["data"] / "images" / "000016.jpg"),
            "--out", str(tiny["base"] / "d.png"), "--detector", "opencv"]
    assert run_main(tools["demo"].main, argv) == 4
    line = _one_line(capsys)
    assert tiny["other"] in line and "another architecture" in line and "missing from the file" in line
    assert "query_embed" in line or "pos_embed" in line  # LOTR's Transformer parameters are not in a CNN+FFN file
    # mis-shaped: the same model with another HIDDEN_DIM
    argv = ["--cfg", tiny["cfg"], "--params", tiny["params"], "--out", str(tiny["base"] / "exp2" / "m"),
            "MODEL.NECK.HIDDEN_DIM", "32"]
    assert run_main(tools["export"].main, argv) == 4
    line = _one_line(capsys)
    assert "mis-shaped" in line and "(16," in line and "(32," in line


def test_aux_heatmap_weights_load_without_warning(tiny, recwarn):
    from lotr_gluon.build import load_params
    from lotr_gluon.model_zoo import build_model
    from lotr_gluon.config import load_config
    from lotr_gluon.predictor import Predictor

    saved = mx.nd.load(tiny["params"])
    assert any(k.startswith("aux_heatmap.") for k in saved)  # the file does hold the training-only head
    warnings.simplefilter("always")
    p = Predictor.from_config(tiny["cfg"], tiny["params"], detector=None)
    assert getattr(p.net, "aux_heatmap", None) is None
    face = dict(five_points=[[40, 50], [80, 50], [60, 70], [45, 90], [75, 90]])
    res = p.predict(np.full((140, 120, 3), 128, np.uint8), faces=[face])
    assert len(res) == 1 and np.isfinite(res[0]["landmarks"]).all()
    noisy = [str(w.message) for w in recwarn if "not used by any computation" in str(w.message)]
    assert noisy == []
    # the inference weights are those of the file
    own = p.net._collect_params_with_prefix()
    np.testing.assert_array_equal(own["query_embed"].data().asnumpy(), saved["query_embed"].asnumpy())
    # only the training-only head may be absent from the model: a net that needs it and a file without it fail
    cfg = load_config(tiny["cfg"])
    full = build_model(cfg, ctx=mx.cpu(), initialize=False)
    noaux = str(tiny["base"] / "noaux.params")
    mx.nd.save(noaux, {k: v for k, v in saved.items() if not k.startswith("aux_heatmap.")})
    with pytest.raises(ModelError, match="aux_heatmap"):
        load_params(full, noaux)


# ------------------------------------------------------------------------------------------- data errors

def test_landmark_image_and_empty_split_errors(tools, tiny, tmp_path, capsys):
    base = ["--cfg", tiny["cfg"], "--params", tiny["params"], "--no-baseline"]
    # an empty split
    assert run_main(tools["test"].main, base + ["--out", str(tmp_path / "t1"), "DATA.TEST_SPLIT",
                                                "splits/empty.txt"]) == DataError.exit_code
    line = _one_line(capsys)
    assert "no samples" in line and "splits/empty.txt" in line
    # a non-numeric landmark coordinate
    bad = tmp_path / "bad"
    shutil.copytree(str(tiny["data"]), str(bad))
    js = bad / "images" / "000002.json"
    d = json.loads(js.read_text())
    d["DataList"][3]["coordinates"] = ["x", 5]
    js.write_text(json.dumps(d))
    assert run_main(tools["test"].main, base + ["--out", str(tmp_path / "t2"), "DATA.ROOT", str(bad)]) == 3
    line = _one_line(capsys)
    assert str(js) in line and "'x'" in line
    # a zero-byte image
    shutil.rmtree(str(bad))
    shutil.copytree(str(tiny["data"]), str(bad))
    (bad / "images" / "000002.jpg").write_bytes(b"")
    assert run_main(tools["test"].main, base + ["--out", str(tmp_path / "t3"), "DATA.ROOT", str(bad)]) == 3
    assert str(bad / "images" / "000002.jpg") in _one_line(capsys)


# ------------------------------------------------------------------------------------------ output paths

def test_unwritable_output_path(tools, tiny, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    out = str(blocker / "sub")
    assert run_main(tools["test"].main, ["--cfg", tiny["cfg"], "--params", tiny["params"], "--out", out]) == 7
    line = _one_line(capsys)
    assert out in line and "%s is a file" % blocker in line
    assert run_main(tools["export"].main, ["--cfg", tiny["cfg"], "--random-init", "--out", out + "/m"]) == 7
    assert str(blocker) in _one_line(capsys)
    assert run_main(tools["train"].main, ["--cfg", tiny["cfg"], "--out", out]) == 7
    assert "run folder" in _one_line(capsys)
    assert run_main(tools["reproduce_table"].main, ["--table", "6", "--scale", "smoke", "--cells", "lotr_m/l1",
                                                    "--out", out]) == 7
    _one_line(capsys)
    with pytest.raises(OutputError, match="it is a folder"):
        ensure_output_file(str(tmp_path))
    assert ensure_output_dir(str(tmp_path / "new" / "dir")) == str(tmp_path / "new" / "dir")
    assert os.path.isdir(str(tmp_path / "new" / "dir")) and os.listdir(str(tmp_path / "new" / "dir")) == []
    ensure_output_dir(str(tmp_path / "lazy"), create=False)
    assert not os.path.exists(str(tmp_path / "lazy"))


# ----------------------------------------------------------------------------------------------- run_main

def test_run_main_debug_and_unexpected_errors(capsys):
    def bad_data(argv):
        raise DataError("images/x.jpg: cannot decode\nsecond line")

    assert run_main(bad_data, []) == 3
    assert _one_line(capsys) == "error: images/x.jpg: cannot decode second line"
    assert run_main(bad_data, ["--debug"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().splitlines()[-1] == "error: images/x.jpg: cannot decode second line"

    def perm(argv):
        raise PermissionError(13, "Permission denied", "/root/out.png")

    assert run_main(perm, []) == 7
    assert _one_line(capsys) == "error: Permission denied: /root/out.png"

    def bug(argv):
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):  # not the user's fault: the traceback stays
        run_main(bug, [])
    assert run_main(lambda argv: None, []) == 0
    assert issubclass(ArgumentUsageError, UsageError)


def test_missing_data_root_is_a_data_error(tools, tiny, capsys):
    missing = str(tiny["base"] / "no_data")
    argv = ["--cfg", tiny["cfg"], "--params", tiny["params"], "--out", str(tiny["base"] / "t_nodata"),
            "DATA.ROOT", missing]
    assert run_main(tools["test"].main, argv) == DataError.exit_code
    assert "DATA.ROOT %r is not a folder" % missing in _one_line(capsys)


def test_face_listed_twice_in_a_split(tools, tiny, tmp_path, capsys):
    split = tiny["data"] / "splits" / "twice.txt"
    split.write_text("000016\n000019\n\n000016.jpg\n")
    assert run_main(tools["test"].main, ["--cfg", tiny["cfg"], "--params", tiny["params"], "--no-baseline",
                                         "--out", str(tmp_path / "t"), "DATA.TEST_SPLIT", "splits/twice.txt"]) == 3
    line = _one_line(capsys)
    assert "twice.txt:4: '000016' is listed twice (lines 1 and 4)" in line
    out = tmp_path / "run"
    assert run_main(tools["train"].main, ["--cfg", tiny["cfg"], "--out", str(out), "--no-progress",
                                          "DATA.TRAIN_SPLIT", "splits/twice.txt"]) == 3
    assert "listed twice" in _one_line(capsys)
    assert not (out / "config.yaml").exists()


def _files(folder, names):
    return {n: (folder / n).read_bytes() for n in names}


def test_write_errors_during_training_are_one_line_and_lose_nothing(tools, tiny, tmp_path, capsys):
    out = tmp_path / "run"
    train = ["--cfg", tiny["cfg"], "--out", str(out), "--no-progress"]
    assert run_main(tools["train"].main, train) == 0
    ckpt = ("checkpoint_last.params", "checkpoint_last.states", "checkpoint_last.json")
    before = _files(out, ckpt)
    capsys.readouterr()
    # disk full at the next checkpoint: the weights' temporary file is /dev/full
    os.symlink("/dev/full", str(out / "checkpoint_last.params.tmp"))
    assert run_main(tools["train"].main, train + ["--resume", "TRAIN.EPOCHS", "2"]) == OutputError.exit_code
    line = _one_line(capsys)
    assert "cannot write %s" % (out / "checkpoint_last.params") in line and "--resume" in line
    assert _files(out, ckpt) == before and not os.path.lexists(str(out / "checkpoint_last.params.tmp"))
    # a folder where the optimiser state goes (as a permission error would, even for root)
    (out / "checkpoint_last.states.tmp").mkdir()
    assert run_main(tools["train"].main, train + ["--resume", "TRAIN.EPOCHS", "2"]) == OutputError.exit_code
    assert "checkpoint_last.states: Is a directory" in _one_line(capsys)
    assert _files(out, ckpt) == before and not os.path.exists(str(out / "checkpoint_last.params.tmp"))
    (out / "checkpoint_last.states.tmp").rmdir()
    # a figure that cannot be written: exit 7 after the checkpoint of epoch 2 is complete
    (out / "val_curve.png").unlink()
    (out / "val_curve.png").mkdir()
    assert run_main(tools["train"].main, train + ["--resume", "TRAIN.EPOCHS", "2"]) == OutputError.exit_code
    assert "val_curve.png" in _one_line(capsys)
    assert json.loads((out / "checkpoint_last.json").read_text())["epoch"] == 2
    (out / "val_curve.png").rmdir()
    # the log
    (out / "log.jsonl").rename(out / "log.bak")
    (out / "log.jsonl").mkdir()
    assert run_main(tools["train"].main, train + ["--resume", "TRAIN.EPOCHS", "3"]) == OutputError.exit_code
    assert "log.jsonl" in _one_line(capsys)
    (out / "log.jsonl").rmdir()
    (out / "log.bak").rename(out / "log.jsonl")
    assert run_main(tools["train"].main, train + ["--resume", "TRAIN.EPOCHS", "3"]) == 0
    assert json.loads((out / "checkpoint_last.json").read_text())["epoch"] == 3


def test_list_item_of_the_wrong_type_writes_nothing(tools, tiny, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--cfg", tiny["cfg"], "--out", str(out), "--no-progress", "TRAIN.LR_STEPS", '["a"]']
    assert run_main(tools["train"].main, args) == UsageError.exit_code
    assert "TRAIN.LR_STEPS on the command line expects a list of numbers" in _one_line(capsys)
    assert not out.exists()
    args[-1] = "[1]"  # the same command, corrected, is not refused as 'already holds a run'
    assert run_main(tools["train"].main, args) == 0


def test_params_folder_is_named_as_a_folder(tools, tiny, tmp_path, capsys):
    folder = os.path.dirname(tiny["params"])
    for tool in ("test", "export", "demo"):
        extra = {"test": ["--out", str(tmp_path / "t")], "export": ["--out", str(tmp_path / "m")],
                 "demo": ["--image", str(tiny["data"] / "images" / "000002.jpg"), "--out", str(tmp_path / "d.png")]}
        assert run_main(tools[tool].main, ["--cfg", tiny["cfg"], "--params", folder] + extra[tool]) == 4
        line = _one_line(capsys)
        assert "%s: a folder, not a .params file; pass one of its files, e.g. %s" % (folder, os.path.join(
            folder, "cnn_ffn.params")) in line, (tool, line)


def test_no_baseline_reads_no_train_split(tools, tiny, tmp_path, capsys):
    run = tmp_path / "anchored"
    opts = ["MODEL.HEAD.ANCHORS", "mean_shape"]
    assert run_main(tools["train"].main, ["--cfg", tiny["cfg"], "--out", str(run), "--no-progress"] + opts) == 0
    params = str(run / "model_best.params")
    base = ["--cfg", tiny["cfg"], "--params", params] + opts
    assert run_main(tools["test"].main, base + ["--out", str(tmp_path / "with")]) == 0
    capsys.readouterr()
    assert run_main(tools["test"].main, base + ["--out", str(tmp_path / "without"), "--no-baseline",
                                                "DATA.TRAIN_SPLIT", "splits/absent.txt"]) == 0
    with_base = json.loads((tmp_path / "with" / "metrics.json").read_text())
    without = json.loads((tmp_path / "without" / "metrics.json").read_text())
    assert without["nme"] == with_base["nme"] and "mean_shape_baseline" not in without
    # the result record beside the metrics: both flips, every face, where the number came from
    import subprocess
    rec = json.loads((tmp_path / "with" / "record.json").read_text())
    assert rec["metrics"]["no_flip"]["nme"] == with_base["nme"] and rec["metrics"]["flip"]["flip"] is True
    csv = dict(l.split(",") for l in (tmp_path / "with" / "per_image.csv").read_text().splitlines()[1:])
    assert {k: round(float(v), 6) for k, v in csv.items()} == rec["per_face_nme"]["no_flip"]
    assert list(csv) == list(VAL_STEMS)
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert rec["code"]["commit"] == head and isinstance(rec["code"]["dirty"], bool)
    assert rec["alignment"] == "ground-truth five points" and rec["init"] == "scratch"
    assert rec["training"]["epochs"] == 1 and rec["training"]["run_folder"] == str(run)
    assert rec["command"].startswith("tools/test.py --cfg ") and "ANCHORS: mean_shape" in rec["config"]
    assert rec["machine"]["cores"] == os.cpu_count() and rec["mean_shape_baseline"]["nme"] > 0


def test_sigterm_stops_at_a_step_with_one_line_and_resumes(tiny, tmp_path):
    import signal
    import subprocess
    import sys
    import time
    out = tmp_path / "run"
    cmd = [sys.executable, os.path.join(ROOT, "tools", "train.py"), "--cfg", tiny["cfg"], "--out", str(out),
           "--no-progress", "TRAIN.EPOCHS", "400", "TRAIN.VAL_EVERY", "0"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "checkpoint_last.json").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    lines = [l for l in err.splitlines() if l.strip()]
    assert lines[-1].startswith("error: training stopped by SIGTERM during epoch ") and "--resume" in lines[-1]
    epoch = json.loads((out / "checkpoint_last.json").read_text())["epoch"]
    assert "checkpoint of epoch %d" % epoch in lines[-1] and "Traceback" not in err
    resumed = subprocess.run(cmd[:-4] + ["TRAIN.EPOCHS", str(epoch + 1), "TRAIN.VAL_EVERY", "0", "--resume"],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((out / "checkpoint_last.json").read_text())["epoch"] == epoch + 1


@pytest.mark.parametrize("key, value", [("TRAIN.LR_SCHEDULE", "poly"), ("TRAIN.OPTIMIZER", "rmsprop")])
def test_unknown_schedule_or_optimizer_is_one_line_and_writes_nothing(tools, tiny, tmp_path, capsys, key, value):
    out = tmp_path / "run"
    args = ["--cfg", tiny["cfg"], "--out", str(out), "--no-progress", key, value]
    assert run_main(tools["train"].main, args) == UsageError.exit_code
    line = _one_line(capsys)
    assert key in line and repr(value) in line and ("cosine" in line or "lamb" in line)
    assert not out.exists()


def test_test_tool_scores_the_predictor_end_to_end(tools, tiny, tmp_path, capsys, shared_dir):
    if not (shared_dir / "models" / "face_detection_yunet.onnx").is_file():
        pytest.skip("YuNet model not found")
    out = tmp_path / "t"
    argv = ["--cfg", tiny["cfg"], "--params", tiny["params"], "--out", str(out), "--predictor", "--no-baseline",
            "DATA.ALIGN", "detector", "DATA.DETECTIONS_CACHE", str(tmp_path / "cache")]
    assert run_main(tools["test"].main, argv) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    record = json.loads((out / "record.json").read_text())
    # under DATA.ALIGN detector the Predictor on the whole photos scores what the evaluation scores
    assert metrics["predictor"]["max_face_difference"] < 1e-4
    assert abs(metrics["predictor"]["nme"] - metrics["nme"]) < 1e-4
    assert record["predictor"]["nme"] == metrics["predictor"]["nme"] and "predictor  : NME" in printed
