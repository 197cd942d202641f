"""Tests for lotr_gluon.metrics against hand-computed values."""
import json
import math

import numpy as np
import pytest

from lotr_gluon import metrics as M

# 3-point example: bbox 4 x 3 px, box normaliser sqrt(12); point errors 5, 0, 1 px
GT3 = np.array([[[0.0, 0.0], [4.0, 0.0], [0.0, 3.0]]])
PRED3 = np.array([[[3.0, 4.0], [4.0, 0.0], [0.0, 4.0]]])


def test_normaliser_box_and_inter_ocular():
    assert M.normaliser(GT3, "box") == pytest.approx([math.sqrt(12.0)])
    # inter-ocular between points 1 and 2: |(4,0)-(0,3)| = 5
    assert M.normaliser(GT3, "inter_ocular", (1, 2)) == pytest.approx([5.0])
    square = np.array([[[10, 10], [20, 10], [20, 20], [10, 20], [15, 15]]], dtype=float)
    assert M.normaliser(square, "box") == pytest.approx([10.0])
    # (N, 2) input is treated as one image
    assert M.normaliser(square[0], "box").shape == (1,)


def test_normaliser_errors():
    with pytest.raises(ValueError):
        M.normaliser(GT3, "inter_pupil")
    with pytest.raises(ValueError):
        M.normaliser(GT3, "inter_ocular")  # missing indices
    with pytest.raises(ValueError):
        M.normaliser(GT3, "inter_ocular", (0, 3))  # out of range
    with pytest.raises(ValueError):
        M.normaliser(np.zeros((1, 3, 2)), "box")  # degenerate box
    with pytest.raises(ValueError):
        M.normaliser(np.zeros((1, 3, 3)), "box")  # bad shape


def test_nme_per_image_hand_values():
    # mean error (5 + 0 + 1) / 3 = 2 px
    assert M.nme_per_image(PRED3, GT3, "box") == pytest.approx([2.0 / math.sqrt(12.0)])  # 0.57735
    assert M.nme_per_image(PRED3, GT3, "inter_ocular", (1, 2)) == pytest.approx([0.4])
    # two images, second perfect
    pred = np.concatenate([PRED3, GT3 * 2])
    gt = np.concatenate([GT3, GT3 * 2])
    np.testing.assert_allclose(M.nme_per_image(pred, gt, "box"), [0.5773502692, 0.0])
    with pytest.raises(ValueError):
        M.nme_per_image(PRED3[:, :2], GT3, "box")


def test_ced():
    x, y = M.ced([0.015, 0.035], 0.1, num_bins=11)
    np.testing.assert_allclose(x, np.linspace(0, 0.1, 11))
    np.testing.assert_allclose(y, [0, 0, 0.5, 0.5, 1, 1, 1, 1, 1, 1, 1])
    x, y = M.ced([0.0, 0.2], 0.1)
    assert x.shape == y.shape == (1000,)
    assert y[0] == 0.5 and y[-1] == 0.5
    with pytest.raises(ValueError):
        M.ced([], 0.1)
    with pytest.raises(ValueError):
        M.ced([0.1], 0.0)
    with pytest.raises(ValueError):
        M.ced([0.1], 0.1, num_bins=1)


def test_auc_step_distribution():
    # contributions 1 - e/T clipped: 1, 0.5, 0, 0 -> 0.375
    nmes = [0.0, 0.05, 0.1, 0.2]
    assert M.auc(nmes, 0.1) == pytest.approx(0.375)
    assert M.auc([0.0, 0.0], 0.1) == 1.0
    assert M.auc([0.3], 0.1) == 0.0
    # matches trapezoidal integration of a fine CED
    x, y = M.ced(nmes, 0.1, num_bins=100001)
    assert np.trapz(y, x) / 0.1 == pytest.approx(0.375, abs=1e-4)
    rng = np.random.RandomState(0)
    r = rng.rand(50) * 0.15
    x, y = M.ced(r, 0.1, num_bins=200001)
    assert np.trapz(y, x) / 0.1 == pytest.approx(M.auc(r, 0.1), abs=1e-4)


def test_failure_rate_boundaries():
    assert M.failure_rate([0.1, 0.1000001, 0.05], 0.1) == pytest.approx(1.0 / 3.0)
    assert M.failure_rate([0.1, 0.1], 0.1) == 0.0  # equal is not a failure
    assert M.failure_rate([0.11, 0.5], 0.1) == 1.0
    with pytest.raises(ValueError):
        M.failure_rate([np.nan], 0.1)


def test_evaluate_with_subsets():
    gt = np.tile(GT3, (4, 1, 1))
    pred = gt.copy()
    # per-image errors: 0, 0.2, 0.4, 1.0 x d (shift every point by k * d in x)
    d = math.sqrt(12.0)
    for i, k in enumerate([0.0, 0.02, 0.06, 0.2]):
        pred[i, :, 0] += k * d
    res = M.evaluate(pred, gt, "box", None, 0.1, subsets={"a": [True, True, False, False],
                                                          "b": np.array([False, False, False, True]),
                                                          "none": np.zeros(4, bool)})
    assert res["num_images"] == 4 and res["threshold"] == 0.1
    assert res["nme"] == pytest.approx((0.0 + 0.02 + 0.06 + 0.2) / 4)  # 0.07
    assert res["fr"] == pytest.approx(0.25)
    assert res["auc"] == pytest.approx((1.0 + 0.8 + 0.4 + 0.0) / 4)  # 0.55
    assert res["subsets"]["a"] == pytest.approx({"nme": 0.01, "fr": 0.0, "auc": 0.9, "num_images": 2})
    assert res["subsets"]["b"] == pytest.approx({"nme": 0.2, "fr": 1.0, "auc": 0.0, "num_images": 1})
    assert res["subsets"]["none"]["num_images"] == 0 and math.isnan(res["subsets"]["none"]["nme"])
    json.dumps(res)  # plain Python types
    assert "subsets" not in M.evaluate(pred, gt, "inter_ocular", (1, 2), 0.08)
    with pytest.raises(ValueError):
        M.evaluate(pred, gt, "box", None, 0.1, subsets={"bad": [1, 0, 0, 0]})
    with pytest.raises(ValueError):
        M.evaluate(pred, gt, "box", None, 0.1, subsets={"bad": [True]})


def test_shape_spread_hand_computed():
    from lotr_gluon.evaluate import shape_spread
    same = np.tile(np.array([[[10.0, 20.0], [30.0, 40.0]]]), (5, 1, 1))
    assert shape_spread(same) == 0.0
    pts = np.array([[[0.0, 0.0], [0.0, 0.0]], [[2.0, 4.0], [6.0, 8.0]]])  # std over 2 faces = half the gap
    assert shape_spread(pts) == pytest.approx((1 + 2 + 3 + 4) / 4.0)
    assert shape_spread(pts[:1]) == 0.0


def test_error_messages_name_the_cause():
    """Each bad input is rejected by its own check, with a message naming the cause (not by a later numpy
    failure or another check that happens to fire)."""
    with pytest.raises(ValueError, match=r"^pred must have shape \(M, N, 2\) \(or \(N, 2\)\), got \(1, 3, 3\)$"):
        M.nme_per_image(np.zeros((1, 3, 3)), GT3, "box")
    with pytest.raises(ValueError, match=r"^gt must have shape \(M, N, 2\) \(or \(N, 2\)\), got \(3,\)$"):
        M.normaliser(np.zeros(3), "box")
    with pytest.raises(ValueError, match=r"^gt has no landmarks$"):
        M.normaliser(np.zeros((1, 0, 2)), "box")
    # one landmark is a valid point set; its box normaliser is what fails
    with pytest.raises(ValueError, match=r"^normaliser is zero or non-finite for image\(s\) \[0\]$"):
        M.normaliser(np.ones((1, 1, 2)), "box")
    with pytest.raises(ValueError, match=r"^normaliser is zero or non-finite for image\(s\) \[1, 2\]$"):
        M.normaliser(np.stack([GT3[0], np.zeros((3, 2)), np.full((3, 2), np.nan)]), "box")
    with pytest.raises(ValueError, match=r"^unknown norm 'inter_pupil'; valid: box, inter_ocular$"):
        M.normaliser(GT3, "inter_pupil")
    with pytest.raises(ValueError, match=r"^norm='inter_ocular' needs norm_indices=\(a, b\), e\.g\. \(60, 72\) for "
                                         r"WFLW-98 or \(36, 45\) for 300W-68$"):
        M.normaliser(GT3, "inter_ocular")
    with pytest.raises(ValueError, match=r"^norm_indices must be a pair of ints, got \(1, 2, 3\)$"):
        M.normaliser(GT3, "inter_ocular", (1, 2, 3))
    with pytest.raises(ValueError, match=r"^norm_indices must be a pair of ints, got \('a', 1\)$"):
        M.normaliser(GT3, "inter_ocular", ("a", 1))
    with pytest.raises(ValueError, match=r"^norm_indices \(0, 3\) out of range for 3 landmarks$"):
        M.normaliser(GT3, "inter_ocular", (0, 3))
    with pytest.raises(ValueError, match=r"^norm_indices \(-4, 0\) out of range for 3 landmarks$"):
        M.normaliser(GT3, "inter_ocular", (-4, 0))
    assert M.normaliser(GT3, "inter_ocular", (-3, -1)) == pytest.approx([3.0])  # negative indices count back
    with pytest.raises(ValueError, match=r"^pred \(1, 2, 2\) and gt \(1, 3, 2\) shapes differ$"):
        M.nme_per_image(PRED3[:, :2], GT3, "box")
    with pytest.raises(ValueError, match=r"^nmes contains NaN$"):
        M.auc([0.1, np.nan], 0.1)
    with pytest.raises(ValueError, match=r"^nmes is empty$"):
        M.failure_rate([], 0.1)
    with pytest.raises(ValueError, match=r"^nmes is empty$"):
        M.auc([], 0.1)
    with pytest.raises(ValueError, match=r"^nmes is empty$"):
        M.ced([], 0.1)
    with pytest.raises(ValueError, match=r"^gt must have shape \(M, N, 2\) \(or \(N, 2\)\), got \(3,\)$"):
        M.nme_per_image(GT3, np.zeros(3), "box")
    for bad in (0.0, -0.1, np.inf, np.nan):
        with pytest.raises(ValueError, match=r"^threshold must be finite and > 0, got "):
            M.auc([0.1], bad)
    with pytest.raises(ValueError, match=r"^num_bins must be >= 2, got 1$"):
        M.ced([0.1], 0.1, num_bins=1)
    with pytest.raises(ValueError, match=r"^subset 'bad' mask must be boolean, got dtype int64$"):
        M.evaluate(GT3, GT3, "box", None, 0.1, subsets={"bad": np.array([1])})
    with pytest.raises(ValueError, match=r"^subset 'bad' mask has shape \(2,\), expected \(1,\)$"):
        M.evaluate(GT3, GT3, "box", None, 0.1, subsets={"bad": [True, False]})


def test_boundaries_and_keys():
    """Inter-ocular distance is a difference of two points (not a sum), any negative index down to -N is
    valid, a normaliser below 1 px is fine (normalised coordinates), the message lists at most 10 images,
    two CED bins are enough, and the summary keys are there for empty subsets too."""
    gt = GT3 + 10.0
    assert M.normaliser(gt, "inter_ocular", (1, 2)) == pytest.approx([5.0])
    assert M.normaliser(gt, "inter_ocular", (-3, -1)) == pytest.approx([3.0])
    assert M.normaliser(gt, "inter_ocular", (-1, -3)) == pytest.approx([3.0])
    with pytest.raises(ValueError, match="out of range"):
        M.normaliser(gt, "inter_ocular", (3, 0))
    assert M.normaliser(GT3 / 10.0, "box") == pytest.approx([math.sqrt(0.12)])
    with pytest.raises(ValueError, match=r"image\(s\) \[0, 1, 2, 3, 4, 5, 6, 7, 8, 9\]$"):
        M.normaliser(np.zeros((12, 3, 2)), "box")
    x, y = M.ced([0.05], 0.1, num_bins=2)
    np.testing.assert_allclose(x, [0.0, 0.1])
    np.testing.assert_allclose(y, [0.0, 1.0])
    res = M.evaluate(GT3, GT3, "box", None, 0.1, subsets={"none": [False]})
    assert res["norm"] == "box" and res["nme"] == 0.0 and res["auc"] == 1.0
    assert set(res["subsets"]["none"]) == {"nme", "fr", "auc", "num_images"}
    assert all(math.isnan(res["subsets"]["none"][k]) for k in ("nme", "fr", "auc"))
