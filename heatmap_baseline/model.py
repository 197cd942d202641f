"""Heatmap-regression baseline of Earp et al., "Sub-pixel face landmarks using heatmaps and a bag of
tricks" (Sertis, arXiv 2103.03059, 2021): Earp Tables 1-6, and the "heatmap-based" rows of LOTR Table V.

backbone (gluoncv, cut before global pooling) -> optional 1x1 "reduce" conv + BN + ReLU -> upsampler, a string
of ``S`` / ``D`` blocks, each doubling the resolution -> conv to ``num_points`` heatmaps (after the last block,
or, Earp Sec. 4.2, before a final ``S`` block).

Blocks (Earp Sec. 4.1-4.2)
--------------------------
``D``  Conv2DTranspose(filters, ``d_kernel``, stride 2, no bias) + BatchNorm + ReLU. Earp Sec. 4.1: "a series
       of four deconvolutions - all with 256 filters and a stride of two - each followed by a batch
       normalization layer and a ReLU activation, and finally a 2D convolution with 106 filters".
``S``  Conv2D(``s_conv_mult * filters``, ``s_kernel``, no bias) + BatchNorm + ReLU + pixel shuffle x2 (Earp
       Sec. 4.2: "a 2D convolution, a batch normalization, a ReLU activation, and a final pixel shuffle
       layer"), so ``s_conv_mult * filters / 4`` channels leave the block. ``s_block='shuffle_conv'``: pixel
       shuffle first, then Conv2D(filters) + BN + ReLU (an option, not the paper's order).

At 192x192 with a stride-32 backbone (6x6 features) ``DDDD`` gives 96x96 heatmaps (Earp Sec. 4.1) and ``SDD``
48x48.

Where Earp et al. are silent, and what the Earp configs choose (``experiments/*/earp_*.yaml``)
--------------------------------------------------------------------------------------------
The choices below make our sizes and multiply-accumulates (the papers' "GFLOPs", :mod:`lotr_gluon.flops`)
of Tables 2-4 as close to the printed ones as we could find; ``python -m heatmap_baseline.blocks_report`` prints
ours next to the paper's (docs/model.md lists the choices). Each is a constructor keyword and a
config key.

* ``d_kernel = 4`` (``MODEL.HEATMAP.D_KERNEL``): the Simple-Baselines deconvolution, padding 1. With it
  the D-ending strategies of Table 3 come within 1 % of the printed GFLOPs, Table 4's SSD, SDD, SSSD within 2.5 %.
* ``s_kernel = 3`` (``MODEL.HEATMAP.S_KERNEL``; ESPCN's last layer is 3x3).
* ``s_conv_mult = 1`` (``MODEL.HEATMAP.S_CONV_MULT``): the S convolution has the block's ``filters``
  filters ("all with 256 filters"), so 64 channels (32 at 128 filters) leave an S block. ``4`` (ESPCN
  style: ``4 * filters`` filters, ``filters`` channels out) is the layout LOTR's auxiliary head uses.
* ``heatmap_conv = 'before_last_s'`` (``MODEL.HEATMAP.CONV``): Sec. 4.2 "we generate the heatmaps by adding
  a 2D convolutional layer before the final block": for strings ending in ``S`` a conv to N heatmaps
  (``heatmap_pre_kernel = 3``, ``MODEL.HEATMAP.PRE_KERNEL``) precedes the final S block, whose convolution
  (``final_s_kernel = 1``, ``MODEL.HEATMAP.FINAL_S_KERNEL``) has 4 N filters, so its shuffle gives the N
  heatmaps. ``final_s_act`` (``MODEL.HEATMAP.FINAL_S_ACT``): ``'bn_relu'`` (default) passes them through BN
  and ReLU as every block; the Earp configs use ``'linear'`` (conv with bias, N(0, 0.001) init, no BN or
  ReLU), as the heatmap conv after a final D block: with BN + ReLU the ReLU zeroed most maps in our
  from-scratch runs. Strings ending in ``D`` end with the Sec. 4.1 conv to N heatmaps,
  ``heatmap_kernel = 1`` (``MODEL.HEATMAP.KERNEL``), with bias.
* ``reduce = 320`` (``MODEL.HEATMAP.REDUCE``): a 1x1 conv + BN + ReLU from the backbone's 1280 channels to
  320 before the first block. Not in the paper's text; the printed numbers need it: with the gluoncv
  MobileNetV2-0.25 (1280 channels out) a first 4x4 deconvolution alone has 5.2M weights and DDDD would be
  33 MiB (Table 2: 18.26 MB); with 320 channels into the upsampler DDDD is 3.50 GMACs / 19.6 MiB (printed
  3.50 / 18.26) and SDD on MobileNetV2-1.0 at 128 filters 0.44 GMACs (printed 0.43). 320 = 1280 x 0.25
  is what a MobileNetV2-0.25 whose last 1x1 conv follows the width multiplier would give; ``reduce = 0``
  is the literal text (``blocks_report`` prints its numbers).
* Pixel-shuffle channel order: CRD, as ``torch.nn.PixelShuffle`` (output channel c, sub-pixel (i, j) is
  input channel ``c * 4 + i * 2 + j``). Written with reshape/transpose only, so it hybridizes.
* BN before ReLU, no conv bias before BN (Simple Baselines).
* What the paper's numbers still do not match: S-ending strategies (SSSS, DSSS, DDSS, DSDS, DDDS) are
  0.57-0.85x the printed GMACs (DSDS 0.57x), and SDDSD (five blocks: 192x192 heatmaps at 192 input) is
  1.85 GMACs where Table 4 prints 0.61.

LOTR Table V heatmap model (``experiments/*/earp_mnv2_1.0_sdd.yaml``, the config defaults)
-----------------------------------------------------------------------------------------
Neither paper gives its widths, only the parameter counts 2.92M (MobileNetV2-1.0, SDD) and 24.42M (ResNet50).
``reduce = 256``, ``filters = 32``, ``s_conv_mult = 4``, ``heatmap_conv = 'after'`` give 2,918,634 (-0.05 %)
and 24,437,290 (+0.07 %) parameters counted as Table V counts CNN+FFN (all parameters, BatchNorm statistics
included, ``lotr_gluon.model_zoo.count_params``); these are the defaults of the config keys, so configs written
before the Earp blocks build the same network.

Initialisation: He (fan-in) for the reduce conv and the upsampler (the Sec. 4.2 heatmap conv too), N(0, 0.001)
weights and zero bias for the final heatmap conv (Simple Baselines), BatchNorm gamma 1, beta 0. Backbone:
ImageNet weights when available, otherwise He, see :func:`lotr_gluon.blocks.backbones.get_backbone`.
"""
import mxnet as mx
from mxnet.gluon import nn, HybridBlock

from lotr_gluon.blocks.backbones import get_backbone
from lotr_gluon.blocks.layers import initialize_block

from .codec import HeatmapCodec
from .upsampling import PixelShuffle, build_upsampler, parse_upsampler

__all__ = ["EarpHeatmapNet", "PixelShuffle", "parse_upsampler"]


class EarpHeatmapNet(HybridBlock):
    """Heatmap landmark network (Earp et al. 2021; LOTR Table V heatmap baseline). See the module docstring.

    Parameters
    ----------
    backbone : str
        gluoncv backbone (:data:`lotr_gluon.blocks.backbones.BACKBONES`): mobilenetv2_1.0, mobilenetv2_0.25,
        resnet18_v1, resnet50_v1, ...
    num_points : int
        N landmarks = N heatmaps.
    input_size : int
        Side of the square input crop, pixels; a multiple of the backbone stride.
    upsampler : str
        Blocks, e.g. ``'SDD'`` (default), ``'DDDD'``, ``'SSSS'``, ``'SDDSD'``; each doubles the resolution.
    filters : int
        Filters of every upsampling block (Earp Sec. 4.1: 256, Sec. 4.2-4.3: 128; 32 = the LOTR Table V model,
        see the module docstring).
    reduce : int
        Channels of the 1x1 conv + BN + ReLU between backbone and upsampler (0 = none; 256 default).
    s_block : {'conv_shuffle', 'shuffle_conv'}
        Order inside ``S`` blocks.
    d_kernel, s_kernel : int
        Deconvolution kernel (2, 3, 4; default 4) and S-block convolution kernel (odd; default 3).
    s_conv_mult : int
        Filters of the S-block convolution = ``s_conv_mult * filters`` (default 4: ``filters`` channels out of
        the block; Earp configs 1: ``filters / 4``).
    heatmap_conv : {'after', 'before_last_s'}
        Where the conv to N heatmaps goes (Earp Sec. 4.2: before a final S block); see the module docstring.
    heatmap_kernel, heatmap_pre_kernel, final_s_kernel : int
        Odd kernels of the heatmap conv after a final D block (1), of the heatmap conv before a final S block
        (3) and of that final S block's convolution (1).
    final_s_act : {'bn_relu', 'linear'}
        That final S block with BatchNorm + ReLU on the heatmaps (default) or linear (see
        :func:`heatmap_baseline.upsampling.final_s_block`).
    sigma : float
        Gaussian target std, heatmap pixels (LOTR eq. (1); 1.5).
    decoder : {'dark', 'argmax', 'argmax_shift', 'vector'}
        Default decoder of :meth:`decode` (see :class:`heatmap_baseline.codec.HeatmapCodec`).
    pretrained, pretrained_file, pretrained_root, hrnet_stride :
        See :func:`lotr_gluon.blocks.backbones.get_backbone`.

    Attributes
    ----------
    heatmap_size : int
        Side of the heatmaps (input_size / backbone stride * 2 ** len(upsampler)).
    stride : float
        Input pixels per heatmap pixel.
    codec : HeatmapCodec
        Encodes targets (``net.codec.encode(points)``) and decodes outputs for this net.
    aux_outputs : bool
        Always False (no deep supervision).

    Inputs: (B, 3, input_size, input_size) normalised RGB. Output: (B, N, heatmap_size, heatmap_size)
    heatmaps (no activation).
    """

    def __init__(self, backbone="mobilenetv2_1.0", num_points=106, input_size=192, upsampler="SDD", filters=32,
                 pretrained=False, pretrained_file="", pretrained_root="", hrnet_stride=None, sigma=1.5,
                 decoder="dark", reduce=256, s_block="conv_shuffle", d_kernel=4, s_kernel=3, s_conv_mult=4,
                 heatmap_conv="after", heatmap_kernel=1, heatmap_pre_kernel=3, final_s_kernel=1,
                 final_s_act="bn_relu", **kwargs):
        super().__init__(**kwargs)
        self.upsampler = parse_upsampler(upsampler)
        self.num_points = int(num_points)
        self.input_size = int(input_size)
        self.filters = int(filters)
        self.aux_outputs = False
        with self.name_scope():
            self.backbone, channels, bstride, self.backbone_loaded = get_backbone(
                backbone, pretrained, pretrained_file, pretrained_root, hrnet_stride)
            if self.input_size % bstride:
                raise ValueError("input_size %d is not a multiple of the backbone stride %d"
                                 % (self.input_size, bstride))
            self.heatmap_size = self.input_size // bstride * 2 ** len(self.upsampler)
            if int(s_conv_mult) < 1 or (int(s_conv_mult) * self.filters) % 4:
                raise ValueError("s_conv_mult * filters must be a positive multiple of 4, got %r x %d"
                                 % (s_conv_mult, self.filters))
            if int(heatmap_kernel) < 1 or int(heatmap_kernel) % 2 == 0:
                raise ValueError("heatmap_kernel must be odd and positive, got %r" % (heatmap_kernel,))
            self.neck, c = build_upsampler(
                channels, self.upsampler, self.filters, reduce, s_block, "neck_", d_kernel=d_kernel,
                s_kernel=s_kernel, s_conv_filters=int(s_conv_mult) * self.filters, num_heatmaps=self.num_points,
                heatmap_conv=heatmap_conv, heatmap_pre_kernel=heatmap_pre_kernel, final_s_kernel=final_s_kernel,
                final_s_act=final_s_act)
            # Earp Sec. 4.2: a final S block after the heatmap conv already outputs the heatmaps
            self.heatmaps_in_neck = heatmap_conv == "before_last_s" and self.upsampler[-1] == "S"
            if self.heatmaps_in_neck:
                self.final = None
            else:  # Earp Sec. 4.1: "finally a 2D convolution with 106 filters to generate the heatmaps"
                k = int(heatmap_kernel)
                self.final = nn.Conv2D(self.num_points, k, padding=k // 2, in_channels=c,
                                       weight_initializer=mx.init.Normal(0.001), bias_initializer="zeros",
                                       prefix="final_")
        self.stride = self.input_size / float(self.heatmap_size)
        self.codec = HeatmapCodec(self.input_size, self.heatmap_size, sigma=sigma, decoder=decoder)

    def initialize_params(self, ctx=None, force_reinit=False):
        """Initialise every parameter not already loaded (He init unless a layer names its own; the
        backbone keeps ImageNet weights when it has them). Returns ``self``."""
        return initialize_block(self, ctx, force_reinit)

    def hybrid_forward(self, F, x):
        y = self.neck(self.backbone(x))
        return y if self.final is None else self.final(y)

    def decode(self, heatmaps, method=None):
        """Landmarks, numpy (B, N, 2) float32, (x, y) in pixels of the input crop, from output heatmaps
        (mx.nd or numpy (B, N, h, w)) with the codec's decoder (or ``method``)."""
        return self.codec.decode(heatmaps, method)[0]

    def encode(self, points):
        """Target heatmaps for landmarks in input-crop pixels; same as ``self.codec.encode``."""
        return self.codec.encode(points)
