"""Face detectors for inference on photos: a box, a score and, when the detector gives them, five points.

Every detector is called on an RGB ``uint8`` (H, W, 3) image and returns a list of :class:`Face`, best first:

* :class:`YuNetDetector`: OpenCV Zoo's YuNet (Wu et al., "YuNet: A Tiny Millisecond-level Face Detector",
  Machine Intelligence Research 2023; MIT licence; a 230 KB ONNX file) run by ``cv2.FaceDetectorYN`` of the
  pinned OpenCV: a box **and five points** per face (eyes, nose tip, mouth corners). The model file is looked
  up by :func:`find_yunet_model` (an explicit path, ``$LOTR_YUNET_MODEL``, the user cache folder
  :func:`cache_dir`, then ``<repo>/../shared/models/``) and, when none is found and the machine is online,
  fetched once into the cache from OpenCV Zoo and checked against :data:`YUNET_SHA256`
  (:func:`fetch_yunet_model`).
* :class:`InsightFaceDetector`: insightface's RetinaFace / SCRFD ONNX models (``insightface.model_zoo``), the
  detector family both papers use; boxes **and five points** (eye centres, nose tip, mouth corners, in the
  order of the ArcFace template). The weights are not part of the ``insightface`` wheel: they come in
  insightface's model packs (``buffalo_l``: ``det_10g.onnx``, SCRFD-10GF; ``buffalo_s``/``buffalo_sc``:
  ``det_500m.onnx``), which ``insightface.app.FaceAnalysis`` downloads on first use into
  ``~/.insightface/models/<pack>/``. Offline, copy such a file onto the machine and pass its path.
* :class:`OpenCVDetector`: OpenCV's Viola-Jones Haar cascade ``haarcascade_frontalface_default.xml``, whose
  weights ship inside the ``opencv-python`` / ``opencv-python-headless`` wheels (``cv2.data.haarcascades``),
  so it works on any machine with the project installed. Boxes only (``five_points=None``), frontal faces
  only, and a rough box; :class:`lotr_gluon.predictor.Predictor` derives five initial points from the box
  with :attr:`OpenCVDetector.box_template` and refines the alignment with its own prediction.
* :func:`get_detector` picks one by name; ``'auto'`` = YuNet when its model file is found (or can be fetched),
  else insightface when its model file is found, else OpenCV's Haar cascade (last resort).
  ``detector.name`` (``'yunet'``, ``'insightface'``, ``'opencv'``) says which one it is, so that results can
  record it.

The papers align every face on a detector's five points (LOTR Sec. IV-A, Earp Sec. 5.1: insightface's
RetinaFace); YuNet and insightface give them. Only the Haar cascade gives a box alone, for which
:class:`lotr_gluon.predictor.Predictor` places five initial points with the box template and re-aligns on its
own prediction.
"""
import os
import warnings
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np
import pooch
import requests

from .errors import DetectorError

__all__ = ["Face", "DetectorUnavailable", "YuNetDetector", "InsightFaceDetector", "OpenCVDetector", "get_detector",
           "find_yunet_model", "fetch_yunet_model", "cache_dir", "YUNET_FILE", "YUNET_URL", "YUNET_SHA256",
           "find_insightface_model", "DETECTORS", "INSIGHTFACE_PACKS", "DEFAULT_BOX_TEMPLATE",
           "HAAR_BOX_TEMPLATE", "five_points_from_box", "box_template_from_points", "haar_cascade_path", "file_sha256"]

DETECTORS = ("auto", "yunet", "insightface", "opencv")

#: File name of the YuNet model in the cache and shared folders.
YUNET_FILE = "face_detection_yunet.onnx"
#: OpenCV Zoo's YuNet (``models/face_detection_yunet/face_detection_yunet_2026may.onnx``, 229,738 bytes) through
#: GitHub's LFS media host (``raw.githubusercontent.com`` serves only the LFS pointer). Not fetched from here
#: (offline); the file in ``../shared/models/`` has :data:`YUNET_SHA256`.
YUNET_URL = ("https://media.githubusercontent.com/media/opencv/opencv_zoo/main/models/face_detection_yunet/"
             "face_detection_yunet_2026may.onnx")
#: sha256 of the YuNet file, from ``../shared/models/README.md`` (a download must match it).
YUNET_SHA256 = "ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0"
#: ``<repo>/../shared/models``: the read-only copy that tests and offline development machines use.
SHARED_MODELS_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
                                                  "shared", "models"))

#: insightface model packs and the detector file inside each, in the order searched by ``'auto'``.
INSIGHTFACE_PACKS = (("buffalo_l", "det_10g.onnx"), ("antelopev2", "scrfd_10g_bnkps.onnx"),
                     ("buffalo_m", "det_2.5g.onnx"), ("buffalo_s", "det_500m.onnx"),
                     ("buffalo_sc", "det_500m.onnx"))

#: Five points (image-left eye, image-right eye, nose tip, image-left / image-right mouth corner) in units of a
#: face box: ``point = box_centre + t * (box_width, box_height)``. Generic default for detectors that give only a
#: box of unknown convention: insightface's ArcFace template with the 112 x 112 crop taken as the box
#: (``arcface_dst / 112 - 0.5``).
DEFAULT_BOX_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    np.float64) / 112.0 - 0.5

#: The same for the boxes of OpenCV's ``haarcascade_frontalface_default.xml`` (as :class:`OpenCVDetector` runs
#: it), measured on the 800 training faces of the Datatang-106 sample: the cascade found a box overlapping the
#: annotated face (IoU > 0.3 with the landmarks' bounding box) on 756; the median over those faces of
#: ``(five points - box centre) / box size``, with the five points from the ground truth (``scheme.five_points``
#: of ``datatang106``), then made left/right symmetric (mean of each point and its mirror). Measured median
#: (before symmetrising): eyes (-0.181, -0.108), (0.180, -0.112); nose (0.000, 0.082); mouth (-0.141, 0.276),
#: (0.153, 0.270); inter-quartile ranges 0.03-0.06 box units. Recompute with :func:`box_template_from_points`.
HAAR_BOX_TEMPLATE = np.array(
    [[-0.1807, -0.1100], [0.1807, -0.1100], [0.0, 0.0821], [-0.1474, 0.2734], [0.1474, 0.2734]], np.float64)


@dataclass
class Face:
    """One detected face.

    Attributes
    ----------
    box : ndarray float64, shape (4,)
        ``x0, y0, x1, y1`` in pixels of the image given to the detector.
    score : float
        Detector confidence (insightface: probability; OpenCV: the cascade's level weight, not a probability).
    five_points : ndarray float64 (5, 2) or None
        Image-left eye, image-right eye, nose tip, image-left and image-right mouth corner (the order of
        insightface's ArcFace template), pixels; None when the detector gives only a box.
    """

    box: np.ndarray
    score: float = 1.0
    five_points: Optional[np.ndarray] = None

    def __post_init__(self):
        self.box = np.asarray(self.box, np.float64).reshape(4)
        self.score = float(self.score)
        if self.five_points is not None:
            self.five_points = np.asarray(self.five_points, np.float64).reshape(5, 2)


class DetectorUnavailable(DetectorError, RuntimeError):
    """A detector cannot be used on this machine (missing model file or package); the message says how to fix it."""


def five_points_from_box(box, template=None):
    """Five initial alignment points placed in a face box.

    Parameters
    ----------
    box : array_like (4,)
        ``x0, y0, x1, y1``, pixels.
    template : array_like (5, 2), optional
        Points in box units, ``point = centre + template * (width, height)``; default
        :data:`DEFAULT_BOX_TEMPLATE` (the ArcFace template with its 112 x 112 crop stretched onto the box).

    Returns
    -------
    ndarray float64 (5, 2)
    """
    b = np.asarray(box, np.float64).reshape(4)
    t = DEFAULT_BOX_TEMPLATE if template is None else np.asarray(template, np.float64).reshape(5, 2)
    centre = np.array([(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0])
    size = np.array([b[2] - b[0], b[3] - b[1]])
    if not np.isfinite(b).all() or (size <= 0).any():
        raise ValueError("bad face box %s" % b.tolist())
    return centre + t * size


def box_template_from_points(boxes, five_points):
    """Median of ``(five points - box centre) / box size`` over faces: the ``box_template`` of a detector.

    Parameters
    ----------
    boxes : array_like (M, 4)
        Detector boxes ``x0, y0, x1, y1``.
    five_points : array_like (M, 5, 2)
        Reference five points of the same faces (e.g. from ground-truth landmarks).

    Returns
    -------
    ndarray float64 (5, 2)
    """
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    p = np.asarray(five_points, np.float64).reshape(-1, 5, 2)
    if len(b) == 0 or len(b) != len(p):
        raise ValueError("need as many boxes as five-point sets (> 0), got %d and %d" % (len(b), len(p)))
    centre = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], 1)[:, None]
    size = np.stack([b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)[:, None]
    return np.median((p - centre) / size, axis=0)


def _check_rgb(image):
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError("detectors take an RGB uint8 (H, W, 3) image, got %s %s" % (img.dtype, img.shape))
    return img


# ------------------------------------------------------------------------------------------------- YuNet

def cache_dir():
    """The user cache folder of downloaded models: ``$LOTR_CACHE_DIR``, else ``$XDG_CACHE_HOME/lotr_gluon``,
    else ``~/.cache/lotr_gluon`` (models in ``<cache>/models/``)."""
    root = os.environ.get("LOTR_CACHE_DIR")
    if not root:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
                            "lotr_gluon")
    return os.path.join(os.path.expanduser(root), "models")


def file_sha256(path):
    """sha256 (hex) of a file's bytes (a model file's identity: :data:`YUNET_SHA256`, detection caches)."""
    return pooch.file_hash(path, alg="sha256")


def find_yunet_model(path=None):
    """Where the YuNet model is: ``(path, found, searched)``.

    Search order: ``path`` (an explicit file: the ``--det-model`` / ``yunet_model`` option), the environment
    variable ``LOTR_YUNET_MODEL``, ``<cache_dir()>/face_detection_yunet.onnx``, then
    ``<repo>/../shared/models/face_detection_yunet.onnx`` (:data:`SHARED_MODELS_DIR`). An explicit ``path`` or
    ``$LOTR_YUNET_MODEL`` is the only candidate (no fallback to the others when it is missing).

    Returns
    -------
    (str, bool, list of str)
        The first existing candidate (else the cache path, where :func:`fetch_yunet_model` puts it), whether it
        exists, and the candidates searched.
    """
    explicit = path or os.environ.get("LOTR_YUNET_MODEL")
    if explicit:
        p = os.path.expanduser(str(explicit))
        return p, os.path.isfile(p), [p]
    cached = os.path.join(cache_dir(), YUNET_FILE)
    candidates = [cached, os.path.join(SHARED_MODELS_DIR, YUNET_FILE)]
    for c in candidates:
        if os.path.isfile(c):
            return c, True, candidates
    return cached, False, candidates


def fetch_yunet_model(dest=None, url=YUNET_URL, sha256=YUNET_SHA256, timeout=20.0):
    """Download YuNet once into the cache and check its sha256 (:func:`pooch.retrieve`).

    Parameters
    ----------
    dest : str, optional
        Target file (default ``<cache_dir()>/face_detection_yunet.onnx``).
    url : str
        Source (default :data:`YUNET_URL`; any http(s) / ftp URL).
    sha256 : str
        Expected digest (default :data:`YUNET_SHA256`, from ``../shared/models/README.md``).
    timeout : float
        Seconds to wait for the server.

    Returns
    -------
    str
        ``dest``, written only after the digest matched (pooch downloads to a temporary file and moves it).

    Raises
    ------
    DetectorUnavailable
        Offline or the download failed (the message names the URL and where to put the file by hand), or the
        file's sha256 differs (nothing is kept).
    """
    dest = dest or os.path.join(cache_dir(), YUNET_FILE)
    hint = ("put %s (OpenCV Zoo, models/face_detection_yunet, sha256 %s) at %s or pass its path (--det-model PATH "
            "or LOTR_YUNET_MODEL), or use another detector (--detector insightface|opencv)"
            % (YUNET_FILE, sha256[:12] + "...", dest))
    folder, name = os.path.split(os.path.abspath(dest))
    try:
        return pooch.retrieve(url, known_hash="sha256:" + sha256, fname=name, path=folder, progressbar=False,
                              downloader=pooch.HTTPDownloader(timeout=timeout))
    except ValueError as e:  # pooch: the downloaded file's hash does not match (nothing is kept)
        raise DetectorUnavailable("downloaded YuNet model from %s does not have the sha256 %s (%s); not kept. %s"
                                  % (url, sha256, " ".join(str(e).split()), hint)) from None
    except (OSError, requests.RequestException) as e:  # offline, HTTP errors, an unwritable cache
        raise DetectorUnavailable("YuNet model not found locally and the download from %s failed (%s: "
                                  "offline?); %s" % (url, type(e).__name__, hint)) from None


class YuNetDetector:
    """OpenCV Zoo's YuNet face detector (``cv2.FaceDetectorYN``): boxes and five points.

    Parameters
    ----------
    model : str, optional
        Path of the ONNX file; None = :func:`find_yunet_model` (``$LOTR_YUNET_MODEL``, the cache, the shared
        folder), and with ``download`` :func:`fetch_yunet_model` when it is nowhere.
    score_threshold : float
        Minimum face score (0.6; OpenCV Zoo's demo uses 0.9, which drops some of the 0.91-0.94 faces of a
        group photo when they are downscaled).
    nms_threshold : float
        NMS IoU threshold (OpenCV Zoo's 0.3).
    top_k : int
        Candidates kept before NMS (OpenCV Zoo's 5000).
    max_side : int
        Images whose longer side exceeds this are downscaled for detection (speed; YuNet's anchors are made for
        faces of about 10-300 px at the network input); boxes and points are returned in the original pixels.
        1280 keeps insightface's group photo ``t1.jpg`` at full size: at 640 its 40 px inter-ocular faces get
        five points up to 0.23 inter-ocular distances away from the full-size ones; on the Datatang
        validation photos 640 and 1280 give the same points.
    download : bool
        Fetch the model into the cache when no local file is found.

    Raises
    ------
    DetectorUnavailable
        No model file (and the download is off or failed; the message lists the searched paths), or OpenCV
        cannot load the file (not a YuNet ONNX model, or an OpenCV without ``FaceDetectorYN``).
    """

    name = "yunet"
    has_five_points = True

    def __init__(self, model=None, score_threshold=0.6, nms_threshold=0.3, top_k=5000, max_side=1280,
                 download=True):
        path, found, searched = find_yunet_model(model)
        if not found:
            if model or os.environ.get("LOTR_YUNET_MODEL") or not download:
                raise DetectorUnavailable(
                    "YuNet face detector model not found (searched %s)%s; get %s from OpenCV Zoo (%s, sha256 %s) "
                    "and pass its path (--det-model PATH or LOTR_YUNET_MODEL), or put it in %s"
                    % (", ".join(searched), "" if download else ", download off", YUNET_FILE, YUNET_URL, YUNET_SHA256,
                       cache_dir()))
            path = fetch_yunet_model(path)
        if not hasattr(cv2, "FaceDetectorYN"):
            raise DetectorUnavailable("this OpenCV (%s) has no cv2.FaceDetectorYN (OpenCV >= 4.5.4 needed)"
                                      % cv2.__version__)
        try:
            self.detector = cv2.FaceDetectorYN.create(path, "", (320, 320), float(score_threshold),
                                                      float(nms_threshold), int(top_k))
        except cv2.error as e:
            msg = " ".join(str(e).split())
            raise DetectorUnavailable("OpenCV cannot load %s as a YuNet model (%s)" % (path, msg[-200:])) from None
        self.model_path = path
        self.score_threshold = float(score_threshold)
        self.max_side = int(max_side)

    def __call__(self, image):
        return self.detect(image)

    def detect(self, image):
        """List of :class:`Face` with five points (image-left eye, image-right eye, nose tip, image-left and
        image-right mouth corner: YuNet's order "right eye, left eye, ..." is the subject's right first, which
        is the image's left), highest score first."""
        img = _check_rgb(image)
        h, w = img.shape[:2]
        scale = min(1.0, self.max_side / float(max(h, w)))
        bgr = np.ascontiguousarray(img[:, :, ::-1])
        if scale < 1.0:
            bgr = cv2.resize(bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        self.detector.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, rows = self.detector.detect(bgr)
        faces = []
        if rows is None:
            return faces
        for r in np.asarray(rows, np.float64).reshape(-1, 15):
            x, y, bw, bh = r[:4] / scale
            faces.append(Face(box=[x, y, x + bw, y + bh], score=float(r[14]), five_points=r[4:14].reshape(5, 2) / scale))
        faces.sort(key=lambda f: -f.score)
        return faces

    def __repr__(self):
        return "YuNetDetector(%r)" % self.model_path


# ------------------------------------------------------------------------------------------- insightface

def find_insightface_model(name_or_path=None, root=None):
    """Resolve an insightface detector file.

    Parameters
    ----------
    name_or_path : str, optional
        A path to an ``.onnx`` file, a model-pack name (``buffalo_l``, ``buffalo_s``, ``antelopev2``, ...), or
        None to search the packs of :data:`INSIGHTFACE_PACKS` in order.
    root : str, optional
        insightface's root folder; default ``$INSIGHTFACE_HOME`` or ``~/.insightface`` (models are in
        ``<root>/models/<pack>/``).

    Returns
    -------
    (path, found) : (str, bool)
        The file (the first candidate when none exists) and whether it exists.
    """
    root = os.path.expanduser(root or os.environ.get("INSIGHTFACE_HOME") or "~/.insightface")
    if name_or_path and (str(name_or_path).endswith(".onnx") or os.sep in str(name_or_path)):
        path = os.path.expanduser(str(name_or_path))
        return path, os.path.isfile(path)
    packs = [p for p in INSIGHTFACE_PACKS if name_or_path in (None, p[0])]
    candidates = [os.path.join(root, "models", pack, f) for pack, f in packs]
    if name_or_path and not packs:  # an unknown pack name: any det_*/scrfd_* file in its folder
        folder = os.path.join(root, "models", str(name_or_path))
        found = sorted(f for f in (os.listdir(folder) if os.path.isdir(folder) else [])
                       if f.endswith(".onnx") and f.startswith(("det_", "scrfd_", "retinaface")))
        candidates = [os.path.join(folder, f) for f in found] or [os.path.join(folder, "det_10g.onnx")]
    for c in candidates:
        if os.path.isfile(c):
            return c, True
    return candidates[0], False


class InsightFaceDetector:
    """insightface RetinaFace / SCRFD detector (ONNX, onnxruntime on the CPU) with five points.

    Parameters
    ----------
    model : str, optional
        ``.onnx`` path or insightface model-pack name (see :func:`find_insightface_model`); None = the first
        pack found under ``root``.
    det_size : int or (int, int)
        Network input (width, height); the image is resized to fit and zero-padded, as
        ``insightface.app.FaceAnalysis`` (default 640).
    det_thresh : float
        Score threshold (insightface's default 0.5).
    nms_thresh : float
        NMS IoU threshold (insightface's default 0.4).
    root : str, optional
        insightface's root folder (``~/.insightface``).
    providers : list of str
        onnxruntime execution providers (default CPU).

    Raises
    ------
    DetectorUnavailable
        The model file is missing (the message names the path and how to get it), insightface / onnxruntime
        are not installed, or the file is not a RetinaFace/SCRFD detector.
    """

    name = "insightface"

    def __init__(self, model=None, det_size=640, det_thresh=0.5, nms_thresh=0.4, root=None,
                 providers=("CPUExecutionProvider",)):
        path, found = find_insightface_model(model, root)
        if not found:
            raise DetectorUnavailable(
                "insightface detector model not found: %s. The weights are not in the insightface package; "
                "get a model pack (e.g. buffalo_l.zip with det_10g.onnx, or buffalo_s.zip with det_500m.onnx) "
                "from insightface's model zoo (github.com/deepinsight/insightface, python-package README; "
                "insightface.app.FaceAnalysis downloads it when online), unzip it into %s, or pass the .onnx "
                "path. Without it use the OpenCV detector (--detector opencv)."
                % (path, os.path.join(os.path.expanduser(root or "~/.insightface"), "models", "<pack>")))
        try:
            import contextlib
            import io
            from insightface.model_zoo import get_model
        except ImportError as e:
            raise DetectorUnavailable("insightface is not installed (%s): pip install insightface onnxruntime"
                                      % e) from None
        with contextlib.redirect_stdout(io.StringIO()):  # get_model prints the providers
            model_obj = get_model(path, providers=list(providers))
        if model_obj is None or getattr(model_obj, "taskname", None) != "detection":
            raise DetectorUnavailable("%s is not an insightface RetinaFace/SCRFD detector (got %s)"
                                      % (path, type(model_obj).__name__))
        if isinstance(det_size, (int, np.integer)):
            det_size = (int(det_size), int(det_size))
        self.det_size = tuple(int(v) for v in det_size)
        self.model_path = path
        self.model = model_obj
        # prepare(input_size=...) is ignored (with a printed warning) for models with a fixed input size
        self.model.det_thresh = float(det_thresh)
        self.model.nms_thresh = float(nms_thresh)
        if self.model.input_size is None:
            self.model.input_size = self.det_size
        self.has_five_points = bool(getattr(self.model, "use_kps", False))

    def __call__(self, image):
        return self.detect(image)

    def detect(self, image):
        """List of :class:`Face` (with five points when the model has them), highest score first."""
        img = _check_rgb(image)
        bgr = np.ascontiguousarray(img[:, :, ::-1])  # insightface works on OpenCV's BGR (swapRB in its blob)
        det, kps = self.model.detect(bgr)
        faces = []
        for i in np.argsort(-det[:, 4]) if len(det) else []:
            pts = None if kps is None else kps[i]
            faces.append(Face(box=det[i, :4], score=float(det[i, 4]), five_points=pts))
        return faces

    def __repr__(self):
        return "InsightFaceDetector(%r, det_size=%s)" % (self.model_path, self.det_size)


# ---------------------------------------------------------------------------------------------- OpenCV

def haar_cascade_path(file="haarcascade_frontalface_default.xml"):
    """Path of a Haar cascade shipped with the installed OpenCV wheel.

    Raises
    ------
    DetectorUnavailable
        When this OpenCV build has no ``cv2.data`` folder or the file is not in it.
    """
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    path = os.path.join(folder, file) if folder else None
    if not path or not os.path.isfile(path):
        raise DetectorUnavailable(
            "OpenCV Haar cascade %s not found (cv2.data.haarcascades = %r). The opencv-python and "
            "opencv-python-headless wheels ship it; reinstall one of them, or pass cascade=PATH."
            % (file, folder))
    return path


class OpenCVDetector:
    """OpenCV Viola-Jones frontal-face detector (Haar cascade shipped in the OpenCV wheel). Boxes only.

    Parameters
    ----------
    cascade : str, optional
        Cascade XML; default ``cv2.data.haarcascades + 'haarcascade_frontalface_default.xml'``.
    max_side : int
        Images whose longer side exceeds this are downscaled for detection (speed); boxes are returned in
        the original pixels.
    scale_factor, min_neighbors : float, int
        ``cv2.CascadeClassifier.detectMultiScale`` parameters (1.1, 5).
    min_size : float
        Smallest face side, as a fraction of the (detection image's) shorter side.
    overlap : float
        A box is dropped when more than this fraction of the smaller of it and a higher-scoring box is
        their intersection (the cascade fires on mouths inside faces and on large regions around faces).
        1 keeps every box.

    Attributes
    ----------
    box_template : ndarray (5, 2)
        Where the five points lie in this detector's boxes (:data:`HAAR_BOX_TEMPLATE`), for
        :func:`five_points_from_box`.
    """

    name = "opencv"
    has_five_points = False
    box_template = HAAR_BOX_TEMPLATE

    def __init__(self, cascade=None, max_side=800, scale_factor=1.1, min_neighbors=5, min_size=0.08, overlap=0.5):
        path = cascade or haar_cascade_path()
        if not os.path.isfile(path):
            raise DetectorUnavailable("Haar cascade file not found: %s" % path)
        self.cascade_path = path
        self.classifier = cv2.CascadeClassifier(path)
        if self.classifier.empty():
            raise DetectorUnavailable("cannot load the Haar cascade %s" % path)
        self.max_side = int(max_side)
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_size = float(min_size)
        self.overlap = float(overlap)

    def __call__(self, image):
        return self.detect(image)

    def detect(self, image):
        """List of :class:`Face` (``five_points=None``), highest score first."""
        img = _check_rgb(image)
        h, w = img.shape[:2]
        scale = min(1.0, self.max_side / float(max(h, w)))
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            grey = cv2.resize(grey, (max(1, round(w * scale)), max(1, round(h * scale))),
                              interpolation=cv2.INTER_AREA)
        grey = cv2.equalizeHist(grey)
        m = max(16, int(self.min_size * min(grey.shape)))
        rects, _, weights = self.classifier.detectMultiScale3(
            grey, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(m, m),
            outputRejectLevels=True)
        faces = []
        weights = np.asarray(weights, np.float64).reshape(-1)
        for (x, y, bw, bh), s in zip(np.asarray(rects).reshape(-1, 4), weights):
            box = np.array([x, y, x + bw, y + bh], np.float64) / scale
            faces.append(Face(box=box, score=float(s), five_points=None))
        faces.sort(key=lambda f: -f.score)
        return _suppress_overlaps(faces, self.overlap)

    def __repr__(self):
        return "OpenCVDetector(%r)" % os.path.basename(self.cascade_path)


def _suppress_overlaps(faces, thresh):
    """Greedy NMS on intersection over the smaller box (``faces`` sorted by score, best first)."""
    if thresh >= 1.0:
        return faces
    kept = []
    for f in faces:
        a = f.box
        ok = True
        for k in kept:
            b = k.box
            iw = min(a[2], b[2]) - max(a[0], b[0])
            ih = min(a[3], b[3]) - max(a[1], b[1])
            if iw > 0 and ih > 0:
                smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
                if iw * ih > thresh * smaller:
                    ok = False
                    break
        if ok:
            kept.append(f)
    return kept


def get_detector(name="auto", **kw):
    """A face detector by name.

    Parameters
    ----------
    name : {'auto', 'yunet', 'insightface', 'opencv'}
        ``'auto'``: :class:`YuNetDetector` when its model file is found (:func:`find_yunet_model`) or can be
        fetched (``download``), else :class:`InsightFaceDetector` when its model file is on the machine
        (``kw['model']`` or a model pack under ``~/.insightface/models``), else :class:`OpenCVDetector` (the Haar
        cascade, last resort; a warning says why the others were not used when they failed).
    **kw
        Passed to the detector: ``yunet_model`` (YuNet's file; with ``name='yunet'`` also ``model``),
        ``download``, ``score_threshold``, ``max_side`` ... for YuNet; ``model``, ``det_size``, ``root`` ... for
        insightface; ``cascade``, ... for OpenCV. Each detector gets the keywords its constructor takes.

    Returns
    -------
    detector with ``detect(rgb) -> list of Face`` and ``name`` ('yunet', 'insightface' or 'opencv').

    Raises
    ------
    DetectorUnavailable
        ``'yunet'`` without its model file (offline, or the download is off); ``'insightface'`` without its
        model file; ``'opencv'`` without the cascade.
    ValueError
        An unknown name.
    """
    import inspect

    def accepted(cls):
        params = inspect.signature(cls.__init__).parameters
        return {k: v for k, v in kw.items() if k in params}

    def yunet_kw():
        ykw = accepted(YuNetDetector)
        ykw["model"] = kw.get("yunet_model") or (kw.get("model") if name == "yunet" else None)
        return ykw

    if name == "yunet":
        return YuNetDetector(**yunet_kw())
    if name == "insightface":
        return InsightFaceDetector(**accepted(InsightFaceDetector))
    if name == "opencv":
        return OpenCVDetector(**accepted(OpenCVDetector))
    if name == "auto":
        why = []
        try:
            return YuNetDetector(**yunet_kw())
        except DetectorUnavailable as e:
            why.append("YuNet: %s" % e)
        ikw = accepted(InsightFaceDetector)
        _, found = find_insightface_model(ikw.get("model"), ikw.get("root"))
        if found:
            try:
                return InsightFaceDetector(**ikw)
            except DetectorUnavailable as e:
                why.append("insightface: %s" % e)
        detector = OpenCVDetector(**accepted(OpenCVDetector))
        warnings.warn("face detector: using OpenCV's Haar cascade (boxes only, misses and false boxes on hard "
                      "photos) because %s" % "; ".join(why))
        return detector
    raise ValueError("unknown detector %r; valid: %s" % (name, ", ".join(DETECTORS)))
