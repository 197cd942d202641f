"""Parameter count, weight size and multiply-accumulates (MACs) of a Gluon model, read off its symbol graph.

We count the multiply-accumulates of Convolution (grouped/depthwise included), Deconvolution, FullyConnected
and batch_dot (attention) nodes for one image; element-wise ops, normalisation, softmax and pooling are not
counted.

Unit of the papers: both papers print "GFLOPS" but count multiply-accumulates (GMACs):

* LOTR Sec. IV-E (text after Table III): LOTR-M 0.23, LOTR-M+ 0.44, LOTR-R+ 3.23 "GFLOPS";
* Earp et al. Table 6, row "GFLOPS": MNetV2-1.0 0.43, ResNet18 1.13, ResNet50 3.23 (Table 4, row SDD: 0.43).

Our MACs for the JD configs at 192x192 are 0.267 / 0.444 / 3.063 G for LOTR-M / M+ / R+ (within 16%, 1%, 5% of
the printed numbers; tests/test_flops.py); twice these (FLOPs = 2 x MACs: 0.53 / 0.89 / 6.13) is 2.3x / 2.0x /
1.9x the printed numbers.  So :func:`model_info` reports ``gmacs`` (the papers' "GFLOPs") and, separately and
named as such, ``gflops_2x_macs``.
"""
import json
import warnings

import numpy as np
import mxnet as mx

from .model_zoo import build_model, count_params, inference_params

__all__ = ["count_macs", "count_flops", "model_info"]


def _out_name(node, idx=0):
    return node["name"] if node["op"] == "null" else "%s_output%s" % (node["name"], "" if idx == 0 else idx)


def count_macs(net, input_size, batch=1):
    """Multiply-accumulates of ``net`` for one ``(3, S, S)`` image (the papers' "FLOPs", see the module doc).

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        Initialised network taking ``(B, 3, S, S)``; it is hybridized here.
    input_size : int
        ``S``, pixels.
    batch : int
        Batch size used for shape inference; the result is per image.

    Returns
    -------
    int
        MACs per image: Convolution ``out_elems x C_in/groups x kh x kw``, Deconvolution
        ``in_elems x C_out/groups x kh x kw``, FullyConnected ``out_elems x in_features``, batch_dot
        ``out_elems x inner``.
    """
    net.hybridize()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net(mx.nd.zeros((1, 3, input_size, input_size)))
    sym = net._cached_graph[1]
    internals = sym.get_internals()
    arg_shapes, out_shapes, aux_shapes = internals.infer_shape_partial(data=(batch, 3, input_size, input_size))
    shapes = dict(zip(internals.list_outputs(), out_shapes))
    shapes.update(zip(internals.list_arguments(), arg_shapes))
    shapes.update(zip(internals.list_auxiliary_states(), aux_shapes))
    nodes = json.loads(sym.tojson())["nodes"]

    def in_shape(node, k):
        src, idx = node["inputs"][k][0], node["inputs"][k][1]
        n = nodes[src]
        name = _out_name(n, idx)
        if name not in shapes and n["op"] != "null":
            name = "%s_output%d" % (n["name"], idx)
        return shapes.get(name)

    total = 0
    for node in nodes:
        op = node["op"]
        if op not in ("Convolution", "Deconvolution", "FullyConnected", "batch_dot"):
            continue
        out = shapes.get(_out_name(node)) or shapes.get(node["name"] + "_output0")
        if out is None:
            continue
        attrs = node.get("attrs", {})
        if op == "Convolution":
            w = in_shape(node, 1)
            total += int(np.prod(out)) * int(np.prod(w[1:]))
        elif op == "Deconvolution":
            x, w = in_shape(node, 0), in_shape(node, 1)
            total += int(np.prod(x)) * int(np.prod(w[1:]))
        elif op == "FullyConnected":
            w = in_shape(node, 1)
            total += int(np.prod(out)) * int(w[1])
        else:
            a = in_shape(node, 0)
            k = a[-2] if attrs.get("transpose_a", "False") in ("True", "1", "true") else a[-1]
            total += int(np.prod(out)) * int(k)
    return total // batch


def count_flops(net, input_size, batch=1):
    """FLOPs = 2 x :func:`count_macs` (one multiply and one add per MAC); not the papers' unit."""
    return 2 * count_macs(net, input_size, batch)



def model_info(cfg):
    """Size and cost of the inference model a config builds (random weights: only shapes matter).

    Parameters
    ----------
    cfg : yacs CfgNode
        A full config (``MODEL.*``, ``DATA.INPUT_SIZE``).

    Returns
    -------
    dict
        ``params`` (every parameter, BatchNorm statistics included, as gluoncv counts; a training-only
        auxiliary heatmap head is left out), ``size_mb`` (float32 weights, MiB), ``gmacs`` (multiply-accumulates
        per image, 1e9: the papers' "GFLOPs", LOTR Sec. IV-E / Earp Table 6), ``gflops_2x_macs`` (2 x ``gmacs``,
        FLOPs counting the multiply and the add), ``input_size``, ``model``, ``backbone``.
    """
    net = build_model(cfg)
    n = count_params(net)  # a training-only auxiliary heatmap head is not part of the deployed model
    size_mb = sum(np.prod(p.shape) * np.dtype(p.dtype).itemsize for p in inference_params(net)) / 2 ** 20
    macs = count_macs(net, cfg.DATA.INPUT_SIZE)
    return {"params": n, "size_mb": round(float(size_mb), 3), "gmacs": round(macs / 1e9, 4),
            "gflops_2x_macs": round(2 * macs / 1e9, 4),
            "input_size": cfg.DATA.INPUT_SIZE, "model": cfg.MODEL.NAME, "backbone": cfg.MODEL.BACKBONE.NAME}
