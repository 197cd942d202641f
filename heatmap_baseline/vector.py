"""Gaussian-vector model: the Earp et al. heatmap network trained on vector labels through band pooling, the
"Earp et al. [1] with vectorization" rows of LOTR Table V.

LOTR Sec. IV-G-1 (Table V): "inspired by Xiong et al. [34], we conducted another experiment incorporating
vectorization and the band pooling module with the baseline approach [1]"; the model keeps the baseline's
size and parameter count (2.92M MobileNetV2-1.0, 24.42M ResNet50), so band pooling adds no parameters.
Xiong et al., "Gaussian Vector: an efficient solution for facial landmark detection" (ACCV 2020,
arXiv 2010.01318), as LOTR Sec. II-B summarises it: each landmark is labelled by a pair of vectors (one
along x, one along y) holding a quasi-Gaussian, "a Gaussian density function enhancing the distribution peak
with an additional constant theta while being bounded by a threshold 3 sigma"; a Band Pooling Module turns
each predicted heatmap into that pair of vectors.

Network (:class:`EarpVectorNet`)
--------------------------------
The Earp heatmap network (:class:`heatmap_baseline.model.EarpHeatmapNet`: backbone, upsampler, conv to N
heatmap-like maps; subclassed, so any change to its blocks carries over and its parameter names stay the
same) followed by :class:`BandPooling`: (B, N, S, S) maps -> (B, N, 2, S) vectors, ``[:, :, 0]`` along x,
``[:, :, 1]`` along y.

Band pooling (:class:`BandPooling`)
-----------------------------------
For bandwidth ``L`` (odd) the x-vector is the mean of the map over a vertical band of full height and ``L``
columns centred on each column, the y-vector the mean over a horizontal band of full width and ``L`` rows
centred on each row; the band slides with stride 1, zero padding at the border, the padding counted in the
mean (``count_include_pad``)::

    vx[u] = 1 / (h L) * sum_{v=0}^{h-1} sum_{|j| <= (L-1)/2} H[v, u + j]      (H = 0 outside the map)

With several bandwidths ("aggregated" band pooling) the vectors of each are averaged. Defaults: bandwidths
3 and 5, aggregated (``MODEL.HEATMAP.VECTOR_BANDWIDTHS [3, 5]``), the setting a public summary of Xiong et al.
reports for their experiments (https://speakerdeck.com/phalanx/kaggle-cv-gaussian-vector-an-efficient-
solution-for-facial-landmark-detection: bands of adjustable odd width L from 1 to 7 slide over the heatmap
and average it; the aggregated module fuses the vectors of bandwidths 3 and 5). How the two are fused is not
given there: we take their mean. ``[1]`` is a plain mean over the full height / width.

Labels (:class:`GaussianVectorCodec`)
-------------------------------------
Landmark ``(x, y)`` in input-crop pixels -> ``(x0, y0)`` in vector pixels with the heatmap codec's
pixel-centre convention (:mod:`heatmap_baseline.codec`: ``vector = (input + 0.5) / s - 0.5``,
``s = input_size / S``). Along x (and the same along y)::

    vx[u] = exp(-(u - x0)^2 / (2 sigma^2)) + theta    if |u - x0| <= 3 sigma
    vx[u] = 0                                         otherwise

``sigma`` = ``MODEL.HEATMAP.SIGMA`` (1.5 vector pixels, LOTR eq. (1)'s heatmap std), ``theta`` =
``MODEL.HEATMAP.VECTOR_THETA``. Our reading of LOTR's one-sentence description: ``theta`` is added over the whole
``3 sigma`` window; Xiong et al.'s own equation and value of ``theta`` could not be read offline, 0.1 is ours.
A landmark with a non-finite coordinate gets all-zero vectors. Xiong et al.'s "Beyond Box" strategy (vectors
longer than the crop for landmarks outside it) is not implemented.

Decoders (``decode(vectors, method)``; ``MODEL.HEATMAP.VECTOR_DECODER``)
----------------------------------------------------------------
``argmax``        integer position of each vector's maximum.
``gaussian_fit``  (default) the argmax moved by the vertex of the parabola through the logs of
                  ``v - theta`` at the maximum and its two neighbours (a 3-point Gaussian fit,
                  ``offset = (l - r) / (2 (l - 2c + r))``), clipped to +-1 pixel; no offset on the border or
                  where the fit is not concave or a value is <= 0. Exact on the labels (the round trip is
                  unbiased). Xiong et al.'s decoding detail could not be read offline; one O(S) pass per
                  vector, as theirs.

Loss (:class:`GaussianVectorLoss`): mean squared error over the 2S vector elements of each landmark, mean
over landmarks (the heatmap MSE of the baseline applied to the vectors; the loss is not given in LOTR, and
Xiong et al.'s could not be read offline).
"""
import numpy as np
from mxnet.gluon import HybridBlock

from .codec import GridCodec, HeatmapCodec
from .losses import HeatmapMSELoss
from .model import EarpHeatmapNet

__all__ = ["EarpVectorNet", "BandPooling", "GaussianVectorCodec", "GaussianVectorLoss", "VECTOR_DECODERS",
           "parse_bandwidths"]

VECTOR_DECODERS = ("gaussian_fit", "argmax")


def parse_bandwidths(bandwidths):
    """Validate band-pooling bandwidths: a non-empty sequence of odd integers >= 1 (or one integer).
    Returns a tuple of int.

    Raises
    ------
    ValueError
        Empty, non-integer, even or < 1 bandwidth.
    """
    if isinstance(bandwidths, (int, np.integer)):
        bandwidths = (bandwidths,)
    try:
        bws = tuple(int(b) for b in bandwidths)
        ok = len(bws) > 0 and all(float(b) == int(b) for b in bandwidths)
    except (TypeError, ValueError):
        bws, ok = (), False
    if not ok or any(b < 1 or b % 2 == 0 for b in bws):
        raise ValueError("band-pooling bandwidths must be odd integers >= 1 (MODEL.HEATMAP.VECTOR_BANDWIDTHS, e.g. "
                         "[3, 5]), got %r" % (bandwidths,))
    return bws


class BandPooling(HybridBlock):
    """Band Pooling Module (Xiong et al.; see the module docstring): (B, N, S, S) -> (B, N, 2, S).

    Parameters
    ----------
    bandwidths : sequence of odd int
        Band widths ``L`` (pixels); the vectors of each are averaged. ``(1,)``: plain mean over the full
        height (x-vector) and width (y-vector).

    Inputs: (B, N, S, S) maps (square). Output: (B, N, 2, S); ``[:, :, 0]`` x-vectors (length = map width),
    ``[:, :, 1]`` y-vectors (length = map height). No parameters; ``F`` operators only (hybridizes).
    """

    def __init__(self, bandwidths=(3, 5), **kwargs):
        super().__init__(**kwargs)
        self.bandwidths = parse_bandwidths(bandwidths)

    def hybrid_forward(self, F, x):
        col = F.mean(x, axis=2, keepdims=True)                              # (B, N, 1, w): mean over rows
        row = F.transpose(F.mean(x, axis=3, keepdims=True), axes=(0, 1, 3, 2))  # (B, N, 1, h)
        both = F.concat(col, row, dim=2)                                    # (B, N, 2, S)
        outs = []
        for L in self.bandwidths:
            if L == 1:
                outs.append(both)
            else:  # mean over L neighbouring columns (rows), zero padding counted: band of h x L / L x w
                outs.append(F.Pooling(both, kernel=(1, L), stride=(1, 1), pad=(0, (L - 1) // 2),
                                      pool_type="avg", count_include_pad=True))
        if len(outs) == 1:
            return outs[0]
        return F.add_n(*outs) / float(len(outs))


class GaussianVectorCodec(GridCodec):
    """Encode landmarks as quasi-Gaussian vector pairs and decode vectors to landmarks (module docstring).

    Parameters
    ----------
    input_size : int or float
        Side of the square input crop, pixels.
    vector_size : int
        Length S of each vector (the side of the network's maps).
    sigma : float
        Gaussian std in vector pixels (> 0; default 1.5).
    theta : float
        Constant added inside the ``3 sigma`` window (>= 0; default 0.1).
    decoder : str
        Default decoder, one of :data:`VECTOR_DECODERS`.

    Attributes
    ----------
    heatmap_size : int
        Same as ``vector_size`` (the name the heatmap tools read).
    stride : float
        Input pixels per vector pixel.
    decoders : tuple of str
        The valid decoders (:data:`VECTOR_DECODERS`).

    Raises
    ------
    ValueError
        Unknown decoder, non-positive size or sigma, negative theta.
    """

    decoders = VECTOR_DECODERS
    _decoder_kind, _size_name = "vector decoder", "vector_size"

    def __init__(self, input_size, vector_size, sigma=1.5, theta=0.1, decoder="gaussian_fit"):
        super().__init__(input_size, vector_size, sigma, decoder)
        if theta < 0:
            raise ValueError("theta must be >= 0, got %r" % (theta,))
        self.theta = float(theta)

    def __repr__(self):
        return "GaussianVectorCodec(input_size=%r, vector_size=%d, sigma=%g, theta=%g, decoder=%r)" % (
            self.input_size, self.vector_size, self.sigma, self.theta, self.decoder)

    @property
    def vector_size(self):
        """Length S of each vector (= ``heatmap_size``)."""
        return self.heatmap_size

    to_vector = GridCodec.to_grid  # input-crop pixels -> vector pixels

    def encode(self, points):
        """Vector labels.

        Parameters
        ----------
        points : array (..., N, 2)
            (x, y) in input-crop pixels; numpy or mx.nd.

        Returns
        -------
        float32 array (..., N, 2, S): ``[..., 0, :]`` along x, ``[..., 1, :]`` along y.
        """
        p = points.asnumpy() if hasattr(points, "asnumpy") else np.asarray(points)
        p = p.astype(np.float64)
        if p.ndim < 2 or p.shape[-1] != 2:
            raise ValueError("points must have shape (..., N, 2), got %s" % (p.shape,))
        q = self.to_vector(p)
        valid = np.isfinite(q).all(axis=-1)
        q = np.where(valid[..., None], q, 0.0)
        d = np.arange(self.vector_size, dtype=np.float64) - q[..., None]          # (..., N, 2, S)
        v = np.exp(-d * d / (2.0 * self.sigma ** 2)) + self.theta
        v = np.where(np.abs(d) <= 3.0 * self.sigma, v, 0.0) * valid[..., None, None]
        return v.astype(np.float32)

    def decode(self, vectors, method=None):
        """Landmarks from vectors.

        Parameters
        ----------
        vectors : array (..., N, 2, S)
            numpy or mx.nd (the network output).
        method : str or None
            One of :data:`VECTOR_DECODERS`; default the codec's ``decoder``.

        Returns
        -------
        coords : float32 array (..., N, 2)
            (x, y) in input-crop pixels.
        maxvals : float32 array (..., N)
            Mean of the x- and y-vector maxima (a confidence).
        """
        method = method or self.decoder
        if method not in VECTOR_DECODERS:
            raise ValueError("unknown vector decoder %r; valid: %s" % (method, ", ".join(VECTOR_DECODERS)))
        v = vectors.asnumpy() if hasattr(vectors, "asnumpy") else np.asarray(vectors)
        if v.ndim < 3 or v.shape[-2] != 2:
            raise ValueError("vectors must have shape (..., N, 2, S), got %s" % (v.shape,))
        lead, n = v.shape[:-2], v.shape[-1]
        flat = v.reshape(-1, n).astype(np.float64)                                 # (M * 2, S)
        if method == "argmax":
            pos = np.argmax(flat, axis=1).astype(np.float64)
        else:
            pos = HeatmapCodec._peak_1d(np.maximum(flat - self.theta, 0.0))
        coords = self.to_input(pos.reshape(lead + (2,))).astype(np.float32)
        maxvals = flat.max(axis=1).reshape(lead + (2,)).mean(axis=-1)
        return coords, maxvals.astype(np.float32)


class GaussianVectorLoss(HeatmapMSELoss):
    """Mean squared error over the vector elements, one value per sample:
    ``loss_b = weight * mean_n [w_n s_bn mean_{a, u} (pred_bnau - label_bnau)^2]`` over the two vectors
    ``a`` (x, y) of length S. Inputs ``pred``, ``label`` (B, N, 2, S); optional ``sample_weight`` (B, N).
    Output (B,). Parameters as :class:`heatmap_baseline.losses.HeatmapMSELoss` (the same reduction over the
    last two axes)."""


class EarpVectorNet(EarpHeatmapNet):
    """Earp heatmap network + band pooling, trained on Gaussian-vector labels (LOTR Table V "with
    vectorization"; module docstring). Registered as ``earp_vector`` in :func:`lotr_gluon.model_zoo.get_model`.

    Parameters
    ----------
    bandwidths : sequence of odd int
        Band-pooling bandwidths (default (3, 5), aggregated).
    theta : float
        Label constant inside the ``3 sigma`` window (default 0.1).
    decoder : {'gaussian_fit', 'argmax'}
        Default decoder of :meth:`decode`.
    sigma : float
        Label std, vector pixels (1.5).
    **kwargs
        The :class:`heatmap_baseline.model.EarpHeatmapNet` arguments (backbone, num_points, input_size,
        upsampler, filters, ...).

    Attributes
    ----------
    vector_size : int
        Length S of each vector (= ``heatmap_size``).
    codec : GaussianVectorCodec

    Inputs: (B, 3, input_size, input_size). Output: (B, N, 2, S) vectors (x then y), no activation.
    Same parameters (names and count) as the Earp heatmap network with the same arguments.
    """

    def __init__(self, bandwidths=(3, 5), theta=0.1, decoder="gaussian_fit", sigma=1.5, **kwargs):
        codec_args = (float(sigma), float(theta), decoder)
        GaussianVectorCodec(1, 1, *codec_args)  # validate before building the backbone
        bandwidths = parse_bandwidths(bandwidths)
        super().__init__(sigma=sigma, **kwargs)
        with self.name_scope():
            self.band_pool = BandPooling(bandwidths, prefix="bandpool_")
        self.vector_size = self.heatmap_size
        self.codec = GaussianVectorCodec(self.input_size, self.vector_size, *codec_args)

    def hybrid_forward(self, F, x):
        return self.band_pool(super().hybrid_forward(F, x))

    def decode(self, vectors, method=None):
        """Landmarks, numpy (B, N, 2) float32, (x, y) in input-crop pixels, from output vectors
        (B, N, 2, S) with the codec's decoder (or ``method``)."""
        return self.codec.decode(vectors, method)[0]

    def encode(self, points):
        """Vector labels (B, N, 2, S) for landmarks in input-crop pixels (``self.codec.encode``)."""
        return self.codec.encode(points)
