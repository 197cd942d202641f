"""WFLW 98 points: official list files, one face per line (``list_98pt_rect_attr_{train,test}.txt``)."""
from pathlib import Path

import numpy as np

from ..schemes import WFLW_SUBSETS
from .core import (FaceSample, LandmarkFileError, check_on_error, collect_samples, parse_number, register_format,
                   require_file)

__all__ = ["load_wflw", "WFLW_FIELDS"]

#: Fields of a WFLW line: 98 (x, y) pairs, 4 box values, 6 attribute flags, the image path.
WFLW_FIELDS = 98 * 2 + 4 + 6 + 1


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
    check_on_error(on_error)
    annotation_file = Path(annotation_file)
    if not annotation_file.is_file():
        raise FileNotFoundError("WFLW annotation file %s not found" % annotation_file)
    seen = {}

    def sample(numbered_line):
        lineno, raw = numbered_line
        tok = raw.split()
        if not tok:
            return None
        if len(tok) != WFLW_FIELDS:
            raise LandmarkFileError(
                annotation_file, "expected %d fields (196 coordinates, 4 box values, 6 attribute flags, "
                "image path), got %d" % (WFLW_FIELDS, len(tok)), lineno)
        vals = [parse_number(t, annotation_file, lineno, "value") for t in tok[:200]]
        flags = []
        for t in tok[200:206]:
            if t not in ("0", "1"):
                raise LandmarkFileError(annotation_file, "attribute flag must be 0 or 1, got %r" % t, lineno)
            flags.append(int(t))
        rel = tok[206]
        image_path = require_file(Path(image_root) / rel, annotation_file, lineno)
        stem = Path(rel).stem  # a good line: count the faces of its image
        k = seen.get(stem, 0)
        seen[stem] = k + 1
        pts = np.array(vals[:196], np.float32).reshape(98, 2)
        return FaceSample("%s_%d" % (stem, k), image_path, pts, None, np.array(vals[196:200]),
                          dict(zip(WFLW_SUBSETS, flags)), source=str(annotation_file), source_line=lineno)

    with open(annotation_file, "r", encoding="utf-8") as f:
        return collect_samples(enumerate(f, 1), sample, on_error)


@register_format("wflw")
def _load_split(root, split, annotation, on_error, num_points):
    """:func:`lotr_gluon.data.formats.core.load_samples` for ``wflw``: ``annotation`` (or ``split``) names the
    list file, as given, relative to ``root``, or to ``root/WFLW_annotations/list_98pt_rect_attr_train_test``;
    images under ``root/WFLW_images`` when that folder exists, else under ``root``."""
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
