"""The shared annotation-reading core: samples, errors, images, the parsing helpers and the format registry.

Every format module of :mod:`lotr_gluon.data.formats` (``datatang``, ``jd``, ``wflw``, ``w300``) imports this
module, registers its split loader in :data:`FORMATS` with :func:`register_format`, and returns a list of
:class:`FaceSample` (one face each) with landmarks in pixels of the original image, (x, y), OpenCV's pixel-centre
convention (see :mod:`lotr_gluon.data.align`). Loaders check the point count, non-numeric and non-finite values,
and that the image file exists. Images are decoded, and points are checked against the image size, by
:func:`validate_samples` (called by :class:`lotr_gluon.data.dataset.AlignedFaceDataset` when a split is loaded,
before any training): an empty, truncated or undecodable image raises :class:`ImageReadError`, points further
outside the image than ``outside_margin`` times its size raise :class:`LandmarkFileError`.

``on_error='raise'`` (default) raises :class:`LandmarkFileError` at the first bad sample; ``on_error='warn'``
skips the bad sample with a :class:`LandmarkFileWarning` naming the file, the line (when there is one) and the
reason. Configuration errors (a missing root folder, split file or annotation list) always raise.

This module imports no format module: :data:`FORMATS` is filled when :mod:`lotr_gluon.data.formats` is imported.
"""
import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional

import cv2
import numpy as np
from PIL import Image

from ...errors import DataError

__all__ = [
    "FaceSample", "LandmarkFileError", "ImageReadError", "LandmarkFileWarning", "read_image", "to_rgb", "COLORS",
    "check_image", "exif_orientation", "apply_orientation", "check_unique", "validate_samples", "OUTSIDE_MARGIN", "IMAGE_EXTENSIONS", "FORMATS", "register_format", "load_samples",
]

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



# ------------------------------------------------------------------------------ helpers of the format modules

def check_on_error(on_error):
    """ValueError unless ``on_error`` is one of :data:`ON_ERROR`."""
    if on_error not in ON_ERROR:
        raise ValueError("on_error must be one of %s, got %r" % (ON_ERROR, on_error))


def report_bad_sample(err, on_error, stacklevel=3):
    """Raise ``err`` (``on_error='raise'``) or warn about the skipped sample with a :class:`LandmarkFileWarning`.

    ``stacklevel`` as in :func:`warnings.warn`; the default 3 names the caller of the function that calls this one.
    """
    if on_error == "raise":
        raise err
    warnings.warn("skipping sample: %s" % err, LandmarkFileWarning, stacklevel=stacklevel)


def collect_samples(items, make_sample, on_error):
    """``[make_sample(item) for item in items]``, without the None results and the bad samples.

    Parameters
    ----------
    items : iterable
        One entry per candidate sample (an annotation file, a numbered line, ...).
    make_sample : callable
        ``item -> FaceSample``, or None for an item that holds no sample (a blank line); raises
        :class:`LandmarkFileError` for a bad one.
    on_error : {'raise', 'warn'}
        What :func:`report_bad_sample` does with a :class:`LandmarkFileError`.

    Returns
    -------
    list of FaceSample
        In the order of ``items``. The warning of a skipped sample names the caller of the loader, as a direct
        :func:`report_bad_sample` call from the loader would.
    """
    samples = []
    for item in items:
        try:
            sample = make_sample(item)
        except LandmarkFileError as err:
            report_bad_sample(err, on_error, stacklevel=4)
            continue
        if sample is not None:
            samples.append(sample)
    return samples


def short_repr(value, limit=60):
    """``repr(value)`` cut to about ``limit`` characters, saying how many items a long list held, so that an
    error message stays one readable line."""
    text = repr(value)
    if len(text) <= limit:
        return text
    count = " (%d items)" % len(value) if isinstance(value, (list, tuple, dict)) else ""
    return text[:limit] + "..." + count


def parse_number(token, path, line, what="coordinate"):
    """``float(token)``; a non-numeric or non-finite token raises :class:`LandmarkFileError` naming ``what``."""
    try:
        v = float(token)
    except (TypeError, ValueError):
        raise LandmarkFileError(path, "non-numeric %s %r" % (what, token), line) from None
    if not np.isfinite(v):
        raise LandmarkFileError(path, "non-finite %s %r" % (what, token), line)
    return v


def read_text_lines(path):
    """The non-blank lines of a UTF-8 text file, stripped, as ``[(1-based line number, text), ...]``.

    Raises :class:`LandmarkFileError` (``"not text: ..."``) when the file does not decode as UTF-8.
    """
    try:
        with open(path, "r", encoding="utf-8") as f:
            lines = [(i + 1, ln.strip()) for i, ln in enumerate(f)]
    except UnicodeDecodeError as e:
        raise LandmarkFileError(path, "not text: %s" % e) from None
    return [(i, ln) for i, ln in lines if ln]


def parse_xy_line(path, lineno, text):
    """One ``x y`` line of a landmark text file as a float pair (JD-landmark ``.txt``, iBUG ``.pts``).

    Raises :class:`LandmarkFileError` naming ``path`` and ``lineno`` when the line is not two finite numbers.
    """
    tok = text.split()
    if len(tok) != 2:
        raise LandmarkFileError(path, "expected 'x y', got %r" % text, lineno)
    return parse_number(tok[0], path, lineno, "x"), parse_number(tok[1], path, lineno, "y")


def find_image(base, path_for_errors, line=None):
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


def require_file(path, path_for_errors, line=None):
    """``str(path)`` when it is a file, else :class:`LandmarkFileError` on ``path_for_errors`` (and ``line``)."""
    if not Path(path).is_file():
        raise LandmarkFileError(path_for_errors, "image file not found: %s" % path, line)
    return str(path)


def resolve_path(path, root):
    """``path`` as given if it exists, else relative to ``root``; FileNotFoundError if neither exists."""
    p = Path(path)
    if p.exists():
        return p
    if root is not None and not p.is_absolute() and (Path(root) / p).exists():
        return Path(root) / p
    raise FileNotFoundError("%s not found (also tried relative to %s)" % (path, root))


def subfolder(root, split):
    """``root`` (split None), the absolute ``split``, or ``root / split``."""
    if split is None:
        return Path(root)
    p = Path(split)
    if p.is_absolute():
        return p
    return Path(root) / p


def read_names(list_file):
    """Names listed one per line (blank lines and '#' comments skipped; a known extension is stripped).

    Raises
    ------
    LandmarkFileError
        A name listed twice (its face would be trained on or scored twice); the message gives both lines.
    """
    names, first = [], {}
    with open(list_file, "r", encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            s = raw.split("#", 1)[0].strip()
            if not s:
                continue
            for ext in (".json",) + IMAGE_EXTENSIONS:
                if s.endswith(ext):
                    s = s[: -len(ext)]
                    break
            if s in first:
                raise LandmarkFileError(list_file, "%r is listed twice (lines %d and %d): each face of a split must "
                                        "be listed once" % (s, first[s], lineno), lineno)
            first[s] = lineno
            names.append(s)
    return names


def check_unique(samples, source):
    """Raise :class:`LandmarkFileError` on ``source`` when two samples are the same face: the same image and the
    same landmarks (a line repeated in an annotation list); several faces of one image are kept."""
    seen = {}
    for s in samples:
        key = (s.image_path, s.landmarks.tobytes())
        if key in seen:
            raise LandmarkFileError(source, "the face of %s is listed twice%s: each face of a split must be listed "
                                    "once" % (s.image_path, "" if s.source_line is None or seen[key] is None else
                                              " (lines %d and %d)" % (seen[key], s.source_line)), s.source_line)
        seen[key] = s.source_line
    return samples


# ------------------------------------------------------------------------------------------------- images

#: EXIF Orientation tag (0x0112) -> the array operation that turns the stored pixels into the image as displayed
#: (the same as Pillow's ``ImageOps.exif_transpose``): 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90
#: clockwise, 7 transverse, 8 rotate 90 counter-clockwise.
_ORIENT = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1], 5: lambda a: a.swapaxes(0, 1),
           6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, 2).swapaxes(0, 1), 8: lambda a: np.rot90(a, 1)}


def _header(data):
    """((height, width) as displayed, EXIF orientation 1-8) from an encoded image's header (Pillow, no decode);
    (None, 1) when Pillow cannot parse it."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - any failure: no orientation, size from a full decode
        return None, 1
    orientation = orientation if orientation in _ORIENT else 1
    return ((int(w), int(h)) if orientation >= 5 else (int(h), int(w))), orientation


def exif_orientation(path):
    """The EXIF Orientation (1-8) of an image file; 1 when it has none (or it is not a file Pillow reads)."""
    with open(str(path), "rb") as f:
        return _header(f.read())[1]


def apply_orientation(img, orientation):
    """The stored pixels ``img`` (H, W, ...) turned as EXIF ``orientation`` (1-8) says they are displayed."""
    op = _ORIENT.get(int(orientation))
    return img if op is None else np.ascontiguousarray(op(img))


#: Channel orders of a colour image array accepted by :func:`to_rgb`.
COLORS = ("rgb", "bgr")


def to_rgb(image, color="rgb", unit_range=True, round_values=True, uint16_to_8bit=True, allow_empty=False):
    """Any image array as contiguous RGB ``uint8`` (H, W, 3).

    Parameters
    ----------
    image : ndarray
        (H, W) or (H, W, 1) grey, (H, W, 3) colour, (H, W, 4) colour with alpha (dropped). ``uint8`` is taken
        as is; ``uint16`` is scaled to 8 bits (see ``uint16_to_8bit``); other types are 0-255 levels (see
        ``unit_range``), NaN as 0, clipped to [0, 255].
    color : {'rgb', 'bgr'}
        Channel order of a colour ``image`` (OpenCV's ``imread`` and ``VideoCapture`` give BGR / BGRA).
    unit_range : bool
        A non-``uint8`` image whose maximum is <= 1 is taken as 0-1 (times 255).
    round_values : bool
        Non-``uint8`` levels are rounded to the nearest integer; False truncates them.
    uint16_to_8bit : bool
        ``uint16`` keeps its high byte; False takes its values as levels like other types.
    allow_empty : bool
        An image without pixels is returned (empty) instead of refused.

    Returns
    -------
    ndarray uint8, shape (H, W, 3)
        A view of ``image`` (no copy) when it is already contiguous RGB ``uint8``.

    Raises
    ------
    ValueError
        Another shape, an empty image (unless ``allow_empty``) or an unknown ``color``.
    """
    if color not in COLORS:
        raise ValueError("color must be 'rgb' or 'bgr', got %r" % (color,))
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if (img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (3, 4))
            or (img.size == 0 and not allow_empty)):
        raise ValueError("expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) image, got shape %s" % (img.shape,))
    if img.dtype == np.uint16 and uint16_to_8bit:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        f = img.astype(np.float64)
        if unit_range and f.size and np.nanmax(f) <= 1.0:
            f = f * 255.0
        f = np.clip(np.nan_to_num(f), 0, 255)
        img = (f.round() if round_values else f).astype(np.uint8)
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    img = img[:, :, :3]
    if color == "bgr":
        img = img[:, :, ::-1]
    return np.ascontiguousarray(img)


def read_image(path):
    """Decode an image file as RGB, as it is displayed: the EXIF Orientation is applied.

    Landmarks and boxes of this project are in pixels of this array, so a phone photo stored sideways with
    Orientation 6 gives points on the upright face, where any viewer shows it. Annotations of a dataset image
    that carries an orientation must be in those displayed pixels too.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    ndarray uint8, shape (H, W, 3)
        RGB, (H, W) as displayed. Grey images are replicated to 3 channels; alpha is dropped; 16-bit images are
        scaled to 8 bits.

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
    img = to_rgb(img, "bgr", unit_range=False, round_values=False)
    return apply_orientation(img, _header(buf.tobytes())[1])


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
        (height, width) in pixels as :func:`read_image` returns them (as displayed: EXIF orientation applied).

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
    size = _header(buf.tobytes())[0]
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
    check_on_error(on_error)
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
            report_bad_sample(err, on_error)
            continue
        kept.append(s)
    return kept


# ----------------------------------------------------------------------------------------------- registry

#: Annotation formats by name (``DATA.FORMAT``), each mapped to its split loader
#: ``load(root, split, annotation, on_error, num_points) -> list of FaceSample``. Filled by the format modules
#: (:mod:`.datatang`, :mod:`.jd`, :mod:`.wflw`, :mod:`.w300`) through :func:`register_format` when
#: :mod:`lotr_gluon.data.formats` is imported; iterates in that order: datatang, jd, wflw, 300w.
FORMATS = {}


def register_format(name):
    """Decorator: register a split loader under ``name`` in :data:`FORMATS` (a second one for a name is an error).

    The loader takes ``(root, split, annotation, on_error, num_points)`` as :func:`load_samples` passes them
    (``num_points`` None: the format's own count) and returns a list of :class:`FaceSample`.
    """
    def register(load):
        if name in FORMATS:
            raise ValueError("annotation format %r registered twice (%s, %s)"
                             % (name, FORMATS[name].__module__, load.__module__))
        FORMATS[name] = load
        return load
    return register


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
        From the loaders; a face listed twice in the split (:func:`check_unique`).
    """
    load = FORMATS.get(fmt) if isinstance(fmt, str) else None
    if load is None:
        raise ValueError("unknown annotation format %r; valid: %s" % (fmt, ", ".join(FORMATS)))
    return check_unique(load(root, split, annotation, on_error, num_points), annotation or split or root)
