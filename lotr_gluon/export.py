"""Deployment export: MXNet symbol files (``SymbolBlock``) and ONNX (onnxruntime).

* :func:`export_symbol` writes ``PREFIX-symbol.json`` + ``PREFIX-0000.params``, optionally with the input
  normalisation folded into the graph (``preprocess=True``: the exported model takes raw 0-255 RGB).
* :func:`load_symbol` loads them back as a ``gluon.SymbolBlock``.
* :func:`export_onnx` converts a net or a symbol prefix to ONNX with MXNet's own exporter
  (``mx.onnx.export_model``) and repairs what that exporter gets wrong with the pinned onnx 1.14.1, so that
  onnxruntime loads and optimises the model (see its docstring).
* :func:`check_onnx` runs the ONNX model in onnxruntime and returns the largest difference to a Gluon block.

Every exported model maps (B, 3, S, S) input to the Gluon model's output: (B, N, 2) landmarks in pixels of
the crop for LOTR / CNN+FFN, (B, N, h, w) heatmaps for the heatmap baseline (decode with ``net.decode``).
"""
import contextlib
import json
import os
import tempfile
import warnings

import numpy as np
import mxnet as mx
from mxnet.gluon import HybridBlock

from .data.align import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["export_symbol", "load_symbol", "export_onnx", "check_onnx", "onnx_session", "Normalize",
           "normalize_input", "resolve_reshapes", "ONNX_OPSET"]

ONNX_OPSET = 13  # newest opset MXNet 1.9.1's translation tables are written for (registry: 12 and 13)


# ----------------------------------------------------------------------------------------- symbol

class Normalize(HybridBlock):
    """Input normalisation as a graph block: ``(x / 255 - mean) / std`` per RGB channel.

    The operations (and their float32 rounding) are those of :func:`normalize_input`, so a model exported
    with this block in front gives on raw input what the Gluon model gives on ``normalize_input(raw)``.

    Parameters
    ----------
    mean, std : 3 floats
        RGB mean and std of inputs in [0, 1] (config ``DATA.MEAN`` / ``DATA.STD``).
    layout : {'NCHW', 'NHWC'}
        Layout of the raw input. ``'NHWC'`` (an OpenCV/PIL image with a batch axis, as gluoncv's default
        export preprocess expects) is transposed to NCHW after normalising.
    """

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD, layout="NCHW", **kwargs):
        super().__init__(**kwargs)
        if layout not in ("NCHW", "NHWC"):
            raise ValueError("layout must be 'NCHW' or 'NHWC', got %r" % (layout,))
        self._layout = layout
        shape = (1, 3, 1, 1) if layout == "NCHW" else (1, 1, 1, 3)
        with self.name_scope():
            self.mean = self.params.get_constant("mean", mx.nd.array(np.asarray(mean, np.float32).reshape(shape)))
            self.std = self.params.get_constant("std", mx.nd.array(np.asarray(std, np.float32).reshape(shape)))

    def hybrid_forward(self, F, x, mean, std):
        x = F.broadcast_div(F.broadcast_sub(x / 255.0, mean), std)
        if self._layout == "NHWC":
            x = F.transpose(x, axes=(0, 3, 1, 2))
        return x


def normalize_input(raw, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """numpy float32 ``(raw / 255 - mean) / std`` for (B, 3, H, W) raw 0-255 RGB (the :class:`Normalize` ops)."""
    raw = np.asarray(raw, np.float32)
    m = np.asarray(mean, np.float32).reshape(1, 3, 1, 1)
    s = np.asarray(std, np.float32).reshape(1, 3, 1, 1)
    return (raw / np.float32(255.0) - m) / s


def _net_ctx(net):
    for p in net.collect_params().values():
        try:
            return p.list_ctx()[0]  # also for deferred (gluoncv) initialisation
        except RuntimeError:  # not initialised
            continue
    return mx.cpu()


def export_symbol(net, prefix, input_size, preprocess=False, mean=IMAGENET_MEAN, std=IMAGENET_STD, layout="NCHW",
                  epoch=0):
    """Hybridize ``net`` and write ``PREFIX-symbol.json`` and ``PREFIX-%04d.params`` (epoch).

    This is gluoncv's :func:`gluoncv.utils.export_block` (hybridize, one forward pass on zeros, export) with
    our own preprocess block: gluoncv's default one hard-codes the ImageNet mean/std and NHWC input, ours
    (:class:`Normalize`) takes the config's mean/std and keeps NCHW by default.

    Parameters
    ----------
    net : HybridBlock
        Initialised model taking (B, 3, S, S) normalised RGB. It is left hybridized (default flags; call
        ``net.hybridize(static_alloc=True, ...)`` again if you need those) and on its context.
    prefix : str
        Output path prefix; its folder is created.
    input_size : int
        S, the side of the square input crop.
    preprocess : bool
        Fold :class:`Normalize` (mean, std, layout) into the graph: the exported model takes raw 0-255 RGB
        floats, (B, 3, S, S) or with ``layout='NHWC'`` (B, S, S, 3).
    mean, std : 3 floats
        Normalisation of the training inputs (config ``DATA.MEAN`` / ``DATA.STD``); used with ``preprocess``.

    Returns
    -------
    (symbol_file, params_file) : tuple of str
    """
    from gluoncv.utils import export_block

    folder = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(folder, exist_ok=True)
    ctx = _net_ctx(net)
    pre = Normalize(mean, std, layout) if preprocess else None
    if preprocess and layout == "NHWC":
        data_shape, gl_layout = (input_size, input_size, 3), "HWC"
    else:
        # export_block builds a (1, C, H, W) zero input for 'CHW'; a custom preprocess block allows it
        data_shape, gl_layout = (3, input_size, input_size), "CHW"
    # export_block removes contrib.box_encode from mx.sym.contrib for good (an SSD quirk); put it back
    box_encode = mx.sym.contrib.__dict__.get("box_encode")
    try:
        export_block(prefix, net, data_shape=data_shape, epoch=epoch, preprocess=pre, layout=gl_layout, ctx=ctx)
    finally:
        if box_encode is not None:
            mx.sym.contrib.__dict__["box_encode"] = box_encode
    return "%s-symbol.json" % prefix, "%s-%04d.params" % (prefix, epoch)


def load_symbol(prefix, ctx=None, epoch=0):
    """Load ``PREFIX-symbol.json`` + ``PREFIX-%04d.params`` as a ``gluon.SymbolBlock`` (input ``data``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Cannot decide type for the following arguments" (constants)
        return mx.gluon.SymbolBlock.imports("%s-symbol.json" % prefix, ["data"], "%s-%04d.params" % (prefix, epoch),
                                            ctx=ctx or mx.cpu())


# ------------------------------------------------------------------------------------------- ONNX

def resolve_reshapes(sym, data_shape, input_name="data"):
    """Return ``sym`` with every ``Reshape``'s target shape written out for input ``data_shape``.

    MXNet's ONNX exporter translates only a handful of hard-coded ``Reshape`` patterns with the special codes
    -2, -3, -4 (split/merge axes) and raises ``AttributeError: Reshape: Shape value not supported in ONNX``
    otherwise. Our attention (``(0, 0, -4, h, -1)``, ``(-3, -2)``, ``(-4, -1, h, -2)``, ``(0, 0, -3)``) and
    the heatmap pixel shuffle use them. With a fixed input shape every reshape's output shape is known, so it
    is written out as plain numbers; the leading (batch) axis becomes -1 when it is the only axis that changes
    with the batch size, so the exported graph does not depend on the batch size through its reshapes.
    """
    internals = sym.get_internals()
    names = internals.list_outputs()
    shape2 = (data_shape[0] + 1,) + tuple(data_shape[1:])
    _, shapes, _ = internals.infer_shape(**{input_name: tuple(data_shape)})
    _, shapes2, _ = internals.infer_shape(**{input_name: shape2})
    out1, out2 = dict(zip(names, shapes)), dict(zip(names, shapes2))
    graph = json.loads(sym.tojson())
    for node in graph["nodes"]:
        if node["op"] != "Reshape":
            continue
        key = node["name"] + "_output"
        s, s2 = list(out1[key]), list(out2[key])
        if len(s) == len(s2) and [i for i in range(len(s)) if s[i] != s2[i]] == [0]:
            s[0] = -1
        node["attrs"]["shape"] = "(%s)" % ", ".join(str(int(v)) for v in s)
        node["attrs"].pop("reverse", None)
    return mx.sym.load_json(json.dumps(graph))


@contextlib.contextmanager
def _onnx_opset(version):
    """Make onnx report ``version`` as its newest opset while MXNet's exporter runs.

    ``mx.onnx.export_model`` calls ``onnx.defs.onnx_opset_version()`` (19 for onnx 1.14.1), translates each
    operator with the newest table it has (opset 12 or 13) and then validates the graph with
    ``onnx.checker``'s default context, which also says opset 19: opset-13 nodes such as ``ReduceMean`` with
    an ``axes`` attribute (its LayerNorm translation) are invalid there and the export fails.
    """
    import onnx.checker
    import onnx.defs

    old_fn = onnx.defs.onnx_opset_version
    old_ctx = dict(onnx.checker.DEFAULT_CONTEXT.opset_imports)
    onnx.defs.onnx_opset_version = lambda: version
    onnx.checker.DEFAULT_CONTEXT.opset_imports = {"": version}
    try:
        yield
    finally:
        onnx.defs.onnx_opset_version = old_fn
        onnx.checker.DEFAULT_CONTEXT.opset_imports = old_ctx


def _fix_onnx_model(model, opset):
    """Stamp ``opset`` / IR 7, keep weights only as initializers, drop unused initializers, pack them raw."""
    import onnx
    from onnx import helper, numpy_helper

    del model.opset_import[:]
    model.opset_import.extend([helper.make_opsetid("", opset)])
    model.ir_version = 7  # the IR version released with opset 13 (onnx 1.14.1 stamps 9)
    g = model.graph
    used = {name for node in g.node for name in node.input} | {o.name for o in g.output}
    weights = {t.name for t in g.initializer}
    inits = [numpy_helper.from_array(numpy_helper.to_array(t), t.name) for t in g.initializer if t.name in used]
    inputs = [i for i in g.input if i.name not in weights]
    del g.initializer[:]
    g.initializer.extend(inits)
    del g.input[:]
    g.input.extend(inputs)
    onnx.checker.check_model(model)
    return model


def export_onnx(prefix_or_net, onnx_path, input_size, batch=1, preprocess=False, mean=IMAGENET_MEAN,
                std=IMAGENET_STD, opset=ONNX_OPSET, epoch=0, dynamic_batch=False):
    """Export to ONNX with ``mx.onnx.export_model`` and make the result load in onnxruntime.

    What the MXNet 1.9.1 exporter does with onnx 1.14.1, and what is changed here:

    1. **Opset.** It stamps the installed onnx's newest opset (19) but its translations are written for
       opsets 12/13, and validates against 19, so LOTR's LayerNorm (``ReduceMean`` with an ``axes``
       attribute, removed in opset 18) fails inside the exporter. The export runs with onnx reporting
       ``opset`` (13) and the model's default-domain opset is set to 13 (IR version 7); onnxruntime then
       loads it.
    2. **Weights.** It lists every weight both as an initializer and as a graph input. For onnxruntime a
       graph input may be overridden at run time, so such weights are not constants: constant folding and
       the Conv+BatchNorm / MatMul fusions cannot use them (LOTR-M at 192: 687 of 717 nodes left after
       optimisation and 7.4 ms per image on 2 threads, against 248 nodes and 3.1 ms with the weights as
       initializers only). The weights are removed from the graph inputs (the only input left is
       ``data``), initializers no node uses are dropped, and the initializers are stored as raw bytes.
    3. **Reshape.** Reshape special codes -2/-3/-4 (multi-head attention, pixel shuffle) are not exported;
       :func:`resolve_reshapes` writes the target shapes out for the export input shape first.

    Parameters
    ----------
    prefix_or_net : str or HybridBlock
        Prefix of ``PREFIX-symbol.json`` / ``PREFIX-%04d.params`` (from :func:`export_symbol`; its
        ``preprocess`` is already in the graph), or a Gluon net, exported first to a temporary folder with
        :func:`export_symbol` (``preprocess``, ``mean``, ``std``).
    onnx_path : str
        Output file.
    input_size : int
        S; the ONNX input is ``data``, float32 (batch, 3, S, S).
    batch : int
        Batch size of the ONNX input (with ``dynamic_batch`` only the size used for tracing).
    opset : int
        Default-domain opset written to the model (13; 12 also works for these graphs).
    dynamic_batch : bool
        Leave the batch axis of the input and output symbolic.

    Returns
    -------
    str
        ``onnx_path``.
    """
    import onnx

    if isinstance(prefix_or_net, str):
        sym, args, aux = mx.model.load_checkpoint(prefix_or_net, epoch)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            prefix = os.path.join(tmp, "model")
            export_symbol(prefix_or_net, prefix, input_size, preprocess=preprocess, mean=mean, std=std)
            sym, args, aux = mx.model.load_checkpoint(prefix, 0)
    params = dict(args)
    params.update(aux)
    inputs = [n for n in sym.list_inputs() if n not in params]
    if inputs != ["data"]:
        raise ValueError("expected one graph input 'data', found %s" % (inputs,))
    shape = (int(batch), 3, int(input_size), int(input_size))
    sym = resolve_reshapes(sym, shape)
    folder = os.path.dirname(os.path.abspath(onnx_path))
    os.makedirs(folder, exist_ok=True)
    kw = dict(dynamic=True, dynamic_input_shapes=[(None,) + shape[1:]]) if dynamic_batch else {}
    with _onnx_opset(opset), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the exporter's onnx.mapping look-ups
        mx.onnx.export_model(sym, params, [shape], np.float32, onnx_path, **kw)
    model = _fix_onnx_model(onnx.load(onnx_path), opset)
    onnx.save(model, onnx_path)
    return onnx_path


def onnx_session(onnx_path, threads=None, optimize=True):
    """onnxruntime ``InferenceSession`` on the CPU (all graph optimisations unless ``optimize=False``)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                   else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    return ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])


def check_onnx(onnx_path, net_or_symbolblock, inputs, atol=1e-3, rtol=0.0, threads=None):
    """Largest absolute difference between onnxruntime and a Gluon block on the same input.

    onnxruntime (all graph optimisations, CPU) and MXNet round differently. For randomly initialised LOTR
    models each is about as far from the float64 result as the tolerance or more (MXNet float32 vs float64:
    about 1e-3 px for MobileNetV2-0.25 at 64 px, 1e-2 px for LOTR-M at 192 px, since the head output is
    multiplied by the crop size); ``tools/export.py`` prints that floor next to the differences.

    Parameters
    ----------
    onnx_path : str
    net_or_symbolblock : HybridBlock
        Block that takes the same input as the ONNX model (for a ``preprocess`` export: a raw-input
        SymbolBlock from :func:`load_symbol`, or the Gluon net compared by the caller on normalised input).
    inputs : numpy or NDArray, (B, 3, S, S) float32
    atol : float or None
        Raise ``AssertionError`` above ``atol + rtol * max|Gluon output|`` (pixels for landmark models,
        heatmap units for heatmap models); None: never raise.
    rtol : float

    Returns
    -------
    float
        max |onnxruntime - Gluon| over all outputs.
    """
    x = inputs.asnumpy() if isinstance(inputs, mx.nd.NDArray) else np.asarray(inputs, np.float32)
    sess = onnx_session(onnx_path, threads=threads)
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    ctx = _net_ctx(net_or_symbolblock)
    ref = net_or_symbolblock(mx.nd.array(x, ctx=ctx)).asnumpy()
    if got.shape != ref.shape:
        raise AssertionError("onnxruntime output shape %s != Gluon %s" % (got.shape, ref.shape))
    diff = float(np.abs(got.astype(np.float64) - ref).max())
    if atol is not None:
        tol = atol + rtol * float(np.abs(ref).max())
        if not diff <= tol:
            raise AssertionError("onnxruntime differs from the Gluon model by %.3g (> %.3g) for %s"
                                 % (diff, tol, onnx_path))
    return diff
