"""Datatang 106-point sample: one JSON file per image (``root/images/NAME.json`` next to ``NAME.jpg``)."""
import json
from pathlib import Path

import numpy as np

from .core import (FaceSample, LandmarkFileError, check_on_error, collect_samples, find_image, parse_number,
                   read_names, register_format, resolve_path, short_repr)

__all__ = ["load_datatang"]


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
    entries, skipped = [], []
    for k, e in enumerate(d["DataList"]):
        if not isinstance(e, dict) or e.get("type", "Point") != "Point":
            skipped.append(e)
            continue
        try:
            pid = int(e["id"])
            xy = e["coordinates"]
        except (KeyError, TypeError, ValueError):
            raise LandmarkFileError(json_path, "DataList entry %d: needs an integer 'id' and 'coordinates'" % k) \
                from None
        if not isinstance(xy, (list, tuple)) or len(xy) != 2:
            raise LandmarkFileError(json_path, "point id %d: 'coordinates' must be [x, y], got %s"
                                    % (pid, short_repr(xy)))
        x = parse_number(xy[0], json_path, None, "x of point id %d" % pid)
        y = parse_number(xy[1], json_path, None, "y of point id %d" % pid)
        gt = str((e.get("properties") or {}).get("globaltype", "")).lower()
        entries.append((pid, x, y, gt != "invisiblepoint"))
    if len(entries) != num_points:
        why = ""
        if skipped:
            why = (" (%d DataList entries are not {'type': 'Point', 'id': ..., 'coordinates': [x, y]} objects; the "
                   "first is %s)" % (len(skipped), short_repr(skipped[0])))
        raise LandmarkFileError(json_path, "expected %d points, found %d%s" % (num_points, len(entries), why))
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
    check_on_error(on_error)
    img_dir = Path(root) / "images"
    if not img_dir.is_dir():
        raise FileNotFoundError("Datatang images folder %s not found" % img_dir)
    if split_file is None:
        stems = sorted(p.stem for p in img_dir.glob("*.json"))
    else:
        stems = read_names(resolve_path(split_file, root))

    def sample(stem):
        json_path = img_dir / (stem + ".json")
        if not json_path.is_file():
            raise LandmarkFileError(json_path, "annotation file not found (listed in %s)" % split_file)
        pts, vis, attrs = _parse_datatang(json_path, num_points)
        image_path = find_image(img_dir / stem, json_path)
        return FaceSample(stem, image_path, pts, vis, None, attrs, source=str(json_path))

    return collect_samples(stems, sample, on_error)


@register_format("datatang")
def _load_split(root, split, annotation, on_error, num_points):
    """:func:`lotr_gluon.data.formats.core.load_samples` for ``datatang``: ``split`` is the file of stems."""
    return load_datatang(root, split, num_points or 106, on_error)
