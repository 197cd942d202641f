#!/usr/bin/env python
"""Print one JSON line with the size and cost of the model a config builds:
``{"params": ..., "size_mb": ..., "gmacs": ..., "gflops_2x_macs": ..., "input_size": ...}``.

``params`` counts every parameter (BatchNorm statistics included, as gluoncv does); ``size_mb`` is the float32
weight size in MiB; ``gmacs`` counts the multiply-accumulates (1e9) of convolutions, deconvolutions, dense layers
and attention matrix products for one image: the unit the papers print as "GFLOPs" (LOTR Sec. IV-E: LOTR-M 0.23,
M+ 0.44, R+ 3.23; Earp Table 6). ``gflops_2x_macs`` = 2 x ``gmacs`` (see :mod:`lotr_gluon.flops`).
"""
import json
import sys
import warnings

from lotr_gluon.build import inference_config
from lotr_gluon.cli import ArgumentParser, load_cli_config, run_main
from lotr_gluon.flops import model_info


def main(argv=None):
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("--cfg", required=True)
    args = ap.parse_args(argv)  # KEY VALUE overrides anywhere on the line -> args.opts
    cfg = inference_config(load_cli_config(args.cfg, args.opts))  # no backbone weights read
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = model_info(cfg)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
