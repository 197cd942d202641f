"""lotr-gluon: LOTR (Watchareeruetai et al.) and the Earp et al. heatmap baseline in MXNet/Gluon.

The user-facing names are importable from the package itself::

    from lotr_gluon import Predictor, Trainer, build_model, get_model, load_config

They are resolved lazily (PEP 562), so ``import lotr_gluon`` stays light and still runs
:mod:`lotr_gluon.runtime` (thread settings) before MXNet is imported.
"""
# First import: sets OMP_NUM_THREADS to the core count before mxnet is imported (lotr_gluon.runtime).
from . import runtime  # noqa: F401

#: public name -> module that defines it
_EXPORTS = {
    "Predictor": "lotr_gluon.predictor",
    "Trainer": "lotr_gluon.trainer",
    "build_model": "lotr_gluon.model_zoo",
    "get_model": "lotr_gluon.model_zoo",
    "load_config": "lotr_gluon.config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError("module 'lotr_gluon' has no attribute %r" % name)


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
