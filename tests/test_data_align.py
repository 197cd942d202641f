"""Five-point alignment: template, similarity estimate, round trips, real faces."""
import numpy as np
import pytest

from lotr_gluon.data.align import (ARCFACE_TEMPLATE_112, align_face, arcface_template, estimate_similarity,
                                   five_points_from_landmarks, generalized_procrustes, invert_affine,
                                   transform_points)
from lotr_gluon.data.formats import load_datatang, load_jd, read_image
from lotr_gluon.data.schemes import get_scheme


def _similarity(scale, deg, tx, ty):
    t = np.deg2rad(deg)
    return np.array([[scale * np.cos(t), -scale * np.sin(t), tx], [scale * np.sin(t), scale * np.cos(t), ty]])


def test_template_is_insightface():
    face_align = pytest.importorskip("insightface.utils.face_align")
    assert np.array_equal(ARCFACE_TEMPLATE_112, face_align.arcface_dst)
    assert np.allclose(arcface_template(112), face_align.arcface_dst, atol=1e-5)
    assert np.allclose(arcface_template(224), 2 * face_align.arcface_dst, atol=1e-5)


def test_template_scale_about_centre():
    t1, t2 = arcface_template(192), arcface_template(192, scale=0.75)
    assert t1.shape == (5, 2) and t1.dtype == np.float64
    assert np.allclose(t2 - 96.0, 0.75 * (t1 - 96.0))
    with pytest.raises(ValueError):
        arcface_template(0)


def test_estimate_similarity_matches_insightface():
    face_align = pytest.importorskip("insightface.utils.face_align")
    src = np.array([[100.0, 120.0], [160.0, 118.0], [131.0, 150.0], [105.0, 180.0], [155.0, 182.0]])
    M = estimate_similarity(src, arcface_template(112))
    assert M.shape == (2, 3) and M.dtype == np.float64
    assert np.allclose(M, face_align.estimate_norm(src, 112), atol=1e-6)


def test_estimate_similarity_exact_and_errors():
    M = _similarity(1.7, 23.0, 5.0, -8.0)
    src = np.random.default_rng(0).uniform(0, 100, (5, 2))
    assert np.allclose(estimate_similarity(src, transform_points(src, M)), M, atol=1e-9)
    with pytest.raises(ValueError):
        estimate_similarity(np.ones((5, 2)), src)  # degenerate
    with pytest.raises(ValueError):
        estimate_similarity(src[:, :1], src)
    with pytest.raises(ValueError):
        estimate_similarity(src * np.nan, src)


def test_invert_and_transform():
    M = _similarity(0.3, -40.0, 12.0, 7.5)
    Mi = invert_affine(M)
    pts = np.random.default_rng(1).uniform(-50, 500, (3, 106, 2))
    back = transform_points(transform_points(pts, M), Mi)
    assert back.shape == pts.shape and np.abs(back - pts).max() < 1e-9
    with pytest.raises(ValueError):
        invert_affine(np.zeros((2, 3)))
    with pytest.raises(ValueError):
        transform_points(pts, np.eye(3))


def test_five_points_mean_of_groups():
    s = get_scheme("300w68")
    pts = np.random.default_rng(2).uniform(0, 100, (68, 2))
    fp = five_points_from_landmarks(pts, s)
    assert fp.shape == (5, 2)
    assert np.allclose(fp[0], pts[36:42].mean(0)) and np.allclose(fp[2], pts[30])
    assert five_points_from_landmarks(np.stack([pts, pts]), s).shape == (2, 5, 2)
    with pytest.raises(ValueError):
        five_points_from_landmarks(pts[:60], s)


def test_align_synthetic_dot_follows_points():
    """A bright dot at an image point lands at transform_points(point, M) in the crop."""
    img = np.zeros((300, 400, 3), np.uint8)
    p = np.array([210.0, 140.0])
    img[138:143, 208:213] = 255
    five = np.array([[150.0, 120.0], [250.0, 110.0], [205.0, 170.0], [160.0, 220.0], [245.0, 215.0]])
    crop, M = align_face(img, five, 112)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    q = transform_points(p, M)
    ys, xs = np.nonzero(crop[..., 0] > 20)
    w = crop[ys, xs, 0].astype(float)
    centroid = np.array([(xs * w).sum() / w.sum(), (ys * w).sum() / w.sum()])
    assert np.linalg.norm(centroid - q) < 0.3


def test_align_real_faces_round_trip(fixtures_dir, datatang_root):
    """Aligned five points land near the template; points mapped to the crop and back move < 1e-3 px."""
    cases = [(s, get_scheme("jd106")) for s in load_jd(fixtures_dir / "jd106")]
    cases += [(s, get_scheme("datatang106")) for s in load_datatang(datatang_root, "splits/val.txt")[:3]]
    size = 192
    tpl = arcface_template(size)
    for sample, scheme in cases:
        img = read_image(sample.image_path)
        five = five_points_from_landmarks(sample.landmarks, scheme)
        crop, M = align_face(img, five, size)
        assert crop.shape == (size, size, 3) and crop.std() > 10  # a face, not a black border
        aligned_five = transform_points(five, M)
        assert np.linalg.norm(aligned_five - tpl, axis=1).mean() < 0.05 * size, sample.name
        crop_pts = transform_points(sample.landmarks, M)
        back = transform_points(crop_pts, invert_affine(M))
        assert np.abs(back - sample.landmarks).max() < 1e-3


def test_generalized_procrustes():
    rng = np.random.default_rng(3)
    base = rng.uniform(0, 1, (20, 2))
    shapes = np.stack([transform_points(base, _similarity(rng.uniform(0.5, 2), rng.uniform(-30, 30),
                                                          *rng.uniform(-5, 5, 2))) for _ in range(6)])
    mean, aligned = generalized_procrustes(shapes)
    assert mean.shape == (20, 2) and np.allclose(mean.mean(0), 0) and np.isclose(np.linalg.norm(mean), 1)
    assert np.abs(aligned - mean).max() < 1e-9
    # the mean is the base shape up to a similarity
    assert np.allclose(transform_points(base, estimate_similarity(base, mean)), mean, atol=1e-9)


# ----------------------------------------------------------------------------------- property tests
# Seeded random draws (hypothesis-style properties without the dependency): every case is reproducible.

def _random_similarity(rng):
    return _similarity(rng.uniform(0.2, 5.0), rng.uniform(-180, 180), *rng.uniform(-300, 300, 2))


def _complex_lsq(src, dst):
    """Independent least-squares similarity: w = a z + b over complex numbers (a = scale * e^{i angle}),
    a = sum conj(z - mean z) (w - mean w) / sum |z - mean z|^2; returned as a (2, 3) affine."""
    z, w = src[:, 0] + 1j * src[:, 1], dst[:, 0] + 1j * dst[:, 1]
    zc, wc = z - z.mean(), w - w.mean()
    a = (np.conj(zc) * wc).sum() / (np.abs(zc) ** 2).sum()
    b = w.mean() - a * z.mean()
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def test_similarity_estimate_properties():
    rng = np.random.default_rng(11)
    for _ in range(200):
        k = int(rng.integers(2, 12))
        src = rng.uniform(-100, 400, (k, 2))
        M = _random_similarity(rng)
        # exact correspondences: the transform itself is recovered
        np.testing.assert_allclose(estimate_similarity(src, transform_points(src, M)), M, atol=1e-7)
        # noisy ones: the least-squares similarity (independent complex-number solution)
        dst = transform_points(src, M) + rng.normal(0, 5.0, (k, 2))
        np.testing.assert_allclose(estimate_similarity(src, dst), _complex_lsq(src, dst), atol=1e-6)


def test_affine_round_trip_properties():
    rng = np.random.default_rng(12)
    for _ in range(200):
        M = _random_similarity(rng) if rng.uniform() < 0.5 else np.hstack([rng.uniform(-3, 3, (2, 2)),
                                                                          rng.uniform(-50, 50, (2, 1))])
        if abs(np.linalg.det(M[:, :2])) < 1e-2:
            continue
        p = rng.uniform(-500, 500, (int(rng.integers(1, 20)), 2))
        Mi = invert_affine(M)
        np.testing.assert_allclose(transform_points(transform_points(p, M), Mi), p, atol=1e-6)
        np.testing.assert_allclose(transform_points(transform_points(p, Mi), M), p, atol=1e-6)
        np.testing.assert_allclose(invert_affine(Mi), M, atol=1e-8)
        # transform_points is the affine map x -> A x + t, point by point
        np.testing.assert_allclose(transform_points(p, M), np.einsum("ij,nj->ni", M[:, :2], p) + M[:, 2])


@pytest.mark.parametrize("name", ["300w68", "datatang106", "jd106", "wflw98"])
def test_five_points_commute_with_affines_and_flip_is_an_involution(name):
    from lotr_gluon.data.augment import flip_points
    scheme = get_scheme(name)
    perm = scheme.flip_permutation()
    rng = np.random.default_rng(13)
    for _ in range(20):
        pts = rng.uniform(0, 256, (scheme.num_points, 2))
        M = _random_similarity(rng)
        # the five points are group means: they move with the landmarks under any affine
        np.testing.assert_allclose(five_points_from_landmarks(transform_points(pts, M), scheme),
                                   transform_points(five_points_from_landmarks(pts, scheme), M), atol=1e-6)
        width = float(rng.integers(16, 512))
        once = flip_points(pts, width, perm)
        np.testing.assert_allclose(flip_points(once, width, perm), pts, atol=1e-3)
        # a flip mirrors x about (W - 1) / 2 and reorders points: the multiset of y values is unchanged
        np.testing.assert_allclose(np.sort(once[:, 1]), np.sort(pts[:, 1]), atol=1e-3)
        np.testing.assert_allclose(once[:, 0], width - 1 - pts[perm, 0], atol=1e-3)


def test_procrustes_is_invariant_to_similarities_of_the_shapes():
    rng = np.random.default_rng(14)
    shapes = rng.uniform(0, 1, (5, 12, 2))
    mean, aligned = generalized_procrustes(shapes)
    moved = shapes.copy()
    for i in range(1, 5):  # the first shape fixes the orientation of the mean; move the others
        moved[i] = transform_points(shapes[i], _random_similarity(rng))
    mean2, aligned2 = generalized_procrustes(moved)
    np.testing.assert_allclose(mean2, mean, atol=1e-7)
    np.testing.assert_allclose(aligned2, aligned, atol=1e-7)
