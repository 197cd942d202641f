"""LOTR: Localization Transformer (Watchareeruetai et al., 2021), Sec. III-A and Table I, composed from built
parts as DETR's ``DETR(backbone, transformer, num_queries)``:

backbone (:mod:`lotr_gluon.blocks.backbones`) -> neck: 1x1 conv [+ deconvolution upsampling, the "+" models]
(:func:`token_neck`) -> tokens, eq. (8) -> Transformer encoder/decoder (:class:`Transformer`, eq. (9) to
eq. (18)) with the learnable 2-D positional encoding P and N learnable landmark queries Y^0 -> position-wise
FFN (:class:`PFFNHead`, eq. (19)) -> crop pixels (:class:`LandmarkOutput`). Optional, training only: an
auxiliary heatmap head on the backbone features, a built part handed in by the builder.

:class:`LOTR` takes the parts; :func:`lotr_gluon.model_zoo.make_lotr` builds them (from keywords, or from the
config sections through :func:`lotr_gluon.model_zoo.build_model`). The parts' structural parameter names
(``backbone.*``, ``neck.*``, ``pos_embed``, ``query_embed``, ``transformer.*``, ``head.*``, ``to_pixels.*``,
``aux_heatmap.*``) are those of every ``.params`` file written so far.

Models layer (docs/architecture.md): imports only the shared blocks (:mod:`lotr_gluon.blocks`) and its own
family.
"""
import mxnet as mx
from mxnet.gluon import nn, HybridBlock

from ..blocks.layers import he_init, initialize_block

__all__ = ["LOTR", "token_neck"]


def token_neck(in_channels, hidden_dim=64, upsample=False, upsample_reduce=256, upsample_filters=(128, 64),
               upsample_kernel=4, upsample_batchnorm=False, prefix="neck_"):
    """The neck of LOTR (Sec. III-A, Table I): backbone features (B, C, h, w) -> (B, D, h u, w u).

    Without ``upsample``: the 1x1 convolution of eq. (8) to ``hidden_dim`` = D channels (u = 1). With it (the
    "+" models): a 1x1 conv to ``upsample_reduce`` channels, then one stride-2 ``upsample_kernel`` deconvolution
    + ReLU per entry of ``upsample_filters`` (Table I: 256 -> 128 -> 64, 6x6 -> 24x24 at 192x192; u = 4), with
    BatchNorm after each if ``upsample_batchnorm`` (not in Table I). The last filter count must equal D
    (tokens come straight from the last deconvolution).

    Returns a HybridSequential with attributes ``out_channels`` (D) and ``upscale`` (u).

    Raises
    ------
    ValueError
        The last upsample filter count differs from ``hidden_dim``.
    """
    if upsample and upsample_filters and upsample_filters[-1] != hidden_dim:
        raise ValueError("the last upsample filter count (%d) must equal hidden_dim (%d)"
                         % (upsample_filters[-1], hidden_dim))
    neck = nn.HybridSequential(prefix=prefix)
    upscale = 1
    with neck.name_scope():
        if upsample:
            neck.add(nn.Conv2D(upsample_reduce, 1, in_channels=in_channels, weight_initializer=he_init()))
            c = upsample_reduce
            for f in upsample_filters:
                pad = (upsample_kernel - 2) // 2
                neck.add(nn.Conv2DTranspose(f, upsample_kernel, strides=2, padding=pad, in_channels=c,
                                            use_bias=not upsample_batchnorm, weight_initializer=he_init()))
                if upsample_batchnorm:
                    neck.add(nn.BatchNorm(in_channels=f))
                neck.add(nn.Activation("relu"))
                c = f
                upscale *= 2
        else:  # eq. (8): conv1x1(F), C -> D channels
            neck.add(nn.Conv2D(hidden_dim, 1, in_channels=in_channels, weight_initializer=he_init()))
    neck.out_channels, neck.upscale = int(hidden_dim), upscale
    return neck


class LOTR(HybridBlock):
    """Localization Transformer, composed from built parts (see the module docstring).

    Parameters
    ----------
    backbone : HybridBlock
        CNN trunk from :func:`lotr_gluon.blocks.backbones.get_backbone`, with its attributes ``stride`` and
        ``pretrained_loaded``.
    neck : HybridBlock
        :func:`token_neck` (attributes ``out_channels`` = D, ``upscale``).
    transformer : Transformer
        Width D; it also gives the initial values of the positional encoding and the landmark queries
        (:meth:`Transformer.pos_initializer`, :meth:`Transformer.init_embeddings`) and whether every decoder
        layer's output is returned (``return_intermediate``, deep supervision).
    head : PFFNHead
        The PFFN of eq. (19), from :func:`lotr_gluon.models.heads.landmark_head`.
    output : LandmarkOutput
        Crop pixels (anchors, units), from the same call.
    aux_heatmap : HybridBlock or None
        Training-only auxiliary heatmap head on the backbone features (not in the paper; a from-scratch aid
        after MTLD's multi-task supervision), built by the builder (attribute ``upscale``). Its output is
        returned only after :meth:`set_aux_heatmap_output` ``(True)``; inference,
        evaluation and export never run it.
    input_size : int
        Side of the square input crop in pixels (LOTR: 192 for JD-landmark, 256 for WFLW). Fixes the token
        grid and hence the positional-encoding shape.

    Attributes
    ----------
    num_points, input_size, token_grid, num_tokens : int
    aux_outputs : bool
        The transformer returns every decoder layer's output.
    aux_heatmap_size : int
        Side of the auxiliary heatmaps (0 without that head).
    backbone_loaded : bool
        The backbone holds pretrained weights (:func:`lotr_gluon.blocks.layers.initialize_block` keeps them).

    Inputs: (B, 3, input_size, input_size) normalised RGB. Output: (B, N, 2) landmarks (x, y) in pixels of
    the input crop, or (L, B, N, 2) with ``aux_outputs``.

    Raises
    ------
    ValueError
        ``input_size`` not a multiple of the backbone stride; neck and transformer widths differ; a per-landmark
        head with every decoder layer's output; ``query_init='anchor_pos'`` without anchors.
    """

    #: The elements of the output while the auxiliary heatmap output is on (:meth:`set_aux_heatmap_output`),
    #: in this order; otherwise the output is the landmarks alone. :class:`lotr_gluon.build.Criterion` and
    #: :class:`lotr_gluon.build.PostProcessor` read the elements by these names.
    TRAINING_OUTPUTS = ("landmarks", "aux_heatmaps")

    def __init__(self, backbone, neck, transformer, head, output, aux_heatmap=None, input_size=192, **kwargs):
        super().__init__(**kwargs)
        stride = backbone.stride
        if input_size % stride:
            raise ValueError("input_size %d is not a multiple of the backbone stride %d" % (input_size, stride))
        if neck.out_channels != transformer.units:
            raise ValueError("the neck gives %d channels but the transformer width is %d"
                             % (neck.out_channels, transformer.units))
        if transformer.query_init == "anchor_pos" and not output.use_anchors:
            raise ValueError("query_init 'anchor_pos' needs anchors (MODEL.HEAD.ANCHORS mean_shape)")
        if head.per_landmark and transformer.return_intermediate:
            raise ValueError("head_per_landmark_out needs a single decoder output; turn off aux_outputs")
        grid = input_size // stride
        self.num_points = output.num_points
        self.input_size = input_size
        self.aux_outputs = transformer.return_intermediate
        self.backbone_loaded = backbone.pretrained_loaded
        self.aux_heatmap_size = grid * aux_heatmap.upscale if aux_heatmap is not None else 0
        self._emit_aux_heatmap = False
        self.token_grid = grid * neck.upscale
        self.num_tokens = self.token_grid ** 2
        dim = transformer.units
        # the children in this order: collect_params() (initialisation, optimiser state) keeps its order
        self.backbone = backbone
        self.aux_heatmap = None
        if aux_heatmap is not None:
            self.aux_heatmap = aux_heatmap
        self.neck = neck
        self.pos_embed = self.params.get("pos_embed", shape=(1, self.num_tokens, dim),  # P of eq. (9) to (17)
                                         init=transformer.pos_initializer())
        self.query_embed = self.params.get("query_embed", shape=(1, self.num_points, dim),  # Y^0 of eq. (14)
                                           init=transformer.query_initializer())
        self.transformer = transformer
        self.head = head
        self.to_pixels = output

    def initialize_params(self, ctx=None, force_reinit=False):
        """Initialise every parameter not already loaded (He init for weights, the paper's inits for the
        positional encoding and the queries; the backbone keeps ImageNet weights when it has them). Returns
        ``self``."""
        initialize_block(self, ctx, force_reinit)
        anchors = self.to_pixels.write_anchors()
        self.transformer.init_embeddings(self.pos_embed, self.query_embed, self.token_grid, self.input_size,
                                         anchors)
        if self.aux_heatmap is not None:
            # gluoncv layers infer their shapes on the first forward; run one with the auxiliary head on so
            # that its parameters are shaped too (a later landmarks-only trace would leave them deferred)
            dev = ctx[0] if isinstance(ctx, (list, tuple)) else (ctx or mx.cpu())
            emit = self._emit_aux_heatmap
            self.set_aux_heatmap_output(True)
            self(mx.nd.zeros((1, 3, self.input_size, self.input_size), ctx=dev))
            self.set_aux_heatmap_output(emit)
        return self

    def set_aux_heatmap_output(self, on):
        """Return ``(landmarks, aux_heatmaps)`` from now on (``on=True``, training) or landmarks only
        (``False``, the default). Clears the hybridized graph so that the next call re-traces it.

        Raises
        ------
        ValueError
            ``on=True`` on a model built without ``aux_heatmap``.
        """
        if on and self.aux_heatmap is None:
            raise ValueError("this model has no auxiliary heatmap head (MODEL.AUX.HEATMAP_WEIGHT = 0)")
        if bool(on) != self._emit_aux_heatmap:
            self._emit_aux_heatmap = bool(on)
            self._clear_cached_op()

    def hybrid_forward(self, F, x, pos_embed, query_embed):
        fb = self.backbone(x)  # F of eq. (8)
        feat = self.neck(fb)  # (B, D, h, w)
        # eq. (8): X^0 = reshape(conv1x1(F)), (B, h*w, D), row-major tokens
        tokens = F.transpose(F.reshape(feat, shape=(0, 0, -1)), axes=(0, 2, 1))
        hs = self.transformer(tokens, pos_embed, query_embed)  # Y^L, eq. (14): (B, N, D) or (L, B, N, D)
        out = self.to_pixels(self.head(hs))  # eq. (19): Z-hat, then crop pixels
        if self._emit_aux_heatmap:
            return out, self.aux_heatmap(fb)  # TRAINING_OUTPUTS; (B, N, hm, hm) heatmaps, training only
        return out
