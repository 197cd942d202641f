#!/usr/bin/env python
"""Compare training runs side by side: ``python tools/compare_runs.py RUN_DIR [RUN_DIR ...] --out FIG.png``.

Reads each run folder's ``log.jsonl`` and prints a Markdown table (epochs, steps, last and best validation
NME/AUC/FR, training images/s, what the curve did) and writes one PNG with the training-loss and
validation-NME curves of every run (with the mean-shape baseline as a line when the logs have it).
"""
import argparse
import json
import sys

from lotr_gluon.compare import summarise_run, render_table, plot_runs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run folders (each with log.jsonl)")
    ap.add_argument("--out", default=None, help="PNG of the curves (default: none)")
    ap.add_argument("--json", default=None, help="write the summaries as JSON")
    args = ap.parse_args(argv)
    rows = [summarise_run(r) for r in args.runs]
    print(render_table(rows))
    if args.out:
        plot_runs(args.runs, args.out)
        print("wrote %s" % args.out)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    from lotr_gluon.cli import run_main
    sys.exit(run_main(main))
