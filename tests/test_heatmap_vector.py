"""Gaussian-vector model (heatmap_baseline.vector; LOTR Table V "with vectorization", after Xiong et al.):
codec against hand values, band pooling against a numpy loop, loss on a hand example, hybridization, shapes,
config and registry, and a tiny training on real Datatang faces through the Trainer."""
import math
import os
import warnings

import mxnet as mx
import numpy as np
import pytest
import yaml

from heatmap_baseline.model import EarpHeatmapNet
from heatmap_baseline.vector import (BandPooling, EarpVectorNet, GaussianVectorCodec, GaussianVectorLoss,
                                     parse_bandwidths)
from lotr_gluon.model_zoo import build_model, count_params, get_model

warnings.filterwarnings("ignore", category=UserWarning)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _net(**kw):
    kw.setdefault("backbone", "mobilenetv2_0.25")
    kw.setdefault("filters", 8)
    kw.setdefault("reduce", 16)
    kw.setdefault("num_points", 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return EarpVectorNet(**kw).initialize_params()


# ------------------------------------------------------------------------------------------ codec
def test_encode_hand_values():
    """64-px crop, 16-px vectors (stride 4): x = 10.3 -> (10.3 + 0.5) / 4 - 0.5 = 2.2, y = 20.7 -> 4.8."""
    c = GaussianVectorCodec(64, 16, sigma=1.5, theta=0.1)
    v = c.encode(np.array([[10.3, 20.7]]))
    assert v.shape == (1, 2, 16) and v.dtype == np.float32
    g = lambda d: math.exp(-d * d / 4.5) + 0.1  # noqa: E731  (2 sigma^2 = 4.5; window |d| <= 4.5)
    assert v[0, 0, 2] == pytest.approx(g(0.2), abs=1e-6)
    assert v[0, 0, 6] == pytest.approx(g(3.8), abs=1e-6)       # inside the 3-sigma window: exp(...) + theta
    assert v[0, 0, 7] == 0.0 and v[0, 0, 15] == 0.0            # |7 - 2.2| = 4.8 > 4.5: outside
    assert v[0, 1, 0] == 0.0 and v[0, 1, 1] == pytest.approx(g(3.8), abs=1e-6)  # |0 - 4.8| = 4.8 > 4.5
    assert v[0, 1, 5] == pytest.approx(g(0.2), abs=1e-6) and v[0, 1, 9] == pytest.approx(g(4.2), abs=1e-6)
    assert v[0, 1, 10] == 0.0


def test_round_trip_sub_pixel_and_argmax():
    c = GaussianVectorCodec(64, 16, sigma=1.5, theta=0.1)
    pts = np.array([[[10.3, 20.7], [33.1, 5.2], [31.5, 31.5]],
                    [[50.9, 12.25], [4.05, 58.6], [20.0, 40.0]]])
    coords, conf = c.decode(c.encode(pts))
    assert coords.shape == (2, 3, 2) and conf.shape == (2, 3)
    np.testing.assert_allclose(coords, pts, atol=1e-3)  # the 3-point log fit is exact on the labels
    # argmax: the nearest vector pixel's centre, (u + 0.5) * 4 - 0.5
    am = c.decode(c.encode(pts), "argmax")[0]
    np.testing.assert_allclose(am[0, 0], [9.5, 21.5])     # x 2.2 -> u 2; y 4.8 -> u 5
    np.testing.assert_allclose(am[0, 1], [33.5, 5.5])     # x 7.9 -> u 8; y 0.8 -> u 1
    # same with mx.nd input and with theta 0 (the plain heatmap-vector form)
    c0 = GaussianVectorCodec(64, 16, sigma=1.5, theta=0.0)
    np.testing.assert_allclose(c0.decode(mx.nd.array(c0.encode(mx.nd.array(pts))))[0], pts, atol=1e-3)


def test_codec_edges_and_errors():
    c = GaussianVectorCodec(64, 16)
    v = c.encode(np.array([[np.nan, 3.0], [1.5, 62.0]]))
    assert not v[0].any()                       # non-finite landmark: all-zero vectors
    assert v[1, 0, 0] > 1.0 and v[1, 1, 15] > 1.0   # near the border the peak sits on the first / last pixel
    with pytest.raises(ValueError, match="decoder"):
        GaussianVectorCodec(64, 16, decoder="dark")
    with pytest.raises(ValueError, match="theta"):
        GaussianVectorCodec(64, 16, theta=-0.1)
    with pytest.raises(ValueError, match="shape"):
        c.decode(np.zeros((1, 3, 16)))
    with pytest.raises(ValueError, match="decoder"):
        c.decode(np.zeros((1, 2, 16)), "vector")


# ------------------------------------------------------------------------------------------ band pooling
def _band_ref(h, L):
    """numpy loop: x-vector = mean over the h x L band (zero padding counted), y-vector likewise."""
    n, r = h.shape[0], (L - 1) // 2
    p = np.pad(h, r)
    vx = np.array([p[r:r + n, u:u + L].sum() / (n * L) for u in range(n)])
    vy = np.array([p[v:v + L, r:r + n].sum() / (n * L) for v in range(n)])
    return np.stack([vx, vy])


def test_band_pooling_hand_values():
    x = np.arange(25, dtype=np.float32).reshape(5, 5)   # column means 10..14, row means 2, 7, ..., 22
    out = BandPooling((3,))(mx.nd.array(x[None, None])).asnumpy()[0, 0]
    np.testing.assert_allclose(out[0], [7, 11, 12, 13, 9], rtol=1e-6)    # (0 + 10 + 11) / 3, ..., (13 + 14 + 0) / 3
    np.testing.assert_allclose(out[1], [3, 7, 12, 17, 13], rtol=1e-6)    # (0 + 2 + 7) / 3, ..., (17 + 22 + 0) / 3
    one = BandPooling((1,))(mx.nd.array(x[None, None])).asnumpy()[0, 0]
    np.testing.assert_allclose(one, [[10, 11, 12, 13, 14], [2, 7, 12, 17, 22]], rtol=1e-6)


def test_band_pooling_matches_numpy_and_hybridizes():
    x = np.random.RandomState(0).randn(2, 3, 7, 7).astype(np.float32)
    ref = np.array([[0.5 * (_band_ref(m, 3) + _band_ref(m, 5)) for m in b] for b in x])
    bp = BandPooling((3, 5))
    np.testing.assert_allclose(bp(mx.nd.array(x)).asnumpy(), ref, rtol=1e-5, atol=1e-6)
    bp.hybridize()
    np.testing.assert_allclose(bp(mx.nd.array(x)).asnumpy(), ref, rtol=1e-5, atol=1e-6)
    assert parse_bandwidths(7) == (7,) and parse_bandwidths([1, 3]) == (1, 3)
    for bad in ([], [2], [0], [3.5], "x"):
        with pytest.raises(ValueError, match="odd"):
            parse_bandwidths(bad)


# ------------------------------------------------------------------------------------------ loss
def test_loss_hand_example():
    pred = np.zeros((1, 2, 2, 3), np.float32)
    label = np.zeros((1, 2, 2, 3), np.float32)
    label[0, 0] = 1.0            # landmark 0: six squared errors of 1 -> mean 1
    label[0, 1, 1, 2] = 3.0      # landmark 1: one squared error of 9 over 6 elements -> 1.5
    loss = GaussianVectorLoss()
    assert loss(mx.nd.array(pred), mx.nd.array(label)).asnumpy() == pytest.approx([1.25])
    w = mx.nd.array([[1.0, 0.0]])  # visibility-style sample weight: the second landmark left out
    assert loss(mx.nd.array(pred), mx.nd.array(label), w).asnumpy() == pytest.approx([0.5])
    loss.hybridize()
    assert loss(mx.nd.array(pred), mx.nd.array(label)).asnumpy() == pytest.approx([1.25])


# ------------------------------------------------------------------------------------------ network
@pytest.mark.parametrize("size", [64, 96])
def test_output_shapes_and_hybridize(size):
    net = _net(input_size=size, upsampler="SDD")
    x = mx.nd.array(np.random.RandomState(1).randn(2, 3, size, size))
    s = size // 32 * 8
    out = net(x)
    assert out.shape == (2, 5, 2, s) and net.vector_size == net.heatmap_size == s
    assert net.codec.vector_size == s and net.codec.input_size == size
    imperative = out.asnumpy()
    net.hybridize()
    np.testing.assert_allclose(net(x).asnumpy(), imperative, rtol=1e-4, atol=1e-5)
    pts = net.decode(out)
    assert pts.shape == (2, 5, 2) and np.isfinite(pts).all()
    assert (pts >= -0.5).all() and (pts <= size - 0.5).all()


def test_same_parameters_as_the_heatmap_net_and_band_pooling_on_its_maps():
    """Band pooling adds no parameters (Table V lists the same 2.92M for both rows) and is applied to the
    heatmap net's own output."""
    kw = dict(backbone="mobilenetv2_0.25", num_points=5, input_size=64, filters=8, reduce=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hm = EarpHeatmapNet(**kw).initialize_params()
    vec = _net(**kw)
    assert count_params(vec) == count_params(hm)
    assert sorted(vec._collect_params_with_prefix()) == sorted(hm._collect_params_with_prefix())
    for k, p in hm._collect_params_with_prefix().items():   # same weights -> band pooling of the same maps
        vec._collect_params_with_prefix()[k].set_data(p.data())
    x = mx.nd.array(np.random.RandomState(2).randn(1, 3, 64, 64))
    np.testing.assert_allclose(vec(x).asnumpy(), BandPooling((3, 5))(hm(x)).asnumpy(), rtol=1e-5, atol=1e-6)


def test_config_registry_and_build():
    from lotr_gluon.build import build_loss
    from lotr_gluon.config import load_config
    for data in ("datatang", "jd"):
        f = os.path.join(ROOT, "experiments", data, "earp_mnv2_1.0_sdd_vector.yaml")
        cfg = load_config(f, ["MODEL.BACKBONE.NAME", "mobilenetv2_0.25", "MODEL.BACKBONE.PRETRAINED", "False", "DATA.INPUT_SIZE", "64",
                              "MODEL.BACKBONE.PRETRAINED", "False"])
        assert cfg.MODEL.NAME == "earp_vector" and list(cfg.MODEL.HEATMAP.VECTOR_BANDWIDTHS) == [3, 5]
        net = build_model(cfg)
        assert isinstance(net, EarpVectorNet) and net.band_pool.bandwidths == (3, 5)
        assert net.codec.theta == cfg.MODEL.HEATMAP.VECTOR_THETA and net.codec.decoder == "gaussian_fit"
        assert isinstance(build_loss(cfg), GaussianVectorLoss)
        # like with like: the Earp heatmap config of the same folder but for the model name and VECTOR_* keys
        mine = yaml.safe_load(open(f))
        base = yaml.safe_load(open(os.path.join(ROOT, "experiments", data, "earp_mnv2_1.0_sdd.yaml")))
        mm = mine.pop("MODEL")
        bm = base.pop("MODEL")
        assert mine == base
        assert mm.pop("NAME") == "earp_vector" and bm.pop("NAME") == "earp_heatmap"
        vec = mm.pop("HEATMAP")
        assert set(vec) - set(bm["HEATMAP"]) == {"VECTOR_BANDWIDTHS", "VECTOR_THETA", "VECTOR_DECODER"}
        assert {k: v for k, v in vec.items() if not k.startswith("VECTOR_")} == bm.pop("HEATMAP")
        assert mm == bm
    assert isinstance(get_model("earp_vector", backbone="mobilenetv2_0.25", input_size=64, num_points=3,
                                filters=8, reduce=16, bandwidths=[1]), EarpVectorNet)
    with pytest.raises(ValueError, match="odd"):
        get_model("earp_vector", backbone="mobilenetv2_0.25", input_size=64, bandwidths=[4])


# ------------------------------------------------------------------------------------------ training
def test_vector_model_trains_on_real_faces(datatang_root, tmp_path):
    """Through the same Trainer as the other models: vector labels from the codec, vector MSE, validation
    decoded with gaussian_fit in the original image frame; then the flip test and the benchmark path."""
    from lotr_gluon.config import load_config
    from lotr_gluon.evaluate import evaluate_dataset
    from lotr_gluon.trainer import Trainer, read_log
    cfg_file = os.path.join(ROOT, "experiments", "datatang", "earp_mnv2_1.0_sdd_vector.yaml")
    opts = {"DATA.ROOT": str(datatang_root), "DATA.MAX_SAMPLES": "8", "DATA.INPUT_SIZE": "64",
            "MODEL.BACKBONE.NAME": "mobilenetv2_0.25", "MODEL.BACKBONE.PRETRAINED": "False", "TRAIN.BATCH_SIZE": "4", "TRAIN.EPOCHS": "3",
            "TRAIN.LOG_EVERY": "1", "OUTPUT_DIR": str(tmp_path)}
    cfg = load_config(cfg_file, [x for kv in opts.items() for x in kv])
    tr = Trainer(cfg, out_dir=str(tmp_path / "run"), progress=False)
    assert tr.post.kind == "heatmap" and isinstance(tr.net, EarpVectorNet)
    metrics = tr.fit()
    losses = [r["loss"] for r in read_log(str(tmp_path / "run" / "log.jsonl")) if r["type"] == "train"]
    assert len(losses) == 6 and all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert metrics["decoder"] == "gaussian_fit" and np.isfinite(metrics["nme"]) and metrics["num_images"] == 8
    m, _, _, crop = evaluate_dataset(tr.net, tr.val_set, tr.scheme, tr.ctx[0], 8, flip=True, post=tr.post)
    assert m["flip"] and np.isfinite(m["nme"])
    assert np.isfinite(crop).all() and (crop >= -0.5).all() and (crop <= 63.5).all()


def test_benchmark_and_export_of_the_vector_model():
    """Timed with its own decoders; band pooling exports to the symbol and ONNX runtimes with the same output."""
    from lotr_gluon.benchmark import benchmark_model
    cfg = os.path.join(ROOT, "experiments", "datatang", "earp_mnv2_1.0_sdd_vector.yaml")
    rows = benchmark_model(cfg, opts=["MODEL.BACKBONE.NAME", "mobilenetv2_0.25", "MODEL.BACKBONE.PRETRAINED", "False", "DATA.INPUT_SIZE", "64"],
                           runtimes=("gluon", "symbol", "onnx"), batches=(1,), flips=(False, True), runs=1,
                           warmup=0)
    assert {(r["runtime"], r["flip"], r["decoder"]) for r in rows} == {
        (rt, f, d) for rt in ("gluon", "symbol", "onnx") for f in (False, True) for d in ("gaussian_fit", "argmax")}
    assert {r["kind"] for r in rows} == {"heatmap"}
    for r in rows:
        if r["runtime"] != "gluon":
            assert r["max_abs_diff_vs_gluon"] is not None and r["max_abs_diff_vs_gluon"] < 1e-3, r
