"""Shared test fixtures: the read-only data folder ``<repo>/../shared``.

Locally, tests that need the shared folder skip with a message naming the missing path. In CI (the ``CI``
environment variable set to anything but ``""``, ``0``, ``false`` or ``no``) a missing shared folder is an
error: the session stops before collecting any test and pytest exits non-zero, so that a CI job with a
wrong path cannot pass with the data tests skipped. ``LOTR_SHARED_DIR`` overrides the location (tests of
this hook point it at a path that does not exist).
"""
import importlib.util
import os
from pathlib import Path

import pytest

TOOLS_DIR = Path(__file__).resolve().parent.parent / "tools"


def load_tool(name):
    """The module of ``tools/<name>.py`` (tools are scripts, not a package), for calling its ``main`` in-process."""
    spec = importlib.util.spec_from_file_location("tools_%s" % name, str(TOOLS_DIR / (name + ".py")))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

#: ``<repo>/../shared``, computed from this file's location (tests/conftest.py), unless ``LOTR_SHARED_DIR``.
SHARED_DIR = Path(os.environ.get("LOTR_SHARED_DIR") or
                  Path(__file__).resolve().parent.parent.parent / "shared").resolve()

#: Paths under the shared folder that the tests read; all must exist in CI.
REQUIRED = (("shared data folder", ()), ("dataset fixtures", ("fixtures",)),
            ("Datatang sample", ("data", "datatang106", "images")),
            ("300-W faces", ("data", "300w_public", "manifest.json")),
            ("ImageNet MobileNetV2 weights", ("models", "torchvision_mobilenet_v2-b0353104.pth")),
            ("ImageNet probe photos", ("data", "imagenet_probe", "imagenet_labels.txt")))


def in_ci(environ=None):
    """True when ``CI`` is set to a true-ish value (GitHub Actions, GitLab CI, ... set ``CI=true``)."""
    v = (os.environ if environ is None else environ).get("CI", "")
    return v.strip().lower() not in ("", "0", "false", "no")


def missing_shared(root=SHARED_DIR):
    """``[(what, path), ...]`` of the required shared paths that do not exist under ``root``."""
    return [(what, Path(root).joinpath(*parts)) for what, parts in REQUIRED if not Path(root).joinpath(*parts).exists()]


def pytest_sessionstart(session):
    missing = missing_shared()
    if missing and in_ci():
        raise pytest.UsageError(
            "CI is set but the shared data folder is incomplete: %s; the data tests would be skipped. Mount "
            "../shared (or set LOTR_SHARED_DIR) in the CI job."
            % "; ".join("%s not found at %s" % m for m in missing))


def _require(path, what):
    if not path.exists():
        if in_ci():  # unreachable after pytest_sessionstart, kept for direct use of the fixtures
            pytest.fail("%s not found at %s (CI is set: not skipping)" % (what, path), pytrace=False)
        pytest.skip("%s not found at %s" % (what, path))
    return path


def write_tiny_config(path, root, data_extra="", model_extra="", extra=""):
    """A Datatang config of a tiny LOTR (MobileNetV2-0.25 from scratch, 64 px, no crop cache) on the folder
    ``root`` (``images/``, ``splits/{train,val}.txt``), with YAML lines added to the DATA and MODEL sections
    (``data_extra``, ``model_extra``, indented by two spaces) and after them (``extra``). Returns the path as str."""
    Path(path).write_text("""DATA:
  NAME: datatang
  FORMAT: datatang
  SCHEME: datatang106
  ROOT: %s
  TRAIN_SPLIT: splits/train.txt
  VAL_SPLIT: splits/val.txt
  TEST_SPLIT: splits/val.txt
  INPUT_SIZE: 64
  CACHE: False
%sMODEL:
  NAME: lotr
  BACKBONE:
    NAME: mobilenetv2_0.25
    PRETRAINED: False
  NUM_POINTS: 106
%s%s""" % (root, data_extra, model_extra, extra))
    return str(path)


@pytest.fixture(scope="session")
def shared_dir():
    """Path of ``<repo>/../shared``; skips the test when it is absent (fails in CI)."""
    return _require(SHARED_DIR, "shared data folder")


@pytest.fixture(scope="session")
def fixtures_dir(shared_dir):
    """Path of ``shared/fixtures`` (jd106, wflw98, 300w68); skips when absent (fails in CI)."""
    return _require(shared_dir / "fixtures", "dataset fixtures")


@pytest.fixture(scope="session")
def datatang_root(shared_dir):
    """Path of ``shared/data/datatang106``; skips when absent (fails in CI)."""
    return _require(shared_dir / "data" / "datatang106" / "images", "Datatang sample").parent


@pytest.fixture(scope="session")
def w300_root(shared_dir):
    """Path of ``shared/data/300w_public`` (``train/``, ``val/``, ``test/`` of images and iBUG ``.pts``); skips
    when absent (fails in CI)."""
    return _require(shared_dir / "data" / "300w_public" / "manifest.json", "300-W faces").parent


@pytest.fixture(scope="session")
def models_dir(shared_dir):
    """Path of ``shared/models`` (YuNet, the ImageNet MobileNetV2 weights); skips when absent (fails in CI)."""
    return _require(shared_dir / "models" / "torchvision_mobilenet_v2-b0353104.pth", "ImageNet weights").parent


@pytest.fixture
def lock_holder():
    """``hold(folder)``: a separate Python process that takes ``folder``'s run lock and keeps it until the test
    ends (or until ``proc.kill()``); returns the process once the lock is held."""
    import subprocess
    import sys
    procs = []

    def hold(folder):
        code = ("import sys, time\nfrom lotr_gluon.runlock import run_lock\nwith run_lock(sys.argv[1]):\n"
                "    print('held', flush=True)\n    time.sleep(600)\n")
        p = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True,
                             cwd=str(Path(__file__).resolve().parent.parent))
        procs.append(p)
        assert p.stdout.readline().strip() == "held"
        return p

    yield hold
    for p in procs:
        p.kill()
        p.wait()
