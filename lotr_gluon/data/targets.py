"""Heatmap training targets made in the data pipeline, not on the training step's main thread."""
import numpy as np
import mxnet as mx

__all__ = ["WithHeatmapTargets"]


class WithHeatmapTargets(mx.gluon.data.Dataset):
    """A landmark dataset whose items also carry the Gaussian target heatmaps of their landmarks.

    Wraps a dataset of ``(image, landmarks)`` items (e.g. :class:`lotr_gluon.data.dataset.AlignedFaceDataset`
    with its augmentation) and returns ``(image, landmarks, heatmaps)``, ``heatmaps = codec.encode(landmarks)``
    (LOTR eq. 1, float32 (N, h, w)). The codec works per landmark and per pixel, so a batch of these targets
    equals, bit for bit, ``codec.encode`` of the batch of landmarks that the training step computed before
    (``tests/test_bench_train.py``); encoding here lets DataLoader workers, or the main thread while MXNet's
    engine runs the previous step, do it.

    Parameters
    ----------
    dataset : Dataset
        Items ``(image, landmarks)``, landmarks (N, 2) in input-crop pixels.
    codec : heatmap_baseline.codec.HeatmapCodec
        Encodes (N, 2) crop-pixel landmarks to (N, h, w) heatmaps.
    """

    def __init__(self, dataset, codec):
        self.dataset = dataset
        self.codec = codec

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        img, pts = self.dataset[i]
        pts = np.asarray(pts, np.float32)
        return img, pts, self.codec.encode(pts)
