"""Coordinate-regression heads of LOTR and CNN+FFN: the position-wise FFN of LOTR eq. (19) (:class:`PFFNHead`)
and the map from its output to pixels of the input crop (:class:`LandmarkOutput`), built together by
:func:`landmark_head` from the ``MODEL.HEAD`` options.

Models layer of docs/architecture.md (imports only :mod:`lotr_gluon.blocks`). Where the paper is silent, the
choice is an argument with the default we use (all listed in docs/model.md):

- ``coord_units``: the head's output unit. ``'input_frac'`` (default): the PFFN predicts coordinates as a
  fraction of the input size and the output multiplies by ``input_size``, so outputs are pixels of the
  aligned crop either way; ``'pixels'``: the PFFN predicts pixels directly.
- ``anchors``: optional per-landmark anchor (e.g. the mean training shape in the crop, pixels); the PFFN
  then predicts an offset from it and its last layer starts small (a from-scratch aid, not in the paper).
"""
import numpy as np
import mxnet as mx
from mxnet.gluon import nn, HybridBlock

from ..blocks.layers import he_init

__all__ = ["PFFNHead", "PerLandmarkDense", "LandmarkOutput", "landmark_head", "COORD_UNITS"]

#: output units of the head (see the module docstring)
COORD_UNITS = ("input_frac", "pixels")


class PFFNHead(HybridBlock):
    """PFFN, LOTR eq. (19): Dense(512)-ReLU-Dense(512)-ReLU-Dense(out), applied to each token.

    LOTR eq. (19) prints one hidden layer, ReLU(Y^L w_1 + b_1) w_2 + b_2; its text and Table I give two hidden
    layers of 512 ("a simple PFFN with two hidden layers with ReLU activation"), which ``hidden`` follows.

    Parameters
    ----------
    in_units : int
        Width of each input token (D), or of the flattened features (CNN+FFN, ``flatten=True``).
    hidden : tuple of int
        Hidden sizes (LOTR Table I: 512, 512).
    out_units : int
        2 (x, y per token), or 2 N for CNN+FFN.
    flatten : bool
        Flatten the input first (CNN+FFN).
    last_init_std : float or None
        None = He init for the last layer; 0 = zeros; > 0 = normal with this std (used with anchors, so that
        the model starts near the anchor). Zeros stall training when the anchor is the mean shape: the last
        layer's gradient is the batch mean of error x hidden activation, which is ~0 while the activations do
        not yet depend on the image, and a zero last layer passes no gradient back to them.
    per_landmark_out : int
        0: one last layer shared by every token (eq. (19)); N: its own weights for each of the N landmark
        tokens (:class:`PerLandmarkDense`; a from-scratch lever, not in the paper).

    Inputs: (B, N, in_units) (or (B, ...) with ``flatten``). Output: (B, N, out_units) (or (B, out_units)).
    """

    def __init__(self, in_units, hidden=(512, 512), out_units=2, flatten=False, last_init_std=None,
                 per_landmark_out=0, **kwargs):
        super().__init__(**kwargs)
        self.per_landmark = bool(per_landmark_out)
        with self.name_scope():
            self.net = nn.HybridSequential(prefix="")
            units = in_units
            for h in hidden:  # eq. (19): ReLU(Y^L w_1^z + b_1^z), once per hidden layer
                self.net.add(nn.Dense(h, activation="relu", flatten=flatten, in_units=units))
                units = h
                flatten = False
            last_init = None if last_init_std is None else (
                mx.init.Zero() if last_init_std == 0 else mx.init.Normal(last_init_std))
            if per_landmark_out:
                self.net.add(PerLandmarkDense(per_landmark_out, units, out_units,
                                              weight_initializer=last_init or he_init(), prefix="perlmk_"))
            else:  # eq. (19): ... w_2^z + b_2^z, no activation
                self.net.add(nn.Dense(out_units, flatten=flatten, in_units=units, weight_initializer=last_init,
                                      bias_initializer="zeros"))

    def hybrid_forward(self, F, x):
        return self.net(x)


class PerLandmarkDense(HybridBlock):
    """A dense layer with its own weights for every landmark: (B, N, C) -> (B, N, U),
    ``out[b, n] = x[b, n] @ W[n] + bias[n]`` (batched matrix products over the landmark axis)."""

    def __init__(self, num_points, in_units, units, weight_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.weight = self.params.get("weight", shape=(num_points, in_units, units), init=weight_initializer)
        self.bias = self.params.get("bias", shape=(1, num_points, units), init=mx.init.Zero())

    def hybrid_forward(self, F, x, weight, bias):
        xt = F.transpose(x, axes=(1, 0, 2))  # (N, B, C)
        out = F.transpose(F.batch_dot(xt, weight), axes=(1, 0, 2))  # (B, N, U)
        return F.broadcast_add(out, bias)


class LandmarkOutput(HybridBlock):
    """Maps head output to pixels of the input crop: ``anchors + out * scale`` (anchors optional).

    Parameters
    ----------
    num_points : int
        N.
    scale : float
        ``input_size`` for ``coord_units='input_frac'``, 1 for ``'pixels'``.
    use_anchors : bool
        Add per-landmark anchors, a constant (1, N, 2) parameter stored with the weights.
    anchors : array (N, 2) or None
        Their values in crop pixels, written by :meth:`write_anchors` after initialisation; ``use_anchors``
        without values leaves a zero placeholder filled by ``load_parameters``.

    Inputs: (B, N, 2) or (L, B, N, 2). Output: the same shape, crop pixels.
    """

    def __init__(self, num_points, scale, use_anchors, anchors=None, **kwargs):
        super().__init__(**kwargs)
        self.num_points = int(num_points)
        self._scale = float(scale)
        self._use_anchors = use_anchors
        self._anchor_values = None if anchors is None else np.asarray(anchors, np.float32).reshape(1, num_points, 2)
        if use_anchors:
            # a constant stored with the weights (so exported models carry it), never trained; its values
            # are written by set_anchors after initialisation
            self.anchors = self.params.get("anchors", shape=(1, num_points, 2), init=mx.init.Zero(),
                                           grad_req="null", differentiable=False)

    @property
    def use_anchors(self):
        """Whether the output adds per-landmark anchors."""
        return self._use_anchors

    def set_anchors(self, anchors):
        """Write the anchors, (N, 2) crop pixels, into the (initialised) parameter.

        Raises
        ------
        ValueError
            The block was built without anchors.
        """
        if not self._use_anchors:
            raise ValueError("this model was built without anchors (MODEL.HEAD.ANCHORS = 'none')")
        self._anchor_values = np.asarray(anchors, np.float32).reshape(self.anchors.shape)
        self.anchors.set_data(mx.nd.array(self._anchor_values))

    def write_anchors(self):
        """After initialisation: write the anchor values given at construction, if any. Returns them as an
        (N, 2) array, or None."""
        if not (self._use_anchors and self._anchor_values is not None):
            return None
        self.set_anchors(self._anchor_values)
        return self._anchor_values.reshape(-1, 2)

    def hybrid_forward(self, F, x, anchors=None):
        x = x * self._scale
        if self._use_anchors:
            x = F.broadcast_add(x, anchors)
        return x


def landmark_head(in_units, num_points, input_size, hidden=(512, 512), coord_units="input_frac", anchors=None,
                  use_anchors=False, last_init_std=1e-3, per_landmark_out=False, flatten=False):
    """The head part of LOTR (``flatten=False``: (B, N, D) tokens -> (B, N, 2)) or CNN+FFN (``flatten=True``:
    features -> (B, 2N)), from the ``MODEL.HEAD`` options.

    Parameters
    ----------
    in_units, num_points, input_size : int
        Token width D (flattened feature size for CNN+FFN), N, side of the input crop in pixels.
    hidden : tuple of int
        ``MODEL.HEAD.HIDDEN`` (eq. (19), Table I: 512, 512).
    coord_units : {'input_frac', 'pixels'}
        ``MODEL.HEAD.COORD_UNITS`` (module docstring).
    anchors : array (N, 2) or None
        Anchor values in crop pixels (the mean training shape for ``MODEL.HEAD.ANCHORS = 'mean_shape'``).
    use_anchors : bool
        Build the anchor parameter even without values (filled by ``load_parameters``).
    last_init_std : float
        ``MODEL.HEAD.LAST_INIT_STD``: with anchors, the std of the last layer's normal init (see
        :class:`PFFNHead`); without anchors the last layer has He init.
    per_landmark_out : bool
        ``MODEL.HEAD.PER_LANDMARK_OUT`` (LOTR only).
    flatten : bool
        CNN+FFN: one FFN on the flattened features with 2 N outputs.

    Returns
    -------
    head : PFFNHead
        Prefix ``head_``.
    output : LandmarkOutput
        Prefix ``landmarks_``.

    Raises
    ------
    ValueError
        Unknown ``coord_units``.
    """
    if coord_units not in COORD_UNITS:
        raise ValueError("coord_units must be 'input_frac' or 'pixels', got %r" % (coord_units,))
    use_anchors = bool(use_anchors or anchors is not None)
    last = last_init_std if use_anchors else None
    if flatten:
        head = PFFNHead(in_units, tuple(hidden), 2 * num_points, flatten=True, last_init_std=last, prefix="head_")
    else:
        head = PFFNHead(in_units, tuple(hidden), 2, last_init_std=last,
                        per_landmark_out=num_points if per_landmark_out else 0, prefix="head_")
    scale = input_size if coord_units == "input_frac" else 1.0
    return head, LandmarkOutput(num_points, scale, use_anchors, anchors, prefix="landmarks_")
