#!/usr/bin/env python
"""Train a landmark model: ``python tools/train.py --cfg experiments/datatang/lotr_m.yaml [KEY VALUE ...]``.

The run folder is ``output/<DATA.NAME>/<cfg-name>/`` (frozen config, log.jsonl, checkpoints, curves).
``--resume`` continues an interrupted run from its last checkpoint.
"""
import sys

from lotr_gluon.cli import ArgumentParser, ensure_output_dir, load_cli_config, run_main
from lotr_gluon.config import run_dir
from lotr_gluon.trainer import Trainer


def main(argv=None):
    """Exit status 0; errors raise :class:`lotr_gluon.errors.LotrError` (one line and its exit code via
    :func:`lotr_gluon.cli.run_main`: 2 config, 3 data, 4 model, 5 divergence, 6 run folder, 7 output)."""
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("--cfg", required=True, help="experiment YAML")
    ap.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    ap.add_argument("--out", default=None, help="run folder (default output/<dataset>/<cfg-name>)")
    ap.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    args = ap.parse_args(argv)  # KEY VALUE overrides anywhere on the line -> args.opts
    cfg = load_cli_config(args.cfg, args.opts)  # unknown backbone etc. before any data loads
    out = args.out or run_dir(cfg)
    ensure_output_dir(out, "run folder", create=False)
    print("run folder: %s" % out, flush=True)
    # run-folder checks (existing run without --resume, --resume without checkpoint) before any data loads
    trainer = Trainer(cfg, out_dir=out, progress=not args.no_progress, resume=args.resume)
    trainer.fit(resume=args.resume)  # TrainingDiverged is a DivergenceError: exit status 5
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
