"""Augmentation: flip convention, geometry following the pixels, switches, equality with mxnet's operators."""
import random

import numpy as np
import pytest

from lotr_gluon.data.augment import (IMAGENET_PCA_EIGVAL, IMAGENET_PCA_EIGVEC, Augmenter, AugmentParams,
                                     adjust_brightness, adjust_contrast, adjust_saturation, flip_image,
                                     flip_points, pca_lighting)
from lotr_gluon.data.schemes import get_scheme

OFF = dict(flip_prob=0.0, rotation_deg=0.0, scale_range=None, shift_frac=0.0, erasing_prob=0.0, pca_std=0.0,
           jitter=0.0)


def _rand_img(h=48, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _blob_image(pts, h, w, sigma=2.0):
    """One gaussian blob per point, point k in channel k (up to 3 points)."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.float64)
    for k, (x, y) in enumerate(pts):
        img[..., k] = 255 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))
    return np.rint(img).astype(np.uint8)


def _centroids(img):
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for k in range(3):
        m = img[..., k].astype(np.float64)
        m[m < 8] = 0
        out.append([(xx * m).sum() / m.sum(), (yy * m).sum() / m.sum()])
    return np.array(out)


def test_flip_twice_is_identity():
    perm = get_scheme("jd106").flip_permutation()
    pts = np.random.default_rng(0).uniform(0, 192, (106, 2)).astype(np.float32)
    once = flip_points(pts, 192, perm)
    assert not np.allclose(once, pts)
    assert np.allclose(flip_points(once, 192, perm), pts, atol=1e-4)
    img = _rand_img()
    assert np.array_equal(flip_image(flip_image(img)), img)
    # batches (B, N, 2)
    assert np.allclose(flip_points(np.stack([pts, pts]), 192, perm)[1], once)


def test_flip_convention():
    """x' = W - 1 - x: pixel column c goes to W - 1 - c, so integer points stay on their pixels."""
    assert np.allclose(flip_points([[0.0, 3.0], [9.0, 4.0], [4.5, 1.0]], 10), [[9.0, 3.0], [0.0, 4.0], [4.5, 1.0]])


def test_flipped_points_follow_pixels():
    h, w = 40, 50
    pts = np.array([[3, 5], [20, 30], [47, 12], [10, 38]], np.float32)
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]], np.uint8)
    img = np.zeros((h, w, 3), np.uint8)
    for (x, y), c in zip(pts.astype(int), colours):
        img[y, x] = c
    perm = np.array([2, 1, 0, 3])  # points 0 and 2 swap names under the mirror
    fi, fp = flip_image(img), flip_points(pts, w, perm)
    for i, (x, y) in enumerate(fp.astype(int)):
        assert np.array_equal(fi[y, x], colours[perm[i]])
    aug = Augmenter(**dict(OFF, flip_prob=1.0), flip_perm=perm, seed=0)
    ai, ap = aug(img, pts)
    assert np.array_equal(ai, fi) and np.allclose(ap, fp)


@pytest.mark.parametrize("kw", [dict(rotation_deg=30.0), dict(rotation_deg=20.0, flip_prob=1.0),
                                dict(scale_range=(0.8, 1.2), shift_frac=0.1),
                                dict(rotation_deg=15.0, scale_range=(0.9, 1.1), shift_frac=0.05, flip_prob=1.0)])
def test_geometry_moves_points_with_pixels(kw):
    h = w = 96
    pts = np.array([[30.0, 35.0], [66.0, 40.0], [48.0, 70.0]], np.float32)
    img = _blob_image(pts, h, w)
    perm = np.array([1, 0, 2])
    for seed in range(3):
        aug = Augmenter(**dict(OFF, **kw), flip_perm=perm, seed=seed)
        params = aug.sample(h, w)
        out, q = aug.apply(img, pts, params)
        assert out.shape == img.shape and q.dtype == np.float32
        if "rotation_deg" in kw:
            assert params.angle != 0.0
        c = _centroids(out)  # blob of channel k = original point k
        src = perm if params.flip else np.arange(3)
        # q[i] is the new position of original point src[i]
        for i in range(3):
            assert np.linalg.norm(q[i] - c[src[i]]) < 0.15, (kw, seed, i, q[i], c[src[i]])


def test_rotation_direction_and_centre():
    aug = Augmenter(**OFF)
    p = AugmentParams(angle=90.0)
    centre = np.array([[31.5, 31.5]], np.float32)  # (W-1)/2 of a 64 crop
    _, q = aug.apply(np.zeros((64, 64, 3), np.uint8), np.vstack([centre, [[41.5, 31.5]]]), p)
    assert np.allclose(q[0], centre[0], atol=1e-4)  # the centre is fixed
    assert np.allclose(q[1], [31.5, 21.5], atol=1e-4)  # +90 deg: right of centre goes up on screen


@pytest.mark.parametrize("op", ["flip_prob", "rotation_deg", "scale_range", "shift_frac", "erasing_prob",
                                "pca_std", "jitter"])
def test_each_op_switches_off(op):
    img, pts = _rand_img(), np.random.default_rng(1).uniform(0, 48, (5, 2)).astype(np.float32)
    on = {"flip_prob": 1.0, "rotation_deg": 15.0, "scale_range": (0.7, 0.9), "shift_frac": 0.2,
          "erasing_prob": 1.0, "pca_std": 0.5, "jitter": 0.4}
    perm = np.arange(5)
    # all off -> identical; this op alone on -> changed (points only for geometric ops)
    out, q = Augmenter(**OFF, flip_perm=perm, seed=0)(img, pts)
    assert np.array_equal(out, img) and np.array_equal(q, pts)
    out, q = Augmenter(**dict(OFF, **{op: on[op]}), flip_perm=perm, seed=0)(img, pts)
    assert not np.array_equal(out, img)
    geometric = op in ("flip_prob", "rotation_deg", "scale_range", "shift_frac")
    assert np.array_equal(q, pts) != geometric


def test_all_off_returns_input():
    img, pts = _rand_img(), np.array([[1.5, 2.5], [30.0, 40.0]], np.float32)
    aug = Augmenter(flip_prob=0.0, rotation_deg=0.0, scale_range=(1.0, 1.0), shift_frac=0.0, erasing_prob=0.0,
                    pca_std=0.0, jitter=None, seed=1)
    for _ in range(3):
        out, q = aug(img, pts)
        assert np.array_equal(out, img) and np.array_equal(q, pts)


def test_seed_reproducible_and_random():
    img, pts = _rand_img(), np.array([[10.0, 10.0], [40.0, 30.0]], np.float32)
    kw = dict(flip_prob=0.5, flip_perm=[1, 0], seed=7)
    a = [Augmenter(**kw)(img, pts) for _ in range(2)]
    assert np.array_equal(a[0][0], a[1][0]) and np.array_equal(a[0][1], a[1][1])
    aug = Augmenter(**kw)
    outs = [aug(img, pts)[1] for _ in range(4)]
    assert any(not np.array_equal(outs[0], o) for o in outs[1:])


def test_bad_arguments():
    with pytest.raises(ValueError):
        Augmenter(flip_prob=0.5)  # no permutation
    with pytest.raises(ValueError):
        Augmenter(flip_perm=[1, 2, 0])  # not an involution
    with pytest.raises(ValueError):
        Augmenter(**dict(OFF, jitter=1.5))
    with pytest.raises(ValueError):
        Augmenter(**dict(OFF, scale_range=(1.2, 0.8)))
    with pytest.raises(ValueError):
        Augmenter(**OFF)(np.zeros((8, 8, 3), np.float32), np.zeros((1, 2)))


def test_random_erasing_region():
    img, pts = _rand_img(64, 64), np.array([[5.0, 6.0]], np.float32)
    aug = Augmenter(**dict(OFF, erasing_prob=1.0), seed=3)
    for _ in range(5):
        p = aug.sample(64, 64)
        (x0, y0, w, h), fill = p.erase
        area = w * h / 64.0 ** 2
        assert 0.02 * 0.8 <= area <= 0.4 * 1.2 and 0 <= x0 and x0 + w <= 64 and y0 + h <= 64
        out, q = aug.apply(img, pts, p)
        assert np.array_equal(out[y0:y0 + h, x0:x0 + w], fill)
        mask = np.ones((64, 64), bool)
        mask[y0:y0 + h, x0:x0 + w] = False
        assert np.array_equal(out[mask], img[mask]) and np.array_equal(q, pts)


def test_photometric_ops_equal_mxnet():
    mx = pytest.importorskip("mxnet")
    img = _rand_img(16, 20).astype(np.float32)
    for cls, fn, s in ((mx.image.BrightnessJitterAug, adjust_brightness, 0.4),
                       (mx.image.ContrastJitterAug, adjust_contrast, 0.4),
                       (mx.image.SaturationJitterAug, adjust_saturation, 0.4)):
        random.seed(11)
        ref = cls(s)(mx.nd.array(img)).asnumpy()
        random.seed(11)
        alpha = 1.0 + random.uniform(-s, s)
        assert np.allclose(fn(img, alpha), ref, atol=1e-3), cls.__name__
    np.random.seed(5)
    ref = mx.image.LightingAug(0.05, IMAGENET_PCA_EIGVAL, IMAGENET_PCA_EIGVEC)(mx.nd.array(img)).asnumpy()
    np.random.seed(5)
    alpha = np.random.normal(0, 0.05, size=(3,))
    assert np.allclose(pca_lighting(img, alpha), ref, atol=1e-3)


def test_jitter_and_lighting_stay_uint8():
    img = _rand_img()
    out, _ = Augmenter(**dict(OFF, jitter=0.4, pca_std=0.5), seed=0)(img, np.zeros((1, 2), np.float32))
    assert out.dtype == np.uint8 and out.shape == img.shape


# --------------------------------------------------------------------------- Earp Sec. 5.1 tricks 1 and 3

class _StubFaces:
    """Three 8x10 'faces' with 3 landmarks each; crop(i) is constant i*10 plus a column ramp."""

    input_size = 10

    def __init__(self, augmenter=None):
        self.augmenter = augmenter
        self.pts = np.array([[[1.0, 2.0], [5.0, 3.0], [8.5, 4.0]],
                             [[0.0, 0.0], [4.5, 7.0], [9.0, 1.0]],
                             [[2.0, 5.0], [3.0, 3.0], [7.0, 6.0]]], np.float32)

    def __len__(self):
        return 3

    def crop(self, i):
        img = np.zeros((8, 10, 3), np.uint8)
        img[:] = (i * 10 + np.arange(10)).astype(np.uint8)[None, :, None]
        return img

    def landmarks(self, i):
        return self.pts[i].copy()

    def aligned_landmarks(self):
        return self.pts.copy()

    def normalize(self, crop):
        return np.asarray(crop, np.float32).transpose(2, 0, 1)


def test_mirror_extended_set_doubles_with_mirrored_copies():
    """Earp Sec. 5.1 trick 1: the training set plus the horizontal flip of *every* image and its landmarks."""
    from lotr_gluon.data.augment import MirrorExtendedDataset
    perm = [2, 1, 0]  # points 0 and 2 are a left/right pair, point 1 on the axis
    ds = MirrorExtendedDataset(_StubFaces(), perm)
    assert len(ds) == 6
    for i in range(3):
        img, pts = ds[i]
        np.testing.assert_array_equal(img[0], _StubFaces().crop(i)[..., 0])   # originals unchanged
        np.testing.assert_array_equal(pts, _StubFaces().pts[i])
        mimg, mpts = ds[3 + i]
        # mirrored pixels: column c of the copy is column 9 - c of the original (width 10)
        np.testing.assert_array_equal(mimg[0, 0], i * 10 + np.arange(10)[::-1])
        # mirrored points, hand-computed: x -> 9 - x, then order permuted (point 0 <-> point 2)
        p = _StubFaces().pts[i]
        expect = np.array([[9 - p[2, 0], p[2, 1]], [9 - p[1, 0], p[1, 1]], [9 - p[0, 0], p[0, 1]]], np.float32)
        np.testing.assert_array_equal(mpts, expect)
    np.testing.assert_array_equal(ds[3][1], [[0.5, 4.0], [4.0, 3.0], [8.0, 2.0]])   # face 0 by hand
    allp = ds.aligned_landmarks()
    assert allp.shape == (6, 3, 2)
    np.testing.assert_array_equal(allp[4], ds[4][1])
    assert ds.input_size == 10   # other attributes come from the wrapped set
    with pytest.raises(IndexError):
        ds[6]
    with pytest.raises(ValueError, match="involution"):
        MirrorExtendedDataset(_StubFaces(), [1, 2, 0])
    with pytest.raises(ValueError, match="flip_prob 0"):
        MirrorExtendedDataset(_StubFaces(Augmenter(flip_prob=0.5, flip_perm=perm)), perm)


def test_mirror_extended_set_from_config(datatang_root):
    """AUG.FLIP_MODE extend (the Earp final configs): 2 x the faces, no random flip left in the augmenter;
    the baseline configs (Earp Tables 1-4) keep one copy and flip nothing."""
    import os
    from lotr_gluon.build import build_dataset
    from lotr_gluon.config import load_config
    from lotr_gluon.data.augment import MirrorExtendedDataset
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    opts = ["DATA.MAX_SAMPLES", "4", "DATA.ROOT", str(datatang_root), "DATA.INPUT_SIZE", "64",
            "MODEL.BACKBONE.PRETRAINED", "False"]
    cfg = load_config(os.path.join(root, "experiments/datatang/earp_final_mnv2_1.0_sdd.yaml"), opts)
    ds = build_dataset(cfg, "train", train=True)
    assert isinstance(ds, MirrorExtendedDataset) and len(ds) == 8 and ds.augmenter.flip_prob == 0.0
    assert ds.augmenter.erasing_mode == "aid" and ds.augmenter.rotation_deg == 15.0
    perm = ds.scheme.flip_permutation()
    raw = ds.dataset
    np.testing.assert_array_equal(ds.item(5)[0], raw.crop(1)[:, ::-1])
    np.testing.assert_allclose(ds.item(5)[1], flip_points(raw.landmarks(1), 64, perm))
    base = load_config(os.path.join(root, "experiments/datatang/earp_baseline_mnv2_0.25.yaml"), opts)
    bds = build_dataset(base, "train", train=True)
    assert not isinstance(bds, MirrorExtendedDataset) and len(bds) == 4
    a = bds.augmenter
    assert (a.flip_prob, a.rotation_deg, a.erasing_prob, a.erasing_mode) == (0.0, 0.0, 0.0, "zhong")
    assert (a.pca_std, a.jitter) == (0.05, (0.4, 0.4, 0.4))


def test_aid_erasing_parameters_and_masks():
    """Earp Sec. 5.1 trick 3, the information dropping of Huang et al. (AID): parameters of the authors' public
    code, cutout ellipses and hide-and-seek cells checked pixel by pixel."""
    from lotr_gluon.data.augment import aid_cutout_mask, aid_hide_mask
    a = Augmenter(**dict(OFF, erasing_mode="aid"))
    assert (a.aid_cutout_prob, a.aid_radius_factor, a.aid_num_patch) == (0.3, 0.1, 1)
    assert (a.aid_has_prob, a.aid_has_hide_prob, a.aid_has_grids) == (0.3, 0.3, (0, 16, 32, 44))
    from lotr_gluon.config import load_config
    d = load_config(None).AUG
    assert (d.AID_CUTOUT_PROB, d.AID_RADIUS_FACTOR, d.AID_NUM_PATCH, d.AID_HAS_PROB, d.AID_HAS_HIDE_PROB,
            list(d.AID_HAS_GRIDS), d.ERASING_MODE, d.FLIP_MODE) == (0.3, 0.1, 1, 0.3, 0.3, [0, 16, 32, 44],
                                                                     "zhong", "random")
    # ellipse centre (4, 3), radii 2 (x) and 1 (y): the pixels with ((4-x)/2)^2 + (3-y)^2 <= 1
    m = aid_cutout_mask(6, 8, [(4.0, 3.0, 2.0, 1.0)])
    assert sorted(zip(*np.nonzero(m))) == [(2, 4), (3, 2), (3, 3), (3, 4), (3, 5), (3, 6), (4, 4)]
    hidden = np.array([[True, False], [False, True]])
    h = aid_hide_mask(6, 7, 4, hidden)
    assert h[:4, :4].all() and h[4:, 4:].all() and not h[:4, 4:].any() and not h[4:, :4].any()
    assert not aid_hide_mask(6, 7, 0, hidden).any()
    # sampling: radii factor * (1 + U[0,1)) * width, centres inside the crop, drawn with the cutout probability
    a = Augmenter(**dict(OFF, erasing_mode="aid", aid_cutout_prob=1.0, aid_has_prob=0.0, seed=3))
    for _ in range(20):
        p = a.sample(48, 64)
        (cx, cy, rx, ry), = p.aid_cutout
        assert 0 <= cx < 64 and 0 <= cy < 48 and 6.4 <= rx < 12.8 and 6.4 <= ry < 12.8 and p.aid_hide is None
        img, _ = a.apply(np.full((48, 64, 3), 200, np.uint8), np.zeros((1, 2)), p)
        np.testing.assert_array_equal(img[..., 0] == 0, aid_cutout_mask(48, 64, p.aid_cutout))
    a = Augmenter(**dict(OFF, erasing_mode="aid", aid_cutout_prob=0.0, aid_has_prob=1.0, aid_has_grids=(16,),
                         aid_has_hide_prob=0.5, seed=4))
    p = a.sample(48, 64)
    assert p.aid_cutout is None and p.aid_hide[0] == 16 and p.aid_hide[1].shape == (3, 4)
    img, _ = a.apply(np.full((48, 64, 3), 200, np.uint8), np.zeros((1, 2)), p)
    np.testing.assert_array_equal(img[..., 1] == 0, np.kron(p.aid_hide[1], np.ones((16, 16), bool)))
    # rates: cutout and hide-and-seek each on about 30 % of the draws with the defaults
    a = Augmenter(**dict(OFF, erasing_mode="aid", seed=5))
    draws = [a.sample(48, 64) for _ in range(2000)]
    assert 0.26 < np.mean([d.aid_cutout is not None for d in draws]) < 0.34
    assert 0.26 * 0.75 < np.mean([d.aid_hide is not None for d in draws]) < 0.34 * 0.75   # grid 0: no hiding
    assert all(d.erase is None for d in draws)   # Zhong's rectangle is not drawn in 'aid' mode
    with pytest.raises(ValueError, match="erasing_mode"):
        Augmenter(**dict(OFF, erasing_mode="cutout"))
    with pytest.raises(ValueError, match="aid_has_hide_prob"):
        Augmenter(**dict(OFF, erasing_mode="aid", aid_has_hide_prob=1.5))


def test_align_noise_draws_the_given_stds_and_round_trips_through_the_alignment_parameters():
    from lotr_gluon.data.align import similarity_parameters
    std = (0.05, 4.0, 0.012)
    aug = Augmenter(**dict(OFF, align_noise_std=std), seed=3)
    size = 192
    draws = np.array([similarity_parameters(aug.geometric_matrix(aug.sample(size, size), size, size), size)
                      for _ in range(4000)])
    # (log scale, degrees, shift x, shift y): zero-mean gaussian noise of the given stds, shift per axis
    assert np.allclose(draws.mean(0), 0.0, atol=[0.004, 0.3, 0.001, 0.001])
    assert np.allclose(draws.std(0), [std[0], std[1], std[2], std[2]], rtol=0.05)
    # similarity_parameters inverts geometric_matrix: a hand-set draw comes back exactly
    p = AugmentParams(angle=7.5, scale=1.1, shift=(3.0, -4.8))
    got = similarity_parameters(aug.geometric_matrix(p, size, size), size)
    assert np.allclose(got, [np.log(1.1), 7.5, 3.0 / size, -4.8 / size], atol=1e-12)


def test_align_noise_off_leaves_the_draws_as_before():
    base = dict(OFF, rotation_deg=5.0, jitter=0.4, pca_std=0.05, erasing_prob=0.5)
    a, b = Augmenter(**base, seed=11), Augmenter(**dict(base, align_noise_std=(0, 0, 0)), seed=11)
    for _ in range(20):
        pa, pb = a.sample(64, 64), b.sample(64, 64)
        assert (pa.angle, pa.scale, pa.shift, pa.jitter) == (pb.angle, pb.scale, pb.shift, pb.jitter)
    for bad in [(0.1, 1.0), (-0.1, 1.0, 0.0), (float("nan"), 0, 0)]:
        with pytest.raises(ValueError, match="align_noise_std"):
            Augmenter(**dict(OFF, align_noise_std=bad))
