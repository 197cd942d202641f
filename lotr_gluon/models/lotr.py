"""LOTR: Localization Transformer (Watchareeruetai et al., 2021), Sec. III-A and Table I.

backbone -> 1x1 conv -> [optional deconvolution upsampling, the "+" models] -> tokens + learnable 2-D
positional encoding -> Transformer encoder/decoder with N learnable landmark queries -> position-wise FFN
(PFFN, eq. 19) that regresses (x, y) for every landmark.

Where the paper is silent, the choice is an argument with the default we use (all listed in README):
- ``coord_units``: the head's output unit. ``'input_frac'`` (default): the PFFN predicts coordinates as a
  fraction of the input size and the block multiplies by ``input_size``, so outputs are pixels of the
  aligned crop either way; ``'pixels'``: the PFFN predicts pixels directly.
- ``anchors``: optional per-landmark anchor (e.g. the mean training shape in the crop, pixels); the PFFN
  then predicts an offset from it and its last layer starts at zero (a from-scratch aid, not in the paper).
"""
import numpy as np
import mxnet as mx
from mxnet.gluon import nn, HybridBlock

from .backbones import get_backbone
from .init import he_init, initialize_block
from .transformer import Transformer
from .upsampling import build_upsampler

__all__ = ["LOTR", "CNNFFN", "he_init", "initialize_block", "sine_position_encoding", "sample_token_grid"]


class _Head(HybridBlock):
    """PFFN (LOTR eq. 19): Dense(512)-ReLU-Dense(512)-ReLU-Dense(out), applied to each token.

    ``last_init_std``: None = He init for the last layer; 0 = zeros; > 0 = normal with this std (used with
    anchors, so that the model starts near the anchor). Zeros stall training when the anchor is the mean
    shape: the last layer's gradient is the batch mean of error x hidden activation, which is ~0 while the
    activations do not yet depend on the image, and a zero last layer passes no gradient back to them.
    """

    def __init__(self, in_units, hidden=(512, 512), out_units=2, flatten=False, last_init_std=None,
                 per_landmark_out=0, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.net = nn.HybridSequential(prefix="")
            units = in_units
            for h in hidden:
                self.net.add(nn.Dense(h, activation="relu", flatten=flatten, in_units=units))
                units = h
                flatten = False
            last_init = None if last_init_std is None else (
                mx.init.Zero() if last_init_std == 0 else mx.init.Normal(last_init_std))
            if per_landmark_out:
                self.net.add(_PerLandmarkDense(per_landmark_out, units, out_units,
                                               weight_initializer=last_init or he_init(), prefix="perlmk_"))
            else:
                self.net.add(nn.Dense(out_units, flatten=flatten, in_units=units, weight_initializer=last_init,
                                      bias_initializer="zeros"))

    def hybrid_forward(self, F, x):
        return self.net(x)


class _PerLandmarkDense(HybridBlock):
    """A dense layer with its own weights for every landmark: (B, N, C) -> (B, N, U),
    ``out[b, n] = x[b, n] @ W[n] + bias[n]`` (batched matrix products over the landmark axis)."""

    def __init__(self, num_points, in_units, units, weight_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.weight = self.params.get("weight", shape=(num_points, in_units, units), init=weight_initializer)
        self.bias = self.params.get("bias", shape=(1, num_points, units), init=mx.init.Zero())

    def hybrid_forward(self, F, x, weight, bias):
        xt = F.transpose(x, axes=(1, 0, 2))  # (N, B, C)
        out = F.transpose(F.batch_dot(xt, weight), axes=(1, 0, 2))  # (B, N, U)
        return F.broadcast_add(out, bias)


class _Landmarks(HybridBlock):
    """Maps head output to pixels of the input crop: ``anchors + out * scale`` (anchors optional)."""

    def __init__(self, num_points, scale, use_anchors, anchors=None, **kwargs):
        super().__init__(**kwargs)
        self._scale = float(scale)
        self._use_anchors = use_anchors
        self._anchor_values = None if anchors is None else np.asarray(anchors, np.float32).reshape(1, num_points, 2)
        if use_anchors:
            # a constant stored with the weights (so exported models carry it), never trained; its values
            # are written by set_anchors after initialisation
            self.anchors = self.params.get("anchors", shape=(1, num_points, 2), init=mx.init.Zero(),
                                           grad_req="null", differentiable=False)

    def set_anchors(self, anchors):
        """Write the anchors, (N, 2) crop pixels, into the (initialised) parameter."""
        if not self._use_anchors:
            raise ValueError("this model was built without anchors (MODEL.ANCHORS = 'none')")
        self._anchor_values = np.asarray(anchors, np.float32).reshape(self.anchors.shape)
        self.anchors.set_data(mx.nd.array(self._anchor_values))

    def hybrid_forward(self, F, x, anchors=None):
        x = x * self._scale
        if self._use_anchors:
            x = F.broadcast_add(x, anchors)
        return x


def sine_position_encoding(grid, dim, temperature=10000.0):
    """DETR's 2-D sine positional encoding (``PositionEmbeddingSine(dim // 2, temperature, normalize=True)``)
    for a ``grid`` x ``grid`` token map, row-major as LOTR's tokens: array (grid * grid, dim), values in
    [-1, 1]; the first ``dim / 2`` channels encode y, the rest x (sin on even, cos on odd channels)."""
    if dim % 4:
        raise ValueError("sine positional encoding needs dim divisible by 4, got %d" % dim)
    npf = dim // 2
    eps, scale = 1e-6, 2 * np.pi
    idx = np.arange(1, grid + 1, dtype=np.float64) / (grid + eps) * scale
    y_embed, x_embed = np.meshgrid(idx, idx, indexing="ij")  # (grid, grid)
    dim_t = temperature ** (2 * (np.arange(npf) // 2) / float(npf))
    out = []
    for e in (y_embed, x_embed):
        p = e[..., None] / dim_t  # (grid, grid, npf)
        p = np.stack([np.sin(p[..., 0::2]), np.cos(p[..., 1::2])], axis=3).reshape(grid, grid, npf)
        out.append(p)
    return np.concatenate(out, axis=2).reshape(grid * grid, dim).astype(np.float32)


def sample_token_grid(tokens, grid, points, input_size):
    """Bilinear sample of a row-major token map at points given in crop pixels.

    Parameters
    ----------
    tokens : array (grid * grid, D)
    grid : int
        Side of the token map; token (r, c) covers crop pixels [c*s, (c+1)*s) x [r*s, (r+1)*s), s = input/grid,
        and sits at its cell's centre.
    points : array (N, 2)
        (x, y) crop pixels; points beyond the outer token centres take the border value.
    input_size : int

    Returns
    -------
    array (N, D) float32
    """
    t = np.asarray(tokens, np.float64).reshape(grid, grid, -1)
    points = np.asarray(points, np.float64)
    if grid == 1:
        return np.repeat(t.reshape(1, -1), len(points), axis=0).astype(np.float32)
    uv = np.clip(points / (float(input_size) / grid) - 0.5, 0.0, grid - 1.0)  # (N, 2) token coordinates
    c0 = np.minimum(np.floor(uv).astype(int), grid - 2)
    f = uv - c0  # (N, 2) in [0, 1]
    x0, y0 = c0[:, 0], c0[:, 1]
    fx, fy = f[:, :1], f[:, 1:]
    out = (t[y0, x0] * (1 - fx) * (1 - fy) + t[y0, x0 + 1] * fx * (1 - fy)
           + t[y0 + 1, x0] * (1 - fx) * fy + t[y0 + 1, x0 + 1] * fx * fy)
    return out.astype(np.float32)


class LOTR(HybridBlock):
    """Localization Transformer.

    Parameters
    ----------
    backbone : str
        gluoncv backbone name (see :data:`lotr_gluon.models.backbones.BACKBONES`).
    num_points : int
        N, number of landmarks (= number of landmark queries).
    input_size : int
        Side of the square input crop in pixels (LOTR: 192 for JD-landmark, 256 for WFLW). Fixes the token
        grid and hence the positional-encoding shape.
    hidden_dim : int
        D, the token width (Table I: 64 for LOTR-M/M+/R+).
    upsample : bool
        The "+" models: 1x1 conv to ``upsample_reduce`` channels, then one stride-2 4x4 deconvolution + ReLU
        per entry of ``upsample_filters`` (Table I: 256 -> 128 -> 64, 6x6 -> 24x24 at 192x192). The last
        filter count must equal ``hidden_dim`` (tokens come straight from the last deconvolution).
    upsample_batchnorm : bool
        BatchNorm after each deconvolution (not in Table I; default False).
    num_heads, num_encoder_layers, num_decoder_layers, ffn_hidden, dropout, decoder_input, final_norm,
    pos_in_values, norm_before, attn_out_init :
        See :class:`lotr_gluon.models.transformer.Transformer`.
    query_init_std : float
        Std of the normal initialisation of the landmark queries (LOTR: 1e-4).
    pos_init_std : float
        Std of the normal initialisation of the positional encoding (LOTR: standard normal, 1.0).
    pos_init : {'normal', 'sine'}
        Initial value of the (learnable) positional encoding: normal with ``pos_init_std`` (LOTR), or DETR's
        2-D sine encoding (``PositionEmbeddingSine``, normalised to 2 pi, ``pos_sine_temperature``; D/2
        channels for y, then D/2 for x), still trained. Not in the paper: a from-scratch lever.
    query_init : {'normal', 'anchor_pos'}
        ``'normal'``: queries drawn with ``query_init_std`` (LOTR). ``'anchor_pos'`` (needs anchors; not in the
        paper, a from-scratch lever): query ``n`` starts as the positional encoding bilinearly sampled at
        landmark ``n``'s anchor, and the key projection of every decoder cross-attention starts as a copy of
        its query projection, so that at initialisation each query's cross-attention peaks at the tokens
        around its anchor instead of being spread at random.
    head_hidden : tuple of int
        PFFN hidden sizes (LOTR eq. 19 and Table I: 512, 512).
    coord_units : {'input_frac', 'pixels'}
        See module docstring.
    anchors : array (N, 2) or None
        Per-landmark anchors in crop pixels; ``use_anchors=True`` without values creates a zero
        placeholder filled by ``load_parameters``.
    head_last_init_std : float
        With anchors: std of the normal init of the PFFN's last layer (0 = zeros, which stalls training at
        the mean shape; see ``_Head``). Without anchors the last layer has He init.
    aux_outputs : bool
        Return the prediction of every decoder layer, (num_decoder_layers, B, N, 2), for deep supervision.
    aux_heatmap : bool
        Build an auxiliary heatmap head on the backbone features, used only in training (not in the paper;
        a from-scratch aid after MTLD's multi-task supervision): ``aux_heatmap_reduce`` 1x1 conv + BN + ReLU,
        then the ``aux_heatmap_upsampler`` S/D blocks with ``aux_heatmap_filters`` channels, then a 1x1 conv
        to N heatmaps (the Earp et al. head, :func:`lotr_gluon.models.upsampling.build_upsampler`). Its
        output is returned only after :meth:`set_aux_heatmap_output` ``(True)``; inference, evaluation and
        export never run it.
    head_per_landmark_out : bool
        Give the PFFN's last layer its own weights for every landmark (N x 512 x 2) instead of one shared
        512 x 2 layer (eq. 19 shares it; a from-scratch lever, not in the paper). Needs a single decoder
        output (not with ``aux_outputs``).
    aux_heatmap_upsampler, aux_heatmap_filters, aux_heatmap_reduce :
        Layout of that head (default ``'SDD'``, 32, 256: 48x48 heatmaps at 192x192 with a stride-32 backbone).
    pretrained, pretrained_file, pretrained_root :
        See :func:`lotr_gluon.models.backbones.get_backbone`.
    hrnet_stride : int
        Output stride of the HRNet backbone (4 = HRNetV2's 1/4 map).

    Inputs: (B, 3, input_size, input_size) normalised RGB. Output: (B, N, 2) landmarks (x, y) in pixels of
    the input crop, or (L, B, N, 2) with ``aux_outputs``.
    """

    def __init__(self, backbone="mobilenetv2_1.0", num_points=106, input_size=192, hidden_dim=64,
                 upsample=False, upsample_reduce=256, upsample_filters=(128, 64), upsample_kernel=4,
                 upsample_batchnorm=False, num_heads=8, num_encoder_layers=2, num_decoder_layers=2,
                 ffn_hidden=0, dropout=0.1, decoder_input="queries", final_norm=False, query_init_std=1e-4,
                 pos_init_std=1.0, head_hidden=(512, 512), coord_units="input_frac", use_anchors=False,
                 anchors=None, head_last_init_std=1e-3, aux_outputs=False, aux_heatmap=False,
                 aux_heatmap_upsampler="SDD", aux_heatmap_filters=32, aux_heatmap_reduce=256,
                 head_per_landmark_out=False, pos_in_values="none", pos_init="normal", pos_sine_temperature=10000.0,
                 query_init="normal", norm_before=False, attn_out_init="he", pretrained=False,
                 pretrained_file="", pretrained_root="", hrnet_stride=None, **kwargs):
        super().__init__(**kwargs)
        if coord_units not in ("input_frac", "pixels"):
            raise ValueError("coord_units must be 'input_frac' or 'pixels', got %r" % (coord_units,))
        if upsample and upsample_filters and upsample_filters[-1] != hidden_dim:
            raise ValueError("the last upsample filter count (%d) must equal hidden_dim (%d)"
                             % (upsample_filters[-1], hidden_dim))
        if pos_init not in ("normal", "sine"):
            raise ValueError("pos_init must be 'normal' (LOTR) or 'sine' (DETR), got %r" % (pos_init,))
        if query_init not in ("normal", "anchor_pos"):
            raise ValueError("query_init must be 'normal' (LOTR) or 'anchor_pos', got %r" % (query_init,))
        if query_init == "anchor_pos" and not (use_anchors or anchors is not None):
            raise ValueError("query_init 'anchor_pos' needs anchors (MODEL.ANCHORS mean_shape)")
        if head_per_landmark_out and aux_outputs:
            raise ValueError("head_per_landmark_out needs a single decoder output; turn off aux_outputs")
        self.num_points = num_points
        self.input_size = input_size
        self.aux_outputs = aux_outputs
        self.aux_heatmap_size = 0
        self._emit_aux_heatmap = False
        self._pos_init = pos_init
        self._pos_sine_temperature = float(pos_sine_temperature)
        self._query_init = query_init
        use_anchors = use_anchors or anchors is not None
        with self.name_scope():
            self.backbone, channels, stride, self.backbone_loaded = get_backbone(
                backbone, pretrained, pretrained_file, pretrained_root, hrnet_stride)
            if input_size % stride:
                raise ValueError("input_size %d is not a multiple of the backbone stride %d" % (input_size, stride))
            grid = input_size // stride
            self.aux_heatmap = None
            if aux_heatmap:
                up, c = build_upsampler(channels, aux_heatmap_upsampler, aux_heatmap_filters, aux_heatmap_reduce,
                                        prefix="auxhm_")
                with up.name_scope():
                    up.add(nn.Conv2D(num_points, 1, in_channels=c, weight_initializer=mx.init.Normal(0.001),
                                     bias_initializer="zeros"))
                self.aux_heatmap = up
                self.aux_heatmap_size = grid * 2 ** len(aux_heatmap_upsampler)
            self.neck = nn.HybridSequential(prefix="neck_")
            with self.neck.name_scope():
                if upsample:
                    self.neck.add(nn.Conv2D(upsample_reduce, 1, in_channels=channels, weight_initializer=he_init()))
                    c = upsample_reduce
                    for f in upsample_filters:
                        pad = (upsample_kernel - 2) // 2
                        self.neck.add(nn.Conv2DTranspose(f, upsample_kernel, strides=2, padding=pad,
                                                         in_channels=c, use_bias=not upsample_batchnorm,
                                                         weight_initializer=he_init()))
                        if upsample_batchnorm:
                            self.neck.add(nn.BatchNorm(in_channels=f))
                        self.neck.add(nn.Activation("relu"))
                        c = f
                        grid *= 2
                else:
                    self.neck.add(nn.Conv2D(hidden_dim, 1, in_channels=channels, weight_initializer=he_init()))
            self.num_tokens = grid * grid
            self.token_grid = grid
            self.pos_embed = self.params.get("pos_embed", shape=(1, self.num_tokens, hidden_dim),
                                             init=mx.init.Normal(pos_init_std))
            self.query_embed = self.params.get("query_embed", shape=(1, num_points, hidden_dim),
                                               init=mx.init.Normal(query_init_std))
            self.transformer = Transformer(hidden_dim, num_heads, num_encoder_layers, num_decoder_layers,
                                           ffn_hidden, dropout, decoder_input, final_norm,
                                           return_intermediate=aux_outputs, weight_initializer=he_init(),
                                           pos_in_values=pos_in_values, norm_before=norm_before,
                                           attn_out_init=attn_out_init, prefix="transformer_")
            self.head = _Head(hidden_dim, tuple(head_hidden), 2,
                              last_init_std=head_last_init_std if use_anchors else None,
                              per_landmark_out=num_points if head_per_landmark_out else 0, prefix="head_")
            scale = input_size if coord_units == "input_frac" else 1.0
            self.to_pixels = _Landmarks(num_points, scale, use_anchors, anchors, prefix="landmarks_")

    def initialize_params(self, ctx=None, force_reinit=False):
        """Initialise every parameter not already loaded (He init for weights, the paper's inits for the
        positional encoding and the queries; the backbone keeps ImageNet weights when it has them)."""
        initialize_block(self, ctx, force_reinit)
        if self.to_pixels._use_anchors and self.to_pixels._anchor_values is not None:
            self.to_pixels.set_anchors(self.to_pixels._anchor_values)
        if getattr(self, "_pos_init", "normal") == "sine":
            self.pos_embed.set_data(mx.nd.array(sine_position_encoding(
                self.token_grid, self.pos_embed.shape[-1], self._pos_sine_temperature)[None]))
        if getattr(self, "_query_init", "normal") == "anchor_pos" and self.to_pixels._anchor_values is not None:
            self._init_queries_at_anchors(self.to_pixels._anchor_values.reshape(-1, 2))
        if getattr(self, "aux_heatmap", None) is not None:
            # gluoncv layers infer their shapes on the first forward; run one with the auxiliary head on so
            # that its parameters are shaped too (a later landmarks-only trace would leave them deferred)
            dev = ctx[0] if isinstance(ctx, (list, tuple)) else (ctx or mx.cpu())
            emit = self._emit_aux_heatmap
            self.set_aux_heatmap_output(True)
            self(mx.nd.zeros((1, 3, self.input_size, self.input_size), ctx=dev))
            self.set_aux_heatmap_output(emit)
        return self

    def _init_queries_at_anchors(self, anchors):
        """``query_init='anchor_pos'``: queries = positional encoding sampled at the anchors (crop pixels,
        (N, 2)); cross-attention key projections = their query projections."""
        pos = self.pos_embed.data().asnumpy()[0]  # (L, D)
        self.query_embed.set_data(mx.nd.array(sample_token_grid(pos, self.token_grid, anchors,
                                                                self.input_size)[None]))
        for layer in self.transformer.decoder:
            att = layer.cross_attn
            att.proj_k.weight.set_data(att.proj_q.weight.data().copy())
            att.proj_k.bias.set_data(att.proj_q.bias.data().copy())

    def set_aux_heatmap_output(self, on):
        """Return ``(landmarks, aux_heatmaps)`` from now on (``on=True``, training) or landmarks only
        (``False``, the default). Clears the hybridized graph so that the next call re-traces it.

        Raises
        ------
        ValueError
            ``on=True`` on a model built without ``aux_heatmap``.
        """
        if on and self.aux_heatmap is None:
            raise ValueError("this model has no auxiliary heatmap head (MODEL.AUX_HEATMAP_WEIGHT = 0)")
        if bool(on) != self._emit_aux_heatmap:
            self._emit_aux_heatmap = bool(on)
            self._clear_cached_op()

    def hybrid_forward(self, F, x, pos_embed, query_embed):
        fb = self.backbone(x)
        feat = self.neck(fb)  # (B, D, h, w)
        tokens = F.transpose(F.reshape(feat, shape=(0, 0, -1)), axes=(0, 2, 1))  # (B, h*w, D)
        hs = self.transformer(tokens, pos_embed, query_embed)  # (B, N, D) or (L, B, N, D)
        out = self.to_pixels(self.head(hs))
        if self._emit_aux_heatmap:
            return out, self.aux_heatmap(fb)  # (B, N, hm, hm) heatmaps, training only
        return out


class CNNFFN(HybridBlock):
    """CNN + FFN coordinate regressor (LOTR Sec. IV-G-2, the Table V baseline).

    backbone -> the same 1x1 conv as LOTR (to ``hidden_dim`` channels) -> flatten -> FFN 512-512-2N.
    Table V: 3.89M parameters (MobileNetV2), 25.24M (ResNet50).

    Inputs: (B, 3, S, S). Output: (B, N, 2) pixels of the input crop.
    """

    def __init__(self, backbone="mobilenetv2_1.0", num_points=106, input_size=192, hidden_dim=64,
                 head_hidden=(512, 512), dropout=0.0, coord_units="input_frac", use_anchors=False, anchors=None,
                 head_last_init_std=1e-3, pretrained=False, pretrained_file="", pretrained_root="", hrnet_stride=None, **kwargs):
        super().__init__(**kwargs)
        self.num_points = num_points
        self.input_size = input_size
        self.aux_outputs = False
        use_anchors = use_anchors or anchors is not None
        with self.name_scope():
            self.backbone, channels, stride, self.backbone_loaded = get_backbone(
                backbone, pretrained, pretrained_file, pretrained_root, hrnet_stride)
            grid = input_size // stride
            self.neck = nn.Conv2D(hidden_dim, 1, in_channels=channels, weight_initializer=he_init(), prefix="neck_")
            self.drop = nn.Dropout(dropout)
            self.head = _Head(grid * grid * hidden_dim, tuple(head_hidden), 2 * num_points, flatten=True,
                              last_init_std=head_last_init_std if use_anchors else None, prefix="head_")
            scale = input_size if coord_units == "input_frac" else 1.0
            self.to_pixels = _Landmarks(num_points, scale, use_anchors, anchors, prefix="landmarks_")

    initialize_params = LOTR.initialize_params

    def hybrid_forward(self, F, x):
        out = self.head(self.drop(self.neck(self.backbone(x))))
        return self.to_pixels(F.reshape(out, shape=(0, -1, 2)))
