"""Plots and landmark drawings for LOTR experiments.

Figures are built on :class:`matplotlib.figure.Figure` with an explicit
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg`, so this module never
calls ``matplotlib.use`` or ``pyplot`` and works headless without changing the
backend of the calling process.  Images are handled with OpenCV; all image
arrays passed in and returned are **RGB** ``uint8`` (OpenCV's BGR is used only
when writing files).

Functions
---------
plot_ced
    CED curves with AUC in the legend (LOTR Sec. IV, evaluation metrics).
plot_loss_curves
    Training/validation curves from log records or ``name -> (steps, values)``.
draw_landmarks
    Draw landmarks on a copy of an image.
save_prediction_grid
    Grid of images with predictions (green) and ground truth (red), each
    captioned with its NME (LOTR Fig. 3 style).
plot_loss_functions, loss_function_curves
    LOTR Fig. 2: Wing and smooth-Wing (optionally L1, L2, smooth-L1) and their
    gradients, global view and at both thresholds.
"""
import math
import numbers
import os

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter

from . import losses as _losses
from . import metrics as _metrics
from .data.formats import to_rgb

__all__ = [
    "GREEN",
    "RED",
    "plot_ced",
    "plot_loss_curves",
    "plot_training_runs",
    "draw_landmarks",
    "save_prediction_grid",
    "plot_loss_functions",
    "loss_function_curves",
]

GREEN = (0, 255, 0)  # RGB, predictions
RED = (255, 0, 0)  # RGB, ground truth

_STEP_KEYS = ("step", "global_step", "iter", "iteration", "batch", "epoch")


def _new_figure(figsize, dpi):
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def line_colors(n):
    """``n`` distinct matplotlib colours for ``n`` lines of one plot: ``tab10`` up to 10 lines, ``tab20`` up to
    20 (the default colour cycle repeats after 10, so an 11th line would share the first one's colour), then
    ``tab20`` again. Used by the CED, loss-curve and table training-curve figures."""
    import matplotlib
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _prepare_path(path):
    if path is None:
        raise ValueError("path is required")
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    return path


def _save_figure(fig, path):
    path = _prepare_path(path)
    fig.savefig(path, format="png")
    return path


# ----------------------------------------------------------------------------
# CED
# ----------------------------------------------------------------------------
def plot_ced(curves, threshold, path, title=None, num_bins=1000, figsize=(6.0, 4.5), dpi=100):
    """Plot cumulative error distribution curves, one per model.

    Parameters
    ----------
    curves : dict of str -> array_like, shape (M,)
        Model name -> per-image NMEs (fractions, e.g. from
        :func:`lotr_gluon.metrics.nme_per_image`).
    threshold : float
        Right end of the NME axis and the AUC/FR threshold
        (0.10 for WFLW, 0.08 for JD-landmark).
    path : str or os.PathLike
        Output PNG path (parent folders are created).
    title : str, optional
        Figure title.
    num_bins : int
        Points per curve (see :func:`lotr_gluon.metrics.ced`).
    figsize : tuple of float
        Inches; the PNG is ``figsize * dpi`` pixels (600 x 450 by default).
    dpi : int
        Dots per inch.

    Returns
    -------
    str
        ``path``.  The legend shows ``name (AUC=..., FR=...)`` in percent
        (AUC from :func:`lotr_gluon.metrics.auc`).

    Raises
    ------
    ValueError
        Empty ``curves``, or as :func:`lotr_gluon.metrics.ced`.
    """
    if not curves:
        raise ValueError("curves is empty")
    fig = _new_figure(figsize, dpi)
    ax = fig.add_subplot(1, 1, 1)
    for (name, nmes), color in zip(curves.items(), line_colors(len(curves))):
        x, y = _metrics.ced(nmes, threshold, num_bins=num_bins)
        a = _metrics.auc(nmes, threshold)
        fr = _metrics.failure_rate(nmes, threshold)
        ax.plot(x, y, color=color, label="%s (AUC=%.2f%%, FR=%.2f%%)" % (name, 100 * a, 100 * fr))
    ax.set_xlim(0.0, float(threshold))
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("NME")
    ax.set_ylabel("Proportion of images")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _save_figure(fig, path)


# ----------------------------------------------------------------------------
# training curves
# ----------------------------------------------------------------------------
def _records_to_series(records):
    """list of dict log records -> {key: (steps, values)} for numeric keys."""
    records = [r for r in records if isinstance(r, dict)]
    if not records:
        raise ValueError("no log records (dicts) given")
    step_key = next((k for k in _STEP_KEYS if any(k in r for r in records)), None)
    series = {}
    for i, rec in enumerate(records):
        step = rec.get(step_key, i) if step_key else i
        if not isinstance(step, numbers.Real):
            continue
        for key, val in rec.items():
            if key == step_key or isinstance(val, bool) or not isinstance(val, numbers.Real):
                continue
            if not math.isfinite(float(val)):
                continue
            xs, vs = series.setdefault(key, ([], []))
            xs.append(float(step))
            vs.append(float(val))
    if not series:
        raise ValueError("log records contain no numeric values")
    return series, (step_key or "record")


def plot_loss_curves(log_records, path, title=None, subplots=None, logy=False, xlabel=None,
                     figsize=None, dpi=100):
    """Plot training/validation curves.

    Parameters
    ----------
    log_records : dict or list of dict
        Either ``{name: (steps, values)}`` (e.g. one training loss per model;
        drawn on one axes by default), or a list of log records such as
        ``[{'epoch': 1, 'train_loss': 812.3, 'val_nme': 0.061}, ...]``
        (every numeric key except the step key becomes a series, one subplot
        each by default).  The step key is the first of ``step, global_step,
        iter, iteration, batch, epoch`` found, else the record index.
        Non-finite values are skipped.
    path : str or os.PathLike
        Output PNG path.
    title : str, optional
        Figure title.
    subplots : bool, optional
        One subplot per series (default: ``False`` for a dict, ``True`` for
        records).
    logy : bool
        Logarithmic y axis.
    xlabel : str, optional
        x-axis label (default: the step key, or ``'step'``).
    figsize : tuple of float, optional
        Inches (default ``(7, 4.5)``, or ``(7, 2.4 * n)`` with subplots).
    dpi : int
        Dots per inch.

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    ValueError
        Nothing to plot, or mismatched ``steps``/``values`` lengths.
    TypeError
        ``log_records`` is neither a dict nor a list of dicts.
    """
    if isinstance(log_records, dict):
        series = {}
        for name, sv in log_records.items():
            steps, values = (np.asarray(a, dtype=np.float64).reshape(-1) for a in sv)
            if steps.shape != values.shape:
                raise ValueError("series %r: %d steps but %d values" % (name, steps.size, values.size))
            ok = np.isfinite(values)
            series[str(name)] = (steps[ok], values[ok])
        default_x, default_sub = "step", False
    elif isinstance(log_records, (list, tuple)):
        series, default_x = _records_to_series(log_records)
        default_sub = True
    else:
        raise TypeError("log_records must be a dict name -> (steps, values) or a list of dicts")
    if not series:
        raise ValueError("nothing to plot")
    subplots = default_sub if subplots is None else bool(subplots)
    xlabel = xlabel or default_x
    n = len(series) if subplots else 1
    if figsize is None:
        figsize = (7.0, max(2.4 * n, 4.5)) if subplots else (7.0, 4.5)
    fig = _new_figure(figsize, dpi)
    axes = [fig.add_subplot(n, 1, i + 1) for i in range(n)]
    colors = line_colors(1 if subplots else len(series))   # one line per axes with subplots
    for i, (name, (xs, vs)) in enumerate(series.items()):
        ax = axes[i] if subplots else axes[0]
        ax.plot(xs, vs, label=name, marker="." if len(xs) < 50 else None, color=colors[0 if subplots else i])
        if subplots:
            ax.set_ylabel(name)
    for ax in axes:
        if logy:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        if not subplots:
            ax.legend(fontsize="small")
            ax.set_ylabel("value")
    axes[-1].set_xlabel(xlabel)
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    return _save_figure(fig, path)


def plot_training_runs(runs, path, title=None, baseline=None, loss_xlabel="epoch"):
    """Training curves of several runs in one figure: training loss (top) and val NME in % by epoch (bottom),
    one line per run, both on a log scale where every value is positive; the mean shape's val NME as a dotted
    line. Used by the table reports and the run comparison.

    Parameters
    ----------
    runs : list of tuple
        ``(label, (loss_x, loss_y), (val_epochs, val_nme_percent), collapsed)``; a collapsed run is drawn
        dashed, labelled "collapsed", with an x at its last point. Non-finite values are gaps.
    path : str
        Output PNG.
    title : str, optional
    baseline : float, optional
        Mean-shape val NME (%).
    loss_xlabel : str
        Unit of ``loss_x`` ('epoch' or 'step').

    Returns
    -------
    str
        ``path``.
    """
    fig = _new_figure((7.0, 7.0), 100)
    ax_l, ax_v = fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2)
    for (label, (le, lv), (ve, vv), bad), color in zip(runs, line_colors(len(runs))):
        kw = {"linestyle": "--"} if bad else {}
        name = label + (" (collapsed)" if bad else "")
        for ax, xs, ys in ((ax_l, le, lv), (ax_v, ve, vv)):
            if not len(xs):
                continue
            ax.plot(xs, [y if math.isfinite(y) else float("nan") for y in ys], marker="." if len(xs) < 50 else None,
                    label=name, color=color, **kw)
            if bad:
                ax.plot([xs[-1]], [next((y for y in reversed(ys) if math.isfinite(y)), float("nan"))], "x",
                        color=color, markersize=10)
    if baseline is not None:
        ax_v.axhline(baseline, color="gray", linestyle=":", label="mean shape")
    for ax, k in ((ax_l, 1), (ax_v, 2)):   # log scale: the first epochs' errors are 10x the final ones
        if all(y > 0 for r in runs for y in r[k][1] if math.isfinite(y)):
            ax.set_yscale("log")
    if ax_v.get_yscale() == "log":    # NME in plain numbers (3, 4, 5, ... 10, 20) rather than 10^1 alone
        ax_v.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax_v.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
    ax_l.set_ylabel("training loss")
    ax_l.set_xlabel(loss_xlabel)
    ax_v.set_ylabel("val NME (%)")
    ax_v.set_xlabel("epoch")
    for ax in (ax_l, ax_v):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        ax_l.set_title(title)
    fig.tight_layout()
    return _save_figure(fig, path)


# ----------------------------------------------------------------------------
# landmark drawing
# ----------------------------------------------------------------------------
def _as_rgb(img):
    """RGB uint8 of an image to draw on: float levels truncated, uint16 taken as levels, empty accepted."""
    return to_rgb(img, unit_range=True, round_values=False, uint16_to_8bit=False, allow_empty=True)


def draw_landmarks(img_rgb, pts, color=GREEN, radius=2, thickness=-1):
    """Draw landmarks as circles on a copy of an image.

    Parameters
    ----------
    img_rgb : ndarray, shape (H, W, 3), uint8
        RGB image (grayscale ``(H, W)`` and float images in ``[0, 1]`` or
        ``[0, 255]`` are converted).  Not modified.
    pts : array_like, shape (N, 2)
        ``(x, y)`` landmark coordinates, pixels of ``img_rgb``; non-finite
        points are skipped, points outside the image are clipped by OpenCV.
    color : tuple of 3 int
        RGB colour in ``[0, 255]`` (default green).
    radius : int
        Circle radius, pixels (``>= 1``).
    thickness : int
        OpenCV thickness; ``-1`` fills the circle.

    Returns
    -------
    ndarray, shape (H, W, 3), uint8
        A new RGB image with the landmarks drawn.

    Raises
    ------
    ValueError
        Bad image or ``pts`` shape.
    """
    out = _as_rgb(img_rgb).copy()
    pts = np.asarray(pts, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[-1] != 2:
        raise ValueError("pts must have shape (N, 2), got %s" % (pts.shape,))
    color = tuple(int(c) for c in color)
    radius = max(int(radius), 1)
    for x, y in pts:
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        cv2.circle(out, (int(round(x)), int(round(y))), radius, color, int(thickness), lineType=cv2.LINE_AA)
    return out


def save_prediction_grid(images, preds, gts=None, path=None, ncols=5, nmes=None, norm="box",
                         norm_indices=None, tile_size=None, radius=None, caption_height=22):
    """Write a PNG grid of images with predicted and ground-truth landmarks.

    Predictions are green, ground truth red (drawn first, so predictions are
    on top).  Each tile is captioned with its NME (LOTR Fig. 3 style).

    Parameters
    ----------
    images : sequence of ndarray, each (H_i, W_i, 3) uint8 RGB
        Images (converted as in :func:`draw_landmarks`).
    preds : array_like, shape (M, N, 2)
        Predicted landmarks, pixels of each image.
    gts : array_like, shape (M, N, 2), optional
        Ground-truth landmarks, pixels.
    path : str or os.PathLike
        Output PNG path (required).
    ncols : int
        Tiles per row (``>= 1``).
    nmes : array_like, shape (M,), optional
        NME per image for the captions; if omitted and ``gts`` is given it is
        computed with :func:`lotr_gluon.metrics.nme_per_image` using ``norm``
        and ``norm_indices``; without either the caption is the image index.
    norm : {'box', 'inter_ocular'}
        Normalisation used only when ``nmes`` is computed here.
    norm_indices : tuple of two int, optional
        Indices for ``norm='inter_ocular'``.
    tile_size : tuple of int (width, height), optional
        Every image is resized to this size (landmarks scaled accordingly);
        default: the size of the first image.
    radius : int, optional
        Landmark radius, pixels (default ``max(1, round(tile_width / 128))``).
    caption_height : int
        Height of the caption band under each tile, pixels.

    Returns
    -------
    str
        ``path``.  The PNG is ``ncols_used * W`` by
        ``rows * (H + caption_height)`` pixels.

    Raises
    ------
    ValueError
        Missing ``path``, no images, or mismatched lengths/shapes.
    """
    path = _prepare_path(path)
    images = [_as_rgb(im) for im in images]
    m = len(images)
    if m == 0:
        raise ValueError("no images")
    preds = np.asarray(preds, dtype=np.float64)
    if preds.ndim != 3 or preds.shape[0] != m or preds.shape[-1] != 2:
        raise ValueError("preds must have shape (%d, N, 2), got %s" % (m, preds.shape))
    if gts is not None:
        gts = np.asarray(gts, dtype=np.float64)
        if gts.shape != preds.shape:
            raise ValueError("gts shape %s differs from preds %s" % (gts.shape, preds.shape))
    if nmes is None and gts is not None:
        nmes = _metrics.nme_per_image(preds, gts, norm, norm_indices)
    if nmes is not None:
        nmes = np.asarray(nmes, dtype=np.float64).reshape(-1)
        if nmes.size != m:
            raise ValueError("%d nmes for %d images" % (nmes.size, m))
    ncols = max(1, min(int(ncols), m))
    if tile_size is None:
        tile_size = (images[0].shape[1], images[0].shape[0])
    tw, th = int(tile_size[0]), int(tile_size[1])
    if radius is None:
        radius = max(1, int(round(tw / 128.0)))
    nrows = int(math.ceil(m / float(ncols)))
    cell_h = th + int(caption_height)
    canvas = np.full((nrows * cell_h, ncols * tw, 3), 255, dtype=np.uint8)
    for i, img in enumerate(images):
        h, w = img.shape[:2]
        scale = np.array([tw / float(w), th / float(h)])
        tile = cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA) if (w, h) != (tw, th) else img
        if gts is not None:
            tile = draw_landmarks(tile, gts[i] * scale, RED, radius)
        tile = draw_landmarks(tile, preds[i] * scale, GREEN, radius)
        r, c = divmod(i, ncols)
        y0, x0 = r * cell_h, c * tw
        canvas[y0:y0 + th, x0:x0 + tw] = tile
        text = ("NME=%.2f%%" % (100 * nmes[i])) if nmes is not None else ("#%d" % i)
        font_scale = max(0.3, min(0.6, tw / 350.0))
        cv2.putText(canvas, text, (x0 + 3, y0 + th + int(caption_height) - 6), cv2.FONT_HERSHEY_SIMPLEX,
                    font_scale, (0, 0, 0), 1, cv2.LINE_AA)
    if not cv2.imwrite(path, cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR)):
        raise IOError("cv2 could not write %s" % path)
    return path


# ----------------------------------------------------------------------------
# LOTR Fig. 2
# ----------------------------------------------------------------------------
_LOSS_STYLE = [
    ("l1", "L1", dict(color="tab:gray", linestyle=":")),
    ("l2", "L2", dict(color="tab:green", linestyle=":")),
    ("smooth_l1", "smooth-L1", dict(color="tab:purple", linestyle="-.")),
    ("wing", "Wing", dict(color="tab:blue", linestyle="--")),
    ("smooth_wing", "smooth-Wing", dict(color="tab:orange", linestyle="-")),
]


_FIG2_LOSSES = ("wing", "smooth_wing")  # the two curves of LOTR Fig. 2


def loss_function_curves(t=0.01, w=10.0, eps=2.0, beta=1.0, losses=_FIG2_LOSSES):
    """The data of LOTR Fig. 2: loss values and gradients in the figure's three views.

    Views (LOTR Fig. 2 caption): global view ``x in [-1.5 w, 1.5 w]``; the
    outer threshold, ``x in [w - 2, w + 2]``; ``x = 0``, ``x in [-3 t, 3 t]``,
    which holds the inner threshold ``|x| = t`` of smooth-Wing.  Values come
    from :func:`lotr_gluon.losses.loss_curve` (Wing eq. (7), smooth-Wing
    eq. (21)-(24) as printed; also L1, L2, smooth-L1 eq. (6) on request).

    Parameters
    ----------
    t, w, eps : float
        smooth-Wing parameters, pixels (Wing uses ``w, eps``).
    beta : float
        smooth-L1 threshold, pixels.
    losses : sequence of str
        Loss names (default: the paper's two, ``('wing', 'smooth_wing')``).

    Returns
    -------
    list of dict
        One per view: ``{'name': str, 'x': ndarray (M,), 'thresholds': tuple of
        float (the x positions of ``t`` or ``w`` inside the view), 'curves':
        {loss name: (values (M,), gradients (M,))}}``.

    Raises
    ------
    KeyError
        Unknown loss name.
    ValueError
        Invalid loss parameters (see :mod:`lotr_gluon.losses`).
    """
    params = {"l1": {}, "l2": {}, "smooth_l1": {"beta": beta}, "wing": {"w": w, "eps": eps},
              "smooth_wing": {"t": t, "w": w, "eps": eps}}
    views = [
        ("global view", np.linspace(-1.5 * w, 1.5 * w, 3001), (-w, w)),
        ("at |x| = w", np.linspace(w - 2.0, w + 2.0, 2001), (w,)),
        ("at x = 0 (|x| = t marked)", np.linspace(-3.0 * t, 3.0 * t, 2001), (-t, t)),
    ]
    out = []
    for vname, x, thr in views:
        curves = {}
        for key in losses:
            if key not in params:
                raise KeyError("unknown loss %r; valid names: %s" % (key, ", ".join(sorted(params))))
            curves[key] = _losses.loss_curve(key, x, **params[key])
        out.append({"name": vname, "x": x, "thresholds": thr, "curves": curves})
    return out


def plot_loss_functions(path, t=0.01, w=10.0, eps=2.0, beta=1.0, figsize=(13.0, 7.0), dpi=90,
                        losses=_FIG2_LOSSES):
    """Draw LOTR Fig. 2: the losses (top row) and their gradients (bottom row).

    Columns as in the paper: global view, at the outer threshold ``|x| = w``
    (where the Wing gradient jumps from ``w/(w+eps)`` to 1 and smooth-Wing's
    is continuous at 1), at ``x = 0`` (where the Wing gradient jumps between
    ``-w/eps`` and ``+w/eps`` and smooth-Wing's is linear up to ``|x| = t``,
    marked by dotted lines).  By default the paper's two curves: Wing (blue,
    dashed) and smooth-Wing (orange, solid); data from
    :func:`loss_function_curves`.  The printed smooth-Wing's value step at
    ``|x| = t`` (1.49e-4 px for the defaults) is below the plot's resolution.

    Parameters
    ----------
    path : str or os.PathLike
        Output PNG path.
    t, w, eps : float
        smooth-Wing parameters (pixels); Wing uses ``w, eps``.
    beta : float
        smooth-L1 threshold, pixels (only when ``'smooth_l1'`` is in ``losses``).
    figsize : tuple of float
        Inches (default 13 x 7 -> 1170 x 630 px at dpi 90).
    dpi : int
        Resolution, dots per inch.
    losses : sequence of str
        Curves to draw (default ``('wing', 'smooth_wing')``; any of
        ``'l1', 'l2', 'smooth_l1', 'wing', 'smooth_wing'``).

    Returns
    -------
    str
        The PNG written (``path``).

    Raises
    ------
    KeyError, ValueError
        As :func:`loss_function_curves`.
    """
    views = loss_function_curves(t=t, w=w, eps=eps, beta=beta, losses=losses)
    styles = {key: (label, style) for key, label, style in _LOSS_STYLE}
    fig = _new_figure(figsize, dpi)
    for col, view in enumerate(views):
        x = view["x"]
        ax_v = fig.add_subplot(2, 3, col + 1)
        ax_g = fig.add_subplot(2, 3, col + 4)
        vlim, glim = [np.inf, -np.inf], [np.inf, -np.inf]
        for key in losses:
            label, style = styles[key]
            v, g = view["curves"][key]
            # mark discontinuities of the gradient as gaps instead of vertical lines
            g_plot = g.copy()
            jumps = np.flatnonzero(np.abs(np.diff(g)) > 0.2 * max(np.ptp(g), 1e-12) + 1e-9)
            if key in ("wing", "l1") and jumps.size:
                g_plot[jumps] = np.nan
            ax_v.plot(x, v, label=label, **style)
            ax_g.plot(x, g_plot, label=label, **style)
            if key != "l2" or col == 2:
                vlim = [min(vlim[0], v.min()), max(vlim[1], v.max())]
                glim = [min(glim[0], g.min()), max(glim[1], g.max())]
        pad_v = 0.05 * (vlim[1] - vlim[0] + 1e-12)
        pad_g = 0.05 * (glim[1] - glim[0] + 1e-12)
        ax_v.set_ylim(vlim[0] - pad_v, vlim[1] + pad_v)
        ax_g.set_ylim(glim[0] - pad_g, glim[1] + pad_g)
        ax_v.set_xlim(x[0], x[-1])
        ax_g.set_xlim(x[0], x[-1])
        ax_v.set_title("loss, %s" % view["name"])
        ax_g.set_title("gradient, %s" % view["name"])
        ax_g.set_xlabel("x (pixels)")
        for ax in (ax_v, ax_g):
            ax.grid(True, alpha=0.3)
            ax.axvline(0.0, color="k", linewidth=0.5)
            for thr in view["thresholds"]:
                ax.axvline(thr, color="k", linewidth=0.6, linestyle=":")
    fig.axes[0].legend(fontsize="small", loc="upper center")
    fig.suptitle("LOTR Fig. 2: Wing eq. (7) and smooth-Wing eq. (21)-(24) as printed (t=%g, w=%g, eps=%g)"
                 % (t, w, eps))
    fig.tight_layout()
    return _save_figure(fig, path)
