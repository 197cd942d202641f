"""Face-landmark evaluation metrics (pure numpy): NME, CED, AUC, failure rate.

Definitions follow LOTR (Watchareeruetai et al. 2021, arXiv 2109.10057,
Sec. IV "Evaluation metrics"):

* NME (normalized mean error), per image ``i`` with ``N`` landmarks::

      NME_i = (1/N) * sum_n ||pred_in - gt_in||_2 / d_i

  where ``d_i`` is the normalising distance: the square root of the area of the
  ground-truth landmarks' bounding box, ``sqrt(w_bbox * h_bbox)``, for the
  JD-landmark challenge (``norm='box'``), or the inter-ocular distance (outer eye
  corners; WFLW indices 60/72, 300W 36/45) for WFLW/300W (``norm='inter_ocular'``).
* FR (failure rate): fraction of images with ``NME > threshold``
  (threshold 0.10 on WFLW, 0.08 on JD-landmark).
* AUC: area under the cumulative error distribution (CED) curve on
  ``[0, threshold]`` divided by ``threshold`` (1.0 = every NME is 0).

All returned rates are fractions (``0.0103`` means 1.03 %).  Nothing is inferred
from the number of landmarks: the normalisation and its indices are explicit.
"""
import numpy as np

__all__ = ["NORMS", "normaliser", "nme_per_image", "ced", "auc", "failure_rate", "evaluate"]

NORMS = ("box", "inter_ocular")


def _as_landmarks(arr, name):
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[-1] == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[-1] != 2:
        raise ValueError("%s must have shape (M, N, 2) (or (N, 2)), got %s" % (name, arr.shape))
    if arr.shape[1] < 1:
        raise ValueError("%s has no landmarks" % name)
    return arr


def _as_nmes(nmes):
    nmes = np.asarray(nmes, dtype=np.float64).reshape(-1)
    if np.any(np.isnan(nmes)):
        raise ValueError("nmes contains NaN")
    return nmes


def _nmes_and_threshold(nmes, threshold):
    """The checked inputs of the CED, AUC and FR: (float64 NMEs, threshold); ValueError when ``nmes`` is empty
    or has a NaN, or ``threshold`` is not finite and > 0."""
    nmes = _as_nmes(nmes)
    if nmes.size == 0:
        raise ValueError("nmes is empty")
    return nmes, _check_threshold(threshold)


def _check_threshold(threshold):
    threshold = float(threshold)
    if not (np.isfinite(threshold) and threshold > 0):
        raise ValueError("threshold must be finite and > 0, got %r" % threshold)
    return threshold


def normaliser(gt, norm, norm_indices=None):
    """Per-image normalising distance for the NME.

    Parameters
    ----------
    gt : array_like, shape (M, N, 2) or (N, 2)
        Ground-truth landmarks, pixels.
    norm : {'box', 'inter_ocular'}
        ``'box'``: ``sqrt(w * h)`` of the axis-aligned bounding box of the
        ground-truth landmarks (JD-landmark challenge, LOTR Sec. IV).
        ``'inter_ocular'``: ``||gt[:, a] - gt[:, b]||_2`` with
        ``(a, b) = norm_indices`` (WFLW ``(60, 72)``, 300W ``(36, 45)``).
    norm_indices : tuple of two int, optional
        Landmark indices ``(a, b)``; required for ``'inter_ocular'``,
        ignored for ``'box'``.

    Returns
    -------
    ndarray, float64, shape (M,)
        Normalising distance per image, pixels (``> 0``).

    Raises
    ------
    ValueError
        Unknown ``norm``; ``norm_indices`` missing, not a pair or out of range
        for ``'inter_ocular'``; bad ``gt`` shape; a zero or non-finite
        normaliser (degenerate ground truth, would give an infinite NME).
    """
    gt = _as_landmarks(gt, "gt")
    if norm == "box":
        size = gt.max(axis=1) - gt.min(axis=1)  # (M, 2): bbox width, height
        d = np.sqrt(size[:, 0] * size[:, 1])
    elif norm == "inter_ocular":
        if norm_indices is None:
            raise ValueError("norm='inter_ocular' needs norm_indices=(a, b), "
                             "e.g. (60, 72) for WFLW-98 or (36, 45) for 300W-68")
        try:
            a, b = (int(i) for i in norm_indices)
        except (TypeError, ValueError):
            raise ValueError("norm_indices must be a pair of ints, got %r" % (norm_indices,))
        n = gt.shape[1]
        if not (-n <= a < n and -n <= b < n):
            raise ValueError("norm_indices %r out of range for %d landmarks" % ((a, b), n))
        d = np.linalg.norm(gt[:, a] - gt[:, b], axis=-1)
    else:
        raise ValueError("unknown norm %r; valid: %s" % (norm, ", ".join(NORMS)))
    bad = ~(np.isfinite(d) & (d > 0))
    if np.any(bad):
        raise ValueError("normaliser is zero or non-finite for image(s) %s" % np.flatnonzero(bad)[:10].tolist())
    return d


def nme_per_image(pred, gt, norm, norm_indices=None):
    """Normalized mean error of each image.

    ``NME_i = mean_n ||pred_in - gt_in||_2 / d_i`` (LOTR Sec. IV), with
    ``d_i`` from :func:`normaliser`.

    Parameters
    ----------
    pred, gt : array_like, shape (M, N, 2) or (N, 2)
        Predicted and ground-truth landmarks, pixels, same shape.
    norm : {'box', 'inter_ocular'}
        See :func:`normaliser`.
    norm_indices : tuple of two int, optional
        See :func:`normaliser`.

    Returns
    -------
    ndarray, float64, shape (M,)
        Dimensionless NME per image (a fraction; ``>= 0``).

    Raises
    ------
    ValueError
        Shape mismatch, or as :func:`normaliser`.
    """
    pred = _as_landmarks(pred, "pred")
    gt = _as_landmarks(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError("pred %s and gt %s shapes differ" % (pred.shape, gt.shape))
    d = normaliser(gt, norm, norm_indices)
    err = np.linalg.norm(pred - gt, axis=-1).mean(axis=1)  # (M,) pixels
    return err / d


def ced(nmes, threshold, num_bins=1000):
    """Cumulative error distribution (CED) curve.

    Parameters
    ----------
    nmes : array_like, shape (M,)
        Per-image NMEs (fractions, ``>= 0``).
    threshold : float
        Upper end of the error axis (e.g. 0.10 for WFLW, 0.08 for JD-landmark).
    num_bins : int
        Number of points on ``[0, threshold]`` (``>= 2``).

    Returns
    -------
    x : ndarray, float64, shape (num_bins,)
        ``linspace(0, threshold, num_bins)``.
    y : ndarray, float64, shape (num_bins,)
        Fraction of images with ``NME <= x`` (values in ``[0, 1]``,
        non-decreasing).

    Raises
    ------
    ValueError
        Empty or NaN ``nmes``, non-positive ``threshold`` or ``num_bins < 2``.
    """
    nmes, threshold = _nmes_and_threshold(nmes, threshold)
    num_bins = int(num_bins)
    if num_bins < 2:
        raise ValueError("num_bins must be >= 2, got %d" % num_bins)
    x = np.linspace(0.0, threshold, num_bins)
    y = np.searchsorted(np.sort(nmes), x, side="right") / float(nmes.size)
    return x, y


def auc(nmes, threshold):
    """Area under the CED curve on ``[0, threshold]``, divided by ``threshold``.

    Computed exactly: ``(1/T) int_0^T CED(x) dx = mean_i clip(1 - NME_i / T, 0, 1)``
    (each image contributes the length of ``[NME_i, T]``).  This is the limit of
    the usual trapezoidal integration of :func:`ced` for ``num_bins -> inf``.

    Parameters
    ----------
    nmes : array_like, shape (M,)
        Per-image NMEs (fractions).
    threshold : float
        ``T > 0``, e.g. 0.10 (WFLW ``AUC@0.1``) or 0.08 (JD-landmark).

    Returns
    -------
    float
        AUC in ``[0, 1]``; 1.0 when every NME is 0, 0.0 when every NME is
        ``>= threshold``.

    Raises
    ------
    ValueError
        Empty or NaN ``nmes``, or non-positive ``threshold``.
    """
    nmes, threshold = _nmes_and_threshold(nmes, threshold)
    return float(np.mean(np.clip(1.0 - nmes / threshold, 0.0, 1.0)))


def failure_rate(nmes, threshold):
    """Fraction of images whose NME is strictly greater than ``threshold``.

    Parameters
    ----------
    nmes : array_like, shape (M,)
        Per-image NMEs (fractions).
    threshold : float
        Failure threshold, e.g. 0.10 (WFLW ``FR@0.1``) or 0.08 (JD-landmark).

    Returns
    -------
    float
        Failure rate in ``[0, 1]`` (an NME equal to the threshold is not a failure).

    Raises
    ------
    ValueError
        As :func:`auc`.
    """
    nmes, threshold = _nmes_and_threshold(nmes, threshold)
    return float(np.mean(nmes > threshold))


def _summary(nmes, threshold):
    if nmes.size == 0:
        nan = float("nan")
        return {"nme": nan, "fr": nan, "auc": nan, "num_images": 0}
    return {
        "nme": float(np.mean(nmes)),
        "fr": failure_rate(nmes, threshold),
        "auc": auc(nmes, threshold),
        "num_images": int(nmes.size),
    }


def evaluate(pred, gt, norm, norm_indices, threshold, subsets=None):
    """NME, FR and AUC of a test set (and of its subsets).

    Parameters
    ----------
    pred, gt : array_like, shape (M, N, 2)
        Predicted and ground-truth landmarks, pixels.
    norm : {'box', 'inter_ocular'}
        Normalisation, see :func:`normaliser`.
    norm_indices : tuple of two int or None
        Indices for ``'inter_ocular'`` (WFLW ``(60, 72)``, 300W ``(36, 45)``);
        pass ``None`` for ``'box'``.
    threshold : float
        FR/AUC threshold (0.10 for WFLW, 0.08 for JD-landmark); required, as
        it differs between benchmarks.
    subsets : dict of str -> array_like of bool, shape (M,), optional
        Boolean masks of subsets (e.g. WFLW pose, expression, illumination,
        make-up, occlusion, blur).

    Returns
    -------
    dict
        ``{'nme': float, 'fr': float, 'auc': float, 'threshold': float,
        'num_images': int, 'norm': str, 'subsets': {name: {'nme', 'fr', 'auc',
        'num_images'}}}`` with fractions (0.0103 means 1.03 %); the
        ``'subsets'`` key is present only when ``subsets`` is given.  An empty
        subset reports NaN metrics and ``num_images = 0``.  All values are
        plain Python types (JSON-serialisable).

    Raises
    ------
    ValueError
        As :func:`nme_per_image`; a subset mask that is not boolean or has the
        wrong length; non-positive ``threshold``.
    """
    threshold = _check_threshold(threshold)
    nmes = nme_per_image(pred, gt, norm, norm_indices)
    out = _summary(nmes, threshold)
    out["threshold"] = threshold
    out["norm"] = str(norm)
    if subsets is not None:
        out["subsets"] = {}
        for name, mask in subsets.items():
            mask = np.asarray(mask)
            if mask.dtype != bool:
                raise ValueError("subset %r mask must be boolean, got dtype %s" % (name, mask.dtype))
            if mask.shape != nmes.shape:
                raise ValueError("subset %r mask has shape %s, expected %s" % (name, mask.shape, nmes.shape))
            out["subsets"][str(name)] = _summary(nmes[mask], threshold)
    return out
