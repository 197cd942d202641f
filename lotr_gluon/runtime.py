"""Process-wide CPU thread settings, applied before MXNet is imported.

MXNet 1.9 (the CPU wheel, GNU OpenMP) reads ``OMP_NUM_THREADS`` once, when ``mxnet`` is imported; without it a
training here ran its operators on one thread and left the second core idle (bare MobileNetV2-1.0 trunk,
forward + backward + SGD at batch 16, 192 px: 11.2 images/s on one thread, 22.6 on two; ``/work/shared``
FINDINGS, "Threads"). :mod:`lotr_gluon` imports this module first (``lotr_gluon/__init__.py``), so every
entry point (``tools/*.py``, ``python -m``, tests, notebooks) that imports ``lotr_gluon`` before ``mxnet`` gets:

* ``OMP_NUM_THREADS`` = the number of cores this process may run on (``os.sched_getaffinity``), unless the
  user set ``OMP_NUM_THREADS`` (kept as it is) or ``LOTR_NUM_THREADS`` (its value is used instead of the core
  count; ``LOTR_NUM_THREADS=0`` leaves every variable to MXNet's own defaults).
* ``MXNET_CPU_WORKER_NTHREADS`` (the engine's CPU worker threads, which run independent operators at the same
  time) is left to MXNet (1) unless the user sets it: every operator already uses all cores through OpenMP, so
  a second worker would oversubscribe them (expected, not measured).

On a machine shared with other jobs, spinning OpenMP threads can make MXNet much slower (libgomp spins before
it sleeps); ``OMP_WAIT_POLICY=passive`` (set by the user) avoids that at a small cost on a quiet machine.

What was decided is in :data:`SETTINGS` (also written by ``tools/bench_train.py``). Importing ``mxnet``
before ``lotr_gluon`` makes the setting too late: :data:`SETTINGS` ``["applied_before_mxnet"]`` is then False.
"""
import os
import sys

from .errors import UsageError

__all__ = ["THREADS_ENV", "SETTINGS", "usable_cores", "configure_threads"]

#: the project's override of the thread count (0 = leave everything to MXNet's defaults)
THREADS_ENV = "LOTR_NUM_THREADS"

#: what :func:`configure_threads` decided at import: ``threads`` (int or None), ``source``
#: ('OMP_NUM_THREADS', 'LOTR_NUM_THREADS', 'cores' or 'mxnet-default'), ``set_vars`` (the variables it set)
#: and ``applied_before_mxnet``
SETTINGS = {}


def usable_cores():
    """Number of CPU cores this process may run on (affinity mask; ``os.cpu_count()`` where unknown), >= 1."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, int(n))


def configure_threads(environ=None, cores=None):
    """Set ``OMP_NUM_THREADS`` in ``environ`` (default ``os.environ``) unless the user did.

    Parameters
    ----------
    environ : mutable mapping, optional
        The environment to read and change (tests pass a dict).
    cores : int, optional
        Core count to use (default :func:`usable_cores`).

    Returns
    -------
    dict
        ``threads``: the OpenMP thread count in effect for MXNet (None: MXNet's default); ``source``: where it
        came from (``'OMP_NUM_THREADS'`` set by the user, ``'LOTR_NUM_THREADS'``, ``'cores'``, or
        ``'mxnet-default'`` with ``LOTR_NUM_THREADS=0``); ``set_vars``: the variables this call set.

    Raises
    ------
    lotr_gluon.errors.UsageError
        ``LOTR_NUM_THREADS`` is not an integer >= 0.
    """
    env = os.environ if environ is None else environ
    set_vars = {}
    user = env.get("OMP_NUM_THREADS")
    override = env.get(THREADS_ENV)
    n = None
    if override is not None and override.strip() != "":
        try:
            n = int(override)
            if n < 0:
                raise ValueError
        except ValueError:
            raise UsageError("%s must be an integer >= 0 (0 = MXNet's default threading), got %r"
                             % (THREADS_ENV, override)) from None
    if user is not None and user.strip() != "":
        threads = int(user) if user.strip().isdigit() else None
        return {"threads": threads, "source": "OMP_NUM_THREADS", "set_vars": set_vars}
    if n == 0:
        return {"threads": None, "source": "mxnet-default", "set_vars": set_vars}
    source = THREADS_ENV if n is not None else "cores"
    n = n if n is not None else (cores if cores is not None else usable_cores())
    env["OMP_NUM_THREADS"] = set_vars["OMP_NUM_THREADS"] = str(int(n))
    return {"threads": int(n), "source": source, "set_vars": set_vars}


SETTINGS.update(configure_threads())
SETTINGS["applied_before_mxnet"] = "mxnet" not in sys.modules
