"""Data: landmark schemes, annotation loaders, five-point alignment, augmentation and the Gluon dataset.

Modules
-------
schemes
    :class:`LandmarkScheme` (flip pairs, five alignment points, NME normaliser) and :func:`get_scheme`.
formats
    One module per annotation format (``datatang``, ``jd``, ``wflw``, ``w300``, ``detections``) over ``core``
    (:class:`FaceSample`, errors, :func:`read_image`, :func:`load_samples` and its ``FORMATS`` registry).
align
    ArcFace template, similarity estimate, :func:`align_face`, point transforms.
augment
    :func:`flip_image`, :func:`flip_points`, :class:`Augmenter`.
dataset
    :class:`AlignedFaceDataset`, :func:`mean_shape` (imports MXNet).
"""
from .schemes import LandmarkScheme, available_schemes, get_scheme
from .formats import (Detection, FaceSample, ImageReadError, LandmarkFileError, LandmarkFileWarning,
                      load_300w, load_datatang, load_detections, load_jd, load_samples, load_wflw, read_image,
                      save_detections)
from .align import (IMAGENET_MEAN, IMAGENET_STD, align_face, arcface_template, estimate_similarity,
                    five_points_from_landmarks, invert_affine, transform_points)
from .augment import Augmenter, flip_image, flip_points

__all__ = [
    "LandmarkScheme", "available_schemes", "get_scheme",
    "Detection", "FaceSample", "ImageReadError", "LandmarkFileError", "LandmarkFileWarning", "load_300w",
    "load_datatang", "load_detections", "load_jd", "load_samples", "load_wflw", "read_image", "save_detections",
    "IMAGENET_MEAN", "IMAGENET_STD", "align_face", "arcface_template", "estimate_similarity", "five_points_from_landmarks", "invert_affine",
    "transform_points", "Augmenter", "flip_image", "flip_points",
]
