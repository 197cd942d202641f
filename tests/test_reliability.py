"""Silent wrong results, lost data and resume: each test builds the bad input
(unreadable images, points outside the image, an exploding loss, a reused run folder, a kill mid-epoch, a
partial log line) and checks the message or the outcome. Tiny runs: 64 px crops, 8 + 4 real Datatang faces,
batches of 4 (2 steps per epoch)."""
import json
import os
import pickle
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import mxnet as mx
import pytest

from lotr_gluon.build import build_dataset
from lotr_gluon.config import load_config
from lotr_gluon.data.formats import (FaceSample, ImageReadError, LandmarkFileError, LandmarkFileWarning,
                                     check_image, load_datatang, validate_samples)
from lotr_gluon.errors import DivergenceError, ModelError, RunFolderError
from lotr_gluon.trainer import Trainer, TrainingDiverged, read_log

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CFG = os.path.join(ROOT, "experiments", "datatang", "lotr_m.yaml")
RUN_FILES = ("config.yaml", "log.jsonl", "checkpoint_last.params", "checkpoint_last.states", "checkpoint_last.json",
             "model_best.params", "model_best.json")


# ------------------------------------------------------------------------------------------------ helpers
def _stems(datatang_root, n, offset=0):
    return open(os.path.join(datatang_root, "splits", "train.txt")).read().split()[offset:offset + n]


def _opts(datatang_root, tmp, train, val, **extra):
    """Tiny run on the Datatang faces ``train`` / ``val`` (lists of stems; split files written under tmp)."""
    tmp = Path(tmp)
    (tmp / "train.txt").write_text("\n".join(train) + "\n")
    (tmp / "val.txt").write_text("\n".join(val) + "\n")
    o = {"DATA.ROOT": str(datatang_root), "DATA.TRAIN_SPLIT": str(tmp / "train.txt"),
         "DATA.VAL_SPLIT": str(tmp / "val.txt"), "DATA.INPUT_SIZE": "64", "MODEL.BACKBONE.NAME": "mobilenetv2_0.25", "MODEL.BACKBONE.PRETRAINED": "False",
         "TRAIN.BATCH_SIZE": "4", "TRAIN.EPOCHS": "1", "TRAIN.LOG_EVERY": "1", "OUTPUT_DIR": str(tmp / "out"),
         "MODEL.TRANSFORMER.DROPOUT": "0.1", "WORKERS": "0",  # dropout on: the MXNet generator matters for resume
         # the step schedule: these runs are resumed with more epochs, and a cosine lr depends on TRAIN.EPOCHS
         "TRAIN.LR_SCHEDULE": "step"}
    o.update(extra)
    return [x for kv in o.items() for x in kv]


def _cfg(datatang_root, tmp, **extra):
    return load_config(CFG, _opts(datatang_root, tmp, _stems(datatang_root, 8), _stems(datatang_root, 4, 8), **extra))


def _snapshot(run):
    return {f: (run / f).read_bytes() for f in RUN_FILES if (run / f).is_file()}


def _link_root(datatang_root, dst, stems):
    """A Datatang-layout root under tmp whose images/annotations are symlinks to the shared ones."""
    (dst / "images").mkdir(parents=True)
    for s in stems:
        for ext in (".jpg", ".json"):
            os.symlink(os.path.join(datatang_root, "images", s + ext), dst / "images" / (s + ext))
    return dst


def _replace(path, data):
    """Replace a symlink by a real file holding ``data`` (bytes)."""
    path = Path(path)
    path.unlink()
    path.write_bytes(data)


@pytest.fixture(scope="module")
def one_epoch_run(datatang_root, tmp_path_factory):
    """A finished 1-epoch run (2 steps, validated, checkpointed); tests copy it before touching it."""
    tmp = tmp_path_factory.mktemp("one_epoch")
    tr = Trainer(_cfg(datatang_root, tmp), out_dir=str(tmp / "run"), progress=False)
    tr.fit()
    return tmp / "run"


def _copy_run(src, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(src, dst)
    return dst


# ------------------------------------------------------------------------------------- unreadable images
def test_check_image_sizes_and_errors(tmp_path):
    img = np.zeros((80, 100, 3), np.uint8)
    img[10:20, 30:60] = 200
    png, jpg = tmp_path / "a.png", tmp_path / "a.jpg"
    cv2.imwrite(str(png), img)
    cv2.imwrite(str(jpg), img)
    assert check_image(png) == (80, 100) and check_image(jpg) == (80, 100)
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty\.jpg: empty image file \(0 bytes\)"):
        check_image(tmp_path / "empty.jpg")
    data = jpg.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 3 // 4])  # truncated JPEG (no end-of-image marker)
    with pytest.raises(ImageReadError, match=r"cut\.jpg: cannot decode image \(truncated"):
        check_image(tmp_path / "cut.jpg")


@pytest.mark.parametrize("cache", ["True", "False"])
def test_unreadable_images_warn_skips_raise_stops_before_training(datatang_root, tmp_path, cache):
    stems = _stems(datatang_root, 6)
    root = _link_root(datatang_root, tmp_path / "data", stems)
    _replace(root / "images" / (stems[1] + ".jpg"), b"")  # zero-byte
    good = open(os.path.join(datatang_root, "images", stems[3] + ".jpg"), "rb").read()
    _replace(root / "images" / (stems[3] + ".jpg"), good[: len(good) // 2])  # truncated
    opts = _opts(root, tmp_path, stems, stems[4:], **{"DATA.CACHE": cache})
    # warn: the two bad faces are skipped with one warning line each, naming the file; the rest trains
    cfg = load_config(CFG, opts + ["DATA.ON_ERROR", "warn"])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        ds = build_dataset(cfg, "train", train=True)
    msgs = [str(x.message) for x in w if issubclass(x.category, LandmarkFileWarning)]
    assert len(ds) == 4 and [s.name for s in ds.samples] == [stems[i] for i in (0, 2, 4, 5)]
    assert len(msgs) == 2 and all("\n" not in m for m in msgs)
    assert (stems[1] + ".jpg: empty image file") in msgs[0] and (stems[3] + ".jpg: cannot decode") in msgs[1]
    for i in range(len(ds)):  # every item reads (no mid-epoch crash)
        assert ds[i][0].shape == (3, 64, 64)
    # raise: the trainer stops while loading the split, before writing anything
    run = tmp_path / "run"
    with pytest.raises(ImageReadError) as e:
        Trainer(load_config(CFG, opts), out_dir=str(run), progress=False)
    assert str(e.value).startswith(str(root / "images" / (stems[1] + ".jpg")))
    assert not run.exists() or not os.listdir(run)


# ------------------------------------------------------------------------------------ points outside the image
def test_validate_samples_outside_margin_boundaries(tmp_path):
    """100 x 80 image, margin 0.5: x in [-50, 150] and y in [-40, 120] are accepted (hand-computed)."""
    img = tmp_path / "face.png"
    cv2.imwrite(str(img), np.full((80, 100, 3), 90, np.uint8))

    def sample(x, y):
        pts = np.tile([[50.0, 40.0]], (5, 1))
        pts[2] = (x, y)
        return FaceSample("s", str(img), pts, source=str(tmp_path / "s.txt"))
    for xy in ((-50, 40), (150, 40), (50, -40), (50, 120), (-49.9, 119.9)):
        assert len(validate_samples([sample(*xy)], outside_margin=0.5)) == 1, xy
    for xy in ((-50.5, 40), (150.5, 40), (50, -40.5), (50, 120.5)):
        with pytest.raises(LandmarkFileError) as e:
            validate_samples([sample(*xy)], outside_margin=0.5)
        assert str(e.value).startswith(str(tmp_path / "s.txt") + ": 1 landmark(s) lie outside the 100x80 image")
        assert "point 3 at" in str(e.value) and "DATA.OUTSIDE_MARGIN" in str(e.value)
    assert len(validate_samples([sample(5000, 40)], outside_margin=-1)) == 1  # check off
    assert len(validate_samples([sample(5000, 40)], outside_margin=None)) == 1


def test_points_outside_image_rejected_or_skipped(datatang_root, tmp_path):
    stems = _stems(datatang_root, 5)
    root = _link_root(datatang_root, tmp_path / "data", stems)
    js = root / "images" / (stems[2] + ".json")
    d = json.load(open(js))
    for e in d["DataList"]:  # the whole face 50,000 px to the right (the case)
        if e.get("type", "Point") == "Point":
            e["coordinates"] = [e["coordinates"][0] + 50000, e["coordinates"][1]]
    js.unlink()
    js.write_text(json.dumps(d))
    (tmp_path / "split.txt").write_text("\n".join(stems) + "\n")
    samples = load_datatang(root, tmp_path / "split.txt")  # the loader alone cannot know the image size
    assert len(samples) == 5
    with pytest.raises(LandmarkFileError) as e:
        validate_samples(samples)
    assert str(e.value).startswith(str(js) + ": 106 landmark(s) lie outside the")
    opts = _opts(root, tmp_path, stems, stems[:2])
    with pytest.raises(LandmarkFileError, match="DATA.OUTSIDE_MARGIN"):
        build_dataset(load_config(CFG, opts), "train")
    with pytest.warns(LandmarkFileWarning, match=stems[2] + r"\.json: 106 landmark"):
        ds = build_dataset(load_config(CFG, opts + ["DATA.ON_ERROR", "warn"]), "train")
    assert [s.name for s in ds.samples] == stems[:2] + stems[3:]
    # the real faces (a few points just outside the image on some) all pass the default margin
    assert len(validate_samples(samples[:2] + samples[3:])) == 4


# ------------------------------------------------------------------------------------------------- divergence
class _Bare(Trainer):
    """A Trainer shell for the divergence checks (no data, no model)."""

    def __init__(self, tmp, **train):
        from lotr_gluon.config import get_defaults
        self.cfg = get_defaults()
        for k, v in train.items():
            setattr(self.cfg.TRAIN, k, v)
        self.out_dir, self.epoch, self.step, self.loss_history, self.baseline_nme = str(tmp), 0, 0, [], None


def test_loss_divergence_rule_hand_values(tmp_path):
    t = _Bare(tmp_path, DIVERGENCE_FACTOR=100.0, DIVERGENCE_WINDOW=3)
    for i, v in enumerate([4.0, 1.0, 2.0]):
        t._check_loss(v, i + 1)
    assert t.loss_history == [4.0, 1.0, 2.0]
    t._check_loss(200.0, 4)  # median 2: 200 = 100 x median is still accepted; the window keeps 3
    assert t.loss_history == [1.0, 2.0, 200.0]
    with pytest.raises(TrainingDiverged) as e:  # median of (1, 2, 200) = 2: 200.1 > 200
        t._check_loss(200.1, 5)
    assert isinstance(e.value, DivergenceError) and e.value.exit_code == 5
    assert "times the median 2 of the last 3 steps" in str(e.value) and "at step 5" in str(e.value)
    assert t.loss_history == [1.0, 2.0, 200.0]  # the bad loss is not recorded
    with pytest.raises(TrainingDiverged, match="loss is nan at step 6"):
        t._check_loss(float("nan"), 6)
    off = _Bare(tmp_path, DIVERGENCE_FACTOR=0.0)
    off._check_loss(1.0, 1)
    off._check_loss(1e30, 2)  # factor 0: only non-finite losses stop
    recs = read_log(str(tmp_path / "log.jsonl"))
    assert [(r["type"], r["step"]) for r in recs] == [("diverged", 5), ("diverged", 6)]


def test_validation_absurd_rule_hand_values(tmp_path):
    t = _Bare(tmp_path, DIVERGENCE_VAL_FACTOR=1000.0)
    t.baseline_nme = 0.05  # limit 1000 x 5 % = 50
    t._check_val({"nme": 49.9})
    with pytest.raises(TrainingDiverged, match="above 1000 times the mean-shape baseline 0.05"):
        t._check_val({"nme": 50.1})
    with pytest.raises(TrainingDiverged, match="validation NME is nan"):
        t._check_val({"nme": float("nan")})
    t.baseline_nme = 0.0  # a baseline under 1 % counts as 1 %: limit 10
    t._check_val({"nme": 9.9})
    with pytest.raises(TrainingDiverged):
        t._check_val({"nme": 10.1})


def test_exploding_adam_stops_and_keeps_last_good_epoch(datatang_root, tmp_path, one_epoch_run):
    """Adam at lr 1e6 on real faces (the issue's case): TrainingDiverged, and the last good epoch's
    checkpoint_last.* and model_best.* are byte-identical to before."""
    run = _copy_run(one_epoch_run, tmp_path)
    before = _snapshot(run)
    assert set(before) == set(RUN_FILES)
    # LOG_EVERY 10: the step losses reach the host in one batch at the end of the epoch; the
    # check still sees each step: step 3 runs on the good weights, its update explodes them, step 4 is caught
    cfg = _cfg(datatang_root, tmp_path, **{"TRAIN.LR": "1e6", "TRAIN.EPOCHS": "4", "TRAIN.WARMUP_EPOCHS": "0.0",
                                           "TRAIN.LOG_EVERY": "10"})
    tr = Trainer(cfg, out_dir=str(run), progress=False, resume=True)
    with pytest.raises(TrainingDiverged) as e:
        tr.fit()
    assert "times the median" in str(e.value) and "at step 4 (epoch 2)" in str(e.value)
    assert str(run / "checkpoint_last.params") in str(e.value)
    after = _snapshot(run)
    for f in RUN_FILES:
        if f not in ("log.jsonl", "config.yaml"):
            assert after[f] == before[f], f
    recs = read_log(str(run / "log.jsonl"))
    assert recs[-1]["type"] == "diverged" and recs[-1]["epoch"] == 2
    assert json.load(open(run / "checkpoint_last.json"))["epoch"] == 1


def test_non_finite_weights_are_never_saved(datatang_root, tmp_path, one_epoch_run):
    """A last update that makes the weights NaN (no loss of the epoch sees it): no checkpoint is written."""
    run = _copy_run(one_epoch_run, tmp_path)
    before = _snapshot(run)
    tr = Trainer(_cfg(datatang_root, tmp_path, **{"TRAIN.EPOCHS": "2", "TRAIN.VAL_EVERY": "0"}),
                 out_dir=str(run), progress=False, resume=True)
    step = tr.trainer.step

    def poisoned_step(batch_size, *a, **k):
        step(batch_size, *a, **k)
        if tr.step == 3:  # the last step of epoch 2
            p = tr.net.query_embed
            p.set_data(p.data() * float("nan"))
    tr.trainer.step = poisoned_step
    with pytest.raises(TrainingDiverged, match="weights are non-finite"):
        tr.fit()
    after = _snapshot(run)
    assert all(after[f] == before[f] for f in RUN_FILES if f not in ("log.jsonl", "config.yaml"))


# ------------------------------------------------------------------------------------------------ run folders
def test_existing_run_folder_is_refused_before_anything_is_written(datatang_root, tmp_path, one_epoch_run):
    run = _copy_run(one_epoch_run, tmp_path)
    before = _snapshot(run)
    cfg = _cfg(datatang_root, tmp_path, **{"TRAIN.LR": "0.5"})
    with pytest.raises(RunFolderError) as e:
        Trainer(cfg, out_dir=str(run), progress=False, resume=False)  # checked before any data loads
    msg = str(e.value)
    assert msg.startswith(str(run) + " already holds a run") and "--resume" in msg and "--out" in msg
    assert e.value.exit_code == 6
    tr = Trainer(cfg, out_dir=str(run), progress=False)  # library use: the check is in fit()
    with pytest.raises(RunFolderError):
        tr.fit()
    assert _snapshot(run) == before


def test_run_folder_in_use_by_another_process_is_refused(datatang_root, tmp_path, one_epoch_run, lock_holder):
    from lotr_gluon.runlock import RunFolderBusy
    run = _copy_run(one_epoch_run, tmp_path)
    before = _snapshot(run)
    proc = lock_holder(run)  # e.g. a second `train.py --resume` of the same run while the first trains
    tr = Trainer(_cfg(datatang_root, tmp_path), out_dir=str(run), progress=False)
    with pytest.raises(RunFolderBusy, match="in use by another process \\(pid %d\\)" % proc.pid):
        tr.fit(resume=True)
    assert _snapshot(run) == before
    proc.kill()
    proc.wait()
    tr.fit(resume=True)  # the checkpoint is at the last epoch: nothing left to train, the run stays as it was
    assert _snapshot(run)["checkpoint_last.params"] == before["checkpoint_last.params"]


def test_resume_without_checkpoint_says_so(datatang_root, tmp_path):
    cfg = _cfg(datatang_root, tmp_path)
    empty = tmp_path / "empty"
    with pytest.raises(RunFolderError, match="cannot resume: .* has no checkpoint to continue from"):
        Trainer(cfg, out_dir=str(empty), progress=False, resume=True)
    assert not empty.exists() or not os.listdir(empty)
    # a folder whose run was killed before its first checkpoint: neither resume nor a new run in it
    empty.mkdir(exist_ok=True)
    (empty / "log.jsonl").write_text('{"type": "train", "step": 1, "loss": 3.0}\n')
    with pytest.raises(RunFolderError, match="missing checkpoint_last.json.*new --out folder"):
        Trainer(cfg, out_dir=str(empty), progress=False, resume=True)


def test_failed_resume_leaves_config_yaml(datatang_root, tmp_path, one_epoch_run):
    """A resume whose checkpoint does not load (another model's weights) changes nothing in the folder."""
    run = _copy_run(one_epoch_run, tmp_path)
    before = _snapshot(run)
    cfg = _cfg(datatang_root, tmp_path, **{"MODEL.NECK.HIDDEN_DIM": "32", "TRAIN.EPOCHS": "2"})
    tr = Trainer(cfg, out_dir=str(run), progress=False, resume=True)
    with pytest.raises(ModelError, match="belong to another architecture") as e:
        tr.fit()
    assert str(run / "checkpoint_last.params") in str(e.value)
    assert _snapshot(run) == before
    assert "HIDDEN_DIM: 64" in (run / "config.yaml").read_text()


def test_train_tool_refuses_existing_run_folder(datatang_root, tmp_path, one_epoch_run):
    run = _copy_run(one_epoch_run, tmp_path)
    before = _snapshot(run)
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "train.py"), "--cfg", CFG, "--out", str(run),
                        "--no-progress", "DATA.ROOT", str(datatang_root)], capture_output=True, text=True)
    assert r.returncode == 6, r.stderr[-2000:]
    assert "already holds a run" in r.stderr and "--resume" in r.stderr and "Traceback" not in r.stderr
    assert _snapshot(run) == before


# ------------------------------------------------------------------------------------------------------ resume
def _params(net):
    return {k: p.data().asnumpy() for k, p in net._collect_params_with_prefix().items()}


def test_resume_loads_checkpoint_weights_and_optimizer_states(datatang_root, tmp_path, one_epoch_run):
    """Right after resume() the weights and the Adam states are the checkpoint's (this fails when
    resume's load_parameters or load_states call is removed)."""
    run = _copy_run(one_epoch_run, tmp_path)
    saved = {k: v.asnumpy() for k, v in mx.nd.load(str(run / "checkpoint_last.params")).items()}
    saved_states, saved_opt = pickle.loads((run / "checkpoint_last.states").read_bytes())
    tr = Trainer(_cfg(datatang_root, tmp_path, **{"TRAIN.EPOCHS": "2"}), out_dir=str(run), progress=False,
                 resume=True)
    fresh = _params(tr.net)
    assert tr.resume() is True
    now = _params(tr.net)
    assert set(now) == set(saved)
    for k in saved:
        np.testing.assert_array_equal(now[k], saved[k], err_msg=k)
    assert any(not np.array_equal(fresh[k], saved[k]) for k in saved)  # the load changed the weights
    upd = tr.trainer._updaters[0]
    assert set(upd.states) == set(saved_states) and len(saved_states) > 0
    nonzero = 0
    for i, st in saved_states.items():
        for a, b in zip(st, upd.states[i]):  # Adam (mean, var) per parameter
            np.testing.assert_array_equal(b.asnumpy(), a.asnumpy())
            nonzero += int(np.abs(a.asnumpy()).sum() > 0)
    assert nonzero > 0  # a fresh Adam has zero states: equality above is not trivial
    assert upd.optimizer.num_update == saved_opt.num_update == 2
    assert (tr.epoch, tr.step) == (1, 2)
    # the divergence check's loss history comes back too (its running median would start empty otherwise)
    meta = json.loads((run / "checkpoint_last.json").read_text())
    assert len(meta["loss_history"]) == 2 and list(tr.loss_history) == meta["loss_history"]


def test_resume_with_unreadable_checkpoint_metadata_names_the_file(datatang_root, tmp_path, one_epoch_run):
    """A truncated checkpoint_last.json: one RunFolderError naming the file, nothing changed."""
    run = _copy_run(one_epoch_run, tmp_path)
    meta = run / "checkpoint_last.json"
    meta.write_text(meta.read_text()[:20])
    before = _snapshot(run)
    with pytest.raises(RunFolderError) as err:
        Trainer(_cfg(datatang_root, tmp_path, **{"TRAIN.EPOCHS": "2"}), out_dir=str(run), progress=False,
                resume=True).resume()
    assert str(err.value).startswith("cannot resume: %s is unreadable (" % meta), str(err.value)
    assert _snapshot(run) == before


def test_kill_and_resume_matches_uninterrupted_run(datatang_root, tmp_path, one_epoch_run):
    """4 steps uninterrupted == 2 steps, a kill during step 4 (after step 3 was logged, a partial line
    written), resume, 2 steps: equal losses and weights; the log keeps no orphan records of the killed epoch."""
    cfg2 = _cfg(datatang_root, tmp_path, **{"TRAIN.EPOCHS": "2"})
    ref = Trainer(cfg2, out_dir=str(tmp_path / "ref"), progress=False)
    ref.fit()
    ref_losses = [(r["step"], r["loss"]) for r in read_log(str(tmp_path / "ref" / "log.jsonl"))
                  if r["type"] == "train"]
    assert [s for s, _ in ref_losses] == [1, 2, 3, 4]

    run = _copy_run(one_epoch_run, tmp_path)
    killed = Trainer(cfg2, out_dir=str(run), progress=False, resume=True)
    log = killed._log

    def log_then_die(rec):
        log(rec)
        if rec.get("type") == "train" and rec["step"] == 3:
            with open(run / "log.jsonl", "a") as f:
                f.write('{"type": "train", "epoch": 2, "step": 4, "lo')  # killed inside a write
            raise KeyboardInterrupt  # stands for kill -9
    killed._log = log_then_die
    with pytest.raises(KeyboardInterrupt):
        killed.fit()
    with pytest.warns(UserWarning, match="log.jsonl:%d: skipping a partial last line" % (
            len(open(run / "log.jsonl").read().split("\n")))):
        assert read_log(str(run / "log.jsonl"))[-1]["step"] == 3
    assert json.load(open(run / "checkpoint_last.json"))["step"] == 2

    resumed = Trainer(cfg2, out_dir=str(run), progress=False, resume=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no partial line left for read_log to warn about
        warnings.filterwarnings("ignore", message=".*(not used|deprecat).*")
        resumed.fit()
        recs = read_log(str(run / "log.jsonl"))
    train = [(r["step"], r["loss"]) for r in recs if r["type"] == "train"]
    assert train == ref_losses  # same steps once each, same losses (float equality)
    assert [r["epoch"] for r in recs if r["type"] == "epoch"] == [1, 2]
    res = [r for r in recs if r["type"] == "resume"]
    assert res[-1]["step"] == 2 and res[-1]["dropped_records"] == 2  # step 3's record and the partial line
    a, b = _params(ref.net), _params(resumed.net)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


# ------------------------------------------------------------------------------------------------------ log
def test_read_log_skips_partial_last_line(tmp_path):
    p = tmp_path / "log.jsonl"
    p.write_text('{"type": "train", "step": 1, "loss": 2.5}\n{"type": "train", "step": 2, "loss": 2.0}\n'
                 '{"type": "train", "st')
    with pytest.warns(UserWarning, match=r"log\.jsonl:3: skipping a partial last line"):
        recs = read_log(str(p))
    assert [r["step"] for r in recs] == [1, 2]
    p.write_text('{"type": "a"}\n{"type": "b"\n{"type": "c"}\n')
    with pytest.warns(UserWarning, match=r"log\.jsonl:2: skipping a corrupt line"):
        assert [r["type"] for r in read_log(str(p))] == ["a", "c"]


def test_optimizer_states_of_another_shape_are_a_one_line_error(tmp_path):
    """check_optimizer_states: a state whose shape differs from its parameter's is a RunFolderError naming
    both, never a crash mid-epoch; the file is left as it was."""
    from lotr_gluon.trainer import check_optimizer_states
    a, b = mx.nd.full((2, 3), 1.0), mx.nd.full((4,), 2.0)
    path = tmp_path / "checkpoint_last.states"
    path.write_bytes(pickle.dumps(({0: (a, a * 10), 1: (b, b * 10)}, mx.optimizer.Adam())))
    check_optimizer_states(str(path), ["w", "v"], [(2, 3), (4,)], saved_names=["w", "v"])  # fits: no error
    with pytest.raises(RunFolderError, match=r"optimiser state 0 has shape \(2, 3\) but parameter 0 of this "
                                             r"model is w \(3, 2\)"):
        check_optimizer_states(str(path), ["w", "v"], [(3, 2), (4,)], saved_names=["w", "v"])
    assert pickle.loads(path.read_bytes())[0][0][0].shape == (2, 3)


def test_checkpoint_stores_the_optimizer_parameter_order(datatang_root, tmp_path, one_epoch_run):
    """checkpoint_last.json names the parameters in the optimiser's index order (the trainer's, sorted by
    prefixed name), so a later build that orders them otherwise still resumes each state onto its parameter."""
    meta = json.loads((one_epoch_run / "checkpoint_last.json").read_text())
    run = _copy_run(one_epoch_run, tmp_path)
    tr = Trainer(_cfg(datatang_root, tmp_path, **{"TRAIN.EPOCHS": "2"}), out_dir=str(run), progress=False,
                 resume=True)
    names, shapes = tr._param_order()
    assert meta["param_order"] == names and len(names) == len(list(tr.net.collect_params().keys()))
    assert names == [n for _, n in sorted((p.name, n) for n, p in tr.net._collect_params_with_prefix().items())]


def test_resume_of_a_checkpoint_of_another_build_is_a_one_line_error(datatang_root, tmp_path, one_epoch_run):
    """A checkpoint whose stored parameter order differs from this build's (another name at an index), or whose
    checkpoint_last.json lacks a key, is refused with one line naming the difference; the run folder is
    unchanged."""
    run = _copy_run(one_epoch_run, tmp_path)
    meta_file = run / "checkpoint_last.json"
    meta = json.loads(meta_file.read_text())
    cfg = _cfg(datatang_root, tmp_path, **{"TRAIN.EPOCHS": "2"})
    renamed = dict(meta, param_order=["old.name"] + meta["param_order"][1:])
    meta_file.write_text(json.dumps(renamed))
    before = _snapshot(run)
    with pytest.raises(RunFolderError) as err:
        Trainer(cfg, out_dir=str(run), progress=False, resume=True).resume()
    msg = str(err.value)
    assert "\n" not in msg and "optimiser parameter 0 is old.name in the checkpoint but %s in this model" % (
        meta["param_order"][0]) in msg, msg
    assert _snapshot(run) == before
    meta_file.write_text(json.dumps({k: v for k, v in meta.items() if k != "param_order"}))
    with pytest.raises(RunFolderError, match=r"lacks param_order \(a checkpoint of an older build\)"):
        Trainer(cfg, out_dir=str(run), progress=False, resume=True).resume()
