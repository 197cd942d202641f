"""tests/conftest.py: a missing shared folder skips locally (with a message) and fails the run in CI."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SHARED_DIR, in_ci

HERE = Path(__file__).resolve().parent

TEST_FILE = '''
def test_needs_data(datatang_root):
    assert datatang_root.is_dir()

def test_without_data():
    assert 1 + 1 == 2
'''


def _run(tmp_path, ci, shared):
    """pytest in a subprocess on a two-test file next to a copy of our conftest.py."""
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_probe.py").write_text(TEST_FILE)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "LOTR_SHARED_DIR", "PYTEST_ADDOPTS")}
    env["LOTR_SHARED_DIR"] = str(shared)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)


def test_in_ci_values():
    assert in_ci({"CI": "true"}) and in_ci({"CI": "1"}) and in_ci({"CI": "yes"})
    assert not in_ci({}) and not in_ci({"CI": ""}) and not in_ci({"CI": "0"}) and not in_ci({"CI": "false"})


def test_missing_shared_fails_in_ci(tmp_path):
    bogus = tmp_path / "no_such_shared"
    r = _run(tmp_path, "true", bogus)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "shared data folder is incomplete" in out and str(bogus) in out
    assert "passed" not in out  # stopped before running anything


def test_missing_shared_skips_locally_with_a_message(tmp_path):
    bogus = tmp_path / "no_such_shared"
    r = _run(tmp_path, None, bogus)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "1 passed, 1 skipped" in out and "shared data folder not found at %s" % bogus in out


def test_present_shared_runs_in_ci(tmp_path):
    if not SHARED_DIR.exists():
        pytest.skip("shared folder absent (this run would already have failed in CI)")
    r = _run(tmp_path, "true", SHARED_DIR)
    assert r.returncode == 0 and "2 passed" in r.stdout, r.stdout + r.stderr
