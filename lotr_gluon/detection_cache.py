"""A face detector's five points for every sample of a dataset: detection, matching, fingerprints and the cache.

Both papers align every face, in training and in test, on the five points (eye centres, nose tip, mouth
corners) of a face detector, Deng et al.'s RetinaFace (LOTR Sec. IV-A, Earp Sec. 3.1). Here the detector is one of
:mod:`lotr_gluon.detectors` that gives five points (YuNet by default). A dataset's detections are computed once
and kept in a JSON file in the format of :func:`lotr_gluon.data.formats.load_detections`, whose ``"_meta"``
object says what made it (:func:`detector_identity`: detector, model file and its sha256, OpenCV's version,
detector settings, the match threshold) and on which images (:func:`fingerprint`, one per sample), and lists
the faces the detector missed.

* :func:`detect_samples` runs the detector over samples (once per image, a tqdm bar) and matches each
  annotated face to the detection whose box overlaps the box of its ground-truth landmarks most
  (:func:`match_face`, IoU at least :data:`MATCH_IOU`); the others are misses (:data:`NO_FACE`: nothing
  detected; :data:`LOW_IOU`: detections, none overlapping enough; :data:`NO_POINTS`).
* :func:`write_detections` writes the result (atomically).
* :func:`stale_reason` says why a file cannot be reused for given samples and detector (None when it can);
  it reads the JSON and one ``os.stat`` per image, never decodes an image.
* :func:`ensure_detections` returns a valid file: the existing one when :func:`stale_reason` accepts it, else
  it runs the detector and rewrites it.

Rule for misses (config ``DATA.ALIGN detector``, ``tools/detect_faces.py``; a miss has no entry in the file): A
face the detector misses (no detection with IoU >= 0.4 to its landmarks' box) is aligned on its ground-truth five
points in training and in evaluation, where it is scored that way and counted in ``detector_misses``.
"""
import os
import sys
from dataclasses import dataclass, field

import cv2
import numpy as np
from tqdm import tqdm

from .data.formats import Detection, ImageReadError, load_detections_meta, read_image, save_detections
from .detectors import file_sha256, get_detector
from .errors import DetectorError

__all__ = ["MATCH_IOU", "FORMAT_VERSION", "FINGERPRINT", "NO_FACE", "LOW_IOU", "NO_POINTS", "UNREADABLE",
           "FIVE_POINT_DETECTORS",
           "DetectionRun", "box_iou", "landmark_box", "match_face", "fingerprint",
           "detector_identity", "five_point_detector", "detect_samples", "detection_meta", "write_detections",
           "stale_reason", "ensure_detections"]

#: A detection belongs to the annotated face when the IoU of its box with the box of the face's ground-truth
#: landmarks is at least this (the best such detection is taken). The two boxes differ by construction (a
#: detector's box spans forehead to chin, the landmarks' box eyebrows to chin and cheek to cheek), so the IoU of
#: a correct detection is well below 1: YuNet's box of the right face overlaps it at 0.45 to 0.96 (median 0.72)
#: on the 898 of the 900 Datatang-106 faces where YuNet finds a face. Its false boxes on the same photos (half a
#: face, the forehead and the eyes) reach 0.22-0.43 but never beat the right box, and a box on another person
#: overlaps near 0. 0.4 keeps every right face measured and rejects a box that is mostly off the face.
MATCH_IOU = 0.4

#: Version of the ``"_meta"`` layout; a file of another version is rebuilt.
FORMAT_VERSION = 1

#: How images are fingerprinted (``"_meta"``'s ``fingerprint``): size and modification time (ns) from one
#: ``os.stat``, which an edit changes, so that checking a cache costs no image read (a content hash alone would
#: read every byte of the dataset each time a split is built); the sha256 of the bytes is kept as well and read
#: only when the time changed but the size did not (a ``touch``, the same files unpacked again in the same
#: place), so that those keep their cache while an edit of the same size is still caught. Image paths are kept
#: absolute: a dataset moved elsewhere is detected again.
FINGERPRINT = "size+mtime_ns, sha256 when mtime changed"

#: Miss reasons: the detector found no face in the image / found faces, none with IoU >= the threshold / the
#: matching detection has no five points (a box-only insightface model) / the image cannot be read (with
#: ``on_error='warn'``; the dataset then skips the sample with its warning).
NO_FACE = "no_face"
LOW_IOU = "low_iou"
NO_POINTS = "no_five_points"
UNREADABLE = "unreadable"

#: Detectors of :func:`lotr_gluon.detectors.get_detector` that give five points.
FIVE_POINT_DETECTORS = ("yunet", "insightface")


def box_iou(a, b):
    """Intersection over union of two boxes.

    Parameters
    ----------
    a, b : array_like, shape (4,)
        ``x0, y0, x1, y1``, pixels.

    Returns
    -------
    float
        In [0, 1]; 0 when either box is empty.
    """
    a = np.asarray(a, np.float64).reshape(4)
    b = np.asarray(b, np.float64).reshape(4)
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
    return float(iw * ih / union) if union > 0 and iw * ih > 0 else 0.0


def landmark_box(landmarks):
    """``x0, y0, x1, y1`` (float64, shape (4,), pixels) of (N, 2) landmarks: the annotated face's box."""
    p = np.asarray(landmarks, np.float64).reshape(-1, 2)
    return np.r_[p.min(0), p.max(0)]


def match_face(faces, gt_box, min_iou=MATCH_IOU):
    """The detected face that is the annotated one.

    Parameters
    ----------
    faces : list of lotr_gluon.detectors.Face
        The detections of the image.
    gt_box : array_like, shape (4,)
        Box of the face's ground-truth landmarks (:func:`landmark_box`), pixels.
    min_iou : float
        Least IoU of a match.

    Returns
    -------
    (Face or None, float or None)
        The face with the highest IoU when it is at least ``min_iou`` (else None), and that highest IoU (None
        when nothing was detected).
    """
    if not faces:
        return None, None
    ious = [box_iou(f.box, gt_box) for f in faces]
    k = int(np.argmax(ious))
    return (faces[k] if ious[k] >= min_iou else None), ious[k]


def fingerprint(path, sha256=True):
    """``{"path", "size", "mtime_ns", "sha256"}`` of an image file (:data:`FINGERPRINT`); ``path`` absolute.

    ``sha256=False`` leaves the hash out (None); a missing file has None for all three."""
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        return {"path": path, "size": None, "mtime_ns": None, "sha256": None}
    st = os.stat(path)
    return {"path": path, "size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns),
            "sha256": file_sha256(path) if sha256 else None}


def detector_identity(detector):
    """What the detections depend on besides the images: ``{"detector", "model", "model_sha256", "opencv",
    "detector_params"}`` (name, model file, its sha256, ``cv2.__version__``, the settings the detector object
    keeps: score threshold, largest side, input size)."""
    model = getattr(detector, "model_path", None) or getattr(detector, "cascade_path", None)
    params = {k: getattr(detector, k) for k in ("score_threshold", "max_side", "det_size") if hasattr(detector, k)}
    return {"detector": detector.name, "model": os.path.abspath(model) if model else None,
            "model_sha256": file_sha256(model) if model and os.path.isfile(model) else None,
            "opencv": cv2.__version__, "detector_params": {k: list(v) if isinstance(v, tuple) else v
                                                           for k, v in params.items()}}


def five_point_detector(name="yunet", **kw):
    """:func:`lotr_gluon.detectors.get_detector` of ``name``, refusing a detector without five points.

    Raises
    ------
    DetectorError
        ``name`` is not one of :data:`FIVE_POINT_DETECTORS`, or the detector is unavailable (its model file is
        missing: :class:`~lotr_gluon.detectors.DetectorUnavailable`, a DetectorError).
    """
    if name not in FIVE_POINT_DETECTORS:
        raise DetectorError("detector %r gives no five points; the alignment needs one of: %s"
                            % (name, ", ".join(FIVE_POINT_DETECTORS)))
    return get_detector(name, **kw)


@dataclass
class DetectionRun:
    """What :func:`detect_samples` found.

    Attributes
    ----------
    detections : dict str -> Detection
        Matched faces by sample name (five points, box, score, IoU).
    misses : dict str -> dict
        Missed faces by sample name: ``{"reason": NO_FACE, LOW_IOU or NO_POINTS, "message": str,
        "iou": best IoU or None, "faces": number of detections}``.
    samples : dict str -> dict
        Every sample's image :func:`fingerprint` and ``gt_box`` (the landmarks' box it was matched against).
    """

    detections: dict = field(default_factory=dict)
    misses: dict = field(default_factory=dict)
    samples: dict = field(default_factory=dict)


def detect_samples(samples, detector, min_iou=MATCH_IOU, progress=True, desc="detecting faces", on_error="raise"):
    """Run ``detector`` over the images of ``samples`` and match each annotated face (:func:`match_face`).

    Parameters
    ----------
    samples : list of FaceSample
        Annotated faces; an image with several annotated faces is detected once.
    detector : detector of :mod:`lotr_gluon.detectors` with five points
        ``detect(rgb uint8 (H, W, 3)) -> list of Face``.
    min_iou : float
        Least IoU of a match (:data:`MATCH_IOU`).
    progress : bool
        Show a tqdm bar (stderr), one step per image.
    desc : str
        The bar's label.
    on_error : {'raise', 'warn'}
        An image that cannot be read: raise, or list its faces as misses (:data:`UNREADABLE`) and go on (config
        ``DATA.ON_ERROR``; the dataset skips such a sample with its own warning).

    Returns
    -------
    DetectionRun

    Raises
    ------
    ImageReadError
        An image cannot be read (named in the message), with ``on_error='raise'``.
    """
    run = DetectionRun()
    by_image = {}
    for s in samples:
        by_image.setdefault(os.path.abspath(s.image_path), []).append(s)
    for path, group in tqdm(by_image.items(), total=len(by_image), desc=desc, unit="img",
                            disable=not progress, file=sys.stderr):
        fp = fingerprint(path)  # before the read: an image edited while the detector runs is stale
        try:
            faces, error = detector.detect(read_image(path)), None
        except ImageReadError as e:
            if on_error == "raise":
                raise
            faces, error = [], e.reason
        for s in group:
            gt_box = landmark_box(s.landmarks)
            run.samples[s.name] = dict(fp, gt_box=gt_box.tolist())
            face, iou = match_face(faces, gt_box, min_iou)
            if error is not None:
                run.misses[s.name] = {"reason": UNREADABLE, "message": error, "iou": None, "faces": 0}
            elif face is not None and face.five_points is not None:
                run.detections[s.name] = Detection(face.five_points.astype(np.float32),
                                                   face.box.astype(np.float32), face.score, iou)
            elif face is not None:
                run.misses[s.name] = {"reason": NO_POINTS, "iou": iou, "faces": len(faces),
                                      "message": "the matching detection has no five points"}
            elif not faces:
                run.misses[s.name] = {"reason": NO_FACE, "message": "no face detected", "iou": None, "faces": 0}
            else:
                run.misses[s.name] = {"reason": LOW_IOU, "iou": iou, "faces": len(faces),
                                      "message": "best IoU %.2f < %.2f with the landmarks' box (%d face%s detected)"
                                      % (iou, min_iou, len(faces), "" if len(faces) == 1 else "s")}
    return run


def detection_meta(run, identity, min_iou=MATCH_IOU, **extra):
    """The ``"_meta"`` object of a detections file: ``identity`` (:func:`detector_identity`), the format version,
    ``match_iou``, ``fingerprint`` (:data:`FINGERPRINT`), ``samples`` and ``misses`` of ``run``, and ``extra``
    (e.g. ``dataset``, ``split``)."""
    meta = {"format": FORMAT_VERSION}
    meta.update(identity)
    meta.update(match_iou=float(min_iou), fingerprint=FINGERPRINT, **extra)
    meta.update(samples=run.samples, misses=run.misses)
    return meta


def write_detections(path, run, identity, min_iou=MATCH_IOU, **extra):
    """Write ``run`` (:class:`DetectionRun`) to ``path`` in the format of
    :func:`lotr_gluon.data.formats.load_detections` with its :func:`detection_meta` (atomically; the folder is
    created). Returns ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    save_detections(path, run.detections, detection_meta(run, identity, min_iou, **extra))
    return path


def _changed(name, rec, now):
    """Why the image of sample ``name`` differs from its fingerprint ``rec`` (None when it does not)."""
    if rec.get("size") != now["size"]:
        return "image of %s changed (%s bytes, was %s)" % (name, now["size"], rec.get("size"))
    if rec.get("mtime_ns") != now["mtime_ns"]:
        if not rec.get("sha256") or file_sha256(now["path"]) != rec["sha256"]:
            return "image of %s changed (new modification time and content)" % name
    return None


def stale_reason(path, samples, identity, min_iou=MATCH_IOU):
    """Why the detections file ``path`` cannot serve ``samples`` under ``identity``; None when it can.

    Reasons: the file is missing or unreadable, has no ``"_meta"`` (a file not written by
    :func:`write_detections`) or another format version; its detector, model sha256, OpenCV version, detector
    settings or match threshold differ from ``identity`` / ``min_iou``; a sample is not in it; a sample's image
    path, size or (when the modification time moved) content differ from the fingerprint; a sample's
    ground-truth landmark box moved (its annotation changed). The check reads the JSON, one ``os.stat`` per
    image, and the bytes only of an image whose time changed while its size did not; it decodes no image.

    Parameters
    ----------
    path : str
    samples : list of FaceSample
    identity : dict
        :func:`detector_identity` of the detector in use.
    min_iou : float

    Returns
    -------
    str or None
    """
    if not os.path.isfile(path):
        return "no file %s" % path
    try:
        meta = load_detections_meta(path)
    except (OSError, ValueError) as e:  # LandmarkFileError is a ValueError
        return "unreadable (%s)" % e
    if not meta:
        return "no %r in %s (not written by tools/detect_faces.py)" % ("_meta", path)
    if meta.get("format") != FORMAT_VERSION:
        return "format %r, expected %d" % (meta.get("format"), FORMAT_VERSION)
    for key in ("detector", "model_sha256", "opencv", "detector_params"):
        if meta.get(key) != identity.get(key):
            return "%s %r, now %r" % (key, meta.get(key), identity.get(key))
    if meta.get("match_iou") != float(min_iou):
        return "match_iou %r, now %r" % (meta.get("match_iou"), float(min_iou))
    recorded = meta.get("samples") or {}
    for s in samples:
        rec = recorded.get(s.name)
        if not isinstance(rec, dict):
            return "sample %s not in it" % s.name
        image = os.path.abspath(s.image_path)
        if rec.get("path") != image:
            return "image of %s is %s, was %s" % (s.name, image, rec.get("path"))
        now = fingerprint(image, sha256=False)
        if now["size"] is None and rec.get("size") is not None:
            return "image of %s is gone" % s.name
        try:
            why = _changed(s.name, rec, now)
        except OSError as e:
            return "image of %s unreadable (%s)" % (s.name, e.strerror or e)
        if why:
            return why
        box = rec.get("gt_box")
        if box is None or np.abs(np.asarray(box, np.float64) - landmark_box(s.landmarks)).max() > 1e-3:
            return "landmarks of %s changed" % s.name
    return None


def ensure_detections(path, samples, detector="yunet", min_iou=MATCH_IOU, progress=True, on_error="raise", **extra):
    """A detections file for ``samples`` that can be trusted: ``path`` when :func:`stale_reason` accepts it,
    else rebuilt there by :func:`detect_samples` with the detector ``detector`` (one line on stderr says why).

    Parameters
    ----------
    path : str
        The cache file (e.g. :func:`lotr_gluon.build.detections_path`).
    samples : list of FaceSample
    detector : str
        One of :data:`FIVE_POINT_DETECTORS` (its default model, :func:`lotr_gluon.detectors.get_detector`).
    min_iou : float
    progress : bool
        tqdm bar while detecting.
    on_error : {'raise', 'warn'}
        An unreadable image: see :func:`detect_samples`.
    **extra
        Written into ``"_meta"`` on a rebuild (``dataset``, ``split``).

    Returns
    -------
    (str, str or None)
        ``path`` and the reason it was rebuilt (None when it was reused).

    Raises
    ------
    DetectorError
        The detector is unavailable or gives no five points.
    ImageReadError
        An image cannot be read during the rebuild (``on_error='raise'``).
    OutputError
        ``path`` cannot be written.
    """
    det = five_point_detector(detector)
    identity = detector_identity(det)
    why = stale_reason(path, samples, identity, min_iou)
    if why is None:
        return path, None
    print("detections %s: running %s on %d faces (%s)" % (path, det.name, len(samples), why), file=sys.stderr)
    run = detect_samples(samples, det, min_iou, progress, "detecting faces (%s)" % os.path.basename(path), on_error)
    write_detections(path, run, identity, min_iou, **extra)
    return path, why
