"""Annotation loaders for Datatang-106 (JSON), JD-landmark 106, WFLW 98 and 300W 68, plus detections.

Every loader returns a list of :class:`FaceSample` (one face each) with landmarks in pixels of the original
image, (x, y), OpenCV's pixel-centre convention (see :mod:`lotr_gluon.data.align`). Loaders check the point
count, non-numeric and non-finite values, and that the image file exists. Images are decoded, and points are
checked against the image size, by :func:`validate_samples` (called by
:class:`lotr_gluon.data.dataset.AlignedFaceDataset` when a split is loaded, before any training): an empty,
truncated or undecodable image raises :class:`ImageReadError`, points further outside the image than
``outside_margin`` times its size raise :class:`LandmarkFileError`.

``on_error='raise'`` (default) raises :class:`LandmarkFileError` at the first bad sample; ``on_error='warn'``
skips the bad sample with a :class:`LandmarkFileWarning` naming the file, the line (when there is one) and the
reason. Configuration errors (a missing root folder, split file or annotation list) always raise.
"""
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional

import cv2
import numpy as np

from ..errors import DataError

__all__ = [
    "FaceSample", "Detection", "LandmarkFileError", "ImageReadError", "LandmarkFileWarning", "read_image",
    "check_image", "validate_samples", "OUTSIDE_MARGIN",
    "load_datatang", "load_jd", "load_wflw", "load_300w", "load_detections", "save_detections",
    "load_samples", "FORMATS", "IMAGE_EXTENSIONS",
]

#: Image extensions tried, in this order, when an annotation does not name its image file.
IMAGE_EXTENSIONS = (".jpg", ".png", ".jpeg", ".JPG", ".PNG", ".JPEG", ".bmp")

ON_ERROR = ("raise", "warn")

#: Default of :func:`validate_samples`' ``outside_margin`` (config ``DATA.OUTSIDE_MARGIN``): a landmark may lie
#: outside the image by at most this fraction of the image width (x) or height (y). Faces cut by the image
#: border have a few points just outside (Datatang: at most 0.4 % of the image size); 0.5 only rejects
#: coordinates that cannot belong to the pictured face (e.g. 50,000 px away).
OUTSIDE_MARGIN = 0.5


class LandmarkFileError(DataError, ValueError):
    """A bad annotation, image or detection file.

    Parameters
    ----------
    path : str or Path
        The offending file.
    reason : str
        What is wrong.
    line : int, optional
        1-based line number in ``path`` when the problem is on one line.

    The message reads ``"<path>:<line>: <reason>"`` (or ``"<path>: <reason>"``); ``path``, ``line`` and
    ``reason`` are kept as attributes.
    """

    def __init__(self, path, reason, line=None):
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = self.path if line is None else "%s:%d" % (self.path, line)
        super().__init__("%s: %s" % (where, reason))

    def __reduce__(self):  # picklable across DataLoader worker processes
        return (type(self), (self.path, self.reason, self.line))


class ImageReadError(LandmarkFileError):
    """An image file that is missing or cannot be decoded."""


class LandmarkFileWarning(UserWarning):
    """Warning of a sample skipped by a loader in ``on_error='warn'`` mode."""


@dataclass
class FaceSample:
    """One annotated face.

    Attributes
    ----------
    name : str
        Sample name, unique within a split (file stem; WFLW: ``<image stem>_<face index>``).
    image_path : str
        Path of the original image.
    landmarks : ndarray float32, shape (N, 2)
        (x, y) in pixels of the original image.
    visible : ndarray bool, shape (N,), or None
        Visibility flags when the format has them (Datatang); None otherwise.
    box : ndarray float32, shape (4,), or None
        Face box (x_min, y_min, x_max, y_max) in pixels when the format has one (WFLW); None otherwise.
    attributes : dict
        Format-specific attributes (Datatang ``WorkLoad``; WFLW flags ``pose``, ``expression``,
        ``illumination``, ``makeup``, ``occlusion``, ``blur`` as int 0/1).
    source : str or None
        The annotation file the landmarks come from (named in error messages); None when unknown.
    source_line : int or None
        1-based line of ``source`` holding the face (WFLW); None otherwise.
    """

    name: str
    image_path: str
    landmarks: np.ndarray
    visible: Optional[np.ndarray] = None
    box: Optional[np.ndarray] = None
    attributes: Dict = field(default_factory=dict)
    source: Optional[str] = None
    source_line: Optional[int] = None

    def __post_init__(self):
        self.landmarks = np.asarray(self.landmarks, np.float32)
        if self.landmarks.ndim != 2 or self.landmarks.shape[1] != 2:
            raise ValueError("sample %s: landmarks must be (N, 2), got %s" % (self.name, self.landmarks.shape))
        if self.visible is not None:
            self.visible = np.asarray(self.visible, bool)
            if self.visible.shape != (len(self.landmarks),):
                raise ValueError("sample %s: visible must be (N,), got %s" % (self.name, self.visible.shape))
        if self.box is not None:
            self.box = np.asarray(self.box, np.float32).reshape(4)

    @property
    def num_points(self):
        return len(self.landmarks)


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


# ----------------------------------------------------------------------------------------------- helpers

def _check_on_error(on_error):
    if on_error not in ON_ERROR:
        raise ValueError("on_error must be one of %s, got %r" % (ON_ERROR, on_error))


def _report(err, on_error):
    """Raise ``err`` or warn about the skipped sample."""
    if on_error == "raise":
        raise err
    warnings.warn("skipping sample: %s" % err, LandmarkFileWarning, stacklevel=3)


def _number(token, path, line, what="coordinate"):
    try:
        v = float(token)
    except (TypeError, ValueError):
        raise LandmarkFileError(path, "non-numeric %s %r" % (what, token), line) from None
    if not np.isfinite(v):
        raise LandmarkFileError(path, "non-finite %s %r" % (what, token), line)
    return v


def _find_image(base, path_for_errors, line=None):
    """``base`` with the first existing extension of :data:`IMAGE_EXTENSIONS` (or ``base`` itself if it has one)."""
    base = Path(base)
    if base.suffix and base.is_file():
        return str(base)
    for ext in IMAGE_EXTENSIONS:
        cand = Path(str(base) + ext)
        if cand.is_file():
            return str(cand)
    raise LandmarkFileError(path_for_errors, "image file not found: %s(%s)" % (base, "|".join(IMAGE_EXTENSIONS)),
                            line)


def _require_file(path, path_for_errors, line=None):
    if not Path(path).is_file():
        raise LandmarkFileError(path_for_errors, "image file not found: %s" % path, line)
    return str(path)


def _resolve(path, root):
    """``path`` as given if it exists, else relative to ``root``; FileNotFoundError if neither exists."""
    p = Path(path)
    if p.exists():
        return p
    if root is not None and not p.is_absolute() and (Path(root) / p).exists():
        return Path(root) / p
    raise FileNotFoundError("%s not found (also tried relative to %s)" % (path, root))


def _read_names(list_file):
    """Names listed one per line (blank lines and '#' comments skipped; a known extension is stripped)."""
    names = []
    with open(list_file, "r", encoding="utf-8") as f:
        for raw in f:
            s = raw.split("#", 1)[0].strip()
            if not s:
                continue
            for ext in (".json",) + IMAGE_EXTENSIONS:
                if s.endswith(ext):
                    s = s[: -len(ext)]
                    break
            names.append(s)
    return names


def read_image(path):
    """Decode an image file as RGB.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    ndarray uint8, shape (H, W, 3)
        RGB. Grey images are replicated to 3 channels; alpha is dropped; 16-bit images are scaled to 8 bits.

    Raises
    ------
    ImageReadError
        When the file is missing or cannot be decoded (the message names the file).
    """
    path = str(path)
    if not os.path.isfile(path):
        raise ImageReadError(path, "image file not found")
    try:
        buf = np.fromfile(path, dtype=np.uint8)  # also works for non-ASCII paths, unlike cv2.imread
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    except (OSError, cv2.error) as e:
        raise ImageReadError(path, "cannot read image: %s" % e) from None
    if buf.size == 0:
        raise ImageReadError(path, "empty image file (0 bytes)")
    if img is None or img.size == 0:
        raise ImageReadError(path, "cannot decode image (truncated, corrupt or unsupported format)")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _header_size(path):
    """(height, width) from the image header (Pillow, no decode), or None when Pillow cannot parse it."""
    try:
        from PIL import Image
        with Image.open(path) as im:
            w, h = im.size
        return int(h), int(w)
    except Exception:  # noqa: BLE001 - any failure: fall back to a full decode
        return None


def check_image(path):
    """Check that an image file decodes completely, without keeping its pixels.

    The whole compressed stream is decoded (JPEG at 1/8 scale through libjpeg's DCT scaling, which still reads
    every entropy-coded block; other formats at full size), so an empty, truncated or corrupt file fails here
    rather than during training. OpenCV >= 4.8 returns no image for a truncated JPEG or PNG.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    (int, int)
        (height, width) in pixels as :func:`read_image` returns them (EXIF orientation not applied).

    Raises
    ------
    ImageReadError
        Missing, empty (0 bytes), truncated or undecodable file; the message names the file.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise ImageReadError(path, "image file not found")
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise ImageReadError(path, "cannot read image: %s" % e) from None
    if buf.size == 0:
        raise ImageReadError(path, "empty image file (0 bytes)")
    try:
        small = cv2.imdecode(buf, cv2.IMREAD_REDUCED_GRAYSCALE_8)
    except cv2.error as e:
        raise ImageReadError(path, "cannot decode image: %s" % e) from None
    if small is None or small.size == 0:
        raise ImageReadError(path, "cannot decode image (truncated, corrupt or unsupported format)")
    size = _header_size(path)
    if size is None:
        size = read_image(path).shape[:2]
    return size


def _check_image_or_error(path):
    try:
        return check_image(path)
    except ImageReadError as err:
        return err


def validate_samples(samples, on_error="raise", outside_margin=OUTSIDE_MARGIN, threads=None):
    """Decode every sample's image once and check its landmarks against the image size.

    Parameters
    ----------
    samples : list of FaceSample
    on_error : {'raise', 'warn'}
        'raise': raise at the first bad sample; 'warn': skip it with one :class:`LandmarkFileWarning` line
        naming the file and the cause.
    outside_margin : float or None
        A landmark (x, y) is accepted when ``-m * W <= x <= (1 + m) * W`` and ``-m * H <= y <= (1 + m) * H``
        (W x H the image size in pixels, ``m = outside_margin``); None or a negative value: no point check.
        Default :data:`OUTSIDE_MARGIN` (0.5).
    threads : int or None
        Images decoded in parallel (OpenCV releases the GIL); None: ``min(8, os.cpu_count())``. The checks are
        reported in sample order whatever the number.

    Returns
    -------
    list of FaceSample
        The good samples, in their order.

    Raises
    ------
    ImageReadError
        (``on_error='raise'``) missing, empty, truncated or undecodable image (names the image file).
    LandmarkFileError
        (``on_error='raise'``) a landmark further outside the image than the margin (names the annotation file
        and line when known, the point and the image size).
    """
    _check_on_error(on_error)
    check_points = outside_margin is not None and outside_margin >= 0
    samples = list(samples)
    threads = min(8, os.cpu_count() or 1) if threads is None else max(1, int(threads))
    paths = [s.image_path for s in samples]
    if threads > 1 and len(paths) > 1:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(threads) as pool:
            sizes = list(pool.map(_check_image_or_error, paths))
    else:
        sizes = [_check_image_or_error(p) for p in paths]
    kept = []
    for s, size_or_err in zip(samples, sizes):
        try:
            if isinstance(size_or_err, Exception):
                raise size_or_err
            h, w = size_or_err
            if check_points:
                m = float(outside_margin)
                size = np.array([w, h], np.float64)
                pts = np.asarray(s.landmarks, np.float64)
                out = ((pts < -m * size) | (pts > (1.0 + m) * size)).any(axis=1)
                if out.any():
                    k = int(np.argmax(out))
                    raise LandmarkFileError(
                        s.source or s.image_path,
                        "%d landmark(s) lie outside the %dx%d image %s by more than %g of its size "
                        "(DATA.OUTSIDE_MARGIN), e.g. point %d at (%.1f, %.1f)"
                        % (int(out.sum()), w, h, s.image_path, m, k + 1, pts[k, 0], pts[k, 1]),
                        s.source_line if s.source else None)
        except LandmarkFileError as err:
            _report(err, on_error)
            continue
        kept.append(s)
    return kept


# ---------------------------------------------------------------------------------------------- Datatang

def _parse_datatang(json_path, num_points):
    try:
        with open(json_path, "r", encoding="utf-8") as f:
            d = json.load(f)
    except json.JSONDecodeError as e:
        raise LandmarkFileError(json_path, "invalid JSON: %s" % e.msg, e.lineno) from None
    except UnicodeDecodeError as e:
        raise LandmarkFileError(json_path, "not UTF-8 text: %s" % e) from None
    if not isinstance(d, dict) or not isinstance(d.get("DataList"), list):
        raise LandmarkFileError(json_path, "no 'DataList' list")
    entries = []
    for k, e in enumerate(d["DataList"]):
        if not isinstance(e, dict) or e.get("type", "Point") != "Point":
            continue
        try:
            pid = int(e["id"])
            xy = e["coordinates"]
        except (KeyError, TypeError, ValueError):
            raise LandmarkFileError(json_path, "DataList entry %d: needs an integer 'id' and 'coordinates'" % k) \
                from None
        if not isinstance(xy, (list, tuple)) or len(xy) != 2:
            raise LandmarkFileError(json_path, "point id %d: 'coordinates' must be [x, y], got %r" % (pid, xy))
        x = _number(xy[0], json_path, None, "x of point id %d" % pid)
        y = _number(xy[1], json_path, None, "y of point id %d" % pid)
        gt = str((e.get("properties") or {}).get("globaltype", "")).lower()
        entries.append((pid, x, y, gt != "invisiblepoint"))
    if len(entries) != num_points:
        raise LandmarkFileError(json_path, "expected %d points, found %d" % (num_points, len(entries)))
    entries.sort(key=lambda t: t[0])
    ids = [t[0] for t in entries]
    if len(set(ids)) != len(ids):
        raise LandmarkFileError(json_path, "duplicate point ids")
    pts = np.array([[t[1], t[2]] for t in entries], np.float32)
    vis = np.array([t[3] for t in entries], bool)
    attrs = dict(d.get("WorkLoad") or {})
    return pts, vis, attrs


def load_datatang(root, split_file=None, num_points=106, on_error="raise"):
    """Load the Datatang 106-point sample.

    Layout: ``root/images/NAME.json`` next to ``root/images/NAME.jpg``. The JSON ``DataList`` holds
    ``{"type": "Point", "id": 1..N, "coordinates": [x, y], "properties": {"globaltype": ...}}``; points are
    sorted by ``id``; ``visible`` is False where ``globaltype`` is ``inVisiblePoint``; ``attributes`` is
    ``WorkLoad`` (race, gender, age, orientation, ...).

    Parameters
    ----------
    root : str or Path
        Dataset folder.
    split_file : str or Path, optional
        Text file of stems, one per line (as given, or relative to ``root``, e.g. ``splits/train.txt``).
        None = every JSON in ``root/images``, sorted.
    num_points : int
    on_error : {'raise', 'warn'}

    Returns
    -------
    list of FaceSample

    Raises
    ------
    FileNotFoundError
        Missing ``root/images`` or split file.
    LandmarkFileError
        A bad sample (``on_error='raise'``): invalid JSON (with its line), wrong point count, non-numeric or
        non-finite coordinate, missing JSON or image.
    """
    _check_on_error(on_error)
    img_dir = Path(root) / "images"
    if not img_dir.is_dir():
        raise FileNotFoundError("Datatang images folder %s not found" % img_dir)
    if split_file is None:
        stems = sorted(p.stem for p in img_dir.glob("*.json"))
    else:
        stems = _read_names(_resolve(split_file, root))
    samples = []
    for stem in stems:
        json_path = img_dir / (stem + ".json")
        try:
            if not json_path.is_file():
                raise LandmarkFileError(json_path, "annotation file not found (listed in %s)" % split_file)
            pts, vis, attrs = _parse_datatang(json_path, num_points)
            image_path = _find_image(img_dir / stem, json_path)
        except LandmarkFileError as err:
            _report(err, on_error)
            continue
        samples.append(FaceSample(stem, image_path, pts, vis, None, attrs, source=str(json_path)))
    return samples


# ---------------------------------------------------------------------------------------------- JD-landmark

def _parse_xy_lines(path, num_points):
    """JD-landmark text: optional first line with the point count, then ``x y`` lines."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            lines = [(i + 1, ln.strip()) for i, ln in enumerate(f)]
    except UnicodeDecodeError as e:
        raise LandmarkFileError(path, "not text: %s" % e) from None
    lines = [(i, ln) for i, ln in lines if ln]
    if not lines:
        raise LandmarkFileError(path, "empty landmark file")
    first = lines[0][1].split()
    if len(first) == 1:
        lineno = lines[0][0]
        try:
            declared = int(first[0])
        except ValueError:
            raise LandmarkFileError(path, "first line should be the point count, got %r" % first[0], lineno) \
                from None
        if declared != num_points:
            raise LandmarkFileError(path, "declares %d points, expected %d" % (declared, num_points), lineno)
        lines = lines[1:]
    pts = []
    for lineno, ln in lines:
        tok = ln.split()
        if len(tok) != 2:
            raise LandmarkFileError(path, "expected 'x y', got %r" % ln, lineno)
        pts.append((_number(tok[0], path, lineno, "x"), _number(tok[1], path, lineno, "y")))
    if len(pts) != num_points:
        raise LandmarkFileError(path, "expected %d points, found %d" % (num_points, len(pts)),
                                lines[-1][0] if lines else None)
    return np.array(pts, np.float32)


def load_jd(root, num_points=106, on_error="raise"):
    """Load JD-landmark (Grand Challenge of 106-point facial landmark localization) annotations.

    Layout: ``root/picture/NAME.jpg`` and ``root/landmark/NAME.jpg.txt`` (or ``NAME.txt``); the text holds an
    optional first line equal to the point count, then one ``x y`` line per point (image pixels).

    Parameters
    ----------
    root : str or Path
        Folder holding ``picture`` and ``landmark`` (e.g. ``.../Train``).
    num_points : int
    on_error : {'raise', 'warn'}

    Returns
    -------
    list of FaceSample
        Sorted by name (the image file stem).

    Raises
    ------
    FileNotFoundError
        Missing ``root/landmark`` or ``root/picture``.
    LandmarkFileError
        Wrong count (header or lines), a line that is not two numbers, NaN, missing image (with line numbers).
    """
    _check_on_error(on_error)
    lm_dir, pic_dir = Path(root) / "landmark", Path(root) / "picture"
    for d in (lm_dir, pic_dir):
        if not d.is_dir():
            raise FileNotFoundError("JD-landmark folder %s not found" % d)
    samples = []
    for lm in sorted(lm_dir.glob("*.txt")):
        stem = lm.name[: -len(".txt")]
        try:
            pts = _parse_xy_lines(lm, num_points)
            if Path(stem).suffix:  # NAME.jpg.txt names its image
                image_path = _require_file(pic_dir / stem, lm)
                name = Path(stem).stem
            else:
                image_path = _find_image(pic_dir / stem, lm)
                name = stem
        except LandmarkFileError as err:
            _report(err, on_error)
            continue
        samples.append(FaceSample(name, image_path, pts, source=str(lm)))
    return samples


# --------------------------------------------------------------------------------------------------- WFLW

WFLW_FIELDS = 98 * 2 + 4 + 6 + 1
_WFLW_ATTRS = ("pose", "expression", "illumination", "makeup", "occlusion", "blur")


def load_wflw(annotation_file, image_root, on_error="raise"):
    """Load WFLW from an official list file (``list_98pt_rect_attr_{train,test}.txt`` or a subset list).

    Each line: 196 coordinates (x0 y0 ... x97 y97), 4 box values (x_min y_min x_max y_max), 6 attribute flags
    (pose, expression, illumination, make-up, occlusion, blur) and the image path relative to ``image_root``
    (``WFLW_images``). Several lines may share an image (one per face).

    Parameters
    ----------
    annotation_file : str or Path
    image_root : str or Path
    on_error : {'raise', 'warn'}

    Returns
    -------
    list of FaceSample
        In file order; ``name`` = ``<image stem>_<k>`` where k counts the faces of that image from 0 in file
        order; ``box`` from the line; ``attributes`` = the six flags as int.

    Raises
    ------
    FileNotFoundError
        Missing annotation file.
    LandmarkFileError
        Wrong field count, non-numeric or non-finite value, flag not 0/1, missing image (file and line named).
    """
    _check_on_error(on_error)
    annotation_file = Path(annotation_file)
    if not annotation_file.is_file():
        raise FileNotFoundError("WFLW annotation file %s not found" % annotation_file)
    samples, seen = [], {}
    with open(annotation_file, "r", encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            tok = raw.split()
            if not tok:
                continue
            try:
                if len(tok) != WFLW_FIELDS:
                    raise LandmarkFileError(
                        annotation_file, "expected %d fields (196 coordinates, 4 box values, 6 attribute flags, "
                        "image path), got %d" % (WFLW_FIELDS, len(tok)), lineno)
                vals = [_number(t, annotation_file, lineno, "value") for t in tok[:200]]
                flags = []
                for t in tok[200:206]:
                    if t not in ("0", "1"):
                        raise LandmarkFileError(annotation_file, "attribute flag must be 0 or 1, got %r" % t,
                                                lineno)
                    flags.append(int(t))
                rel = tok[206]
                image_path = _require_file(Path(image_root) / rel, annotation_file, lineno)
            except LandmarkFileError as err:
                _report(err, on_error)
                continue
            stem = Path(rel).stem
            k = seen.get(stem, 0)
            seen[stem] = k + 1
            pts = np.array(vals[:196], np.float32).reshape(98, 2)
            samples.append(FaceSample("%s_%d" % (stem, k), image_path, pts, None, np.array(vals[196:200]),
                                      dict(zip(_WFLW_ATTRS, flags)), source=str(annotation_file),
                                      source_line=lineno))
    return samples


# --------------------------------------------------------------------------------------------------- 300W

def _parse_pts(path, one_based):
    try:
        with open(path, "r", encoding="utf-8") as f:
            lines = [(i + 1, ln.strip()) for i, ln in enumerate(f)]
    except UnicodeDecodeError as e:
        raise LandmarkFileError(path, "not text: %s" % e) from None
    lines = [(i, ln) for i, ln in lines if ln]
    n, start = None, None
    for k, (lineno, ln) in enumerate(lines):
        low = ln.lower()
        if low.startswith("version"):
            continue
        if low.startswith("n_points"):
            try:
                n = int(ln.split(":", 1)[1])
            except (IndexError, ValueError):
                raise LandmarkFileError(path, "bad n_points line %r" % ln, lineno) from None
            continue
        if ln == "{":
            start = k + 1
            break
        raise LandmarkFileError(path, "unexpected header line %r" % ln, lineno)
    if n is None or start is None:
        raise LandmarkFileError(path, "missing 'n_points:' or '{' header")
    pts = []
    end = None
    for lineno, ln in lines[start:]:
        if ln == "}":
            end = lineno
            break
        tok = ln.split()
        if len(tok) != 2:
            raise LandmarkFileError(path, "expected 'x y', got %r" % ln, lineno)
        pts.append((_number(tok[0], path, lineno, "x"), _number(tok[1], path, lineno, "y")))
    if end is None:
        raise LandmarkFileError(path, "missing closing '}'", lines[-1][0] if lines else None)
    if len(pts) != n:
        raise LandmarkFileError(path, "n_points is %d but %d points are listed" % (n, len(pts)), end)
    pts = np.array(pts, np.float32)
    return pts - 1.0 if one_based else pts


def load_300w(root_or_files, num_points=68, one_based=True, on_error="raise"):
    """Load iBUG ``.pts`` annotations (300-W, 68 points).

    ``.pts``: ``version: 1``, ``n_points: 68``, ``{``, one ``x y`` line per point, ``}``. The image has the same
    stem with .png or .jpg (see :data:`IMAGE_EXTENSIONS`).

    Parameters
    ----------
    root_or_files : str, Path, or iterable of them
        A folder (searched recursively for ``*.pts``), one ``.pts`` file, or a list of ``.pts`` files.
    num_points : int
        Expected number of points.
    one_based : bool
        iBUG/300-W coordinates are 1-based (Matlab; menpo subtracts 1 on import). True subtracts 1 so that the
        points are in the 0-based pixel-centre convention of this package.
    on_error : {'raise', 'warn'}

    Returns
    -------
    list of FaceSample
        Sorted by path; ``name`` = the ``.pts`` stem.

    Raises
    ------
    FileNotFoundError
        A missing folder or listed file.
    LandmarkFileError
        Bad header, point count, values, or missing image (with line numbers).
    """
    _check_on_error(on_error)
    if isinstance(root_or_files, (str, os.PathLike)):
        p = Path(root_or_files)
        if p.is_dir():
            files = sorted(p.rglob("*.pts"))
        elif p.is_file():
            files = [p]
        else:
            raise FileNotFoundError("300W path %s not found" % p)
    else:
        files = [Path(x) for x in root_or_files]
        for x in files:
            if not x.is_file():
                raise FileNotFoundError("300W .pts file %s not found" % x)
    samples = []
    for pts_file in files:
        try:
            pts = _parse_pts(pts_file, one_based)
            if len(pts) != num_points:
                raise LandmarkFileError(pts_file, "expected %d points, found %d" % (num_points, len(pts)))
            image_path = _find_image(pts_file.with_suffix(""), pts_file)
        except LandmarkFileError as err:
            _report(err, on_error)
            continue
        samples.append(FaceSample(pts_file.stem, image_path, pts, source=str(pts_file)))
    return samples


# --------------------------------------------------------------------------------------------- detections

def load_detections(path):
    """Load five-point face detections.

    Format (JSON object, one entry per sample name as in :class:`FaceSample`)::

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


# --------------------------------------------------------------------------------------------- dispatcher

FORMATS = ("datatang", "jd", "wflw", "300w")


def _subfolder(root, split):
    if split is None:
        return Path(root)
    p = Path(split)
    if p.is_absolute():
        return p
    return Path(root) / p


def load_samples(fmt, root, split=None, annotation=None, on_error="raise", num_points=None):
    """Load a split of a dataset in one of :data:`FORMATS`.

    Parameters
    ----------
    fmt : {'datatang', 'jd', 'wflw', '300w'}
    root : str or Path
        Dataset root.
    split : str, optional
        ``datatang``: file of stems (relative to ``root`` allowed, e.g. ``splits/train.txt``);
        ``jd`` / ``300w``: sub-folder of ``root`` (e.g. ``Train``); ``wflw``: annotation list file (as given,
        relative to ``root``, or to ``root/WFLW_annotations/list_98pt_rect_attr_train_test``).
        None: the whole ``root`` (datatang, jd, 300w).
    annotation : str, optional
        ``wflw`` only: the annotation list file (takes precedence over ``split``).
    on_error : {'raise', 'warn'}
    num_points : int, optional
        Expected point count (default: 106 datatang/jd, 98 wflw, 68 300w).

    Returns
    -------
    list of FaceSample

    Raises
    ------
    ValueError
        Unknown ``fmt`` (lists the valid ones), or wflw without an annotation file.
    FileNotFoundError, LandmarkFileError
        From the loaders.
    """
    if fmt == "datatang":
        return load_datatang(root, split, num_points or 106, on_error)
    if fmt == "jd":
        return load_jd(_subfolder(root, split), num_points or 106, on_error)
    if fmt == "300w":
        return load_300w(_subfolder(root, split), num_points or 68, on_error=on_error)
    if fmt == "wflw":
        ann = annotation or split
        if not ann:
            raise ValueError("wflw needs an annotation list file (split or annotation)")
        root = Path(root)
        cand = [Path(ann), root / ann, root / "WFLW_annotations" / "list_98pt_rect_attr_train_test" / ann]
        ann_path = next((c for c in cand if c.is_file()), None)
        if ann_path is None:
            raise FileNotFoundError("WFLW annotation file %s not found (tried %s)" % (ann, ", ".join(map(str, cand))))
        image_root = root / "WFLW_images" if (root / "WFLW_images").is_dir() else root
        samples = load_wflw(ann_path, image_root, on_error)
        if num_points is not None and num_points != 98:
            raise ValueError("WFLW has 98 points, num_points=%d" % num_points)
        return samples
    raise ValueError("unknown annotation format %r; valid: %s" % (fmt, ", ".join(FORMATS)))
