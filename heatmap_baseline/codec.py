"""Gaussian heatmap targets and sub-pixel heatmap decoders (numpy, vectorised over batch and landmarks).

Pixel-centre convention
-----------------------
Landmarks are in pixels of the input crop with pixel *centres* at integer coordinates (pixel ``i`` covers
``[i - 0.5, i + 0.5]``, the OpenCV ``warpAffine`` convention). A heatmap pixel ``u`` covers the ``s x s``
input pixels ``[u s - 0.5, (u + 1) s - 0.5]`` (``s = input_size / heatmap_size``), so its centre is at input
coordinate ``(u + 0.5) s - 0.5``::

    heatmap = (input + 0.5) / s - 0.5          input = (heatmap + 0.5) * s - 0.5

(the ``align_corners=False`` mapping; the plain ``input = heatmap * s`` of Simple Baselines would shift
every landmark by ``(s - 1) / 2`` input pixels). :meth:`HeatmapCodec.encode` and
:meth:`HeatmapCodec.decode` both use it, so encode -> decode is unbiased.

Targets (LOTR eq. (1)): ``H(u, v) = exp(-((u - x0)^2 + (v - y0)^2) / (2 sigma^2))`` at the sub-pixel centre
``(x0, y0)`` in heatmap pixels, unnormalised (peak 1 when the centre is on a pixel), not truncated.

Decoders (``decode(heatmaps, method)``):

``argmax``        integer position of the maximum (Earp eq. (1)).
``argmax_shift``  the maximum moved a quarter pixel towards the higher of its two neighbours, on each axis
                  (Earp eq. (2), c = 1/4 on the sign of the gradient; Xiao et al., Simple Baselines); no
                  shift on an axis where the maximum is on the border.
``dark``          Zhang et al. 2020, DARK (Earp eq. (3), LOTR eq. (2); the method Earp et al. use): (1) Gaussian
                  modulation: blur every heatmap with a normalised Gaussian of std ``sigma`` and ``kernel`` taps
                  (zero padding), rescale it to the original maximum; (2) ``log`` (values clipped at 1e-10); (3)
                  one Newton step from the (original) argmax, ``mu = m - H^-1 g``, gradient and Hessian by central
                  differences on the 3x3 neighbourhood (``dxx = L(x+1) - 2 L(x) + L(x-1)``, ``dxy`` from the four
                  diagonal neighbours). Where the 3x3 stencil leaves the map or the Hessian is not negative
                  definite, the step is taken per axis (1-D Newton) where possible, else no step. Steps are
                  clipped to +-1 heatmap pixel. On exact Gaussian targets the round trip is exact to ~1e-4 heatmap
                  px (max 4e-3) from 3 px inside the border on. Nearer, DARK's zero padding in the modulation
                  biases the result (measured, sigma 1.5, error mean / max in heatmap px, by distance of the
                  landmark from the outer pixel centre: 2-3 px 0.02 / 0.05, 1.5-2 px 0.09 / 0.13, 1-1.5 px 0.19 /
                  0.27, 0.5-1 px 0.38 / 0.49 (argmax 0.25 / 0.5), 0-0.5 px argmax, as the stencil does not fit).
                  ``kernel=0`` (no modulation) is exact from 0.5 px on; we keep the modulation of the DARK paper
                  by default. The blur is evaluated on the 3x3 stencil alone (the rescaling cancels in the log
                  differences): the same coordinates as modulating whole maps, about 90 times faster on 96x96
                  maps (2.6 against 230 ms per 106-point face, measured on this 2-core machine).
``vector``        Gaussian-vector decoding of a heatmap (Xiong et al.'s band pooling over the full
                  width/height, at test time only; LOTR Table V's "with vectorization" rows are a model
                  trained on vector labels instead, :mod:`heatmap_baseline.vector`): negative values are set to 0, the
                  heatmap is summed over rows (-> x-vector of length w) and over columns (-> y-vector of
                  length h); on each vector, argmax + the parabola through the logs of the maximum and its two
                  neighbours (a 3-point Gaussian fit: ``offset = (l - r) / (2 (l - 2c + r))``), clipped to
                  +-1; no offset on the border or where the fit is not concave. For a separable Gaussian the
                  vectors are exact 1-D Gaussians (a border cut only scales them), so the fit is exact.

``maxvals`` is the maximum of each heatmap (a confidence), for every decoder.
"""
import math

import numpy as np

__all__ = ["HeatmapCodec", "DECODERS", "gaussian_kernel1d", "input_to_grid", "grid_to_input"]

DECODERS = ("argmax", "argmax_shift", "dark", "vector")


def gaussian_kernel1d(sigma, size):
    """Normalised 1-D Gaussian of std ``sigma`` (pixels) with ``size`` (odd) taps."""
    r = (int(size) - 1) // 2
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-x * x / (2.0 * sigma * sigma))
    return k / k.sum()


def _as_numpy(a):
    if hasattr(a, "asnumpy"):
        return a.asnumpy()
    return np.asarray(a)


def _at_stencil(maps, ys, xs):
    """(M, 3, 3) values of (M, h, w) ``maps`` at rows ``ys`` x columns ``xs`` ((M, 3) each)."""
    return maps[np.arange(len(maps))[:, None, None], ys[:, :, None], xs[:, None, :]]


def input_to_grid(points, stride):
    """Input-crop pixels -> pixels of a grid ``stride`` times coarser (pixel centres aligned), as float64.

    Shared by :class:`HeatmapCodec` (heatmaps) and :class:`heatmap_baseline.vector.GaussianVectorCodec`
    (vectors): ``(p + 0.5) / stride - 0.5``.
    """
    return (np.asarray(points, np.float64) + 0.5) / stride - 0.5


def grid_to_input(points, stride):
    """Inverse of :func:`input_to_grid`: ``(q + 0.5) * stride - 0.5``, as float64."""
    return (np.asarray(points, np.float64) + 0.5) * stride - 0.5


class GridCodec:
    """What the heatmap and the Gaussian-vector codecs share: their checked settings and the mapping between
    input-crop pixels and their coarser grid (:func:`input_to_grid`, :func:`grid_to_input`).

    Parameters
    ----------
    input_size : int or float
        Side of the square input crop, pixels.
    grid_size : int
        Side of the grid (heatmap side, or vector length); kept as ``heatmap_size``.
    sigma : float
        Gaussian std in grid pixels.
    decoder : str
        Default decoder, one of the class's ``decoders``.

    Raises
    ------
    ValueError
        Unknown decoder (the message lists the valid ones); non-positive size or sigma.
    """

    decoders = DECODERS
    _decoder_kind, _size_name = "decoder", "heatmap_size"  # for the error messages

    def __init__(self, input_size, grid_size, sigma, decoder):
        if decoder not in self.decoders:
            raise ValueError("unknown %s %r; valid: %s" % (self._decoder_kind, decoder, ", ".join(self.decoders)))
        if sigma <= 0 or grid_size <= 0 or input_size <= 0:
            raise ValueError("input_size, %s and sigma must be positive" % self._size_name)
        self.input_size = input_size
        self.heatmap_size = int(grid_size)
        self.sigma = float(sigma)
        self.decoder = decoder
        self.stride = float(input_size) / self.heatmap_size

    def to_grid(self, points):
        """Input-crop pixels -> grid pixels (same shape)."""
        return input_to_grid(points, self.stride)

    def to_input(self, points):
        """Grid pixels -> input-crop pixels (same shape)."""
        return grid_to_input(points, self.stride)


class HeatmapCodec(GridCodec):
    """Encode landmarks as Gaussian heatmaps and decode heatmaps to landmarks (see the module docstring).

    Parameters
    ----------
    input_size : int or float
        Side of the square input crop, pixels.
    heatmap_size : int
        Side of the square heatmap.
    sigma : float
        Gaussian std in heatmap pixels (targets and DARK modulation; LOTR: 1.5).
    decoder : str
        Default decoder, one of :data:`DECODERS`.
    kernel : int or None
        Taps of the DARK modulation kernel (odd); default ``2 * ceil(3 sigma) + 1`` (11 for sigma 1.5);
        0 = no modulation (log + Taylor on the raw heatmap).
    """

    def __init__(self, input_size, heatmap_size, sigma=1.5, decoder="dark", kernel=None):
        super().__init__(input_size, heatmap_size, sigma, decoder)
        if kernel is None:
            kernel = 2 * int(math.ceil(3 * sigma)) + 1
        if kernel != 0 and (kernel < 3 or kernel % 2 == 0):
            raise ValueError("kernel must be 0 (no modulation) or an odd integer >= 3, got %r" % (kernel,))
        self.kernel = int(kernel)

    def __repr__(self):
        return "HeatmapCodec(input_size=%r, heatmap_size=%d, sigma=%g, decoder=%r, kernel=%d)" % (
            self.input_size, self.heatmap_size, self.sigma, self.decoder, self.kernel)

    to_heatmap = GridCodec.to_grid  # input-crop pixels -> heatmap pixels

    # ------------------------------------------------------------------ encode
    def encode(self, points):
        """Gaussian target heatmaps.

        Parameters
        ----------
        points : array (..., N, 2)
            (x, y) in input-crop pixels, e.g. (B, N, 2) or (N, 2); numpy or mx.nd. A landmark with a
            non-finite coordinate gets an all-zero heatmap.

        Returns
        -------
        float32 array (..., N, h, w), e.g. (B, N, h, w).
        """
        p = _as_numpy(points).astype(np.float64)
        if p.ndim < 2 or p.shape[-1] != 2:
            raise ValueError("points must have shape (..., N, 2), got %s" % (p.shape,))
        q = self.to_heatmap(p)
        valid = np.isfinite(q).all(axis=-1)
        q = np.where(valid[..., None], q, 0.0)
        g = np.arange(self.heatmap_size, dtype=np.float64)
        inv = 1.0 / (2.0 * self.sigma ** 2)
        gx = np.exp(-(g - q[..., 0:1]) ** 2 * inv) * valid[..., None]  # (..., N, w)
        gy = np.exp(-(g - q[..., 1:2]) ** 2 * inv)                      # (..., N, h)
        return (gy[..., :, None] * gx[..., None, :]).astype(np.float32)  # LOTR eq. (1), separable in x and y

    # ------------------------------------------------------------------ decode
    def decode(self, heatmaps, method=None):
        """Landmarks from heatmaps.

        Parameters
        ----------
        heatmaps : array (..., N, h, w)
            numpy or mx.nd, e.g. (B, N, h, w).
        method : str or None
            One of :data:`DECODERS`; default the codec's ``decoder``.

        Returns
        -------
        coords : float32 array (..., N, 2)
            (x, y) in input-crop pixels.
        maxvals : float32 array (..., N)
            Maximum of each heatmap.
        """
        method = method or self.decoder
        if method not in DECODERS:
            raise ValueError("unknown decoder %r; valid: %s" % (method, ", ".join(DECODERS)))
        hm = _as_numpy(heatmaps)
        if hm.ndim < 3:
            raise ValueError("heatmaps must have shape (..., N, h, w), got %s" % (hm.shape,))
        lead, (h, w) = hm.shape[:-2], hm.shape[-2:]
        hm = hm.reshape(-1, h, w)  # float64 where values are combined (float32 maps are not copied whole)
        m = np.arange(hm.shape[0])
        flat = hm.reshape(hm.shape[0], -1)
        idx = np.argmax(flat, axis=1)
        maxvals = flat[m, idx]
        py, px = np.divmod(idx, w)
        if method == "argmax":  # Earp eq. (1)
            xy = np.stack([px, py], axis=1).astype(np.float64)
        elif method == "argmax_shift":
            xy = self._argmax_shift(hm, m, px, py)
        elif method == "dark":
            xy = self._dark(hm, m, px, py, maxvals)
        else:
            xy = self._vector(hm.astype(np.float64))
        coords = self.to_input(xy).astype(np.float32).reshape(lead + (2,))
        return coords, maxvals.astype(np.float32).reshape(lead)

    @staticmethod
    def _argmax_shift(hm, m, px, py):
        h, w = hm.shape[1:]
        xl, xr = hm[m, py, np.clip(px - 1, 0, w - 1)], hm[m, py, np.clip(px + 1, 0, w - 1)]
        yu, yd = hm[m, np.clip(py - 1, 0, h - 1), px], hm[m, np.clip(py + 1, 0, h - 1), px]
        x = px + 0.25 * np.sign(xr - xl) * ((px > 0) & (px < w - 1))  # Earp eq. (2)
        y = py + 0.25 * np.sign(yd - yu) * ((py > 0) & (py < h - 1))
        return np.stack([x, y], axis=1)

    def modulate(self, heatmaps):
        """DARK's Gaussian modulation: blur (zero padding) and rescale each map to its original maximum.
        ``heatmaps``: (M, h, w) float array; returns the same shape (a copy when ``kernel`` is 0)."""
        if self.kernel == 0:
            return np.array(heatmaps, copy=True)
        from scipy.ndimage import convolve1d
        k = gaussian_kernel1d(self.sigma, self.kernel)
        b = convolve1d(heatmaps, k, axis=-1, mode="constant", cval=0.0)
        b = convolve1d(b, k, axis=-2, mode="constant", cval=0.0)
        omax = heatmaps.reshape(heatmaps.shape[0], -1).max(axis=1)
        bmax = b.reshape(b.shape[0], -1).max(axis=1)
        scale = np.where(bmax > 0, omax / np.where(bmax > 0, bmax, 1.0), 1.0)
        return b * scale[:, None, None]

    def _stencil(self, hm, ys, xs):
        """The (M, 3, 3) values of :meth:`modulate` ``(hm)`` on each map's stencil (rows ``ys``, columns ``xs``,
        (M, 3) each, inside the map), up to each map's rescaling factor (``omax / bmax``): the blur (zero
        padding) evaluated on the stencil alone, from the ``kernel x kernel`` window around each point, instead
        of on the whole map."""
        h, w = hm.shape[1:]
        k = gaussian_kernel1d(self.sigma, self.kernel)
        r = np.arange(self.kernel) - self.kernel // 2
        wy, wx = ys[:, :, None] + r, xs[:, :, None] + r                       # (M, 3, kernel) rows, columns
        win = hm[np.arange(len(hm))[:, None, None, None, None], np.clip(wy, 0, h - 1)[:, :, :, None, None],
                 np.clip(wx, 0, w - 1)[:, None, None, :, :]].astype(np.float64)  # (M, 3, kernel, 3, kernel)
        win *= (((wy >= 0) & (wy < h))[:, :, :, None, None]                    # zero padding, as modulate
                & ((wx >= 0) & (wx < w))[:, None, None, :, :])
        return np.einsum("myaxb,a,b->myx", win, k, k)

    def _dark(self, hm, m, px, py, maxvals):
        h, w = hm.shape[1:]
        # Earp eq. (3): fit the Gaussian's log at the peak. The rescaling to the original maximum multiplies a
        # whole map by one factor (>= 1 where the maximum is > 0: the normalised blur of values <= omax stays
        # <= omax), which every difference of logs below cancels, so where the stencil's blurred values are
        # above the log's 1e-10 clip the stencil alone gives the same result as the whole modulated map (up to
        # rounding); other maps (flat, negative or near-zero peaks) take the whole-map modulation.
        ys = np.clip(py[:, None] + np.arange(-1, 2), 0, h - 1)  # (M, 3): rows y-1, y, y+1 clipped to the map
        xs = np.clip(px[:, None] + np.arange(-1, 2), 0, w - 1)  # (M, 3): columns x-1, x, x+1
        if self.kernel:
            S = self._stencil(hm, ys, xs)
            full = ~(S.reshape(len(S), -1).min(axis=1) >= 1e-10)
            if full.any():
                S[full] = _at_stencil(self.modulate(hm[full].astype(np.float64)), ys[full], xs[full])
        else:
            S = _at_stencil(hm, ys, xs).astype(np.float64)
        L = np.log(np.maximum(S, 1e-10))  # (M, 3, 3): rows y-1, y, y+1; columns x-1, x, x+1 (clipped)
        c = L[:, 1, 1]
        dx = 0.5 * (L[:, 1, 2] - L[:, 1, 0])
        dy = 0.5 * (L[:, 2, 1] - L[:, 0, 1])
        dxx = L[:, 1, 2] - 2 * c + L[:, 1, 0]
        dyy = L[:, 2, 1] - 2 * c + L[:, 0, 1]
        dxy = 0.25 * (L[:, 2, 2] - L[:, 2, 0] - L[:, 0, 2] + L[:, 0, 0])
        in_x = (px >= 1) & (px <= w - 2)
        in_y = (py >= 1) & (py <= h - 2)
        det = dxx * dyy - dxy * dxy
        ok2 = in_x & in_y & (dxx < 0) & (det > 1e-12)
        sdet = np.where(ok2, det, 1.0)
        ox2 = -(dyy * dx - dxy * dy) / sdet
        oy2 = -(dxx * dy - dxy * dx) / sdet
        ok_x = in_x & (dxx < -1e-12)
        ok_y = in_y & (dyy < -1e-12)
        ox1 = np.where(ok_x, -dx / np.where(ok_x, dxx, -1.0), 0.0)
        oy1 = np.where(ok_y, -dy / np.where(ok_y, dyy, -1.0), 0.0)
        ox = np.clip(np.where(ok2, ox2, ox1), -1.0, 1.0)
        oy = np.clip(np.where(ok2, oy2, oy1), -1.0, 1.0)
        flat = maxvals <= 0  # empty (all <= 0) map: keep the argmax
        ox[flat] = 0.0
        oy[flat] = 0.0
        return np.stack([px + ox, py + oy], axis=1)

    @staticmethod
    def _peak_1d(v):
        """Sub-pixel peak of each row of v (M, n) >= 0: argmax + 3-point log-parabola (Gaussian) fit."""
        n = v.shape[1]
        m = np.arange(v.shape[0])
        i = np.argmax(v, axis=1)
        il, ir = np.clip(i - 1, 0, n - 1), np.clip(i + 1, 0, n - 1)
        l, c, r = v[m, il], v[m, i], v[m, ir]
        ok = (i > 0) & (i < n - 1) & (l > 0) & (c > 0) & (r > 0)
        ll, lc, lr = (np.log(np.where(ok, a, 1.0)) for a in (l, c, r))
        d2 = ll - 2 * lc + lr
        ok &= d2 < -1e-12
        off = np.where(ok, 0.5 * (ll - lr) / np.where(ok, d2, -1.0), 0.0)
        return i + np.clip(off, -1.0, 1.0)

    def _vector(self, hm):
        v = np.maximum(hm, 0.0)
        x = self._peak_1d(v.sum(axis=1))  # sum over rows -> x-vector (M, w)
        y = self._peak_1d(v.sum(axis=2))  # sum over columns -> y-vector (M, h)
        return np.stack([x, y], axis=1)
