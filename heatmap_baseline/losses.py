"""Heatmap loss for the Earp et al. baseline.

Neither Earp et al. (2021) nor LOTR (Table V) names the loss of the heatmap models; we use the usual
heatmap-regression loss, the pixel-wise mean squared error between predicted and Gaussian target heatmaps
(as Xiao et al., Simple Baselines, without their factor 1/2).
"""
import numpy as np
from mxnet.gluon.loss import Loss

__all__ = ["HeatmapMSELoss"]


class HeatmapMSELoss(Loss):
    """Mean squared error over heatmap pixels and landmarks, one value per sample.

    ``loss_b = weight * mean_{n, v, u} w_n s_bn (pred_bnvu - label_bnvu)^2``

    Parameters
    ----------
    weight : float
        Global scale.
    landmark_weights : array (N,) or None
        Fixed per-landmark weights ``w_n`` (None = all 1). The mean is over N, not normalised by the weights.
    batch_axis : int
        Gluon convention (0).

    Inputs: ``pred``, ``label`` (B, N, h, w); optional ``sample_weight`` (B, N) (e.g. visibility ``s_bn``)
    or anything broadcastable to it. Output: (B,).
    """

    def __init__(self, weight=1.0, landmark_weights=None, batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._has_lw = landmark_weights is not None
        if self._has_lw:
            lw = np.asarray(landmark_weights, np.float32).reshape(1, -1)
            self.landmark_weights = self.params.get_constant("landmark_weights", lw)

    def hybrid_forward(self, F, pred, label, sample_weight=None, landmark_weights=None):
        err = F.mean(F.square(pred - label), axis=(2, 3))  # (B, N)
        if landmark_weights is not None:
            err = F.broadcast_mul(err, landmark_weights)
        if sample_weight is not None:
            err = F.broadcast_mul(err, sample_weight)
        loss = F.mean(err, axis=1)
        if self._weight is not None and self._weight != 1.0:
            loss = loss * self._weight
        return loss
