"""Builders: the config boundary for data, loss and optimiser (the model's is
:func:`lotr_gluon.models.build_model`). Blocks and datasets below take explicit arguments."""
import os

import mxnet as mx

from .data.augment import Augmenter, MirrorExtendedDataset
from .data.dataset import AlignedFaceDataset
from .data.loaders import load_detections, load_samples
from .data.schemes import get_scheme
from .losses import get_loss

__all__ = ["build_scheme", "build_samples", "build_dataset", "build_loss", "build_optimizer", "split_path"]


def build_scheme(cfg):
    scheme = get_scheme(cfg.DATA.SCHEME)
    if scheme.num_points != cfg.MODEL.NUM_POINTS:
        raise ValueError("DATA.SCHEME %s has %d points but MODEL.NUM_POINTS is %d"
                         % (scheme.name, scheme.num_points, cfg.MODEL.NUM_POINTS))
    return scheme


def split_path(cfg, split):
    """The split value of ``DATA.<SPLIT>_SPLIT`` ('train', 'val' or 'test')."""
    return {"train": cfg.DATA.TRAIN_SPLIT, "val": cfg.DATA.VAL_SPLIT, "test": cfg.DATA.TEST_SPLIT}[split]


def build_samples(cfg, split):
    """Load the annotations of a split (``'train'``, ``'val'``, ``'test'``) as FaceSamples."""
    if not os.path.isdir(cfg.DATA.ROOT):
        raise FileNotFoundError("DATA.ROOT %r is not a folder (dataset %s). Set DATA.ROOT in the config or on "
                                "the command line: DATA.ROOT /path/to/data" % (cfg.DATA.ROOT, cfg.DATA.NAME))
    samples = load_samples(cfg.DATA.FORMAT, cfg.DATA.ROOT, split=split_path(cfg, split) or None,
                           on_error=cfg.DATA.ON_ERROR)
    if cfg.DATA.MAX_SAMPLES > 0:
        samples = samples[: cfg.DATA.MAX_SAMPLES]
    if not samples:
        raise ValueError("no samples in split %r of %s" % (split, cfg.DATA.ROOT))
    return samples


def build_dataset(cfg, split, train=False, samples=None):
    """AlignedFaceDataset for a split; ``train=True`` adds the configured augmentation and five-point jitter."""
    scheme = build_scheme(cfg)
    samples = samples if samples is not None else build_samples(cfg, split)
    detections = load_detections(cfg.DATA.DETECTIONS) if cfg.DATA.DETECTIONS else None
    augmenter = None
    if train:
        a = cfg.AUG
        if a.FLIP_MODE not in ("random", "extend"):
            raise ValueError("AUG.FLIP_MODE must be 'random' or 'extend', got %r" % (a.FLIP_MODE,))
        mirror_extend = a.FLIP and a.FLIP_MODE == "extend"  # Earp Sec. 5.1 trick 1: every face and its mirror
        augmenter = Augmenter(flip_prob=0.5 if a.FLIP and not mirror_extend else 0.0,
                              flip_perm=scheme.flip_permutation(),
                              rotation_deg=a.ROTATION, scale_range=tuple(a.SCALE), shift_frac=a.SHIFT,
                              erasing_prob=a.ERASING_PROB, pca_std=a.PCA_STD, jitter=a.JITTER, seed=cfg.SEED,
                              erasing_mode=a.ERASING_MODE, aid_cutout_prob=a.AID_CUTOUT_PROB,
                              aid_radius_factor=a.AID_RADIUS_FACTOR, aid_num_patch=a.AID_NUM_PATCH,
                              aid_has_prob=a.AID_HAS_PROB, aid_has_hide_prob=a.AID_HAS_HIDE_PROB,
                              aid_has_grids=tuple(a.AID_HAS_GRIDS))
    data = AlignedFaceDataset(samples, scheme, cfg.DATA.INPUT_SIZE, template_scale=cfg.DATA.TEMPLATE_SCALE,
                              detections=detections,
                              five_point_jitter=cfg.DATA.FIVE_POINT_JITTER if train else 0.0,
                              augmenter=augmenter, mean=tuple(cfg.DATA.MEAN), std=tuple(cfg.DATA.STD),
                              cache=cfg.DATA.CACHE, seed=cfg.SEED)
    if train and cfg.AUG.FLIP and cfg.AUG.FLIP_MODE == "extend":  # Earp Sec. 5.1 trick 1
        return MirrorExtendedDataset(data, scheme.flip_permutation())
    return data


def build_loss(cfg):
    """The coordinate loss of ``LOSS.NAME`` (LOTR Table VI), or the heatmap MSE for heatmap models."""
    if cfg.MODEL.NAME == "earp_heatmap":
        from heatmap_baseline.losses import HeatmapMSELoss
        return HeatmapMSELoss()
    if cfg.MODEL.NAME == "earp_vector":  # MSE on the band-pooled vectors (heatmap_baseline.vector)
        from heatmap_baseline.vector import GaussianVectorLoss
        return GaussianVectorLoss()
    name, L = cfg.LOSS.NAME, cfg.LOSS
    kw = {"wing": dict(w=L.WING_W, eps=L.WING_EPS),
          "smooth_wing": dict(t=L.SMOOTH_WING_T, w=L.WING_W, eps=L.WING_EPS),
          "smooth_l1": dict(beta=L.SMOOTH_L1_BETA)}.get(name, {})
    return get_loss(name, **kw)


def build_aux_heatmap(cfg, net):
    """``(codec, loss)`` of LOTR's auxiliary heatmap head (``MODEL.AUX_HEATMAP_WEIGHT > 0``), else None.

    The loss is the heatmap MSE of the Earp baseline times ``MODEL.AUX_HEATMAP_WEIGHT``; the codec encodes
    Gaussian targets (LOTR eq. 1, ``MODEL.HEATMAP_SIGMA``) at the head's resolution.
    """
    w = cfg.MODEL.AUX_HEATMAP_WEIGHT
    if w <= 0 or getattr(net, "aux_heatmap", None) is None:
        return None
    from heatmap_baseline.codec import HeatmapCodec
    from heatmap_baseline.losses import HeatmapMSELoss
    return (HeatmapCodec(cfg.DATA.INPUT_SIZE, net.aux_heatmap_size, sigma=cfg.MODEL.HEATMAP_SIGMA),
            HeatmapMSELoss(weight=w))


def build_optimizer(cfg):
    """(optimizer name, optimizer params) for ``gluon.Trainer``; LAMB is MXNet's ``mx.optimizer.LAMB``."""
    t = cfg.TRAIN
    name = t.OPTIMIZER.lower()
    from . import optim  # registers AdamW and LAMBExclude
    if name == "lamb":
        params = dict(learning_rate=t.LR, wd=t.WD, bias_correction=True)
        if t.LAMB_EXCLUDE_SMALL:
            name = "lambexclude"
        if t.LAMB_LOWER_BOUND >= 0:
            params["lower_bound"] = t.LAMB_LOWER_BOUND
        if t.LAMB_UPPER_BOUND >= 0:
            params["upper_bound"] = t.LAMB_UPPER_BOUND
    elif name in ("adam", "adamw"):
        params = dict(learning_rate=t.LR, wd=t.WD)
    elif name == "sgd":
        params = dict(learning_rate=t.LR, wd=t.WD, momentum=t.MOMENTUM)
    else:
        raise ValueError("unknown TRAIN.OPTIMIZER %r; valid: lamb, adam, adamw, sgd" % (t.OPTIMIZER,))
    return name, params


def contexts(cfg):
    """The list of devices: GPUs ``DEVICES``, or ``NUM_CPU_CONTEXTS`` CPU contexts when it is empty."""
    if cfg.DEVICES:
        return [mx.gpu(int(i)) for i in cfg.DEVICES]
    return [mx.cpu(i) for i in range(max(1, cfg.NUM_CPU_CONTEXTS))]
