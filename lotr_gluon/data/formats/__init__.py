"""Annotation formats: one module per dataset format over one shared reading core (as HRNet-FLD's ``lib/datasets``).

Modules
-------
core
    :class:`FaceSample`, the errors, :func:`read_image` / :func:`check_image` / :func:`validate_samples`, the
    parsing helpers the formats share, the :data:`FORMATS` registry and :func:`load_samples`. Imports no format.
datatang
    Datatang-106 (one JSON per image): :func:`load_datatang`.
jd
    JD-landmark 106 (one text file per image): :func:`load_jd`.
wflw
    WFLW 98 (one list file, a face per line): :func:`load_wflw`.
w300
    300-W 68 (iBUG ``.pts``): :func:`load_300w`.
detections
    Five-point detections (JSON): :class:`Detection`, :func:`load_detections`, :func:`load_detections_meta`,
    :func:`save_detections`.

Importing this package imports every format module, and each registers its split loader in :data:`FORMATS`
(in this order: datatang, jd, wflw, 300w); a new format is a new module here, registered with
:func:`register_format` and imported below.
"""
from .core import (FORMATS, IMAGE_EXTENSIONS, OUTSIDE_MARGIN, FaceSample, ImageReadError, LandmarkFileError,
                   LandmarkFileWarning, check_image, load_samples, read_image, register_format, to_rgb,
                   validate_samples)
from .datatang import load_datatang
from .jd import load_jd
from .wflw import load_wflw
from .w300 import load_300w
from .detections import META_KEY, Detection, load_detections, load_detections_meta, save_detections

__all__ = [
    "FaceSample", "Detection", "LandmarkFileError", "ImageReadError", "LandmarkFileWarning", "read_image",
    "to_rgb", "check_image", "validate_samples", "OUTSIDE_MARGIN",
    "load_datatang", "load_jd", "load_wflw", "load_300w", "load_detections", "load_detections_meta",
    "save_detections", "META_KEY",
    "load_samples", "FORMATS", "IMAGE_EXTENSIONS", "register_format",
]
