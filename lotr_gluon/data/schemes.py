"""Landmark schemes: point count, left/right flip pairs, five alignment points and the NME normaliser.

A scheme describes one annotation layout (JD-landmark/LaPa 106, WFLW 98, iBUG/300W 68, Datatang 106). All
indices are 0-based. "Image-left" means the smaller x in an unmirrored photo, which is the subject's right side.

Sources
-------
- ``jd106``: flip pairs from mmpose ``configs/_base_/datasets/lapa.py`` (LaPa uses the JD-landmark 106 order);
  five points checked on ``shared/fixtures/jd106`` (pupil 104 is image-left, 54 is the end of the nose ridge,
  i.e. the nose tip; 84 and 90 are the outer mouth corners).
- ``wflw98``: flip pairs from mmpose ``configs/_base_/datasets/wflw.py``; eye centres 96, 97, nose tip 54,
  mouth corners 76, 82; NME normalised by the outer eye corners 60, 72 (Wu et al., LAB, 2018).
- ``300w68``: iBUG 68-point flip pairs (Sagonas et al., 300-W); NME normalised by the outer eye corners 36, 45.
- ``datatang106``: derived from the 800 training faces of the Datatang sample by ``tools/derive_flip_pairs.py``
  (generalised Procrustes mean shape, mirrored and matched with the Hungarian algorithm). See
  :data:`DATATANG106_FLIP_PAIRS`.
"""
from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np

from ..metrics import NORMS

__all__ = [
    "LandmarkScheme", "get_scheme", "available_schemes", "SCHEMES", "WFLW_SUBSETS",
    "JD106_FLIP_PAIRS", "WFLW98_FLIP_PAIRS", "IBUG68_FLIP_PAIRS", "DATATANG106_FLIP_PAIRS",
    "derive_flip_permutation", "mirror_symmetry_error", "pairs_from_permutation",
]

#: WFLW attribute subsets, in the order of the six attribute flags of the official annotation lines.
WFLW_SUBSETS = ("pose", "expression", "illumination", "makeup", "occlusion", "blur")


def _contour_pairs(n):
    """Pairs (i, n-1-i) of a contour of ``n`` points numbered from one side to the other."""
    return tuple((i, n - 1 - i) for i in range(n // 2))


#: JD-landmark / LaPa 106 points (mmpose ``lapa.py`` ``swap`` entries).
JD106_FLIP_PAIRS = _contour_pairs(33) + (
    # eyebrows: upper contours 33-37 / 42-46, lower contours 38-41 / 47-50
    (33, 46), (34, 45), (35, 44), (36, 43), (37, 42), (38, 50), (39, 49), (40, 48), (41, 47),
    # nose (51-54 ridge and 60 on the midline)
    (55, 65), (56, 64), (57, 63), (58, 62), (59, 61),
    # eyes
    (66, 79), (67, 78), (68, 77), (69, 76), (70, 75), (71, 82), (72, 81), (73, 80), (74, 83),
    # mouth (87, 93, 98, 102 on the midline)
    (84, 90), (85, 89), (86, 88), (91, 95), (92, 94), (96, 100), (97, 99), (101, 103),
    # pupils
    (104, 105),
)

#: WFLW 98 points (mmpose ``wflw.py`` ``swap`` entries).
WFLW98_FLIP_PAIRS = _contour_pairs(33) + (
    (33, 46), (34, 45), (35, 44), (36, 43), (37, 42), (38, 50), (39, 49), (40, 48), (41, 47),
    (55, 59), (56, 58),
    (60, 72), (61, 71), (62, 70), (63, 69), (64, 68), (65, 75), (66, 74), (67, 73),
    (76, 82), (77, 81), (78, 80), (83, 87), (84, 86), (88, 92), (89, 91), (93, 95),
    (96, 97),
)

#: iBUG / 300-W 68 points.
IBUG68_FLIP_PAIRS = _contour_pairs(17) + (
    (17, 26), (18, 25), (19, 24), (20, 23), (21, 22),
    (31, 35), (32, 34),
    (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46),
    (48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67),
)

#: Datatang 106 points, derived from the data (``tools/derive_flip_pairs.py``): the 800 training faces were
#: aligned by generalised Procrustes (similarity, no reflection), the mean shape was mirrored (x -> -x) and
#: matched to itself by the Hungarian algorithm, alternating with a similarity re-fit until the matching was
#: stable. 48 pairs; the 10 points on the midline are 16 (chin), 71-74 (nose ridge, 74 = tip), 83 (below the
#: tip), 88, 91, 99, 102 (mouth). Eyes: 51-58 contour of the image-left eye (51 outer corner, 54 inner
#: corner) with its pupil points 59, 60; 61-68 and 69, 70 for the image-right eye. Mouth corners: 86/90
#: (outer lip, the extreme ones) and 96/97 (inner lip). Symmetry of the mean shape under this permutation:
#: mean point error 0.70 %, max 1.53 % (point 74, the nose tip) of sqrt(w*h) of the mean shape's box.
DATATANG106_FLIP_PAIRS = _contour_pairs(33) + (
    (33, 46), (34, 45), (35, 44), (36, 43), (37, 42), (38, 50), (39, 49), (40, 48), (41, 47),
    (51, 64), (52, 63), (53, 62), (54, 61), (55, 66), (56, 65), (57, 67), (58, 68), (59, 69), (60, 70),
    (75, 76), (77, 78), (79, 80), (81, 85), (82, 84),
    (86, 90), (87, 89), (92, 93), (94, 95), (96, 97), (98, 100), (101, 103), (104, 105),
)


@dataclass(frozen=True)
class LandmarkScheme:
    """One landmark layout.

    Parameters
    ----------
    name : str
        Key of :func:`get_scheme`.
    num_points : int
        Number of landmarks N.
    flip_pairs : tuple of (int, int)
        0-based indices of points that swap under a horizontal mirror; points not listed map to themselves.
    five_points : tuple of 5 tuples of int
        Indices whose mean gives, in this order, the image-left eye centre (the subject's right eye), the
        image-right eye centre, the nose tip, the image-left and the image-right mouth corner: the order of
        insightface's ArcFace template (``insightface.utils.face_align.arcface_dst``).
    norm : {'box', 'inter_ocular'}
        NME normaliser: ``'box'`` = sqrt(w * h) of the ground-truth landmarks' bounding box (JD-landmark
        challenge), ``'inter_ocular'`` = distance between the points ``norm_indices``.
    norm_indices : tuple of int
        The two indices for ``'inter_ocular'``; empty for ``'box'``.
    threshold : float
        Failure threshold on the per-image NME for the failure rate (FR) and the AUC of the CED curve.
    subsets : tuple of str
        Attribute names of evaluation subsets (WFLW: pose, expression, illumination, makeup, occlusion, blur),
        looked up in ``FaceSample.attributes``.

    Raises
    ------
    ValueError
        When an index is out of range, a point is in two pairs, ``five_points`` does not have 5 entries,
        ``norm`` is unknown, or ``norm_indices`` does not have 2 entries for ``'inter_ocular'``.
    """

    name: str
    num_points: int
    flip_pairs: Tuple[Tuple[int, int], ...]
    five_points: Tuple[Tuple[int, ...], ...]
    norm: str = "box"
    norm_indices: Tuple[int, ...] = ()
    threshold: float = 0.08
    subsets: Tuple[str, ...] = ()

    def __post_init__(self):
        n = self.num_points
        seen = set()
        for pair in self.flip_pairs:
            if len(pair) != 2 or pair[0] == pair[1]:
                raise ValueError("scheme %s: bad flip pair %r" % (self.name, pair))
            for i in pair:
                if not 0 <= i < n:
                    raise ValueError("scheme %s: flip pair %r out of range [0, %d)" % (self.name, pair, n))
                if i in seen:
                    raise ValueError("scheme %s: point %d is in two flip pairs" % (self.name, i))
                seen.add(i)
        if len(self.five_points) != 5 or any(len(g) == 0 for g in self.five_points):
            raise ValueError("scheme %s: five_points needs 5 non-empty index groups" % self.name)
        for g in self.five_points:
            for i in g:
                if not 0 <= i < n:
                    raise ValueError("scheme %s: five-point index %d out of range [0, %d)" % (self.name, i, n))
        if self.norm not in NORMS:
            raise ValueError("scheme %s: norm %r not in %s" % (self.name, self.norm, NORMS))
        if self.norm == "inter_ocular":
            if len(self.norm_indices) != 2 or not all(0 <= i < n for i in self.norm_indices):
                raise ValueError("scheme %s: inter_ocular needs 2 indices in [0, %d)" % (self.name, n))
        if not 0 < self.threshold < 1:
            raise ValueError("scheme %s: threshold %r not in (0, 1)" % (self.name, self.threshold))

    def flip_permutation(self):
        """Index permutation of a horizontal mirror.

        Returns
        -------
        perm : ndarray of int64, shape (N,)
            ``flipped = pts[perm]`` after mirroring x (see :func:`lotr_gluon.data.augment.flip_points`):
            the new point i is the mirrored old point ``perm[i]``. An involution (``perm[perm] == arange``).
        """
        perm = np.arange(self.num_points, dtype=np.int64)
        for i, j in self.flip_pairs:
            perm[i], perm[j] = j, i
        return perm

    def norm_distance(self, landmarks):
        """NME normaliser of ground-truth landmarks.

        Parameters
        ----------
        landmarks : array_like, shape (N, 2) or (B, N, 2)
            Ground-truth points, pixels.

        Returns
        -------
        float or ndarray (B,)
            sqrt(w * h) of the points' bounding box (``'box'``) or the distance between ``norm_indices``
            (``'inter_ocular'``), pixels.
        """
        p = np.asarray(landmarks, np.float64)
        if p.shape[-2:] != (self.num_points, 2):
            raise ValueError("expected (..., %d, 2) landmarks, got %s" % (self.num_points, p.shape))
        if self.norm == "box":
            wh = p.max(axis=-2) - p.min(axis=-2)
            d = np.sqrt(wh[..., 0] * wh[..., 1])
        else:
            i, j = self.norm_indices
            d = np.linalg.norm(p[..., i, :] - p[..., j, :], axis=-1)
        return float(d) if np.ndim(d) == 0 else d


SCHEMES: Dict[str, LandmarkScheme] = {
    "jd106": LandmarkScheme(
        name="jd106", num_points=106, flip_pairs=JD106_FLIP_PAIRS,
        five_points=((104,), (105,), (54,), (84,), (90,)), norm="box", threshold=0.08),
    "wflw98": LandmarkScheme(
        name="wflw98", num_points=98, flip_pairs=WFLW98_FLIP_PAIRS,
        five_points=((96,), (97,), (54,), (76,), (82,)), norm="inter_ocular", norm_indices=(60, 72),
        threshold=0.10, subsets=WFLW_SUBSETS),
    "300w68": LandmarkScheme(
        name="300w68", num_points=68, flip_pairs=IBUG68_FLIP_PAIRS,
        five_points=(tuple(range(36, 42)), tuple(range(42, 48)), (30,), (48,), (54,)),
        norm="inter_ocular", norm_indices=(36, 45), threshold=0.08),
    "datatang106": LandmarkScheme(
        name="datatang106", num_points=106, flip_pairs=DATATANG106_FLIP_PAIRS,
        five_points=((59, 60), (69, 70), (74,), (86,), (90,)), norm="box", threshold=0.08),
}


def available_schemes():
    """Sorted tuple of the scheme names accepted by :func:`get_scheme`."""
    return tuple(sorted(SCHEMES))


def get_scheme(name):
    """The :class:`LandmarkScheme` called ``name``.

    Raises
    ------
    KeyError
        For an unknown name; the message lists the valid names.
    """
    try:
        return SCHEMES[name]
    except KeyError:
        raise KeyError("unknown landmark scheme %r; valid: %s" % (name, ", ".join(available_schemes()))) from None


# ------------------------------------------------------------------------------- deriving flip pairs

def _fit_similarity(src, dst):
    """``src`` (N, 2) mapped onto ``dst`` (N, 2) by the least-squares similarity (Umeyama, no reflection)."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, s, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    r = u @ np.diag([1.0, d]) @ vt
    scale = (s * np.array([1.0, d])).sum() / (a ** 2).sum()
    return scale * a @ r + md


def derive_flip_permutation(mean_shape, max_iter=20):
    """Left/right point permutation of a (roughly symmetric) mean face shape, found from geometry alone.

    The shape is mirrored (x -> -x) and each mean point is matched to one mirrored point by the Hungarian
    algorithm (``scipy.optimize.linear_sum_assignment`` on squared distances); the mirrored, permuted shape is
    re-fitted onto the mean by a similarity transform and the matching repeated until it no longer changes.

    Parameters
    ----------
    mean_shape : array_like, shape (N, 2)
        Mean shape (any units), e.g. the generalised Procrustes mean of the training faces
        (:func:`lotr_gluon.data.align.generalized_procrustes`).
    max_iter : int
        Upper bound on the match / re-fit rounds.

    Returns
    -------
    perm : ndarray of int64, shape (N,)
        ``mirrored[perm]`` corresponds to ``mean_shape`` point by point. Not guaranteed to be an involution
        on noisy shapes; check it (and :func:`pairs_from_permutation` raises when it is not).
    """
    from scipy.optimize import linear_sum_assignment

    mean = np.asarray(mean_shape, np.float64)
    c = mean.mean(0)
    mirrored = (mean - c) * np.array([-1.0, 1.0])
    # initial pose of the mirror: the rotation (grid of 1 degree over +-60) with the cheapest matching, so
    # that a tilted mean shape is handled
    best = None
    for deg in np.arange(-60.0, 60.5, 1.0):
        t = np.deg2rad(deg)
        rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        cand = mirrored @ rot.T + c
        cost = ((mean[:, None, :] - cand[None, :, :]) ** 2).sum(-1)
        rows, cols = linear_sum_assignment(cost)
        total = cost[rows, cols].sum()
        if best is None or total < best[0]:
            best = (total, cand)
    current = best[1]
    perm = None
    for _ in range(max_iter):
        cost = ((mean[:, None, :] - current[None, :, :]) ** 2).sum(-1)
        _, new = linear_sum_assignment(cost)
        if perm is not None and np.array_equal(new, perm):
            break
        perm = new
        fitted = _fit_similarity(mirrored[perm], mean)
        current = np.empty_like(fitted)
        current[perm] = fitted
    return perm.astype(np.int64)


def mirror_symmetry_error(shape, perm):
    """How far a shape is from its own mirror image under a point permutation.

    Parameters
    ----------
    shape : array_like, shape (N, 2)
    perm : array_like of int, shape (N,)

    Returns
    -------
    errors : ndarray float64, shape (N,)
        Distance between each point and the corresponding point of the mirrored, permuted shape after a
        least-squares similarity fit, divided by sqrt(w * h) of the shape's bounding box (the 'box' norm).
    """
    s = np.asarray(shape, np.float64)
    mirrored = (s * np.array([-1.0, 1.0]))[np.asarray(perm)]
    fitted = _fit_similarity(mirrored, s)
    wh = s.max(0) - s.min(0)
    return np.linalg.norm(fitted - s, axis=1) / np.sqrt(wh[0] * wh[1])


def pairs_from_permutation(perm):
    """Sorted tuple of the pairs (i, j), i < j, that a flip permutation swaps.

    Raises
    ------
    ValueError
        When ``perm`` is not an involution.
    """
    perm = np.asarray(perm)
    if not np.array_equal(perm[perm], np.arange(len(perm))):
        raise ValueError("permutation is not an involution")
    return tuple(sorted((int(i), int(j)) for i, j in enumerate(perm) if i < j))
