"""Model zoo: the one registry from a model name to its builder (:data:`MODELS`), gluoncv-style
:func:`get_model` (keywords) and the config boundary :func:`build_model`.

Each entry of :data:`MODELS` names the keyword builder of its family (:func:`make_lotr`, :func:`make_cnn_ffn`,
:class:`heatmap_baseline.model.EarpHeatmapNet`, :class:`heatmap_baseline.vector.EarpVectorNet`), the function
that reads the model's config sections into those keywords (one config section each, as DETR's
``build_backbone(args)`` / ``build_transformer(args)``), the kind of output and, for the paper's named
models, their keywords. :func:`get_model` calls the builder with the keywords, :func:`build_model` with the
keywords read from the config: one builder per model, whichever way it is asked for.

================================  ==================================================
part                              config section
================================  ==================================================
CNN backbone                      ``MODEL.BACKBONE``
LOTR / CNN+FFN neck               ``MODEL.NECK``
Transformer (+ P, Y^0 inits)      ``MODEL.TRANSFORMER``
PFFN head + crop-pixel output     ``MODEL.HEAD``
auxiliary heatmap head (LOTR)     ``MODEL.HEATMAP`` (``MODEL.AUX.HEATMAP_WEIGHT``)
Earp heatmap / vector network     ``MODEL.BACKBONE``, ``MODEL.HEATMAP``
================================  ==================================================

This module sits above both model packages (:mod:`lotr_gluon.models`, :mod:`heatmap_baseline`), which never
import each other: LOTR's training-only auxiliary heatmap head is built here
(:func:`heatmap_baseline.upsampling.heatmap_head`) and handed to :class:`lotr_gluon.models.LOTR` as a part.
"""
import os
from dataclasses import dataclass, field
from typing import Callable, Dict

import numpy as np
import mxnet as mx

from heatmap_baseline.model import EarpHeatmapNet
from heatmap_baseline.upsampling import heatmap_head
from heatmap_baseline.vector import EarpVectorNet
from .blocks.backbones import get_backbone
from .blocks.layers import he_init, model_scope
from .models import CNNFFN, LOTR, Transformer, conv_neck, landmark_head, token_neck

__all__ = ["MODELS", "ModelEntry", "get_model", "build_model", "make_lotr", "make_cnn_ffn", "model_names",
           "count_params", "load_matching", "inference_params"]


# ------------------------------------------------------------------ keyword builders: parts built and composed

def make_lotr(backbone="mobilenetv2_1.0", num_points=106, input_size=192, hidden_dim=64, upsample=False,
              upsample_reduce=256, upsample_filters=(128, 64), upsample_kernel=4, upsample_batchnorm=False,
              head_hidden=(512, 512), coord_units="input_frac", use_anchors=False, anchors=None,
              head_last_init_std=1e-3, head_per_landmark_out=False, aux_outputs=False, aux_heatmap=False,
              pretrained=False, pretrained_file="", pretrained_root="", hrnet_stride=None, **kwargs):
    """LOTR from keywords: builds the parts and composes them (``get_model('lotr', ...)``, the paper presets and
    :func:`build_model`).

    Parameters
    ----------
    backbone, pretrained, pretrained_file, pretrained_root, hrnet_stride :
        :func:`lotr_gluon.blocks.backbones.get_backbone` (name, weights, HRNet output stride).
    num_points, input_size : int
        N landmarks (= landmark queries); side of the input crop, pixels.
    hidden_dim, upsample, upsample_reduce, upsample_filters, upsample_kernel, upsample_batchnorm :
        :func:`lotr_gluon.models.lotr.token_neck` (Table I: D = 64; the "+" models 256 -> 128 -> 64).
    head_hidden, coord_units, use_anchors, anchors, head_last_init_std, head_per_landmark_out :
        :func:`lotr_gluon.models.heads.landmark_head`.
    aux_outputs : bool
        Return the prediction of every decoder layer, (num_decoder_layers, B, N, 2), for deep supervision.
    aux_heatmap : bool
        Build the training-only auxiliary heatmap head (:func:`heatmap_baseline.upsampling.heatmap_head`); its
        layout comes from the ``aux_heatmap_<name>`` keywords (``aux_heatmap_upsampler``, ``_filters``,
        ``_reduce``, ... : ``heatmap_head``'s arguments; default ``'SDD'``, 32, 256: 48x48 heatmaps at 192x192
        with a stride-32 backbone).
    **kwargs
        ``aux_heatmap_*`` as above; the others are :class:`lotr_gluon.models.transformer.Transformer` options
        (``num_heads``, ``num_encoder_layers``, ``dropout``, ``final_norm``, ``pos_init``, ...).
    """
    aux_kw = {k[len("aux_heatmap_"):]: kwargs.pop(k) for k in list(kwargs) if k.startswith("aux_heatmap_")}
    with model_scope(LOTR) as prefix:  # parameter names as if LOTR built its parts itself
        trunk = get_backbone(backbone, pretrained, pretrained_file, pretrained_root, hrnet_stride)[0]
        aux = heatmap_head(trunk.num_channels, num_points, **aux_kw) if aux_heatmap else None
        neck = token_neck(trunk.num_channels, hidden_dim, upsample, upsample_reduce, tuple(upsample_filters),
                          upsample_kernel, upsample_batchnorm)
        transformer = Transformer(hidden_dim, return_intermediate=aux_outputs, weight_initializer=he_init(),
                                  prefix="transformer_", **kwargs)
        head, output = landmark_head(hidden_dim, num_points, input_size, tuple(head_hidden), coord_units,
                                     anchors, use_anchors, head_last_init_std, head_per_landmark_out)
    return LOTR(trunk, neck, transformer, head, output, aux, input_size, prefix=prefix)


def make_cnn_ffn(backbone="mobilenetv2_1.0", num_points=106, input_size=192, hidden_dim=64, head_hidden=(512, 512),
                 dropout=0.0, coord_units="input_frac", use_anchors=False, anchors=None, head_last_init_std=1e-3,
                 pretrained=False, pretrained_file="", pretrained_root="", hrnet_stride=None):
    """CNN+FFN from keywords (``get_model('cnn_ffn', ...)``, the presets ``cnn_ffn_mnv2``, ``cnn_ffn_r50`` and
    :func:`build_model`); the arguments are those of :func:`make_lotr` that apply."""
    with model_scope(CNNFFN) as prefix:  # parameter names as if CNNFFN built its parts itself
        trunk = get_backbone(backbone, pretrained, pretrained_file, pretrained_root, hrnet_stride)[0]
        grid = input_size // trunk.stride
        neck = conv_neck(trunk.num_channels, hidden_dim)
        head, output = landmark_head(grid * grid * hidden_dim, num_points, input_size, tuple(head_hidden),
                                     coord_units, anchors, use_anchors, head_last_init_std, flatten=True)
    return CNNFFN(trunk, neck, head, output, dropout, input_size, prefix=prefix)


# ------------------------------------------------------------------ config sections -> keywords (one each)

def _backbone_keywords(bcfg):
    """``MODEL.BACKBONE``: NAME, PRETRAINED, PRETRAINED_FILE, PRETRAINED_ROOT, HRNET_STRIDE (HRNet only)."""
    return dict(backbone=bcfg.NAME, pretrained=bcfg.PRETRAINED, pretrained_file=bcfg.PRETRAINED_FILE,
                pretrained_root=bcfg.PRETRAINED_ROOT,
                hrnet_stride=bcfg.HRNET_STRIDE if bcfg.NAME.startswith("hrnet") else None)


def _neck_keywords(ncfg):
    """``MODEL.NECK`` (the UPSAMPLE keys are LOTR's)."""
    return dict(hidden_dim=ncfg.HIDDEN_DIM, upsample=ncfg.UPSAMPLE, upsample_reduce=ncfg.UPSAMPLE_REDUCE,
                upsample_filters=tuple(ncfg.UPSAMPLE_FILTERS), upsample_kernel=ncfg.UPSAMPLE_KERNEL,
                upsample_batchnorm=ncfg.UPSAMPLE_BATCHNORM)


#: ``MODEL.TRANSFORMER`` keys whose Transformer argument is not the lower-cased key
_TRANSFORMER_ARGS = {"ENC_LAYERS": "num_encoder_layers", "DEC_LAYERS": "num_decoder_layers"}


def _transformer_keywords(tcfg):
    """``MODEL.TRANSFORMER``: every key is the Transformer argument of the same name in lower case (ENC_LAYERS,
    DEC_LAYERS: ``num_encoder_layers``, ``num_decoder_layers``), so a new option is a key of the section and an
    argument of the block, nothing else."""
    return {_TRANSFORMER_ARGS.get(k, k.lower()): v for k, v in tcfg.items()}


def _head_keywords(hcfg, anchors):
    """``MODEL.HEAD`` (HIDDEN, COORD_UNITS, ANCHORS, LAST_INIT_STD); ``anchors``: (N, 2) crop pixels, the mean
    training shape for ANCHORS ``mean_shape`` (None: a placeholder filled by ``load_parameters``).

    Raises
    ------
    ValueError
        ANCHORS not 'none' or 'mean_shape'.
    """
    if hcfg.ANCHORS not in ("none", "mean_shape"):
        raise ValueError("MODEL.HEAD.ANCHORS must be 'none' or 'mean_shape', got %r" % (hcfg.ANCHORS,))
    use_anchors = hcfg.ANCHORS != "none"
    return dict(head_hidden=tuple(hcfg.HIDDEN), coord_units=hcfg.COORD_UNITS, use_anchors=use_anchors,
                anchors=anchors if use_anchors else None, head_last_init_std=hcfg.LAST_INIT_STD)


def _heatmap_keywords(hmcfg):
    """``MODEL.HEATMAP``'s head layout (UPSAMPLER, FILTERS, REDUCE, S_BLOCK, D_KERNEL, S_KERNEL, S_CONV_MULT,
    CONV, KERNEL, PRE_KERNEL, FINAL_S_KERNEL, FINAL_S_ACT): the arguments of
    :func:`heatmap_baseline.upsampling.heatmap_head` and of the Earp networks."""
    return dict(upsampler=hmcfg.UPSAMPLER, filters=hmcfg.FILTERS, reduce=hmcfg.REDUCE, s_block=hmcfg.S_BLOCK,
                d_kernel=hmcfg.D_KERNEL, s_kernel=hmcfg.S_KERNEL, s_conv_mult=hmcfg.S_CONV_MULT,
                heatmap_conv=hmcfg.CONV, heatmap_kernel=hmcfg.KERNEL, heatmap_pre_kernel=hmcfg.PRE_KERNEL,
                final_s_kernel=hmcfg.FINAL_S_KERNEL, final_s_act=hmcfg.FINAL_S_ACT)


def _lotr_config(cfg, anchors):
    m = cfg.MODEL
    kw = dict(_backbone_keywords(m.BACKBONE), num_points=m.NUM_POINTS, input_size=cfg.DATA.INPUT_SIZE,
              **_neck_keywords(m.NECK), **_transformer_keywords(m.TRANSFORMER), **_head_keywords(m.HEAD, anchors),
              head_per_landmark_out=m.HEAD.PER_LANDMARK_OUT, aux_outputs=m.AUX.DECODER_LOSS)
    if m.AUX.HEATMAP_WEIGHT > 0:  # training-only head (not in the paper); LOTR never needs it for inference
        kw.update(aux_heatmap=True, **{"aux_heatmap_" + k: v for k, v in _heatmap_keywords(m.HEATMAP).items()})
    return kw


def _cnn_ffn_config(cfg, anchors):
    m = cfg.MODEL
    if m.AUX.HEATMAP_WEIGHT > 0:
        raise ValueError("MODEL.AUX.HEATMAP_WEIGHT is implemented for MODEL.NAME lotr only")
    return dict(_backbone_keywords(m.BACKBONE), num_points=m.NUM_POINTS, input_size=cfg.DATA.INPUT_SIZE,
                hidden_dim=m.NECK.HIDDEN_DIM, **_head_keywords(m.HEAD, anchors))


def _earp_config(cfg, anchors):
    m = cfg.MODEL
    return dict(_backbone_keywords(m.BACKBONE), num_points=m.NUM_POINTS, input_size=cfg.DATA.INPUT_SIZE,
                sigma=m.HEATMAP.SIGMA, decoder=m.HEATMAP.DECODER, **_heatmap_keywords(m.HEATMAP))


def _earp_vector_config(cfg, anchors):
    hm = cfg.MODEL.HEATMAP
    return dict(_earp_config(cfg, anchors), decoder=hm.VECTOR_DECODER, bandwidths=tuple(hm.VECTOR_BANDWIDTHS),
                theta=hm.VECTOR_THETA)


# ---------------------------------------------------------------------- the registry

@dataclass(frozen=True)
class ModelEntry:
    """One model name of :data:`MODELS`.

    Attributes
    ----------
    make : callable
        The keyword builder, ``make(**keywords) -> block`` (not initialised).
    config_keywords : callable
        ``(cfg, anchors) -> keywords``: the model's config sections read into ``make``'s keywords.
    output : str
        What the network returns: ``'regression'`` ((B, N, 2) crop pixels), ``'heatmap'`` ((B, N, h, w)) or
        ``'vector'`` ((B, N, 2, S) Gaussian vectors).
    preset : dict
        The keywords of a named model of the papers (LOTR Table I, Sec. IV-G-2), for :func:`get_model`; a
        config of that ``MODEL.NAME`` spells them out in its own keys.
    """
    make: Callable
    config_keywords: Callable
    output: str = "regression"
    preset: Dict = field(default_factory=dict)


_LOTR = dict(make=make_lotr, config_keywords=_lotr_config)
_CNN_FFN = dict(make=make_cnn_ffn, config_keywords=_cnn_ffn_config)
_PLUS = dict(upsample=True, upsample_reduce=256, upsample_filters=(128, 64))

#: ``MODEL.NAME`` / :func:`get_model` name -> :class:`ModelEntry`
MODELS = {
    "lotr": ModelEntry(**_LOTR),
    "cnn_ffn": ModelEntry(**_CNN_FFN),
    "earp_heatmap": ModelEntry(EarpHeatmapNet, _earp_config, "heatmap"),
    "earp_vector": ModelEntry(EarpVectorNet, _earp_vector_config, "vector"),  # LOTR Table V "with vectorization"
    "lotr_m": ModelEntry(**_LOTR, preset=dict(backbone="mobilenetv2_1.0")),
    "lotr_m_plus": ModelEntry(**_LOTR, preset=dict(backbone="mobilenetv2_1.0", **_PLUS)),
    "lotr_r_plus": ModelEntry(**_LOTR, preset=dict(backbone="resnet50_v1", **_PLUS)),
    "lotr_hr_plus": ModelEntry(**_LOTR, preset=dict(backbone="hrnet_w18", hrnet_stride=32, **_PLUS)),  # as M+ / R+
    "cnn_ffn_mnv2": ModelEntry(**_CNN_FFN, preset=dict(backbone="mobilenetv2_1.0")),
    "cnn_ffn_r50": ModelEntry(**_CNN_FFN, preset=dict(backbone="resnet50_v1")),
}


def model_names():
    """The registered model names, sorted."""
    return sorted(MODELS)


def model_entry(name):
    """The :class:`ModelEntry` of ``name``.

    Raises
    ------
    KeyError
        Unknown name; the message lists the valid names.
    """
    if name not in MODELS:
        raise KeyError("unknown model %r; valid: %s" % (name, ", ".join(model_names())))
    return MODELS[name]


def get_model(name, **kwargs):
    """Build a model by registry name (``lotr``, ``cnn_ffn``, ``earp_heatmap``, ``earp_vector``) or paper preset
    (``lotr_m``, ``lotr_m_plus``, ``lotr_r_plus``, ``lotr_hr_plus``, ``cnn_ffn_mnv2``, ``cnn_ffn_r50``).

    Keyword arguments go to the model's keyword builder (:func:`make_lotr`, :func:`make_cnn_ffn`,
    :class:`heatmap_baseline.model.EarpHeatmapNet`, :class:`heatmap_baseline.vector.EarpVectorNet`) and
    override the preset's. The returned block is not initialised; call ``net.initialize_params()``.

    Raises
    ------
    KeyError
        Unknown name; the message lists the valid names.
    """
    entry = model_entry(name)
    return entry.make(**dict(entry.preset, **kwargs))


def build_model(cfg, anchors=None, ctx=None, initialize=True):
    """The one place where the configuration meets the model code: the model of ``MODEL.NAME`` built by its
    registry entry from the keywords of its config sections (module docstring).

    Parameters
    ----------
    cfg : CfgNode
    anchors : array (N, 2) or None
        Mean training shape in crop pixels, used when ``MODEL.HEAD.ANCHORS = 'mean_shape'``.
    ctx : Context or list of Context
    initialize : bool
        Initialise the parameters (He init; the backbone keeps loaded ImageNet weights), then copy
        ``MODEL.INIT_FROM`` (:func:`load_matching`).

    Raises
    ------
    KeyError
        Unknown ``MODEL.NAME`` (the message lists the valid names).
    ValueError
        An invalid option of a part.
    """
    entry = model_entry(cfg.MODEL.NAME)
    net = entry.make(**entry.config_keywords(cfg, anchors))
    if initialize:
        net.initialize_params(ctx)
        if cfg.MODEL.INIT_FROM:
            load_matching(net, cfg.MODEL.INIT_FROM, tuple(cfg.MODEL.INIT_FROM_PREFIXES))
    return net


def load_matching(net, params_file, prefixes=("backbone.",)):
    """Copy into an initialised ``net`` the tensors of ``params_file`` (a ``save_parameters`` file of any of
    our models) whose structural name starts with one of ``prefixes`` and whose shape matches, e.g. the
    backbone of a trained heatmap model into LOTR (the two name their trunk ``backbone.``).

    Returns the number of tensors copied.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        A selected tensor's shape differs, or nothing was selected (the message lists the file's prefixes).
    """
    if not os.path.isfile(params_file):
        raise FileNotFoundError("MODEL.INIT_FROM: no such parameter file: %s" % params_file)
    saved = mx.nd.load(params_file)
    own = net._collect_params_with_prefix()
    if any(0 in p.shape for p in own.values()):  # gluoncv layers get their shapes on the first forward
        first = next(iter(own.values()))
        net(mx.nd.zeros((1, 3, net.input_size, net.input_size), ctx=first.list_ctx()[0]))
    n = 0
    for name, arr in saved.items():
        if not name.startswith(tuple(prefixes)) or name not in own:
            continue
        p = own[name]
        if tuple(p.shape) != tuple(arr.shape):
            raise ValueError("MODEL.INIT_FROM: %s has shape %s in %s but %s in the model"
                             % (name, arr.shape, params_file, p.shape))
        p.set_data(arr)
        n += 1
    if n == 0:
        heads = sorted({k.split(".")[0] + "." for k in saved})
        raise ValueError("MODEL.INIT_FROM: no tensor of %s starts with %s and exists in the model; the file's "
                         "prefixes are %s" % (params_file, list(prefixes), heads))
    return n


def inference_params(net, include_training_heads=False):
    """The parameters of ``net`` that inference and export use: all of them except a training-only
    auxiliary heatmap head (LOTR ``aux_heatmap``), unless ``include_training_heads``. A list of Parameter."""
    params = list(net.collect_params().values())
    aux = net.aux_heatmap if isinstance(net, LOTR) else None
    if aux is None or include_training_heads:
        return params
    skip = set(aux.collect_params().keys())
    return [p for p in params if p.name not in skip]


def count_params(net, include_training_heads=False):
    """Number of parameters of the inference model (all, trainable or not, including BatchNorm statistics as
    gluoncv counts; a training-only auxiliary heatmap head is left out unless ``include_training_heads``).

    gluoncv layers infer their input channels on the first forward pass, so an initialised net whose shapes
    are still unknown is run once on a zero image of ``net.input_size``.
    """
    params = list(net.collect_params().values())
    if any(0 in p.shape for p in params):
        if params and params[0]._data is None and not params[0]._deferred_init:
            raise ValueError("initialise the net (net.initialize_params()) before counting its parameters")
        net(mx.nd.zeros((1, 3, net.input_size, net.input_size), ctx=params[0].list_ctx()[0]))
    return int(sum(np.prod(p.shape) for p in inference_params(net, include_training_heads)))
