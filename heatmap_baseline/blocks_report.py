"""Sizes and multiply-accumulates of the Earp et al. upsampling strategies next to the printed ones.

``python -m heatmap_baseline.blocks_report [--data jd|datatang] [--markdown]`` builds every model of Earp Tables
2, 3, 4 and 6 from ``experiments/<data>/earp_baseline_mnv2_0.25.yaml`` / ``earp_final_mnv2_1.0_sdd.yaml``
with the cell overrides of :mod:`lotr_gluon.tables.spec` (random weights: only shapes matter) and prints, per
row, our size (MiB of float32 weights) and GMACs (:func:`lotr_gluon.flops.model_info`, the papers'
"GFLOPs") next to the paper's numbers (``lotr_gluon/tables/paper/earp_table<N>.json``).
"""
import argparse
import json
import os
import sys
import warnings
from lotr_gluon import markdown
from lotr_gluon.build import inference_config
from lotr_gluon.config import load_config
from lotr_gluon.flops import model_info
from lotr_gluon.tables.runner import experiments_dir
from lotr_gluon.tables.spec import PAPER_DIR, get_table

__all__ = ["strategy_rows", "main"]


def _paper_values(table):
    path = os.path.join(PAPER_DIR, "earp_table%s.json" % table)
    out = {}
    if not os.path.isfile(path):
        return out
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    by = data.get("index_by", "row")
    for v in data.get("values", []):
        try:
            out[(v[by], v["key"])] = float(v["value"])
        except (KeyError, TypeError, ValueError):
            continue
    return out


def strategy_rows(tables=("2", "3", "4", "6"), data="jd"):
    """``[(table, row, ours_size_mib, ours_gmacs, paper_size_mb, paper_gflops)]`` for the Earp table cells."""
    rows = []
    for t in tables:
        spec = get_table("earp", t)
        paper = _paper_values(t)
        for cell in spec.cells:
            cfg = inference_config(load_config(os.path.join(experiments_dir(), data, cell.cfg), list(cell.overrides)))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                info = model_info(cfg)
            rows.append((t, cell.row, info["size_mb"], info["gmacs"], paper.get((cell.row, "size_mb")),
                         paper.get((cell.row, "gflops"))))
    return rows


def _fmt(x, d=2):
    return "-" if x is None else "%.*f" % (d, x)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="jd", choices=("jd", "datatang"))
    ap.add_argument("--tables", default="2,3,4,6")
    args = ap.parse_args(argv)
    print("\n".join(markdown.table(
        ["Table", "strategy / backbone", "size ours (MiB)", "size paper (MB)", "GMACs ours", "GFLOPs paper (= GMACs)"],
        [(t, row, _fmt(s), _fmt(ps), _fmt(g), _fmt(pg))
         for t, row, s, g, ps, pg in strategy_rows(tuple(args.tables.split(",")), args.data)])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
