"""Command-line plumbing shared by ``tools/*.py``: one-line errors with exit codes, flags anywhere on the line,
and checks of output paths before any work starts.

Every tool ends with ``sys.exit(run_main(main))``:

* :func:`run_main` calls ``main(argv)``; a :class:`~lotr_gluon.errors.LotrError` (or one of the foreign errors
  mapped by :func:`as_lotr_error`: YAML syntax errors, missing files, permission errors) becomes one line on
  stderr, ``error: <message>``, and the error's exit code (:mod:`lotr_gluon.errors`: 2 usage/config, 3 data,
  4 model/weights, 5 divergence, 6 run folder, 7 output path, 8 detector, 9 peer not installed). ``--debug`` anywhere on the line
  (or ``LOTR_DEBUG=1``) prints the traceback as well. Any other exception is a bug: traceback, exit 1.
* :class:`ArgumentParser` is ``argparse.ArgumentParser`` whose usage errors raise :class:`UsageError` (so a
  missing ``--cfg`` is one line, exit 2) and whose :meth:`~ArgumentParser.parse_args` takes the ``KEY VALUE``
  config overrides anywhere among the flags (``--cfg F DATA.ROOT X --out Y``, also after an option of several
  values: ``--cells a b SEED 1``) into ``args.opts`` (:func:`split_overrides`).
* :func:`ensure_output_dir` / :func:`ensure_output_file` create and probe an output location, raising
  :class:`OutputError` with the path and the cause.
"""
import argparse
import errno
import os
import sys
import tempfile
import traceback

import yaml

from .build import check_model_config, check_training_config
from .config import flatten_keys, get_defaults, load_config
from .errors import LotrError, OutputError, UsageError

__all__ = ["ArgumentParser", "ArgumentUsageError", "run_main", "as_lotr_error", "one_line", "ensure_output_dir", "ensure_output_file",
           "load_cli_config", "split_overrides"]


def _is_number(s):
    try:
        float(s)
        return True
    except ValueError:
        return False


def split_overrides(argv):
    """``(rest, opts)``: the ``KEY VALUE`` pairs of ``argv`` whose KEY is a config key (``DATA.ROOT``, ``SEED``)
    taken out wherever they stand, so that they mix freely with the options (``--cells a b SEED 1 --dry-run``),
    and the rest in its order."""
    keys = set(flatten_keys(get_defaults()))
    rest, opts = [], []
    i = 0
    while i < len(argv):
        if argv[i] in keys and i + 1 < len(argv):
            opts += argv[i:i + 2]
            i += 2
        else:
            rest.append(argv[i])
            i += 1
    return rest, opts


class ArgumentUsageError(UsageError, SystemExit):
    """A bad command line (argparse's usage errors). Also a ``SystemExit`` with ``code`` 2, as argparse's own
    error, so that callers that expect argparse's behaviour keep working; :func:`run_main` prints it as one
    line."""

    def __init__(self, message):
        super().__init__(message)
        self.code = self.exit_code


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` for the tools.

    Parameters
    ----------
    overrides : bool
        Collect ``KEY VALUE`` config overrides from anywhere on the line into ``args.opts`` (list of str);
        an unknown ``--flag`` is still a usage error. False: plain argparse parsing.
    *args, **kw
        As ``argparse.ArgumentParser`` (``formatter_class`` defaults to ``RawDescriptionHelpFormatter``).

    Adds ``--debug`` (keep the traceback of an error). :meth:`error` raises :class:`UsageError` (exit code 2)
    instead of printing the usage and exiting, so :func:`run_main` prints one line.
    """

    def __init__(self, *args, overrides=True, **kw):
        kw.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kw)
        self.overrides = bool(overrides)
        self.add_argument("--debug", action="store_true", help="on an error, print the full traceback too")
        if self.overrides:
            self.usage = None  # argparse's usage; overrides are listed in the epilog
            self.epilog = ((self.epilog + "\n") if self.epilog else "") + (
                "KEY VALUE config overrides (e.g. TRAIN.EPOCHS 5 DATA.ROOT /data) may stand anywhere among the "
                "options.")

    def error(self, message):
        raise ArgumentUsageError("%s: %s (see %s --help)" % (self.prog, message, self.prog))

    def parse_args(self, args=None, namespace=None):
        if not self.overrides:
            return super().parse_args(args, namespace)
        args, opts = split_overrides(list(sys.argv[1:] if args is None else args))
        ns, rest = self.parse_known_args(args, namespace)
        flags = [r for r in rest if r.startswith("-") and not _is_number(r)]
        if flags:
            self.error("unrecognized arguments: %s" % " ".join(flags))
        ns.opts = list(getattr(ns, "opts", None) or []) + opts + list(rest)
        if len(ns.opts) % 2:
            self.error("config overrides must be KEY VALUE pairs, got an odd number: %s" % " ".join(ns.opts))
        return ns


def one_line(message):
    """The message with its lines joined (error messages are printed on one line)."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def as_lotr_error(err):
    """The :class:`LotrError` that stands for ``err``, or None for an unexpected error (a bug).

    Mapped: any :class:`LotrError`; ``yaml.YAMLError`` (usage, with the file and line when known);
    ``FileNotFoundError`` (usage: a path given on the command line or in the config does not exist);
    ``PermissionError`` and the "no space / read-only file system" ``OSError`` (output, exit 7).
    """
    if isinstance(err, LotrError):
        return err
    if isinstance(err, yaml.YAMLError):
        mark = getattr(err, "problem_mark", None)
        where = "%s line %d" % (mark.name, mark.line + 1) if mark is not None else "a YAML file"
        return UsageError("YAML syntax error in %s: %s" % (where, one_line(getattr(err, "problem", err))))
    if isinstance(err, FileNotFoundError):
        return UsageError(_os_message(err))
    if isinstance(err, PermissionError) or (isinstance(err, OSError) and err.errno in (errno.EROFS, errno.ENOSPC,
                                                                                        errno.EDQUOT)):
        return OutputError(_os_message(err))
    return None


def _os_message(err):
    if getattr(err, "filename", None) and err.strerror:
        return "%s: %s" % (err.strerror, err.filename)
    return str(err)


def run_main(main, argv=None):
    """Run ``main(argv)`` and turn the project's errors into one line and an exit code.

    Parameters
    ----------
    main : callable
        ``main(argv) -> int`` (the tool's exit status; None counts as 0).
    argv : list of str, optional
        Default ``sys.argv[1:]``. ``--debug`` in it (or ``LOTR_DEBUG=1`` in the environment) prints the
        traceback of an error too.

    Returns
    -------
    int
        ``main``'s status, or the error's ``exit_code`` (:mod:`lotr_gluon.errors`) after printing
        ``error: <message>`` on stderr. An unexpected exception propagates (traceback, exit status 1).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("LOTR_DEBUG", "") not in ("", "0")
    try:
        status = main(argv)
    except Exception as err:  # noqa: BLE001 - mapped or re-raised below
        mapped = as_lotr_error(err)
        if mapped is None:
            raise
        if debug:
            traceback.print_exc()
        sys.stdout.flush()
        print("error: %s" % one_line(mapped), file=sys.stderr, flush=True)
        return int(mapped.exit_code)
    return 0 if status is None else int(status)


def ensure_output_dir(path, what="output folder", create=True):
    """Check that files can be written in the folder ``path``: create it (``create``) and write and remove a
    probe file in it; with ``create=False`` nothing is created and the probe goes into the nearest existing
    folder on the way to ``path`` (for run folders, whose existence means something).

    Raises
    ------
    OutputError
        It cannot be created or written (a parent is a file, no permission, read-only file system); the message
        names the path and the cause.
    """
    path = str(path)
    try:
        if os.path.exists(path) and not os.path.isdir(path):
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", path)
        if create:
            os.makedirs(path, exist_ok=True)
            probe_dir = path
        else:
            probe_dir = os.path.abspath(path)
            while not os.path.exists(probe_dir):
                probe_dir = os.path.dirname(probe_dir)
            if not os.path.isdir(probe_dir):
                raise NotADirectoryError(errno.ENOTDIR, "not a folder", probe_dir)
        fd, probe = tempfile.mkstemp(prefix=".write_test_", dir=probe_dir)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        cause = e.strerror or str(e)
        if isinstance(e, (FileExistsError, NotADirectoryError)):
            blocker = _first_file_on(path)
            if blocker:
                cause = "%s is a file, not a folder" % blocker
        raise OutputError("cannot write the %s %s: %s" % (what, path, cause)) from None
    return path


def ensure_output_file(path, what="output file"):
    """Check that the file ``path`` can be written: its folder is created and probed; ``path`` must not be a
    folder. Raises :class:`OutputError` naming the path and the cause."""
    path = str(path)
    if os.path.isdir(path):
        raise OutputError("cannot write the %s %s: it is a folder" % (what, path))
    ensure_output_dir(os.path.dirname(os.path.abspath(path)), "folder of the %s %s," % (what, path))
    return path


def _first_file_on(path):
    """The first existing non-folder on the way down to ``path`` (the reason a makedirs failed), or None."""
    p = os.path.abspath(path)
    parts = []
    while True:
        parts.append(p)
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    for q in reversed(parts):
        if os.path.exists(q) and not os.path.isdir(q):
            return q
    return None


def load_cli_config(cfg_file, opts=(), extra=()):
    """:func:`lotr_gluon.config.load_config` of ``cfg_file`` + ``opts`` (+ ``extra``) and the model checks of
    :func:`lotr_gluon.build.check_model_config` (unknown ``MODEL.NAME`` / ``MODEL.BACKBONE.NAME``) and
    :func:`lotr_gluon.build.check_training_config` (``TRAIN.OPTIMIZER``, ``TRAIN.LR_SCHEDULE``), so that a bad
    model is reported before any data loads."""
    cfg = load_config(cfg_file, list(opts) + list(extra))
    check_model_config(cfg)
    check_training_config(cfg)
    return cfg
