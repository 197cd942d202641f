"""Transformer encoder/decoder of LOTR (paper Sec. III-A, eqs. 9-18), DETR-style.

Gluon 1.x has no multi-head attention block, so :class:`MultiHeadAttention` is written with
``F.batch_dot``. Every block is a HybridBlock using only ``F.*`` operators, so hybridized and imperative
outputs match and the graph exports to symbol JSON.

Conventions (as DETR's ``models/transformer.py``): sequences are batch-major, shape (B, L, D); the
positional encoding is added to the queries and keys of attention, not to the values (``pos_in_values``
'none', the default); in the decoder the landmark-query embedding is added to the queries (and keys of
self-attention) of every layer. ``pos_in_values`` 'cross' / 'all' is a from-scratch lever, not in LOTR or DETR:
the positional encoding is also added to the values of the decoder's cross-attention ('cross') and of the
encoder's self-attention ('all'), so that what a landmark query reads carries where it read it.
"""
import math

import mxnet as mx
from mxnet.gluon import nn, HybridBlock

__all__ = ["MultiHeadAttention", "PositionwiseFFN", "EncoderLayer", "DecoderLayer", "Transformer"]


class MultiHeadAttention(HybridBlock):
    """Scaled dot-product multi-head attention (Vaswani et al. 2017; LOTR eqs. 10-11 and 15-16).

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
        q = self._split_heads(F, self.proj_q(query)) * self._scale
        k = self._split_heads(F, self.proj_k(key))
        v = self._split_heads(F, self.proj_v(value))
        att = F.softmax(F.batch_dot(q, k, transpose_b=True), axis=-1)  # (B*h, Lq, Lk)
        att = self.dropout(att)
        out = F.batch_dot(att, v)  # (B*h, Lq, D/h)
        out = F.reshape(out, shape=(-4, -1, self._num_heads, -2))  # (B, h, Lq, D/h)
        out = F.transpose(out, axes=(0, 2, 1, 3))
        out = F.reshape(out, shape=(0, 0, -3))  # (B, Lq, D)
        return self.proj_out(out)


class PositionwiseFFN(HybridBlock):
    """Position-wise feed-forward network of the Transformer layers (LOTR eqs. 12-13, 17-18).

    Parameters
    ----------
    units : int
        D.
    hidden : int
        0 (default, LOTR eq. 13 as used for Table V's parameter counts): one dense layer D -> D with ReLU.
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
            else:
                self.net.add(nn.Dense(units, activation="relu", flatten=False, in_units=units,
                                      weight_initializer=weight_initializer))

    def hybrid_forward(self, F, x):
        return self.net(x)


class EncoderLayer(HybridBlock):
    """One encoder layer, post-norm (LOTR eqs. 9-13; DETR ``TransformerEncoderLayer.forward_post``).

    ``q = k = src + pos``, ``value = src`` (``src + pos`` with ``pos_in_values``);
    ``src = LN(src + Dropout(MHA))``; ``src = LN(src + Dropout(FFN))``. ``norm_before``: DETR's pre-norm
    variant (``forward_pre``), ``src = src + Dropout(MHA(LN(src)))``, ``src = src + Dropout(FFN(LN(src)))``.
    Inputs: ``src`` (B, L, D), ``pos`` (B or 1, L, D). Output (B, L, D).
    """

    def __init__(self, units, num_heads, ffn_hidden=0, dropout=0.1, weight_initializer=None, pos_in_values=False,
                 norm_before=False, **kwargs):
        super().__init__(**kwargs)
        self._pos_in_values = bool(pos_in_values)
        self._norm_before = bool(norm_before)
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
        src = self.norm1(src + self.drop1(self.attn(qk, qk, qk if self._pos_in_values else src)))
        return self.norm2(src + self.drop2(self.ffn(src)))


class DecoderLayer(HybridBlock):
    """One decoder layer, post-norm (LOTR eqs. 14-18; DETR ``TransformerDecoderLayer.forward_post``).

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
        super().__init__(**kwargs)
        self._pos_in_values = bool(pos_in_values)
        self._norm_before = bool(norm_before)
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
        tgt = self.norm1(tgt + self.drop1(self.self_attn(qk, qk, tgt)))
        q = F.broadcast_add(tgt, query_pos)
        tgt = self.norm2(tgt + self.drop2(self.cross_attn(q, k, v)))
        return self.norm3(tgt + self.drop3(self.ffn(tgt)))


class Transformer(HybridBlock):
    """Encoder-decoder Transformer of LOTR (Sec. III-A-2).

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
        Input of the first decoder layer: the landmark queries themselves (LOTR eq. 14) or zeros (DETR).
        The query embedding is added to queries/keys of every decoder layer in both cases.
    final_norm : bool
        LayerNorm after the last decoder layer (DETR does this; the LOTR paper does not say).
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
    return_intermediate : bool
        Return the output of every decoder layer stacked on axis 0, (num_decoder_layers, B, N, D), for
        auxiliary supervision of each layer; otherwise the last one, (B, N, D).

    Inputs: ``src`` (B, L, D) image tokens, ``pos`` (1, L, D), ``query`` (1, N, D).
    """

    def __init__(self, units=64, num_heads=8, num_encoder_layers=2, num_decoder_layers=2, ffn_hidden=0,
                 dropout=0.1, decoder_input="queries", final_norm=True, return_intermediate=False,
                 weight_initializer=None, pos_in_values="none", norm_before=False, attn_out_init="he", **kwargs):
        super().__init__(**kwargs)
        if decoder_input not in ("queries", "zeros"):
            raise ValueError("decoder_input must be 'queries' (LOTR eq. 14) or 'zeros' (DETR), got %r"
                             % (decoder_input,))
        if pos_in_values not in ("none", "cross", "all"):
            raise ValueError("pos_in_values must be 'none' (LOTR, DETR), 'cross' or 'all', got %r" % (pos_in_values,))
        if attn_out_init not in ("he", "zero"):
            raise ValueError("attn_out_init must be 'he' or 'zero', got %r" % (attn_out_init,))
        if num_decoder_layers < 1:
            raise ValueError("LOTR needs at least one decoder layer")
        self._decoder_input = decoder_input
        self._return_intermediate = return_intermediate
        self._final_norm = final_norm
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

    def hybrid_forward(self, F, src, pos, query):
        memory = src
        for layer in self.encoder:
            memory = layer(memory, pos)
        if self._enc_norm:
            memory = self.enc_norm(memory)
        # broadcast the (1, N, D) queries over the batch without reading shapes: (B, N, D)
        batch_ref = F.slice_axis(F.zeros_like(memory), axis=1, begin=0, end=1)  # (B, 1, D)
        query_b = F.broadcast_add(batch_ref, query)
        tgt = query_b if self._decoder_input == "queries" else F.zeros_like(query_b)
        outs = []
        for layer in self.decoder:
            tgt = layer(tgt, memory, pos, query)
            if self._return_intermediate:
                outs.append(self.dec_norm(tgt) if self._final_norm else tgt)
        if self._return_intermediate:
            return F.stack(*outs, axis=0)
        return self.dec_norm(tgt) if self._final_norm else tgt
