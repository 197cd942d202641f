"""Tests for lotr_gluon.vis: every writer produces a readable PNG of the expected size."""
import os

import cv2
import matplotlib
import numpy as np
import pytest

from lotr_gluon import vis


def _read_png(path):
    assert os.path.isfile(path) and os.path.getsize(path) > 0
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None
    return img


def test_backend_untouched():
    before = matplotlib.get_backend()
    import importlib

    importlib.reload(vis)
    assert matplotlib.get_backend() == before


def test_plot_ced(tmp_path):
    rng = np.random.RandomState(0)
    curves = {"LOTR": rng.rand(30) * 0.08, "baseline": rng.rand(30) * 0.12}
    path = vis.plot_ced(curves, 0.1, tmp_path / "sub" / "ced.png", title="WFLW")
    img = _read_png(path)
    assert 400 <= img.shape[0] <= 500 and 550 <= img.shape[1] <= 650  # 600 x 450 nominal
    with pytest.raises(ValueError):
        vis.plot_ced({}, 0.1, tmp_path / "x.png")


def test_line_colors_distinct_past_ten_lines(tmp_path):
    """Earp Table 3 draws 11 cells in one figure; the default colour cycle repeats after 10."""
    for n in (1, 10, 11, 20):
        colors = vis.line_colors(n)
        assert len(colors) == n and len(set(colors)) == n
    assert vis.line_colors(3) == [matplotlib.colormaps["tab10"](i) for i in range(3)]
    rng = np.random.RandomState(0)
    path = vis.plot_ced({"s%d" % i: rng.rand(30) * 0.1 for i in range(11)}, 0.1, tmp_path / "ced11.png")
    _read_png(path)


def test_plot_loss_curves_dict_and_records(tmp_path):
    steps = np.arange(20)
    p1 = vis.plot_loss_curves({"wing": (steps, 100.0 / (1 + steps)), "smooth_wing": (steps, 90.0 / (1 + steps))},
                              tmp_path / "loss_dict.png", title="train loss", logy=True)
    img = _read_png(p1)
    assert 400 <= img.shape[0] <= 500 and 650 <= img.shape[1] <= 750
    records = [{"epoch": e, "train_loss": 500.0 / (e + 1), "val_nme": 0.1 / (e + 1), "lr": 1e-4, "note": "x"}
               for e in range(5)]
    records.append({"epoch": 5, "train_loss": float("nan")})
    p2 = vis.plot_loss_curves(records, tmp_path / "loss_records.png")
    img = _read_png(p2)
    assert 650 <= img.shape[0] <= 780  # 3 subplots x 2.4 in x 100 dpi
    with pytest.raises(TypeError):
        vis.plot_loss_curves("nope", tmp_path / "bad.png")
    with pytest.raises(ValueError):
        vis.plot_loss_curves([{"epoch": 1}], tmp_path / "bad.png")


def test_draw_landmarks_returns_copy():
    img = np.zeros((32, 40, 3), np.uint8)
    pts = np.array([[5.0, 5.0], [20.2, 10.7], [np.nan, 3.0], [100.0, 100.0]])
    out = vis.draw_landmarks(img, pts, color=(255, 0, 0), radius=1)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert img.max() == 0  # input untouched
    assert tuple(out[5, 5]) == (255, 0, 0) and tuple(out[11, 20]) == (255, 0, 0)
    gray = vis.draw_landmarks(np.zeros((8, 8), np.float32), [[2, 2]])
    assert gray.shape == (8, 8, 3)
    with pytest.raises(ValueError):
        vis.draw_landmarks(img, np.zeros((3, 3)))


def test_save_prediction_grid(tmp_path):
    rng = np.random.RandomState(0)
    images = [rng.randint(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(7)]
    images[3] = rng.randint(0, 255, (128, 96, 3), dtype=np.uint8)  # resized to 64 x 64
    gts = rng.rand(7, 10, 2) * 50 + 5
    preds = gts + rng.randn(7, 10, 2)
    path = vis.save_prediction_grid(images, preds, gts, path=tmp_path / "grid.png", ncols=3)
    img = _read_png(path)
    assert img.shape == (3 * (64 + 22), 3 * 64, 3)
    # explicit nmes, no ground truth
    path = vis.save_prediction_grid(images[:2], preds[:2], path=tmp_path / "grid2.png", nmes=[0.01, 0.02])
    assert _read_png(path).shape == (64 + 22, 2 * 64, 3)
    with pytest.raises(ValueError):
        vis.save_prediction_grid(images, preds, gts)  # no path
    with pytest.raises(ValueError):
        vis.save_prediction_grid(images, preds[:3], path=tmp_path / "bad.png")


def test_plot_loss_functions(tmp_path):
    path = vis.plot_loss_functions(tmp_path / "fig2.png")
    img = _read_png(path)
    assert 580 <= img.shape[0] <= 680 and 1100 <= img.shape[1] <= 1250  # 1170 x 630 nominal
    # the two curves of LOTR Fig. 2 are drawn: tab:orange smooth-Wing and tab:blue Wing pixels (BGR)
    for bgr in ((14, 127, 255), (180, 119, 31)):
        near = np.all(np.abs(img.astype(int) - bgr) <= 30, axis=2)
        assert near.sum() > 500, bgr
    # all five curves on request
    path5 = vis.plot_loss_functions(tmp_path / "fig2_all.png", losses=("l1", "l2", "smooth_l1", "wing", "smooth_wing"))
    assert _read_png(path5).shape == img.shape


def test_loss_function_curves_are_the_printed_smooth_wing():
    t, w, eps = 0.01, 10.0, 2.0
    views = vis.loss_function_curves(t=t, w=w, eps=eps)
    assert [v["name"].split(" (")[0] for v in views] == ["global view", "at |x| = w", "at x = 0"]
    assert views[1]["thresholds"] == (w,) and views[2]["thresholds"] == (-t, t)
    s = (w + eps) / (2 * t * (eps + t))  # LOTR eq. (22)
    c1 = w - (w + eps) * np.log(1 + w / eps)  # eq. (23)
    c2 = s * t * t  # eq. (24)
    for view in views:
        x = view["x"]
        assert set(view["curves"]) == {"wing", "smooth_wing"}
        v, g = view["curves"]["smooth_wing"]
        ax = np.abs(x)
        ref = np.where(ax < t, s * x * x, np.where(ax > w, ax - c1 - c2, (w + eps) * np.log1p(ax / eps) - c2))
        np.testing.assert_allclose(v, ref, rtol=1e-12, atol=1e-15)
        # smooth-Wing gradient continuous inside each view; Wing's jumps at |x| = w (and 0)
        assert np.max(np.abs(np.diff(g))) < 2 * s * (x[1] - x[0]) + 1e-9
    _, gw = views[1]["curves"]["wing"]
    assert np.max(np.abs(np.diff(gw))) > 0.15  # w/(w+eps) -> 1
    _, gs = views[1]["curves"]["smooth_wing"]
    assert gs[-1] == 1.0 and gs[0] == pytest.approx((w + eps) / (eps + w - 2.0))
    with pytest.raises(KeyError):
        vis.loss_function_curves(losses=("huber",))
