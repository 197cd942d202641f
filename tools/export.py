#!/usr/bin/env python
"""Export a model for deployment and check it:
``python tools/export.py --cfg FILE [--params FILE | --random-init] --out PREFIX [--preprocess] [--onnx]
[--batch 1] [KEY VALUE ...]``.

Writes ``PREFIX-symbol.json`` + ``PREFIX-0000.params`` (MXNet ``SymbolBlock``) and with ``--onnx``
``PREFIX.onnx``. ``--preprocess`` folds the input normalisation (``DATA.MEAN`` / ``DATA.STD``) into the
graph: the exported models then take raw 0-255 RGB floats, (B, 3, S, S).

On one random input it prints the largest absolute difference between the Gluon model, the SymbolBlock
round trip and onnxruntime (pixels of the crop for landmark models; heatmap units for heatmap models,
plus the landmarks decoded from both outputs, in pixels), and, for reference, how far the Gluon model in float32 is from itself in float64 (the float32 noise
floor). Exit status 1 when a difference exceeds ``--atol`` (+ ``--rtol`` x the largest output).
Without ``--params`` the run folder's ``model_best.params`` is used (``lotr_gluon.config.run_dir``);
``--random-init`` exports an untrained model (for testing).
"""
import os
import sys
import warnings

import numpy as np
import lotr_gluon  # noqa: F401  (first: lotr_gluon.runtime sets the CPU threads before mxnet is imported)
import mxnet as mx

from lotr_gluon.build import check_params_file, load_model
from lotr_gluon.cli import ArgumentParser, ensure_output_file, load_cli_config, run_main
from lotr_gluon.config import run_dir
from lotr_gluon.export import (check_onnx, export_onnx, export_symbol, load_symbol, normalize_input,
                               onnx_session)


def main(argv=None):
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("--cfg", required=True, help="experiment YAML")
    ap.add_argument("--params", default=None, help="weights (default: the run folder's model_best.params)")
    ap.add_argument("--random-init", action="store_true", help="export a randomly initialised model (testing)")
    ap.add_argument("--out", required=True, help="output prefix: PREFIX-symbol.json, PREFIX-0000.params, PREFIX.onnx")
    ap.add_argument("--preprocess", action="store_true", help="fold (x/255 - mean)/std into the graph (raw 0-255 input)")
    ap.add_argument("--onnx", action="store_true", help="also write PREFIX.onnx and check it in onnxruntime")
    ap.add_argument("--batch", type=int, default=1, help="batch size of the ONNX input and of the check")
    ap.add_argument("--dynamic-batch", action="store_true", help="ONNX input with a symbolic batch axis")
    ap.add_argument("--atol", type=float, default=1e-3, help="largest allowed difference (default 1e-3 px)")
    ap.add_argument("--rtol", type=float, default=0.0, help="plus this times the largest |output| (default 0)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random init and the check input")
    args = ap.parse_args(argv)  # KEY VALUE config overrides anywhere on the line -> args.opts
    if args.params and args.random_init:
        ap.error("--params and --random-init exclude each other")
    if args.batch < 1 or args.atol < 0 or args.rtol < 0:
        ap.error("--batch must be >= 1 and --atol, --rtol >= 0")
    cfg = load_cli_config(args.cfg, args.opts)
    params = None
    if not args.random_init:
        params = args.params or os.path.join(run_dir(cfg), "model_best.params")
        check_params_file(params, "train first, pass --params, or --random-init")
    ensure_output_file(args.out + "-symbol.json", "export")

    mx.random.seed(args.seed)
    ctx = mx.cpu()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the whole model comes from --params (or random init): no backbone weights read; weights checked
        net, post = load_model(cfg, params, ctx=ctx)
    size = cfg.DATA.INPUT_SIZE
    mean, std = tuple(cfg.DATA.MEAN), tuple(cfg.DATA.STD)
    units = "heatmap units" if post.decodes else "px"

    raw = np.random.RandomState(args.seed).uniform(0, 255, (args.batch, 3, size, size)).astype(np.float32)
    x_norm = normalize_input(raw, mean, std)
    x_in = raw if args.preprocess else x_norm  # input of the exported models

    sym_file, params_file = export_symbol(net, args.out, size, preprocess=args.preprocess, mean=mean, std=std)
    ref = net(mx.nd.array(x_norm, ctx=ctx)).asnumpy()  # hybridized Gluon model on normalised input
    tol = args.atol + args.rtol * float(np.abs(ref).max())
    sb = load_symbol(args.out, ctx=ctx)
    d_sym = float(np.abs(sb(mx.nd.array(x_in, ctx=ctx)).asnumpy() - ref).max())
    ok = d_sym <= tol
    print("output %s, largest |output| %.4g %s" % (ref.shape, np.abs(ref).max(), units))
    print("max |Gluon - SymbolBlock|       %.3g %s%s" % (d_sym, units, "" if d_sym <= tol else "  FAIL"))
    files = [sym_file, params_file]
    ort_out = None
    if args.onnx:
        onnx_path = export_onnx(args.out, args.out + ".onnx", size, batch=args.batch,
                                dynamic_batch=args.dynamic_batch)
        files.append(onnx_path)
        ort_out = onnx_session(onnx_path).run(None, {"data": x_in})[0]
        d_ort = float(np.abs(ort_out - ref).max())
        d_ort_sym = check_onnx(onnx_path, sb, x_in, atol=None)
        ok = ok and d_ort <= tol
        print("max |Gluon - onnxruntime|       %.3g %s%s" % (d_ort, units, "" if d_ort <= tol else "  FAIL"))
        print("max |SymbolBlock - onnxruntime| %.3g %s" % (d_ort_sym, units))

    # float32 noise floor: the same model in float64 (imperative)
    net.hybridize(active=False)
    net.cast("float64")
    ref64 = net(mx.nd.array(x_norm, ctx=ctx, dtype="float64")).asnumpy()
    floor = float(np.abs(ref - ref64).max())
    print("float32 noise floor: max |Gluon fp32 - Gluon fp64| %.3g %s%s" % (
        floor, units, "" if ort_out is None else ", |onnxruntime - Gluon fp64| %.3g" % np.abs(ort_out - ref64).max()))
    px_floor = None
    if ort_out is not None and post.decodes:  # heatmap model: the decoded landmarks, pixels
        lm_ref, lm_ort = post.decode(ref), post.decode(ort_out)
        d_px = float(np.abs(lm_ort - lm_ref).max())
        px_floor = float(np.abs(lm_ref - post.decode(ref64.astype(np.float32))).max())
        ok = ok and d_px <= args.atol
        print("decoded landmarks (%s): max |Gluon - onnxruntime| %.3g px%s, float32 noise floor %.3g px"
              % (post.default_decoder, d_px, "" if d_px <= args.atol else "  FAIL", px_floor))
    print("tolerance %.3g %s%s: %s" % (tol, units, "" if px_floor is None else " (%.3g px decoded)" % args.atol,
                                      "OK" if ok else "FAILED"))
    if not ok and (3 * floor > tol or 3 * (px_floor or 0.0) > args.atol):
        print("note: the tolerance is within 3x the float32 noise floor of this model (MXNet float32 vs "
              "float64, above); onnxruntime and MXNet round differently, each about that far from float64, so "
              "compare the differences with the floor, or raise --atol / --rtol")
    for f in files:
        print("wrote %s" % f)
    return 0 if ok else 1

if __name__ == "__main__":
    sys.exit(run_main(main))
