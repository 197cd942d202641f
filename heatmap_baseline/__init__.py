"""Heatmap baseline of Earp et al., "Sub-pixel face landmarks using heatmaps and a bag of tricks" (2021):
:class:`EarpHeatmapNet` (registered as ``earp_heatmap`` in :func:`lotr_gluon.model_zoo.get_model`),
:class:`HeatmapCodec` (Gaussian targets; argmax / argmax_shift / DARK / vector decoding) and
:class:`HeatmapMSELoss`."""
from .codec import HeatmapCodec, DECODERS
from .losses import HeatmapMSELoss
from .model import EarpHeatmapNet, PixelShuffle, parse_upsampler

__all__ = ["EarpHeatmapNet", "PixelShuffle", "parse_upsampler", "HeatmapCodec", "DECODERS", "HeatmapMSELoss"]
