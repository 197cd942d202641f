"""What each reproduced table is: its grid of cells (config file + overrides), its columns, its scales.

A **cell** is one trained model: an experiment YAML of ``experiments/<data>/`` plus ``KEY VALUE`` overrides
(e.g. ``LOSS.NAME wing``). A cell may instead *evaluate another cell's weights* with different evaluation
settings (``train_from`` + ``eval_overrides``, e.g. another heatmap decoder).

The papers' numbers live in ``lotr_gluon/tables/paper/<paper>_table<N>.json`` (:func:`load_paper`), one file per
printed table of either paper (LOTR II-VII, Earp et al. 1-7), transcribed from ``shared/papers/lotr.md`` and
``earp.md``. Layout of a file:

* ``rows``, ``columns``: the row and column keys in the paper's order (the paper's grid: LOTR Table VI has the
  losses as rows and the models as columns, Table VII the layer counts as rows); ``groups`` where the paper groups
  rows (LOTR II: metric; LOTR IV: face detector; Earp 5: challenge); ``row_header``, ``caption``, ``dataset``,
  ``notes``.
* ``values``: one entry per printed number, row by row: ``table`` (as printed: ``"VI"``, ``"3"``), ``row``,
  ``column``, ``key`` (the metric key of our values: ``auc``, ``nme_pose``, ``ms_flip``, ``size_mb``...),
  ``value``, ``printed`` (the cell's text), and where they apply ``group``, ``bold``, ``mark`` (a dagger),
  ``label`` (the printed row text when the key differs), ``source``/``where`` (a number taken from the paper's text
  or another table, not from this table's grid).
* A ``NaN`` in the paper (LOTR Table VII) is stored as the JSON string ``"NaN"`` and read as ``float('nan')``; a
  ``-`` in the paper (LOTR Table II, LUVLi's subsets) is ``"value": null`` with ``"gap": "-"``. No other entry has
  a null value.

Key convention (how a :class:`Cell` finds its paper numbers, :func:`paper_entry`): an entry belongs to a cell when
``entry.key`` is the metric key, ``entry[index_by]`` equals ``cell.row`` (``index_by`` is ``"row"`` unless the file
says ``"column"``: Earp Table 6 prints the models as columns), and, for two-way tables (``cell.col`` set), the
other field equals ``cell.col``. Row keys are the paper's names with markup, citations and daggers dropped:

* LOTR II: methods (``LAB`` ... ``LOTR-HR+``), columns ``Test set``, ``Pose`` ... ``Blur``, keys ``nme``,
  ``fr_pose``, ``auc_makeup``...; III: ``LOTR-R+``, ``LOTR-M+``, ``LOTR-M``, ``Earp et al. (ResNet50)``,
  ``Earp et al. (MobileNetV2 1.0)``, ``Baidu-VIS``, ``Xiong et al.``, ``USTC``; IV: landmark source within
  detector group; V: ``<Model> (<Backbone>)``, e.g. ``Earp et al. with vectorization (ResNet50)``,
  ``CNN + FFN (MobileNetV2 1.0)``, ``LOTR-R+ (ResNet50)``; VI: losses ``L2``, ``L1``, ``Smooth-L1``, ``Wing``,
  ``Smooth-Wing`` x models ``LOTR-M``, ``LOTR-M+``, ``LOTR-R+``; VII: ``"1"`` ... ``"6"`` x models.
* Earp et al.: Tables 2-3 rows are the strategy strings (``SSSS``, ``DSSS``, ..., ``DDDD``; backbone
  MNetV2-0.25), Table 4 rows the strategies ``SSD``, ``SDD``, ``SSSD``, ``SDDSD`` (backbone MNetV2-1.0),
  Table 5 rows the backbones ``MNetV2-1.0``, ``ResNet18``, ``ResNet50`` (printed "Our-...") and the challenge
  entries, Table 6 columns the same three backbones (``index_by: column``), Table 1 ``MNetV2-0.25`` and the
  challenge entries. Metric keys: ``auc``, ``fr``, ``nme``, ``gflops``, ``size_mb``, ``ms_gpu``, ``ms_cpu``.
* Where a file has ``groups`` and a lookup gives none, the first group is meant (Earp 5: Challenge 1, the
  JD-landmark test set).
"""
import json
import os
from collections import namedtuple
from dataclasses import dataclass, field
from typing import Optional, Tuple

from ..data.schemes import WFLW_SUBSETS

__all__ = ["Cell", "Metric", "TableSpec", "TABLES", "PAPERS", "get_table", "list_tables", "parse_table_id",
           "load_paper", "paper_value", "scale_overrides", "parse_scale", "benchmark_settings", "PAPER_DIR",
           "LOSSES", "LOTR_MODELS", "ROMAN", "paper_entry", "paper_grid", "provenance", "PaperTableError"]

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
        Row and column keys of the cell in the paper's grid, as in ``paper/<paper>_table<N>.json`` (``col``
        empty when the table's columns are metrics); see the key convention in the module docstring.
    train_from : str or None
        Name of the cell whose trained weights this cell evaluates (no training of its own).
    eval_overrides : tuple of str
        ``KEY VALUE`` pairs applied only for evaluation and timing (e.g. ``MODEL.HEATMAP.DECODER vector``).
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
    paper_only: Tuple[str, ...] = ()  # paper rows we do not train (leaderboard entries): paper numbers only
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
LOSSES = (("l2", "L2"), ("l1", "L1"), ("smooth_l1", "Smooth-L1"), ("wing", "Wing"), ("smooth_wing", "Smooth-Wing"))
EARP_CFG = "earp_mnv2_1.0_sdd.yaml"   # present in experiments/jd and experiments/datatang
EARP_VECTOR_CFG = "earp_mnv2_1.0_sdd_vector.yaml"   # the Gaussian-vector model (LOTR Table V), jd and datatang
AUC, NME, FR = _m("auc", "AUC"), _m("nme", "NME"), _m("fr", "FR")
GFLOPS, SIZE, PARAMS = _m("gflops", "GFLOPs (paper = GMACs)", "", 3), _m("size_mb", "size", "MB", 2), _m("params_m", "params", "M", 2)


def _table2():
    metrics = [NME, FR, AUC]
    for s in WFLW_SUBSETS:
        metrics += [_m("nme_" + s, "NME " + s), _m("fr_" + s, "FR " + s), _m("auc_" + s, "AUC " + s)]
    # LOTR Table II: our LOTR-HR+ row; the six other methods are the paper's comparison (paper only)
    return TableSpec("lotr", "2", "WFLW: LOTR-HR+ on the test set and its six subsets",
                     (Cell("lotr_hr_plus", "lotr_hr_plus.yaml", row="LOTR-HR+"),), tuple(metrics),
                     data=("wflw",), note="Needs WFLW: --data wflw DATA.ROOT /path/to/WFLW.", row_label="method",
                     paper_only=("LAB", "Wing", "AWing", "LUVLi", "GV", "HIH"))


EARP_R50 = ("MODEL.BACKBONE.NAME", "resnet50_v1")


def _table3():
    # LOTR Table III, rows in the paper's order; the three leaderboard entries are paper only
    cells = (Cell("lotr_r_plus", "lotr_r_plus.yaml", row="LOTR-R+"),
             Cell("lotr_m_plus", "lotr_m_plus.yaml", row="LOTR-M+"),
             Cell("earp_r50", EARP_CFG, EARP_R50, row="Earp et al. (ResNet50)"),
             Cell("lotr_m", "lotr_m.yaml", row="LOTR-M"),
             Cell("earp", EARP_CFG, row="Earp et al. (MobileNetV2 1.0)"))
    return TableSpec("lotr", "3", "LOTR models and the heatmap models of Earp et al. on the test set", cells,
                     (AUC, FR, NME, GFLOPS), model_info=True, data=("jd", "datatang"),
                     paper_only=("Baidu-VIS", "Xiong et al.", "USTC"),
                     extra_notes=("GFLOPs are not a Table III column: the paper's numbers come from its text after "
                                  "Table III (LOTR models) and Earp et al. Table 6 (heatmap models).",))


def _table5():
    # LOTR Table V, the nine rows in the paper's order (row keys '<Model> (<Backbone>)')
    r50 = EARP_R50
    cells = (Cell("earp", EARP_CFG, row="Earp et al. (MobileNetV2 1.0)"),
             Cell("earp_r50", EARP_CFG, r50, row="Earp et al. (ResNet50)"),
             # "with vectorization" (Sec. IV-G-1, after Xiong et al.): a model of its own, trained on Gaussian-vector
             # labels through band pooling (heatmap_baseline/vector.py), not the heatmap weights decoded differently
             Cell("earp_vector", EARP_VECTOR_CFG, row="Earp et al. with vectorization (MobileNetV2 1.0)"),
             Cell("earp_r50_vector", EARP_VECTOR_CFG, r50, row="Earp et al. with vectorization (ResNet50)"),
             Cell("cnn_ffn_mnv2", "cnn_ffn_mnv2.yaml", row="CNN + FFN (MobileNetV2 1.0)"),
             Cell("cnn_ffn_r50", "cnn_ffn_r50.yaml", row="CNN + FFN (ResNet50)"),
             Cell("lotr_m", "lotr_m.yaml", row="LOTR-M (MobileNetV2 1.0)"),
             Cell("lotr_m_plus", "lotr_m_plus.yaml", row="LOTR-M+ (MobileNetV2 1.0)"),
             Cell("lotr_r_plus", "lotr_r_plus.yaml", row="LOTR-R+ (ResNet50)"))
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
    # LOTR Table VI: losses as rows, models as columns (cells listed model by model: one model's runs together)
    cells = tuple(Cell("%s/%s" % (k, loss), f, ("LOSS.NAME", loss), row=loss_label, col=label)
                  for k, label, f in LOTR_MODELS for loss, loss_label in LOSSES)
    return TableSpec("lotr", "6", "Loss functions", cells, (AUC,), extras=(NME, FR), loss_curves=True,
                     loss_functions_figure=True, data=("jd", "datatang"), row_label="loss", col_label="model")


def _table7():
    # LOTR Table VII: encoder/decoder layer counts as rows, models as columns
    cells = tuple(Cell("%s/L%d" % (k, n), f,
                       ("MODEL.TRANSFORMER.ENC_LAYERS", str(n), "MODEL.TRANSFORMER.DEC_LAYERS", str(n)),
                       row=str(n), col=label)
                  for k, label, f in LOTR_MODELS for n in range(1, 7))
    return TableSpec("lotr", "7", "Number of encoder / decoder layers", cells, (AUC,), extras=(NME, FR),
                     data=("jd", "datatang"), row_label="encoder/decoder layers", col_label="model")


# Earp et al.: Tables 1-4 train with the baseline settings of Sec. 3.3 / 4.1 only (no flip augmentation, rotation,
# erasing or flip test: experiments/<data>/earp_baseline_mnv2_0.25.yaml); Tables 5-6 are the final models with
# the four tricks of Sec. 5.1 (earp_final_mnv2_1.0_sdd.yaml).
EARP_BASE_CFG = "earp_baseline_mnv2_0.25.yaml"   # jd and datatang: MobileNetV2-0.25, DDDD, 256 filters
EARP_FINAL_CFG = "earp_final_mnv2_1.0_sdd.yaml"  # jd and datatang: MobileNetV2-1.0, SDD, 128 filters, tricks
#: Earp Table 3 rows, in the paper's order (all MobileNetV2-0.25, 256 filters)
EARP_TABLE3 = ("SSSS", "DSSS", "DDSS", "DSSD", "DSDS", "DDDS", "SSSD", "SDSD", "SSDD", "SDDD", "DDDD")
#: Earp Table 4 rows (MobileNetV2-1.0 with the reduced filter count of Sec. 4.2-4.3)
EARP_TABLE4 = ("SSD", "SDD", "SSSD", "SDDSD")
#: Earp Tables 5-6 backbones: (cell name, paper row key, MODEL.BACKBONE.NAME)
EARP_FINAL = (("mnv2_1.0", "MNetV2-1.0", "mobilenetv2_1.0"), ("r18", "ResNet18", "resnet18_v1"),
              ("r50", "ResNet50", "resnet50_v1"))
EARP_REDUCED_FILTERS = 128   # Earp Sec. 4.2 "reducing the number of filters to 128", used from Sec. 4.3 on
_EARP_BASE_NOTE = ("Baseline settings of Earp Sec. 3.3 / 4.1 (Adam 1e-3, 40 epochs, x0.1 at 20 and 30, batch 16, "
                   "PCA colour 0.05, colour jitter 0.4; no flip, rotation, erasing or flip test).")
_EARP_GFLOPS_NOTE = "GFLOPs: the paper's unit, multiply-accumulates (lotr_gluon.flops, GMACs)."


def _earp_table1():
    cells = (Cell("mnv2_0.25_dddd", EARP_BASE_CFG, row="MNetV2-0.25"),)
    return TableSpec("earp", "1", "Baseline: MobileNetV2-0.25, four deconvolutions (DDDD)", cells, (AUC, NME),
                     extras=(FR,), flips=(False,), primary_flip=False, data=("jd", "datatang"),
                     paper_only=("Baidu-VIS", "Xiong et al. (2020)", "USTC", "VIC"),
                     extra_notes=(_EARP_BASE_NOTE,))


def _earp_strategy(table, strings, title):
    # Earp Tables 2-3: MobileNetV2-0.25, 256 filters, one upsampling strategy per row
    cells = tuple(Cell(s.lower(), EARP_BASE_CFG, ("MODEL.HEATMAP.UPSAMPLER", s), row=s) for s in strings)
    return TableSpec("earp", table, title, cells, (AUC, GFLOPS, SIZE), extras=(NME, FR), flips=(False,),
                     primary_flip=False, model_info=True, data=("jd", "datatang"), row_label="strategy",
                     extra_notes=(_EARP_BASE_NOTE, _EARP_GFLOPS_NOTE))


def _earp_table4():
    # Earp Table 4: MobileNetV2-1.0 and 128 filters (Sec. 4.2-4.3); the last row is the Sec. 4.2 text experiment
    # (DDDD on MobileNetV2-0.25 with 128 filters, "a small boost in AUC of ~0.05"), not a printed row
    f = ("MODEL.HEATMAP.FILTERS", str(EARP_REDUCED_FILTERS))
    cells = tuple(Cell("mnv2_1.0_%s" % s.lower(), EARP_BASE_CFG, ("MODEL.BACKBONE.NAME", "mobilenetv2_1.0",
                                                                 "MODEL.HEATMAP.UPSAMPLER", s) + f, row=s)
                  for s in EARP_TABLE4)
    cells += (Cell("mnv2_0.25_dddd_f128", EARP_BASE_CFG, f, row="DDDD, MNetV2-0.25, 128 filters (Sec. 4.2 text)"),)
    return TableSpec("earp", "4", "MobileNetV2-1.0 with 128-filter upsampling blocks", cells, (AUC, GFLOPS),
                     extras=(NME, FR, SIZE), flips=(False,), primary_flip=False, model_info=True,
                     data=("jd", "datatang"), row_label="strategy",
                     extra_notes=(_EARP_BASE_NOTE, _EARP_GFLOPS_NOTE,
                                  "SDDSD has five blocks: 192x192 heatmaps at 192x192 input."))


def _earp_final_cells():
    return tuple(Cell(name, EARP_FINAL_CFG, ("MODEL.BACKBONE.NAME", backbone), row=row)
                 for name, row, backbone in EARP_FINAL)


def _earp_table5():
    return TableSpec("earp", "5", "Final models with the bag of tricks (JD-landmark test set)", _earp_final_cells(),
                     (AUC, FR, NME), extras=(_m("auc_noflip", "AUC w/o flip"), _m("nme_noflip", "NME w/o flip")),
                     flips=(False, True), primary_flip=True, data=("jd", "datatang"), row_label="backbone",
                     paper_only=("Baidu-VIS", "Xiong et al. (2020)", "USTC", "Sogou AI", "OPPO Research Institute"),
                     extra_notes=("Earp Sec. 5.1 tricks: training set extended by the mirror of every image "
                                  "(AUG.FLIP_MODE extend), flip test, AID information dropping (AUG.ERASING_MODE "
                                  "aid), rotation +-15 deg; SDD with 128 filters.",
                                  "Paper rows: Challenge 1 (JD-landmark test set); Challenge 2 (JD-landmark-2 "
                                  "validation) is in the paper JSON only."))


def _earp_table6():
    return TableSpec("earp", "6", "Inference time, GFLOPs and size of the final models", _earp_final_cells(),
                     (_m("ms_gpu", "GPU", "ms", 2), _m("ms_cpu", "CPU", "ms", 2), GFLOPS, SIZE),
                     extras=(_m("ms_noflip", "time w/o flip", "ms", 2), _m("ms_flip", "time flip", "ms", 2), PARAMS),
                     flips=(False, True), primary_flip=True, benchmark=True, model_info=True,
                     data=("jd", "datatang"), row_label="backbone",
                     extra_notes=("Paper times: TVM-compiled, GTX 1650 (GPU) and one core of an i5-9300H (CPU); "
                                  "ours (extras): lotr_gluon.benchmark, Gluon runtime, batch 1.",
                                  _EARP_GFLOPS_NOTE))


TABLES = {
    ("lotr", "2"): _table2(),
    ("lotr", "3"): _table3(),
    ("lotr", "5"): _table5(),
    ("lotr", "6"): _table6(),
    ("lotr", "7"): _table7(),
    ("earp", "1"): _earp_table1(),
    ("earp", "2"): _earp_strategy("2", ("SSSS", "DDDD"), "Pixel shuffle vs deconvolution (MobileNetV2-0.25)"),
    ("earp", "3"): _earp_strategy("3", EARP_TABLE3, "Stacked pixel-shuffle and deconvolution strategies "
                                                    "(MobileNetV2-0.25)"),
    ("earp", "4"): _earp_table4(),
    ("earp", "5"): _earp_table5(),
    ("earp", "6"): _earp_table6(),
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
class PaperTableError(ValueError):
    """A paper-table file is malformed (names the file and the entry)."""


_ENTRY_FIELDS = ("table", "row", "column", "key", "value")


def load_paper(spec_or_paper, table=None):
    """The paper's numbers for a table (``lotr_gluon/tables/paper/<paper>_table<N>.json``), or None.

    Parameters
    ----------
    spec_or_paper : TableSpec or str
        A table spec, or the paper (``'lotr'``, ``'earp'``) with ``table`` (``6``, ``'VI'``).

    Returns
    -------
    dict or None
        The file's content (layout in the module docstring) with ``_path`` added; every entry of ``values`` has
        ``table``, ``row``, ``column``, ``key`` and ``value``: a float, ``nan`` where the paper prints NaN (stored
        as the string ``"NaN"``), or None only for a ``-`` of the paper (``"gap": "-"``). None when there is no
        file.

    Raises
    ------
    PaperTableError
        An entry lacks a field, has a value that is not a number, ``"NaN"`` or a marked gap, or a
        (group, row, column, key) appears twice.
    """
    if isinstance(spec_or_paper, TableSpec):
        paper, table = spec_or_paper.paper, spec_or_paper.table
    else:
        paper, table = spec_or_paper, parse_table_id(table)
    path = os.path.join(PAPER_DIR, "%s_table%s.json" % (paper, table))
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    seen = set()
    for i, e in enumerate(data.get("values", [])):
        missing = [k for k in _ENTRY_FIELDS if k not in e]
        if missing:
            raise PaperTableError("%s: values[%d] lacks %s" % (path, i, ", ".join(missing)))
        v = e["value"]
        if v == "NaN":
            e["value"] = float("nan")
        elif v is None:
            if e.get("gap") != "-":
                raise PaperTableError("%s: values[%d] (%s, %s) is null without \"gap\": \"-\"" % (
                    path, i, e["row"], e["column"]))
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            raise PaperTableError("%s: values[%d] (%s, %s) has value %r (a number, \"NaN\" or a marked gap)" % (
                path, i, e["row"], e["column"], v))
        else:
            e["value"] = float(v)
        k = (e.get("group"), e["row"], e["column"], e["key"])
        if k in seen:
            raise PaperTableError("%s: values[%d] repeats %r" % (path, i, k))
        seen.add(k)
    data["_path"] = path
    return data


def paper_entry(paper_data, cell, key, group=None):
    """The entry of the paper's table that a cell's metric ``key`` compares with, or None.

    ``cell`` is a :class:`Cell` (its ``row`` and, if set, ``col``), a row key, or a ``(row, col)`` pair; the match
    follows the key convention of the module docstring (``index_by``; the first of ``groups`` unless ``group``).

    Raises
    ------
    PaperTableError
        More than one entry matches (the file or the cell's labels are ambiguous).
    """
    if not paper_data:
        return None
    if isinstance(cell, Cell):
        row, col = cell.row, cell.col
    elif isinstance(cell, tuple):
        row, col = cell
    else:
        row, col = cell, ""
    by = paper_data.get("index_by", "row")
    other = "column" if by == "row" else "row"
    found = [e for e in paper_data.get("values", [])
             if e["key"] == key and e[by] == row and (not col or e[other] == col)]
    groups = paper_data.get("groups") or []
    if group is not None:
        found = [e for e in found if e.get("group") == group]
    elif len(found) > 1 and groups:
        found = [e for e in found if e.get("group") == groups[0]]
    if len(found) > 1:
        raise PaperTableError("%s: %d entries match row %r, column %r, key %r" % (
            paper_data.get("_path"), len(found), row, col, key))
    return found[0] if found else None


def provenance(entry):
    """``'Table VI, L2, LOTR-M'`` (+ where it comes from when not from the table's grid)."""
    where = "Table %s, %s%s, %s" % (entry["table"], (entry["group"] + ", ") if entry.get("group") else "",
                                     entry["row"], entry["column"])
    if entry.get("source"):
        where += " (from %s: %s)" % (entry["source"], entry.get("where", ""))
    return where


def paper_value(paper_data, cell, key, group=None):
    """``(value, provenance)`` of the paper number a cell's metric compares with (:func:`paper_entry`).

    ``value`` is a float (``nan`` where the paper prints NaN) and ``provenance`` the table, row and column
    (:func:`provenance`); ``(None, 'gap')`` for a ``-`` in the paper; ``(None, None)`` when the paper has no such
    number.
    """
    e = paper_entry(paper_data, cell, key, group)
    if e is None:
        return None, None
    if e["value"] is None:
        return None, "gap"
    return float(e["value"]), provenance(e)


def paper_grid(paper_data):
    """The paper's table as printed: ``(columns, lines)`` with ``lines`` = ``[(group, row, {column: entry})]``
    in the paper's order. Columns are the file's ``columns`` plus any extra column of its entries (a number from
    the text, such as LOTR III's GFLOPs), without the ``(std)`` half of a ``mean ± std`` cell."""
    cols = list(paper_data.get("columns", []))
    lines, index = [], {}
    for e in paper_data.get("values", []):
        if e["column"].endswith("(std)"):
            continue
        if e["column"] not in cols:
            cols.append(e["column"])
        k = (e.get("group"), e["row"])
        if k not in index:
            index[k] = {}
            lines.append((e.get("group"), e["row"], index[k]))
        index[k][e["column"]] = e
    return cols, lines


# ------------------------------------------------------------------------------------------ scales
SMOKE = ("TRAIN.EPOCHS", "1", "TRAIN.MAX_STEPS", "2", "TRAIN.BATCH_SIZE", "4", "DATA.MAX_SAMPLES", "16",
         "DATA.INPUT_SIZE", "64", "TEST.BATCH_SIZE", "16", "TRAIN.LOG_EVERY", "1", "TRAIN.VAL_EVERY", "1",
         "MODEL.BACKBONE.PRETRAINED", "False", "MODEL.BACKBONE.PRETRAINED_FILE", "")


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
