"""Optimisers MXNet 1.9.1 lacks: AdamW (decoupled weight decay, Loshchilov & Hutter) and LAMB with
layer-wise adaptation switched off for chosen tensors.

MXNet's LAMB (You et al.) scales each tensor's Adam step by the trust ratio ||w|| / ||step||. Tensors that
start tiny (LOTR's landmark queries, initialised with std 1e-4) then move tiny amounts, which keeps the
queries, and hence the 106 predicted points, together for many steps (../shared/FINDINGS.md).
``LAMBExclude`` uses a trust ratio of 1 (a plain Adam step) for tensors whose name matches one of
``exclude`` (by default the queries, positional encoding, biases and LayerNorm/BatchNorm parameters).
"""
import re

import mxnet as mx
from mxnet.ndarray import lamb_update_phase1, lamb_update_phase2, zeros

__all__ = ["AdamW", "LAMBExclude", "DEFAULT_LAMB_EXCLUDE"]

DEFAULT_LAMB_EXCLUDE = (r"query_embed$", r"pos_embed$", r"_bias$", r"_beta$", r"_gamma$")


@mx.optimizer.register
class AdamW(mx.optimizer.Adam):
    """Adam with decoupled weight decay: ``w -= lr * (adam_step + wd * w)``."""

    def update(self, index, weight, grad, state):
        lr, wd = self._get_lr(index), self._get_wd(index)
        if wd:
            weight[:] = weight * (1.0 - lr * wd)
        saved, self.wd = self.wd, 0.0  # the Adam kernel then adds no L2 term
        try:
            super().update(index, weight, grad, state)
        finally:
            self.wd = saved

    def update_multi_precision(self, index, weight, grad, state):
        self.update(index, weight, grad, state)


@mx.optimizer.register
class LAMBExclude(mx.optimizer.Optimizer):
    """LAMB (MXNet's ``lamb_update_phase1/2`` kernels) without layer-wise adaptation for excluded tensors.

    Parameters
    ----------
    exclude : tuple of str
        Regular expressions on parameter names; matching tensors get trust ratio 1.
    lower_bound, upper_bound : float or None
        Bounds of ||w|| in the trust ratio, as in ``mx.optimizer.LAMB``.
    """

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-6, lower_bound=None,
                 upper_bound=None, bias_correction=True, exclude=DEFAULT_LAMB_EXCLUDE, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.lower_bound, self.upper_bound = lower_bound, upper_bound
        self.bias_correction = bias_correction
        self._exclude = [re.compile(p) for p in exclude]

    def create_state(self, index, weight):
        return (zeros(weight.shape, weight.context, dtype=weight.dtype),
                zeros(weight.shape, weight.context, dtype=weight.dtype))

    def _excluded(self, index):
        param = self.param_dict.get(index) if self.param_dict else None
        name = param.name if param is not None else self.idx2name.get(index, "")
        return any(p.search(name) for p in self._exclude)

    def update(self, index, weight, grad, state):
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        t = self._index_update_count[index]
        kw = dict(beta1=self.beta1, beta2=self.beta2, epsilon=self.epsilon, bias_correction=self.bias_correction,
                  rescale_grad=self.rescale_grad, t=t)
        if self.clip_gradient:
            kw["clip_gradient"] = self.clip_gradient
        mean, var = state
        g = lamb_update_phase1(weight, grad, mean, var, wd=wd, **kw)
        r_2 = g.norm()
        if self._excluded(index):
            r_1 = r_2  # trust ratio 1: a plain Adam step
            kw2 = {}
        else:
            r_1 = weight.norm()
            kw2 = {}
            if self.lower_bound:
                kw2["lower_bound"] = self.lower_bound
            if self.upper_bound:
                kw2["upper_bound"] = self.upper_bound
        lamb_update_phase2(weight, g, r_1, r_2, lr=lr, out=weight, **kw2)

    def update_multi_precision(self, index, weight, grad, state):
        self.update(index, weight, grad, state)
