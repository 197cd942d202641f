"""Model zoo: a gluoncv-style registry (:func:`get_model`, keywords) and the config boundary
(:func:`build_model`): one builder per part, each reading only its own config section, as DETR's
``build_backbone(args)`` / ``build_transformer(args)``, and one per model composing the parts:

================================  ===============================  ===========================================
part                              builder                          config section
================================  ===============================  ===========================================
CNN backbone                      :func:`build_backbone`           ``MODEL.BACKBONE``
LOTR / CNN+FFN neck               :func:`build_neck`               ``MODEL.NECK``
Transformer (+ P, Y^0 inits)      :func:`build_transformer`        ``MODEL.TRANSFORMER``
PFFN head + crop-pixel output     :func:`build_head`               ``MODEL.HEAD``
auxiliary heatmap head (LOTR)     :func:`build_aux_heatmap_head`   ``MODEL.HEATMAP`` (``MODEL.AUX.HEATMAP_WEIGHT``)
Earp heatmap / vector network     :func:`build_earp`               ``MODEL.BACKBONE``, ``MODEL.HEATMAP``
================================  ===============================  ===========================================

Layer 4 of the README's "Layers": imports the model families (:mod:`lotr_gluon.models.lotr`,
:mod:`lotr_gluon.models.cnn_ffn`, :mod:`heatmap_baseline`), which never import it back.
"""
from heatmap_baseline.model import EarpHeatmapNet
from heatmap_baseline.upsampling import heatmap_head
from heatmap_baseline.vector import EarpVectorNet
from ..blocks.backbones import BACKBONES, get_backbone
from ..blocks.layers import he_init, model_scope
from .cnn_ffn import CNNFFN, conv_neck, make_cnn_ffn
from .heads import landmark_head
from .lotr import LOTR, make_lotr, token_neck
from .transformer import Transformer, MultiHeadAttention

__all__ = ["get_model", "build_model", "MODELS", "PRESETS", "BUILDERS", "LOTR", "CNNFFN", "EarpHeatmapNet",
           "EarpVectorNet", "Transformer", "MultiHeadAttention", "get_backbone", "BACKBONES", "build_backbone",
           "build_neck", "build_transformer", "build_head", "build_aux_heatmap_head", "build_earp",
           "count_params", "load_matching", "inference_params"]

# registry (MODEL.NAME / get_model): name -> the model built from keywords
MODELS = {"lotr": make_lotr, "cnn_ffn": make_cnn_ffn, "earp_heatmap": EarpHeatmapNet,
          "earp_vector": EarpVectorNet}  # earp_vector: LOTR Table V "with vectorization" (Gaussian vectors)

# named models of the papers (LOTR Table I, Sec. IV-G-2)
_PLUS = dict(upsample=True, upsample_reduce=256, upsample_filters=(128, 64))
PRESETS = {
    "lotr_m": ("lotr", dict(backbone="mobilenetv2_1.0")),
    "lotr_m_plus": ("lotr", dict(backbone="mobilenetv2_1.0", **_PLUS)),
    "lotr_r_plus": ("lotr", dict(backbone="resnet50_v1", **_PLUS)),
    "lotr_hr_plus": ("lotr", dict(backbone="hrnet_w18", hrnet_stride=32, **_PLUS)),  # Sec. IV-C: as M+ / R+
    "cnn_ffn_mnv2": ("cnn_ffn", dict(backbone="mobilenetv2_1.0")),
    "cnn_ffn_r50": ("cnn_ffn", dict(backbone="resnet50_v1")),
}


def get_model(name, **kwargs):
    """Build a model by registry name (``lotr``, ``cnn_ffn``, ``earp_heatmap``, ``earp_vector``) or paper preset
    (``lotr_m``, ``lotr_m_plus``, ``lotr_r_plus``, ``lotr_hr_plus``, ``cnn_ffn_mnv2``, ``cnn_ffn_r50``).

    Keyword arguments go to the model's keyword builder (:func:`lotr_gluon.models.lotr.make_lotr`,
    :func:`lotr_gluon.models.cnn_ffn.make_cnn_ffn`, :class:`heatmap_baseline.model.EarpHeatmapNet`,
    :class:`heatmap_baseline.vector.EarpVectorNet`) and override the preset's. The returned block is not
    initialised; call ``net.initialize_params()``.

    Raises
    ------
    KeyError
        Unknown name; the message lists the valid names.
    """
    if name in PRESETS:
        family, preset = PRESETS[name]
        return MODELS[family](**dict(preset, **kwargs))
    if name in MODELS:
        return MODELS[name](**kwargs)
    raise KeyError("unknown model %r; valid: %s" % (name, ", ".join(sorted(set(MODELS) | set(PRESETS)))))


# ------------------------------------------------------------------ part builders: one config section each

def _backbone_kwargs(bcfg):
    return dict(backbone=bcfg.NAME, pretrained=bcfg.PRETRAINED, pretrained_file=bcfg.PRETRAINED_FILE,
                pretrained_root=bcfg.PRETRAINED_ROOT,
                hrnet_stride=bcfg.HRNET_STRIDE if bcfg.NAME.startswith("hrnet") else None)


def build_backbone(bcfg):
    """The CNN trunk of ``MODEL.BACKBONE`` (NAME, PRETRAINED, PRETRAINED_FILE, PRETRAINED_ROOT, HRNET_STRIDE for
    HRNet), with its attributes ``num_channels``, ``stride``, ``pretrained_loaded``
    (:func:`lotr_gluon.blocks.backbones.get_backbone`)."""
    kw = _backbone_kwargs(bcfg)
    return get_backbone(kw["backbone"], kw["pretrained"], kw["pretrained_file"], kw["pretrained_root"],
                        kw["hrnet_stride"])[0]


def build_neck(ncfg, in_channels, tokens=True):
    """The neck of ``MODEL.NECK`` on ``in_channels`` backbone channels: LOTR's (``tokens``, 1x1 conv and the
    "+" models' deconvolutions, :func:`lotr_gluon.models.lotr.token_neck`) or CNN+FFN's (the 1x1 conv to
    HIDDEN_DIM only, :func:`lotr_gluon.models.cnn_ffn.conv_neck`; the UPSAMPLE keys do not apply)."""
    if not tokens:
        return conv_neck(in_channels, ncfg.HIDDEN_DIM)
    return token_neck(in_channels, ncfg.HIDDEN_DIM, ncfg.UPSAMPLE, ncfg.UPSAMPLE_REDUCE,
                      tuple(ncfg.UPSAMPLE_FILTERS), ncfg.UPSAMPLE_KERNEL, ncfg.UPSAMPLE_BATCHNORM)


#: ``MODEL.TRANSFORMER`` keys whose Transformer argument is not the lower-cased key
_TRANSFORMER_ARGS = {"ENC_LAYERS": "num_encoder_layers", "DEC_LAYERS": "num_decoder_layers"}


def build_transformer(tcfg, units, return_intermediate=False):
    """The :class:`Transformer` of ``MODEL.TRANSFORMER``, width ``units`` (= ``MODEL.NECK.HIDDEN_DIM``).

    Every key of the section is passed as the Transformer argument of the same name in lower case (ENC_LAYERS,
    DEC_LAYERS: ``num_encoder_layers``, ``num_decoder_layers``), so a new option is a key of the section and an
    argument of the block, nothing else. ``return_intermediate``: every decoder layer's output
    (``MODEL.AUX.DECODER_LOSS``)."""
    kw = {_TRANSFORMER_ARGS.get(k, k.lower()): v for k, v in tcfg.items()}
    return Transformer(units, return_intermediate=return_intermediate, weight_initializer=he_init(),
                       prefix="transformer_", **kw)


def build_head(hcfg, in_units, num_points, input_size, anchors=None, flatten=False):
    """``(head, output)`` of ``MODEL.HEAD`` (HIDDEN, COORD_UNITS, ANCHORS, LAST_INIT_STD, PER_LANDMARK_OUT):
    :func:`lotr_gluon.models.heads.landmark_head`. ``anchors``: (N, 2) crop pixels, the mean training shape for
    ANCHORS ``mean_shape`` (None: a placeholder filled by ``load_parameters``). ``flatten``: CNN+FFN, whose one
    FFN has no per-landmark layer (PER_LANDMARK_OUT does not apply).

    Raises
    ------
    ValueError
        ANCHORS not 'none' or 'mean_shape'; an unknown COORD_UNITS.
    """
    if hcfg.ANCHORS not in ("none", "mean_shape"):
        raise ValueError("MODEL.HEAD.ANCHORS must be 'none' or 'mean_shape', got %r" % (hcfg.ANCHORS,))
    use_anchors = hcfg.ANCHORS != "none"
    return landmark_head(in_units, num_points, input_size, tuple(hcfg.HIDDEN), hcfg.COORD_UNITS,
                         anchors if use_anchors else None, use_anchors, hcfg.LAST_INIT_STD,
                         hcfg.PER_LANDMARK_OUT and not flatten, flatten)


def build_aux_heatmap_head(hmcfg, in_channels, num_points):
    """LOTR's training-only auxiliary heatmap head with the layout of ``MODEL.HEATMAP`` (the Earp head:
    UPSAMPLER, FILTERS, REDUCE, S_BLOCK, D_KERNEL, S_KERNEL, S_CONV_MULT, CONV, KERNEL, PRE_KERNEL,
    FINAL_S_KERNEL, FINAL_S_ACT; :func:`heatmap_baseline.upsampling.heatmap_head`)."""
    return heatmap_head(in_channels, num_points, hmcfg.UPSAMPLER, hmcfg.FILTERS, hmcfg.REDUCE, hmcfg.S_BLOCK,
                        hmcfg.D_KERNEL, hmcfg.S_KERNEL, hmcfg.S_CONV_MULT, hmcfg.CONV, hmcfg.KERNEL,
                        hmcfg.PRE_KERNEL, hmcfg.FINAL_S_KERNEL, final_s_act=hmcfg.FINAL_S_ACT)


def build_earp(bcfg, hmcfg, num_points, input_size, vector=False):
    """The Earp et al. heatmap network (``vector``: + band pooling, LOTR Table V "with vectorization") of
    ``MODEL.BACKBONE`` and ``MODEL.HEATMAP``."""
    kw = dict(_backbone_kwargs(bcfg), num_points=num_points, input_size=input_size, upsampler=hmcfg.UPSAMPLER,
              filters=hmcfg.FILTERS, reduce=hmcfg.REDUCE, s_block=hmcfg.S_BLOCK, sigma=hmcfg.SIGMA,
              decoder=hmcfg.DECODER, d_kernel=hmcfg.D_KERNEL, s_kernel=hmcfg.S_KERNEL,
              s_conv_mult=hmcfg.S_CONV_MULT, heatmap_conv=hmcfg.CONV, heatmap_kernel=hmcfg.KERNEL,
              heatmap_pre_kernel=hmcfg.PRE_KERNEL, final_s_kernel=hmcfg.FINAL_S_KERNEL,
              final_s_act=hmcfg.FINAL_S_ACT)
    if not vector:
        return EarpHeatmapNet(**kw)
    kw.update(decoder=hmcfg.VECTOR_DECODER, bandwidths=tuple(hmcfg.VECTOR_BANDWIDTHS), theta=hmcfg.VECTOR_THETA)
    return EarpVectorNet(**kw)


# ---------------------------------------------------------------------- model builders: parts composed

def _build_lotr(cfg, anchors):
    m = cfg.MODEL
    with model_scope(LOTR) as prefix:  # the parameter names of a LOTR that built its parts itself
        backbone = build_backbone(m.BACKBONE)
        aux = None
        if m.AUX.HEATMAP_WEIGHT > 0:  # training-only head (not in the paper); LOTR never needs it for inference
            aux = build_aux_heatmap_head(m.HEATMAP, backbone.num_channels, m.NUM_POINTS)
        neck = build_neck(m.NECK, backbone.num_channels)
        transformer = build_transformer(m.TRANSFORMER, m.NECK.HIDDEN_DIM, return_intermediate=m.AUX.DECODER_LOSS)
        head, output = build_head(m.HEAD, m.NECK.HIDDEN_DIM, m.NUM_POINTS, cfg.DATA.INPUT_SIZE, anchors)
    return LOTR(backbone, neck, transformer, head, output, aux, cfg.DATA.INPUT_SIZE, prefix=prefix)


def _build_cnn_ffn(cfg, anchors):
    m = cfg.MODEL
    if m.AUX.HEATMAP_WEIGHT > 0:
        raise ValueError("MODEL.AUX.HEATMAP_WEIGHT is implemented for MODEL.NAME lotr only")
    with model_scope(CNNFFN) as prefix:
        backbone = build_backbone(m.BACKBONE)
        grid = cfg.DATA.INPUT_SIZE // backbone.stride
        neck = build_neck(m.NECK, backbone.num_channels, tokens=False)
        head, output = build_head(m.HEAD, grid * grid * m.NECK.HIDDEN_DIM, m.NUM_POINTS, cfg.DATA.INPUT_SIZE,
                                  anchors, flatten=True)
    return CNNFFN(backbone, neck, head, output, 0.0, cfg.DATA.INPUT_SIZE, prefix=prefix)


def _build_earp(cfg, anchors, vector=False):
    return build_earp(cfg.MODEL.BACKBONE, cfg.MODEL.HEATMAP, cfg.MODEL.NUM_POINTS, cfg.DATA.INPUT_SIZE, vector)


#: family (a MODELS key; a preset builds its family from the config) -> model builder (cfg, anchors)
BUILDERS = {"lotr": _build_lotr, "cnn_ffn": _build_cnn_ffn, "earp_heatmap": _build_earp,
            "earp_vector": lambda cfg, anchors: _build_earp(cfg, anchors, vector=True)}


def build_model(cfg, anchors=None, ctx=None, initialize=True):
    """The one place where the configuration meets the model code: the model of ``MODEL.NAME`` composed from
    the parts of its config sections (module docstring).

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
    name = cfg.MODEL.NAME
    family = PRESETS[name][0] if name in PRESETS else name
    if family not in BUILDERS:
        raise KeyError("unknown model %r; valid: %s" % (name, ", ".join(sorted(set(MODELS) | set(PRESETS)))))
    net = BUILDERS[family](cfg, anchors)
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
    import os
    import mxnet as mx
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
    aux = getattr(net, "aux_heatmap", None)
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
    import numpy as np
    import mxnet as mx
    params = list(net.collect_params().values())
    if any(0 in p.shape for p in params):
        if params and params[0]._data is None and not params[0]._deferred_init:
            raise ValueError("initialise the net (net.initialize_params()) before counting its parameters")
        net(mx.nd.zeros((1, 3, net.input_size, net.input_size), ctx=params[0].list_ctx()[0]))
    return int(sum(np.prod(p.shape) for p in inference_params(net, include_training_heads)))
