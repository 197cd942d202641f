"""300-W 68 points: iBUG ``.pts`` files next to their images (module named ``w300``: a name cannot start with 3)."""
import os
from pathlib import Path

import numpy as np

from .core import (FaceSample, LandmarkFileError, check_on_error, collect_samples, find_image, parse_xy_line,
                   read_text_lines, register_format, subfolder)

__all__ = ["load_300w"]


def _parse_pts(path, one_based):
    lines = read_text_lines(path)
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
        pts.append(parse_xy_line(path, lineno, ln))
    if end is None:
        raise LandmarkFileError(path, "missing closing '}'", lines[-1][0] if lines else None)
    if len(pts) != n:
        raise LandmarkFileError(path, "n_points is %d but %d points are listed" % (n, len(pts)), end)
    pts = np.array(pts, np.float32)
    return pts - 1.0 if one_based else pts


def load_300w(root_or_files, num_points=68, one_based=True, on_error="raise"):
    """Load iBUG ``.pts`` annotations (300-W, 68 points).

    ``.pts``: ``version: 1``, ``n_points: 68``, ``{``, one ``x y`` line per point, ``}``. The image has the same
    stem with .png or .jpg (see :data:`lotr_gluon.data.formats.core.IMAGE_EXTENSIONS`).

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
    check_on_error(on_error)
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

    def sample(pts_file):
        pts = _parse_pts(pts_file, one_based)
        if len(pts) != num_points:
            raise LandmarkFileError(pts_file, "expected %d points, found %d" % (num_points, len(pts)))
        image_path = find_image(pts_file.with_suffix(""), pts_file)
        return FaceSample(pts_file.stem, image_path, pts, source=str(pts_file))

    return collect_samples(files, sample, on_error)


@register_format("300w")
def _load_split(root, split, annotation, on_error, num_points):
    """:func:`lotr_gluon.data.formats.core.load_samples` for ``300w``: ``split`` is a sub-folder of ``root``."""
    return load_300w(subfolder(root, split), num_points or 68, on_error=on_error)
