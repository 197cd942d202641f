"""Upsampling blocks of the Earp et al. heatmap baseline, also used by LOTR's auxiliary heatmap head.

``S`` = pixel-shuffle block (Earp Sec. 4.2, after Shi et al., ESPCN): conv + BN + ReLU + pixel shuffle x2;
``D`` = stride-2 deconvolution + BN + ReLU (Earp Sec. 4.1; Xiao et al., Simple Baselines). The open choices
(kernels, the width of the S convolution, where the heatmap convolution goes) are keywords of
:func:`build_upsampler`; their defaults are the layout LOTR's auxiliary head was built with, and the Earp
configs set the values that reproduce Earp Tables 2-4 (see :mod:`heatmap_baseline.model`).
:func:`heatmap_head` is the whole head (upsampler + conv to N heatmaps) as one block, LOTR's auxiliary head.

Models layer of docs/architecture.md: imports only :mod:`lotr_gluon.blocks` (the shared blocks) and MXNet.
"""
import mxnet as mx
from mxnet.gluon import nn, HybridBlock

from lotr_gluon.blocks.layers import he_init

__all__ = ["PixelShuffle", "parse_upsampler", "s_block", "d_block", "build_upsampler", "heatmap_head", "S_BLOCKS",
           "HEATMAP_CONV_PLACES"]

S_BLOCKS = ("conv_shuffle", "shuffle_conv")
#: where the heatmap convolution goes: always after the last block, or before a final S block (Earp Sec. 4.2)
HEATMAP_CONV_PLACES = ("after", "before_last_s")


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
    """Pixel shuffle (Earp Sec. 2.3 and 4.2, after Shi et al.'s sub-pixel convolution): depth-to-space with
    factor ``r``, CRD order (as ``torch.nn.PixelShuffle``):
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


def s_block(in_channels, filters, order, prefix, kernel=3, conv_filters=None):
    """One pixel-shuffle block (Earp Sec. 4.2: "a 2D convolution, a batch normalization, a ReLU activation,
    and a final pixel shuffle layer").

    Parameters
    ----------
    in_channels : int
    filters : int
        ``order='conv_shuffle'``: channels after the shuffle when ``conv_filters`` is None (the convolution
        then has ``4 * filters`` filters, ESPCN style). ``order='shuffle_conv'``: filters of the convolution
        after the shuffle.
    order : {'conv_shuffle', 'shuffle_conv'}
    prefix : str
    kernel : int
        Odd kernel of the convolution ("same" padding); default 3 (ESPCN's last layer).
    conv_filters : int, optional
        ``conv_shuffle`` only: filters of the convolution itself (a multiple of 4); the block outputs
        ``conv_filters / 4`` channels. Earp configs: the block's 256 (or 128) filters, so 64 (32) channels
        leave the block.

    Returns
    -------
    HybridSequential mapping (B, in_channels, h, w) to (B, C_out, 2h, 2w).

    Raises
    ------
    ValueError
        Even or non-positive kernel, ``conv_filters`` not a positive multiple of 4, or a ``shuffle_conv``
        input whose channels are not divisible by 4.
    """
    kernel = int(kernel)
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError("S-block kernel must be odd and positive, got %r" % (kernel,))
    blk = nn.HybridSequential(prefix=prefix)
    with blk.name_scope():
        if order == "conv_shuffle":  # Earp Sec. 4.2: conv, BN, ReLU, then the pixel shuffle
            width = 4 * filters if conv_filters is None else int(conv_filters)
            if width <= 0 or width % 4:
                raise ValueError("the S-block convolution needs a positive multiple of 4 filters, got %d" % width)
            blk.add(nn.Conv2D(width, kernel, padding=kernel // 2, use_bias=False, in_channels=in_channels,
                              weight_initializer=he_init()),
                    nn.BatchNorm(in_channels=width), nn.Activation("relu"), PixelShuffle(2))
        else:  # the shuffle first (an option, not the paper's order)
            if in_channels % 4:
                raise ValueError("shuffle_conv S block needs a channel count divisible by 4, got %d" % in_channels)
            blk.add(PixelShuffle(2),
                    nn.Conv2D(filters, kernel, padding=kernel // 2, use_bias=False, in_channels=in_channels // 4,
                              weight_initializer=he_init()),
                    nn.BatchNorm(in_channels=filters), nn.Activation("relu"))
    return blk


#: what the final S block that outputs the heatmaps does after its convolution (``MODEL.HEATMAP.FINAL_S_ACT``)
FINAL_S_ACTS = ("bn_relu", "linear")


def final_s_block(num_heatmaps, prefix, kernel=1, act="bn_relu"):
    """The final S block of Earp Sec. 4.2 that turns N heatmaps into N heatmaps of twice the size: a
    convolution to 4 N channels and a pixel shuffle.

    ``act='bn_relu'``: BatchNorm and ReLU between them, as every S block (the literal reading; Earp is silent
    on whether the heatmaps pass them). ``act='linear'``: no BatchNorm or ReLU; the convolution has a bias and
    N(0, 0.001) weights, zero bias, so the heatmaps are a linear output that starts near zero, as the heatmap
    convolution after a final D block (Sec. 4.1, Simple Baselines).

    Raises
    ------
    ValueError
        Unknown ``act``; an even or non-positive ``kernel``.
    """
    if act not in FINAL_S_ACTS:
        raise ValueError("final S block act must be one of %s, got %r" % (", ".join(FINAL_S_ACTS), act))
    if act == "bn_relu":
        return s_block(num_heatmaps, num_heatmaps, "conv_shuffle", prefix, kernel=kernel)
    kernel = int(kernel)
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError("S-block kernel must be odd and positive, got %r" % (kernel,))
    blk = nn.HybridSequential(prefix=prefix)
    with blk.name_scope():
        blk.add(nn.Conv2D(4 * num_heatmaps, kernel, padding=kernel // 2, in_channels=num_heatmaps,
                          weight_initializer=mx.init.Normal(0.001), bias_initializer="zeros"),
                PixelShuffle(2))
    return blk


def s_block_out_channels(filters, order, conv_filters=None):
    """Channels leaving an S block built by :func:`s_block` with these arguments."""
    if order == "conv_shuffle" and conv_filters is not None:
        return int(conv_filters) // 4
    return int(filters)


def d_block(in_channels, filters, prefix, kernel=4):
    """One deconvolution block (Earp Sec. 4.1): Conv2DTranspose(filters, kernel, stride 2) + BN + ReLU.

    ``kernel`` 4 (padding 1, Simple Baselines), 3 (padding 1, output padding 1) or 2 (padding 0) exactly
    doubles the resolution; other kernels raise ValueError.
    """
    kernel = int(kernel)
    pads = {2: (0, 0), 3: (1, 1), 4: (1, 0)}
    if kernel not in pads:
        raise ValueError("D-block kernel must be 2, 3 or 4 (an exact x2 upsampling), got %r" % (kernel,))
    pad, out_pad = pads[kernel]
    blk = nn.HybridSequential(prefix=prefix)
    with blk.name_scope():  # Earp Sec. 4.1: "deconvolutions ... each followed by a batch normalization ... and a ReLU"
        blk.add(nn.Conv2DTranspose(filters, kernel, strides=2, padding=pad, output_padding=out_pad, use_bias=False,
                                   in_channels=in_channels, weight_initializer=he_init()),
                nn.BatchNorm(in_channels=filters), nn.Activation("relu"))
    return blk


def build_upsampler(in_channels, upsampler="SDD", filters=32, reduce=256, order="conv_shuffle", prefix="neck_",
                    d_kernel=4, s_kernel=3, s_conv_filters=None, num_heatmaps=None, heatmap_conv="after",
                    heatmap_pre_kernel=3, final_s_kernel=1, final_s_act="bn_relu"):
    """Optional 1x1 "reduce" conv + BN + ReLU, then one ``S`` / ``D`` block per letter of ``upsampler``.

    Call inside the owning block's ``name_scope()``. Returns ``(block, out_channels)``; the block maps
    (B, in_channels, h, w) to (B, out_channels, h * 2**len(upsampler), w * 2**len(upsampler)).

    Parameters
    ----------
    in_channels : int
        Backbone channels.
    upsampler : str
        ``S`` / ``D`` letters, first = first block after the backbone.
    filters : int
        Filters of every block (Earp Sec. 4.1: 256; Sec. 4.2-4.3: 128).
    reduce : int
        Channels of the 1x1 conv + BN + ReLU before the first block (0 = none).
    order : {'conv_shuffle', 'shuffle_conv'}
        Order inside ``S`` blocks.
    prefix : str
    d_kernel : int
        Deconvolution kernel (2, 3 or 4; default 4, Simple Baselines).
    s_kernel : int
        Kernel of the S-block convolution (odd; default 3).
    s_conv_filters : int, optional
        Filters of the S-block convolution (``conv_shuffle``); the block then outputs ``s_conv_filters / 4``
        channels. None (default): ``4 * filters``, so the block outputs ``filters`` channels.
    num_heatmaps : int, optional
        Needed with ``heatmap_conv='before_last_s'``: the number N of heatmaps.
    heatmap_conv : {'after', 'before_last_s'}
        'after' (default): no heatmap layer here (the caller adds its conv after the last block).
        'before_last_s' (Earp Sec. 4.2, "we generate the heatmaps by adding a 2D convolutional layer before the
        final block"): when the string ends in ``S``, a conv to N heatmaps (``heatmap_pre_kernel``, with bias)
        comes before the final S block, whose convolution (``final_s_kernel``) has 4 N filters so that the
        shuffle gives the N heatmaps; ``out_channels`` is then N and the block's output *is* the heatmaps (the
        caller adds nothing). Strings ending in ``D`` behave as 'after'.
    heatmap_pre_kernel, final_s_kernel : int
        Odd kernels of those two convolutions.
    final_s_act : {'bn_relu', 'linear'}
        That final S block with BatchNorm + ReLU on the heatmaps (default, as every block) or linear
        (``MODEL.HEATMAP.FINAL_S_ACT``; Earp is silent; Earp configs: linear): see :func:`final_s_block`.
        Measured on Datatang (SSSS, from scratch, 50 steps per epoch): with BN + ReLU the heatmaps started at
        N(0, 1) values and the loss stayed above the all-zero map's for 7 epochs; with a BN scale of 0.01 at
        the start, after 10 epochs the ReLU had zeroed more than half of the 106 maps on every val face (no
        gradient reaches a map that is zero everywhere).

    Raises
    ------
    ValueError
        Bad upsampler string, unknown ``order`` or ``heatmap_conv``, ``filters <= 0``, ``reduce < 0``, bad
        kernels, or ``before_last_s`` without ``num_heatmaps``.
    """
    upsampler = parse_upsampler(upsampler)
    if order not in S_BLOCKS:
        raise ValueError("s_block must be one of %s, got %r" % (", ".join(S_BLOCKS), order))
    if heatmap_conv not in HEATMAP_CONV_PLACES:
        raise ValueError("heatmap_conv must be one of %s, got %r" % (", ".join(HEATMAP_CONV_PLACES), heatmap_conv))
    if int(filters) <= 0 or int(reduce) < 0:
        raise ValueError("filters must be > 0 and reduce >= 0, got %r, %r" % (filters, reduce))
    heatmaps_here = heatmap_conv == "before_last_s" and upsampler[-1] == "S"
    if heatmaps_here and not num_heatmaps:
        raise ValueError("heatmap_conv='before_last_s' needs num_heatmaps")
    for k in (heatmap_pre_kernel, final_s_kernel):
        if int(k) < 1 or int(k) % 2 == 0:
            raise ValueError("heatmap kernels must be odd and positive, got %r" % (k,))
    neck = nn.HybridSequential(prefix=prefix)
    c = in_channels
    with neck.name_scope():
        if reduce:  # not in Earp's text (see heatmap_baseline.model: the printed sizes need it)
            neck.add(nn.Conv2D(int(reduce), 1, use_bias=False, in_channels=c, weight_initializer=he_init()),
                     nn.BatchNorm(in_channels=int(reduce)), nn.Activation("relu"))
            c = int(reduce)
        for i, b in enumerate(upsampler):
            if b == "S" and heatmaps_here and i == len(upsampler) - 1:
                n = int(num_heatmaps)
                k = int(heatmap_pre_kernel)
                # Earp Sec. 4.2: the heatmap convolution, then the final pixel-shuffle block -> N heatmaps
                neck.add(nn.Conv2D(n, k, padding=k // 2, in_channels=c, weight_initializer=he_init(),
                                   prefix="heatmap_"))
                neck.add(final_s_block(n, "s%d_" % i, kernel=final_s_kernel, act=final_s_act))
                c = n
            elif b == "S":  # Earp Sec. 4.2 pixel-shuffle block
                neck.add(s_block(c, int(filters), order, "s%d_" % i, kernel=s_kernel, conv_filters=s_conv_filters))
                c = s_block_out_channels(filters, order, s_conv_filters)
            else:  # Earp Sec. 4.1 deconvolution block
                neck.add(d_block(c, int(filters), "d%d_" % i, kernel=d_kernel))
                c = int(filters)
    return neck, c


def heatmap_head(in_channels, num_points, upsampler="SDD", filters=32, reduce=256, s_block="conv_shuffle",
                 d_kernel=4, s_kernel=3, s_conv_mult=4, heatmap_conv="after", heatmap_kernel=1, heatmap_pre_kernel=3,
                 final_s_kernel=1, prefix="auxhm_", final_s_act="bn_relu"):
    """The Earp et al. head as one block: :func:`build_upsampler` followed by the conv to N heatmaps (Earp
    Sec. 4.1, N(0, 0.001) weights, zero bias), or ending in the Sec. 4.2 final S block that gives the heatmaps
    itself. LOTR's auxiliary heatmap head (``MODEL.AUX.HEATMAP_WEIGHT > 0``, layout ``MODEL.HEATMAP``).

    Parameters are those of :func:`build_upsampler` (``s_block`` = its ``order``; ``s_conv_mult * filters`` =
    its ``s_conv_filters``) and :class:`heatmap_baseline.model.EarpHeatmapNet` (``heatmap_kernel``); the conv
    to the heatmaps is the last child of the returned sequence.

    Returns
    -------
    HybridSequential mapping (B, in_channels, h, w) to (B, num_points, h u, w u) heatmaps, ``u = 2 **
    len(upsampler)``, also set as its attribute ``upscale``.

    Raises
    ------
    ValueError
        As :func:`build_upsampler`; an even or non-positive ``heatmap_kernel``.
    """
    k = int(heatmap_kernel)
    if k < 1 or k % 2 == 0:
        raise ValueError("heatmap_kernel must be odd and positive, got %r" % (heatmap_kernel,))
    up, c = build_upsampler(in_channels, upsampler, filters, reduce, s_block, prefix, d_kernel=d_kernel,
                            s_kernel=s_kernel, s_conv_filters=int(s_conv_mult) * int(filters),
                            num_heatmaps=num_points, heatmap_conv=heatmap_conv,
                            heatmap_pre_kernel=heatmap_pre_kernel, final_s_kernel=final_s_kernel,
                            final_s_act=final_s_act)
    if not (heatmap_conv == "before_last_s" and parse_upsampler(upsampler)[-1] == "S"):
        with up.name_scope():  # Earp Sec. 4.1: "finally a 2D convolution with 106 filters"
            up.add(nn.Conv2D(num_points, k, padding=k // 2, in_channels=c, weight_initializer=mx.init.Normal(0.001),
                             bias_initializer="zeros"))
    up.upscale = 2 ** len(parse_upsampler(upsampler))
    return up
