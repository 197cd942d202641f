"""The project's own errors: one base class and one exit code per kind.

Every CLI under ``tools/`` turns a :class:`LotrError` into one line on stderr (``error: <message>``) and
exits with the class's ``exit_code``; ``--debug`` keeps the traceback. Existing error classes of the
package (``ConfigError``, ``LandmarkFileError``, ``TrainingDiverged``, ...) derive from these as well as
from their original built-in bases, so ``except ValueError`` etc. still work.

Exit codes
----------
===  =====================================================================
 1   unexpected error (a bug: a traceback is printed)
 2   usage or configuration (:class:`UsageError`, ``ConfigError``)
 3   data: images, annotations, splits (:class:`DataError`)
 4   model or weights: unknown backbone, bad params file (:class:`ModelError`)
 5   training diverged (:class:`DivergenceError`)
 6   run folder or resume (:class:`RunFolderError`)
 7   output path not writable (:class:`OutputError`)
 8   face detector unavailable (:class:`DetectorError`)
 9   an outside peer model (an optional extra) not installed (:class:`PeerError`)
130  training stopped by SIGINT (Ctrl-C); 143 by SIGTERM (:class:`Interrupted`, 128 + the signal number)
===  =====================================================================
"""

__all__ = ["LotrError", "UsageError", "DataError", "ModelError", "DivergenceError", "RunFolderError",
           "OutputError", "DetectorError", "PeerError", "Interrupted"]


class LotrError(Exception):
    """Base of the project's errors; ``str(err)`` is a one-line message naming the file and the cause."""

    exit_code = 1

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class UsageError(LotrError):
    """A bad command line or configuration."""

    exit_code = 2


class DataError(LotrError):
    """A bad image, annotation, detection file or split."""

    exit_code = 3


class ModelError(LotrError):
    """An unknown model part, or a params file that is unreadable or belongs to another architecture."""

    exit_code = 4


class DivergenceError(LotrError):
    """The training loss became non-finite or exploded; the last good checkpoint is kept."""

    exit_code = 5


class RunFolderError(LotrError):
    """An existing run folder without ``--resume``, or a resume that cannot proceed."""

    exit_code = 6


class OutputError(LotrError):
    """An output path that cannot be written."""

    exit_code = 7


class DetectorError(LotrError):
    """A face detector that cannot be used on this machine."""

    exit_code = 8


class PeerError(LotrError):
    """An outside landmark detector (a peer of ``requirements-peers.txt``) that cannot be used: its package or
    model file is missing; the message names the package and ``make peers``."""

    exit_code = 9


class Interrupted(LotrError):
    """A training stopped by a signal at a step boundary; the last complete checkpoint is kept.

    ``exit_code`` is 128 + the signal number (130 for SIGINT, 143 for SIGTERM), as a shell reports it."""

    exit_code = 130

    def __init__(self, message, signum=2):
        super().__init__(message)
        self.exit_code = 128 + int(signum)
