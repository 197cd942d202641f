"""Parameter count, weight size and FLOPs of a Gluon model, read off its symbol graph.

FLOPs = 2 x multiply-adds of Convolution, Deconvolution, FullyConnected and batch_dot (attention) nodes
for one image; element-wise ops, normalisation and softmax are not counted (as in most papers' GFLOPs).
"""
import json
import warnings

import numpy as np
import mxnet as mx

__all__ = ["count_flops", "model_info"]


def _out_name(node, idx=0):
    return node["name"] if node["op"] == "null" else "%s_output%s" % (node["name"], "" if idx == 0 else idx)


def count_flops(net, input_size, batch=1):
    """FLOPs of ``net`` for a (batch, 3, S, S) input. The net must be initialised."""
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
            total += 2 * int(np.prod(out)) * int(np.prod(w[1:]))
        elif op == "Deconvolution":
            x, w = in_shape(node, 0), in_shape(node, 1)
            total += 2 * int(np.prod(x)) * int(np.prod(w[1:]))
        elif op == "FullyConnected":
            w = in_shape(node, 1)
            total += 2 * int(np.prod(out)) * int(w[1])
        else:
            a = in_shape(node, 0)
            k = a[-2] if attrs.get("transpose_a", "False") in ("True", "1", "true") else a[-1]
            total += 2 * int(np.prod(out)) * int(k)
    return total // batch


def model_info(cfg):
    """``{"params", "size_mb", "gflops", "input_size", "model"}`` for the inference model the config builds
    (random weights: only shapes matter; a training-only auxiliary heatmap head is left out)."""
    from .models import build_model, count_params, inference_params
    net = build_model(cfg)
    n = count_params(net)  # a training-only auxiliary heatmap head is not part of the deployed model
    size_mb = sum(np.prod(p.shape) * np.dtype(p.dtype).itemsize for p in inference_params(net)) / 2 ** 20
    flops = count_flops(net, cfg.DATA.INPUT_SIZE)
    return {"params": n, "size_mb": round(float(size_mb), 3), "gflops": round(flops / 1e9, 4),
            "input_size": cfg.DATA.INPUT_SIZE, "model": cfg.MODEL.NAME, "backbone": cfg.MODEL.BACKBONE}
