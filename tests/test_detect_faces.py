"""tools/detect_faces.py and the detections cache (lotr_gluon.detection_cache, DATA.ALIGN detector) on real files:
four Datatang faces copied to a temporary folder (3 train, 1 val) and a blank image annotated with a face (val),
YuNet from ``../shared/models``."""
import contextlib
import io
import json
import os
import shutil
from dataclasses import replace

import cv2
import numpy as np
import pytest

from lotr_gluon import detection_cache as dc
from lotr_gluon.build import build_dataset, build_samples, detections_path
from lotr_gluon.config import load_config
from lotr_gluon.data.align import arcface_template, estimate_similarity, five_points_from_landmarks
from lotr_gluon.data.formats import ImageReadError, load_detections, load_detections_meta, save_detections
from lotr_gluon.data.schemes import get_scheme
from lotr_gluon.detectors import YUNET_SHA256, file_sha256
from lotr_gluon.errors import DetectorError, UsageError
from lotr_gluon.evaluate import detector_misses
from lotr_gluon.records import alignment
from conftest import load_tool, write_tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_STEMS = ("000016", "000019", "000022")
VAL_STEMS = ("000002",)
BLANK = "900000"  # a uniform grey photo with 000002's annotation: no face to find


def _tool():
    return load_tool("detect_faces")


def _make_data(datatang_root, data):
    (data / "images").mkdir(parents=True)
    (data / "splits").mkdir()
    for s in TRAIN_STEMS + VAL_STEMS:
        for ext in (".jpg", ".json"):
            shutil.copy(os.path.join(str(datatang_root), "images", s + ext), str(data / "images" / (s + ext)))
    shape = cv2.imread(str(data / "images" / "000002.jpg")).shape
    cv2.imwrite(str(data / "images" / (BLANK + ".jpg")), np.full(shape, 128, np.uint8))
    shutil.copy(str(data / "images" / "000002.json"), str(data / "images" / (BLANK + ".json")))
    (data / "splits" / "train.txt").write_text("\n".join(TRAIN_STEMS) + "\n")
    (data / "splits" / "val.txt").write_text("\n".join(VAL_STEMS + (BLANK,)) + "\n")


def _write_cfg(path, data, cache):
    return write_tiny_config(path, data, data_extra="  DETECTIONS_CACHE: %s\n" % cache)


@pytest.fixture(scope="module")
def tiny(datatang_root, shared_dir, tmp_path_factory):
    """The copied faces, their config (cache folder inside the temporary folder), and the tool run once over
    every split: ``(config path, stdout of the tool, cache folder)``."""
    if not (shared_dir / "models" / "face_detection_yunet.onnx").is_file():
        pytest.skip("YuNet model not found in %s" % (shared_dir / "models"))
    base = tmp_path_factory.mktemp("detect")
    _make_data(datatang_root, base / "data")
    cfg = _write_cfg(base / "tiny.yaml", base / "data", base / "cache")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert _tool().main(["--cfg", cfg, "--split", "all", "--no-progress"]) == 0
    return cfg, out.getvalue(), base / "cache"


def test_tool_writes_five_points_near_the_ground_truth(tiny):
    cfg_file, report, cache = tiny
    cfg = load_config(cfg_file)
    path = detections_path(cfg, "train")
    assert path == os.path.join(str(cache), "datatang_train_yunet.json")
    assert os.path.isfile(detections_path(cfg, "val")) and detections_path(cfg, "test") == detections_path(cfg, "val")
    dets = load_detections(path)
    assert sorted(dets) == sorted(TRAIN_STEMS)
    scheme = get_scheme("datatang106")
    for s in build_samples(cfg, "train"):
        g5 = five_points_from_landmarks(s.landmarks, scheme)
        iod = np.linalg.norm(g5[1] - g5[0])
        d = dets[s.name]
        assert (np.linalg.norm(d.five_points - g5, axis=1) / iod).max() < 0.3, s.name  # image-left eye first
        assert d.iou >= dc.MATCH_IOU and d.score > 0.5 and d.box.shape == (4,)
    meta = load_detections_meta(path)
    assert meta["detector"] == "yunet" and meta["model_sha256"] == YUNET_SHA256
    assert meta["opencv"] == cv2.__version__ and meta["match_iou"] == dc.MATCH_IOU
    assert meta["fingerprint"] == dc.FINGERPRINT and meta["format"] == dc.FORMAT_VERSION
    assert meta["split"] == "splits/train.txt" and meta["misses"] == {}
    for name in TRAIN_STEMS:
        fp = meta["samples"][name]
        image = os.path.join(cfg.DATA.ROOT, "images", name + ".jpg")
        assert fp["path"] == os.path.abspath(image) and fp["size"] == os.path.getsize(image)
        assert fp["mtime_ns"] == os.stat(image).st_mtime_ns and fp["sha256"] == file_sha256(image)
    assert "wrote %s" % path in report and "wall time" in report


def test_a_blank_image_is_a_miss_in_the_file_and_the_report(tiny):
    cfg_file, report, _ = tiny
    path = detections_path(load_config(cfg_file), "val")
    assert sorted(load_detections(path)) == list(VAL_STEMS)
    miss = load_detections_meta(path)["misses"][BLANK]
    assert miss["reason"] == dc.NO_FACE and miss["faces"] == 0 and miss["message"] == "no face detected"
    lines = report.splitlines()
    assert lines[1].split() == ["split", "faces", "found", "missed", "badly", "matched"]
    rows = {l.split()[0]: l.split()[1:5] for l in lines[2:6]}
    assert rows == {"train": ["3", "3", "0", "0"], "val": ["2", "1", "1", "0"], "test": ["2", "1", "1", "0"],
                    "all": ["5", "4", "1", "0"]}
    assert "(same split file as val)" in lines[4]
    worst = lines[lines.index("worst cases (misses, then the lowest IoU):") + 1]
    assert worst.split()[:2] == [BLANK, "val"] and "no face detected" in worst


def test_out_file_holds_every_split_once(tiny, tmp_path):
    cfg_file, _, _ = tiny
    out = tmp_path / "all.json"
    with contextlib.redirect_stdout(io.StringIO()):
        assert _tool().main(["--cfg", cfg_file, "--out", str(out), "--no-progress"]) == 0
    assert sorted(load_detections(out)) == sorted(TRAIN_STEMS + VAL_STEMS)
    assert sorted(load_detections_meta(out)["samples"]) == sorted(TRAIN_STEMS + VAL_STEMS + (BLANK,))


def test_match_face_takes_the_best_overlap_above_the_threshold():
    class F:
        def __init__(self, box):
            self.box = np.array(box, float)
    gt = [0, 0, 10, 10]
    faces = [F([20, 20, 30, 30]), F([0, 0, 10, 8]), F([1, 1, 10, 10])]
    face, iou = dc.match_face(faces, gt)
    assert face is faces[2] and iou == pytest.approx(0.81)
    assert dc.match_face([F([5, 0, 15, 10])], gt) == (None, pytest.approx(1 / 3))  # below MATCH_IOU
    assert dc.match_face([], gt) == (None, None)
    assert dc.box_iou(gt, gt) == 1.0 and dc.box_iou(gt, [10, 10, 20, 20]) == 0.0


# ------------------------------------------------------------------------------------------------ the cache

@pytest.fixture()
def fresh(tiny, datatang_root, tmp_path):
    """A fresh copy of the data and its train detections written by ensure_detections: (samples, path)."""
    _make_data(datatang_root, tmp_path / "data")
    cfg = load_config(_write_cfg(tmp_path / "c.yaml", tmp_path / "data", tmp_path / "cache"))
    samples = build_samples(cfg, "train")
    path = detections_path(cfg, "train")
    assert dc.ensure_detections(path, samples, progress=False) == (path, "no file %s" % path)
    return samples, path


def _count_runs(monkeypatch):
    calls = []
    real = dc.detect_samples

    def counting(*a, **kw):
        calls.append(1)
        return real(*a, **kw)
    monkeypatch.setattr(dc, "detect_samples", counting)
    return calls


def test_an_unchanged_cache_is_reused_without_running_the_detector(fresh, monkeypatch):
    samples, path = fresh
    before = os.stat(path).st_mtime_ns

    def fail(*a, **kw):
        raise AssertionError("the detector ran on a valid cache")
    monkeypatch.setattr(dc, "detect_samples", fail)
    assert dc.ensure_detections(path, samples, progress=False) == (path, None)
    os.utime(samples[0].image_path, ns=(1, 10 ** 18))  # touched, bytes unchanged: the sha256 says so
    assert dc.ensure_detections(path, samples[:2], progress=False) == (path, None)  # a subset is served too
    assert os.stat(path).st_mtime_ns == before


def test_changed_image_bytes_rebuild_the_cache(fresh, monkeypatch):
    samples, path = fresh
    calls = _count_runs(monkeypatch)
    with open(samples[1].image_path, "ab") as f:  # a longer file
        f.write(b"\0")
    _, why = dc.ensure_detections(path, samples, progress=False)
    assert why.startswith("image of %s changed" % samples[1].name) and len(calls) == 1
    assert dc.ensure_detections(path, samples, progress=False) == (path, None) and len(calls) == 1
    raw = bytearray(open(samples[2].image_path, "rb").read())  # same size, other bytes, a new time
    raw[-3] ^= 0xFF
    with open(samples[2].image_path, "wb") as f:
        f.write(bytes(raw))
    os.utime(samples[2].image_path, ns=(1, os.stat(samples[2].image_path).st_mtime_ns + 10 ** 9))
    _, why = dc.ensure_detections(path, samples, progress=False)
    assert "changed (new modification time and content)" in why and len(calls) == 2
    assert load_detections_meta(path)["samples"][samples[2].name]["sha256"] == file_sha256(samples[2].image_path)


def _edit_meta(path, **kw):
    with open(path) as f:
        d = json.load(f)
    d["_meta"].update(kw)
    with open(path, "w") as f:
        json.dump(d, f)


def test_another_model_sha_opencv_or_sample_rebuilds_the_cache(fresh, monkeypatch):
    samples, path = fresh
    calls = _count_runs(monkeypatch)
    _edit_meta(path, model_sha256="0" * 64)
    _, why = dc.ensure_detections(path, samples, progress=False)
    assert why == "model_sha256 %r, now %r" % ("0" * 64, YUNET_SHA256) and len(calls) == 1
    assert load_detections_meta(path)["model_sha256"] == YUNET_SHA256
    _edit_meta(path, opencv="3.4.0")
    assert dc.ensure_detections(path, samples, progress=False)[1] == "opencv '3.4.0', now %r" % cv2.__version__
    assert len(calls) == 2
    ident = dc.detector_identity(dc.five_point_detector("yunet"))
    assert dc.stale_reason(path, samples + [replace(samples[0], name=BLANK)], ident) == "sample %s not in it" % BLANK
    moved = replace(samples[0], landmarks=samples[0].landmarks + 5)
    assert dc.stale_reason(path, [moved], ident) == "landmarks of %s changed" % samples[0].name
    assert dc.stale_reason(path, samples, ident, min_iou=0.5).startswith("match_iou 0.4")


def test_a_file_without_meta_or_unreadable_is_never_trusted(fresh, tmp_path):
    samples, path = fresh
    ident = dc.detector_identity(dc.five_point_detector("yunet"))
    old = tmp_path / "old.json"  # the format before "_meta": still loads, but is no cache
    save_detections(old, load_detections(path))
    assert sorted(load_detections(old)) == sorted(TRAIN_STEMS) and load_detections_meta(old) == {}
    assert dc.stale_reason(str(old), samples, ident).startswith("no '_meta' in")
    old.write_text("{ not json")
    assert dc.stale_reason(str(old), samples, ident).startswith("unreadable (")


def test_an_unreadable_image_stops_the_run_or_is_a_miss(fresh, tmp_path):
    samples, _ = fresh
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    bad = [samples[0], replace(samples[1], image_path=str(empty))]
    det = dc.five_point_detector("yunet")
    with pytest.raises(ImageReadError) as e:
        dc.detect_samples(bad, det, progress=False)
    assert str(empty) in str(e.value)
    run = dc.detect_samples(bad, det, progress=False, on_error="warn")
    assert list(run.detections) == [samples[0].name]
    assert run.misses[samples[1].name]["reason"] == dc.UNREADABLE


def test_a_detector_without_five_points_is_refused():
    with pytest.raises(DetectorError) as e:
        dc.five_point_detector("opencv")
    assert str(e.value) == "detector 'opencv' gives no five points; the alignment needs one of: yunet, insightface"


# ------------------------------------------------------------------------------------ DATA.ALIGN detector

def test_align_detector_builds_datasets_on_the_cached_detections(tiny):
    cfg_file, _, cache = tiny
    cfg = load_config(cfg_file, ["DATA.ALIGN", "detector"])
    assert alignment(cfg) == "detector yunet (cache %s)" % cache
    mtime = os.stat(detections_path(cfg, "val")).st_mtime_ns
    data = build_dataset(cfg, "val")
    assert os.stat(detections_path(cfg, "val")).st_mtime_ns == mtime  # the tool's file, reused
    dets = load_detections(detections_path(cfg, "val"))
    template = arcface_template(cfg.DATA.INPUT_SIZE, cfg.DATA.TEMPLATE_SCALE)
    scheme = get_scheme("datatang106")
    assert [s.name for s in data.samples] == list(VAL_STEMS) + [BLANK]
    assert data.five_point_source == ["detection", "ground_truth"]
    np.testing.assert_allclose(data.affine(0), estimate_similarity(dets[VAL_STEMS[0]].five_points, template),
                               atol=1e-6)
    np.testing.assert_allclose(data.affine(1), estimate_similarity(
        five_points_from_landmarks(data.samples[1].landmarks, scheme), template), atol=1e-9)  # the miss's fallback
    assert detector_misses(data) == [BLANK]
    ground = build_dataset(load_config(cfg_file), "val")  # DATA.ALIGN ground_truth: as before
    assert ground.five_point_source == ["ground_truth", "ground_truth"]
    assert not np.allclose(ground.affine(0), data.affine(0))


def test_align_detector_builds_a_missing_cache_and_a_bad_mode_is_one_line(tiny, tmp_path):
    cfg_file, _, _ = tiny
    cfg = load_config(cfg_file, ["DATA.ALIGN", "detector", "DATA.DETECTIONS_CACHE", str(tmp_path / "c")])
    train = build_dataset(cfg, "train")
    assert train.five_point_source == ["detection"] * 3
    assert os.path.isfile(str(tmp_path / "c" / "datatang_train_yunet.json"))
    with pytest.raises(UsageError) as e:
        build_dataset(load_config(cfg_file, ["DATA.ALIGN", "retinaface"]), "train")
    assert str(e.value) == "DATA.ALIGN must be one of ground_truth, detector, got 'retinaface'"


def test_detector_noise_measures_the_map_between_the_two_alignments(tiny, tmp_path, capsys):
    from lotr_gluon.data.align import transform_points
    from lotr_gluon.data.augment import Augmenter, AugmentParams
    cfg_file, _, _ = tiny
    out = tmp_path / "noise.json"
    assert load_tool("detector_noise").main(["--cfg", cfg_file, "--split", "train", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rec = json.loads(out.read_text())
    assert rec["data"]["detected"] == 3 and sorted(rec["per_face"]) == sorted(TRAIN_STEMS)
    assert rec["detector"]["name"] == "yunet" and "AUG.ALIGN_NOISE_STD" in printed
    cfg = load_config(cfg_file)
    size, scheme = cfg.DATA.INPUT_SIZE, get_scheme("datatang106")
    template = arcface_template(size, cfg.DATA.TEMPLATE_SCALE)
    dets = load_detections(detections_path(cfg, "train"))
    vals = []
    for s in build_samples(cfg, "train"):
        m_gt = estimate_similarity(five_points_from_landmarks(s.landmarks, scheme), template)
        m_det = estimate_similarity(np.asarray(dets[s.name].five_points), template)
        ls, ang, sx, sy = rec["per_face"][s.name]
        # the augmentation drawn with these parameters carries the ground-truth crop onto the detector's crop
        p = AugmentParams(angle=ang, scale=float(np.exp(ls)), shift=(sx * size, sy * size))
        M = Augmenter(flip_prob=0.0, rotation_deg=0.0, erasing_prob=0.0, pca_std=0.0, jitter=0.0
                      ).geometric_matrix(p, size, size)
        gt_in_crop = transform_points(s.landmarks, m_gt)
        assert np.abs(transform_points(gt_in_crop, M) - transform_points(s.landmarks, m_det)).max() < 1e-3
        vals.append(rec["per_face"][s.name])
    std = np.std(vals, axis=0)
    assert rec["align_noise_std"] == pytest.approx([std[0], std[1], (std[2] + std[3]) / 2], rel=5e-3)  # 3 digits
