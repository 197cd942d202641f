"""Predictor, detectors and tools/demo.py: behaviour on a randomly initialised small model (not accuracy).

The model is LOTR with MobileNetV2-0.25 at 64 px (experiments/datatang/lotr_m.yaml with overrides, and
DATA.TEMPLATE_SCALE 0.8 to check that the training alignment is taken from the config). Geometry is checked
with stub networks that return known crop points (ground truth, or the ground truth of the mirrored crop).
insightface's detector code path runs on a synthetic ONNX model with SCRFD's output layout (no real weights
on this machine).
"""
import importlib.util
import json
import os
import warnings

import cv2
import numpy as np
import mxnet as mx
import pytest

from lotr_gluon.data.align import five_points_from_landmarks
from lotr_gluon.data.augment import flip_points
from lotr_gluon.data.dataset import AlignedFaceDataset
from lotr_gluon.data.formats import ImageReadError, load_datatang, read_image
from lotr_gluon.data.schemes import get_scheme
from lotr_gluon.detectors import (DEFAULT_BOX_TEMPLATE, DetectorUnavailable, Face, InsightFaceDetector,
                                  OpenCVDetector, five_points_from_box, get_detector, haar_cascade_path)
from lotr_gluon.predictor import Predictor, to_rgb

warnings.filterwarnings("ignore", category=UserWarning)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CFG = os.path.join(ROOT, "experiments", "datatang", "lotr_m.yaml")
S = 64
TEMPLATE_SCALE = 0.8
OPTS = ["MODEL.BACKBONE.NAME", "mobilenetv2_0.25", "MODEL.BACKBONE.PRETRAINED", "False", "DATA.INPUT_SIZE", str(S),
        "DATA.TEMPLATE_SCALE", str(TEMPLATE_SCALE)]
STEM = "000019"  # a Datatang image where the Haar cascade finds the face
KEYS = {"landmarks", "five_points", "box", "score", "detector", "align_points", "alignment", "affine"}


@pytest.fixture(scope="module")
def tiny_params(tmp_path_factory):
    from lotr_gluon.config import load_config
    from lotr_gluon.model_zoo import build_model

    cfg = load_config(CFG, OPTS)
    mx.random.seed(0)
    net = build_model(cfg, ctx=mx.cpu())
    net(mx.nd.zeros((1, 3, S, S)))  # resolve gluoncv's deferred shapes before saving
    path = str(tmp_path_factory.mktemp("model") / "tiny.params")
    net.save_parameters(path)
    return path


@pytest.fixture(scope="module")
def predictor(tiny_params):
    return Predictor.from_config(CFG, tiny_params, opts=OPTS, detector="opencv")


@pytest.fixture(scope="module")
def sample(datatang_root, tmp_path_factory):
    split = tmp_path_factory.mktemp("split") / "one.txt"
    split.write_text(STEM + "\n")
    return load_datatang(datatang_root, split)[0]


@pytest.fixture(scope="module")
def dataset(sample):
    return AlignedFaceDataset([sample], get_scheme("datatang106"), S, template_scale=TEMPLATE_SCALE)


def _gt_face(sample):
    pts = five_points_from_landmarks(sample.landmarks, get_scheme("datatang106"))
    lm = sample.landmarks
    return Face(box=np.r_[lm.min(0), lm.max(0)], score=0.9, five_points=pts)


class _Stub:
    """A 'network' that returns fixed crop points for every input and counts its calls (batch sizes)."""

    def __init__(self, points, mirrored=None):
        self.points = np.asarray(points, np.float32)
        self.mirrored = mirrored  # (normalised crop (3, S, S), points for its mirror)
        self.calls = []

    def __call__(self, x):
        x = x.asnumpy()
        self.calls.append(len(x))
        out = np.repeat(self.points[None], len(x), 0)
        if self.mirrored is not None:
            crop, pts = self.mirrored
            for i in range(len(x)):
                if not np.allclose(x[i], crop, atol=1e-5):  # not the crop: its mirror
                    assert np.allclose(x[i], crop[:, :, ::-1], atol=1e-5)
                    out[i] = pts
        return mx.nd.array(out)


# --------------------------------------------------------------------------------------------- predictor

def test_predict_image_file(predictor, sample):
    assert predictor.template_scale == TEMPLATE_SCALE and predictor.input_size == S
    assert predictor.detector_name == "opencv"
    res = predictor.predict(sample.image_path)
    assert len(res) >= 1
    for r in res:
        assert KEYS <= set(r)
        assert r["landmarks"].shape == (106, 2) and np.isfinite(r["landmarks"]).all()
        assert r["five_points"].shape == (5, 2) and r["align_points"].shape == (5, 2)
        assert r["box"].shape == (4,) and r["affine"].shape == (2, 3)
        assert isinstance(r["score"], float) and r["detector"] == "opencv"
        assert r["alignment"] in ("refined", "box")
        np.testing.assert_allclose(r["five_points"], five_points_from_landmarks(r["landmarks"], predictor.scheme))
    # the detected box covers the annotated face
    lm = sample.landmarks
    cx, cy = lm.mean(0)
    b = res[0]["box"]
    assert b[0] < cx < b[2] and b[1] < cy < b[3]


def test_crop_equals_dataset_and_round_trip(predictor, sample, dataset):
    face = _gt_face(sample)
    res = predictor.predict(sample.image_path, faces=[face], return_crops=True)
    assert len(res) == 1 and res[0]["detector"] == "given" and res[0]["alignment"] == "five_points"
    np.testing.assert_array_equal(res[0]["crop"], dataset.crop(0))
    np.testing.assert_allclose(res[0]["affine"], dataset.affine(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(res[0]["align_points"], face.five_points)
    np.testing.assert_allclose(res[0]["box"], face.box)
    assert res[0]["score"] == pytest.approx(0.9)

    # a stub that returns the ground truth in crop pixels gives back the ground truth in image pixels
    stub = _Stub(dataset.landmarks(0))
    p = Predictor(stub, "datatang106", S, template_scale=TEMPLATE_SCALE, detector=None)
    out = p.predict(sample.image_path, faces=[face])
    np.testing.assert_allclose(out[0]["landmarks"], sample.landmarks, rtol=0, atol=1e-2)
    assert stub.calls == [1]
    # faces as plain five-point arrays or dicts
    out2 = p.predict(sample.image_path, faces=[face.five_points, {"five_points": face.five_points}])
    assert len(out2) == 2 and stub.calls == [1, 2]  # one forward pass for both faces
    for r in out2:
        np.testing.assert_allclose(r["landmarks"], sample.landmarks, rtol=0, atol=1e-2)


def test_flip_test_un_mirrors(sample, dataset):
    perm = get_scheme("datatang106").flip_permutation()
    gt = dataset.landmarks(0)
    crop = dataset.normalize(dataset.crop(0))
    stub = _Stub(gt, mirrored=(crop, flip_points(gt, S, perm)))
    p = Predictor(stub, "datatang106", S, template_scale=TEMPLATE_SCALE, detector=None, flip=True)
    out = p.predict(sample.image_path, faces=[_gt_face(sample)])
    assert stub.calls == [2]  # the crop and its mirror in one batch
    np.testing.assert_allclose(out[0]["landmarks"], sample.landmarks, rtol=0, atol=1e-2)
    # a wrong permutation would not give the ground truth back
    stub.mirrored = (crop, flip_points(gt, S, None))
    bad = p.predict(sample.image_path, faces=[_gt_face(sample)])
    assert np.abs(bad[0]["landmarks"] - sample.landmarks).max() > 1.0


def test_box_only_faces_are_refined(sample, dataset):
    scheme = get_scheme("datatang106")
    stub = _Stub(dataset.landmarks(0))
    p = Predictor(stub, scheme, S, template_scale=TEMPLATE_SCALE, detector=None)
    lm = sample.landmarks
    box = np.r_[lm.min(0), lm.max(0)]
    # one box-only face and one with five points: two passes, the second only for the box-only face
    res = p.predict(sample.image_path, faces=[box, _gt_face(sample)])
    assert stub.calls == [2, 1]
    r0, r1 = res
    assert r0["alignment"] == "refined" and r1["alignment"] == "five_points"
    first = p.predict(sample.image_path, faces=[box], refine=False)[0]
    assert first["alignment"] == "box"
    np.testing.assert_allclose(first["align_points"], five_points_from_box(box, DEFAULT_BOX_TEMPLATE))
    np.testing.assert_allclose(r0["align_points"], five_points_from_landmarks(first["landmarks"], scheme), atol=1e-9)
    # initial points lie in the box
    pts = first["align_points"]
    assert (pts[:, 0] > box[0]).all() and (pts[:, 0] < box[2]).all()
    assert (pts[:, 1] > box[1]).all() and (pts[:, 1] < box[3]).all()
    # a collapsed prediction is not used for re-alignment
    stub2 = _Stub(np.full((106, 2), S / 2.0))
    p2 = Predictor(stub2, scheme, S, template_scale=TEMPLATE_SCALE, detector=None)
    r = p2.predict(sample.image_path, faces=[box])[0]
    assert r["alignment"] == "box" and stub2.calls == [1]


def test_input_formats(predictor, sample):
    from lotr_gluon.data.formats import read_image

    rgb = read_image(sample.image_path)
    faces = [_gt_face(sample)]
    ref = predictor.predict(rgb, faces=faces)[0]["landmarks"]
    np.testing.assert_allclose(predictor.predict(sample.image_path, faces=faces)[0]["landmarks"], ref)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    np.testing.assert_allclose(predictor.predict(bgr, faces=faces, color="bgr")[0]["landmarks"], ref, atol=1e-5)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])
    np.testing.assert_allclose(predictor.predict(rgba, faces=faces)[0]["landmarks"], ref, atol=1e-5)
    bgra = np.dstack([bgr, np.zeros(rgb.shape[:2], np.uint8)])
    np.testing.assert_allclose(predictor.predict(bgra, faces=faces, color="bgr")[0]["landmarks"], ref, atol=1e-5)
    # grey: (H, W) and (H, W, 1) give the same as the grey image replicated to RGB
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    ref_g = predictor.predict(np.dstack([grey] * 3), faces=faces)[0]["landmarks"]
    np.testing.assert_allclose(predictor.predict(grey, faces=faces)[0]["landmarks"], ref_g, atol=1e-5)
    np.testing.assert_allclose(predictor.predict(grey[:, :, None], faces=faces)[0]["landmarks"], ref_g, atol=1e-5)
    # the detector sees the same image whatever the channel order
    boxes = [r["box"] for r in predictor.predict(rgb)]
    boxes_bgr = [r["box"] for r in predictor.predict(bgr, color="bgr")]
    np.testing.assert_allclose(boxes, boxes_bgr)
    assert len(predictor.predict(grey)) == len(predictor.predict(np.dstack([grey] * 3)))
    # float images in [0, 1]
    np.testing.assert_array_equal(to_rgb(rgb.astype(np.float32) / 255.0), rgb)
    with pytest.raises(ValueError):
        to_rgb(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError):
        predictor.predict(rgb, color="hsv")


def test_no_face_and_unreadable(predictor, tmp_path):
    assert predictor.predict(np.zeros((240, 320, 3), np.uint8)) == []
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((240, 320, 3), 200, np.uint8))
    assert predictor.predict(str(blank)) == []
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"this is not an image")
    with pytest.raises(ImageReadError, match="broken.jpg"):
        predictor.predict(str(bad))
    with pytest.raises(ImageReadError, match="missing.jpg"):
        predictor.predict(str(tmp_path / "missing.jpg"))


@pytest.mark.parametrize("preprocess", [False, True])
def test_from_symbol_matches_from_config(predictor, sample, tmp_path, preprocess):
    from lotr_gluon.export import export_symbol

    prefix = str(tmp_path / "sym")
    export_symbol(predictor.net, prefix, S, preprocess=preprocess, mean=predictor.cfg.DATA.MEAN,
                  std=predictor.cfg.DATA.STD)
    ps = Predictor.from_symbol(prefix, S, "datatang106", preprocess=preprocess, template_scale=TEMPLATE_SCALE,
                               detector="opencv")
    a = predictor.predict(sample.image_path)
    b = ps.predict(sample.image_path)
    assert len(a) == len(b) >= 1
    for ra, rb in zip(a, b):
        np.testing.assert_allclose(rb["box"], ra["box"])
        assert rb["alignment"] == ra["alignment"]
        np.testing.assert_allclose(rb["landmarks"], ra["landmarks"], rtol=0, atol=2e-2)
    with pytest.raises(FileNotFoundError):
        Predictor.from_symbol(str(tmp_path / "nothing"), S, "datatang106", detector=None)


# --------------------------------------------------------------------------------------------- detectors

def test_opencv_detector_and_selection(tmp_path):
    assert os.path.isfile(haar_cascade_path())
    det = get_detector("opencv")
    assert det.name == "opencv" and isinstance(det, OpenCVDetector)
    assert det.detect(np.zeros((100, 120, 3), np.uint8)) == []
    with pytest.raises(ValueError):
        det.detect(np.zeros((100, 120), np.uint8))  # detectors take RGB; Predictor converts
    # no YuNet and no insightface model: auto falls back to OpenCV with a warning saying why; insightface says
    # what is missing
    with pytest.warns(UserWarning, match="Haar cascade.*YuNet"):
        assert get_detector("auto", root=str(tmp_path), yunet_model=str(tmp_path / "none.onnx")).name == "opencv"
    with pytest.raises(DetectorUnavailable, match="det_10g.onnx"):
        get_detector("insightface", root=str(tmp_path))
    with pytest.raises(DetectorUnavailable, match="nothing.onnx"):
        InsightFaceDetector(str(tmp_path / "nothing.onnx"))
    with pytest.raises(ValueError, match="valid"):
        get_detector("mtcnn")


def _fake_scrfd(path):
    """ONNX model with SCRFD's output layout (3 strides x 2 anchors, scores / boxes / 5 points): the score is
    high where channel 0 of insightface's input blob (red, after its BGR->RGB swap) is bright, every box is 4
    strides wide around its anchor, the five points are fixed offsets (nose tip = anchor)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr), name))

    const("idx0", np.array([0], np.int64))
    const("half", np.array(0.5, np.float32))
    const("gain", np.array(20.0, np.float32))
    const("zero", np.array(0.0, np.float32))
    offs = np.array([-0.5, -0.4, 0.5, -0.4, 0.0, 0.0, -0.4, 0.5, 0.4, 0.5], np.float32)
    const("dist", np.full((1, 8, 1, 1), 2.0, np.float32))
    const("kps", np.tile(offs, 2).reshape(1, 20, 1, 1))
    for n, v in (("s1", [-1, 1]), ("s4", [-1, 4]), ("s10", [-1, 10])):
        const(n, np.array(v, np.int64))
    nodes.append(helper.make_node("Gather", ["input.1", "idx0"], ["c0"], axis=1))
    outs = {"score": [], "bbox": [], "kps": []}
    for s in (8, 16, 32):
        p = "p%d" % s
        nodes += [helper.make_node("AveragePool", ["c0"], [p], kernel_shape=[s, s], strides=[s, s]),
                  helper.make_node("Sub", [p, "half"], [p + "a"]),
                  helper.make_node("Mul", [p + "a", "gain"], [p + "b"]),
                  helper.make_node("Sigmoid", [p + "b"], [p + "sg"]),
                  helper.make_node("Concat", [p + "sg", p + "sg"], [p + "sc"], axis=1),
                  helper.make_node("Mul", [p, "zero"], [p + "z"]),
                  helper.make_node("Add", [p + "z", "dist"], [p + "d"]),
                  helper.make_node("Add", [p + "z", "kps"], [p + "k"])]
        for src, key, shp in ((p + "sc", "score", "s1"), (p + "d", "bbox", "s4"), (p + "k", "kps", "s10")):
            nodes += [helper.make_node("Transpose", [src], [src + "t"], perm=[0, 2, 3, 1]),
                      helper.make_node("Reshape", [src + "t", shp], ["%s_%d" % (key, s)])]
            outs[key].append("%s_%d" % (key, s))
    names = outs["score"] + outs["bbox"] + outs["kps"]
    graph = helper.make_graph(
        nodes, "fake_scrfd", [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["n%d" % i, "c%d" % i]) for i, n in enumerate(names)],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def test_insightface_detector_code_path(tmp_path, sample, dataset):
    path = _fake_scrfd(str(tmp_path / "fake_scrfd.onnx"))
    det = InsightFaceDetector(path, det_size=160)
    assert det.name == "insightface" and det.has_five_points
    img = np.zeros((160, 200, 3), np.uint8)
    img[40:104, 60:124] = (255, 0, 0)  # red in RGB
    faces = det.detect(img)
    assert faces
    for f in faces:
        assert f.five_points.shape == (5, 2) and f.score >= 0.5
        centre = np.array([(f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2])
        np.testing.assert_allclose(f.five_points[2], centre, atol=1e-3)  # nose offset 0 = anchor (image pixels)
        assert 60 - 40 <= centre[0] <= 124 + 40 and 40 - 40 <= centre[1] <= 104 + 40
    assert det.detect(np.ascontiguousarray(img[:, :, ::-1])) == []  # blue in RGB: the channel order is kept
    # selected by 'auto' when the file exists and YuNet's does not; a predictor aligns on its five points
    assert get_detector("auto", model=path, yunet_model=str(tmp_path / "none.onnx")).name == "insightface"
    stub = _Stub(dataset.landmarks(0))
    p = Predictor(stub, "datatang106", S, template_scale=TEMPLATE_SCALE, detector="insightface",
                  detector_kw=dict(model=path, det_size=160))
    res = p.predict(img)
    assert len(res) == len(faces) and stub.calls == [len(faces)]
    assert {r["detector"] for r in res} == {"insightface"} and {r["alignment"] for r in res} == {"five_points"}


# ---------------------------------------------------------------------------------------------- demo CLI

@pytest.fixture(scope="module")
def demo():
    spec = importlib.util.spec_from_file_location("tools_demo", os.path.join(ROOT, "tools", "demo.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_demo_cli(demo, tiny_params, sample, tmp_path, capsys):
    base = ["--cfg", CFG, "--params", tiny_params, "--detector", "opencv"]
    png, js = str(tmp_path / "out.png"), str(tmp_path / "out.json")
    assert demo.main(base + ["--image", sample.image_path, "--out", png, "--json", js] + OPTS) == 0
    img = cv2.imread(png)
    h, w = cv2.imread(sample.image_path).shape[:2]
    assert img is not None and img.shape[:2] == (h, w)
    rec = json.load(open(js))
    assert rec["detector"] == "opencv" and len(rec["images"]) == 1
    faces = rec["images"][0]["faces"]
    assert len(faces) >= 1
    for f in faces:
        assert {"landmarks", "five_points", "box", "score", "detector"} <= set(f)
        assert np.array(f["landmarks"]).shape == (106, 2) and np.array(f["five_points"]).shape == (5, 2)

    # a photo without a face: exit 0, empty result
    blank = str(tmp_path / "blank.png")
    cv2.imwrite(blank, np.full((120, 160, 3), 90, np.uint8))
    capsys.readouterr()
    assert demo.main(base + ["--image", blank, "--out", str(tmp_path / "b.png"), "--json", js] + OPTS) == 0
    assert "no face" in capsys.readouterr().out
    assert json.load(open(js))["images"][0]["faces"] == []

    # an unreadable file: one line naming the file, exit status 3 (DataError)
    from lotr_gluon.cli import run_main
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\x00" * 10)
    assert run_main(demo.main, base + ["--image", str(bad), "--out", str(tmp_path / "c.png")] + OPTS) == 3
    err = capsys.readouterr().err
    assert "bad.jpg" in err and err.count("\n") == 1 and err.startswith("error: ")

    # a folder (the bad file is reported, the others processed) and a short video
    folder = tmp_path / "dir"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), cv2.imread(sample.image_path))
    cv2.imwrite(str(folder / "b.png"), np.full((120, 160, 3), 90, np.uint8))
    (folder / "c.jpg").write_bytes(b"nope")
    assert demo.main(base + ["--dir", str(folder), "--out", str(tmp_path / "dout"), "--json", js] + OPTS) == 3
    rec = json.load(open(js))
    assert [len(r["faces"]) >= 1 for r in rec["images"]] == [True, False, False] and "error" in rec["images"][2]
    assert os.path.isfile(str(tmp_path / "dout" / "a.png")) and os.path.isfile(str(tmp_path / "dout" / "b.png"))

    video = str(tmp_path / "v.mp4")
    frame = cv2.resize(cv2.imread(sample.image_path), (224, 200))
    vw = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (224, 200))
    for _ in range(3):
        vw.write(frame)
    vw.release()
    out_v = str(tmp_path / "annotated.mp4")
    assert demo.main(base + ["--video", video, "--out", out_v, "--json", js] + OPTS) == 0
    rec = json.load(open(js))
    assert [f["frame"] for f in rec["frames"]] == [0, 1, 2]
    cap = cv2.VideoCapture(out_v)
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    cap.release()


def test_given_faces_are_checked_against_the_image(dataset):
    from lotr_gluon.errors import DataError
    from lotr_gluon.predictor import BadFaceError, check_face

    stub = _Stub(dataset.landmarks(0))
    p = Predictor(stub, "datatang106", S, template_scale=TEMPLATE_SCALE, detector=None)
    img = np.full((120, 160, 3), 100, np.uint8)
    # a box far outside the 160 x 120 image: an error, not landmarks at x = 5000
    with pytest.raises(BadFaceError, match=r"face 1: box \[5000.0, 5000.0, 5100.0, 5100.0\] lies outside the "
                                           r"160 x 120 image"):
        p.predict(img, faces=[[10, 10, 60, 70], [5000, 5000, 5100, 5100]])
    for bad, why in (([50, 50, 40, 80], "x1 > x0"), ([np.nan, 0, 10, 10], "x1 > x0"), ([-80, 10, -20, 60], "outside"),
                     (dict(five_points=[[900, 900], [940, 900], [920, 920], [905, 940], [935, 940]]), "outside"),
                     (dict(box=[10, 10, 60, 70], five_points=np.full((5, 2), 900.0)), "five points .* outside"),
                     (dict(box=[10, 10, 60, 70], five_points=np.full((5, 2), np.inf)), "five points")):
        with pytest.raises(BadFaceError, match=why):
            p.predict(img, faces=[bad])
    with pytest.raises(BadFaceError, match="a face is"):
        p.predict(img, faces=[[1, 2, 3]])
    assert issubclass(BadFaceError, DataError) and issubclass(BadFaceError, ValueError)
    assert not stub.calls  # nothing reached the network
    # a face cut by the border (centre inside) is fine, and so are five points near the border
    res = p.predict(img, faces=[[-20, -10, 60, 70], dict(five_points=[[140, 20], [170, 20], [155, 35], [145, 50],
                                                                      [165, 50]])], refine=False)
    assert len(res) == 2 and stub.calls == [2]
    check_face(Face(box=[0, 0, 1, 1]), 160, 120)


def test_demo_on_a_sideways_phone_photo(demo, tiny_params, sample, tmp_path, shared_dir):
    """A JPEG stored sideways with EXIF Orientation 6 (as phones write it): YuNet finds the face, the landmarks
    and the output picture are in the pixels of the photo as displayed (upright)."""
    from test_data_formats import write_oriented
    yunet = shared_dir / "models" / "face_detection_yunet.onnx"
    upright = read_image(sample.image_path)
    photo = tmp_path / "phone.jpg"
    write_oriented(upright, 6, photo)
    assert cv2.imread(str(photo), cv2.IMREAD_UNCHANGED).shape[:2] == upright.shape[1::-1]  # stored sideways
    png, js = str(tmp_path / "out.png"), str(tmp_path / "out.json")
    assert demo.main(["--cfg", CFG, "--params", tiny_params, "--detector", "yunet", "--det-model", str(yunet),
                      "--image", str(photo), "--out", png, "--json", js] + OPTS) == 0
    assert cv2.imread(png).shape[:2] == upright.shape[:2]
    rec = json.load(open(js))["images"][0]
    assert (rec["height"], rec["width"]) == upright.shape[:2] and len(rec["faces"]) >= 1
    box = rec["faces"][0]["box"]
    cx, cy = sample.landmarks.mean(0)  # the annotated face, in upright pixels
    assert box[0] < cx < box[2] and box[1] < cy < box[3]


def test_predictor_scores_what_the_detector_evaluation_scores(tiny_params, datatang_root, shared_dir, tmp_path):
    """The Predictor on whole photos (YuNet, end to end) and the evaluation under DATA.ALIGN detector give the
    same NME per face, within 0.01 points, on real val faces (and a photo without a face, scored both ways on
    its ground-truth five points and counted as a miss)."""
    from lotr_gluon.build import build_samples, load_model
    from lotr_gluon.config import load_config
    from lotr_gluon.evaluate import evaluate_weights
    from lotr_gluon.predictor import evaluate_predictor
    if not (shared_dir / "models" / "face_detection_yunet.onnx").is_file():
        pytest.skip("YuNet model not found")
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "splits").mkdir()
    stems = ["000002", "000019", "000040", "000107"]
    for st in stems:
        for ext in (".jpg", ".json"):
            src = os.path.join(str(datatang_root), "images", st + ext)
            (data / "images" / (st + ext)).write_bytes(open(src, "rb").read())
    shape = cv2.imread(str(data / "images" / "000002.jpg")).shape
    cv2.imwrite(str(data / "images" / "900000.jpg"), np.full(shape, 128, np.uint8))  # no face to find
    (data / "images" / "900000.json").write_bytes((data / "images" / "000002.json").read_bytes())
    (data / "splits" / "val.txt").write_text("\n".join(stems + ["900000"]) + "\n")
    opts = OPTS + ["DATA.ROOT", str(data), "DATA.TEST_SPLIT", "splits/val.txt", "DATA.ALIGN", "detector",
                   "DATA.DETECTIONS_CACHE", str(tmp_path / "cache")]
    cfg = load_config(CFG, opts)
    run = evaluate_weights(cfg, tiny_params, flips=(False, True), baseline=False)
    pred = Predictor.from_config(CFG, tiny_params, opts=opts, detector="yunet")
    samples = build_samples(cfg, "test")
    for flip in (False, True):
        metrics, nmes, _ = evaluate_predictor(pred, samples, run.scheme, flip=flip)
        ev_metrics, ev_nmes = run.runs[flip][0], run.runs[flip][1]
        assert metrics["detector_miss_names"] == ev_metrics["detector_miss_names"] == ["900000"]
        assert np.abs(100 * nmes - 100 * ev_nmes).max() < 0.01, (nmes, ev_nmes)
        assert abs(100 * metrics["nme"] - 100 * ev_metrics["nme"]) < 0.01
