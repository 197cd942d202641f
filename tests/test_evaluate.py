"""Value tests of the evaluation path (lotr_gluon/evaluate.py) on real Datatang faces, with stub networks.

The stubs know every test image: for an aligned crop they return its ground-truth crop points (plus a chosen
offset), and for the mirrored crop (the flip test's second pass) the mirrored points, as a perfect network
would. Everything between the network and the metrics is then checked against hand values:

* an exact network scores NME 0 with and without flip, and its predictions land on the original-image
  ground truth (to float32 rounding);
* a network off by a crop-pixel offset ``d`` scores, per face, ``|d| / s / sqrt(w h)``: ``s`` the scale of the
  face's image -> crop similarity, ``w, h`` its ground-truth box in the original image (the JD/Datatang
  normaliser); with flip, the offsets of the two passes average;
* a heatmap stub (Gaussian targets of the ground truth, LOTR eq. 1) goes through the codec: DARK and vector
  give ~0, argmax at most half a heatmap pixel per axis.

A flip test that ignored the scheme's point permutation, or a +2 px slip in the mapping back to the original
image, fails ``test_exact_network_scores_zero`` and ``test_offset_network_scores_hand_nme``.
"""
import dataclasses

import mxnet as mx
import numpy as np
import pytest

from heatmap_baseline import HeatmapCodec
from lotr_gluon.build import PostProcessor
from lotr_gluon.data.augment import flip_points
from lotr_gluon.data.dataset import AlignedFaceDataset
from lotr_gluon.data.formats import load_datatang
from lotr_gluon.data.schemes import get_scheme
from lotr_gluon.evaluate import (evaluate_dataset, ground_truth, mean_shape_baseline, predict, shape_spread,
                                 subset_masks, to_original)

SIZE = 128         # crop side, pixels
TEMPLATE = 0.6     # every landmark of these faces >= 4 heatmap px inside a 32 x 32 heatmap
NUM_FACES = 5


class OracleNet:
    """Stub network: the ground-truth crop points of each known crop (+ ``offset``), and for its mirror the
    mirrored points (``flip_points`` with the scheme's permutation) of ground truth + ``flip_offset``.

    ``heatmap_codec``: return Gaussian heatmaps of those points instead (a heatmap model, evaluated with the
    codec's post-processor, :func:`_post`). ``aux_outputs``: return ``(garbage, output)`` as LOTR with its
    auxiliary head does.
    """

    def __init__(self, dataset, offset=(0.0, 0.0), flip_offset=None, heatmap_codec=None, aux_outputs=False):
        perm = dataset.scheme.flip_permutation()
        flip_offset = offset if flip_offset is None else flip_offset
        self.table = {}
        for i in range(len(dataset)):
            img, pts = dataset[i]
            self.table[img.tobytes()] = pts + np.float32(offset)
            mirrored = np.ascontiguousarray(img[:, :, ::-1])
            self.table[mirrored.tobytes()] = flip_points(pts + np.float32(flip_offset), img.shape[2], perm)
        self.calls = 0
        self.aux_outputs = aux_outputs
        self.codec = heatmap_codec

    def __call__(self, x):
        self.calls += 1
        pts = np.stack([self.table[a.tobytes()] for a in x.asnumpy()])
        out = pts if self.codec is None else self.codec.encode(pts)
        out = mx.nd.array(out)
        if self.aux_outputs:
            return mx.nd.ones((3,)) * 1e6, out
        return out


def _post(scheme, codec):
    """The post-processor of a heatmap model with ``codec`` (lotr_gluon.build.build_postprocessor's)."""
    return PostProcessor(SIZE, scheme.flip_permutation(), codec)


@pytest.fixture(scope="module")
def scheme():
    return get_scheme("datatang106")


@pytest.fixture(scope="module")
def samples(datatang_root):
    return load_datatang(datatang_root, "splits/val.txt")[:NUM_FACES]


@pytest.fixture(scope="module")
def dataset(samples, scheme):
    return AlignedFaceDataset(samples, scheme, SIZE, template_scale=TEMPLATE)


def _hand_nme(dataset, offset):
    """Per-face NME of a crop-pixel offset: |d| / s / sqrt(w h), independent of the evaluation code."""
    out = []
    for i, s in enumerate(dataset.samples):
        M = dataset.affine(i)
        scale = np.sqrt(abs(np.linalg.det(M[:, :2])))
        w, h = s.landmarks.max(0) - s.landmarks.min(0)
        out.append(np.hypot(*offset) / scale / np.sqrt(w * h))
    return np.array(out)


def test_fixture_faces_are_inside_the_heatmap(dataset):
    pts = dataset.aligned_landmarks()
    hm = (pts + 0.5) / 4 - 0.5
    assert hm.min() > 4 and hm.max() < 31 - 4


def test_flip_permutation_is_a_nontrivial_involution(scheme):
    perm = np.asarray(scheme.flip_permutation())
    assert sorted(perm.tolist()) == list(range(106))
    assert (perm[perm] == np.arange(106)).all() and (perm != np.arange(106)).sum() > 80


@pytest.mark.parametrize("flip", [False, True])
def test_exact_network_scores_zero(dataset, scheme, flip):
    net = OracleNet(dataset)
    metrics, nmes, preds, preds_crop = evaluate_dataset(net, dataset, scheme, batch_size=2, flip=flip)
    assert net.calls == (6 if flip else 3)  # 5 faces in batches of 2, twice with flip
    np.testing.assert_allclose(preds_crop, dataset.aligned_landmarks(), atol=1e-4)
    gt = np.stack([s.landmarks for s in dataset.samples])
    np.testing.assert_allclose(preds, gt, atol=2e-3)  # original-image pixels
    assert nmes.shape == (NUM_FACES,) and nmes.max() < 1e-5
    assert metrics["nme"] < 1e-5 and metrics["fr"] == 0.0 and metrics["auc"] > 1 - 1e-4
    assert metrics["num_images"] == NUM_FACES and metrics["flip"] is flip and metrics["threshold"] == 0.08
    assert "decoder" not in metrics
    # an exact network varies from face to face exactly as the ground truth does
    assert metrics["pred_spread_px"] == pytest.approx(metrics["gt_spread_px"], abs=1e-4)
    assert metrics["gt_spread_px"] > 0.5


@pytest.mark.parametrize("flip", [False, True])
def test_offset_network_scores_hand_nme(dataset, scheme, flip):
    d1, d2 = (3.0, -1.0), (-1.0, 3.0)
    net = OracleNet(dataset, offset=d1, flip_offset=d2)
    metrics, nmes, preds, preds_crop = evaluate_dataset(net, dataset, scheme, batch_size=4, flip=flip)
    d = (1.0, 1.0) if flip else d1  # flip test: the average of the two passes
    np.testing.assert_allclose(preds_crop, dataset.aligned_landmarks() + np.float32(d), atol=1e-4)
    expected = _hand_nme(dataset, d)
    np.testing.assert_allclose(nmes, expected, rtol=1e-4)
    assert metrics["nme"] == pytest.approx(expected.mean(), rel=1e-4)
    assert 0.01 < expected.min() and expected.max() < 0.1  # a real, small error (faces ~60 crop px)
    # back in the image: gt + A^-1 d, with A the crop affine's linear part
    for i, s in enumerate(dataset.samples):
        A = dataset.affine(i)[:, :2]
        np.testing.assert_allclose(preds[i], s.landmarks + np.linalg.solve(A, d), atol=2e-3)
    # a constant crop offset does not change the spread across faces
    assert metrics["pred_spread_px"] == pytest.approx(metrics["gt_spread_px"], abs=1e-4)


@pytest.mark.parametrize("flip", [False, True])
def test_heatmap_network_through_the_codec(dataset, scheme, flip):
    codec = HeatmapCodec(SIZE, SIZE // 4, sigma=1.5, decoder="dark")
    net = OracleNet(dataset, heatmap_codec=codec)
    gt_crop = dataset.aligned_landmarks()
    for decoder in ("dark", "vector", None, "argmax", "argmax_shift"):
        metrics, nmes, _, preds_crop = evaluate_dataset(net, dataset, scheme, flip=flip, decoder=decoder,
                                                        post=_post(scheme, codec))
        err = np.abs(preds_crop - gt_crop)  # crop pixels, per axis
        assert metrics["decoder"] == (decoder or "dark")
        if decoder in ("dark", "vector", None):
            assert err.max() < 0.02 and metrics["nme"] < 1e-4, (decoder, err.max())
        else:  # at most half (argmax) / a quarter (shift) of a heatmap pixel per axis, of stride 4
            bound = 2.0 if decoder == "argmax" else 1.0
            assert err.max() <= bound + 1e-3 and err.mean() > 0.1, (decoder, err.max())
            box = np.sqrt(np.prod(gt_crop.max(1) - gt_crop.min(1), axis=1))  # similarity-invariant NME bound
            assert (nmes <= np.sqrt(2) * bound / box + 1e-6).all() and metrics["nme"] > 1e-3


def test_aux_outputs_use_the_last_output(dataset, scheme):
    net = OracleNet(dataset, offset=(0.5, 0.5), aux_outputs=True)
    preds_crop, _ = predict(net, dataset, batch_size=8)
    np.testing.assert_allclose(preds_crop, dataset.aligned_landmarks() + 0.5, atol=1e-4)


def test_predict_arguments_and_timings(dataset):
    net = OracleNet(dataset)
    with pytest.raises(ValueError, match="permutation"):
        predict(net, dataset, flip=True)
    timings = {}
    preds, seconds = predict(net, dataset, batch_size=3, timings=timings)
    assert preds.shape == (NUM_FACES, 106, 2) and preds.dtype == np.float32
    assert set(timings) == {"network_s", "decode_s"}
    assert timings["decode_s"] == 0.0  # a regression network has nothing to decode
    assert seconds == pytest.approx(timings["network_s"])


def test_to_original_and_ground_truth(dataset):
    crop = dataset.aligned_landmarks()
    gt = ground_truth(dataset)
    assert gt.dtype == np.float32 and gt.shape == (NUM_FACES, 106, 2)
    np.testing.assert_allclose(to_original(dataset, crop), gt, atol=2e-3)
    # one crop pixel to the right is 1/s image pixels along the crop's x axis
    moved = to_original(dataset, crop + np.float32([1.0, 0.0]))
    for i in range(NUM_FACES):
        A = dataset.affine(i)[:, :2]
        step = moved[i] - to_original(dataset, crop)[i]
        np.testing.assert_allclose(step, np.broadcast_to(np.linalg.inv(A)[:, 0], step.shape), atol=1e-4)


def test_mean_shape_baseline_values(dataset, scheme):
    crop = dataset.aligned_landmarks()
    metrics, nmes = mean_shape_baseline(crop[2], dataset, scheme)
    assert nmes[2] < 1e-5 and (np.delete(nmes, 2) > 1e-3).all()
    # face 2's shape on every face, scored independently: error of crop[2] - crop[i] in each image
    for i, s in enumerate(dataset.samples):
        A = dataset.affine(i)[:, :2]
        err = np.linalg.norm((crop[2] - crop[i]) @ np.linalg.inv(A).T, axis=1).mean()
        w, h = s.landmarks.max(0) - s.landmarks.min(0)
        assert nmes[i] == pytest.approx(err / np.sqrt(w * h), rel=1e-3, abs=1e-6)
    assert metrics["nme"] == pytest.approx(nmes.mean()) and metrics["flip"] is False
    assert metrics["num_images"] == NUM_FACES


def test_subsets_are_scored_on_their_faces(samples, scheme):
    tagged = [dataclasses.replace(s, attributes={"pose": "1" if i in (1, 3) else "0"})
              for i, s in enumerate(samples)]
    sch = dataclasses.replace(scheme, subsets=("pose", "blur"))
    ds = AlignedFaceDataset(tagged, sch, SIZE, template_scale=TEMPLATE)
    masks = subset_masks(ds, sch.subsets)
    assert list(masks) == ["pose"]  # no face has blur: no empty subset
    np.testing.assert_array_equal(masks["pose"], [False, True, False, True, False])
    net = OracleNet(ds, offset=(2.0, 0.0))
    metrics, nmes, _, _ = evaluate_dataset(net, ds, sch)
    assert metrics["flip"] is False and net.calls == 1  # no flip test by default
    assert metrics["subsets"]["pose"]["num_images"] == 2
    assert metrics["subsets"]["pose"]["nme"] == pytest.approx((nmes[1] + nmes[3]) / 2)
    assert subset_masks(ds, None) == {}


def test_shape_spread_hand_values():
    pts = np.array([[[0.0, 0.0], [1.0, 1.0]], [[2.0, 4.0], [1.0, 1.0]]])
    # std across the 2 faces: point 0 x 1, y 2; point 1 0, 0 -> mean 0.75
    assert shape_spread(pts) == pytest.approx(0.75)
    assert shape_spread(pts[:1]) == 0.0
    assert shape_spread(pts + 10.0) == pytest.approx(0.75)


@pytest.mark.parametrize("flip", [False, True])
def test_timings_on_a_fake_clock(dataset, scheme, flip, monkeypatch):
    """Timing bookkeeping on a clock that only the stub moves: 10 ms per network call, 1 ms per decoding.
    5 faces in batches of 2: 3 calls (6 with flip), so network 30 (60) ms, decoding 3 (6) ms in all."""
    import types
    import lotr_gluon.evaluate as ev
    clock = [0.0]

    class TimedNet(OracleNet):
        def __call__(self, x):
            clock[0] += 0.010
            return super().__call__(x)

    class TimedCodec(HeatmapCodec):
        def decode(self, heatmaps, method=None):
            clock[0] += 0.001
            return super().decode(heatmaps, method)

    monkeypatch.setattr(ev, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    codec = TimedCodec(SIZE, SIZE // 4, sigma=1.5, decoder="argmax")
    calls = 6 if flip else 3
    metrics, _, _, _ = evaluate_dataset(TimedNet(dataset, heatmap_codec=codec), dataset, scheme, batch_size=2,
                                        flip=flip, post=_post(scheme, codec))
    assert metrics["network_ms_per_image"] == pytest.approx(10.0 * calls / NUM_FACES)
    assert metrics["decode_ms_per_image"] == pytest.approx(1.0 * calls / NUM_FACES)
    assert metrics["seconds_per_image"] == pytest.approx(0.011 * calls / NUM_FACES)
    # a regression network: no decoding time
    metrics, _, _, _ = evaluate_dataset(TimedNet(dataset), dataset, scheme, batch_size=2, flip=flip)
    assert metrics["network_ms_per_image"] == pytest.approx(10.0 * calls / NUM_FACES)
    assert metrics["decode_ms_per_image"] == 0.0
    assert metrics["seconds_per_image"] == pytest.approx(0.010 * calls / NUM_FACES)


def test_inter_ocular_scheme_uses_its_indices(dataset, scheme):
    """A scheme normalised by the distance between two of its points (WFLW, 300W): per face
    |d| / s / |gt_a - gt_b| in the original image; here one point of each eye group of Datatang-106's five
    alignment points (59, 69)."""
    a, b = scheme.five_points[0][0], scheme.five_points[1][0]
    sch = dataclasses.replace(scheme, norm="inter_ocular", norm_indices=(a, b))
    d = (3.0, -1.0)
    metrics, nmes, _, _ = evaluate_dataset(OracleNet(dataset, offset=d), dataset, sch)
    expected = [np.hypot(*d) / np.sqrt(abs(np.linalg.det(dataset.affine(i)[:, :2])))
                / np.linalg.norm(s.landmarks[a] - s.landmarks[b]) for i, s in enumerate(dataset.samples)]
    np.testing.assert_allclose(nmes, expected, rtol=1e-4)
    assert metrics["norm"] == "inter_ocular"
    base, base_nmes = mean_shape_baseline(dataset.aligned_landmarks()[0], dataset, sch)
    assert base["norm"] == "inter_ocular" and base_nmes[0] < 1e-5
