"""One process per run folder (lotr_gluon.runlock): another process is refused with the owner's pid, the lock is
re-entrant in one process, and it is gone when its owner dies (even by SIGKILL)."""
import os
import subprocess
import sys

import pytest

from lotr_gluon.errors import RunFolderError
from lotr_gluon.runlock import LOCK_FILE, RunFolderBusy, lock_owner, run_lock


def _other_process_gets(run):
    """Whether a fresh process can take the lock of ``run`` now."""
    code = ("import sys\nfrom lotr_gluon.runlock import run_lock, RunFolderBusy\ntry:\n"
            "    with run_lock(sys.argv[1]): print('got')\nexcept RunFolderBusy: print('busy')\n")
    out = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return out.stdout.strip() == "got"


def test_other_process_is_refused_until_the_owner_dies(tmp_path, lock_holder):
    run = tmp_path / "run"
    proc = lock_holder(run)
    assert lock_owner(str(run)) == proc.pid
    with pytest.raises(RunFolderBusy) as e:
        with run_lock(str(run)):
            raise AssertionError("the lock of another process must not be granted")
    msg = str(e.value)
    assert msg.startswith(str(run) + " is in use by another process (pid %d)" % proc.pid) and "--out" in msg
    assert isinstance(e.value, RunFolderError) and e.value.exit_code == 6
    assert os.listdir(run) == [LOCK_FILE]  # the refused process wrote nothing
    proc.kill()  # SIGKILL: no clean-up code runs; the operating system drops the lock
    proc.wait()
    with run_lock(str(run)):
        assert lock_owner(str(run)) == os.getpid()


def test_reentrant_in_one_process_and_released_after(tmp_path):
    run = tmp_path / "run"
    with run_lock(str(run)):
        with run_lock(str(run)):  # e.g. reproduce_table holds the cell, its Trainer.fit takes it again
            assert lock_owner(str(run)) == os.getpid()
        assert not _other_process_gets(run)  # leaving the inner block kept the outer lock
    assert _other_process_gets(run)  # released
