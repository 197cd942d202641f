"""CNN + FFN coordinate regressor (LOTR Sec. IV-G-2, the Table V baseline), composed from built parts:

backbone -> the same 1x1 conv as LOTR's eq. (8) (to D = ``hidden_dim`` channels, :func:`conv_neck`) -> dropout
-> flatten -> FFN 512-512-2N (:class:`lotr_gluon.models.heads.PFFNHead` with ``flatten``) -> crop pixels
(:class:`lotr_gluon.models.heads.LandmarkOutput`). Table V: 3.89M parameters (MobileNetV2), 25.24M (ResNet50).

Models layer (docs/architecture.md): imports only the shared blocks (:mod:`lotr_gluon.blocks`).
"""
from mxnet.gluon import nn, HybridBlock

from ..blocks.layers import he_init, initialize_block

__all__ = ["CNNFFN", "conv_neck"]


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
