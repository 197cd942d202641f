"""Five-point face detections per sample: the :class:`Detection` record and its JSON file format."""
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .core import LandmarkFileError

__all__ = ["Detection", "load_detections", "save_detections"]


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
    """

    five_points: np.ndarray
    box: Optional[np.ndarray] = None
    score: Optional[float] = None


def load_detections(path):
    """Load five-point face detections.

    Format (JSON object, one entry per sample name as in
    :class:`lotr_gluon.data.formats.core.FaceSample`)::

        {
          "NAME": {"five_points": [[x, y], [x, y], [x, y], [x, y], [x, y]],
                   "box": [x_min, y_min, x_max, y_max],
                   "score": 0.99},
          ...
        }

    ``five_points`` (required): image pixels, in the ArcFace order: image-left eye, image-right eye, nose tip,
    image-left mouth corner, image-right mouth corner (insightface RetinaFace/SCRFD ``kps`` use this order).
    ``box`` and ``score`` are optional (null or absent).

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
    if not path.is_file():
        raise FileNotFoundError("detections file %s not found" % path)
    try:
        with open(path, "r", encoding="utf-8") as f:
            d = json.load(f)
    except json.JSONDecodeError as e:
        raise LandmarkFileError(path, "invalid JSON: %s" % e.msg, e.lineno) from None
    if not isinstance(d, dict):
        raise LandmarkFileError(path, "expected a JSON object mapping sample names to detections")
    out = {}
    for name, e in d.items():
        if not isinstance(e, dict) or "five_points" not in e:
            raise LandmarkFileError(path, "entry %r: needs 'five_points'" % name)
        try:
            fp = np.array(e["five_points"], np.float64)
            box = None if e.get("box") is None else np.array(e["box"], np.float64)
            score = None if e.get("score") is None else float(e["score"])
        except (TypeError, ValueError):
            raise LandmarkFileError(path, "entry %r: non-numeric value" % name) from None
        if fp.shape != (5, 2) or not np.isfinite(fp).all():
            raise LandmarkFileError(path, "entry %r: five_points must be 5 finite [x, y] pairs" % name)
        if box is not None and (box.shape != (4,) or not np.isfinite(box).all()):
            raise LandmarkFileError(path, "entry %r: box must be 4 finite numbers" % name)
        out[str(name)] = Detection(fp.astype(np.float32), None if box is None else box.astype(np.float32), score)
    return out


def save_detections(path, detections):
    """Write ``{name: Detection}`` in the format of :func:`load_detections`."""
    d = {}
    for name, det in detections.items():
        d[name] = {"five_points": np.asarray(det.five_points, float).tolist(),
                   "box": None if det.box is None else np.asarray(det.box, float).tolist(),
                   "score": None if det.score is None else float(det.score)}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(d, f, indent=1)
