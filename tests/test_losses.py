"""Tests for lotr_gluon.losses (LOTR eq. (6), (7), (20)-(24))."""
import math

import mxnet as mx
import numpy as np
import pytest

from lotr_gluon import losses as L

T, W, EPS = 0.01, 10.0, 2.0
# Smooth-Wing constants exactly as printed in LOTR eq. (22)-(24), computed here by hand.
S = (W + EPS) / (2 * T * (EPS + T))  # eq. (22): 298.5074626...
C1 = W - (W + EPS) * math.log(1 + W / EPS)  # eq. (23): -11.5011136...
C2 = S * T * T  # eq. (24): 0.0298507...
K = W / (W + EPS)  # Wing log-part slope at |x| = w: 0.8333...
C_WING = W - W * math.log(1 + W / EPS)  # -7.9175947...


def _printed_swing(x, t=T, w=W, eps=EPS):
    """LOTR eq. (21)-(24) transcribed branch by branch in plain numpy (independent of lotr_gluon)."""
    s = (w + eps) / (2 * t * (eps + t))
    c1 = w - (w + eps) * np.log(1 + w / eps)
    c2 = s * t ** 2
    x = np.asarray(x, dtype=np.float64)
    ax = np.abs(x)
    out = np.empty_like(x)
    lo, hi = ax < t, ax > w
    mid = ~lo & ~hi
    out[lo] = s * x[lo] ** 2
    out[hi] = ax[hi] - c1 - c2
    out[mid] = (w + eps) * np.log(1 + ax[mid] / eps) - c2
    return out


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
    assert c["s"] == pytest.approx(298.5074626866, rel=1e-10)
    assert c["c1"] == pytest.approx(-11.5011136307, rel=1e-10)
    assert c["c2"] == pytest.approx(0.0298507462687, rel=1e-10)
    assert (c["s"], c["c1"], c["c2"]) == pytest.approx((S, C1, C2), rel=1e-12)


# both sides of both thresholds, the thresholds themselves, and one point in each branch
_D = 1e-6
_POINTS = [0.0, T / 2, T - _D, T, T + _D, 1.0, W - _D, W, W + _D, 15.0]


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_smooth_wing_values_match_printed_formula(sign):
    xs = sign * np.array(_POINTS)
    ref = _printed_swing(xs)
    v, _ = _val_grad(L.SmoothWingLoss(), xs)
    np.testing.assert_allclose(v, ref, rtol=1e-12, atol=1e-15)
    nv, _ = L.loss_curve("smooth_wing", xs)
    np.testing.assert_allclose(nv, ref, rtol=1e-12, atol=1e-15)
    # hand values: s (t/2)^2, 12 ln 1.5 - c2, 15 - c1 - c2
    np.testing.assert_allclose(v[[1, 5, 9]], [0.00746268656716, 4.83573055103, 26.4712628845], rtol=1e-9)


def test_smooth_wing_value_step_at_t_and_continuity_at_w():
    step = (W + EPS) * math.log(1 + T / EPS) - 2 * S * T * T  # hand: 1.4900559e-4
    assert L.smooth_wing_value_step() == pytest.approx(step, rel=1e-9)
    assert step == pytest.approx(1.490056e-4, rel=1e-6)
    v, _ = _val_grad(L.SmoothWingLoss(), [T * (1 - 1e-12), T, -T * (1 - 1e-12), -T])
    assert v[0] == pytest.approx(C2, rel=1e-9)  # just below t: s t^2
    assert v[1] - v[0] == pytest.approx(step, rel=1e-6)  # at t: the log branch
    assert v[3] - v[2] == pytest.approx(step, rel=1e-6)
    v, _ = _val_grad(L.SmoothWingLoss(), [W - 1e-9, W, W + 1e-9])
    assert abs(v[2] - v[0]) < 1e-8 and v[1] == pytest.approx(W - C1 - C2, rel=1e-12)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_smooth_wing_gradients_both_sides_of_thresholds(sign):
    xs = sign * np.array(_POINTS)
    _, g = _val_grad(L.SmoothWingLoss(), xs)
    hand = [
        0.0,
        sign * 2 * S * T / 2,  # 2 s x below t
        sign * 2 * S * (T - _D),
        sign * (W + EPS) / (EPS + T),  # log branch at t: (w+eps)/(eps+t) = 5.9701
        sign * (W + EPS) / (EPS + T + _D),
        sign * (W + EPS) / (EPS + 1.0),
        sign * (W + EPS) / (EPS + W - _D),
        sign * 1.0,
        sign * 1.0,
        sign * 1.0,
    ]
    np.testing.assert_allclose(g, hand, rtol=1e-9, atol=1e-12)
    # gradient continuity: the one-sided limits agree at t and at w
    assert 2 * S * T == pytest.approx((W + EPS) / (EPS + T), rel=1e-12)
    assert abs(g[2] - g[4]) < 1e-3 and abs(g[6] - g[8]) < 1e-6
    _, ng = L.loss_curve("smooth_wing", xs)
    np.testing.assert_allclose(ng, g, rtol=1e-12, atol=1e-12)
    # autograd agrees with a central difference of the printed formula away from the step at t
    for x in sign * np.array([T / 2, 0.5, W - 0.5, W, 12.0]):
        fd = (_printed_swing([x + 1e-7])[0] - _printed_swing([x - 1e-7])[0]) / 2e-7
        _, gx = _val_grad(L.SmoothWingLoss(), [x])
        assert gx[0] == pytest.approx(fd, rel=1e-5)


def test_smooth_wing_float32_and_nondefault_parameters():
    t, w, eps = 0.5, 4.0, 1.0
    xs = np.array([0.2, t - 1e-3, t + 1e-3, 2.0, w - 1e-3, w + 1e-3, 7.0])
    v, g = L.loss_curve("smooth_wing", xs, t=t, w=w, eps=eps)
    np.testing.assert_allclose(v, _printed_swing(xs, t, w, eps), rtol=1e-12)
    s = (w + eps) / (2 * t * (eps + t))
    np.testing.assert_allclose(g[[0, 6]], [2 * s * 0.2, 1.0])
    vb, gb = _val_grad(L.SmoothWingLoss(t=t, w=w, eps=eps), xs, dtype="float32")
    np.testing.assert_allclose(vb, v, rtol=1e-5)
    np.testing.assert_allclose(gb, g, rtol=1e-5)


def test_smooth_wing_reduction_is_per_sample_sum():
    # LOTR eq. (20): sum over landmarks and both coordinates, one value per sample, no mean
    pred = mx.nd.array([[[T / 2, 1.0], [15.0, 0.0]], [[0.0, 0.0], [-W, 0.0]]], dtype="float64")
    label = mx.nd.zeros_like(pred)
    out = L.SmoothWingLoss()(pred, label).asnumpy()
    assert out.shape == (2,)
    e = _printed_swing(pred.asnumpy())
    np.testing.assert_allclose(out, [e[0].sum(), e[1].sum()], rtol=1e-12)
    np.testing.assert_allclose(out, [0.00746268656716 + 4.83573055103 + 26.4712628845, 21.4712628845], rtol=1e-9)


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
        # value continuity: no jumps on a fine grid (except smooth-Wing's printed 1.49e-4 step at |x| = t)
        step = L.smooth_wing_value_step() if name == "smooth_wing" else 0.0
        assert np.max(np.abs(np.diff(v))) < 1.01 * np.max(np.abs(g)) * (x[1] - x[0]) + step + 1e-9
    # smooth-Wing gradient is also continuous: bounded by max |L''| * dx
    _, g = L.loss_curve("smooth_wing", np.linspace(-12, 12, 2400001))
    assert np.max(np.abs(np.diff(g))) < 2 * S * 1e-5 + 1e-9
