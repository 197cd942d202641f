"""Five-point face detections per sample: the :class:`Detection` record and its JSON file format."""
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ...files import atomic_json
from .core import LandmarkFileError

__all__ = ["Detection", "load_detections", "load_detections_meta", "save_detections", "META_KEY"]

#: Top-level key of the file's metadata (detector, model sha256, OpenCV version, image fingerprints, misses):
#: a reserved name, never a sample.
META_KEY = "_meta"


@dataclass
class Detection:
    """A face detection for one sample (see :func:`load_detections`).

    Attributes
    ----------
    five_points : ndarray float32, shape (5, 2)
        Image-left eye, image-right eye, nose tip, image-left and image-right mouth corner; image pixels.
    box : ndarray float32, shape (4,), or None
        (x_min, y_min, x_max, y_max), image pixels.
    score : float or None
        Detector confidence.
    iou : float or None
        Overlap (intersection over union) of ``box`` with the box of the sample's ground-truth landmarks, when
        the detection was matched to the annotated face that way (``tools/detect_faces.py``).
    """

    five_points: np.ndarray
    box: Optional[np.ndarray] = None
    score: Optional[float] = None
    iou: Optional[float] = None


def _read(path):
    """The file's JSON object (a dict); FileNotFoundError or LandmarkFileError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError("detections file %s not found" % path)
    try:
        with open(path, "r", encoding="utf-8") as f:
            d = json.load(f)
    except json.JSONDecodeError as e:
        raise LandmarkFileError(path, "invalid JSON: %s" % e.msg, e.lineno) from None
    except UnicodeDecodeError:
        raise LandmarkFileError(path, "not a UTF-8 text file") from None
    if not isinstance(d, dict):
        raise LandmarkFileError(path, "expected a JSON object mapping sample names to detections")
    if not isinstance(d.get(META_KEY, {}), dict):
        raise LandmarkFileError(path, "%r must be a JSON object" % META_KEY)
    return d


def _number(e, key):
    return None if e.get(key) is None else float(e[key])


def load_detections(path):
    """Load five-point face detections.

    Format (JSON object, one entry per sample name as in
    :class:`lotr_gluon.data.formats.core.FaceSample`)::

        {
          "NAME": {"five_points": [[x, y], [x, y], [x, y], [x, y], [x, y]],
                   "box": [x_min, y_min, x_max, y_max],
                   "score": 0.99,
                   "iou": 0.72},
          ...,
          "_meta": {...}
        }

    ``five_points`` (required): image pixels, in the ArcFace order: image-left eye, image-right eye, nose tip,
    image-left mouth corner, image-right mouth corner (insightface RetinaFace/SCRFD ``kps`` use this order).
    ``box``, ``score`` and ``iou`` are optional (null or absent). The optional top-level ``"_meta"`` object
    (:data:`META_KEY`, see :func:`load_detections_meta`) is not a sample: files without it (written before it
    existed, or by hand) load as before. A sample without an entry is aligned on its ground-truth five points.

    Returns
    -------
    dict str -> Detection

    Raises
    ------
    FileNotFoundError
        Missing file.
    LandmarkFileError
        Invalid JSON (with its line) or a bad entry (named in the message).
    """
    path = Path(path)
    d = _read(path)
    out = {}
    for name, e in d.items():
        if name == META_KEY:
            continue
        if not isinstance(e, dict) or "five_points" not in e:
            raise LandmarkFileError(path, "entry %r: needs 'five_points'" % name)
        try:
            fp = np.array(e["five_points"], np.float64)
            box = None if e.get("box") is None else np.array(e["box"], np.float64)
            score, iou = _number(e, "score"), _number(e, "iou")
        except (TypeError, ValueError):
            raise LandmarkFileError(path, "entry %r: non-numeric value" % name) from None
        if fp.shape != (5, 2) or not np.isfinite(fp).all():
            raise LandmarkFileError(path, "entry %r: five_points must be 5 finite [x, y] pairs" % name)
        if box is not None and (box.shape != (4,) or not np.isfinite(box).all()):
            raise LandmarkFileError(path, "entry %r: box must be 4 finite numbers" % name)
        out[str(name)] = Detection(fp.astype(np.float32), None if box is None else box.astype(np.float32), score,
                                   iou)
    return out


def load_detections_meta(path):
    """The ``"_meta"`` object of a detections file (:func:`load_detections`), ``{}`` when it has none.

    Written by ``tools/detect_faces.py`` (:mod:`lotr_gluon.detection_cache`): the detector's name, its model
    file and sha256, OpenCV's version, the match threshold, each sample's image fingerprint and the faces the
    detector missed. Only the file's JSON is read (no sample is checked).

    Raises
    ------
    FileNotFoundError, LandmarkFileError
        As :func:`load_detections`.
    """
    return _read(path).get(META_KEY, {})


def save_detections(path, detections, meta=None):
    """Write ``{name: Detection}`` (and ``meta`` as ``"_meta"``) in the format of :func:`load_detections`,
    atomically (:func:`lotr_gluon.files.atomic_json`: the old file or the new one, never half of one)."""
    d = {}
    for name, det in detections.items():
        if name == META_KEY:
            raise ValueError("%r is reserved for the file's metadata, not a sample name" % META_KEY)
        d[name] = {"five_points": np.asarray(det.five_points, float).tolist(),
                   "box": None if det.box is None else np.asarray(det.box, float).tolist(),
                   "score": None if det.score is None else float(det.score)}
        if getattr(det, "iou", None) is not None:
            d[name]["iou"] = float(det.iou)
    if meta is not None:
        d[META_KEY] = meta
    atomic_json(d, str(path))
