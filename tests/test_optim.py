"""LAMB (You et al., "Large batch optimization for deep learning", Algorithm 2) as the papers' optimiser:
one step against a hand computation (moments, bias correction, weight decay, trust ratio, its bounds), the
excluded-tensor rule of LAMBExclude, and equality with MXNet's own LAMB where they should agree; AdamW's
decoupled decay."""
import mxnet as mx
import numpy as np
import pytest

from lotr_gluon.optim import AdamW, LAMBExclude

W0 = np.array([[1.0, -2.0], [3.0, 0.5]], np.float32)
G1 = np.array([[0.5, 0.1], [-1.0, 2.0]], np.float32)
G2 = np.array([[-0.2, 0.3], [0.4, -0.1]], np.float32)


def hand_lamb(w, grads, lr, wd, beta1=0.9, beta2=0.999, eps=1e-6, lower=None, upper=None, trust=True):
    """Algorithm 2 of You et al. with MXNet's conventions (eps outside the square root; trust ratio 1 when
    ||w|| or ||update|| is 0; phi = clip(||w||, lower, upper))."""
    w = w.astype(np.float64)
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t, g in enumerate(grads, 1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
        u = m_hat / (np.sqrt(v_hat) + eps) + wd * w
        r1, r2 = np.linalg.norm(w), np.linalg.norm(u)
        if lower is not None:
            r1 = max(r1, lower)
        if upper is not None:
            r1 = min(r1, upper)
        ratio = r1 / r2 if trust and r1 > 0 and r2 > 0 else 1.0
        w = w - lr * ratio * u
    return w


def run(opt, w, grads, name="dense0_weight"):
    opt.idx2name = {0: name}
    weight = mx.nd.array(w)
    state = opt.create_state(0, weight)
    for g in grads:
        opt.update(0, weight, mx.nd.array(g), state)
    return weight.asnumpy()


def test_one_step_is_the_trust_ratio_scaled_adam_step():
    lr, wd = 0.01, 0.1
    got = run(LAMBExclude(learning_rate=lr, wd=wd, exclude=()), W0, [G1])
    np.testing.assert_allclose(got, hand_lamb(W0, [G1], lr, wd), rtol=1e-5, atol=1e-7)
    # t = 1: m_hat = g, v_hat = g^2, so the Adam direction is sign(g) (up to eps) plus the decay
    u = np.sign(G1) + wd * W0
    np.testing.assert_allclose(got, W0 - lr * np.linalg.norm(W0) / np.linalg.norm(u) * u, rtol=1e-4)
    # the trust ratio matters: a plain Adam step (ratio 1) is far from it
    assert np.abs(got - hand_lamb(W0, [G1], lr, wd, trust=False)).max() > 1e-3


def test_second_step_uses_bias_corrected_moments():
    got = run(LAMBExclude(learning_rate=0.01, wd=0.1, exclude=()), W0, [G1, G2])
    np.testing.assert_allclose(got, hand_lamb(W0, [G1, G2], 0.01, 0.1), rtol=1e-5, atol=1e-7)
    # the trust ratio cancels a common scale of the Adam direction, so the correction shows with ratio 1
    kw = dict(learning_rate=0.01, wd=0.0, exclude=(r"_bias$",))
    corrected = run(LAMBExclude(**kw), W0, [G1, G2], "dense0_bias")
    np.testing.assert_allclose(corrected, hand_lamb(W0, [G1, G2], 0.01, 0.0, trust=False), rtol=1e-5)
    assert np.abs(run(LAMBExclude(bias_correction=False, **kw), W0, [G1, G2], "dense0_bias") - corrected).max() > 1e-3


@pytest.mark.parametrize("lower,upper", [(10.0, None), (None, 0.5), (1.0, 2.0)])
def test_trust_ratio_bounds(lower, upper):
    opt = LAMBExclude(learning_rate=0.01, wd=0.01, exclude=(), lower_bound=lower, upper_bound=upper)
    np.testing.assert_allclose(run(opt, W0, [G1, G2]), hand_lamb(W0, [G1, G2], 0.01, 0.01, lower=lower, upper=upper),
                               rtol=1e-5, atol=1e-7)


def test_excluded_tensors_take_a_plain_adam_step():
    lr = 0.01

    def opt():  # default exclude: queries, positional encoding, biases, norms
        return LAMBExclude(learning_rate=lr, wd=0.0)
    for name in ("lotr0_query_embed", "transformer_pos_embed", "head_dense0_bias", "layernorm0_gamma",
                 "batchnorm0_beta"):
        np.testing.assert_allclose(run(opt(), W0, [G1, G2], name), hand_lamb(W0, [G1, G2], lr, 0.0, trust=False),
                                   rtol=1e-5, err_msg=name)
    np.testing.assert_allclose(run(opt(), W0, [G1, G2], "head_dense0_weight"), hand_lamb(W0, [G1, G2], lr, 0.0),
                               rtol=1e-5)
    # a tensor that starts at zero moves by lr per element on its first step, excluded or not (ratio 1)
    z = np.zeros_like(W0)
    np.testing.assert_allclose(np.abs(run(opt(), z, [G1], "head_dense0_weight")), lr, rtol=1e-4)


def test_equals_mxnet_lamb_without_exclusions():
    kw = dict(learning_rate=0.005, wd=0.02, beta1=0.8, beta2=0.99, epsilon=1e-6, lower_bound=0.1, upper_bound=5.0)
    ours = run(LAMBExclude(exclude=(), **kw), W0, [G1, G2, G1])
    ref = run(mx.optimizer.LAMB(**kw), W0, [G1, G2, G1])
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-7)


def test_adamw_decay_is_decoupled():
    lr, wd = 0.1, 0.5
    got = run(AdamW(learning_rate=lr, wd=wd), W0, [G1])
    adam = run(mx.optimizer.Adam(learning_rate=lr, wd=0.0), W0 * (1 - lr * wd), [G1])
    np.testing.assert_allclose(got, adam, rtol=1e-5)
