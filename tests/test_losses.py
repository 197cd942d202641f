"""Tests for lotr_gluon.losses (LOTR eq. (6), (7), (20)-(24))."""
import math

import mxnet as mx
import numpy as np
import pytest

from lotr_gluon import losses as L

T, W, EPS = 0.01, 10.0, 2.0
# Hand-derived smooth-Wing constants for the defaults (LOTR eq. (22)-(24)).
A = W / (2 * T * (EPS + T))  # 248.7562...
S = W * math.log(1 + T / EPS) - W * T / (2 * (EPS + T))  # 0.0249998...
K = W / (W + EPS)  # 0.8333...
R = W * W / (W + EPS) - W * math.log(1 + W / EPS) + S  # -9.5592616...
C_WING = W - W * math.log(1 + W / EPS)  # -7.9175947...


def _val_grad(loss, xs, dtype="float64"):
    """Element-wise value and autograd derivative of `loss` at errors xs."""
    # one sample (B = len(xs), N = 1, one coordinate) per x, so that the
    # per-sample sum is the element-wise value
    x = mx.nd.array(np.asarray(xs, dtype=dtype).reshape(-1, 1, 1), dtype=dtype)
    label = mx.nd.zeros_like(x)
    x.attach_grad()
    with mx.autograd.record():
        out = loss(x, label)
    out.backward()
    vals = out.asnumpy()
    grads = x.grad.asnumpy().reshape(-1)
    return vals, grads


def test_smooth_wing_constants_numbers():
    c = L.smooth_wing_constants()
    assert c["a"] == pytest.approx(248.7562189, rel=1e-8)
    assert c["s"] == pytest.approx(0.0249997932, rel=1e-7)
    assert c["k"] == pytest.approx(0.8333333333, rel=1e-9)
    assert c["r"] == pytest.approx(-9.5592615657, rel=1e-9)
    assert (c["a"], c["s"], c["k"], c["r"]) == pytest.approx((A, S, K, R))


@pytest.mark.parametrize(
    "x, value, grad",
    [
        (0.0, 0.0, 0.0),
        (T / 2, A * (T / 2) ** 2, 2 * A * T / 2),  # 0.0062189, 2.48756
        (T, A * T * T, W / (EPS + T)),  # 0.0248756, 4.975124
        (1.0, W * math.log(1.5) - S, W / 3.0),  # 4.0296514, 3.33333
        (W, W * math.log(6.0) - S, K),  # 17.892595, 0.83333
        (15.0, 12.5 - R, K),  # 22.059262
        (-15.0, 12.5 - R, -K),
        (-1.0, W * math.log(1.5) - S, -W / 3.0),
        (-T / 2, A * (T / 2) ** 2, -2 * A * T / 2),
    ],
)
def test_smooth_wing_values_and_grads(x, value, grad):
    v, g = _val_grad(L.SmoothWingLoss(), [x])
    assert v[0] == pytest.approx(value, rel=1e-9, abs=1e-12)
    assert g[0] == pytest.approx(grad, rel=1e-9, abs=1e-12)
    nv, ng = L.loss_curve("smooth_wing", x)
    assert float(nv) == pytest.approx(value, rel=1e-12, abs=1e-15)
    assert float(ng) == pytest.approx(grad, rel=1e-12, abs=1e-15)


def test_smooth_wing_literal_numbers():
    v, g = _val_grad(L.SmoothWingLoss(), [T / 2, T, 1.0, W, -15.0])
    np.testing.assert_allclose(v, [0.00621891, 0.02487562, 4.02965142, 17.89259488, 22.05926157], rtol=1e-6)
    np.testing.assert_allclose(g, [2.48756219, 4.97512438, 3.33333333, 0.83333333, -0.83333333], rtol=1e-6)


@pytest.mark.parametrize("point", [T, W])
def test_smooth_wing_continuity(point):
    loss = L.SmoothWingLoss()
    d = 1e-9
    for sgn in (1.0, -1.0):
        v, g = _val_grad(loss, [sgn * (point - d), sgn * point, sgn * (point + d)])
        assert abs(g[0] - g[2]) < 1e-4 and abs(g[1] - g[0]) < 1e-4
        assert abs(v[0] - v[2]) < 1e-6 and abs(v[1] - v[0]) < 1e-6


def test_smooth_wing_continuity_nondefault():
    t, w, eps = 0.5, 4.0, 1.0
    for p in (t, w):
        v, g = L.loss_curve("smooth_wing", [p - 1e-9, p + 1e-9], t=t, w=w, eps=eps)
        assert abs(g[0] - g[1]) < 1e-4 and abs(v[0] - v[1]) < 1e-6
    c = L.smooth_wing_constants(t, w, eps)
    assert c["a"] == pytest.approx(w / (2 * t * (eps + t)))


def test_wing_has_gradient_jump_at_w():
    # contrast: plain Wing loss is value-continuous but not gradient-continuous
    v, g = _val_grad(L.WingLoss(), [W - 1e-9, W + 1e-9])
    assert abs(v[0] - v[1]) < 1e-6
    assert g[0] == pytest.approx(K) and g[1] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "x, value, grad",
    [
        (0.0, 0.0, 0.0),
        (1.0, W * math.log(1.5), W / 3.0),  # 4.0546511
        (5.0, W * math.log(3.5), W / 7.0),
        (W, W - C_WING, 1.0),  # 17.917595
        (-15.0, 15.0 - C_WING, -1.0),  # 22.917595
    ],
)
def test_wing_values_and_grads(x, value, grad):
    v, g = _val_grad(L.WingLoss(), [x])
    assert v[0] == pytest.approx(value, rel=1e-9, abs=1e-12)
    assert g[0] == pytest.approx(grad, rel=1e-9, abs=1e-12)
    assert L.wing_constant() == pytest.approx(-7.9175946923)


@pytest.mark.parametrize(
    "x, value, grad",
    [(0.0, 0.0, 0.0), (0.5, 0.125, 0.5), (1.0, 0.5, 1.0), (3.0, 2.5, 1.0), (-2.0, 1.5, -1.0)],
)
def test_smooth_l1_values_and_grads(x, value, grad):
    v, g = _val_grad(L.SmoothL1Loss(), [x])
    assert v[0] == pytest.approx(value) and g[0] == pytest.approx(grad)


def test_smooth_l1_beta():
    v, g = _val_grad(L.SmoothL1Loss(beta=2.0), [1.0, 3.0])
    np.testing.assert_allclose(v, [0.25, 2.0])
    np.testing.assert_allclose(g, [0.5, 1.0])


def test_l1_l2_values_and_grads():
    v, g = _val_grad(L.L1Loss(), [-3.0, 0.0, 2.5])
    np.testing.assert_allclose(v, [3.0, 0.0, 2.5])
    np.testing.assert_allclose(g, [-1.0, 0.0, 1.0])
    v, g = _val_grad(L.L2Loss(), [-3.0, 0.0, 2.5])
    np.testing.assert_allclose(v, [4.5, 0.0, 3.125])
    np.testing.assert_allclose(g, [-3.0, 0.0, 2.5])


@pytest.mark.parametrize("name", sorted(L.LOSSES))
def test_shape_sum_semantics_and_hybridize(name):
    rng = np.random.RandomState(0)
    pred_np = (rng.randn(4, 5, 2) * 6).astype("float32")
    label_np = (rng.randn(4, 5, 2) * 6).astype("float32")
    loss = L.get_loss(name)
    pred, label = mx.nd.array(pred_np), mx.nd.array(label_np)
    out = loss(pred, label)
    assert out.shape == (4,)
    # LOTR eq. (20): sum (not mean) over landmarks and coordinates
    ref, _ = L.loss_curve(name, pred_np - label_np)
    np.testing.assert_allclose(out.asnumpy(), ref.sum(axis=(1, 2)), rtol=1e-5)

    def grads(block):
        p = pred.copy()
        p.attach_grad()
        with mx.autograd.record():
            o = block(p, label)
        o.backward()
        return o.asnumpy(), p.grad.asnumpy()

    v_imp, g_imp = grads(loss)
    hyb = L.get_loss(name)
    hyb.hybridize()
    v_hyb, g_hyb = grads(hyb)
    v_hyb2, _ = grads(hyb)  # cached graph
    np.testing.assert_allclose(v_hyb, v_imp, rtol=1e-6)
    np.testing.assert_allclose(v_hyb2, v_imp, rtol=1e-6)
    np.testing.assert_allclose(g_hyb, g_imp, rtol=1e-6)
    _, ref_g = L.loss_curve(name, pred_np - label_np)
    np.testing.assert_allclose(g_imp, ref_g, rtol=1e-4, atol=1e-5)


def test_sum_semantics_hand_example():
    # errors of sample 0: 1, 2, 3, 4 px; sample 1: all 0 -> L1 sums 10 and 0
    pred = mx.nd.array([[[1, 2], [3, 4]], [[5, 5], [6, 6]]])
    label = mx.nd.array([[[0, 0], [0, 0]], [[5, 5], [6, 6]]])
    np.testing.assert_allclose(L.L1Loss()(pred, label).asnumpy(), [10.0, 0.0])
    np.testing.assert_allclose(L.L2Loss()(pred, label).asnumpy(), [15.0, 0.0])


@pytest.mark.parametrize("hybridize", [False, True])
def test_sample_weight(hybridize):
    rng = np.random.RandomState(1)
    pred = mx.nd.array(rng.randn(3, 4, 2) * 3)
    label = mx.nd.zeros((3, 4, 2))
    loss = L.SmoothWingLoss()
    if hybridize:
        loss.hybridize()
    base = loss(pred, label).asnumpy()
    elem, _ = L.loss_curve("smooth_wing", pred.asnumpy())
    w_lm = rng.rand(3, 4, 1)
    out = loss(pred, label, mx.nd.array(w_lm)).asnumpy()
    np.testing.assert_allclose(out, (elem * w_lm).sum(axis=(1, 2)), rtol=1e-5)
    w_full = rng.rand(3, 4, 2)
    out = loss(pred, label, mx.nd.array(w_full)).asnumpy()
    np.testing.assert_allclose(out, (elem * w_full).sum(axis=(1, 2)), rtol=1e-5)
    # and back to no sample weight after hybridization
    np.testing.assert_allclose(loss(pred, label).asnumpy(), base, rtol=1e-6)
    # global scalar weight
    np.testing.assert_allclose(L.SmoothWingLoss(weight=2.0)(pred, label).asnumpy(), 2 * base, rtol=1e-6)


def test_registry_and_errors():
    assert isinstance(L.get_loss("smooth_wing", t=0.1), L.SmoothWingLoss)
    assert isinstance(L.get_loss("Smooth-L1", beta=0.5), L.SmoothL1Loss)
    with pytest.raises(KeyError) as exc:
        L.get_loss("huber")
    for name in ("l1", "l2", "smooth_l1", "wing", "smooth_wing"):
        assert name in str(exc.value)
    with pytest.raises(KeyError):
        L.loss_curve("nope", [0.0])
    with pytest.raises(ValueError):
        L.SmoothWingLoss(t=10.0, w=10.0)
    with pytest.raises(ValueError):
        L.WingLoss(eps=0.0)
    with pytest.raises(ValueError):
        L.SmoothL1Loss(beta=-1.0)
    with pytest.raises(TypeError):
        L.loss_curve("l1", [0.0], w=3.0)


def test_loss_curve_shapes_and_value_continuity():
    x = np.linspace(-20, 20, 40001)
    for name in L.LOSSES:
        v, g = L.loss_curve(name, x)
        assert v.shape == x.shape and g.shape == x.shape
        assert v[20000] == 0.0  # loss(0) = 0
        assert np.all(v >= 0)
        # value continuity: no jumps on a fine grid
        assert np.max(np.abs(np.diff(v))) < 1.01 * np.max(np.abs(g)) * (x[1] - x[0]) + 1e-9
    # smooth-Wing gradient is also continuous: bounded by max |L''| * dx
    _, g = L.loss_curve("smooth_wing", np.linspace(-12, 12, 2400001))
    assert np.max(np.abs(np.diff(g))) < 2 * A * 1e-5 + 1e-9
