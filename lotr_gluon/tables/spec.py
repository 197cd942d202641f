"""What each reproduced table is: its grid of cells (config file + overrides), its columns, its scales.

A **cell** is one trained model: an experiment YAML of ``experiments/<data>/`` plus ``KEY VALUE`` overrides
(e.g. ``LOSS.NAME wing``). A cell may instead *evaluate another cell's weights* with different evaluation
settings (``train_from`` + ``eval_overrides``, e.g. another heatmap decoder).

The papers' numbers live in ``lotr_gluon/tables/paper/<paper>_table<N>.json`` (:func:`load_paper`).
"""
import json
import os
from collections import namedtuple
from dataclasses import dataclass, field
from typing import Optional, Tuple

__all__ = ["Cell", "Metric", "TableSpec", "TABLES", "PAPERS", "get_table", "list_tables", "parse_table_id",
           "load_paper", "paper_value", "scale_overrides", "parse_scale", "benchmark_settings", "PAPER_DIR",
           "LOSSES", "LOTR_MODELS", "ROMAN"]

PAPER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "paper")
PAPERS = {"lotr": "LOTR (Watchareeruetai et al., arXiv 2109.10057)",
          "earp": "Earp et al., Sub-pixel face landmarks using heatmaps and a bag of tricks (arXiv 2103.03059)"}
ROMAN = {"1": "I", "2": "II", "3": "III", "4": "IV", "5": "V", "6": "VI", "7": "VII", "8": "VIII"}


@dataclass(frozen=True)
class Cell:
    """One entry of a table's grid.

    name : str
        Unique in the table; also the sub-folder of its results (``lotr_m/wing``).
    cfg : str
        Experiment file name inside ``experiments/<data>/`` (``lotr_m.yaml``).
    overrides : tuple of str
        ``KEY VALUE`` pairs applied on top of the file (and of the scale's overrides).
    row, col : str
        Labels of the cell in the paper's grid (``col`` empty for one-column tables).
    train_from : str or None
        Name of the cell whose trained weights this cell evaluates (no training of its own).
    eval_overrides : tuple of str
        ``KEY VALUE`` pairs applied only for evaluation and timing (e.g. ``MODEL.HEATMAP_DECODER vector``).
    """
    name: str
    cfg: str
    overrides: Tuple[str, ...] = ()
    row: str = ""
    col: str = ""
    train_from: Optional[str] = None
    eval_overrides: Tuple[str, ...] = ()


#: key (in our values and in the paper JSON), label, unit, decimals
Metric = namedtuple("Metric", "key label unit decimals")


def _m(key, label, unit="%", decimals=2):
    return Metric(key, label, unit, decimals)


@dataclass
class TableSpec:
    """A paper table: cells, the metrics compared with the paper, the ours-only extras, and what to plot."""
    paper: str
    table: str                      # "6"
    title: str
    cells: Tuple[Cell, ...]
    metrics: Tuple[Metric, ...]     # compared with the paper (paper / ours / difference)
    extras: Tuple[Metric, ...] = () # ours only
    flips: Tuple[bool, ...] = (True,)   # evaluations to run (False: plain, True: flip test)
    primary_flip: bool = True       # which evaluation 'nme', 'fr', 'auc' (and CED plots) refer to
    benchmark: bool = False         # time the models (lotr_gluon.benchmark)
    model_info: bool = False        # parameters, size, GFLOPs (lotr_gluon.flops.model_info)
    loss_curves: bool = False       # training-loss curves per row (Table VI)
    loss_functions_figure: bool = False  # LOTR Fig. 2 (vis.plot_loss_functions)
    data: Optional[Tuple[str, ...]] = None  # dataset folders the table makes sense for (None: any)
    row_label: str = "model"
    col_label: str = ""
    note: str = ""
    extra_notes: Tuple[str, ...] = field(default_factory=tuple)

    @property
    def key(self):
        """``<paper>-<table>``: the results folder name."""
        return "%s-%s" % (self.paper, self.table)

    @property
    def label(self):
        return "%s Table %s" % ("LOTR" if self.paper == "lotr" else "Earp et al.",
                                ROMAN.get(self.table, self.table) if self.paper == "lotr" else self.table)

    def cell(self, name):
        for c in self.cells:
            if c.name == name:
                return c
        raise KeyError("no cell %r in %s; cells: %s" % (name, self.label, ", ".join(c.name for c in self.cells)))

    @property
    def rows(self):
        out = []
        for c in self.cells:
            if c.row not in out:
                out.append(c.row)
        return out

    @property
    def cols(self):
        out = []
        for c in self.cells:
            if c.col and c.col not in out:
                out.append(c.col)
        return out


# ------------------------------------------------------------------------------------------ the grids
LOTR_MODELS = (("lotr_m", "LOTR-M", "lotr_m.yaml"), ("lotr_m_plus", "LOTR-M+", "lotr_m_plus.yaml"),
               ("lotr_r_plus", "LOTR-R+", "lotr_r_plus.yaml"))
LOSSES = (("l2", "L2"), ("l1", "L1"), ("smooth_l1", "smooth-L1"), ("wing", "Wing"), ("smooth_wing", "smooth-Wing"))
WFLW_SUBSETS = ("pose", "expression", "illumination", "makeup", "occlusion", "blur")
EARP_CFG = "earp_mnv2_1.0_sdd.yaml"   # present in experiments/jd and experiments/datatang
EARP_VECTOR_CFG = "earp_mnv2_1.0_sdd_vector.yaml"   # the Gaussian-vector model (LOTR Table V), jd and datatang
AUC, NME, FR = _m("auc", "AUC"), _m("nme", "NME"), _m("fr", "FR")
GFLOPS, SIZE, PARAMS = _m("gflops", "GFLOPs", "", 3), _m("size_mb", "size", "MB", 2), _m("params_m", "params", "M", 2)


def _table2():
    metrics = [NME, FR, AUC]
    for s in WFLW_SUBSETS:
        metrics += [_m("nme_" + s, "NME " + s), _m("fr_" + s, "FR " + s), _m("auc_" + s, "AUC " + s)]
    return TableSpec("lotr", "2", "WFLW: LOTR-HR+ on the test set and its six subsets",
                     (Cell("lotr_hr_plus", "lotr_hr_plus.yaml", row="LOTR-HR+"),), tuple(metrics),
                     data=("wflw",), note="Needs WFLW: --data wflw DATA.ROOT /path/to/WFLW.")


def _table3():
    cells = tuple(Cell(k, f, row=label) for k, label, f in LOTR_MODELS)
    cells += (Cell("earp", EARP_CFG, row="heatmap baseline (Earp et al., MobileNetV2 SDD)"),)
    return TableSpec("lotr", "3", "LOTR models and the heatmap baseline on the test set", cells,
                     (NME, FR, AUC, GFLOPS), model_info=True, data=("jd", "datatang"))


def _table5():
    r50 = ("MODEL.BACKBONE", "resnet50_v1")
    cells = (Cell("earp", EARP_CFG, row="heatmap [Earp] MobileNetV2"),
             # "with vectorization" (Sec. IV-G-1, after Xiong et al.): a model of its own, trained on Gaussian-vector
             # labels through band pooling (heatmap_baseline/vector.py), not the heatmap weights decoded differently
             Cell("earp_vector", EARP_VECTOR_CFG, row="heatmap [Earp] MobileNetV2, vectorised"),
             Cell("earp_r50", EARP_CFG, r50, row="heatmap [Earp] ResNet50"),
             Cell("earp_r50_vector", EARP_VECTOR_CFG, r50, row="heatmap [Earp] ResNet50, vectorised"),
             Cell("cnn_ffn_mnv2", "cnn_ffn_mnv2.yaml", row="CNN+FFN MobileNetV2"),
             Cell("cnn_ffn_r50", "cnn_ffn_r50.yaml", row="CNN+FFN ResNet50"))
    cells += tuple(Cell(k, f, row=label) for k, label, f in LOTR_MODELS)
    metrics = (_m("auc_noflip", "AUC w/o flip"), _m("auc_flip", "AUC flip"),
               _m("ms_noflip", "time w/o flip", "ms", 2), _m("ms_flip", "time flip", "ms", 2), SIZE, PARAMS)
    return TableSpec("lotr", "5", "Accuracy, inference time, size and parameters", cells, metrics,
                     extras=(_m("nme_noflip", "NME w/o flip"), _m("nme_flip", "NME flip"),
                             _m("fr_noflip", "FR w/o flip"), _m("fr_flip", "FR flip")),
                     flips=(False, True), benchmark=True, model_info=True, data=("jd", "datatang"),
                     extra_notes=("Times: lotr_gluon.benchmark.benchmark_model, Gluon runtime, batch 1, CPU unless "
                                  "DEVICES is set; flip = the image and its mirror as one batch of 2, plus "
                                  "un-mirroring and averaging; heatmap rows include their decoder.",))


def _table6():
    cells = tuple(Cell("%s/%s" % (k, loss), f, ("LOSS.NAME", loss), row=label, col=loss_label)
                  for k, label, f in LOTR_MODELS for loss, loss_label in LOSSES)
    return TableSpec("lotr", "6", "Loss functions", cells, (AUC,), extras=(NME, FR), loss_curves=True,
                     loss_functions_figure=True, data=("jd", "datatang"), col_label="loss")


def _table7():
    cells = tuple(Cell("%s/L%d" % (k, n), f, ("MODEL.ENC_LAYERS", str(n), "MODEL.DEC_LAYERS", str(n)),
                       row=label, col="L=%d" % n)
                  for k, label, f in LOTR_MODELS for n in range(1, 7))
    return TableSpec("lotr", "7", "Number of encoder / decoder layers", cells, (AUC,), extras=(NME, FR),
                     data=("jd", "datatang"), col_label="layers")


def _earp_strategy(table, strings, title):
    cells = tuple(Cell(s.lower(), EARP_CFG, ("MODEL.BACKBONE", "mobilenetv2_0.25", "MODEL.UPSAMPLER", s),
                       row=s) for s in strings)
    return TableSpec("earp", table, title, cells, (AUC, GFLOPS, SIZE), extras=(NME, FR), model_info=True,
                     data=("jd", "datatang"), row_label="upsampler",
                     extra_notes=("Grid chosen here (the paper's rows could not be checked offline).",))


def _earp_filters():
    cells = tuple(Cell("f%d" % f, EARP_CFG, ("MODEL.BACKBONE", "mobilenetv2_0.25", "MODEL.UPSAMPLER", "SDD",
                                             "MODEL.UPSAMPLER_FILTERS", str(f)), row=str(f))
                  for f in (16, 32, 64, 128, 256))
    return TableSpec("earp", "4", "Filters per upsampling block (SDD, MobileNetV2-0.25)", cells,
                     (AUC, GFLOPS, SIZE), extras=(NME, FR), model_info=True, data=("jd", "datatang"),
                     row_label="filters",
                     extra_notes=("Grid chosen here (the paper's rows could not be checked offline).",))


TABLES = {
    ("lotr", "2"): _table2(),
    ("lotr", "3"): _table3(),
    ("lotr", "5"): _table5(),
    ("lotr", "6"): _table6(),
    ("lotr", "7"): _table7(),
    ("earp", "2"): _earp_strategy("2", ("SDD", "SSD"), "Upsampling strategies, 48x48 heatmaps (MobileNetV2-0.25)"),
    ("earp", "3"): _earp_strategy("3", ("DDDD", "SDSD", "SSSD", "SSSS"),
                                  "Upsampling strategies, 96x96 heatmaps (MobileNetV2-0.25)"),
    ("earp", "4"): _earp_filters(),
}


def parse_table_id(table):
    """``'6'``, ``'VI'``, ``'vi'``, ``'table6'``, ``'Table VI'`` -> ``'6'``."""
    s = str(table).strip().lower().replace("table", "").strip()
    inv = {v.lower(): k for k, v in ROMAN.items()}
    if s in inv:
        return inv[s]
    if s.isdigit():
        return str(int(s))
    raise ValueError("unknown table %r (use a number such as 6 or a roman numeral such as VI)" % (table,))


def get_table(paper, table):
    """The :class:`TableSpec` of ``paper`` ('lotr' or 'earp') and ``table`` (``6``, ``'VI'``...).

    Raises
    ------
    KeyError
        Unknown paper or table; the message lists the tables there are.
    """
    paper = str(paper).lower()
    try:
        t = parse_table_id(table)
    except ValueError as err:
        raise KeyError(str(err)) from None
    if (paper, t) not in TABLES:
        raise KeyError("no table %r for paper %r; available: %s" % (
            table, paper, ", ".join("--paper %s --table %s" % k for k in sorted(TABLES))))
    return TABLES[(paper, t)]


def list_tables():
    """``[(paper, table, label, title, number of cells)]``."""
    return [(p, t, s.label, s.title, len(s.cells)) for (p, t), s in sorted(TABLES.items())]


# ------------------------------------------------------------------------------------------ paper data
def load_paper(spec_or_paper, table=None):
    """The paper's numbers for a table (``lotr_gluon/tables/paper/<paper>_table<N>.json``), or None."""
    if isinstance(spec_or_paper, TableSpec):
        paper, table = spec_or_paper.paper, spec_or_paper.table
    else:
        paper, table = spec_or_paper, parse_table_id(table)
    path = os.path.join(PAPER_DIR, "%s_table%s.json" % (paper, table))
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    data["_path"] = path
    return data


def paper_value(paper_data, cell, key):
    """``(value, provenance)`` of a paper number; ``(None, None)`` when absent or null."""
    if not paper_data:
        return None, None
    entry = paper_data.get("cells", {}).get(cell, {}).get(key)
    if not isinstance(entry, dict) or entry.get("value") is None:
        return None, None
    return float(entry["value"]), entry.get("provenance")


# ------------------------------------------------------------------------------------------ scales
SMOKE = ("TRAIN.EPOCHS", "1", "TRAIN.MAX_STEPS", "2", "TRAIN.BATCH_SIZE", "4", "DATA.MAX_SAMPLES", "16",
         "DATA.INPUT_SIZE", "64", "TEST.BATCH_SIZE", "16", "TRAIN.LOG_EVERY", "1", "TRAIN.VAL_EVERY", "1",
         "MODEL.PRETRAINED", "False")


def parse_scale(scale):
    """``'paper'`` -> ('paper', None); ``'smoke'`` -> ('smoke', None); ``'epochs=N'`` -> ('epochs', N)."""
    s = str(scale).strip().lower()
    if s in ("paper", "smoke"):
        return s, None
    if s.startswith("epochs="):
        try:
            n = int(s.split("=", 1)[1])
        except ValueError:
            n = 0
        if n >= 1:
            return "epochs", n
    raise ValueError("--scale must be 'paper', 'smoke' or 'epochs=N' (N >= 1), got %r" % (scale,))


def scale_overrides(scale, base_cfg=None):
    """``KEY VALUE`` list of a scale, applied before the cell's own overrides.

    ``paper``: none (the configs' schedules). ``smoke``: :data:`SMOKE` (1 epoch, 2 steps of 4 faces, 16 faces
    per split, 64x64 input, no ImageNet download): checks the machinery only. ``epochs=N``: ``TRAIN.EPOCHS N``
    and the configs' ``LR_STEPS`` scaled by N / EPOCHS (``base_cfg`` gives them).
    """
    kind, n = parse_scale(scale)
    if kind == "paper":
        return []
    if kind == "smoke":
        return list(SMOKE)
    out = ["TRAIN.EPOCHS", str(n)]
    if base_cfg is not None and base_cfg.TRAIN.EPOCHS > 0:
        steps = sorted({max(1, int(round(s * n / float(base_cfg.TRAIN.EPOCHS)))) for s in base_cfg.TRAIN.LR_STEPS
                        if s < base_cfg.TRAIN.EPOCHS})
        steps = [s for s in steps if s < n]
        out += ["TRAIN.LR_STEPS", "[%s]" % ", ".join(str(s) for s in steps)]
    return out


def benchmark_settings(scale):
    """Timed and warm-up runs of Table V's timing (batch 1)."""
    kind, _ = parse_scale(scale)
    return {"runs": 5, "warmup": 1} if kind == "smoke" else {"runs": 100, "warmup": 10}
