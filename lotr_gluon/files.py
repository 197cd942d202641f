"""Writing files that a run depends on: atomically, and with one-line errors when the disk says no.

Every checkpoint, log record, metrics file and figure of a run goes through :func:`atomic_write` or
:func:`append_line`. A write that fails (disk full, permission denied, read-only file system, a folder where
the file should be) raises :class:`~lotr_gluon.errors.OutputError` (exit code 7) naming the file and the
cause; the file that was there before is untouched (the temporary file is removed), so a training stopped
this way continues with ``--resume`` once the file can be written.
"""
import errno
import json
import os
from contextlib import contextmanager

import numpy as np
from mxnet.base import MXNetError

from .errors import OutputError

__all__ = ["read_json", "atomic_write", "atomic_write_all", "atomic_json", "atomic_text", "append_line", "writing", "json_default",
           "json_writer"]


def _cause(err):
    if isinstance(err, OSError):
        return err.strerror or str(err)
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    # MXNet's message is a C++ traceback; its last line says what failed ("MXNetError: Check failed: ...")
    last = lines[-1].split("MXNetError: ", 1)[-1] if lines else type(err).__name__
    return last[:200]


@contextmanager
def writing(path, hint=""):
    """Turn an ``OSError`` or ``MXNetError`` raised inside into :class:`OutputError` naming ``path``.

    ``hint`` (e.g. "the last checkpoint is kept; continue with --resume") ends the message."""
    try:
        yield
    except (OSError, MXNetError) as err:
        raise OutputError("cannot write %s: %s%s" % (path, _cause(err), "; " + hint if hint else "")) from None


def atomic_write(path, writer, hint=""):
    """``writer(tmp)`` to ``path + '.tmp'``, then ``os.replace`` onto ``path``: ``path`` is the old or the new
    file, never half of one. On failure the temporary file is removed and :class:`OutputError` raised."""
    atomic_write_all([(path, writer)], hint)


def atomic_write_all(items, hint=""):
    """Write several files that belong together (a checkpoint's weights, optimiser state and metadata): every
    ``writer(tmp)`` of ``items`` (``[(path, writer), ...]``) first, then the ``os.replace`` of each. When a writer
    fails, no file is replaced (the set on disk stays the previous one), the temporary files are removed and
    :class:`OutputError` names the file that failed."""
    done = []
    try:
        for path, writer in items:
            tmp = str(path) + ".tmp"
            with writing(path, hint):
                done.append(tmp)
                writer(tmp)
                if os.path.islink(tmp) or not os.path.isfile(tmp):  # never rename a link or device onto path
                    raise OSError(errno.EINVAL, "%s is not a regular file" % tmp)
    except BaseException:
        for tmp in done:
            if os.path.lexists(tmp) and not os.path.isdir(tmp):
                os.remove(tmp)
        raise
    for path, _ in items:
        with writing(path, hint):
            os.replace(str(path) + ".tmp", str(path))


def json_default(o):
    """JSON for numpy scalars and arrays; any other object as its ``str``."""
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def json_writer(obj):
    """A writer for :func:`atomic_write` / :func:`atomic_write_all`: ``obj`` as indented JSON (numpy values
    allowed)."""
    def w(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1, default=json_default)
    return w


def atomic_json(obj, path, hint=""):
    """``obj`` as indented JSON (numpy values allowed), written atomically."""
    atomic_write(path, json_writer(obj), hint)


def atomic_text(text, path, hint=""):
    """``text`` written atomically."""
    def w(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    atomic_write(path, w, hint)


def append_line(path, line, hint=""):
    """Append ``line`` (bytes, ending in a newline) to ``path`` with one ``write`` call (no partial line unless
    the process is killed inside that system call)."""
    with writing(path, hint):
        fd = os.open(str(path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            n = os.write(fd, line)
        finally:
            os.close(fd)
        if n != len(line):
            raise OSError(28, "No space left on device (%d of %d bytes written)" % (n, len(line)))


def read_json(path):
    """The JSON object in ``path``, or None when the file is missing, unreadable or not JSON (a run folder's
    optional metadata: cell.json, metrics.json, checkpoint_last.json, a record)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
