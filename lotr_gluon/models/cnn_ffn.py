"""CNN + FFN coordinate regressor (LOTR Sec. IV-G-2, the Table V baseline), composed from built parts:

backbone -> the same 1x1 conv as LOTR's eq. (8) (to D = ``hidden_dim`` channels, :func:`conv_neck`) -> dropout
-> flatten -> FFN 512-512-2N (:class:`lotr_gluon.models.heads.PFFNHead` with ``flatten``) -> crop pixels
(:class:`lotr_gluon.models.heads.LandmarkOutput`). Table V: 3.89M parameters (MobileNetV2), 25.24M (ResNet50).

Layer 3 of the README's "Layers": imports only layer 2 (:mod:`lotr_gluon.blocks`) and the shared heads.
"""
from mxnet.gluon import nn, HybridBlock

from ..blocks.backbones import get_backbone
from ..blocks.layers import he_init, initialize_block, model_scope
from .heads import landmark_head

__all__ = ["CNNFFN", "make_cnn_ffn", "conv_neck"]


def conv_neck(in_channels, hidden_dim=64, prefix="neck_"):
    """The 1x1 convolution C -> D = ``hidden_dim`` channels (as LOTR eq. (8), without the reshape); attribute
    ``out_channels``."""
    neck = nn.Conv2D(hidden_dim, 1, in_channels=in_channels, weight_initializer=he_init(), prefix=prefix)
    neck.out_channels = int(hidden_dim)
    return neck


class CNNFFN(HybridBlock):
    """CNN + FFN coordinate regressor (see the module docstring).

    Parameters
    ----------
    backbone : HybridBlock
        CNN trunk from :func:`lotr_gluon.blocks.backbones.get_backbone` (attributes ``stride``,
        ``pretrained_loaded``).
    neck : HybridBlock
        :func:`conv_neck`.
    head : PFFNHead
        Built with ``flatten=True`` on (input_size / stride)^2 x D features, 2 N outputs.
    output : LandmarkOutput
        Crop pixels (anchors, units).
    dropout : float
        Dropout on the neck's output (0 = none).
    input_size : int
        Side of the square input crop, pixels.

    Inputs: (B, 3, S, S). Output: (B, N, 2) pixels of the input crop.
    """

    def __init__(self, backbone, neck, head, output, dropout=0.0, input_size=192, **kwargs):
        super().__init__(**kwargs)
        self.num_points = output.num_points
        self.input_size = input_size
        self.aux_outputs = False
        self.backbone_loaded = backbone.pretrained_loaded
        with self.name_scope():
            self.backbone = backbone
            self.neck = neck
            self.drop = nn.Dropout(dropout)
            self.head = head
            self.to_pixels = output

    def initialize_params(self, ctx=None, force_reinit=False):
        """Initialise every parameter not already loaded (He init unless a layer names its own; the backbone
        keeps ImageNet weights when it has them) and write the anchors. Returns ``self``."""
        initialize_block(self, ctx, force_reinit)
        self.to_pixels.write_anchors()
        return self

    def hybrid_forward(self, F, x):
        out = self.head(self.drop(self.neck(self.backbone(x))))
        return self.to_pixels(F.reshape(out, shape=(0, -1, 2)))


def make_cnn_ffn(backbone="mobilenetv2_1.0", num_points=106, input_size=192, hidden_dim=64, head_hidden=(512, 512),
                 dropout=0.0, coord_units="input_frac", use_anchors=False, anchors=None, head_last_init_std=1e-3,
                 pretrained=False, pretrained_file="", pretrained_root="", hrnet_stride=None):
    """CNN+FFN from keywords (``get_model('cnn_ffn', ...)`` and the presets ``cnn_ffn_mnv2``, ``cnn_ffn_r50``);
    the arguments are those of :func:`lotr_gluon.models.lotr.make_lotr` that apply."""
    with model_scope(CNNFFN) as prefix:  # parameter names as if CNNFFN built its parts itself
        trunk = get_backbone(backbone, pretrained, pretrained_file, pretrained_root, hrnet_stride)[0]
        grid = input_size // trunk.stride
        neck = conv_neck(trunk.num_channels, hidden_dim)
        head, output = landmark_head(grid * grid * hidden_dim, num_points, input_size, head_hidden, coord_units,
                                     anchors, use_anchors, head_last_init_std, flatten=True)
    return CNNFFN(trunk, neck, head, output, dropout, input_size, prefix=prefix)
