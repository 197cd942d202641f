"""Training augmentation of aligned face crops and their landmarks (Earp et al. sec. 5.1, LOTR sec. IV-C).

Operations, each switchable: horizontal flip with the scheme's point permutation, random rotation about the
crop centre, random scale and shift (off by default), colour jitter (brightness, contrast, saturation), AlexNet
PCA lighting, random erasing (Zhong et al., 2017, or the information dropping of Huang et al., 2020, which Earp
Sec. 5.1 cites: :func:`aid_cutout_mask`, :func:`aid_hide_mask`). Geometric operations are combined into one affine
and applied with a single ``cv2.warpAffine``; landmarks go through the same affine.

Earp Sec. 5.1 trick 1 ("we extend the training dataset by including the horizontal flip of each image and their
corresponding landmarks") is :class:`MirrorExtendedDataset`: every face once as is and once mirrored, per epoch,
instead of a random flip per draw.

Flip convention (shared with the flip test at evaluation): pixel centres are at integer coordinates
(OpenCV's convention), so mirroring an image of width W (``img[:, ::-1]``) sends pixel column c to W - 1 - c and
a point x to ``W - 1 - x``; the point order is then permuted with ``perm`` (:meth:`LandmarkScheme.flip_permutation`):
``flipped[i] = mirrored[perm[i]]``. :func:`flip_image` and :func:`flip_points` implement exactly this.
"""
import os
from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np

__all__ = [
    "flip_image", "flip_points", "Augmenter", "AugmentParams", "IMAGENET_PCA_EIGVAL", "IMAGENET_PCA_EIGVEC",
    "GRAY_COEF", "adjust_brightness", "adjust_contrast", "adjust_saturation", "pca_lighting", "random_erase",
    "ERASING_MODES", "aid_cutout_mask", "aid_hide_mask", "MirrorExtendedDataset",
]

#: random erasing variants: Zhong et al. rectangles with random values, or Huang et al.'s information dropping
ERASING_MODES = ("zhong", "aid")

#: ImageNet RGB PCA eigenvalues and eigenvectors (AlexNet lighting noise), as in ``mxnet.image.CreateAugmenter``
#: and gluon's ``transforms.RandomLighting``; pixel values in [0, 255].
IMAGENET_PCA_EIGVAL = np.array([55.46, 4.794, 1.148], np.float32)
IMAGENET_PCA_EIGVEC = np.array([[-0.5675, 0.7192, 0.4009],
                                [-0.5808, -0.0045, -0.8140],
                                [-0.5836, -0.6948, 0.4203]], np.float32)
#: RGB -> grey weights of ``mxnet.image.ContrastJitterAug`` / ``SaturationJitterAug``.
GRAY_COEF = np.array([0.299, 0.587, 0.114], np.float32)


def flip_image(img):
    """Mirror an image horizontally.

    Parameters
    ----------
    img : ndarray, shape (H, W) or (H, W, C)

    Returns
    -------
    ndarray, same shape and dtype, contiguous copy; column c of the input is column W - 1 - c.
    """
    return np.ascontiguousarray(np.asarray(img)[:, ::-1])


def flip_points(pts, width, perm=None):
    """Mirror landmarks to match :func:`flip_image`.

    Parameters
    ----------
    pts : array_like, shape (..., N, 2)
        (x, y) in pixels of an image of width ``width``.
    width : int or float
        Image width W, pixels.
    perm : array_like of int, shape (N,), optional
        Flip permutation of the landmark scheme (``LandmarkScheme.flip_permutation()``); None keeps the order
        (only right for symmetric point sets).

    Returns
    -------
    ndarray float32, shape (..., N, 2)
        ``out[..., i, :] = (W - 1 - x, y)`` of point ``perm[i]``. Applying it twice gives the input back.
    """
    p = np.array(pts, np.float32, copy=True)
    if perm is not None:
        perm = np.asarray(perm)
        if perm.shape != (p.shape[-2],):
            raise ValueError("perm has shape %s, points %s" % (perm.shape, p.shape))
        p = p[..., perm, :]
    p[..., 0] = (width - 1) - p[..., 0]
    return p


# --------------------------------------------------------------------------------------- photometric ops

def adjust_brightness(img, alpha):
    """``img * alpha`` (``mxnet.image.BrightnessJitterAug``). ``img`` float32 (H, W, 3) RGB in [0, 255]."""
    return img * np.float32(alpha)


def adjust_contrast(img, alpha):
    """Blend with the mean grey level (``mxnet.image.ContrastJitterAug``). ``img`` float32 (H, W, 3) RGB."""
    gray_mean = float((img * GRAY_COEF).sum()) * 3.0 / img.size
    return img * np.float32(alpha) + np.float32((1.0 - alpha) * gray_mean)


def adjust_saturation(img, alpha):
    """Blend with the per-pixel grey image (``mxnet.image.SaturationJitterAug``). ``img`` float32 (H, W, 3) RGB."""
    gray = (img * GRAY_COEF).sum(axis=2, keepdims=True)
    return img * np.float32(alpha) + gray * np.float32(1.0 - alpha)


def pca_lighting(img, alpha):
    """AlexNet PCA lighting (``mxnet.image.LightingAug``): add ``eigvec @ (alpha * eigval)`` to every pixel.

    ``img`` float32 (H, W, 3) RGB in [0, 255]; ``alpha`` (3,) normal with std ``pca_std``.
    """
    rgb = np.dot(IMAGENET_PCA_EIGVEC * np.asarray(alpha, np.float32), IMAGENET_PCA_EIGVAL)
    return img + rgb.astype(np.float32)


def random_erase(img, rect, fill):
    """Overwrite ``rect`` = (x0, y0, w, h) (pixels) of ``img`` (H, W, C) with ``fill`` (h, w, C). Returns a copy."""
    out = img.copy()
    x0, y0, w, h = rect
    out[y0:y0 + h, x0:x0 + w] = fill
    return out


def aid_cutout_mask(height, width, ellipses):
    """Pixels blacked out by AID's cutout (Huang et al. 2020, the information dropping Earp Sec. 5.1 uses).

    Parameters
    ----------
    height, width : int
        Crop size, pixels.
    ellipses : sequence of (cx, cy, rx, ry)
        Centres and radii, pixels; pixel (x, y) (integer coordinates) is dropped when
        ``((cx - x) / rx)**2 + ((cy - y) / ry)**2 <= 1`` (the authors' public implementation).

    Returns
    -------
    ndarray bool, shape (height, width)
    """
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    mask = np.zeros((height, width), bool)
    for cx, cy, rx, ry in ellipses:
        mask |= ((cx - x) / rx) ** 2 + ((cy - y) / ry) ** 2 <= 1.0
    return mask


def aid_hide_mask(height, width, grid, hidden):
    """Pixels hidden by AID's hide-and-seek: the image cut into ``grid`` x ``grid`` cells from the top-left
    corner (the last row / column of cells may be smaller); ``hidden`` (rows, cols) bool says which cells go
    black. ``grid`` 0 hides nothing. Returns bool (height, width)."""
    mask = np.zeros((height, width), bool)
    if grid:
        for r in range(hidden.shape[0]):
            for c in range(hidden.shape[1]):
                if hidden[r, c]:
                    mask[r * grid:(r + 1) * grid, c * grid:(c + 1) * grid] = True
    return mask


class MirrorExtendedDataset:
    """The training set extended by the mirror of every face (Earp Sec. 5.1, trick 1).

    Item ``i < n`` is face ``i`` of ``dataset``; item ``n + i`` is face ``i`` mirrored (:func:`flip_image`) with its
    landmarks mirrored and permuted (:func:`flip_points` with ``flip_perm``). The augmenter of ``dataset`` (which
    should not flip: ``flip_prob = 0``) is applied after the mirroring, then the dataset's normalisation.

    Parameters
    ----------
    dataset : lotr_gluon.data.dataset.AlignedFaceDataset
        Provides ``crop(i)``, ``landmarks(i)``, ``augmenter``, ``normalize``, ``input_size`` and ``len``.
    flip_perm : array_like of int (N,)
        The landmark scheme's flip permutation (an involution).

    Raises
    ------
    ValueError
        ``flip_perm`` is not an involution, or the dataset's augmenter flips at random as well.

    Other attributes are those of ``dataset``; :meth:`aligned_landmarks` covers all ``2 n`` items.
    """

    def __init__(self, dataset, flip_perm):
        perm = np.asarray(flip_perm, np.int64)
        if not np.array_equal(perm[perm], np.arange(len(perm))):
            raise ValueError("flip_perm must be an involution")
        if getattr(getattr(dataset, "augmenter", None), "flip_prob", 0.0) > 0:
            raise ValueError("the mirror-extended training set already holds every mirror: give the dataset an "
                             "augmenter with flip_prob 0")
        self.dataset = dataset
        self.flip_perm = perm

    def __len__(self):
        return 2 * len(self.dataset)

    def __getattr__(self, name):
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def item(self, i):
        """uint8 (S, S, 3) crop and float32 (N, 2) landmarks of item ``i`` before augmentation."""
        n = len(self.dataset)
        if not -2 * n <= i < 2 * n:
            raise IndexError("item %d of a mirror-extended set of %d" % (i, 2 * n))
        i %= 2 * n
        img, pts = self.dataset.crop(i % n), self.dataset.landmarks(i % n)
        if i >= n:
            img = flip_image(img)
            pts = flip_points(pts, img.shape[1], self.flip_perm)
        return img, np.asarray(pts, np.float32)

    def aligned_landmarks(self):
        """float32 (2 n, N, 2): the ground truth of every item (originals, then mirrors), no augmentation."""
        pts = self.dataset.aligned_landmarks()
        return np.concatenate([pts, flip_points(pts, self.dataset.input_size, self.flip_perm)])

    def __getitem__(self, i):
        img, pts = self.item(i)
        if self.dataset.augmenter is not None:
            img, pts = self.dataset.augmenter(img, pts)
        return self.dataset.normalize(img), np.asarray(pts, np.float32)


# ------------------------------------------------------------------------------------------- augmenter

@dataclass
class AugmentParams:
    """Random draws of one :class:`Augmenter` call (all in crop pixels / degrees); None = operation not applied."""

    flip: bool = False
    angle: float = 0.0           # degrees, counter-clockwise on screen (cv2.getRotationMatrix2D)
    scale: float = 1.0
    shift: Tuple[float, float] = (0.0, 0.0)  # pixels
    jitter: Optional[Tuple] = None  # ((order of 0 brightness/1 contrast/2 saturation), (alphas))
    lighting: Optional[np.ndarray] = None  # (3,) PCA alphas
    erase: Optional[Tuple] = None  # ((x0, y0, w, h), fill uint8 (h, w, C))
    aid_cutout: Optional[Tuple] = None  # AID: ((cx, cy, rx, ry), ...) ellipses, pixels
    aid_hide: Optional[Tuple] = None    # AID: (grid, hidden bool (rows, cols))


class Augmenter:
    """Random augmentation of an aligned crop and its landmarks.

    Parameters
    ----------
    flip_prob : float
        Probability of a horizontal flip (papers: 0.5). Needs ``flip_perm`` when > 0.
    flip_perm : array_like of int (N,), optional
        Landmark permutation of the mirror (``LandmarkScheme.flip_permutation()``).
    rotation_deg : float
        Rotation angle uniform in [-rotation_deg, rotation_deg] degrees about the crop centre ((W-1)/2, (H-1)/2);
        0 = off. Default 15.
    scale_range : (float, float) or None
        Scale factor uniform in this range about the crop centre; None or (1, 1) = off (default).
    shift_frac : float
        Shift uniform in [-shift_frac, shift_frac] x crop side, independently in x and y; 0 = off (default).
    align_noise_std : (float, float, float)
        Gaussian alignment noise, drawn on top of the uniform rotation / scale / shift: std of the log scale, of
        the rotation (degrees) and of the shift (fraction of the crop side, per axis), zero-mean. Sized to a face
        detector's five-point error as measured against the ground truth (``tools/detector_noise.py``, which
        measures the same similarity parameters between the two alignments). (0, 0, 0) = off (default).
    erasing_prob : float
        Random erasing probability (Zhong et al.); 0 = off. The papers give no value; default 0.5 (Zhong's).
        Used by ``erasing_mode='zhong'`` only.
    erasing_area : (float, float)
        Erased area range, fraction of the crop area (Zhong: 0.02-0.4).
    erasing_aspect : (float, float)
        Aspect ratio h/w range, sampled log-uniformly (Zhong: r1 = 0.3, i.e. 0.3-3.33).
    erasing_mode : {'zhong', 'aid'}
        'zhong' (default): one rectangle of random values with ``erasing_prob`` (Zhong et al. 2017). 'aid': the
        information dropping of Huang et al. (2020, "AID"), which Earp Sec. 5.1 cites as its random erasing:
        with probability ``aid_cutout_prob``, ``aid_num_patch`` elliptical patches (centre uniform in the crop,
        radii ``aid_radius_factor * (1 + U[0, 1)) * width`` per axis) are set to 0; independently, with
        probability ``aid_has_prob``, hide-and-seek: a grid size drawn uniformly from ``aid_has_grids`` (0 = none)
        and every cell set to 0 with probability ``aid_has_hide_prob``. Defaults: the AID authors' public
        implementation (0.3, 0.1, 1, 0.3, 0.3, grids 0/16/32/44); Earp et al. give no values.
    aid_cutout_prob, aid_radius_factor, aid_num_patch, aid_has_prob, aid_has_hide_prob, aid_has_grids :
        See ``erasing_mode``.
    pca_std : float
        Std of the AlexNet PCA lighting alphas (ImageNet eigen-decomposition); 0 = off. Default 0.05.
    jitter : float or (float, float, float)
        Brightness, contrast, saturation jitter: factors uniform in [1 - j, 1 + j], applied in random order as
        ``mxnet.image.ColorJitterAug``; 0 = off. Default 0.4.
    seed : int, optional
        Seed of the generator (``np.random.default_rng``); in a forked DataLoader worker the generator is
        re-seeded from (seed, process id) so that workers draw different augmentations.
    rng : numpy.random.Generator, optional
        Generator to use (overrides ``seed``).

    Notes
    -----
    Call order: geometric warp (flip, rotation, scale, shift in one ``cv2.warpAffine``, bilinear, black border),
    colour jitter, PCA lighting, erasing (random uniform values). Photometric operations work in float32 on
    [0, 255] and the result is rounded and clipped to uint8. Points keep their order except for the flip
    permutation; points may leave the crop after rotation.
    The mxnet operators (``mx.image.ColorJitterAug``, ``LightingAug``) draw from the global ``random`` /
    ``np.random`` state and work on NDArrays; the same formulas are applied here in numpy with this object's
    generator (tests check equality with the mxnet operators).
    """

    def __init__(self, flip_prob=0.5, flip_perm=None, rotation_deg=15.0, scale_range=None, shift_frac=0.0,
                 erasing_prob=0.5, erasing_area=(0.02, 0.4), erasing_aspect=(0.3, 1 / 0.3), pca_std=0.05,
                 jitter=0.4, seed=None, rng=None, erasing_mode="zhong", aid_cutout_prob=0.3, aid_radius_factor=0.1,
                 aid_num_patch=1, aid_has_prob=0.3, aid_has_hide_prob=0.3, aid_has_grids=(0, 16, 32, 44),
                 align_noise_std=(0.0, 0.0, 0.0)):
        if not 0 <= flip_prob <= 1 or not 0 <= erasing_prob <= 1:
            raise ValueError("probabilities must be in [0, 1]")
        if flip_prob > 0 and flip_perm is None:
            raise ValueError("flip_prob > 0 needs flip_perm (the landmark scheme's flip permutation)")
        self.flip_prob = float(flip_prob)
        self.flip_perm = None if flip_perm is None else np.asarray(flip_perm, np.int64)
        if self.flip_perm is not None and not np.array_equal(self.flip_perm[self.flip_perm],
                                                             np.arange(len(self.flip_perm))):
            raise ValueError("flip_perm must be an involution")
        self.rotation_deg = float(rotation_deg or 0.0)
        if scale_range is not None:
            scale_range = (float(scale_range[0]), float(scale_range[1]))
            if not 0 < scale_range[0] <= scale_range[1]:
                raise ValueError("scale_range must be (lo, hi) with 0 < lo <= hi, got %r" % (scale_range,))
            if scale_range == (1.0, 1.0):
                scale_range = None
        self.scale_range = scale_range
        self.shift_frac = float(shift_frac or 0.0)
        self.align_noise_std = tuple(float(v) for v in align_noise_std)
        if len(self.align_noise_std) != 3 or any(not v >= 0 for v in self.align_noise_std):
            raise ValueError("align_noise_std must be 3 stds >= 0 (log scale, degrees, crop fraction), got %r"
                             % (align_noise_std,))
        self.erasing_prob = float(erasing_prob)
        self.erasing_area = tuple(map(float, erasing_area))
        self.erasing_aspect = tuple(map(float, erasing_aspect))
        if erasing_mode not in ERASING_MODES:
            raise ValueError("erasing_mode must be one of %s, got %r" % (", ".join(ERASING_MODES), erasing_mode))
        self.erasing_mode = erasing_mode
        for name, v in (("aid_cutout_prob", aid_cutout_prob), ("aid_has_prob", aid_has_prob),
                        ("aid_has_hide_prob", aid_has_hide_prob)):
            if not 0 <= v <= 1:
                raise ValueError("%s must be in [0, 1], got %r" % (name, v))
        if aid_radius_factor <= 0 or int(aid_num_patch) < 1:
            raise ValueError("aid_radius_factor must be > 0 and aid_num_patch >= 1, got %r, %r"
                             % (aid_radius_factor, aid_num_patch))
        if not len(aid_has_grids) or any(int(g) < 0 for g in aid_has_grids):
            raise ValueError("aid_has_grids must be non-empty sizes >= 0, got %r" % (aid_has_grids,))
        self.aid_cutout_prob = float(aid_cutout_prob)
        self.aid_radius_factor = float(aid_radius_factor)
        self.aid_num_patch = int(aid_num_patch)
        self.aid_has_prob = float(aid_has_prob)
        self.aid_has_hide_prob = float(aid_has_hide_prob)
        self.aid_has_grids = tuple(int(g) for g in aid_has_grids)
        self.pca_std = float(pca_std or 0.0)
        if jitter is None:
            jitter = 0.0
        self.jitter = tuple(float(j) for j in (jitter if np.ndim(jitter) else (jitter,) * 3))
        if len(self.jitter) != 3 or any(not 0 <= j < 1 for j in self.jitter):
            raise ValueError("jitter must be a float or 3 floats in [0, 1), got %r" % (jitter,))
        self._seed = seed
        self._pid = os.getpid()
        self.rng = rng if rng is not None else np.random.default_rng(seed)

    # ---------------------------------------------------------------------------------------- sampling
    def _generator(self):
        pid = os.getpid()
        if pid != self._pid:  # forked worker: do not repeat the parent's (or siblings') draws
            self._pid = pid
            base = 0 if self._seed is None else int(self._seed)
            self.rng = np.random.default_rng([base, pid])
        return self.rng

    def sample(self, height, width, channels=3):
        """Draw the random parameters of one call for a (height, width, channels) crop."""
        r = self._generator()
        p = AugmentParams()
        p.flip = self.flip_prob > 0 and r.random() < self.flip_prob
        if self.rotation_deg > 0:
            p.angle = float(r.uniform(-self.rotation_deg, self.rotation_deg))
        if self.scale_range is not None:
            p.scale = float(r.uniform(*self.scale_range))
        if self.shift_frac > 0:
            p.shift = (float(r.uniform(-self.shift_frac, self.shift_frac) * width),
                       float(r.uniform(-self.shift_frac, self.shift_frac) * height))
        if any(self.align_noise_std):  # a detector's alignment error (log scale, degrees, crop fraction)
            s_std, r_std, t_std = self.align_noise_std
            ds, da, dx, dy = r.normal(0.0, 1.0, size=4)
            p.scale *= float(np.exp(s_std * ds))
            p.angle += float(r_std * da)
            p.shift = (p.shift[0] + float(t_std * dx * width), p.shift[1] + float(t_std * dy * height))
        if any(self.jitter):
            order = tuple(int(i) for i in r.permutation(3))
            alphas = tuple(1.0 + float(r.uniform(-j, j)) if j > 0 else 1.0 for j in self.jitter)
            p.jitter = (order, alphas)
        if self.pca_std > 0:
            p.lighting = r.normal(0.0, self.pca_std, size=3).astype(np.float32)
        if self.erasing_mode == "aid":
            if self.aid_cutout_prob > 0 and r.random() < self.aid_cutout_prob:
                p.aid_cutout = tuple((float(r.random() * width), float(r.random() * height))
                                     + tuple(float(v) for v in self.aid_radius_factor * (1 + r.random(2)) * width)
                                     for _ in range(self.aid_num_patch))
            if self.aid_has_prob > 0 and r.random() < self.aid_has_prob:
                grid = self.aid_has_grids[int(r.integers(0, len(self.aid_has_grids)))]
                if grid:
                    cells = (-(-height // grid), -(-width // grid))
                    p.aid_hide = (grid, r.random(cells) <= self.aid_has_hide_prob)
        elif self.erasing_prob > 0 and r.random() < self.erasing_prob:
            area = height * width
            lo, hi = np.log(self.erasing_aspect[0]), np.log(self.erasing_aspect[1])
            for _ in range(10):  # Zhong et al.: redraw until the rectangle fits
                target = r.uniform(*self.erasing_area) * area
                aspect = np.exp(r.uniform(lo, hi))
                h = int(round(np.sqrt(target * aspect)))
                w = int(round(np.sqrt(target / aspect)))
                if 0 < h < height and 0 < w < width:
                    y0 = int(r.integers(0, height - h + 1))
                    x0 = int(r.integers(0, width - w + 1))
                    fill = r.integers(0, 256, size=(h, w, channels), dtype=np.uint8)
                    p.erase = ((x0, y0, w, h), fill)
                    break
        return p

    # ---------------------------------------------------------------------------------------- applying
    def geometric_matrix(self, params, height, width):
        """(2, 3) float64 crop -> augmented-crop affine of ``params`` (flip, then rotation/scale/shift)."""
        M = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        if params.flip:
            M = np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        if params.angle != 0.0 or params.scale != 1.0 or params.shift != (0.0, 0.0):
            c = ((width - 1) / 2.0, (height - 1) / 2.0)
            R = np.vstack([cv2.getRotationMatrix2D(c, params.angle, params.scale), [0.0, 0.0, 1.0]])
            R[0, 2] += params.shift[0]
            R[1, 2] += params.shift[1]
            M = R @ M
        return M[:2]

    def apply(self, img, pts, params):
        """Apply drawn ``params`` to ``img`` uint8 (H, W, C) and ``pts`` (N, 2) crop pixels; returns (img, pts)."""
        img = np.asarray(img)
        if img.dtype != np.uint8 or img.ndim != 3:
            raise ValueError("expected a uint8 (H, W, C) crop, got %s %s" % (img.dtype, img.shape))
        h, w = img.shape[:2]
        pts = np.array(pts, np.float32, copy=True)
        geometric = params.angle != 0.0 or params.scale != 1.0 or params.shift != (0.0, 0.0)
        if geometric:
            M = self.geometric_matrix(params, h, w)
            img = cv2.warpAffine(img, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                 borderValue=(0,) * 3)
            if img.ndim == 2:
                img = img[:, :, None]
            pts = (pts.astype(np.float64) @ M[:, :2].T + M[:, 2]).astype(np.float32)
            if params.flip:
                pts = pts[self.flip_perm]
        elif params.flip:
            img = flip_image(img)
            pts = flip_points(pts, w, self.flip_perm)
        if params.jitter is not None or params.lighting is not None:
            f = img.astype(np.float32)
            if params.jitter is not None:
                order, alphas = params.jitter
                ops = (adjust_brightness, adjust_contrast, adjust_saturation)
                for k in order:
                    if alphas[k] != 1.0:
                        f = ops[k](f, alphas[k])
            if params.lighting is not None:
                f = pca_lighting(f, params.lighting)
            img = np.clip(np.rint(f), 0, 255).astype(np.uint8)
        if params.erase is not None:
            img = random_erase(img, *params.erase)
        if params.aid_cutout is not None or params.aid_hide is not None:
            mask = np.zeros((h, w), bool)
            if params.aid_cutout is not None:
                mask |= aid_cutout_mask(h, w, params.aid_cutout)
            if params.aid_hide is not None:
                mask |= aid_hide_mask(h, w, *params.aid_hide)
            img = img.copy()
            img[mask] = 0
        return img, pts

    def __call__(self, img, pts):
        """Augment a crop.

        Parameters
        ----------
        img : ndarray uint8, shape (H, W, 3)
            Aligned crop, RGB.
        pts : array_like, shape (N, 2)
            Landmarks in crop pixels.

        Returns
        -------
        img : ndarray uint8, shape (H, W, 3)
        pts : ndarray float32, shape (N, 2)
            Landmarks in pixels of the augmented crop (permuted when flipped).
        """
        img = np.asarray(img)
        return self.apply(img, pts, self.sample(img.shape[0], img.shape[1], img.shape[2] if img.ndim == 3 else 1))

    def __repr__(self):
        return ("Augmenter(flip_prob=%g, rotation_deg=%g, scale_range=%s, shift_frac=%g, erasing_mode=%s, "
                "erasing_prob=%g, pca_std=%g, jitter=%s)" % (self.flip_prob, self.rotation_deg, self.scale_range,
                                                             self.shift_frac, self.erasing_mode, self.erasing_prob,
                                                             self.pca_std, self.jitter))
