#!/usr/bin/env python
"""Print one JSON line with the size and cost of the model a config builds:
``{"params": ..., "size_mb": ..., "gmacs": ..., "gflops_2x_macs": ..., "input_size": ...}``.

``params`` counts every parameter (BatchNorm statistics included, as gluoncv does); ``size_mb`` is the float32
weight size in MiB; ``gmacs`` counts the multiply-accumulates (1e9) of convolutions, deconvolutions, dense layers
and attention matrix products for one image: the unit the papers print as "GFLOPs" (LOTR Sec. IV-E: LOTR-M 0.23,
M+ 0.44, R+ 3.23; Earp Table 6). ``gflops_2x_macs`` = 2 x ``gmacs`` (see :mod:`lotr_gluon.flops`).
"""
import argparse
import json
import sys
import warnings

from lotr_gluon.config import ConfigError, load_config
from lotr_gluon.flops import model_info


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cfg", required=True)
    ap.add_argument("opts", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.cfg, list(args.opts) + ["MODEL.PRETRAINED", "False"])
    except ConfigError as err:
        ap.error(str(err))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = model_info(cfg)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
