"""Parameter initialisation and naming shared by every model (LOTR, CNN+FFN, the Earp et al. heatmap networks)."""
import contextlib

import mxnet as mx
from mxnet import gluon
from mxnet.gluon.block import _BlockScope

__all__ = ["he_init", "initialize_block", "model_scope"]


@contextlib.contextmanager
def model_scope(cls):
    """Build the parts of a ``cls`` model under the prefix the model will carry; yields that prefix.

    Parts are built before the model that holds them (DETR style), but gluon names a block's parameters after
    the name scope it is *created* in. Built in this scope, the parts get the names they had when the model
    built them inside its own ``name_scope()`` (``lotr0_mobilenetv20_features_conv0_weight``, not
    ``mobilenetv20_...``). The names matter beyond display: ``gluon.Trainer`` orders its parameters by name,
    and so does the optimiser state in a checkpoint (``.states`` files hold them by that index), and exported
    symbol files carry them. Create the model after leaving the scope, with ``prefix=`` the yielded value::

        with model_scope(LOTR) as prefix:
            backbone = ...
        net = LOTR(backbone, ..., prefix=prefix)

    Parameters
    ----------
    cls : type
        The model class; its lower-cased name is gluon's prefix hint (``lotr`` -> ``lotr0_``, ``lotr1_``, ...).
    """
    holder = type(cls.__name__, (gluon.Block,), {})()  # takes the prefix that ``cls()`` would take here
    current = getattr(_BlockScope._current, "value", None)
    outer = current._block.prefix if current is not None else ""
    with holder.name_scope():
        yield holder.prefix[len(outer):]


def he_init():
    """He (Kaiming) normal initialisation, fan-in, gain sqrt(2) (LOTR III-A: "He initialization")."""
    return mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2)


def initialize_block(net, ctx=None, force_reinit=False):
    """Initialise every parameter of ``net`` not already holding data: a layer's own initialiser where it
    names one, He init otherwise; a backbone that loaded ImageNet weights (``net.backbone_loaded``) is only
    moved to ``ctx``. ``ctx``: a Context or a list of them (default CPU)."""
    ctx = ctx or mx.cpu()
    skip = set(net.backbone.collect_params().keys()) if getattr(net, "backbone_loaded", False) else set()
    for name, p in net.collect_params().items():
        if name in skip:
            p.reset_ctx(ctx)
            continue
        if p._data is not None and not force_reinit:
            continue
        p.initialize(init=he_init() if p.init is None else None, ctx=ctx, default_init=he_init(),
                     force_reinit=force_reinit)
    return net
