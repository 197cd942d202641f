"""AlignedFaceDataset on 10 real Datatang faces."""
import numpy as np
import pytest

mx = pytest.importorskip("mxnet")

from lotr_gluon.data.align import arcface_template, five_points_from_landmarks, invert_affine, \
    transform_points  # noqa: E402
from lotr_gluon.data.augment import Augmenter  # noqa: E402
from lotr_gluon.data.dataset import AlignedFaceDataset, mean_shape  # noqa: E402
from lotr_gluon.data.formats import Detection, load_datatang  # noqa: E402
from lotr_gluon.data.schemes import get_scheme  # noqa: E402

S = 96
#: at template_scale 1.0 the contour of these 10 faces leaves the crop (x or y < 0 or >= S); at 0.75 it stays in
SCALE = 0.75
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


@pytest.fixture(scope="module")
def samples(datatang_root):
    return load_datatang(datatang_root, "splits/val.txt")[:10]


@pytest.fixture(scope="module")
def dataset(samples):
    return AlignedFaceDataset(samples, get_scheme("datatang106"), S, template_scale=SCALE)


def test_items(dataset):
    assert len(dataset) == 10 and len(dataset.samples) == 10
    for i in range(len(dataset)):
        x, y = dataset[i]
        assert x.shape == (3, S, S) and x.dtype == np.float32
        assert y.shape == (106, 2) and y.dtype == np.float32
        assert (y >= 0).all() and (y < S).all()
        # normalisation is (rgb / 255 - mean) / std of the cached crop
        crop = dataset.crop(i)
        assert crop.shape == (S, S, 3) and crop.dtype == np.uint8
        rgb = (x.transpose(1, 2, 0) * STD + MEAN) * 255
        assert np.abs(rgb - crop).max() < 1e-2
        assert np.array_equal(dataset[i][0], x)  # no augmenter: deterministic


def test_affine_round_trip(dataset, samples):
    tpl = arcface_template(S, SCALE)
    for i, s in enumerate(samples):
        M = dataset.affine(i)
        assert M.shape == (2, 3) and M.dtype == np.float64
        back = transform_points(dataset[i][1], invert_affine(M))
        assert np.abs(back - s.landmarks).max() < 1e-3
        five = transform_points(five_points_from_landmarks(s.landmarks, dataset.scheme), M)
        assert np.linalg.norm(five - tpl, axis=1).mean() < 0.05 * S
    assert dataset.five_point_source == ["ground_truth"] * 10


def test_aligned_landmarks_and_mean_shape(dataset):
    a = dataset.aligned_landmarks()
    assert a.shape == (10, 106, 2) and a.dtype == np.float32
    assert np.array_equal(a[3], dataset[3][1])
    m = mean_shape(dataset)
    assert m.shape == (106, 2) and m.dtype == np.float32 and np.allclose(m, a.mean(0))


def test_template_scale_one_leaves_crop(samples):
    """At template_scale 1.0 (the ArcFace crop as is) the face contour leaves the crop on these faces."""
    a = AlignedFaceDataset(samples, get_scheme("datatang106"), S, cache=False).aligned_landmarks()
    assert ((a < 0) | (a >= S)).any()


def test_augmenter_only_when_given(samples, dataset):
    aug = Augmenter(flip_prob=0.0, rotation_deg=15.0, erasing_prob=0.0, pca_std=0.0, jitter=0.0, seed=0)
    ds = AlignedFaceDataset(samples, get_scheme("datatang106"), S, template_scale=SCALE, augmenter=aug)
    x, y = ds[0]
    x0, y0 = dataset[0]
    assert x.shape == x0.shape and y.shape == y0.shape
    assert not np.allclose(y, y0) and not np.allclose(x, x0)
    assert np.array_equal(ds.aligned_landmarks(), dataset.aligned_landmarks())  # ground truth unaugmented
    assert np.array_equal(ds.crop(0), dataset.crop(0))


def test_cache_off_detections_and_jitter(samples, dataset):
    scheme = get_scheme("datatang106")
    nocache = AlignedFaceDataset(samples[:2], scheme, S, template_scale=SCALE, cache=False)
    assert np.array_equal(nocache[1][0], dataset[1][0]) and np.array_equal(nocache[1][1], dataset[1][1])
    # a detection for one sample replaces its ground-truth five points
    five = five_points_from_landmarks(samples[0].landmarks, scheme) + 3.0
    det = {samples[0].name: Detection(five.astype(np.float32))}
    d = AlignedFaceDataset(samples[:2], scheme, S, template_scale=SCALE, detections=det, cache=False)
    assert d.five_point_source == ["detection", "ground_truth"]
    assert np.allclose(transform_points(five, d.affine(0)), transform_points(
        five_points_from_landmarks(samples[0].landmarks, scheme), dataset.affine(0)), atol=1e-6)
    assert np.allclose(d.affine(1), dataset.affine(1))
    # jitter: deterministic per seed, differs from the clean alignment, small
    j1 = AlignedFaceDataset(samples[:2], scheme, S, template_scale=SCALE, five_point_jitter=0.02, cache=False, seed=1)
    j2 = AlignedFaceDataset(samples[:2], scheme, S, template_scale=SCALE, five_point_jitter=0.02, cache=False, seed=1)
    assert np.array_equal(j1.affine(0), j2.affine(0)) and not np.allclose(j1.affine(0), dataset.affine(0))
    shift = np.abs(j1.aligned_landmarks() - dataset.aligned_landmarks()[:2]).mean()
    assert 0 < shift < 0.1 * S


def test_dataloader_batches(dataset):
    loader = mx.gluon.data.DataLoader(dataset, batch_size=4, shuffle=False, last_batch="keep")
    x, y = next(iter(loader))
    assert x.shape == (4, 3, S, S) and y.shape == (4, 106, 2)
    assert x.dtype == np.float32


def test_wrong_point_count(samples):
    with pytest.raises(ValueError):
        AlignedFaceDataset(samples[:1], get_scheme("wflw98"), S, cache=False)


def test_bench_input_tool_times_cache_off_and_on(datatang_root, tmp_path):
    """tools/bench_input.py: DATA.CACHE False and True give the same items and both get timed."""
    import importlib.util
    import json
    import os
    from lotr_gluon.build import build_dataset
    from lotr_gluon.config import load_config
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cfg_file = os.path.join(root, "experiments", "datatang", "lotr_m.yaml")
    base = ["DATA.ROOT", str(datatang_root), "DATA.MAX_SAMPLES", "6", "DATA.INPUT_SIZE", "64"]
    a = build_dataset(load_config(cfg_file, base + ["DATA.CACHE", "False"]), "val")
    b = build_dataset(load_config(cfg_file, base + ["DATA.CACHE", "True"]), "val")
    assert a._crops is None and b._crops is not None
    np.testing.assert_array_equal(a[3][0], b[3][0])
    spec = importlib.util.spec_from_file_location("bench_input", os.path.join(root, "tools", "bench_input.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "b.json"
    rows = mod.main(["--cfg", cfg_file, "--items", "4", "--train-steps", "1", "--json", str(out)] + base +
                    ["MODEL.BACKBONE.NAME", "mobilenetv2_0.25", "MODEL.BACKBONE.PRETRAINED", "False", "TRAIN.BATCH_SIZE", "2"])
    assert [r["cache"] for r in rows] == [False, True]
    for r in rows:
        assert r["faces"] == 6 and r["items"] == 4 and r["data_images_per_s"] > 0
        assert r["train_steps"] == 1 and r["train_images_per_s"] > 0
    assert json.load(open(out))["rows"][1]["cache"] is True
