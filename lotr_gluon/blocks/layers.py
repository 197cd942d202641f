"""Parameter initialisation shared by every model (LOTR, CNN+FFN, the Earp et al. heatmap networks)."""
import mxnet as mx

__all__ = ["he_init", "initialize_block"]


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
