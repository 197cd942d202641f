"""Landmark schemes: flip pairs, five points, normalisers; Datatang pairs re-derived from the data."""
import dataclasses

import numpy as np
import pytest

from lotr_gluon.data.align import five_points_from_landmarks, generalized_procrustes
from lotr_gluon.data.formats import load_300w, load_datatang, load_jd, load_wflw
from lotr_gluon.data.schemes import (DATATANG106_FLIP_PAIRS, LandmarkScheme, available_schemes,
                                     derive_flip_permutation, get_scheme, mirror_symmetry_error,
                                     pairs_from_permutation)

NAMES = ("300w68", "datatang106", "jd106", "wflw98")


def test_available_and_unknown():
    assert available_schemes() == NAMES
    with pytest.raises(KeyError) as e:
        get_scheme("lapa")
    for n in NAMES:
        assert n in str(e.value)


@pytest.mark.parametrize("name", NAMES)
def test_scheme_consistency(name):
    s = get_scheme(name)
    perm = s.flip_permutation()
    assert perm.shape == (s.num_points,) and perm.dtype == np.int64
    assert np.array_equal(perm[perm], np.arange(s.num_points))  # involution
    assert sorted(perm.tolist()) == list(range(s.num_points))
    assert pairs_from_permutation(perm) == tuple(sorted(tuple(sorted(p)) for p in s.flip_pairs))
    assert len(s.five_points) == 5
    # the two eyes and the two mouth corners are mirror images of each other, the nose tip is its own
    eye_l, eye_r, nose, mouth_l, mouth_r = (np.array(g) for g in s.five_points)
    assert sorted(perm[eye_l]) == sorted(eye_r) and sorted(perm[mouth_l]) == sorted(mouth_r)
    assert np.array_equal(perm[nose], nose)
    if s.norm == "inter_ocular":
        i, j = s.norm_indices
        assert perm[i] == j
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.threshold = 0.5


def test_scheme_values():
    assert get_scheme("jd106").norm == "box" and get_scheme("jd106").threshold == 0.08
    w = get_scheme("wflw98")
    assert (w.norm, w.norm_indices, w.threshold) == ("inter_ocular", (60, 72), 0.10)
    assert w.subsets == ("pose", "expression", "illumination", "makeup", "occlusion", "blur")
    assert get_scheme("300w68").norm_indices == (36, 45)
    assert get_scheme("datatang106").five_points == ((59, 60), (69, 70), (74,), (86,), (90,))
    assert get_scheme("jd106").five_points == ((104,), (105,), (54,), (84,), (90,))


def test_scheme_validation():
    with pytest.raises(ValueError):
        LandmarkScheme("x", 4, ((0, 1), (1, 2)), ((0,),) * 5)  # point in two pairs
    with pytest.raises(ValueError):
        LandmarkScheme("x", 4, ((0, 4),), ((0,),) * 5)  # out of range
    with pytest.raises(ValueError):
        LandmarkScheme("x", 4, (), ((0,),) * 4)  # four points
    with pytest.raises(ValueError):
        LandmarkScheme("x", 4, (), ((0,),) * 5, norm="inter_ocular")  # no indices
    with pytest.raises(ValueError):
        LandmarkScheme("x", 4, (), ((0,),) * 5, norm="diag")


def test_norm_distance():
    pts = np.zeros((106, 2))
    pts[:, 0] = np.linspace(10, 50, 106)  # box 40 x 90
    pts[:, 1] = np.linspace(0, 90, 106)
    assert get_scheme("jd106").norm_distance(pts) == pytest.approx(np.sqrt(40 * 90))
    w = np.zeros((2, 98, 2))
    w[:, 72, 0] = [3.0, 4.0]
    w[:, 72, 1] = [4.0, 3.0]
    assert np.allclose(get_scheme("wflw98").norm_distance(w), [5.0, 5.0])
    with pytest.raises(ValueError):
        get_scheme("wflw98").norm_distance(np.zeros((68, 2)))


def _fixture_sets(fixtures_dir):
    wflw = fixtures_dir / "wflw98"
    return {
        "jd106": load_jd(fixtures_dir / "jd106"),
        "wflw98": load_wflw(wflw / "WFLW_annotations" / "list_98pt_rect_attr_train_test" /
                            "list_98pt_rect_attr_test.txt", wflw / "WFLW_images"),
        "300w68": load_300w(fixtures_dir / "300w68"),
    }


def test_flip_pairs_on_fixture_faces(fixtures_dir):
    """Mirroring a real face with the scheme's permutation gives (nearly) the face back: the mean point error
    after a similarity fit is 3-10 % of sqrt(w*h) of the box (measured 0.03-0.10), against 0.34-0.36 without the
    permutation."""
    for name, samples in _fixture_sets(fixtures_dir).items():
        scheme = get_scheme(name)
        assert samples
        for s in samples:
            err = mirror_symmetry_error(s.landmarks, scheme.flip_permutation()).mean()
            err_id = mirror_symmetry_error(s.landmarks, np.arange(scheme.num_points)).mean()
            assert err < 0.12, (name, s.name, err)
            assert err < 0.4 * err_id, (name, s.name, err, err_id)


def _check_five_point_order(fp):
    eye_l, eye_r, nose, mouth_l, mouth_r = fp
    assert eye_l[0] < eye_r[0] and mouth_l[0] < mouth_r[0]  # image-left first
    assert max(eye_l[1], eye_r[1]) < nose[1] < min(mouth_l[1], mouth_r[1])  # eyes, nose, mouth from the top


def test_five_points_on_fixture_faces(fixtures_dir):
    for name, samples in _fixture_sets(fixtures_dir).items():
        for s in samples:
            _check_five_point_order(five_points_from_landmarks(s.landmarks, get_scheme(name)))


@pytest.fixture(scope="module")
def datatang_train(datatang_root):
    samples = load_datatang(datatang_root, "splits/train.txt")
    assert len(samples) == 800
    return samples


def test_datatang_flip_pairs_rederived(datatang_train):
    """The pairs in schemes.py are those derived from the 800 training faces, and the Procrustes mean shape is
    mirror-symmetric under them: measured mean point error 0.695 %, max 1.527 % (point 74, the nose tip) of
    sqrt(w*h) of the mean shape's box."""
    scheme = get_scheme("datatang106")
    mean, aligned = generalized_procrustes(np.stack([s.landmarks for s in datatang_train]))
    assert aligned.shape == (800, 106, 2)
    perm = derive_flip_permutation(mean)
    assert np.array_equal(perm[perm], np.arange(106))
    assert pairs_from_permutation(perm) == DATATANG106_FLIP_PAIRS
    assert np.array_equal(perm, scheme.flip_permutation())
    err = mirror_symmetry_error(mean, scheme.flip_permutation())
    assert err.mean() < 0.0075 and err.max() < 0.016
    assert int(err.argmax()) == 74
    # the identity (no permutation) is far from symmetric
    assert mirror_symmetry_error(mean, np.arange(106)).mean() > 10 * err.mean()


def test_datatang_five_points(datatang_train):
    """On the mean (frontal) shape and on every training face annotated 'forward', the five points are in the
    ArcFace order: image-left eye, image-right eye, nose tip, image-left and image-right mouth corner."""
    scheme = get_scheme("datatang106")
    pts = np.stack([s.landmarks for s in datatang_train])
    mean, _ = generalized_procrustes(pts)
    _check_five_point_order(five_points_from_landmarks(mean, scheme))
    forward = [s for s in datatang_train if s.attributes.get("orientation") == "forward"]
    assert len(forward) > 300
    for s in forward:
        _check_five_point_order(five_points_from_landmarks(s.landmarks, scheme))
    # the image-left eye is the subject's right eye: it holds contour point 0's side (the right temple)
    fp = five_points_from_landmarks(mean, scheme)
    assert abs(mean[0, 0] - fp[0, 0]) < abs(mean[32, 0] - fp[0, 0])
    # mouth corners are the extreme mouth points
    assert fp[3, 0] == mean[86:106, 0].min() and fp[4, 0] == mean[86:106, 0].max()
