"""Gluon dataset of five-point-aligned face crops and their landmarks in crop pixels."""
import numpy as np
import mxnet as mx

from .align import IMAGENET_MEAN, IMAGENET_STD, arcface_template, estimate_similarity, \
    five_points_from_landmarks, invert_affine, normalize_crops, transform_points, warp_crop
from ..errors import DataError
from .formats import OUTSIDE_MARGIN, read_image, validate_samples

__all__ = ["AlignedFaceDataset", "mean_shape"]


class AlignedFaceDataset(mx.gluon.data.Dataset):
    """Faces aligned by a similarity transform of five points to insightface's ArcFace template.

    Parameters
    ----------
    samples : list of FaceSample
        Annotated faces (landmarks in original image pixels).
    scheme : LandmarkScheme
        Gives the five alignment points from the ground truth; ``scheme.num_points`` must match the samples.
    input_size : int
        Crop side S, pixels.
    template_scale : float
        Scale of the template about the crop centre (:func:`lotr_gluon.data.align.arcface_template`); < 1 adds
        context.
    detections : dict str -> Detection, optional
        Detected five points per sample name (:func:`lotr_gluon.data.formats.load_detections`). Samples without
        a detection use the ground-truth five points.
    five_point_jitter : float
        Std of gaussian noise added to the five points, as a fraction of the crop side S, in the crop (template)
        frame; imitates a detector's error. Drawn once per sample from ``seed`` (a detector's error is fixed
        per image), so the aligned crops stay cacheable. 0 = off.
    augmenter : callable (img uint8 (S, S, 3), pts (N, 2)) -> (img, pts), optional
        E.g. :class:`lotr_gluon.data.augment.Augmenter`; applied on every access when given.
    mean, std : 3 floats
        RGB normalisation of [0, 1] images (default ImageNet, as gluoncv).
    cache : bool
        Pre-align every face at construction and keep the uint8 crops in memory (S * S * 3 bytes per face:
        110 KiB at S = 192), so that an epoch costs only augmentation and the network; forked DataLoader
        workers share the cache. False: read and align on every access.
    seed : int
        Seed of the five-point jitter.
    on_error : {'raise', 'warn'}
        What to do with a bad sample found when the dataset is built (config ``DATA.ON_ERROR``): every image is
        decoded once and every face's points are checked against its image
        (:func:`lotr_gluon.data.formats.validate_samples`). 'raise': :class:`ImageReadError` (empty, truncated
        or undecodable image) or :class:`LandmarkFileError` (points outside the image); 'warn': skip the face
        with one warning line naming the file.
    outside_margin : float or None
        Landmarks may lie outside the image by at most this fraction of its width / height (config
        ``DATA.OUTSIDE_MARGIN``, default 0.5); None or negative: no point check.
    validate : bool
        False skips the image and point checks (the samples are trusted as they are).

    Raises
    ------
    ImageReadError, LandmarkFileError
        A bad sample with ``on_error='raise'``.
    DataError
        Every sample was skipped as bad (``on_error='warn'``).

    Notes
    -----
    Deviation from both papers: they align with the five points of a face detector (RetinaFace); without
    ``detections`` the five points here come from the ground-truth landmarks (``scheme.five_points``), which
    makes the alignment slightly better than at test time with a detector; ``five_point_jitter`` can imitate
    the detector's error during training.

    Items are ``(image, landmarks)``: image float32 (3, S, S), ``(rgb / 255 - mean) / std``; landmarks float32
    (N, 2) in crop pixels (x, y), which may fall outside [0, S) when the face extends past the crop.
    """

    def __init__(self, samples, scheme, input_size, template_scale=1.0, detections=None, five_point_jitter=0.0,
                 augmenter=None, mean=IMAGENET_MEAN, std=IMAGENET_STD, cache=True, seed=0,
                 on_error="raise", outside_margin=OUTSIDE_MARGIN, validate=True):
        self._samples = list(samples)
        self.scheme = scheme
        self.input_size = int(input_size)
        self.template_scale = float(template_scale)
        self.template = arcface_template(self.input_size, self.template_scale)
        self.augmenter = augmenter
        self.mean = np.asarray(mean, np.float32).reshape(3, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(3, 1, 1)
        if (self.std <= 0).any():
            raise ValueError("std must be positive, got %r" % (std,))
        self.five_point_jitter = float(five_point_jitter)
        for s in self._samples:
            if s.landmarks.shape != (scheme.num_points, 2):
                raise ValueError("sample %s has %s landmarks; scheme %s has %d points"
                                 % (s.name, s.landmarks.shape, scheme.name, scheme.num_points))
        if validate and self._samples:
            # decode every image once and check the points now, so that a bad file is skipped ('warn') or
            # stops the run ('raise') before training starts, never mid-epoch
            n = len(self._samples)
            self._samples = validate_samples(self._samples, on_error, outside_margin)
            if not self._samples:
                raise DataError("all %d samples were skipped as bad (see the warnings above)" % n)
        rng = np.random.default_rng(seed)
        self.five_point_source = []
        self._affines = []
        for s in self._samples:
            det = detections.get(s.name) if detections else None
            if det is not None:
                src = np.asarray(det.five_points, np.float64)
                self.five_point_source.append("detection")
            else:
                src = five_points_from_landmarks(s.landmarks, scheme)
                self.five_point_source.append("ground_truth")
            M = estimate_similarity(src, self.template)
            if self.five_point_jitter > 0:
                noisy_crop = transform_points(src, M) + rng.normal(
                    0.0, self.five_point_jitter * self.input_size, size=(5, 2))
                M = estimate_similarity(transform_points(noisy_crop, invert_affine(M)), self.template)
            self._affines.append(M)
        self._crops = None
        if cache:
            self._crops = [self._warp(i) for i in range(len(self._samples))]

    # ------------------------------------------------------------------------------------------ access
    @property
    def samples(self):
        """The list of FaceSample, in item order."""
        return self._samples

    def __len__(self):
        return len(self._samples)

    def affine(self, i):
        """(2, 3) float64 affine of item ``i``: original image pixels -> crop pixels (before augmentation)."""
        return self._affines[i].copy()

    def _warp(self, i):
        return warp_crop(read_image(self._samples[i].image_path), self._affines[i], self.input_size)

    def crop(self, i):
        """uint8 (S, S, 3) RGB aligned crop of item ``i`` (no augmentation)."""
        if self._crops is not None:
            return self._crops[i]
        return self._warp(i)

    def landmarks(self, i):
        """float32 (N, 2) ground-truth landmarks of item ``i`` in crop pixels (no augmentation)."""
        return transform_points(self._samples[i].landmarks, self._affines[i]).astype(np.float32)

    def aligned_landmarks(self):
        """float32 (num_items, N, 2) ground-truth landmarks in crop pixels (no augmentation; no image read)."""
        if not self._samples:
            return np.zeros((0, self.scheme.num_points, 2), np.float32)
        return np.stack([self.landmarks(i) for i in range(len(self))])

    def normalize(self, crop):
        """uint8 (S, S, 3) RGB -> float32 (3, S, S), ``(crop / 255 - mean) / std``
        (:func:`lotr_gluon.data.align.normalize_crops`)."""
        return normalize_crops(crop, self.mean, self.std)

    def __getitem__(self, i):
        img = self.crop(i)
        pts = self.landmarks(i)
        if self.augmenter is not None:
            img, pts = self.augmenter(img, pts)
        return self.normalize(img), np.asarray(pts, np.float32)


def mean_shape(dataset):
    """Mean ground-truth shape of an :class:`AlignedFaceDataset` in crop pixels.

    Returns
    -------
    ndarray float32, shape (N, 2)
        Mean of ``dataset.aligned_landmarks()`` (no augmentation); the mean-shape baseline and LOTR anchors.
    """
    pts = dataset.aligned_landmarks()
    if len(pts) == 0:
        raise ValueError("mean_shape of an empty dataset")
    return pts.mean(axis=0).astype(np.float32)
