"""JD-landmark 106 points: ``root/picture/NAME.jpg`` and one text file per image in ``root/landmark``."""
from pathlib import Path

import numpy as np

from .core import (FaceSample, LandmarkFileError, check_on_error, collect_samples, find_image, parse_xy_line,
                   read_text_lines, register_format, require_file, subfolder)

__all__ = ["load_jd"]


def _parse_xy_lines(path, num_points):
    """JD-landmark text: optional first line with the point count, then ``x y`` lines."""
    lines = read_text_lines(path)
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
    pts = [parse_xy_line(path, lineno, ln) for lineno, ln in lines]
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
    check_on_error(on_error)
    lm_dir, pic_dir = Path(root) / "landmark", Path(root) / "picture"
    for d in (lm_dir, pic_dir):
        if not d.is_dir():
            raise FileNotFoundError("JD-landmark folder %s not found" % d)

    def sample(lm):
        stem = lm.name[: -len(".txt")]
        pts = _parse_xy_lines(lm, num_points)
        if Path(stem).suffix:  # NAME.jpg.txt names its image
            image_path = require_file(pic_dir / stem, lm)
            name = Path(stem).stem
        else:
            image_path = find_image(pic_dir / stem, lm)
            name = stem
        return FaceSample(name, image_path, pts, source=str(lm))

    return collect_samples(sorted(lm_dir.glob("*.txt")), sample, on_error)


@register_format("jd")
def _load_split(root, split, annotation, on_error, num_points):
    """:func:`lotr_gluon.data.formats.core.load_samples` for ``jd``: ``split`` is a sub-folder of ``root``."""
    return load_jd(subfolder(root, split), num_points or 106, on_error)
