"""Model zoo: a gluoncv-style registry (:func:`get_model`) and the config boundary (:func:`build_model`).

Only :func:`build_model` reads the configuration; blocks take explicit keyword arguments (as DETR's
``build_model(args)``).
"""
from .backbones import BACKBONES, get_backbone
from .lotr import LOTR, CNNFFN, he_init
from .transformer import Transformer, MultiHeadAttention

__all__ = ["get_model", "build_model", "MODELS", "PRESETS", "LOTR", "CNNFFN", "Transformer",
           "MultiHeadAttention", "get_backbone", "BACKBONES", "model_kwargs_from_cfg", "count_params",
           "load_matching", "inference_params"]

# registry of model classes (MODEL.NAME)
MODELS = {"lotr": LOTR, "cnn_ffn": CNNFFN}

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


def _register_heatmap():
    try:
        from heatmap_baseline.model import EarpHeatmapNet  # noqa: F401
    except ImportError:
        return
    MODELS.setdefault("earp_heatmap", EarpHeatmapNet)
    try:
        from heatmap_baseline.vector import EarpVectorNet  # noqa: F401
    except ImportError:
        return
    MODELS.setdefault("earp_vector", EarpVectorNet)  # LOTR Table V "with vectorization" (Gaussian vectors)


def get_model(name, **kwargs):
    """Build a model by registry name (``lotr``, ``cnn_ffn``, ``earp_heatmap``, ``earp_vector``) or paper preset
    (``lotr_m``, ``lotr_m_plus``, ``lotr_r_plus``, ``lotr_hr_plus``, ``cnn_ffn_mnv2``, ``cnn_ffn_r50``).

    Keyword arguments go to the block's constructor and override the preset's. The returned block is not
    initialised; call ``net.initialize_params()``.

    Raises
    ------
    KeyError
        Unknown name; the message lists the valid names.
    """
    _register_heatmap()
    if name in PRESETS:
        cls_name, preset = PRESETS[name]
        return MODELS[cls_name](**dict(preset, **kwargs))
    if name in MODELS:
        return MODELS[name](**kwargs)
    raise KeyError("unknown model %r; valid: %s" % (name, ", ".join(sorted(set(MODELS) | set(PRESETS)))))


def model_kwargs_from_cfg(cfg, anchors=None):
    """Map the MODEL/DATA config onto the constructor keywords of ``MODEL.NAME``'s block."""
    m = cfg.MODEL
    common = dict(backbone=m.BACKBONE, num_points=m.NUM_POINTS, input_size=cfg.DATA.INPUT_SIZE,
                  pretrained=m.PRETRAINED, pretrained_file=m.PRETRAINED_FILE, pretrained_root=m.PRETRAINED_ROOT,
                  hrnet_stride=m.HRNET_STRIDE if m.BACKBONE.startswith("hrnet") else None)
    if m.NAME in ("earp_heatmap", "earp_vector"):
        kw = dict(common, upsampler=m.UPSAMPLER, filters=m.UPSAMPLER_FILTERS, reduce=m.UPSAMPLER_REDUCE,
                  s_block=m.UPSAMPLER_S_BLOCK, sigma=m.HEATMAP_SIGMA, decoder=m.HEATMAP_DECODER,
                  d_kernel=m.UPSAMPLER_D_KERNEL, s_kernel=m.UPSAMPLER_S_KERNEL, s_conv_mult=m.UPSAMPLER_S_CONV_MULT,
                  heatmap_conv=m.HEATMAP_CONV, heatmap_kernel=m.HEATMAP_KERNEL,
                  heatmap_pre_kernel=m.HEATMAP_PRE_KERNEL, final_s_kernel=m.HEATMAP_FINAL_S_KERNEL)
        if m.NAME == "earp_vector":  # the Earp net's keywords + band pooling and vector labels
            kw.update(decoder=m.VECTOR_DECODER, bandwidths=tuple(m.VECTOR_BANDWIDTHS), theta=m.VECTOR_THETA)
        return kw
    if m.ANCHORS not in ("none", "mean_shape"):
        raise ValueError("MODEL.ANCHORS must be 'none' or 'mean_shape', got %r" % (m.ANCHORS,))
    common.update(hidden_dim=m.HIDDEN_DIM, head_hidden=tuple(m.HEAD_HIDDEN), coord_units=m.COORD_UNITS,
                  use_anchors=m.ANCHORS != "none", anchors=anchors, head_last_init_std=m.HEAD_LAST_INIT_STD)
    if m.NAME == "cnn_ffn":
        if m.AUX_HEATMAP_WEIGHT > 0:
            raise ValueError("MODEL.AUX_HEATMAP_WEIGHT is implemented for MODEL.NAME lotr only")
        return common
    return dict(common, upsample=m.UPSAMPLE, upsample_reduce=m.UPSAMPLE_REDUCE,
                upsample_filters=tuple(m.UPSAMPLE_FILTERS), upsample_kernel=m.UPSAMPLE_KERNEL,
                upsample_batchnorm=m.UPSAMPLE_BATCHNORM, num_heads=m.NUM_HEADS,
                num_encoder_layers=m.ENC_LAYERS, num_decoder_layers=m.DEC_LAYERS, ffn_hidden=m.FFN_HIDDEN,
                dropout=m.DROPOUT, decoder_input=m.DECODER_INPUT, final_norm=m.FINAL_NORM,
                query_init_std=m.QUERY_INIT_STD, pos_init_std=m.POS_INIT_STD, aux_outputs=m.AUX_LOSS,
                head_per_landmark_out=m.HEAD_PER_LANDMARK_OUT, pos_in_values=m.POS_IN_VALUES,
                pos_init=m.POS_INIT, query_init=m.QUERY_INIT, norm_before=m.NORM_BEFORE,
                attn_out_init=m.ATTN_OUT_INIT,
                aux_heatmap=m.AUX_HEATMAP_WEIGHT > 0, aux_heatmap_upsampler=m.UPSAMPLER,
                aux_heatmap_filters=m.UPSAMPLER_FILTERS, aux_heatmap_reduce=m.UPSAMPLER_REDUCE)


def build_model(cfg, anchors=None, ctx=None, initialize=True):
    """The one place where the configuration meets the model code.

    Parameters
    ----------
    cfg : CfgNode
    anchors : array (N, 2) or None
        Mean training shape in crop pixels, used when ``MODEL.ANCHORS = 'mean_shape'``.
    ctx : Context or list of Context
    initialize : bool
        Initialise the parameters (He init; the backbone keeps loaded ImageNet weights).
    """
    net = get_model(cfg.MODEL.NAME, **model_kwargs_from_cfg(cfg, anchors))
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
