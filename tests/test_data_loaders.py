"""Annotation loaders on the real fixtures, and their errors on corrupted copies made in tmp_path."""
import json
import pickle
import shutil
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from lotr_gluon.data.formats import (Detection, FaceSample, ImageReadError, LandmarkFileError,
                                     LandmarkFileWarning, load_300w, load_datatang, load_detections, load_jd,
                                     load_samples, load_wflw, read_image, save_detections)

WFLW_LIST = Path("WFLW_annotations") / "list_98pt_rect_attr_train_test" / "list_98pt_rect_attr_test.txt"


def _in_image(sample, margin=0.1):
    """Landmarks within the image, allowing ``margin`` of the size outside (occluded contour points)."""
    h, w = read_image(sample.image_path).shape[:2]
    p = sample.landmarks
    return (p[:, 0] > -margin * w).all() and (p[:, 0] < (1 + margin) * w).all() and \
        (p[:, 1] > -margin * h).all() and (p[:, 1] < (1 + margin) * h).all()


# ------------------------------------------------------------------------------------------ real data

def test_load_jd_fixture(fixtures_dir):
    samples = load_jd(fixtures_dir / "jd106")
    assert [s.name for s in samples] == ["10773046825_0", "13609937564_5"]
    for s in samples:
        assert isinstance(s, FaceSample)
        assert s.landmarks.shape == (106, 2) and s.landmarks.dtype == np.float32
        assert s.visible is None and s.box is None
        assert Path(s.image_path).is_file() and _in_image(s)
    assert samples[0].landmarks[0].tolist() == [406.0, 644.0]


def test_load_wflw_fixture(fixtures_dir):
    root = fixtures_dir / "wflw98"
    samples = load_wflw(root / WFLW_LIST, root / "WFLW_images")
    assert len(samples) == 4
    assert [s.name for s in samples] == ["36_Football_americanfootball_ball_36_415_0", "7_Cheering_Cheering_7_16_0",
                                         "7_Cheering_Cheering_7_16_1", "7_Cheering_Cheering_7_16_2"]
    for s in samples:
        assert s.landmarks.shape == (98, 2)
        assert s.box.shape == (4,) and s.box.dtype == np.float32
        assert set(s.attributes) == {"pose", "expression", "illumination", "makeup", "occlusion", "blur"}
        # the box (x_min, y_min, x_max, y_max) spans the face horizontally (the fixture's third box is too short)
        assert s.landmarks[:, 0].min() > s.box[0] - 20 and s.landmarks[:, 0].max() < s.box[2] + 20
        assert _in_image(s)
    assert samples[0].box.tolist() == [432, 114, 533, 215]
    assert samples[0].landmarks[0, 0] == pytest.approx(440.696106)


def test_load_300w_fixture(fixtures_dir):
    samples = load_300w(fixtures_dir / "300w68")
    assert [s.name for s in samples] == ["indoor_020", "indoor_029"]
    for s in samples:
        assert s.landmarks.shape == (68, 2) and s.image_path.endswith(".png") and _in_image(s)
    # 1-based .pts coordinates become 0-based
    raw = load_300w(fixtures_dir / "300w68" / "indoor_020.pts", one_based=False)
    assert np.allclose(raw[0].landmarks[0], [70.0, 292.332])
    assert np.allclose(raw[0].landmarks - 1.0, samples[0].landmarks)
    # list of files
    assert len(load_300w([fixtures_dir / "300w68" / "indoor_029.pts"])) == 1


def test_load_datatang(datatang_root):
    val = load_datatang(datatang_root, "splits/val.txt")  # relative to root
    assert len(val) == 100
    assert val[0].name == "000016"
    same = load_datatang(datatang_root, datatang_root / "splits" / "val.txt")  # absolute
    assert [s.name for s in same] == [s.name for s in val]
    vis = np.stack([s.visible for s in val])
    assert vis.shape == (100, 106) and vis.dtype == bool
    assert 0.01 < 1 - vis.mean() < 0.15  # about 5 % flagged invisible
    assert val[0].attributes["orientation"] in ("forward", "leftward", "rightward")
    for s in val[:5]:
        assert s.landmarks.shape == (106, 2) and _in_image(s)
    # points are sorted by id
    d = json.loads((datatang_root / "images" / "000016.json").read_text())
    by_id = {e["id"]: e["coordinates"] for e in d["DataList"]}
    assert np.allclose(val[0].landmarks[10], by_id[11])


def test_load_samples_dispatch(fixtures_dir, datatang_root):
    assert len(load_samples("jd", fixtures_dir / "jd106")) == 2
    assert len(load_samples("jd", fixtures_dir, split="jd106")) == 2
    assert len(load_samples("300w", fixtures_dir, split="300w68")) == 2
    assert len(load_samples("wflw", fixtures_dir / "wflw98", split="list_98pt_rect_attr_test.txt")) == 4
    assert len(load_samples("wflw", fixtures_dir / "wflw98", annotation=str(WFLW_LIST))) == 4
    assert len(load_samples("datatang", datatang_root, split="splits/val.txt")) == 100
    with pytest.raises(ValueError) as e:
        load_samples("lapa", fixtures_dir)
    assert "datatang" in str(e.value) and "300w" in str(e.value)
    with pytest.raises(ValueError):
        load_samples("wflw", fixtures_dir / "wflw98")
    with pytest.raises(FileNotFoundError):
        load_samples("datatang", datatang_root, split="splits/nope.txt")
    with pytest.raises(ValueError):
        load_jd(fixtures_dir / "jd106", on_error="ignore")


# ----------------------------------------------------------------------------------------- read_image

def test_read_image_conversions(tmp_path):
    bgr = np.zeros((8, 10, 3), np.uint8)
    bgr[..., 2] = 200  # red in OpenCV's BGR
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    rgb = read_image(tmp_path / "red.png")
    assert rgb.shape == (8, 10, 3) and rgb.dtype == np.uint8 and (rgb[..., 0] == 200).all() and rgb[..., 2].max() == 0
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((5, 6), 77, np.uint8))
    g = read_image(tmp_path / "grey.png")
    assert g.shape == (5, 6, 3) and (g == 77).all()
    bgra = np.concatenate([bgr, np.full((8, 10, 1), 10, np.uint8)], axis=2)
    cv2.imwrite(str(tmp_path / "alpha.png"), bgra)
    assert np.array_equal(read_image(tmp_path / "alpha.png"), rgb)


def test_read_image_errors(tmp_path):
    with pytest.raises(ImageReadError) as e:
        read_image(tmp_path / "missing.jpg")
    assert "missing.jpg" in str(e.value)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 definitely not a jpeg")
    with pytest.raises(ImageReadError) as e:
        read_image(bad)
    assert "bad.jpg" in str(e.value) and isinstance(e.value, LandmarkFileError)
    assert isinstance(e.value, ValueError)
    again = pickle.loads(pickle.dumps(e.value))  # crosses DataLoader worker processes
    assert type(again) is ImageReadError and str(again) == str(e.value)


# ---------------------------------------------------------------------------------- corrupted copies

def _expect(fn, *names, line=None):
    """``fn()`` raises LandmarkFileError whose message holds every name (and ``:line``)."""
    with pytest.raises(LandmarkFileError) as e:
        fn()
    msg = str(e.value)
    for n in names:
        assert n in msg, msg
    if line is not None:
        assert e.value.line == line and (":%d:" % line) in msg, msg
    return e.value


def _expect_warn_skip(fn, n_left, name):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = fn()
    msgs = [str(x.message) for x in w if issubclass(x.category, LandmarkFileWarning)]
    assert len(out) == n_left
    assert any(name in m for m in msgs), msgs
    return out


@pytest.fixture
def jd_copy(tmp_path, fixtures_dir):
    root = tmp_path / "jd"
    shutil.copytree(fixtures_dir / "jd106", root)
    return root


def _lines(p):
    return p.read_text().splitlines()


def test_jd_corrupted(jd_copy):
    lm = jd_copy / "landmark" / "13609937564_5.jpg.txt"
    good = _lines(lm)
    # wrong count
    lm.write_text("\n".join(good[:-1]) + "\n")
    _expect(lambda: load_jd(jd_copy), "13609937564_5.jpg.txt", "expected 106 points, found 105")
    _expect_warn_skip(lambda: load_jd(jd_copy, on_error="warn"), 1, "13609937564_5.jpg.txt")
    # header mismatch
    lm.write_text("\n".join(["98"] + good[1:]) + "\n")
    _expect(lambda: load_jd(jd_copy), "13609937564_5.jpg.txt", line=1)
    # non-numeric value on file line 8
    bad = list(good)
    bad[7] = "12.0 abc"
    lm.write_text("\n".join(bad) + "\n")
    _expect(lambda: load_jd(jd_copy), "13609937564_5.jpg.txt", "'abc'", line=8)
    _expect_warn_skip(lambda: load_jd(jd_copy, on_error="warn"), 1, "'abc'")
    # NaN
    bad[7] = "nan 3"
    lm.write_text("\n".join(bad) + "\n")
    _expect(lambda: load_jd(jd_copy), "non-finite", line=8)
    # three values on a line
    bad[7] = "1 2 3"
    lm.write_text("\n".join(bad) + "\n")
    _expect(lambda: load_jd(jd_copy), "13609937564_5.jpg.txt", line=8)
    # missing image
    lm.write_text("\n".join(good) + "\n")
    (jd_copy / "picture" / "13609937564_5.jpg").unlink()
    _expect(lambda: load_jd(jd_copy), "13609937564_5.jpg.txt", "image file not found")
    _expect_warn_skip(lambda: load_jd(jd_copy, on_error="warn"), 1, "image file not found")


def test_jd_unreadable_image_fails_at_read(jd_copy):
    (jd_copy / "picture" / "10773046825_0.jpg").write_bytes(b"not an image at all")
    samples = load_jd(jd_copy)  # existence check only
    assert len(samples) == 2
    with pytest.raises(ImageReadError) as e:
        read_image(samples[0].image_path)
    assert "10773046825_0.jpg" in str(e.value)


def test_jd_header_optional(jd_copy):
    lm = jd_copy / "landmark" / "10773046825_0.jpg.txt"
    (jd_copy / "landmark" / "10773046825_0.txt").write_text("\n".join(_lines(lm)[1:]) + "\n")
    lm.unlink()
    samples = load_jd(jd_copy)
    assert [s.name for s in samples] == ["10773046825_0", "13609937564_5"]
    assert samples[0].landmarks[0].tolist() == [406.0, 644.0]


@pytest.fixture
def datatang_copy(tmp_path, datatang_root):
    root = tmp_path / "dt"
    (root / "images").mkdir(parents=True)
    stems = ["000016", "000019", "000022"]
    for s in stems:
        for ext in (".json", ".jpg"):
            shutil.copy(datatang_root / "images" / (s + ext), root / "images" / (s + ext))
    (root / "split.txt").write_text("\n".join(stems) + "\n")
    return root


def test_datatang_corrupted(datatang_copy):
    js = datatang_copy / "images" / "000019.json"
    d = json.loads(js.read_text())
    assert len(load_datatang(datatang_copy, "split.txt")) == 3
    assert len(load_datatang(datatang_copy)) == 3  # no split: every JSON
    # truncated JSON: the decoder's line is reported
    text = json.dumps(d, indent=1)
    js.write_text(text[: len(text) // 2])
    err = _expect(lambda: load_datatang(datatang_copy, "split.txt"), "000019.json", "invalid JSON")
    assert err.line is not None and err.line > 1
    _expect_warn_skip(lambda: load_datatang(datatang_copy, "split.txt", on_error="warn"), 2, "000019.json")
    # wrong count
    d2 = dict(d, DataList=d["DataList"][:-1])
    js.write_text(json.dumps(d2))
    _expect(lambda: load_datatang(datatang_copy, "split.txt"), "000019.json", "expected 106 points, found 105")
    # non-numeric coordinate
    d3 = json.loads(json.dumps(d))
    d3["DataList"][5]["coordinates"] = ["abc", 3]
    js.write_text(json.dumps(d3))
    _expect(lambda: load_datatang(datatang_copy, "split.txt"), "000019.json", "'abc'", "id 6")
    d3["DataList"][5]["coordinates"] = [float("nan"), 3]
    js.write_text(json.dumps(d3))
    _expect(lambda: load_datatang(datatang_copy, "split.txt"), "000019.json", "non-finite")
    # missing image
    js.write_text(json.dumps(d))
    (datatang_copy / "images" / "000022.jpg").unlink()
    _expect(lambda: load_datatang(datatang_copy, "split.txt"), "000022.json", "image file not found")
    out = _expect_warn_skip(lambda: load_datatang(datatang_copy, "split.txt", on_error="warn"), 2, "000022")
    assert [s.name for s in out] == ["000016", "000019"]
    # a stem listed in the split without its JSON
    (datatang_copy / "split.txt").write_text("000016\n000099\n")
    _expect(lambda: load_datatang(datatang_copy, "split.txt"), "000099.json", "not found")


@pytest.fixture
def wflw_copy(tmp_path, fixtures_dir):
    root = tmp_path / "wflw"
    shutil.copytree(fixtures_dir / "wflw98", root)
    return root


def test_wflw_corrupted(wflw_copy):
    ann = wflw_copy / WFLW_LIST
    good = _lines(ann)
    imgs = wflw_copy / "WFLW_images"
    # wrong field count on line 2
    bad = list(good)
    bad[1] = " ".join(bad[1].split()[2:])
    ann.write_text("\n".join(bad) + "\n")
    _expect(lambda: load_wflw(ann, imgs), "list_98pt_rect_attr_test.txt", "expected 207 fields", line=2)
    out = _expect_warn_skip(lambda: load_wflw(ann, imgs, on_error="warn"), 3, "list_98pt_rect_attr_test.txt:2")
    assert out[1].name == "7_Cheering_Cheering_7_16_0"
    # non-numeric coordinate on line 3
    bad = list(good)
    tok = bad[2].split()
    tok[10] = "abc"
    bad[2] = " ".join(tok)
    ann.write_text("\n".join(bad) + "\n")
    _expect(lambda: load_wflw(ann, imgs), "'abc'", line=3)
    # bad attribute flag on line 1
    bad = list(good)
    tok = bad[0].split()
    tok[201] = "2"
    bad[0] = " ".join(tok)
    ann.write_text("\n".join(bad) + "\n")
    _expect(lambda: load_wflw(ann, imgs), "attribute flag", line=1)
    # missing image: line 1
    ann.write_text("\n".join(good) + "\n")
    (imgs / "36--Football" / "36_Football_americanfootball_ball_36_415.jpg").unlink()
    _expect(lambda: load_wflw(ann, imgs), "36_Football_americanfootball_ball_36_415.jpg", line=1)
    _expect_warn_skip(lambda: load_wflw(ann, imgs, on_error="warn"), 3, "36_Football")


def test_300w_corrupted(tmp_path, fixtures_dir):
    root = tmp_path / "300w"
    shutil.copytree(fixtures_dir / "300w68", root)
    pts = root / "indoor_020.pts"
    good = _lines(pts)  # version, n_points, {, 68 lines, }
    bad = list(good)
    del bad[10]
    pts.write_text("\n".join(bad) + "\n")
    _expect(lambda: load_300w(root), "indoor_020.pts", "n_points is 68 but 67", line=71)
    _expect_warn_skip(lambda: load_300w(root, on_error="warn"), 1, "indoor_020.pts")
    bad = list(good)
    bad[4] = "abc 12"
    pts.write_text("\n".join(bad) + "\n")
    _expect(lambda: load_300w(root), "indoor_020.pts", "'abc'", line=5)
    pts.write_text("\n".join(good[:-1]) + "\n")
    _expect(lambda: load_300w(root), "indoor_020.pts", "'}'")
    pts.write_text("\n".join(good) + "\n")
    (root / "indoor_029.png").unlink()
    _expect(lambda: load_300w(root), "indoor_029.pts", "image file not found")
    # unreadable image bytes: loads, read_image raises
    (root / "indoor_020.png").write_bytes(b"\x89PNG broken")
    with pytest.warns(LandmarkFileWarning, match="indoor_029"):
        s = load_300w(root, on_error="warn")
    assert len(s) == 1
    with pytest.raises(ImageReadError):
        read_image(s[0].image_path)


# ---------------------------------------------------------------------------------------- detections

def test_detections_round_trip(tmp_path):
    dets = {"a": Detection(np.arange(10, dtype=np.float32).reshape(5, 2), np.array([0, 0, 9, 9], np.float32), 0.9),
            "b": Detection(np.ones((5, 2), np.float32) * [1, 2])}
    path = tmp_path / "det.json"
    save_detections(path, dets)
    back = load_detections(path)
    assert set(back) == {"a", "b"}
    assert np.array_equal(back["a"].five_points, dets["a"].five_points) and back["a"].score == pytest.approx(0.9)
    assert back["b"].box is None and back["b"].score is None
    assert back["a"].five_points.shape == (5, 2) and back["a"].five_points.dtype == np.float32


def test_detections_errors(tmp_path):
    path = tmp_path / "det.json"
    path.write_text('{"a": {"five_points": [[1, 2], [3, 4], [5, 6], [7, 8]]}}')
    _expect(lambda: load_detections(path), "det.json", "'a'", "five_points")
    path.write_text('{"a": {"five_points": [[1, 2], [3, 4], [5, 6], [7, 8], ["x", 0]]}}')
    _expect(lambda: load_detections(path), "det.json", "'a'")
    path.write_text('{\n "a": {"five_points": \n')
    _expect(lambda: load_detections(path), "det.json", "invalid JSON")
    with pytest.raises(FileNotFoundError):
        load_detections(tmp_path / "none.json")


def test_a_face_listed_twice_is_an_error(wflw_copy):
    ann = wflw_copy / WFLW_LIST
    good = _lines(ann)
    ann.write_text("\n".join(good + good[:1]) + "\n")
    n = len(good) + 1
    with pytest.raises(LandmarkFileError, match=r"listed twice \(lines 1 and %d\)" % n) as e:
        load_samples("wflw", wflw_copy, annotation=str(ann))
    assert e.value.line == n and e.value.path == str(ann)


def test_datatang_malformed_point_lists_are_short_one_line_errors(datatang_copy):
    js = datatang_copy / "images" / "000019.json"
    d = json.loads(js.read_text())
    points = [e for e in d["DataList"] if e.get("type", "Point") == "Point"]
    flat = [v for e in points for v in e["coordinates"]]
    # all 212 numbers in one point's coordinates
    bad = json.loads(js.read_text())
    bad["DataList"][0]["coordinates"] = flat
    js.write_text(json.dumps(bad))
    err = _expect(lambda: load_datatang(datatang_copy, "split.txt"), "000019.json", "must be [x, y]", "(212 items)")
    assert len(str(err)) < 300 and "\n" not in str(err)
    # a DataList of bare numbers: says why no point was read
    bad = dict(d, DataList=flat)
    js.write_text(json.dumps(bad))
    err = _expect(lambda: load_datatang(datatang_copy, "split.txt"), "expected 106 points, found 0",
                  "212 DataList entries are not {'type': 'Point'")
    assert len(str(err)) < 300
