"""Builders: the config boundary for data, loss and optimiser (the model's is
:func:`lotr_gluon.models.build_model`). Blocks and datasets below take explicit arguments."""
import os

import mxnet as mx

from .data.augment import Augmenter, MirrorExtendedDataset
from .data.dataset import AlignedFaceDataset
from .data.formats import load_detections, load_samples
from .data.schemes import get_scheme
from .errors import DataError, ModelError
from .losses import get_loss

__all__ = ["build_scheme", "build_samples", "build_dataset", "build_loss", "build_optimizer", "split_path",
           "check_model_config", "load_params", "build_inference_model", "ParamsFileError", "EmptySplitError",
           "DataRootError", "TRAINING_ONLY_PREFIXES"]


def build_scheme(cfg):
    scheme = get_scheme(cfg.DATA.SCHEME)
    if scheme.num_points != cfg.MODEL.NUM_POINTS:
        raise ValueError("DATA.SCHEME %s has %d points but MODEL.NUM_POINTS is %d"
                         % (scheme.name, scheme.num_points, cfg.MODEL.NUM_POINTS))
    return scheme


def split_path(cfg, split):
    """The split value of ``DATA.<SPLIT>_SPLIT`` ('train', 'val' or 'test')."""
    return {"train": cfg.DATA.TRAIN_SPLIT, "val": cfg.DATA.VAL_SPLIT, "test": cfg.DATA.TEST_SPLIT}[split]


class EmptySplitError(DataError, ValueError):
    """A split without any sample (an empty split file, a wrong folder, or every face skipped)."""


class DataRootError(DataError, FileNotFoundError):
    """``DATA.ROOT`` is not a folder."""


def build_samples(cfg, split):
    """Load the annotations of a split (``'train'``, ``'val'``, ``'test'``) as FaceSamples."""
    if not os.path.isdir(cfg.DATA.ROOT):
        raise DataRootError("DATA.ROOT %r is not a folder (dataset %s). Set DATA.ROOT in the config or on "
                                "the command line: DATA.ROOT /path/to/data" % (cfg.DATA.ROOT, cfg.DATA.NAME))
    samples = load_samples(cfg.DATA.FORMAT, cfg.DATA.ROOT, split=split_path(cfg, split) or None,
                           on_error=cfg.DATA.ON_ERROR)
    if cfg.DATA.MAX_SAMPLES > 0:
        samples = samples[: cfg.DATA.MAX_SAMPLES]
    if not samples:
        raise EmptySplitError("no samples in split %r (DATA.%s_SPLIT %r) of %s"
                              % (split, split.upper(), split_path(cfg, split), cfg.DATA.ROOT))
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
                              cache=cfg.DATA.CACHE, seed=cfg.SEED, on_error=cfg.DATA.ON_ERROR,
                              outside_margin=cfg.DATA.OUTSIDE_MARGIN)
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


# ------------------------------------------------------------------------------------- model checks and weights

#: Structural-name prefixes of training-only parameters: LOTR's auxiliary heatmap head
#: (``MODEL.AUX_HEATMAP_WEIGHT``), which inference, evaluation and export never run.
TRAINING_ONLY_PREFIXES = ("aux_heatmap.",)


class ParamsFileError(ModelError, FileNotFoundError):
    """A ``.params`` file that is missing, unreadable, or holds the weights of another architecture."""


def check_model_config(cfg):
    """Check ``MODEL.NAME`` and ``MODEL.BACKBONE`` against the registries before any data or weight is loaded.

    Raises
    ------
    ModelError
        An unknown model or backbone; the message lists the valid names.
    """
    from .models import MODELS, PRESETS, BACKBONES
    from .models import _register_heatmap
    _register_heatmap()
    names = sorted(set(MODELS) | set(PRESETS))
    if cfg.MODEL.NAME not in names:
        raise ModelError("unknown MODEL.NAME %r; valid: %s" % (cfg.MODEL.NAME, ", ".join(names)))
    if cfg.MODEL.BACKBONE not in BACKBONES:
        raise ModelError("unknown MODEL.BACKBONE %r; valid: %s" % (cfg.MODEL.BACKBONE, ", ".join(sorted(BACKBONES))))


def _shapes_match(model_shape, file_shape):
    """Shapes agree; a 0 in the model's shape (deferred initialisation) matches any size."""
    if len(model_shape) != len(file_shape):
        return False
    return all(m == 0 or m == f for m, f in zip(model_shape, file_shape))


def _name_list(names, k=4):
    names = sorted(names)
    return ", ".join(names[:k]) + (" and %d more" % (len(names) - k) if len(names) > k else "")


def load_params(net, path, ctx=None, cfg_name=None):
    """Load a ``save_parameters`` file into ``net`` after checking that it belongs to this architecture.

    The one place where trained weights are loaded for inference (predictor, ``tools/test.py``,
    ``tools/export.py``, ``tools/demo.py``). Training-only parameters (:data:`TRAINING_ONLY_PREFIXES`, the
    auxiliary heatmap head) in the file are skipped without a word when ``net`` has no such head (build it
    with :func:`build_inference_model`).

    Parameters
    ----------
    net : gluon.Block
    path : str
        ``.params`` file written by ``net.save_parameters`` (``model_best.params``, ``checkpoint_last.params``).
    ctx : Context or list of Context
    cfg_name : str, optional
        Name of the config, for the messages.

    Raises
    ------
    ParamsFileError
        The file is missing; it is not an MXNet NDArray file or is truncated; it is an exported symbol's
        params (``arg:`` / ``aux:`` names); or its parameters do not match the model's (the message names the
        missing, unexpected and mis-shaped parameters: the file belongs to another architecture).
    """
    path = str(path)
    if not os.path.isfile(path):
        raise ParamsFileError("model weights not found: %s" % path)
    try:
        saved = mx.nd.load(path)
    except mx.base.MXNetError as e:
        detail = [ln for ln in str(e).splitlines() if "Invalid" in ln or "Check failed" in ln]
        raise ParamsFileError("cannot read the weights %s: not an MXNet .params file, or truncated (%s)"
                              % (path, detail[-1].strip() if detail else type(e).__name__)) from None
    if not isinstance(saved, dict) or not saved:
        raise ParamsFileError("%s holds no named parameters (not a net.save_parameters file)" % path)
    if all(k.startswith(("arg:", "aux:")) for k in saved):
        raise ParamsFileError("%s is the params file of an exported symbol (tools/export.py); load it with "
                              "Predictor.from_symbol / lotr_gluon.export.load_symbol" % path)
    own = net._collect_params_with_prefix()
    own_shapes = {k: tuple(p.shape) for k, p in own.items()}
    missing = [k for k in own_shapes if k not in saved]
    extra = [k for k in saved if k not in own_shapes and not k.startswith(TRAINING_ONLY_PREFIXES)]
    bad = ["%s (model %s, file %s)" % (k, own_shapes[k], tuple(saved[k].shape))
           for k in own_shapes if k in saved and not _shapes_match(own_shapes[k], tuple(saved[k].shape))]
    if missing or extra or bad:
        parts = []
        if bad:
            parts.append("%d mis-shaped: %s" % (len(bad), _name_list(bad, 3)))
        if missing:
            parts.append("%d missing from the file: %s" % (len(missing), _name_list(missing)))
        if extra:
            parts.append("%d not in the model: %s" % (len(extra), _name_list(extra)))
        raise ParamsFileError("the weights %s belong to another architecture than the %s model of %s: %s. "
                              "Use the config the weights were trained with."
                              % (path, type(net).__name__, cfg_name or "this config", "; ".join(parts)))
    # the file is already in memory and checked: set the values as Gluon's load_parameters does, instead of
    # reading the file a second time
    for name, value in saved.items():
        if name in own:
            own[name]._load_init(value, ctx)
    return net


def build_inference_model(cfg, params=None, ctx=None, anchors=None):
    """The model of ``cfg`` for inference, evaluation or export, with the weights of ``params``.

    Training-only heads are left out (``MODEL.AUX_HEATMAP_WEIGHT`` set to 0: the auxiliary heatmap head is
    not built, and its weights in ``params`` are skipped by :func:`load_params`), so that the forward pass uses
    every parameter and Gluon prints no "Parameter ... is not used by any computation" warning.

    Parameters
    ----------
    cfg : CfgNode
    params : str or None
        Weights; None = initialise randomly (``build_model(..., initialize=True)``).
    ctx : Context
    anchors : array (N, 2), optional
        See :func:`lotr_gluon.models.build_model`.

    Raises
    ------
    ModelError
        Unknown model or backbone; ``params`` missing, unreadable or of another architecture.
    """
    from .models import build_model
    check_model_config(cfg)
    if cfg.MODEL.AUX_HEATMAP_WEIGHT > 0:
        cfg = cfg.clone()
        cfg.defrost()
        cfg.MODEL.AUX_HEATMAP_WEIGHT = 0.0
        cfg.freeze()
    net = build_model(cfg, anchors=anchors, ctx=ctx, initialize=params is None)
    if params is not None:
        load_params(net, params, ctx=ctx, cfg_name="%s (MODEL.NAME %s, MODEL.BACKBONE %s)"
                    % (getattr(cfg, "CFG_NAME", "") or "this config", cfg.MODEL.NAME, cfg.MODEL.BACKBONE))
    return net
