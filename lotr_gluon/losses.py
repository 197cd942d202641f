"""Coordinate-regression losses for LOTR (Watchareeruetai et al. 2021, arXiv 2109.10057).

All losses act element-wise on the landmark error ``x = pred - label`` (in pixels
of the network input) and are then summed over the ``N`` landmarks and the two
coordinates of each sample, LOTR eq. (20)::

    L = sum_{i=1..N} sum_{j in {x, y}} loss(pred_ij - label_ij)

so ``loss(pred, label)`` with ``pred`` and ``label`` of shape ``(B, N, 2)`` returns
an array of shape ``(B,)`` (a per-sample *sum*, not a mean).  The batch mean is
left to the trainer (``loss.backward()`` on a ``(B,)`` array followed by
``trainer.step(B)`` gives the mean gradient).

Element-wise definitions (``x`` in pixels, ``|x|`` its absolute value):

=============  ==================================================================
name           loss(x)
=============  ==================================================================
``l1``         ``|x|``
``l2``         ``x**2 / 2`` (MXNet/Gluon convention, gradient ``x``)
``smooth_l1``  ``x**2 / (2 beta)`` if ``|x| < beta`` else ``|x| - beta / 2``,
               LOTR eq. (6)
``wing``       ``w ln(1 + |x|/eps)`` if ``|x| < w`` else ``|x| - C``,
               ``C = w - w ln(1 + w/eps)``, LOTR eq. (7) (Feng et al. 2018)
``smooth_wing``LOTR eq. (21)-(24) as printed, see :class:`SmoothWingLoss`
=============  ==================================================================

The classes are :class:`mxnet.gluon.loss.Loss` (hence ``HybridBlock``) subclasses
written with ``F.*`` operators only, so they hybridize.  :func:`loss_curve` is an
independent numpy reference of the same element-wise functions and of their
derivatives, used for LOTR Fig. 2 and in the tests.
"""
import math

import numpy as np
from mxnet.gluon.loss import Loss

__all__ = [
    "LandmarkLoss",
    "L1Loss",
    "L2Loss",
    "SmoothL1Loss",
    "WingLoss",
    "SmoothWingLoss",
    "LOSSES",
    "get_loss",
    "loss_curve",
    "smooth_wing_constants",
    "smooth_wing_value_step",
]


# ----------------------------------------------------------------------------
# constants
# ----------------------------------------------------------------------------
def _check_positive(**kwargs):
    for key, val in kwargs.items():
        if not (isinstance(val, (int, float, np.floating, np.integer)) and math.isfinite(val) and val > 0):
            raise ValueError("%s must be a finite positive number, got %r" % (key, val))


def wing_constant(w=10.0, eps=2.0):
    """Offset ``C`` of the Wing loss, LOTR eq. (7) / Feng et al. (2018) eq. (5).

    ``C = w - w ln(1 + w/eps)`` makes the linear part ``|x| - C`` meet the log
    part ``w ln(1 + |x|/eps)`` at ``|x| = w`` (value continuity only; the slope
    jumps from ``w/(w+eps)`` to 1 there).

    Parameters
    ----------
    w : float
        Half-width of the non-linear region, pixels, ``> 0``.
    eps : float
        Curvature of the log part, pixels, ``> 0``.

    Returns
    -------
    float
        ``C`` (pixels).

    Raises
    ------
    ValueError
        If ``w`` or ``eps`` is not a finite positive number.
    """
    _check_positive(w=w, eps=eps)
    return float(w - w * math.log1p(w / eps))


def smooth_wing_constants(t=0.01, w=10.0, eps=2.0):
    """Constants ``s``, ``c1``, ``c2`` of the smooth-Wing loss, LOTR eq. (22)-(24) as printed.

    The smooth-Wing loss, LOTR eq. (21), is::

        s x**2                                 if |x| < t
        |x| - c1 - c2                          if |x| > w
        (w + eps) ln(1 + |x|/eps) - c2         otherwise (t <= |x| <= w)

    with

    * ``s  = (w + eps) / (2 t (eps + t))``          LOTR eq. (22)
    * ``c1 = w - (w + eps) ln(1 + w/eps)``          LOTR eq. (23)
    * ``c2 = s t**2``                               LOTR eq. (24)

    What these printed constants give (checked in ``tests/test_losses.py``):

    * the gradient is continuous at ``|x| = t`` (``2 s t = (w+eps)/(eps+t)``)
      and at ``|x| = w`` (``(w+eps)/(eps+w) = 1``, the slope of the linear part);
    * the value is continuous at ``|x| = w`` (``c1`` makes the two parts meet);
    * the value is *not* continuous at ``|x| = t``: it steps up by
      ``(w+eps) ln(1 + t/eps) - 2 s t**2``, which is ``1.490056e-4`` for the
      paper's ``t = 0.01, w = 10, eps = 2`` (``0.0298507`` just below ``t``,
      ``0.0299998`` at and above ``t``).  ``c2 = s t**2`` equals the quadratic
      part's value at ``t`` rather than the value that would close the gap.
      We keep the printed constants.

    Parameters
    ----------
    t : float
        Inner threshold, pixels, ``0 < t < w``.
    w : float
        Outer threshold, pixels, ``> 0``.
    eps : float
        Curvature of the log part, pixels, ``> 0``.

    Returns
    -------
    dict
        ``{'s', 'c1', 'c2'}`` as Python floats (``s`` in 1/pixel, ``c1`` and
        ``c2`` in pixels).  The defaults give ``s = 298.50746``,
        ``c1 = -11.501114``, ``c2 = 0.029850746``.

    Raises
    ------
    ValueError
        If a parameter is not finite and positive or if ``t >= w``.
    """
    _check_positive(t=t, w=w, eps=eps)
    if not t < w:
        raise ValueError("smooth-Wing needs 0 < t < w, got t=%r, w=%r" % (t, w))
    t, w, eps = float(t), float(w), float(eps)
    s = (w + eps) / (2.0 * t * (eps + t))  # LOTR eq. (22)
    c1 = w - (w + eps) * math.log1p(w / eps)  # LOTR eq. (23)
    c2 = s * t * t  # LOTR eq. (24)
    return {"s": s, "c1": c1, "c2": c2}


def smooth_wing_value_step(t=0.01, w=10.0, eps=2.0):
    """Value step of the printed smooth-Wing loss at ``|x| = t`` (LOTR eq. (21)-(24)).

    ``L(t) - lim_{|x| -> t-} L(x) = (w + eps) ln(1 + t/eps) - 2 s t**2``
    (pixels; ``1.490056e-4`` for ``t = 0.01, w = 10, eps = 2``).  See
    :func:`smooth_wing_constants`.

    Raises
    ------
    ValueError
        As :func:`smooth_wing_constants`.
    """
    c = smooth_wing_constants(t, w, eps)
    return float((w + eps) * math.log1p(t / eps) - c["c2"] - c["s"] * t * t)


# ----------------------------------------------------------------------------
# Gluon losses
# ----------------------------------------------------------------------------
class LandmarkLoss(Loss):
    """Base class: element-wise loss summed per sample, LOTR eq. (20).

    Subclasses implement :meth:`elementwise` (``F`` ops only).

    Parameters
    ----------
    weight : float or None
        Global scalar multiplier of the loss (Gluon convention).
    batch_axis : int
        Axis of the batch dimension; every other axis is summed.

    Notes
    -----
    ``loss(pred, label, sample_weight=None)``

    pred : NDArray or Symbol, shape (B, N, 2)
        Predicted landmark coordinates, pixels.
    label : NDArray or Symbol, shape (B, N, 2)
        Ground-truth coordinates, pixels (reshaped like ``pred``).
    sample_weight : NDArray or Symbol or None
        Per-element weights broadcastable to ``(B, N, 2)``, e.g. ``(B, N, 1)``
        per-landmark or ``(B, 1, 1)`` per-sample weights.

    Returns ``(B,)``: ``sum_{n, c} weight * sample_weight * loss(pred - label)``.
    """

    def __init__(self, weight=None, batch_axis=0, **kwargs):
        super(LandmarkLoss, self).__init__(weight, batch_axis, **kwargs)
        self._has_sample_weight = None

    def forward(self, pred, label, sample_weight=None):
        """Run the loss; see the class docstring.  Returns shape ``(B,)``.

        A hybridized Gluon block caches its graph for one argument structure;
        switching between calls with and without ``sample_weight`` rebuilds
        the (tiny) graph instead of raising ``ValueError``.
        """
        has_sw = sample_weight is not None
        if self._has_sample_weight is not None and has_sw != self._has_sample_weight:
            self._clear_cached_op()
        self._has_sample_weight = has_sw
        if has_sw:
            return super(LandmarkLoss, self).forward(pred, label, sample_weight)
        return super(LandmarkLoss, self).forward(pred, label)

    def elementwise(self, F, x):  # pragma: no cover - abstract
        """Element-wise loss of the error ``x`` (pixels); same shape as ``x``."""
        raise NotImplementedError

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        label = F.reshape_like(label, pred)
        loss = self.elementwise(F, pred - label)
        if sample_weight is not None:
            loss = F.broadcast_mul(loss, sample_weight)
        if self._weight is not None:
            loss = loss * self._weight
        # LOTR eq. (20): sum over the N landmarks and the 2 coordinates.
        return F.sum(loss, axis=self._batch_axis, exclude=True)


class L1Loss(LandmarkLoss):
    """L1 loss ``|x|`` summed per sample (LOTR Sec. III-C, eq. (20)).

    Gradient ``sign(x)`` (0 at ``x = 0``).  See :class:`LandmarkLoss` for
    the call signature; returns shape ``(B,)``.
    """

    def elementwise(self, F, x):
        return F.abs(x)


class L2Loss(LandmarkLoss):
    """L2 loss ``x**2 / 2`` summed per sample (LOTR Sec. III-C, eq. (20)).

    The factor 1/2 follows the MXNet/Gluon convention so that the gradient is
    ``x``; it only rescales the learning rate.  Returns shape ``(B,)``.
    """

    def elementwise(self, F, x):
        return 0.5 * F.square(x)


class SmoothL1Loss(LandmarkLoss):
    """Smooth-L1 (Huber) loss, LOTR eq. (6), summed per sample.

    ``loss(x) = x**2 / (2 beta)`` for ``|x| < beta``, ``|x| - beta/2`` otherwise;
    value and gradient are continuous at ``|x| = beta``.

    Parameters
    ----------
    beta : float
        Threshold between the quadratic and the linear part, pixels, ``> 0``
        (default 1 px).
    weight, batch_axis
        See :class:`LandmarkLoss`.

    Raises
    ------
    ValueError
        If ``beta`` is not a finite positive number.
    """

    def __init__(self, beta=1.0, weight=None, batch_axis=0, **kwargs):
        _check_positive(beta=beta)
        super(SmoothL1Loss, self).__init__(weight, batch_axis, **kwargs)
        self._beta = float(beta)

    def elementwise(self, F, x):
        ax = F.abs(x)
        b = self._beta
        # LOTR eq. (6)
        return F.where(ax < b, 0.5 / b * F.square(x), ax - 0.5 * b)


class WingLoss(LandmarkLoss):
    """Wing loss (Feng et al. 2018), LOTR eq. (7), summed per sample.

    ``loss(x) = w ln(1 + |x|/eps)`` for ``|x| < w`` and ``|x| - C`` otherwise,
    ``C = w - w ln(1 + w/eps)``.  The gradient is discontinuous at ``x = 0``
    (``+-w/eps``) and at ``|x| = w`` (``w/(w+eps)`` vs 1).

    Parameters
    ----------
    w : float
        Width of the log region, pixels, ``> 0`` (default 10).
    eps : float
        Curvature of the log region, pixels, ``> 0`` (default 2).
    weight, batch_axis
        See :class:`LandmarkLoss`.

    Raises
    ------
    ValueError
        If ``w`` or ``eps`` is not a finite positive number.
    """

    def __init__(self, w=10.0, eps=2.0, weight=None, batch_axis=0, **kwargs):
        self._C = wing_constant(w, eps)  # validates w, eps
        super(WingLoss, self).__init__(weight, batch_axis, **kwargs)
        self._w, self._eps = float(w), float(eps)

    def elementwise(self, F, x):
        ax = F.abs(x)
        # LOTR eq. (7)
        return F.where(ax < self._w, self._w * F.log1p(ax / self._eps), ax - self._C)


class SmoothWingLoss(LandmarkLoss):
    """Smooth-Wing loss, LOTR eq. (21)-(24) as printed, summed per sample (eq. (20)).

    Element-wise, with ``s, c1, c2`` from :func:`smooth_wing_constants`::

        s x**2                               |x| < t          LOTR eq. (21)
        (w + eps) ln(1 + |x|/eps) - c2       t <= |x| <= w    LOTR eq. (21)
        |x| - c1 - c2                        |x| > w          LOTR eq. (21)

        s = (w + eps) / (2 t (eps + t))                       LOTR eq. (22)
        c1 = w - (w + eps) ln(1 + w/eps)                      LOTR eq. (23)
        c2 = s t**2                                           LOTR eq. (24)

    ``L(0) = 0``.  The gradient is continuous everywhere: ``2 s x`` below
    ``t`` (linear through 0), ``(w+eps)/(eps+t)`` (5.9701 px/px for the
    defaults) on both sides of ``|x| = t``, ``(w+eps)/(eps+|x|)`` in the log
    part, 1 on both sides of ``|x| = w`` and beyond.  The value is continuous
    at ``|x| = w`` but steps up by ``(w+eps) ln(1+t/eps) - 2 s t**2 =
    1.490056e-4`` px at ``|x| = t`` for the defaults (see
    :func:`smooth_wing_value_step`); autograd never sees the step.  Earlier
    versions of this class used ``w ln(1+|x|/eps)`` and an outer slope
    ``w/(w+eps)``, i.e. ``w/(w+eps) = 0.833`` times the printed loss.

    Parameters
    ----------
    t : float
        Inner threshold, pixels, ``0 < t < w`` (default 0.01, LOTR Sec. IV-C).
    w, eps : float
        Outer threshold (default 10) and curvature of the log region (``> 0``, default 2), pixels, as in
        :class:`WingLoss`.
    weight, batch_axis
        See :class:`LandmarkLoss`.

    Raises
    ------
    ValueError
        If a parameter is not finite and positive, or ``t >= w``.
    """

    def __init__(self, t=0.01, w=10.0, eps=2.0, weight=None, batch_axis=0, **kwargs):
        c = smooth_wing_constants(t, w, eps)  # validates
        super(SmoothWingLoss, self).__init__(weight, batch_axis, **kwargs)
        self._t, self._w, self._eps = float(t), float(w), float(eps)
        self._s, self._c1, self._c2 = c["s"], c["c1"], c["c2"]

    def elementwise(self, F, x):
        ax = F.abs(x)
        quad = self._s * F.square(x)  # LOTR eq. (21), |x| < t
        logp = (self._w + self._eps) * F.log1p(ax / self._eps) - self._c2  # LOTR eq. (21), otherwise
        lin = ax - self._c1 - self._c2  # LOTR eq. (21), |x| > w
        return F.where(ax < self._t, quad, F.where(ax > self._w, lin, logp))


LOSSES = {
    "l1": L1Loss,
    "l2": L2Loss,
    "smooth_l1": SmoothL1Loss,
    "wing": WingLoss,
    "smooth_wing": SmoothWingLoss,
}


def get_loss(name, **kwargs):
    """Build a loss by name.

    Parameters
    ----------
    name : str
        One of ``'l1', 'l2', 'smooth_l1', 'wing', 'smooth_wing'``
        (case-insensitive; ``'-'`` is accepted for ``'_'``).
    **kwargs
        Forwarded to the constructor (e.g. ``beta`` for smooth-L1, ``w, eps``
        for Wing, ``t, w, eps`` for smooth-Wing, ``weight``).

    Returns
    -------
    LandmarkLoss
        The loss block; ``loss(pred, label)`` -> ``(B,)``.

    Raises
    ------
    KeyError
        If ``name`` is unknown (the message lists the valid names).
    """
    key = str(name).lower().replace("-", "_")
    if key not in LOSSES:
        raise KeyError("unknown loss %r; valid names: %s" % (name, ", ".join(sorted(LOSSES))))
    return LOSSES[key](**kwargs)


# ----------------------------------------------------------------------------
# numpy reference (LOTR Fig. 2)
# ----------------------------------------------------------------------------
def loss_curve(name, x, **kw):
    """Numpy reference of an element-wise loss and its derivative.

    Parameters
    ----------
    name : str
        Loss name, as in :func:`get_loss`.
    x : array_like
        Errors ``pred - label``, pixels, any shape.
    **kw
        Loss parameters: ``beta`` (smooth-L1, default 1), ``w, eps`` (Wing,
        defaults 10, 2), ``t, w, eps`` (smooth-Wing, defaults 0.01, 10, 2).

    Returns
    -------
    values : ndarray, float64, shape of ``x``
        ``loss(x)`` (pixels for l1/smooth-L1/Wing/smooth-Wing, pixels**2 for l2).
    grads : ndarray, float64, shape of ``x``
        ``dloss/dx`` (one-sided convention as in the Gluon blocks:
        the branch ``|x| < threshold`` is the lower one, except that
        smooth-Wing takes its log branch at ``|x| = w`` as LOTR eq. (21)
        prints it; ``sign(0) = 0``).

    Raises
    ------
    KeyError
        Unknown ``name``.
    TypeError
        Unexpected keyword for that loss.
    ValueError
        Invalid parameter values.
    """
    key = str(name).lower().replace("-", "_")
    if key not in LOSSES:
        raise KeyError("unknown loss %r; valid names: %s" % (name, ", ".join(sorted(LOSSES))))
    x = np.asarray(x, dtype=np.float64)
    ax, sg = np.abs(x), np.sign(x)

    def _params(**defaults):
        extra = set(kw) - set(defaults)
        if extra:
            raise TypeError("unexpected parameter(s) for %r: %s" % (key, sorted(extra)))
        out = dict(defaults)
        out.update(kw)
        return out

    if key == "l1":
        _params()
        return ax.copy(), sg
    if key == "l2":
        _params()
        return 0.5 * x * x, x.copy()
    if key == "smooth_l1":
        p = _params(beta=1.0)
        b = p["beta"]
        _check_positive(beta=b)
        inner = ax < b
        # LOTR eq. (6)
        return (np.where(inner, 0.5 * x * x / b, ax - 0.5 * b), np.where(inner, x / b, sg))
    if key == "wing":
        p = _params(w=10.0, eps=2.0)
        w, eps = p["w"], p["eps"]
        C = wing_constant(w, eps)
        inner = ax < w
        # LOTR eq. (7)
        return (np.where(inner, w * np.log1p(ax / eps), ax - C), np.where(inner, sg * w / (eps + ax), sg))
    # smooth_wing, LOTR eq. (21)-(24) as printed
    p = _params(t=0.01, w=10.0, eps=2.0)
    t, w, eps = p["t"], p["w"], p["eps"]
    c = smooth_wing_constants(t, w, eps)
    s, c1, c2 = c["s"], c["c1"], c["c2"]
    inner, outer = ax < t, ax > w
    v = np.where(inner, s * x * x, np.where(outer, ax - c1 - c2, (w + eps) * np.log1p(ax / eps) - c2))
    g = np.where(inner, 2.0 * s * x, np.where(outer, sg, sg * (w + eps) / (eps + ax)))
    return v, g
