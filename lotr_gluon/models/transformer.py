"""Transformer encoder/decoder of LOTR (paper Sec. III-A, eq. (9) to eq. (18); multi-head attention eq. (3) to
eq. (5)), DETR-style, and the initial values of LOTR's learnable positional encoding and landmark queries.

Gluon 1.x has no multi-head attention block, so :class:`MultiHeadAttention` is written with
``F.batch_dot``. Every block is a HybridBlock using only ``F.*`` operators, so hybridized and imperative
outputs match and the graph exports to symbol JSON.

Conventions (as DETR's ``models/transformer.py``): sequences are batch-major, shape (B, L, D); the
positional encoding is added to the queries and keys of attention, not to the values (``pos_in_values``
'none', the default); in the decoder the landmark-query embedding is added to the queries (and keys of
self-attention) of every layer. ``pos_in_values`` 'cross' / 'all' is a from-scratch lever, not in LOTR or DETR:
the positional encoding is also added to the values of the decoder's cross-attention ('cross') and of the
encoder's self-attention ('all'), so that what a landmark query reads carries where it read it.

Models layer of docs/architecture.md (imports only MXNet and numpy). Every option of :class:`Transformer` is a
key of the config section ``MODEL.TRANSFORMER`` with the upper-cased name (``ENC_LAYERS`` / ``DEC_LAYERS`` for
``num_encoder_layers`` / ``num_decoder_layers``); the model zoo (:mod:`lotr_gluon.model_zoo`) passes the section
through, so a new option touches this file and that section only.
"""
import math

import numpy as np
import mxnet as mx
from mxnet.gluon import nn, HybridBlock

__all__ = ["MultiHeadAttention", "PositionwiseFFN", "EncoderLayer", "DecoderLayer", "Transformer",
           "sine_position_encoding", "sample_token_grid", "POS_INITS", "QUERY_INITS"]

#: initial values of the positional encoding: LOTR's normal draw, or DETR's 2-D sine encoding
POS_INITS = ("normal", "sine")
#: initial values of the landmark queries: LOTR's normal draw, or the positional encoding at the anchors
QUERY_INITS = ("normal", "anchor_pos")


class MultiHeadAttention(HybridBlock):
    """Scaled dot-product multi-head attention, LOTR eq. (3) to eq. (5) (Vaswani et al. 2017), as used in
    eq. (11), eq. (16) and eq. (17).

    Parameters
    ----------
    units : int
        Model width D; must be divisible by ``num_heads``.
    num_heads : int
        Number of heads h; each head has width D / h.
    dropout : float
        Dropout on the attention weights.

    Inputs: ``query`` (B, Lq, D), ``key`` (B, Lk, D), ``value`` (B, Lk, D).
    Output: (B, Lq, D).
    """

    def __init__(self, units, num_heads, dropout=0.0, weight_initializer=None, **kwargs):
        super().__init__(**kwargs)
        if units % num_heads:
            raise ValueError("units (%d) must be divisible by num_heads (%d)" % (units, num_heads))
        self._num_heads = num_heads
        self._scale = 1.0 / math.sqrt(units // num_heads)
        with self.name_scope():
            kw = dict(flatten=False, in_units=units, weight_initializer=weight_initializer)
            self.proj_q = nn.Dense(units, prefix="q_", **kw)
            self.proj_k = nn.Dense(units, prefix="k_", **kw)
            self.proj_v = nn.Dense(units, prefix="v_", **kw)
            self.proj_out = nn.Dense(units, prefix="out_", **kw)
            self.dropout = nn.Dropout(dropout)

    def _split_heads(self, F, x):
        # (B, L, D) -> (B, L, h, D/h) -> (B, h, L, D/h) -> (B*h, L, D/h)
        x = F.reshape(x, shape=(0, 0, -4, self._num_heads, -1))
        x = F.transpose(x, axes=(0, 2, 1, 3))
        return F.reshape(x, shape=(-3, -2))

    def hybrid_forward(self, F, query, key, value):
        # eq. (4): Q W^q, K W^k, V W^v for every head (one D x D projection, split into M heads of D' = D/M)
        q = self._split_heads(F, self.proj_q(query)) * self._scale  # eq. (5): the 1 / sqrt(D') scale
        k = self._split_heads(F, self.proj_k(key))
        v = self._split_heads(F, self.proj_v(value))
        att = F.softmax(F.batch_dot(q, k, transpose_b=True), axis=-1)  # eq. (5): softmax(Q K^T / sqrt(D'))
        att = self.dropout(att)
        out = F.batch_dot(att, v)  # eq. (5): ... V, (B*h, Lq, D/h)
        out = F.reshape(out, shape=(-4, -1, self._num_heads, -2))  # (B, h, Lq, D/h)
        out = F.transpose(out, axes=(0, 2, 1, 3))
        out = F.reshape(out, shape=(0, 0, -3))  # eq. (3): concat(H_1, ..., H_M), (B, Lq, D)
        return self.proj_out(out)  # eq. (3): ... W^o


class PositionwiseFFN(HybridBlock):
    """Position-wise feed-forward network of the Transformer layers, LOTR eq. (13) (in eq. (12) and eq. (18)).

    Parameters
    ----------
    units : int
        D.
    hidden : int
        0 (default, LOTR eq. (13) as used for Table V's parameter counts): one dense layer D -> D with ReLU.
        > 0: DETR/Vaswani style, D -> hidden (ReLU) -> D.
    """

    def __init__(self, units, hidden=0, weight_initializer=None, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.net = nn.HybridSequential(prefix="")
            if hidden and hidden > 0:
                self.net.add(nn.Dense(hidden, activation="relu", flatten=False, in_units=units,
                                      weight_initializer=weight_initializer))
                self.net.add(nn.Dense(units, flatten=False, in_units=hidden, weight_initializer=weight_initializer))
            else:  # eq. (13): ReLU(X w + b)
                self.net.add(nn.Dense(units, activation="relu", flatten=False, in_units=units,
                                      weight_initializer=weight_initializer))

    def hybrid_forward(self, F, x):
        return self.net(x)


class _Layer(HybridBlock):
    """What the encoder and decoder layers share: ``pos_in_values`` (the positional encoding also in the
    attention values) and ``norm_before`` (pre-norm, DETR ``forward_pre``)."""

    def __init__(self, pos_in_values=False, norm_before=False, **kwargs):
        super().__init__(**kwargs)
        self._pos_in_values = bool(pos_in_values)
        self._norm_before = bool(norm_before)


class EncoderLayer(_Layer):
    """One encoder layer, post-norm, LOTR eq. (10) to eq. (12) (DETR ``TransformerEncoderLayer.forward_post``).

    ``q = k = src + pos``, ``value = src`` (``src + pos`` with ``pos_in_values``);
    ``src = LN(src + Dropout(MHA))``; ``src = LN(src + Dropout(FFN))``. ``norm_before``: DETR's pre-norm
    variant (``forward_pre``), ``src = src + Dropout(MHA(LN(src)))``, ``src = src + Dropout(FFN(LN(src)))``.
    Inputs: ``src`` (B, L, D), ``pos`` (B or 1, L, D). Output (B, L, D).
    """

    def __init__(self, units, num_heads, ffn_hidden=0, dropout=0.1, weight_initializer=None, pos_in_values=False,
                 norm_before=False, **kwargs):
        super().__init__(pos_in_values, norm_before, **kwargs)
        with self.name_scope():
            self.attn = MultiHeadAttention(units, num_heads, dropout, weight_initializer, prefix="attn_")
            self.ffn = PositionwiseFFN(units, ffn_hidden, weight_initializer, prefix="ffn_")
            self.norm1 = nn.LayerNorm(in_channels=units, prefix="ln1_")
            self.norm2 = nn.LayerNorm(in_channels=units, prefix="ln2_")
            self.drop1 = nn.Dropout(dropout)
            self.drop2 = nn.Dropout(dropout)

    def hybrid_forward(self, F, src, pos):
        if self._norm_before:  # DETR forward_pre
            src2 = self.norm1(src)
            qk = F.broadcast_add(src2, pos)
            src = src + self.drop1(self.attn(qk, qk, qk if self._pos_in_values else src2))
            return src + self.drop2(self.ffn(self.norm2(src)))
        qk = F.broadcast_add(src, pos)
        # eq. (11): enc_1(X, P) = LN(MHA(X + P, X + P, X) + X)
        src = self.norm1(src + self.drop1(self.attn(qk, qk, qk if self._pos_in_values else src)))
        return self.norm2(src + self.drop2(self.ffn(src)))  # eq. (12): LN(PFFN(X) + X); eq. (10): enc_2(enc_1)


class DecoderLayer(_Layer):
    """One decoder layer, post-norm, LOTR eq. (15) to eq. (18) (DETR ``TransformerDecoderLayer.forward_post``).

    Self-attention over the landmark tokens with ``q = k = tgt + query_pos``; cross-attention with
    ``query = tgt + query_pos``, ``key = memory + pos``, ``value = memory`` (``memory + pos`` with
    ``pos_in_values``); then the FFN. Each sub-layer is followed by dropout, the residual sum and LayerNorm.
    ``norm_before``: DETR's pre-norm variant (LayerNorm on each sub-layer's input, residual sums left
    unnormalised).

    Inputs: ``tgt`` (B, N, D), ``memory`` (B, L, D), ``pos`` (B or 1, L, D), ``query_pos`` (B or 1, N, D).
    Output: (B, N, D).
    """

    def __init__(self, units, num_heads, ffn_hidden=0, dropout=0.1, weight_initializer=None, pos_in_values=False,
                 norm_before=False, **kwargs):
        super().__init__(pos_in_values, norm_before, **kwargs)
        with self.name_scope():
            self.self_attn = MultiHeadAttention(units, num_heads, dropout, weight_initializer, prefix="selfattn_")
            self.cross_attn = MultiHeadAttention(units, num_heads, dropout, weight_initializer, prefix="crossattn_")
            self.ffn = PositionwiseFFN(units, ffn_hidden, weight_initializer, prefix="ffn_")
            self.norm1 = nn.LayerNorm(in_channels=units, prefix="ln1_")
            self.norm2 = nn.LayerNorm(in_channels=units, prefix="ln2_")
            self.norm3 = nn.LayerNorm(in_channels=units, prefix="ln3_")
            self.drop1 = nn.Dropout(dropout)
            self.drop2 = nn.Dropout(dropout)
            self.drop3 = nn.Dropout(dropout)

    def hybrid_forward(self, F, tgt, memory, pos, query_pos):
        k = F.broadcast_add(memory, pos)
        v = k if self._pos_in_values else memory
        if self._norm_before:  # DETR forward_pre
            tgt2 = self.norm1(tgt)
            qk = F.broadcast_add(tgt2, query_pos)
            tgt = tgt + self.drop1(self.self_attn(qk, qk, tgt2))
            q = F.broadcast_add(self.norm2(tgt), query_pos)
            tgt = tgt + self.drop2(self.cross_attn(q, k, v))
            return tgt + self.drop3(self.ffn(self.norm3(tgt)))
        qk = F.broadcast_add(tgt, query_pos)
        tgt = self.norm1(tgt + self.drop1(self.self_attn(qk, qk, tgt)))  # eq. (16): LN(MHA_1(Y+Y0, Y+Y0, Y) + Y)
        q = F.broadcast_add(tgt, query_pos)
        tgt = self.norm2(tgt + self.drop2(self.cross_attn(q, k, v)))  # eq. (17): LN(MHA_2(Y+Y0, XL+P, XL) + Y)
        return self.norm3(tgt + self.drop3(self.ffn(tgt)))  # eq. (18): LN(PFFN(Y) + Y); eq. (15): dec_3(dec_2(dec_1))


class Transformer(HybridBlock):
    """Encoder-decoder Transformer of LOTR (Sec. III-A): eq. (9) (the encoder stack) and eq. (14) (the decoder
    stack), with the initial values of the positional encoding P and the landmark queries Y^0 that LOTR owns
    as parameters (:meth:`pos_initializer`, :meth:`query_initializer`, :meth:`init_embeddings`).

    Parameters
    ----------
    units : int
        D, the token width.
    num_heads : int
        Attention heads (LOTR: 8).
    num_encoder_layers, num_decoder_layers : int
        LOTR Table I: 2 and 2 (Table VII varies both from 1 to 6). 0 encoder layers passes the tokens through.
    ffn_hidden : int
        See :class:`PositionwiseFFN`.
    dropout : float
        LOTR: 0.1.
    decoder_input : {'queries', 'zeros'}
        Input of the first decoder layer: the landmark queries themselves (LOTR eq. (14), Y^0) or zeros (DETR).
        The query embedding is added to queries/keys of every decoder layer in both cases.
    final_norm : bool
        LayerNorm after the last decoder layer (DETR does this; LOTR's eq. (14) to eq. (19) do not; default
        False).
    pos_in_values : {'none', 'cross', 'all'}
        Where the positional encoding is also added to the attention values: nowhere (LOTR, DETR; default),
        in the decoder's cross-attention, or there and in the encoder's self-attention. Not in the paper:
        a from-scratch lever (see the module docstring).
    norm_before : bool
        DETR's ``normalize_before`` (pre-norm layers, plus a LayerNorm after the last encoder layer as DETR's
        ``encoder_norm``). LOTR's equations are post-norm (default False); pre-norm is a from-scratch lever
        (pre-norm Transformers train without warm-up tricks, Xiong et al. 2020).
    attn_out_init : {'he', 'zero'}
        Initialisation of the output projection of every attention block: the model's weight initializer
        (He, the paper's), or zeros, so that every attention residual branch starts as the identity
        (SkipInit-style; not in the paper, a from-scratch lever).
    query_init_std : float
        Std of the normal initialisation of the landmark queries (LOTR Sec. IV-C: 1e-4).
    pos_init_std : float
        Std of the normal initialisation of the positional encoding (LOTR: standard normal, 1.0).
    pos_init : {'normal', 'sine'}
        Initial value of the (learnable) positional encoding: normal with ``pos_init_std`` (LOTR), or DETR's
        2-D sine encoding (``PositionEmbeddingSine``, normalised to 2 pi, ``pos_sine_temperature``; D/2
        channels for y, then D/2 for x; :func:`sine_position_encoding`), still trained. Not in the paper: a
        from-scratch lever.
    query_init : {'normal', 'anchor_pos'}
        ``'normal'``: queries drawn with ``query_init_std`` (LOTR). ``'anchor_pos'`` (needs anchors; not in the
        paper, a from-scratch lever): query ``n`` starts as the positional encoding bilinearly sampled at
        landmark ``n``'s anchor (:func:`sample_token_grid`), and the key projection of every decoder
        cross-attention starts as a copy of its query projection, so that at initialisation each query's
        cross-attention peaks at the tokens around its anchor instead of being spread at random.
    pos_sine_temperature : float
        Temperature of the sine encoding (DETR: 10000).
    return_intermediate : bool
        Return the output of every decoder layer stacked on axis 0, (num_decoder_layers, B, N, D), for
        auxiliary supervision of each layer; otherwise the last one, (B, N, D).

    Inputs: ``src`` (B, L, D) image tokens X^0, ``pos`` (1, L, D) P, ``query`` (1, N, D) Y^0.
    Output: Y^L, (B, N, D), or (num_decoder_layers, B, N, D) with ``return_intermediate``.

    Raises
    ------
    ValueError
        An unknown choice (the message lists the valid ones) or no decoder layer.
    """

    def __init__(self, units=64, num_heads=8, num_encoder_layers=2, num_decoder_layers=2, ffn_hidden=0,
                 dropout=0.1, decoder_input="queries", final_norm=False, return_intermediate=False,
                 weight_initializer=None, pos_in_values="none", norm_before=False, attn_out_init="he",
                 query_init_std=1e-4, pos_init_std=1.0, pos_init="normal", query_init="normal",
                 pos_sine_temperature=10000.0, **kwargs):
        super().__init__(**kwargs)
        if decoder_input not in ("queries", "zeros"):
            raise ValueError("decoder_input must be 'queries' (LOTR eq. (14)) or 'zeros' (DETR), got %r"
                             % (decoder_input,))
        if pos_in_values not in ("none", "cross", "all"):
            raise ValueError("pos_in_values must be 'none' (LOTR, DETR), 'cross' or 'all', got %r" % (pos_in_values,))
        if attn_out_init not in ("he", "zero"):
            raise ValueError("attn_out_init must be 'he' or 'zero', got %r" % (attn_out_init,))
        if pos_init not in POS_INITS:
            raise ValueError("pos_init must be 'normal' (LOTR) or 'sine' (DETR), got %r" % (pos_init,))
        if query_init not in QUERY_INITS:
            raise ValueError("query_init must be 'normal' (LOTR) or 'anchor_pos', got %r" % (query_init,))
        if num_decoder_layers < 1:
            raise ValueError("LOTR needs at least one decoder layer")
        self._decoder_input = decoder_input
        self._return_intermediate = return_intermediate
        self._final_norm = final_norm
        self.units = int(units)
        self.query_init_std, self.pos_init_std = float(query_init_std), float(pos_init_std)
        self.pos_init, self.query_init = pos_init, query_init
        self.pos_sine_temperature = float(pos_sine_temperature)
        with self.name_scope():
            self.encoder = nn.HybridSequential(prefix="enc_")
            with self.encoder.name_scope():
                for i in range(num_encoder_layers):
                    self.encoder.add(EncoderLayer(units, num_heads, ffn_hidden, dropout, weight_initializer,
                                                  pos_in_values=pos_in_values == "all", norm_before=norm_before,
                                                  prefix="layer%d_" % i))
            self.decoder = nn.HybridSequential(prefix="dec_")
            with self.decoder.name_scope():
                for i in range(num_decoder_layers):
                    self.decoder.add(DecoderLayer(units, num_heads, ffn_hidden, dropout, weight_initializer,
                                                  pos_in_values=pos_in_values != "none", norm_before=norm_before,
                                                  prefix="layer%d_" % i))
            self._enc_norm = bool(norm_before and num_encoder_layers > 0)
            if self._enc_norm:
                self.enc_norm = nn.LayerNorm(in_channels=units, prefix="encnorm_")
            if attn_out_init == "zero":  # MultiHeadAttention names its output projection "out_"
                for p in self.collect_params(".*_out_weight").values():
                    p.init = mx.init.Zero()
            if final_norm:
                self.dec_norm = nn.LayerNorm(in_channels=units, prefix="decnorm_")

    @property
    def return_intermediate(self):
        """Whether the output stacks every decoder layer's (deep supervision)."""
        return self._return_intermediate

    def pos_initializer(self):
        """Initializer of the positional encoding P (LOTR: N(0, ``pos_init_std``)); with ``pos_init='sine'``
        :meth:`init_embeddings` overwrites the draw."""
        return mx.init.Normal(self.pos_init_std)

    def query_initializer(self):
        """Initializer of the landmark queries Y^0 (LOTR Sec. IV-C: N(0, 1e-4)); with ``query_init='anchor_pos'``
        :meth:`init_embeddings` overwrites the draw."""
        return mx.init.Normal(self.query_init_std)

    def init_embeddings(self, pos_embed, query_embed, token_grid, input_size, anchors=None):
        """Set the initial values that are not a plain draw, after the parameters are initialised:
        the sine encoding (``pos_init='sine'``) and the queries at the anchors (``query_init='anchor_pos'``,
        which also copies each decoder cross-attention's query projection into its key projection).

        Parameters
        ----------
        pos_embed, query_embed : Parameter
            P, shape (1, token_grid ** 2, D), and Y^0, shape (1, N, D).
        token_grid : int
            Side of the (square, row-major) token map.
        input_size : int
            Side of the input crop, pixels.
        anchors : array (N, 2) or None
            Crop pixels; ``anchor_pos`` does nothing without them.
        """
        if self.pos_init == "sine":
            pos_embed.set_data(mx.nd.array(sine_position_encoding(
                token_grid, pos_embed.shape[-1], self.pos_sine_temperature)[None]))
        if self.query_init == "anchor_pos" and anchors is not None:
            pos = pos_embed.data().asnumpy()[0]  # (L, D)
            query_embed.set_data(mx.nd.array(sample_token_grid(pos, token_grid, np.asarray(anchors).reshape(-1, 2),
                                                               input_size)[None]))
            for layer in self.decoder:
                att = layer.cross_attn
                att.proj_k.weight.set_data(att.proj_q.weight.data().copy())
                att.proj_k.bias.set_data(att.proj_q.bias.data().copy())

    def hybrid_forward(self, F, src, pos, query):
        memory = src
        for layer in self.encoder:  # eq. (9): X^l = enc^l(X^{l-1}, P), l = 1..L
            memory = layer(memory, pos)
        if self._enc_norm:
            memory = self.enc_norm(memory)
        # broadcast the (1, N, D) queries over the batch without reading shapes: (B, N, D)
        batch_ref = F.slice_axis(F.zeros_like(memory), axis=1, begin=0, end=1)  # (B, 1, D)
        query_b = F.broadcast_add(batch_ref, query)
        tgt = query_b if self._decoder_input == "queries" else F.zeros_like(query_b)
        outs = []
        for layer in self.decoder:  # eq. (14): Y^l = dec^l(Y^{l-1}, Y^0, X^L, P), l = 1..L
            tgt = layer(tgt, memory, pos, query)
            if self._return_intermediate:
                outs.append(self.dec_norm(tgt) if self._final_norm else tgt)
        if self._return_intermediate:
            return F.stack(*outs, axis=0)
        return self.dec_norm(tgt) if self._final_norm else tgt


def sine_position_encoding(grid, dim, temperature=10000.0):
    """DETR's 2-D sine positional encoding (``PositionEmbeddingSine(dim // 2, temperature, normalize=True)``)
    for a ``grid`` x ``grid`` token map, row-major as LOTR's tokens: array (grid * grid, dim), values in
    [-1, 1]; the first ``dim / 2`` channels encode y, the rest x (sin on even, cos on odd channels).

    Raises
    ------
    ValueError
        ``dim`` not divisible by 4.
    """
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
