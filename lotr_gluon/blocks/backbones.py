"""CNN backbones from the gluoncv model zoo, cut before global pooling.

LOTR Table I uses MobileNetV2-1.0 (6x6x1280 at 192x192), ResNet50 (6x6x2048 at 192x192) and HRNet
(LOTR-HR+, WFLW 256x256). Earp et al. use MobileNetV2 at widths 0.25 and 1.0, ResNet18 and ResNet50.

ImageNet weights (both papers start from them) come from a local ``.params`` file of the *classification*
network (as saved by ``net.save_parameters``): the one named, else the default file of
:func:`lotr_gluon.pretrained.resolve_pretrained_file` (``make pretrained`` writes MobileNetV2-1.0's), else
gluoncv's model store (needs the network). When none can be had, :func:`get_backbone` raises
:class:`~lotr_gluon.pretrained.PretrainedUnavailable`: it never falls back to a random initialisation silently;
training from scratch is ``pretrained=False``.
"""

import mxnet as mx
from mxnet.gluon import nn, HybridBlock

from ..pretrained import PretrainedUnavailable, resolve_pretrained_file, unavailable

__all__ = ["get_backbone", "BACKBONES", "HRNetFeatures", "PretrainedUnavailable"]

# name -> (gluoncv model name, output stride, channels)
BACKBONES = {
    "mobilenetv2_1.0": ("mobilenetv2_1.0", 32, 1280),
    "mobilenetv2_0.75": ("mobilenetv2_0.75", 32, 1280),
    "mobilenetv2_0.5": ("mobilenetv2_0.5", 32, 1280),
    "mobilenetv2_0.25": ("mobilenetv2_0.25", 32, 1280),
    "resnet18_v1": ("resnet18_v1", 32, 512),
    "resnet34_v1": ("resnet34_v1", 32, 512),
    "resnet50_v1": ("resnet50_v1", 32, 2048),
    "resnet101_v1": ("resnet101_v1", 32, 2048),
    "hrnet_w18_small_v1": ("hrnet_w18_small_v1_c", None, 16 + 32 + 64 + 128),
    "hrnet_w18_small_v2": ("hrnet_w18_small_v2_c", None, 18 + 36 + 72 + 144),
    "hrnet_w18": ("hrnet_w18_c", None, 18 + 36 + 72 + 144),
    "hrnet_w32": ("hrnet_w32_c", None, 32 + 64 + 128 + 256),
}


class HRNetFeatures(HybridBlock):
    """HRNetV2 representation (Wang et al., "Deep high-resolution representation learning"): the four
    branches of a gluoncv HRNet resized to one resolution and concatenated.

    Parameters
    ----------
    base : gluoncv.model_zoo.hrnet.HighResolutionBaseNet
        The classification network; only its trunk (stem to stage 4) is used.
    output_stride : int
        4 (HRNetV2 for facial landmarks, 64x64 at 256x256), 8, 16 or 32. Branch ``i`` has stride
        ``4 * 2**i`` and is resized bilinearly (up) or average-pooled (down) to this stride.

    Output: (B, sum of branch channels, H/stride, W/stride).
    """

    def __init__(self, base, output_stride=4, **kwargs):
        super().__init__(**kwargs)
        if output_stride not in (4, 8, 16, 32):
            raise ValueError("output_stride must be one of 4, 8, 16, 32, got %r" % (output_stride,))
        self.output_stride = output_stride
        with self.name_scope():
            self.base = base

    def hybrid_forward(self, F, x):
        from gluoncv.model_zoo.hrnet import HighResolutionBaseNet
        y_list = HighResolutionBaseNet.hybrid_forward(self.base, F, x)
        outs = []
        for i, y in enumerate(y_list):
            stride = 4 * 2 ** i
            if stride < self.output_stride:
                k = self.output_stride // stride
                y = F.Pooling(y, kernel=(k, k), stride=(k, k), pool_type="avg")
            elif stride > self.output_stride:
                k = stride // self.output_stride
                y = F.contrib.BilinearResize2D(y, scale_height=float(k), scale_width=float(k))
            outs.append(y)
        return F.concat(*outs, dim=1)


def _load_classifier(name, gluon_name, pretrained, pretrained_file, root):
    from gluoncv.model_zoo import get_model

    pretrained_file = resolve_pretrained_file(name, pretrained, pretrained_file)
    if pretrained_file:
        net = get_model(gluon_name, pretrained=False)
        net.initialize(mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2))
        try:
            net.load_parameters(pretrained_file, allow_missing=False, ignore_extra=True)
        except (mx.MXNetError, AssertionError, ValueError) as err:
            raise PretrainedUnavailable("%s: not the ImageNet parameters of gluoncv %s (%s)"
                                        % (pretrained_file, gluon_name, str(err).splitlines()[0])) from None
        return net, True
    if pretrained:
        try:
            kw = {"root": root} if root else {}
            return get_model(gluon_name, pretrained=True, **kw), True
        except Exception as err:  # offline: gluoncv's download raises on the network error
            raise unavailable(name, err) from None
    return get_model(gluon_name, pretrained=False), False


def get_backbone(name, pretrained=False, pretrained_file="", root="", output_stride=None):
    """Build a backbone trunk (no pooling, no classifier).

    Parameters
    ----------
    name : str
        One of :data:`BACKBONES` (e.g. ``'mobilenetv2_1.0'``, ``'resnet50_v1'``, ``'hrnet_w18'``).
    pretrained : bool
        Start from ImageNet weights: the default local file for the backbone, else gluoncv's model store.
    pretrained_file : str
        Local ``.params`` of the gluoncv classification network; takes precedence over ``pretrained``.
    root : str
        gluoncv model-store folder (default ``~/.mxnet/models``).
    output_stride : int or None
        HRNet only (4, 8, 16 or 32, default 4). Other backbones have stride 32.

    Returns
    -------
    trunk : HybridBlock
        Maps (B, 3, H, W) normalised RGB to (B, C, H/s, W/s). It also carries the three values below as
        attributes ``num_channels``, ``stride`` and ``pretrained_loaded`` (as DETR's ``backbone.num_channels``),
        so that a model composed from built parts reads them from the part.
    channels : int
        C.
    stride : int
        s.
    loaded : bool
        Whether pretrained weights were loaded. If False the trunk still needs ``initialize``.

    Raises
    ------
    KeyError
        Unknown name (the message lists the valid names).
    PretrainedUnavailable
        (a ModelError and FileNotFoundError) ``pretrained_file`` missing or of another network; ``pretrained``
        and neither a local file nor gluoncv's model store has the weights. The message names the file and
        ``make pretrained``.
    """
    if name not in BACKBONES:
        raise KeyError("unknown backbone %r; valid: %s" % (name, ", ".join(sorted(BACKBONES))))
    gluon_name, stride, channels = BACKBONES[name]
    net, loaded = _load_classifier(name, gluon_name, pretrained, pretrained_file, root)
    if name.startswith("hrnet"):
        stride = output_stride or 4
        for head in ("incre_blocks", "downsamp_blocks", "final_layer", "avg", "classifier"):
            net._children.pop(head, None)  # classification head: unused, would leave stale gradients
        trunk = HRNetFeatures(net, output_stride=stride, prefix="hrnetfeatures_")
        return _described(trunk, channels, stride, loaded)
    if output_stride not in (None, 32):
        raise ValueError("output_stride is only configurable for HRNet backbones")
    # gluoncv MobileNetV2 / ResNetV1: `features` ends with global average pooling; drop it.
    trunk = nn.HybridSequential(prefix="")
    for block in list(net.features._children.values())[:-1]:
        trunk.add(block)
    return _described(trunk, channels, stride, loaded)


def _described(trunk, channels, stride, loaded):
    trunk.num_channels, trunk.stride, trunk.pretrained_loaded = channels, stride, loaded
    return trunk, channels, stride, loaded
