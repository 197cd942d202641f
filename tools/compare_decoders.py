#!/usr/bin/env python
"""Evaluate a heatmap model with every sub-pixel decoder (Earp et al.; ``vector`` is band pooling at test time
only, not the Table V "with vectorization" model of heatmap_baseline/vector.py):
``python tools/compare_decoders.py --cfg experiments/datatang/earp_mnv2_1.0_sdd.yaml --params W.params``.

For each decoder (argmax, argmax_shift, dark, vector) and flip off/on, prints and writes NME / AUC / FR on
``DATA.TEST_SPLIT`` and the network and decoding time per image (ms, this machine, batch TEST.BATCH_SIZE),
to ``--out`` (default: the run folder's ``decoders_<split>/``): ``decoders.json``, ``decoders.md`` and
``ced.png`` (one CED curve per decoder, flip off).
"""
import argparse
import json
import os
import sys

from lotr_gluon.build import build_dataset, build_scheme, contexts, load_model, model_kind
from lotr_gluon.config import ConfigError, load_config, run_dir
from lotr_gluon.cli import ensure_output_dir
from lotr_gluon.evaluate import evaluate_dataset
from lotr_gluon import markdown
from lotr_gluon.vis import plot_ced

DECODERS = ("argmax", "argmax_shift", "dark", "vector")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cfg", required=True)
    ap.add_argument("--params", default=None, help="weights (default: the run folder's model_best.params)")
    ap.add_argument("--decoders", nargs="+", default=list(DECODERS), choices=DECODERS)
    ap.add_argument("--out", default=None)
    ap.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.cfg, list(args.opts))
    except ConfigError as err:
        ap.error(str(err))
    if model_kind(cfg) != "heatmap":
        ap.error("MODEL.NAME is %r: decoders apply to heatmap models (earp_heatmap)" % cfg.MODEL.NAME)
    params = args.params or os.path.join(run_dir(cfg), "model_best.params")
    if not os.path.isfile(params):
        ap.error("weights not found: %s" % params)
    split = os.path.splitext(os.path.basename(cfg.DATA.TEST_SPLIT.rstrip("/")))[0] or "test"
    out = args.out or os.path.join(run_dir(cfg), "decoders_%s" % split)
    ensure_output_dir(out)
    ctx = contexts(cfg)[0]
    scheme = build_scheme(cfg)
    test_set = build_dataset(cfg, "test")
    net, post = load_model(cfg, params, ctx=ctx)  # weights checked, no pretrained backbone read
    net.hybridize(static_alloc=True)
    rows, curves = [], {}
    for flip in (False, True):
        for dec in args.decoders:
            m, nmes, _, _ = evaluate_dataset(net, test_set, scheme, ctx, cfg.TEST.BATCH_SIZE, flip, decoder=dec,
                                             post=post)
            rows.append(m)
            if not flip:
                curves[dec] = nmes
            print("%-13s flip=%-5s NME %.2f%%  AUC@%.2f %.2f%%  FR %.2f%%  network %.1f ms/img  decode %.2f ms/img"
                  % (dec, flip, 100 * m["nme"], scheme.threshold, 100 * m["auc"], 100 * m["fr"],
                     m["network_ms_per_image"], m["decode_ms_per_image"]), flush=True)
    with open(os.path.join(out, "decoders.json"), "w") as f:
        json.dump({"params": os.path.abspath(params), "split": cfg.DATA.TEST_SPLIT, "rows": rows}, f, indent=1)
    md = markdown.table(["decoder", "flip", "NME (%)", "AUC (%)", "FR (%)", "network ms/img", "decode ms/img"],
                        [[r["decoder"], "on" if r["flip"] else "off", "%.2f" % (100 * r["nme"]),
                          "%.2f" % (100 * r["auc"]), "%.2f" % (100 * r["fr"]), "%.1f" % r["network_ms_per_image"],
                          "%.2f" % r["decode_ms_per_image"]] for r in rows])
    with open(os.path.join(out, "decoders.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    plot_ced(curves, scheme.threshold, os.path.join(out, "ced.png"), title="decoders, %s %s" % (cfg.DATA.NAME, split))
    print("\n".join(md))
    print("wrote %s" % out)
    return 0


if __name__ == "__main__":
    from lotr_gluon.cli import run_main
    sys.exit(run_main(main))
