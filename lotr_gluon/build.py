"""Builders: the config boundary for data, the model contract, loss and optimiser.

:func:`build` returns ``(net, criterion, postprocessor)`` (as DETR's ``build(args)``) and :func:`load_model`
a trained ``(net, postprocessor)``; the network itself comes from :func:`lotr_gluon.model_zoo.build_model`.
Blocks and datasets below take explicit arguments."""
import os

import numpy as np
import mxnet as mx

from heatmap_baseline.codec import HeatmapCodec
from heatmap_baseline.losses import HeatmapMSELoss
from heatmap_baseline.vector import GaussianVectorLoss
from . import optim  # noqa: F401  (registers AdamW and LAMBExclude with MXNet)
from .blocks.backbones import BACKBONES
from .data.augment import Augmenter, MirrorExtendedDataset, flip_points
from .data.dataset import AlignedFaceDataset
from .data.formats import load_detections, load_samples
from .data.schemes import get_scheme
from .data.targets import WithHeatmapTargets
from .detection_cache import ensure_detections
from .errors import DataError, ModelError, UsageError
from .losses import get_loss
from .model_zoo import build_model, model_entry, model_names
from .models import LOTR

__all__ = ["build_scheme", "build_samples", "build_dataset", "build_detections", "detections_path", "uses_detections",
           "ALIGN_MODES", "build_loss", "build_optimizer", "split_path", "split_label",
           "check_model_config", "check_training_config", "check_params_file", "load_params", "load_model", "build", "build_criterion", "build_postprocessor",
           "inference_config", "model_kind", "needs_anchors", "flip_permutation", "output_names", "deep_supervision",
           "Criterion",
           "PostProcessor",
           "ParamsFileError", "EmptySplitError", "DataRootError", "TRAINING_ONLY_PREFIXES"]


#: values of TRAIN.OPTIMIZER (:func:`build_optimizer`) and TRAIN.LR_SCHEDULE (:func:`lotr_gluon.trainer.lr_at`)
OPTIMIZERS = ("lamb", "adam", "adamw", "sgd")
LR_SCHEDULES = ("step", "cosine")


def build_scheme(cfg):
    scheme = get_scheme(cfg.DATA.SCHEME)
    if scheme.num_points != cfg.MODEL.NUM_POINTS:
        raise ValueError("DATA.SCHEME %s has %d points but MODEL.NUM_POINTS is %d"
                         % (scheme.name, scheme.num_points, cfg.MODEL.NUM_POINTS))
    return scheme


def split_path(cfg, split):
    """The split value of ``DATA.<SPLIT>_SPLIT`` ('train', 'val' or 'test')."""
    return {"train": cfg.DATA.TRAIN_SPLIT, "val": cfg.DATA.VAL_SPLIT, "test": cfg.DATA.TEST_SPLIT}[split]


def split_label(cfg, value, n):
    """How the split of value ``value`` (a ``DATA.<SPLIT>_SPLIT``) of ``n`` faces is named where its numbers are
    printed: its ``DATA.SPLIT_LABELS`` entry ``"VALUE=LABEL"`` with ``{n}`` filled in, else
    ``"<DATA.NAME> <VALUE> (<n> faces)"``.

    Raises
    ------
    UsageError
        An entry of ``DATA.SPLIT_LABELS`` without ``=``, or a label with another placeholder than ``{n}``.
    """
    for entry in cfg.DATA.SPLIT_LABELS:
        key, eq, label = entry.partition("=")
        if not eq or not key.strip():
            raise UsageError("DATA.SPLIT_LABELS entry %r: expected \"VALUE=LABEL\" (e.g. \"test=HELEN test, {n} "
                             "faces\")" % entry)
        if key.strip() == value:
            try:
                return label.strip().format(n=n)
            except (KeyError, IndexError, ValueError) as e:
                raise UsageError("DATA.SPLIT_LABELS entry %r: only {n} (the number of faces) may be filled in (%s)"
                                 % (entry, e)) from None
    return "%s %s (%d faces)" % (cfg.DATA.NAME, value, n)


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


#: Values of ``DATA.ALIGN``: five points from the ground-truth landmarks, or from ``DATA.DETECTOR``.
ALIGN_MODES = ("ground_truth", "detector")


def _align_mode(cfg):
    if cfg.DATA.ALIGN not in ALIGN_MODES:
        raise UsageError("DATA.ALIGN must be one of %s, got %r" % (", ".join(ALIGN_MODES), cfg.DATA.ALIGN))
    return cfg.DATA.ALIGN


def uses_detections(cfg):
    """Whether faces are aligned on a detector's five points: ``DATA.DETECTIONS`` (an explicit file) or
    ``DATA.ALIGN detector`` (the cache of :func:`detections_path`)."""
    return bool(cfg.DATA.DETECTIONS) or _align_mode(cfg) == "detector"


def detections_path(cfg, split, detector=None):
    """Where the cached detections of a split live: ``DATA.DETECTIONS_CACHE/<DATA.NAME>_<stem>_<detector>.json``.

    ``stem`` is the file stem of the split's value (``DATA.<SPLIT>_SPLIT``; ``splits/val.txt`` -> ``val``), so
    splits that name the same file share one cache file; ``detector`` defaults to ``DATA.DETECTOR``. The file
    is rebuilt when it does not fit the samples it is used for
    (:func:`lotr_gluon.detection_cache.stale_reason`), so a name shared by two data roots costs a rebuild,
    never a wrong alignment."""
    value = split_path(cfg, split) or split
    stem = os.path.splitext(os.path.basename(value.rstrip("/\\")))[0] or split
    return os.path.join(cfg.DATA.DETECTIONS_CACHE, "%s_%s_%s.json" % (cfg.DATA.NAME, stem,
                                                                      detector or cfg.DATA.DETECTOR))


def build_detections(cfg, split, samples, progress=True):
    """The detected five points of ``samples`` (a split's), or None for ground-truth alignment.

    ``DATA.DETECTIONS`` set: that file, as given. Else ``DATA.ALIGN detector``: the cache file of
    :func:`detections_path`, checked against the samples' images, the detector's model and OpenCV, and rebuilt
    when missing or stale (:func:`lotr_gluon.detection_cache.ensure_detections`; a tqdm bar while the
    detector runs). Faces without a detection (the detector's misses) are aligned on their ground-truth five
    points by :class:`~lotr_gluon.data.dataset.AlignedFaceDataset`.

    Returns
    -------
    dict str -> Detection, or None
    """
    if cfg.DATA.DETECTIONS:
        return load_detections(cfg.DATA.DETECTIONS)
    if _align_mode(cfg) != "detector":
        return None
    path, _ = ensure_detections(detections_path(cfg, split), samples, cfg.DATA.DETECTOR, progress=progress,
                                on_error=cfg.DATA.ON_ERROR, dataset=cfg.DATA.NAME, root=os.path.abspath(cfg.DATA.ROOT),
                                split=split_path(cfg, split))
    return load_detections(path)


def build_dataset(cfg, split, train=False, samples=None):
    """AlignedFaceDataset for a split; ``train=True`` adds the configured augmentation and five-point jitter.

    The five points come from :func:`build_detections` (``DATA.DETECTIONS`` / ``DATA.ALIGN``)."""
    scheme = build_scheme(cfg)
    samples = samples if samples is not None else build_samples(cfg, split)
    detections = build_detections(cfg, split, samples)
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
                              aid_has_grids=tuple(a.AID_HAS_GRIDS), align_noise_std=tuple(a.ALIGN_NOISE_STD))
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
    """The coordinate loss of ``LOSS.NAME`` (LOTR Table VI), or the heatmap / vector MSE of the Earp models.

    Part of :func:`build_criterion`; the training loop uses the criterion."""
    kind = model_kind(cfg)
    if kind == "heatmap":
        return HeatmapMSELoss()
    if kind == "vector":  # MSE on the band-pooled vectors (heatmap_baseline.vector)
        return GaussianVectorLoss()
    name, L = cfg.LOSS.NAME, cfg.LOSS
    kw = {"wing": dict(w=L.WING_W, eps=L.WING_EPS),
          "smooth_wing": dict(t=L.SMOOTH_WING_T, w=L.WING_W, eps=L.WING_EPS),
          "smooth_l1": dict(beta=L.SMOOTH_L1_BETA)}.get(name, {})
    return get_loss(name, **kw)


def build_aux_heatmap(cfg, net):
    """``(codec, loss)`` of LOTR's auxiliary heatmap head (``MODEL.AUX.HEATMAP_WEIGHT > 0``), else None.

    The loss is the heatmap MSE of the Earp baseline times ``MODEL.AUX.HEATMAP_WEIGHT``; the codec encodes
    Gaussian targets (LOTR eq. (1), ``MODEL.HEATMAP.SIGMA``) at the head's resolution.
    """
    w = cfg.MODEL.AUX.HEATMAP_WEIGHT
    if w <= 0 or net.aux_heatmap is None:
        return None
    return (HeatmapCodec(cfg.DATA.INPUT_SIZE, net.aux_heatmap_size, sigma=cfg.MODEL.HEATMAP.SIGMA),
            HeatmapMSELoss(weight=w))


def build_optimizer(cfg):
    """(optimizer name, optimizer params) for ``gluon.Trainer``; LAMB is MXNet's ``mx.optimizer.LAMB``."""
    t = cfg.TRAIN
    check_training_config(cfg)
    name = t.OPTIMIZER.lower()
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
    return name, params


def check_training_config(cfg):
    """Check ``TRAIN.OPTIMIZER`` and ``TRAIN.LR_SCHEDULE`` before anything is loaded or written.

    Raises
    ------
    UsageError
        An unknown value; the message lists the valid ones.
    """
    for key, value, valid in (("TRAIN.OPTIMIZER", cfg.TRAIN.OPTIMIZER.lower(), OPTIMIZERS),
                              ("TRAIN.LR_SCHEDULE", cfg.TRAIN.LR_SCHEDULE, LR_SCHEDULES)):
        if value not in valid:
            raise UsageError("unknown %s %r; valid: %s" % (key, value, ", ".join(valid)))


def contexts(cfg):
    """The list of devices: GPUs ``DEVICES``, or ``NUM_CPU_CONTEXTS`` CPU contexts when it is empty."""
    if cfg.DEVICES:
        return [mx.gpu(int(i)) for i in cfg.DEVICES]
    return [mx.cpu(i) for i in range(max(1, cfg.NUM_CPU_CONTEXTS))]


# ------------------------------------------------------------------------------------- model checks and weights

#: Structural-name prefixes of training-only parameters: LOTR's auxiliary heatmap head
#: (``MODEL.AUX.HEATMAP_WEIGHT``), which inference, evaluation and export never run.
TRAINING_ONLY_PREFIXES = ("aux_heatmap.",)


class ParamsFileError(ModelError, FileNotFoundError):
    """A ``.params`` file that is missing, unreadable, or holds the weights of another architecture."""


def check_params_file(path, hint=""):
    """``str(path)`` when it is a file; else :class:`ParamsFileError` saying it is missing (``hint``, e.g.
    "train first, or pass --params", in parentheses) or a folder (naming the folder's ``.params`` files)."""
    path = str(path)
    if os.path.isdir(path):
        inside = sorted(f for f in os.listdir(path) if f.endswith(".params"))
        raise ParamsFileError("model weights %s: a folder, not a .params file%s" % (
            path, "; pass one of its files, e.g. %s" % os.path.join(path, inside[0]) if inside else ""))
    if not os.path.isfile(path):
        raise ParamsFileError("model weights not found: %s%s" % (path, " (%s)" % hint if hint else ""))
    return path


def check_model_config(cfg):
    """Check ``MODEL.NAME`` and ``MODEL.BACKBONE.NAME`` against the registries before any data or weight is loaded.

    Raises
    ------
    ModelError
        An unknown model or backbone; the message lists the valid names.
    """
    _check_model_name(cfg)
    if cfg.MODEL.BACKBONE.NAME not in BACKBONES:
        raise ModelError("unknown MODEL.BACKBONE.NAME %r; valid: %s"
                         % (cfg.MODEL.BACKBONE.NAME, ", ".join(sorted(BACKBONES))))


def _check_model_name(cfg):
    names = model_names()
    if cfg.MODEL.NAME not in names:
        raise ModelError("unknown MODEL.NAME %r; valid: %s" % (cfg.MODEL.NAME, ", ".join(names)))


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
    with :func:`load_model`).

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
    path = check_params_file(path)
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


# ------------------------------------------------------------------------ the model contract
#
# As DETR's ``build(args) -> (model, criterion, postprocessors)``: :func:`build` returns the network, its
# training criterion and its post-processor, and :func:`load_model` a trained network with its
# post-processor. These are the only places that know what kind of output a model gives (coordinates,
# heatmaps or Gaussian vectors); training, evaluation, the predictor, the benchmark, export and the tables
# use the criterion and the post-processor and never ask.

def model_kind(cfg):
    """``'regression'`` (LOTR, CNN+FFN: (B, N, 2) crop pixels), ``'heatmap'`` (Earp: (B, N, h, w) heatmaps)
    or ``'vector'`` (LOTR Table V "with vectorization": (B, N, 2, S) Gaussian vectors): the ``output`` of
    ``MODEL.NAME``'s registry entry (:data:`lotr_gluon.model_zoo.MODELS`).

    Raises
    ------
    ModelError
        Unknown ``MODEL.NAME`` (the message lists the valid names).
    """
    _check_model_name(cfg)
    return model_entry(cfg.MODEL.NAME).output


def needs_anchors(cfg):
    """Whether the model needs the mean training shape (``MODEL.HEAD.ANCHORS = 'mean_shape'``: anchors added to
    the PFFN output of LOTR eq. (19), a from-scratch aid that is not in the paper)."""
    return model_kind(cfg) == "regression" and cfg.MODEL.HEAD.ANCHORS != "none"


def output_names(net):
    """Names of the elements of ``net``'s tuple output (:attr:`LOTR.TRAINING_OUTPUTS` for LOTR), None for a
    network that returns one array."""
    return LOTR.TRAINING_OUTPUTS if isinstance(net, LOTR) else None


def deep_supervision(net):
    """Whether ``net`` returns every decoder layer's prediction, (L, B, N, 2) (a LOTR built with
    ``MODEL.AUX.DECODER_LOSS``); False for every other network, exported ones included."""
    return isinstance(net, LOTR) and bool(net.aux_outputs)


def flip_permutation(cfg):
    """The flip permutation of ``DATA.SCHEME`` (N,), or the identity when the scheme does not fit
    ``MODEL.NUM_POINTS`` (a timing run of a model on another scheme: the time is the same)."""
    try:
        scheme = get_scheme(cfg.DATA.SCHEME)
        if scheme.num_points == cfg.MODEL.NUM_POINTS:
            return scheme.flip_permutation()
    except KeyError:
        pass
    return np.arange(cfg.MODEL.NUM_POINTS)


class Criterion:
    """The training loss of a network's output against a batch (DETR's ``SetCriterion``).

    Parameters
    ----------
    loss : gluon.loss.Loss
        Per-sample loss of the main output: a coordinate loss (LOTR Table VI) of (B, N, 2) predictions and
        landmarks, or the heatmap / vector MSE (Earp Sec. 4.2) of outputs and encoded targets.
    target_codec : codec or None
        The codec whose targets (``codec.encode(landmarks)``, float32) the loss needs: the heatmap / vector
        model's own, or the auxiliary heatmap head's; None for a coordinate loss alone.
    dense : bool
        The main output is heatmaps / vectors (compared with the encoded targets), not coordinates.
    deep_supervision : bool
        The output is (L, B, N, 2), one prediction per decoder layer; the loss is summed over layers
        (DETR's auxiliary decoding losses, ``MODEL.AUX.DECODER_LOSS``).
    aux_loss : gluon.loss.Loss or None
        Loss of the auxiliary heatmap head (weighted by ``MODEL.AUX.HEATMAP_WEIGHT``); the network then returns
        :attr:`LOTR.TRAINING_OUTPUTS` (landmarks, heatmaps) while :meth:`training_outputs` is on.

    Notes
    -----
    Items of the training data are ``(image, landmarks)``, and ``(image, landmarks, targets)`` when
    ``target_codec`` is set (:meth:`wrap_dataset`: the targets are encoded in the data pipeline).
    """

    def __init__(self, loss, target_codec=None, dense=False, deep_supervision=False, aux_loss=None):
        self.loss = loss
        self.target_codec = target_codec
        self.dense = bool(dense)
        self.deep_supervision = bool(deep_supervision)
        self.aux_loss = aux_loss

    def hybridize(self):
        """Hybridize the loss blocks (config ``TRAIN.HYBRIDIZE``)."""
        self.loss.hybridize()
        if self.aux_loss is not None:
            self.aux_loss.hybridize()

    def wrap_dataset(self, dataset):
        """The training dataset with the targets the loss needs: ``dataset`` itself, or wrapped in
        :class:`lotr_gluon.data.targets.WithHeatmapTargets` when there is a ``target_codec``."""
        if self.target_codec is None:
            return dataset
        return WithHeatmapTargets(dataset, self.target_codec)

    def training_outputs(self, net, on):
        """Make ``net`` return what the loss needs during training (``on=True``: also the auxiliary heatmaps)
        or only its inference output (``on=False``, for validation)."""
        if self.aux_loss is not None:
            net.set_aux_heatmap_output(on)

    def __call__(self, outs, label, target=None):
        """Per-sample loss (B,) and the auxiliary head's part of it (B,), or None without that head.

        Parameters
        ----------
        outs : NDArray or tuple
            The network's training output.
        label : NDArray (B, N, 2)
            Landmarks in crop pixels.
        target : NDArray or None
            Encoded targets from the data pipeline; None: encoded here from ``label`` with ``target_codec``
            (a host synchronisation on the step's thread).
        """
        if self.target_codec is not None and target is None:
            target = mx.nd.array(self.target_codec.encode(label.asnumpy()), ctx=label.context)
        if self.dense:
            return self.loss(outs, target), None
        aux = None
        if self.aux_loss is not None:
            named = dict(zip(LOTR.TRAINING_OUTPUTS, outs))
            outs = named["landmarks"]
            aux = self.aux_loss(named["aux_heatmaps"], target)
        if self.deep_supervision:  # sum over decoder layers
            loss = sum(self.loss(o, label) for o in outs)
        else:
            loss = self.loss(outs, label)
        return (loss, None) if aux is None else (loss + aux, aux)


class PostProcessor:
    """Network output -> landmarks in crop pixels, and the flip test's averaging (DETR's ``PostProcess``).

    Parameters
    ----------
    input_size : int
        Crop side S, pixels (the flip mirrors x to ``S - 1 - x``).
    flip_perm : array (N,) or None
        The landmark scheme's flip permutation (needed by :meth:`flip_average`).
    codec : HeatmapCodec, GaussianVectorCodec or None
        Decodes heatmap / vector outputs (``codec.decode(out, method)``, Earp Sec. 4.3); None: the output is
        already (B, N, 2) crop pixels (identity).
    outputs : tuple of str, optional
        Names of the elements of the network's tuple output, in order (:func:`output_names`, e.g.
        :attr:`LOTR.TRAINING_OUTPUTS`); the ``'landmarks'`` element is post-processed. None: the last element.
    deep_supervision : bool
        The landmarks are (L, B, N, 2), one prediction per decoder layer (:func:`deep_supervision`); the last
        layer's is post-processed.

    Raises
    ------
    ValueError
        ``outputs`` without ``'landmarks'``.
    """

    def __init__(self, input_size, flip_perm=None, codec=None, outputs=None, deep_supervision=False):
        self.input_size = int(input_size)
        self.deep_supervision = bool(deep_supervision)
        self.flip_perm = None if flip_perm is None else np.asarray(flip_perm)
        self.codec = codec
        self.outputs = None if outputs is None else tuple(outputs)
        if self.outputs is not None and "landmarks" not in self.outputs:
            raise ValueError("outputs %r name no 'landmarks' element" % (self.outputs,))

    @property
    def kind(self):
        """``'heatmap'`` (decoded by a codec: heatmaps or Gaussian vectors) or ``'regression'``."""
        return "regression" if self.codec is None else "heatmap"

    @property
    def decodes(self):
        """Whether the output needs decoding (a heatmap / vector codec), else it is crop pixels already."""
        return self.codec is not None

    @property
    def decoders(self):
        """Decoders that :meth:`decode` accepts (``(None,)`` for regression)."""
        if self.codec is None:
            return (None,)
        return tuple(self.codec.decoders)  # the heatmap codec's, or the Gaussian-vector codec's own

    @property
    def default_decoder(self):
        """The config's decoder (``MODEL.HEATMAP.DECODER`` / ``VECTOR_DECODER``), None for regression."""
        return None if self.codec is None else self.codec.decoder

    def host(self, out):
        """The inference output as numpy: the ``'landmarks'`` element of a tuple (``outputs``; without them the
        last element) and the last decoder layer of a (L, B, N, 2) deep-supervision output.

        Raises
        ------
        ValueError
            A tuple of another length than ``outputs``.
        """
        if isinstance(out, (list, tuple)):
            if self.outputs is None:
                out = out[-1]
            elif len(out) != len(self.outputs):
                raise ValueError("the network returned %d outputs; this post-processor knows %d (%s)"
                                 % (len(out), len(self.outputs), ", ".join(self.outputs)))
            else:
                out = out[self.outputs.index("landmarks")]
        if self.deep_supervision:  # (L, B, N, 2): the last decoder layer
            out = out[-1]
        return out.asnumpy() if isinstance(out, mx.nd.NDArray) else np.asarray(out)

    def decode(self, out, decoder=None):
        """(B, N, 2) float32 crop pixels from a host (numpy) output; ``decoder`` for heatmap models (None:
        the default)."""
        if self.codec is None:
            return np.asarray(out, np.float32)
        return np.asarray(self.codec.decode(out, decoder)[0], np.float32)

    def __call__(self, out, decoder=None):
        """:meth:`decode` of :meth:`host`."""
        return self.decode(self.host(out), decoder)

    def flip_average(self, points, mirrored):
        """``(points + unmirror(mirrored)) / 2`` in the dtype of ``points`` (LOTR Sec. IV-C, Earp Sec. 5.1).

        Parameters
        ----------
        points : ndarray (B, N, 2)
            Predictions on the crops.
        mirrored : ndarray (B, N, 2)
            Predictions on the horizontally mirrored crops; mirrored back with
            :func:`lotr_gluon.data.augment.flip_points` and the scheme's permutation.

        Raises
        ------
        ValueError
            No flip permutation was given.
        """
        if self.flip_perm is None:
            raise ValueError("flip test needs the scheme's flip permutation")
        points = np.asarray(points)
        return 0.5 * (points + flip_points(mirrored, self.input_size, self.flip_perm).astype(points.dtype))


def build_criterion(cfg, net):
    """The training :class:`Criterion` of ``cfg``'s model ``net`` (built with
    :func:`lotr_gluon.model_zoo.build_model`)."""
    kind = model_kind(cfg)
    loss = build_loss(cfg)
    if kind != "regression":
        return Criterion(loss, target_codec=net.codec, dense=True)
    aux = build_aux_heatmap(cfg, net)
    return Criterion(loss, target_codec=aux[0] if aux else None, aux_loss=aux[1] if aux else None,
                     deep_supervision=deep_supervision(net))


def build_postprocessor(cfg, net):
    """The :class:`PostProcessor` of ``cfg``'s model ``net``: the heatmap / vector codec's decoder, or the
    identity for coordinate regression; the scheme's flip permutation (:func:`flip_permutation`); the names of
    ``net``'s tuple output (:func:`output_names`)."""
    codec = net.codec if model_kind(cfg) != "regression" else None
    return PostProcessor(cfg.DATA.INPUT_SIZE, flip_permutation(cfg), codec, output_names(net),
                         deep_supervision(net))


def build(cfg, anchors=None, ctx=None, train=True, initialize=True):
    """``(net, criterion, postprocessor)`` of a config (DETR's ``build(args)``).

    Parameters
    ----------
    cfg : CfgNode
    anchors : array (N, 2) or None
        Mean training shape in crop pixels when :func:`needs_anchors` (added to the PFFN output of LOTR
        eq. (19); not in the paper).
    ctx : Context or list of Context
    train : bool
        True: the training model (pretrained backbone as configured, training-only heads) and its
        :class:`Criterion`. False: the inference model of :func:`inference_config` and ``criterion`` None
        (:func:`load_model` adds trained weights).
    initialize : bool
        Initialise the parameters (:func:`lotr_gluon.model_zoo.build_model`).

    Raises
    ------
    ModelError
        Unknown model or backbone.
    """
    check_model_config(cfg)
    if not train:
        cfg = inference_config(cfg)
    net = build_model(cfg, anchors=anchors, ctx=ctx, initialize=initialize)
    return net, build_criterion(cfg, net) if train else None, build_postprocessor(cfg, net)


def inference_config(cfg, opts=()):
    """A frozen copy of ``cfg`` (with ``KEY VALUE`` ``opts``) for a model whose weights all come from a
    file or a seed: no pretrained backbone (``MODEL.BACKBONE.PRETRAINED`` off and no
    ``MODEL.BACKBONE.PRETRAINED_FILE``: nothing is downloaded or read) and no training-only heads
    (``MODEL.AUX.HEATMAP_WEIGHT`` 0: the auxiliary heatmap head is not built, so that the forward pass uses
    every parameter and Gluon prints no "Parameter ... is not used" warning)."""
    cfg = cfg.clone()
    cfg.defrost()
    cfg.merge_from_list(list(opts))
    cfg.MODEL.BACKBONE.PRETRAINED = False
    cfg.MODEL.BACKBONE.PRETRAINED_FILE = ""
    cfg.MODEL.AUX.HEATMAP_WEIGHT = 0.0
    cfg.freeze()
    return cfg


def load_model(cfg, params=None, ctx=None, anchors=None):
    """THE way to get a trained model: ``(net, postprocessor)`` of ``cfg`` with the weights of ``params``.

    The model is built from :func:`inference_config` (no pretrained backbone, no training-only heads) and
    the weights are checked by :func:`load_params` (their file, format and architecture); the training-only
    heads' weights in ``params`` are skipped. Used by evaluation (``tools/test.py``, the tables), the
    predictor, export, the benchmark and the tools.

    Parameters
    ----------
    cfg : CfgNode
        The config the weights were trained with.
    params : str or None
        Weights (``net.save_parameters``); None: random initialisation (seed ``mx.random`` first).
    ctx : Context
    anchors : array (N, 2), optional
        Mean training shape when :func:`needs_anchors`.

    Raises
    ------
    ModelError
        Unknown model or backbone; ``params`` missing, unreadable or of another architecture
        (:class:`ParamsFileError`).
    """
    net, _, post = build(cfg, anchors, ctx, train=False, initialize=params is None)
    if params is not None:
        load_params(net, params, ctx=ctx, cfg_name="%s (MODEL.NAME %s, MODEL.BACKBONE.NAME %s)"
                    % (getattr(cfg, "CFG_NAME", "") or "this config", cfg.MODEL.NAME, cfg.MODEL.BACKBONE.NAME))
    return net, post
