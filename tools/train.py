#!/usr/bin/env python
"""Train a landmark model: ``python tools/train.py --cfg experiments/datatang/lotr_m.yaml [KEY VALUE ...]``.

The run folder is ``output/<DATA.NAME>/<cfg-name>/`` (frozen config, log.jsonl, checkpoints, curves).
``--resume`` continues an interrupted run from its last checkpoint.
"""
import argparse
import sys

from lotr_gluon.config import ConfigError, load_config, run_dir
from lotr_gluon.trainer import Trainer, TrainingDiverged


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cfg", required=True, help="experiment YAML")
    ap.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    ap.add_argument("--out", default=None, help="run folder (default output/<dataset>/<cfg-name>)")
    ap.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    ap.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides, e.g. TRAIN.EPOCHS 5")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.cfg, args.opts)
    except ConfigError as err:
        ap.error(str(err))
    out = args.out or run_dir(cfg)
    print("run folder: %s" % out, flush=True)
    trainer = Trainer(cfg, out_dir=out, progress=not args.no_progress)
    try:
        trainer.fit(resume=args.resume)
    except TrainingDiverged as err:
        print("error: %s" % err, file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
