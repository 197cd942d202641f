"""Heatmap-regression baseline of Earp et al., "Sub-pixel face landmarks using heatmaps and a bag of
tricks" (Sertis, arXiv 2103.03059, 2021), as used for the "heatmap-based" rows of LOTR Table V.

backbone (gluoncv, cut before global pooling) -> 1x1 "reduce" conv + BN + ReLU -> upsampler, a string of
``S`` / ``D`` blocks, each doubling the resolution -> 1x1 conv to ``num_points`` heatmaps.

Blocks
------
``D``  Conv2DTranspose(filters, 4x4, stride 2, padding 1, no bias) + BatchNorm + ReLU (the deconvolution
       layer of Xiao et al., "Simple Baselines").
``S``  (``s_block='conv_shuffle'``, default) Conv2D(4 * filters, 3x3, padding 1, no bias) + BatchNorm + ReLU
       + pixel shuffle x2 -> ``filters`` channels at twice the resolution (the sub-pixel convolution of
       Shi et al., ESPCN). ``s_block='shuffle_conv'``: pixel shuffle x2 first (C -> C/4 channels), then
       Conv2D(filters, 3x3) + BatchNorm + ReLU at the new resolution.

At 192x192 with a stride-32 backbone (6x6 features) ``DDDD`` gives 96x96 heatmaps and ``SDD`` 48x48.

Where the papers are vague, and what we chose
---------------------------------------------
* Kernel of the convolution in ``S`` blocks: not given; 3x3 (ESPCN's last layer is 3x3). Whether the
  convolution comes before the shuffle (ESPCN: conv to r^2 C channels, then shuffle) or after it is not
  given either; before (``conv_shuffle``) by default, ``shuffle_conv`` as an option.
* Pixel-shuffle channel order: CRD, as ``torch.nn.PixelShuffle`` (output channel c, sub-pixel (i, j) is
  input channel ``c * 4 + i * 2 + j``). Written with reshape/transpose only, so it hybridizes.
* Where the heatmaps come from: always a separate final 1x1 conv (with bias) after the last block, also for
  all-``S`` strings (the last ``S`` could instead produce ``4 * num_points`` channels and shuffle them
  directly into heatmaps; we keep one rule for every string).
* BatchNorm + ReLU after every block, BN before ReLU, no conv bias before BN (Simple Baselines).
* The 1x1 "reduce" conv (``reduce`` channels, BN, ReLU) between backbone and upsampler, and the default
  ``filters = 32``: neither paper gives the widths of the LOTR Table V heatmap model, only its parameter
  count: 2.92M (MobileNetV2-1.0, SDD) and 24.42M (ResNet50). With the block definitions above,
  ``reduce = 256`` (the 1x1 conv to 256 of the LOTR "+" models, same lab) and ``filters = 32`` give
  2,918,634 (-0.05 %) and 24,437,290 (+0.07 %) parameters, counted as Table V counts CNN+FFN (3.89M /
  25.24M): all parameters, BatchNorm statistics included (``lotr_gluon.models.count_params``).
  Without the reduce conv the ``conv_shuffle`` S block on the 1280 (2048) backbone channels costs
  ``36 * C * filters`` weights: filters 16 gives 3,005,642 (+2.9 %) / 24,770,058 (+1.4 %), 32 gives
  3.77M (+29 %), 256 gives 16.19M. Other layouts fit too, e.g. ``reduce=0, s_block='shuffle_conv',
  filters=104``: 2,915,994 / 24,417,754. The count cannot tell these apart; we keep the S / D blocks defined above
  (ESPCN sub-pixel conv, Simple-Baselines deconv) and the LOTR neck. With ``filters = 256`` (the Simple-Baselines deconvolution width) our SDD has 7.08M
  parameters. The widths of Earp et al.'s own Tables 2-3 (MobileNetV2-0.25) are not recoverable either; our
  configs keep the Table V layout (reduce 256, filters 32) there.
* Initialisation: He (fan-in) for the reduce conv and the upsampler, N(0, 0.001) weights and zero bias for
  the last 1x1 conv (Simple Baselines), BatchNorm gamma 1, beta 0. Backbone: ImageNet weights when
  available, otherwise He, see :func:`lotr_gluon.models.backbones.get_backbone`.
"""
import mxnet as mx
from mxnet.gluon import nn, HybridBlock

from lotr_gluon.models.backbones import get_backbone
from lotr_gluon.models.lotr import he_init, initialize_block

from lotr_gluon.models.upsampling import PixelShuffle, S_BLOCKS, build_upsampler, parse_upsampler  # noqa: F401

from .codec import HeatmapCodec

__all__ = ["EarpHeatmapNet", "PixelShuffle", "parse_upsampler"]

class EarpHeatmapNet(HybridBlock):
    """Heatmap landmark network (Earp et al. 2021; LOTR Table V heatmap baseline). See the module docstring.

    Parameters
    ----------
    backbone : str
        gluoncv backbone (:data:`lotr_gluon.models.backbones.BACKBONES`): mobilenetv2_1.0, mobilenetv2_0.25,
        resnet18_v1, resnet50_v1, ...
    num_points : int
        N landmarks = N heatmaps.
    input_size : int
        Side of the square input crop, pixels; a multiple of the backbone stride.
    upsampler : str
        Blocks, e.g. ``'SDD'`` (default), ``'DDDD'``, ``'SSSS'``, ``'SDDSD'``; each doubles the resolution.
    filters : int
        Output channels of every upsampling block (32 = the Table V model, see the module docstring).
    reduce : int
        Channels of the 1x1 conv + BN + ReLU between backbone and upsampler (0 = none; 256 default).
    s_block : {'conv_shuffle', 'shuffle_conv'}
        Order inside ``S`` blocks.
    sigma : float
        Gaussian target std, heatmap pixels (LOTR eq. 1; 1.5).
    decoder : {'dark', 'argmax', 'argmax_shift', 'vector'}
        Default decoder of :meth:`decode` (see :class:`heatmap_baseline.codec.HeatmapCodec`).
    pretrained, pretrained_file, pretrained_root, hrnet_stride :
        See :func:`lotr_gluon.models.backbones.get_backbone`.

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
                 decoder="dark", reduce=256, s_block="conv_shuffle", **kwargs):
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
            self.neck, c = build_upsampler(channels, self.upsampler, self.filters, reduce, s_block, "neck_")
            self.final = nn.Conv2D(self.num_points, 1, in_channels=c, weight_initializer=mx.init.Normal(0.001),
                                   bias_initializer="zeros", prefix="final_")
        self.stride = self.input_size / float(self.heatmap_size)
        self.codec = HeatmapCodec(self.input_size, self.heatmap_size, sigma=sigma, decoder=decoder)

    def initialize_params(self, ctx=None, force_reinit=False):
        """Initialise every parameter not already loaded (He init unless a layer names its own; the
        backbone keeps ImageNet weights when it has them). Returns ``self``."""
        return initialize_block(self, ctx, force_reinit)

    def hybrid_forward(self, F, x):
        return self.final(self.neck(self.backbone(x)))

    def decode(self, heatmaps, method=None):
        """Landmarks, numpy (B, N, 2) float32, (x, y) in pixels of the input crop, from output heatmaps
        (mx.nd or numpy (B, N, h, w)) with the codec's decoder (or ``method``)."""
        return self.codec.decode(heatmaps, method)[0]

    def encode(self, points):
        """Target heatmaps for landmarks in input-crop pixels; same as ``self.codec.encode``."""
        return self.codec.encode(points)
