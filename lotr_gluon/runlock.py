"""One training per run folder: an exclusive lock held while a process trains or evaluates into it.

Two processes writing one run folder (two ``tools/train.py --resume`` of the same run, or two
``tools/reproduce_table.py`` commands reaching the same cell) would interleave their checkpoints and logs. The
lock is a POSIX record lock (``fcntl.lockf``) on ``<run folder>/.lock`` (the file holds the owner's process id,
for the message):

* the operating system releases it when the owning process ends, however it ends (``kill -9`` included), so
  there is no stale lock to clean up; processes forked while it is held (data-loader workers) do not inherit
  it, so they neither keep it after the trainer ends nor block a later lock of the same process;
* it is re-entrant within one process (``reproduce_table.py`` holds a cell's lock while its Trainer, which
  takes the lock again, trains and the cell is evaluated);
* a second process gets :class:`RunFolderBusy` (a :class:`lotr_gluon.errors.RunFolderError`, exit code 6)
  naming the folder and the owner's process id, before it has read or written anything there;
  ``reproduce_table.py`` skips such a cell ("running in another process"), so two table commands started side
  by side share the cells of a table between them.

On a platform without ``fcntl`` (Windows) the lock is a no-op.

The lock file stays in the folder after release (removing it would race with a process that has just opened
it); :data:`LOCK_FILE` is not a run file (:data:`lotr_gluon.trainer.RUN_FILES`).
"""
import contextlib
import os

from .errors import RunFolderError

try:
    import fcntl
except ImportError:  # pragma: no cover  (Windows)
    fcntl = None

__all__ = ["run_lock", "RunFolderBusy", "LOCK_FILE", "lock_owner"]

#: name of the lock file inside a run folder
LOCK_FILE = ".lock"

_HELD = {}  # absolute lock path -> fd, for the locks this process holds (the outermost run_lock releases)


class RunFolderBusy(RunFolderError):
    """Another process holds the run folder's lock (it is training or evaluating there)."""


def lock_owner(out_dir):
    """Process id written in ``out_dir``'s lock file (the last process that took the lock), or None."""
    if os.path.abspath(os.path.join(out_dir, LOCK_FILE)) in _HELD:
        return os.getpid()  # (opening and closing the file here would release this process's POSIX lock)
    try:
        with open(os.path.join(out_dir, LOCK_FILE)) as f:
            return int(f.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def run_lock(out_dir):
    """Hold the exclusive lock of the run folder ``out_dir`` (created if missing) for the ``with`` block.

    Parameters
    ----------
    out_dir : str
        Run folder.

    Raises
    ------
    RunFolderBusy
        Another process holds the lock; the message names the folder and that process's id. Nothing in the
        folder is changed (only the folder itself and its ``.lock`` file may have been created).
    """
    path = os.path.abspath(os.path.join(out_dir, LOCK_FILE))
    if path in _HELD or fcntl is None:  # re-entrant within this process; no-op without fcntl
        yield
        return
    os.makedirs(out_dir, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        owner = lock_owner(out_dir)
        raise RunFolderBusy("%s is in use by another process%s (training or evaluating there); wait for it to "
                            "finish, or train into a new folder with --out DIR"
                            % (out_dir, " (pid %d)" % owner if owner else "")) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    _HELD[path] = fd
    try:
        yield
    finally:
        del _HELD[path]
        os.close(fd)  # releases the lock
