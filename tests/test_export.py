"""Export: symbol round trip, folded preprocessing, ONNX (onnxruntime) and tools/export.py, on randomly
initialised models.

Tolerances. The SymbolBlock runs the same MXNet kernels as the Gluon model: 1e-4 px. onnxruntime rounds
differently, and a randomly initialised LOTR is poorly conditioned in float32: MXNet float32 is itself about
1e-3 px (64 px crop, MobileNetV2-0.25) and 1e-2 px (LOTR-M, 192 px) away from the same model in float64,
because the head's output is multiplied by the crop size (``coord_units='input_frac'``). The 1e-3 px
checks therefore use ``coord_units='pixels'`` (same graph, head output in pixels, noise about 2e-5 px);
LOTR-M at 192 px is checked against float64: onnxruntime must be as close to it as MXNet float32 is.
"""
import importlib.util
import os
import warnings

import numpy as np
import mxnet as mx
import onnx
import pytest

from lotr_gluon.export import (check_onnx, export_onnx, export_symbol, load_symbol, normalize_input,
                               onnx_session, ONNX_OPSET)
from lotr_gluon.model_zoo import get_model

warnings.filterwarnings("ignore", category=UserWarning)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
S = 64


def _net(name="lotr", size=S, seed=0, **kw):
    mx.random.seed(seed)
    if name == "lotr":
        kw = dict(dict(backbone="mobilenetv2_0.25", num_points=5), **kw)
    net = get_model(name, pretrained=False, input_size=size, **kw)
    net.initialize_params()
    return net


def _raw(batch, size=S, seed=0):
    return np.random.RandomState(seed).uniform(0, 255, (batch, 3, size, size)).astype(np.float32)


@pytest.fixture(scope="module")
def small():
    """Small LOTR with the head in pixels and a batch of two raw / normalised images."""
    net = _net(coord_units="pixels")
    raw = _raw(2)
    return net, raw, normalize_input(raw)


def test_symbol_round_trip_and_preprocess(small, tmp_path):
    net, raw, x = small
    files = export_symbol(net, str(tmp_path / "a"), S)
    assert all(os.path.isfile(f) for f in files) and files[0].endswith("a-symbol.json")
    ref = net(mx.nd.array(x)).asnumpy()
    sb = load_symbol(str(tmp_path / "a"))
    np.testing.assert_allclose(sb(mx.nd.array(x)).asnumpy(), ref, rtol=0, atol=1e-4)

    # preprocess=True: raw 0-255 input gives what the Gluon model gives on normalised input
    export_symbol(net, str(tmp_path / "p"), S, preprocess=True)
    sp = load_symbol(str(tmp_path / "p"))
    np.testing.assert_allclose(sp(mx.nd.array(raw)).asnumpy(), ref, rtol=0, atol=1e-4)
    # NHWC raw images (OpenCV layout), and a non-ImageNet normalisation
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    export_symbol(net, str(tmp_path / "h"), S, preprocess=True, mean=mean, std=std, layout="NHWC")
    sh = load_symbol(str(tmp_path / "h"))
    ref2 = net(mx.nd.array(normalize_input(raw, mean, std))).asnumpy()
    np.testing.assert_allclose(sh(mx.nd.array(raw.transpose(0, 2, 3, 1))).asnumpy(), ref2, rtol=0, atol=1e-4)


def test_lotr_m_192_symbol_and_onnx(tmp_path):
    net = _net("lotr_m", size=192)  # coord_units='input_frac', 106 points
    x = normalize_input(_raw(1, 192))
    prefix = str(tmp_path / "m")
    export_symbol(net, prefix, 192)
    ref = net(mx.nd.array(x)).asnumpy()
    assert ref.shape == (1, 106, 2)
    np.testing.assert_allclose(load_symbol(prefix)(mx.nd.array(x)).asnumpy(), ref, rtol=0, atol=1e-4)

    path = export_onnx(prefix, str(tmp_path / "m.onnx"), 192)
    got = onnx_session(path).run(None, {"data": x})[0]
    assert got.shape == ref.shape
    net.hybridize(active=False)
    net.cast("float64")
    ref64 = net(mx.nd.array(x, dtype="float64")).asnumpy()
    floor = np.abs(ref - ref64).max()  # MXNet float32 vs float64, about 1e-2 px here
    assert np.abs(got - ref64).max() <= 2 * floor + 1e-4
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()


def _graph_checks(path, batch=1, size=S):
    m = onnx.load(path)
    onnx.checker.check_model(m)
    assert [(o.domain, o.version) for o in m.opset_import] == [("", ONNX_OPSET)]
    g = m.graph
    inits = {t.name for t in g.initializer}
    # the weights are initializers only; the one graph input is the image
    assert [i.name for i in g.input] == ["data"]
    dims = [d.dim_value for d in g.input[0].type.tensor_type.shape.dim]
    assert dims == [batch, 3, size, size]
    weights = [n.input[1] for n in g.node if n.op_type in ("Conv", "ConvTranspose", "Gemm")]
    assert weights and all(w in inits for w in weights)
    sess = onnx_session(path)
    assert [i.name for i in sess.get_inputs()] == ["data"]


def test_onnx_matches_gluon(small, tmp_path):
    net, raw, x = small
    path = export_onnx(net, str(tmp_path / "s.onnx"), S, batch=2)
    _graph_checks(path, batch=2)
    d = check_onnx(path, net, x)  # raises above 1e-3 px
    assert d <= 1e-3

    # folded preprocessing: onnxruntime on raw input = Gluon on normalised input
    ppath = export_onnx(net, str(tmp_path / "p.onnx"), S, batch=1, preprocess=True)
    _graph_checks(ppath)
    got = onnx_session(ppath).run(None, {"data": raw[:1]})[0]
    np.testing.assert_allclose(got, net(mx.nd.array(x[:1])).asnumpy(), rtol=0, atol=1e-3)

    # symbolic batch axis: the same file runs batch 1 and 2
    dpath = export_onnx(net, str(tmp_path / "d.onnx"), S, dynamic_batch=True)
    sess = onnx_session(dpath)
    assert sess.get_inputs()[0].shape[0] != 1
    np.testing.assert_allclose(sess.run(None, {"data": x})[0], net(mx.nd.array(x)).asnumpy(), rtol=0, atol=1e-3)

    with pytest.raises(AssertionError):
        check_onnx(path, net, x, atol=-1.0)


def test_heatmap_model_onnx(tmp_path):
    net = _net("earp_heatmap", backbone="mobilenetv2_0.25", num_points=5, upsampler="SDD")
    x = normalize_input(_raw(2))
    path = export_onnx(net, str(tmp_path / "h.onnx"), S, batch=2)
    _graph_checks(path, batch=2)
    ref = net(mx.nd.array(x)).asnumpy()
    got = onnx_session(path).run(None, {"data": x})[0]
    assert got.shape == ref.shape == (2, 5, net.heatmap_size, net.heatmap_size)
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()
    np.testing.assert_allclose(net.decode(got), net.decode(ref), rtol=0, atol=1e-3)


def _write_cfg(tmp_path, units="pixels"):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("OUTPUT_DIR: %s\nDATA:\n  NAME: tiny\n  INPUT_SIZE: %d\nMODEL:\n  NAME: lotr\n"
                   "  BACKBONE:\n    NAME: mobilenetv2_0.25\n    PRETRAINED: False\n  NUM_POINTS: 5\n"
                   "  HEAD:\n    COORD_UNITS: %s\n"
                   % (tmp_path / "runs", S, units))
    return str(cfg)


def test_cli_end_to_end(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("tools_export", os.path.join(ROOT, "tools", "export.py"))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    from lotr_gluon.config import load_config, run_dir
    from lotr_gluon.model_zoo import build_model

    cfg_file = _write_cfg(tmp_path)
    cfg = load_config(cfg_file)
    net = build_model(cfg)
    net(mx.nd.zeros((1, 3, S, S)))  # resolve gluoncv's deferred shapes before saving
    os.makedirs(run_dir(cfg))
    net.save_parameters(os.path.join(run_dir(cfg), "model_best.params"))  # the default --params

    out = str(tmp_path / "exp" / "tiny")
    assert cli.main(["--cfg", cfg_file, "--out", out, "--onnx", "--preprocess", "--batch", "2"]) == 0
    text = capsys.readouterr().out
    assert "max |Gluon - onnxruntime|" in text and "OK" in text
    for suffix in ("-symbol.json", "-0000.params", ".onnx"):
        assert os.path.isfile(out + suffix)
    # the exported files take raw 0-255 input and give the saved model's landmarks
    raw = _raw(2, seed=3)
    ref = net(mx.nd.array(normalize_input(raw))).asnumpy()
    np.testing.assert_allclose(load_symbol(out)(mx.nd.array(raw)).asnumpy(), ref, rtol=0, atol=1e-4)
    np.testing.assert_allclose(onnx_session(out + ".onnx").run(None, {"data": raw})[0], ref, rtol=0, atol=1e-3)

    # explicit --params is not needed with --random-init; both together are refused
    assert cli.main(["--cfg", cfg_file, "--random-init", "--out", str(tmp_path / "r")]) == 0
    with pytest.raises(SystemExit):
        cli.main(["--cfg", cfg_file, "--random-init", "--params", "x.params", "--out", str(tmp_path / "r")])
