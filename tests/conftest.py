"""Shared test fixtures: the read-only data folder ``<repo>/../shared`` (skipped cleanly when absent)."""
from pathlib import Path

import pytest

#: ``<repo>/../shared``, computed from this file's location (tests/conftest.py).
SHARED_DIR = Path(__file__).resolve().parent.parent.parent / "shared"


def _require(path, what):
    if not path.exists():
        pytest.skip("%s not found at %s" % (what, path))
    return path


@pytest.fixture(scope="session")
def shared_dir():
    """Path of ``<repo>/../shared``; skips the test when it is absent."""
    return _require(SHARED_DIR, "shared data folder")


@pytest.fixture(scope="session")
def fixtures_dir(shared_dir):
    """Path of ``shared/fixtures`` (jd106, wflw98, 300w68); skips when absent."""
    return _require(shared_dir / "fixtures", "dataset fixtures")


@pytest.fixture(scope="session")
def datatang_root(shared_dir):
    """Path of ``shared/data/datatang106``; skips when absent."""
    return _require(shared_dir / "data" / "datatang106" / "images", "Datatang sample").parent
