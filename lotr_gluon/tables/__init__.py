"""Reproduce the papers' tables from real training runs (``tools/reproduce_table.py``).

* :mod:`.spec`: the tables (grids of cells = experiment YAML + overrides), their metrics and scales, and the
  papers' numbers (``paper/<paper>_table<N>.json``).
* :mod:`.runner`: train / resume / reuse and evaluate cells with caching by configuration hash.
* :mod:`.report`: Markdown / CSV / JSON comparison with the paper, CED and loss plots.

Example::

    from lotr_gluon.tables import get_table, resolve_cells, run_table, report
    spec = get_table("lotr", 6)
    cells = resolve_cells(spec, data="datatang", scale="smoke")
    run_table(cells)
    markdown, paths = report(spec, cells, context={"data": "datatang", "scale": "smoke"})
"""
from .spec import (Cell, Metric, TableSpec, TABLES, PAPERS, get_table, list_tables, parse_table_id, load_paper,
                   paper_value, scale_overrides, parse_scale, benchmark_settings)
from .runner import (ResolvedCell, resolve_cells, select_cells, config_hash, canonical_config, cell_status,
                     run_cell, run_table, ensure_trained, evaluate_cell, cell_values, load_benchmark, run_benchmark,
                     experiments_dir, table_dir)
from .report import (build_rows, render_markdown, render_dry_run, render_paper_grid, write_report, make_plots,
                     report, MISSING)

__all__ = ["Cell", "Metric", "TableSpec", "TABLES", "PAPERS", "get_table", "list_tables", "parse_table_id",
           "load_paper", "paper_value", "scale_overrides", "parse_scale", "benchmark_settings", "ResolvedCell",
           "resolve_cells", "select_cells", "config_hash", "canonical_config", "cell_status", "run_cell",
           "run_table", "ensure_trained", "evaluate_cell", "cell_values", "load_benchmark", "run_benchmark",
           "experiments_dir", "table_dir", "build_rows", "render_markdown", "render_dry_run", "render_paper_grid",
           "write_report", "make_plots", "report", "MISSING"]
