"""Inference over a dataset, flip test, and evaluation in the original image's pixels.

Flip test (LOTR IV-C, Earp 5.1): the crop and its mirror are both predicted; the mirror's prediction is
mirrored back with the scheme's point permutation and the two are averaged.
"""
import time

import numpy as np
import mxnet as mx

from .build import (PostProcessor, build_dataset, build_scheme, contexts, deep_supervision, load_model, output_names,
                    uses_detections)
from .data.align import invert_affine, transform_points
from .data.dataset import mean_shape
from .metrics import evaluate as evaluate_metrics, nme_per_image

__all__ = ["predict", "evaluate_dataset", "evaluate_weights", "WeightsEvaluation", "mean_shape_baseline", "to_original",
           "shape_spread", "detector_misses"]


def _default_post(net, dataset, scheme=None):
    """Coordinate regression of ``net`` on ``dataset``'s crops (with ``scheme``'s flip permutation)."""
    return PostProcessor(dataset.input_size, None if scheme is None else scheme.flip_permutation(),
                         outputs=output_names(net), deep_supervision=deep_supervision(net))


def _forward(net, post, x, decoder=None):
    """(B, N, 2) crop pixels, network seconds (forward and copy to the host), decoding seconds (0 without a
    decoding step)."""
    t0 = time.perf_counter()
    out = post.host(net(x))
    t1 = time.perf_counter()
    if not post.decodes:
        return post.decode(out), t1 - t0, 0.0
    coords = post.decode(out, decoder)
    return coords, t1 - t0, time.perf_counter() - t1


def predict(net, dataset, ctx=None, batch_size=32, flip=False, post=None, decoder=None, timings=None):
    """Predict landmarks for every item of ``dataset`` (no augmentation is applied by the caller's dataset).

    Parameters
    ----------
    net : HybridBlock
        Maps (B, 3, S, S) to the output that ``post`` turns into landmarks.
    dataset : AlignedFaceDataset
    ctx : Context
    flip : bool
        Flip test; needs ``post``'s flip permutation.
    post : lotr_gluon.build.PostProcessor or None
        The model's post-processor (:func:`lotr_gluon.build.load_model`); None: coordinate regression
        without a flip permutation.
    decoder : str or None
        Heatmap decoder (``argmax``, ``argmax_shift``, ``dark``, ``vector``); None = the model's default.
    timings : dict or None
        If given, filled with ``network_s`` and ``decode_s`` (decoding + flip averaging), summed over the set.

    Returns
    -------
    preds : ndarray (M, N, 2) float32, crop pixels.
    seconds : float, wall time of the network and decoding.
    """
    ctx = ctx or mx.cpu()
    post = post or _default_post(net, dataset)
    if flip and post.flip_perm is None:
        raise ValueError("flip test needs the scheme's flip permutation")
    preds = []
    t_net = t_dec = 0.0
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        x = mx.nd.array(np.stack([it[0] for it in items]), ctx=ctx)
        p, tn, td = _forward(net, post, x, decoder)
        t_net, t_dec = t_net + tn, t_dec + td
        if flip:
            pf, tn, td = _forward(net, post, mx.nd.flip(x, axis=3), decoder)
            t0 = time.perf_counter()
            p = post.flip_average(p, pf)
            t_net, t_dec = t_net + tn, t_dec + td + time.perf_counter() - t0
        preds.append(p)
    if timings is not None:
        timings.update(network_s=t_net, decode_s=t_dec)
    return np.concatenate(preds, 0).astype(np.float32), t_net + t_dec


def to_original(dataset, crop_points):
    """Map (M, N, 2) crop-pixel points to the original images' pixels with each item's inverse affine."""
    return np.stack([transform_points(p, invert_affine(dataset.affine(i))) for i, p in enumerate(crop_points)])


def ground_truth(dataset):
    """(M, N, 2) ground-truth landmarks in the original images' pixels."""
    return np.stack([np.asarray(s.landmarks, np.float32) for s in dataset.samples])


def subset_masks(dataset, subsets):
    """{name: bool (M,)} for attribute subsets (WFLW: pose, expression, ...), from ``sample.attributes``."""
    masks = {}
    for name in subsets or ():
        vals = [bool(int(s.attributes.get(name, 0))) if s.attributes else False for s in dataset.samples]
        if any(vals):
            masks[name] = np.array(vals)
    return masks


def _score(preds, dataset, scheme):
    """Metrics dict and per-image NMEs of (M, N, 2) original-image predictions against the dataset."""
    gt = ground_truth(dataset)
    norm_idx = scheme.norm_indices or None
    metrics = evaluate_metrics(preds, gt, scheme.norm, norm_idx, scheme.threshold,
                               subsets=subset_masks(dataset, scheme.subsets) or None)
    return metrics, nme_per_image(preds, gt, scheme.norm, norm_idx)


def shape_spread(points):
    """Mean over landmarks and x/y of the std across faces of (M, N, 2) points, pixels (0 for M < 2)."""
    points = np.asarray(points, np.float64)
    if len(points) < 2:
        return 0.0
    return float(points.std(axis=0).mean())


def evaluate_dataset(net, dataset, scheme, ctx=None, batch_size=32, flip=False, decoder=None, post=None):
    """Predict and score a dataset in the original image frame.

    ``post``: the model's post-processor (:func:`lotr_gluon.build.load_model`); None: coordinate regression
    with ``scheme``'s flip permutation. See :func:`predict`.

    Returns
    -------
    metrics : dict
        ``nme``, ``fr``, ``auc`` (fractions), ``threshold``, ``num_images``, ``flip``, per-subset entries,
        ``seconds_per_image``, ``network_ms_per_image``, ``decode_ms_per_image``, ``pred_spread_px`` and
        ``gt_spread_px`` (:func:`shape_spread` of the crop-frame predictions and ground truth; a model flat
        at the mean shape has a spread near 0), and ``decoder`` for heatmap models.
    nmes : ndarray (M,)
    preds_orig : ndarray (M, N, 2), original-image pixels.
    preds_crop : ndarray (M, N, 2), crop pixels.
    """
    timings = {}
    post = post or _default_post(net, dataset, scheme)
    preds_crop, seconds = predict(net, dataset, ctx, batch_size, flip, post, decoder, timings)
    preds = to_original(dataset, preds_crop)
    metrics, nmes = _score(preds, dataset, scheme)
    metrics["flip"] = bool(flip)
    n = max(len(dataset), 1)
    metrics["seconds_per_image"] = seconds / n
    metrics["network_ms_per_image"] = 1e3 * timings["network_s"] / n
    metrics["decode_ms_per_image"] = 1e3 * timings["decode_s"] / n
    # how much the predictions vary from face to face in the aligned crop (0 = the same shape for every
    # face, e.g. flat at the mean shape), next to the ground truth's variation
    metrics["pred_spread_px"] = shape_spread(preds_crop)
    metrics["gt_spread_px"] = shape_spread(dataset.aligned_landmarks())
    if post.decodes:
        metrics["decoder"] = decoder or post.default_decoder
    return metrics, nmes, preds, preds_crop


def detector_misses(dataset):
    """Names of the faces of an :class:`~lotr_gluon.data.dataset.AlignedFaceDataset` aligned on their
    ground-truth five points because the detections have no entry for them (the detector's misses, under
    ``DATA.ALIGN detector`` or ``DATA.DETECTIONS``): they are scored with that alignment and counted
    (``detector_misses`` in the metrics of :func:`evaluate_weights`)."""
    return [s.name for s, src in zip(dataset.samples, dataset.five_point_source) if src == "ground_truth"]


def mean_shape_baseline(mean_shape_crop, dataset, scheme):
    """Score every face of ``dataset`` predicted as ``mean_shape_crop`` (N, 2), the mean aligned training
    shape, mapped back to each image: the yardstick a trained model must beat (FINDINGS.md).

    Returns ``(metrics, nmes)``.
    """
    crop = np.repeat(np.asarray(mean_shape_crop, np.float32)[None], len(dataset), 0)
    preds = to_original(dataset, crop)
    metrics, nmes = _score(preds, dataset, scheme)
    metrics["flip"] = False
    return metrics, nmes


class WeightsEvaluation:
    """What :func:`evaluate_weights` returns.

    Attributes
    ----------
    scheme : LandmarkScheme
    test_set : AlignedFaceDataset
        ``DATA.TEST_SPLIT``, aligned as in training.
    runs : dict bool -> tuple
        Flip off / on -> ``(metrics, nmes, preds_orig, preds_crop)`` of :func:`evaluate_dataset` (``metrics``
        with ``split``; under detector alignment also ``detector_misses``, the number of faces the detector
        missed, scored on their ground-truth five points, and ``detector_miss_names``).
    baseline : tuple or None
        ``(metrics, nmes)`` of :func:`mean_shape_baseline` with the mean training shape.
    """

    def __init__(self, scheme, test_set, runs, baseline):
        self.scheme, self.test_set, self.runs, self.baseline = scheme, test_set, runs, baseline


def evaluate_weights(cfg, params, flips=(False,), baseline=True):
    """Evaluate trained weights on ``DATA.TEST_SPLIT``: the evaluation of ``tools/test.py`` and of the tables.

    The model comes from :func:`lotr_gluon.build.load_model` (weights checked, no training-only heads),
    hybridized with ``static_alloc``; every entry of ``flips`` is one :func:`evaluate_dataset` pass with the
    model's post-processor, at ``TEST.BATCH_SIZE`` on the config's first device.

    Parameters
    ----------
    cfg : CfgNode
        The config the weights were trained with.
    params : str
        ``.params`` file.
    flips : sequence of bool
    baseline : bool
        Also score the mean training shape (:func:`mean_shape_baseline`; reads the train split). Without it
        the train split is not read: an anchored model's anchors come with its weights.

    Returns
    -------
    WeightsEvaluation

    Raises
    ------
    ModelError
        See :func:`lotr_gluon.build.load_model`.
    DataError
        A split cannot be read.
    """

    ctx = contexts(cfg)[0]
    scheme = build_scheme(cfg)
    test_set = build_dataset(cfg, "test")
    train_mean = mean_shape(build_dataset(cfg, "train")) if baseline else None
    net, post = load_model(cfg, params, ctx=ctx)  # anchors (MODEL.HEAD.ANCHORS) are stored in the weights
    net.hybridize(static_alloc=True)
    misses = detector_misses(test_set) if uses_detections(cfg) else None
    runs = {}
    for flip in flips:
        runs[bool(flip)] = evaluate_dataset(net, test_set, scheme, ctx, cfg.TEST.BATCH_SIZE, flip, post=post)
        runs[bool(flip)][0]["split"] = cfg.DATA.TEST_SPLIT
        if misses is not None:  # scored on their ground-truth five points, and counted
            runs[bool(flip)][0].update(detector_misses=len(misses), detector_miss_names=misses)
    base = mean_shape_baseline(train_mean, test_set, scheme) if baseline else None
    return WeightsEvaluation(scheme, test_set, runs, base)
