"""Upsampling blocks shared by the Earp et al. heatmap baseline and LOTR's auxiliary heatmap head.

``S`` = sub-pixel convolution (Shi et al., ESPCN): conv + BN + ReLU + pixel shuffle x2; ``D`` = 4x4
stride-2 deconvolution + BN + ReLU (Xiao et al., Simple Baselines). See :mod:`heatmap_baseline.model` for
the choices where the papers are vague.
"""
from mxnet.gluon import nn, HybridBlock

from .init import he_init

__all__ = ["PixelShuffle", "parse_upsampler", "s_block", "d_block", "build_upsampler", "S_BLOCKS"]

S_BLOCKS = ("conv_shuffle", "shuffle_conv")


def parse_upsampler(upsampler):
    """Validate an upsampler string of ``S`` and ``D`` blocks (case-insensitive); returns it upper-cased.

    Raises
    ------
    ValueError
        Empty string, not a string, or any character other than S / D.
    """
    if not isinstance(upsampler, str) or not upsampler:
        raise ValueError("upsampler must be a non-empty string of 'S' (pixel shuffle) and 'D' "
                         "(deconvolution) blocks, e.g. 'SDD', got %r" % (upsampler,))
    s = upsampler.upper()
    bad = sorted(set(c for c in s if c not in "SD"))
    if bad:
        raise ValueError("upsampler %r has invalid block(s) %s; use only 'S' (conv + BN + ReLU + pixel "
                         "shuffle x2) and 'D' (4x4 stride-2 deconvolution + BN + ReLU), e.g. 'SDD'"
                         % (upsampler, ", ".join(repr(c) for c in bad)))
    return s


class PixelShuffle(HybridBlock):
    """Depth-to-space with factor ``r``, CRD order (as ``torch.nn.PixelShuffle``):
    (B, C r^2, H, W) -> (B, C, H r, W r), ``out[b, c, h r + i, w r + j] = in[b, c r^2 + i r + j, h, w]``.

    Uses ``F.reshape`` special codes and ``F.transpose`` only (no ``.shape``), so it hybridizes.
    """

    def __init__(self, factor=2, **kwargs):
        super().__init__(**kwargs)
        self._r = int(factor)

    def hybrid_forward(self, F, x):
        r = self._r
        x = F.reshape(x, shape=(0, -4, -1, r * r, -2))   # (B, C, r*r, H, W)
        x = F.reshape(x, shape=(0, 0, -4, r, r, -2))     # (B, C, r, r, H, W)
        x = F.transpose(x, axes=(0, 1, 4, 2, 5, 3))      # (B, C, H, r, W, r)
        return F.reshape(x, shape=(0, 0, -3, -3))        # (B, C, H*r, W*r)


def s_block(in_channels, filters, order, prefix):
    blk = nn.HybridSequential(prefix=prefix)
    with blk.name_scope():
        if order == "conv_shuffle":
            blk.add(nn.Conv2D(4 * filters, 3, padding=1, use_bias=False, in_channels=in_channels,
                              weight_initializer=he_init()),
                    nn.BatchNorm(in_channels=4 * filters), nn.Activation("relu"), PixelShuffle(2))
        else:
            if in_channels % 4:
                raise ValueError("shuffle_conv S block needs a channel count divisible by 4, got %d" % in_channels)
            blk.add(PixelShuffle(2),
                    nn.Conv2D(filters, 3, padding=1, use_bias=False, in_channels=in_channels // 4,
                              weight_initializer=he_init()),
                    nn.BatchNorm(in_channels=filters), nn.Activation("relu"))
    return blk


def d_block(in_channels, filters, prefix):
    blk = nn.HybridSequential(prefix=prefix)
    with blk.name_scope():
        blk.add(nn.Conv2DTranspose(filters, 4, strides=2, padding=1, use_bias=False, in_channels=in_channels,
                                   weight_initializer=he_init()),
                nn.BatchNorm(in_channels=filters), nn.Activation("relu"))
    return blk


def build_upsampler(in_channels, upsampler="SDD", filters=32, reduce=256, order="conv_shuffle", prefix="neck_"):
    """Optional 1x1 "reduce" conv + BN + ReLU, then one ``S`` / ``D`` block per letter of ``upsampler``.

    Call inside the owning block's ``name_scope()``. Returns ``(block, out_channels)``; the block maps
    (B, in_channels, h, w) to (B, out_channels, h * 2**len(upsampler), w * 2**len(upsampler)).

    Raises
    ------
    ValueError
        Bad upsampler string, unknown ``order``, ``filters <= 0`` or ``reduce < 0``.
    """
    upsampler = parse_upsampler(upsampler)
    if order not in S_BLOCKS:
        raise ValueError("s_block must be one of %s, got %r" % (", ".join(S_BLOCKS), order))
    if int(filters) <= 0 or int(reduce) < 0:
        raise ValueError("filters must be > 0 and reduce >= 0, got %r, %r" % (filters, reduce))
    neck = nn.HybridSequential(prefix=prefix)
    c = in_channels
    with neck.name_scope():
        if reduce:
            neck.add(nn.Conv2D(int(reduce), 1, use_bias=False, in_channels=c, weight_initializer=he_init()),
                     nn.BatchNorm(in_channels=int(reduce)), nn.Activation("relu"))
            c = int(reduce)
        for i, b in enumerate(upsampler):
            if b == "S":
                neck.add(s_block(c, int(filters), order, "s%d_" % i))
            else:
                neck.add(d_block(c, int(filters), "d%d_" % i))
            c = int(filters)
    return neck, c
