"""Layout of lotr_gluon.data.formats: one module per format, a core that imports none of them, the registry."""
import ast
import warnings
from pathlib import Path

import numpy as np
import pytest

import lotr_gluon.data.formats as formats
from lotr_gluon.data.formats import core
from lotr_gluon.data.formats.core import FaceSample, LandmarkFileWarning, load_samples, register_format

PKG_DIR = Path(formats.__file__).parent
PKG = "lotr_gluon.data.formats"
#: The module that serves each format name (written out by hand: ``300w`` is not an identifier).
EXPECTED = {"datatang": "datatang", "jd": "jd", "wflw": "wflw", "300w": "w300"}


def _imported_modules(path, package):
    """Absolute names of every module ``path`` imports (at any depth: also inside functions)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the package
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names.append(base)
            names += [base + "." + a.name for a in node.names]  # `from . import jd` imports a module too
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
                "__import__", "import_module"):
            names.append("<dynamic import>")
    return names


def test_every_format_is_served_by_its_own_module():
    assert list(formats.FORMATS) == ["datatang", "jd", "wflw", "300w"]  # the order of the old tuple
    modules = {name: load.__module__ for name, load in formats.FORMATS.items()}
    assert modules == {name: "%s.%s" % (PKG, mod) for name, mod in EXPECTED.items()}
    for mod in EXPECTED.values():
        assert (PKG_DIR / (mod + ".py")).is_file()


def test_core_imports_no_format_module_and_formats_import_only_core():
    format_modules = {"%s.%s" % (PKG, m) for m in list(EXPECTED.values()) + ["detections"]}
    core_imports = _imported_modules(PKG_DIR / "core.py", PKG)
    assert "lotr_gluon.errors" in core_imports  # the parser sees the relative `from ...errors import`
    bad = [m for m in core_imports if m.startswith(PKG + ".") or m in (PKG, "<dynamic import>")]
    assert bad == [], "core.py imports %s" % bad
    for mod in format_modules:
        siblings = {m for m in _imported_modules(PKG_DIR / (mod.rsplit(".", 1)[1] + ".py"), PKG)
                    if m.startswith(PKG + ".")}
        assert siblings and all(m == PKG + ".core" or m.startswith(PKG + ".core.") for m in siblings), \
            "%s imports %s" % (mod, sorted(siblings))


def test_register_format_serves_load_samples_and_refuses_a_second_loader(monkeypatch, tmp_path):
    monkeypatch.setattr(core, "FORMATS", dict(core.FORMATS))  # leave the real registry untouched
    calls = []

    @register_format("toy")
    def load_toy(root, split, annotation, on_error, num_points):
        calls.append((root, split, annotation, on_error, num_points))
        return [FaceSample("a", str(tmp_path / "a.jpg"), np.zeros((3, 2)))]

    out = load_samples("toy", tmp_path, split="s.txt", on_error="warn")
    assert calls == [(tmp_path, "s.txt", None, "warn", None)]
    assert [s.name for s in out] == ["a"]
    with pytest.raises(ValueError, match="'jd' registered twice"):
        register_format("jd")(load_toy)
    with pytest.raises(ValueError, match="valid: datatang, jd, wflw, 300w, toy"):
        load_samples("lapa", tmp_path)
    with pytest.raises(ValueError, match="unknown annotation format"):
        load_samples(["jd"], tmp_path)  # not a name: the same error, not a TypeError from the dict


def test_skip_warning_names_the_caller_of_the_loader(tmp_path):
    # A 2-point .pts where 68 are expected: skipped in 'warn' mode; the warning points at this file (the
    # loader's caller), as it did when each loader reported its bad samples itself.
    (tmp_path / "a.pts").write_text("version: 1\nn_points: 2\n{\n1 2\n3 4\n}\n", encoding="utf-8")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert formats.load_300w(tmp_path, on_error="warn") == []
    assert len(w) == 1 and issubclass(w[0].category, LandmarkFileWarning)
    assert "a.pts: expected 68 points, found 2" in str(w[0].message)
    assert w[0].filename == __file__


# ------------------------------------------------------------------------------------- EXIF orientation

def _stored_for(upright, orientation):
    """The pixels a camera stores so that EXIF ``orientation`` displays ``upright`` (Pillow's inverse ops)."""
    from PIL import Image
    inverse = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
               4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
               7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}[orientation]
    im = Image.fromarray(upright)
    return im if inverse is None else im.transpose(inverse)


def write_oriented(upright, orientation, path):
    """Write ``upright`` (RGB) as a file whose EXIF Orientation is ``orientation`` and that displays upright."""
    im = _stored_for(upright, orientation)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.save(str(path), exif=exif.tobytes(), **({"quality": 95} if str(path).endswith(".jpg") else {}))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_read_image_applies_exif_orientation_on_a_real_face(datatang_root, tmp_path, orientation):
    from PIL import Image, ImageOps
    upright = core.read_image(datatang_root / "images" / "000019.jpg")
    path = tmp_path / ("o%d.png" % orientation)
    write_oriented(upright, orientation, path)
    stored = np.asarray(Image.open(path).convert("RGB"))
    assert core.exif_orientation(path) == orientation
    assert (stored.shape[:2] == upright.shape[:2]) == (orientation <= 4)  # 5-8 are stored sideways
    img = core.read_image(path)
    np.testing.assert_array_equal(img, upright)  # lossless PNG: exactly the displayed pixels
    np.testing.assert_array_equal(img, np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB")))
    assert core.check_image(path) == upright.shape[:2]  # the size points are checked against: as displayed


# ------------------------------------------------------------------------------------- array -> RGB uint8
def test_to_rgb_orders_channels_and_keeps_each_value_rule():
    bgra = np.array([[[10, 20, 30, 255]]], np.uint8)
    assert formats.to_rgb(bgra, "bgr").tolist() == [[[30, 20, 10]]]
    assert formats.to_rgb(bgra).tolist() == [[[10, 20, 30]]]
    assert formats.to_rgb(np.full((2, 2, 1), 7, np.uint8)).tolist() == [[[7] * 3] * 2] * 2
    rgb = np.zeros((2, 2, 3), np.uint8)
    assert np.shares_memory(formats.to_rgb(rgb), rgb)  # no copy of contiguous RGB uint8
    # floats: 0-1 when the maximum is <= 1, rounded by default, truncated on request
    f = np.array([[0.5, 1.0]], np.float32)
    assert formats.to_rgb(f)[0, :, 0].tolist() == [128, 255]
    assert formats.to_rgb(f, round_values=False)[0, :, 0].tolist() == [127, 255]
    assert formats.to_rgb(f, unit_range=False, round_values=False)[0, :, 0].tolist() == [0, 1]
    # uint16: the high byte, or levels clipped to 255
    u = np.array([[256, 65535]], np.uint16)
    assert formats.to_rgb(u)[0, :, 0].tolist() == [1, 255]
    assert formats.to_rgb(u, uint16_to_8bit=False)[0, :, 0].tolist() == [255, 255]
    assert formats.to_rgb(np.zeros((0, 4, 3)), allow_empty=True).shape == (0, 4, 3)
    for bad in (np.zeros((0, 4, 3)), np.zeros((2, 2, 2), np.uint8)):
        with pytest.raises(ValueError):
            formats.to_rgb(bad)
    with pytest.raises(ValueError):
        formats.to_rgb(rgb, "hsv")
