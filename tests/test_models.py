"""Models: every registered model builds, gives the right shapes at two input sizes, hybridizes with the
same outputs, exports, and its parameter count lands near LOTR Table V."""
import warnings

import numpy as np
import mxnet as mx
import pytest

from lotr_gluon.model_zoo import MODELS, get_model, count_params
from lotr_gluon.models.transformer import MultiHeadAttention, Transformer

warnings.filterwarnings("ignore", category=UserWarning)

SMALL = ["lotr_m", "lotr_m_plus", "cnn_ffn_mnv2"]


def _build(name, size, **kw):
    net = get_model(name, pretrained=False, input_size=size, **kw)
    net.initialize_params()
    return net


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("size", [192, 128])
def test_shapes_two_sizes(name, size):
    net = _build(name, size, num_points=68)
    out = net(mx.nd.random.normal(shape=(2, 3, size, size)))
    assert out.shape == (2, 68, 2)
    assert np.isfinite(out.asnumpy()).all()


def test_heavy_backbones_build_and_run():
    for name, size in [("lotr_r_plus", 128), ("lotr_hr_plus", 128), ("cnn_ffn_r50", 128)]:
        net = _build(name, size, num_points=98)
        assert net(mx.nd.zeros((1, 3, size, size))).shape == (1, 98, 2)


# LOTR Table V parameter counts (millions). Measured (this code): LOTR-M 2.764, LOTR-M+ 3.700, LOTR-R+ 25.219,
# CNN+FFN MobileNetV2 3.892, ResNet50 25.263. LOTR-M is 1.6% under the paper's 2.81M; the paper does not say
# how it counts (e.g. BatchNorm statistics), all are within 3%.
TABLE_V = {"lotr_m": 2.81, "lotr_m_plus": 3.71, "lotr_r_plus": 25.21, "cnn_ffn_mnv2": 3.89, "cnn_ffn_r50": 25.24}


@pytest.mark.parametrize("name", sorted(TABLE_V))
def test_param_counts_table_v(name):
    n = count_params(_build(name, 192, num_points=106)) / 1e6
    print("%s: %.3fM params (LOTR Table V: %.2fM)" % (name, n, TABLE_V[name]))
    assert abs(n - TABLE_V[name]) / TABLE_V[name] < 0.03


@pytest.mark.parametrize("name", SMALL)
def test_hybridize_matches_imperative_and_exports(name, tmp_path):
    net = _build(name, 128, num_points=20)
    x = mx.nd.random.normal(shape=(2, 3, 128, 128))
    a = net(x).asnumpy()
    net.hybridize(static_alloc=True, static_shape=True)
    b = net(x).asnumpy()
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)
    net.export(str(tmp_path / "m"))
    sb = mx.gluon.SymbolBlock.imports(str(tmp_path / "m-symbol.json"), ["data"], str(tmp_path / "m-0000.params"))
    np.testing.assert_allclose(sb(x).asnumpy(), a, rtol=1e-4, atol=1e-3)


def test_unknown_model_lists_valid_names():
    with pytest.raises(KeyError) as e:
        get_model("lotr_xl")
    assert "lotr_m_plus" in str(e.value) and "cnn_ffn" in str(e.value)


def test_unknown_backbone_lists_valid_names():
    with pytest.raises(KeyError) as e:
        get_model("lotr", backbone="vgg16")
    assert "mobilenetv2_1.0" in str(e.value)


def test_pretrained_file_is_loaded(tmp_path):
    from gluoncv.model_zoo import get_model as gcv_get
    clf = gcv_get("mobilenetv2_0.25", pretrained=False)
    clf.initialize()
    clf(mx.nd.zeros((1, 3, 64, 64)))
    clf.save_parameters(str(tmp_path / "clf.params"))
    net = get_model("lotr", backbone="mobilenetv2_0.25", pretrained_file=str(tmp_path / "clf.params"),
                    input_size=64, num_points=5)
    assert net.backbone_loaded
    net.initialize_params()
    w_clf = clf.features[0].weight.data().asnumpy()
    w_net = net.backbone[0].weight.data().asnumpy()
    np.testing.assert_array_equal(w_clf, w_net)
    with pytest.raises(FileNotFoundError):
        get_model("lotr", pretrained_file=str(tmp_path / "missing.params"))


def test_anchors_start_at_mean_shape():
    anchors = np.random.RandomState(0).rand(10, 2).astype(np.float32) * 64
    net = get_model("lotr", backbone="mobilenetv2_0.25", input_size=64, num_points=10, anchors=anchors,
                    head_last_init_std=0.0)
    net.initialize_params()
    out = net(mx.nd.random.normal(shape=(3, 3, 64, 64))).asnumpy()
    np.testing.assert_allclose(out, np.broadcast_to(anchors, out.shape), atol=1e-4)


def test_anchor_head_small_init_passes_gradient_back():
    """A zero last layer passes no gradient to the rest of the head; the default small init does."""
    anchors = np.random.RandomState(0).rand(10, 2).astype(np.float32) * 64
    x = mx.nd.random.normal(shape=(2, 3, 64, 64))
    y = mx.nd.array(np.broadcast_to(anchors, (2, 10, 2)) + 3.0)
    grads = {}
    for std in (0.0, 1e-3):
        net = get_model("lotr", backbone="mobilenetv2_0.25", input_size=64, num_points=10, anchors=anchors,
                        coord_units="pixels", head_last_init_std=std)
        net.initialize_params()
        with mx.autograd.record():
            out = net(x)
            loss = ((out - y) ** 2).sum()
        loss.backward()
        grads[std] = net.head.net[1].weight.grad().norm().asscalar()
        assert np.abs(out.asnumpy() - anchors).max() < 1.0  # starts at (or near) the anchors
    assert grads[0.0] == 0.0 and grads[1e-3] > 0.0


def test_aux_outputs_stack_decoder_layers():
    net = get_model("lotr", backbone="mobilenetv2_0.25", input_size=64, num_points=7, num_decoder_layers=3,
                    aux_outputs=True)
    net.initialize_params()
    assert net(mx.nd.zeros((2, 3, 64, 64))).shape == (3, 2, 7, 2)


def test_attention_matches_numpy_reference():
    mx.random.seed(0)
    att = MultiHeadAttention(8, 2, dropout=0.0)
    att.initialize(mx.init.Normal(0.5))
    q = mx.nd.random.normal(shape=(2, 3, 8))
    k = mx.nd.random.normal(shape=(2, 5, 8))
    v = mx.nd.random.normal(shape=(2, 5, 8))
    out = att(q, k, v).asnumpy()

    def dense(layer, x):
        return x @ layer.weight.data().asnumpy().T + layer.bias.data().asnumpy()
    Q, K, V = dense(att.proj_q, q.asnumpy()), dense(att.proj_k, k.asnumpy()), dense(att.proj_v, v.asnumpy())
    heads = []
    for h in range(2):
        sl = slice(4 * h, 4 * h + 4)
        s = Q[..., sl] @ np.swapaxes(K[..., sl], 1, 2) / 2.0
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        heads.append(s @ V[..., sl])
    ref = dense(att.proj_out, np.concatenate(heads, -1))
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


def test_positional_encoding_only_in_queries_and_keys():
    """Changing pos must not change the values: with a single token, attention weights are 1 whatever the
    keys are, so the encoder output is independent of pos."""
    tr = Transformer(units=8, num_heads=2, num_encoder_layers=1, num_decoder_layers=1, dropout=0.0)
    tr.initialize(mx.init.Normal(0.3))
    src = mx.nd.random.normal(shape=(2, 1, 8))
    query = mx.nd.random.normal(shape=(1, 1, 8))
    a = tr(src, mx.nd.zeros((1, 1, 8)), query).asnumpy()
    b = tr(src, mx.nd.random.normal(shape=(1, 1, 8)) * 5, query).asnumpy()
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_decoder_input_choice():
    for mode in ("queries", "zeros"):
        tr = Transformer(units=8, num_heads=2, num_encoder_layers=0, num_decoder_layers=1, dropout=0.0,
                         decoder_input=mode)
        tr.initialize()
        assert tr(mx.nd.ones((2, 4, 8)), mx.nd.zeros((1, 4, 8)), mx.nd.ones((1, 3, 8))).shape == (2, 3, 8)
    with pytest.raises(ValueError):
        Transformer(decoder_input="noise")


def test_registry_is_complete():
    """One registry: every model name, paper presets included, with its builder and output kind."""
    assert {"lotr", "cnn_ffn", "earp_heatmap", "earp_vector", "lotr_m", "lotr_m_plus", "lotr_r_plus",
            "lotr_hr_plus", "cnn_ffn_mnv2", "cnn_ffn_r50"} <= set(MODELS)
    assert MODELS["lotr_m_plus"].make is MODELS["lotr"].make and MODELS["lotr_m_plus"].preset["upsample"]
    assert {MODELS[n].output for n in ("lotr", "cnn_ffn", "earp_heatmap", "earp_vector")} == {
        "regression", "heatmap", "vector"}


def test_aux_heatmap_head_is_training_only(tmp_path):
    """LOTR's auxiliary heatmap head: off by default; after set_aux_heatmap_output(True) the model also
    returns (B, N, h, h) heatmaps, hybridized equal to imperative; exports carry landmarks only."""
    net = _build("lotr_m", 128, num_points=20, aux_heatmap=True, aux_heatmap_upsampler="SD")
    assert net.aux_heatmap_size == 128 // 32 * 4
    x = mx.nd.random.normal(shape=(2, 3, 128, 128))
    a = net(x).asnumpy()
    assert a.shape == (2, 20, 2)
    net.set_aux_heatmap_output(True)
    lm, hm = net(x)
    assert hm.shape == (2, 20, 16, 16)
    np.testing.assert_allclose(lm.asnumpy(), a, rtol=1e-5, atol=1e-4)
    net.hybridize(static_alloc=True)
    lm_h, hm_h = net(x)
    np.testing.assert_allclose(hm_h.asnumpy(), hm.asnumpy(), rtol=1e-4, atol=1e-6)
    net.set_aux_heatmap_output(False)
    np.testing.assert_allclose(net(x).asnumpy(), a, rtol=1e-4, atol=1e-3)
    net.export(str(tmp_path / "m"))
    sb = mx.gluon.SymbolBlock.imports(str(tmp_path / "m-symbol.json"), ["data"], str(tmp_path / "m-0000.params"))
    assert not any("auxhm" in k for k in sb.collect_params().keys())
    np.testing.assert_allclose(sb(x).asnumpy(), a, rtol=1e-4, atol=1e-3)
    plain = _build("lotr_m", 128, num_points=20)
    assert count_params(net) == count_params(plain)  # the training-only head is not part of the model
    assert count_params(net, include_training_heads=True) > count_params(plain)
    with pytest.raises(ValueError, match="no auxiliary heatmap head"):
        plain.set_aux_heatmap_output(True)


def test_init_from_copies_the_backbone_of_another_model(tmp_path):
    """MODEL.INIT_FROM: a heatmap model's trunk goes into LOTR; the rest keeps its own init."""
    from lotr_gluon.model_zoo import load_matching
    src = _build("earp_heatmap", 64, num_points=10, backbone="mobilenetv2_0.25")
    src(mx.nd.zeros((1, 3, 64, 64)))
    src.save_parameters(str(tmp_path / "src.params"))
    dst = _build("lotr", 64, num_points=10, backbone="mobilenetv2_0.25")
    before = dst.neck[0].weight.data().asnumpy().copy()
    n = load_matching(dst, str(tmp_path / "src.params"))
    assert n == len(src.backbone.collect_params().keys())
    for a, b in zip(src.backbone.collect_params().values(), dst.backbone.collect_params().values()):
        np.testing.assert_array_equal(a.data().asnumpy(), b.data().asnumpy())
    np.testing.assert_array_equal(dst.neck[0].weight.data().asnumpy(), before)
    with pytest.raises(ValueError, match="prefixes are"):
        load_matching(dst, str(tmp_path / "src.params"), ("nothing.",))
    with pytest.raises(ValueError, match="shape"):
        load_matching(dst, str(tmp_path / "src.params"), ("neck.",))
    with pytest.raises(FileNotFoundError):
        load_matching(dst, str(tmp_path / "missing.params"))


def test_per_landmark_last_layer():
    """MODEL.HEAD.PER_LANDMARK_OUT: out[b, n] = h[b, n] @ W[n] + bias[n]; hybridizes; 2*512*N weights."""
    net = _build("lotr_m", 128, num_points=10, head_per_landmark_out=True)
    last = net.head.net[-1]
    h = mx.nd.random.normal(shape=(3, 10, 512))
    W = last.weight.data().asnumpy()
    last.bias.set_data(mx.nd.random.normal(shape=(1, 10, 2)))
    ref = np.einsum("bnc,ncu->bnu", h.asnumpy(), W) + last.bias.data().asnumpy()
    np.testing.assert_allclose(last(h).asnumpy(), ref, rtol=1e-4, atol=1e-4)
    x = mx.nd.random.normal(shape=(2, 3, 128, 128))
    a = net(x).asnumpy()
    net.hybridize(static_alloc=True)
    np.testing.assert_allclose(net(x).asnumpy(), a, rtol=1e-4, atol=1e-3)
    shared = _build("lotr_m", 128, num_points=10)
    assert count_params(net) - count_params(shared) == (10 - 1) * (512 * 2 + 2)
    with pytest.raises(ValueError, match="aux_outputs"):
        get_model("lotr_m", head_per_landmark_out=True, aux_outputs=True)


@pytest.mark.parametrize("mode", ["cross", "all"])
def test_pos_in_values_reaches_the_values(mode):
    """MODEL.TRANSFORMER.POS_IN_VALUES: with a single token the attention weight is 1, so the output depends on pos only
    through the values: unchanged for 'none' (test above), changed for 'cross' / 'all'."""
    tr = Transformer(units=8, num_heads=2, num_encoder_layers=1, num_decoder_layers=1, dropout=0.0,
                     pos_in_values=mode)
    tr.initialize(mx.init.Normal(0.3))
    src = mx.nd.random.normal(shape=(2, 1, 8))
    query = mx.nd.random.normal(shape=(1, 1, 8))
    a = tr(src, mx.nd.zeros((1, 1, 8)), query).asnumpy()
    b = tr(src, mx.nd.random.normal(shape=(1, 1, 8)) * 5, query).asnumpy()
    assert np.abs(a - b).max() > 1e-2
    with pytest.raises(ValueError, match="pos_in_values"):
        Transformer(pos_in_values="values")


def test_pos_in_values_hybridizes():
    net = _build("lotr_m", 128, num_points=10, pos_in_values="all")
    x = mx.nd.random.normal(shape=(2, 3, 128, 128))
    a = net(x).asnumpy()
    net.hybridize()
    np.testing.assert_allclose(a, net(x).asnumpy(), rtol=1e-4, atol=1e-3)


def test_sine_position_encoding_hand_values():
    """DETR PositionEmbeddingSine(normalize=True) on a 2x2 grid, dim 4 (one y and one x frequency pair):
    y_embed = x_embed = (1, 2) / 2 * 2pi = (pi, 2pi); channel 0 sin(y), 1 cos(y / T^(0)) ... with npf = 2,
    dim_t = (1, 1): channels are sin(y), cos(y), sin(x), cos(x)."""
    from lotr_gluon.models.transformer import sine_position_encoding
    pe = sine_position_encoding(2, 4)
    y = np.array([np.pi, np.pi, 2 * np.pi, 2 * np.pi])  # row-major tokens (r, c) = 00, 01, 10, 11
    x = np.array([np.pi, 2 * np.pi, np.pi, 2 * np.pi])
    ref = np.stack([np.sin(y), np.cos(y), np.sin(x), np.cos(x)], 1)
    np.testing.assert_allclose(pe, ref, atol=1e-5)
    with pytest.raises(ValueError):
        sine_position_encoding(2, 6)


def test_sample_token_grid_bilinear():
    from lotr_gluon.models.transformer import sample_token_grid
    grid, size = 2, 64  # token centres at 16 and 48 px
    tokens = np.array([[0.0], [1.0], [10.0], [11.0]])  # value = 10 * row + col
    pts = np.array([[16, 16], [48, 16], [32, 32], [40, 24], [0, 0], [64, 64]], np.float64)
    got = sample_token_grid(tokens, grid, pts, size)[:, 0]
    # (40, 24): col 0.75, row 0.25 -> 0.75 + 2.5; beyond the centres: border values
    np.testing.assert_allclose(got, [0.0, 1.0, 5.5, 3.25, 0.0, 11.0], atol=1e-6)


def test_query_init_anchor_pos():
    """MODEL.TRANSFORMER.QUERY_INIT anchor_pos: queries = pos enc sampled at the anchors, cross-attention keys
    start as the query projection, and the first cross-attention then favours each query's anchor cell."""
    from lotr_gluon.models.transformer import sample_token_grid
    rng = np.random.RandomState(0)
    mx.random.seed(0)
    anchors = rng.uniform(10, 182, (30, 2))
    net = _build("lotr_m", 192, num_points=30, anchors=anchors, query_init="anchor_pos",
                 coord_units="pixels", head_last_init_std=0.01)
    q = net.query_embed.data().asnumpy()[0]
    pos = net.pos_embed.data().asnumpy()[0]
    np.testing.assert_allclose(q, sample_token_grid(pos, 6, anchors, 192), atol=1e-6)
    for layer in net.transformer.decoder:
        np.testing.assert_array_equal(layer.cross_attn.proj_k.weight.data().asnumpy(),
                                      layer.cross_attn.proj_q.weight.data().asnumpy())
    w = net.transformer.decoder[0].cross_attn.proj_q.weight.data().asnumpy()
    best = ((q @ w.T) @ (pos @ w.T).T).argmax(1)
    cell = np.clip((anchors // 32).astype(int), 0, 5)
    # chance level (a random token within +-1 cell of the anchor's on a 6x6 grid) is at most 9/36
    assert np.mean(np.abs(np.stack([best % 6, best // 6], 1) - cell).max(1) <= 1) > 0.8
    assert net(mx.nd.zeros((1, 3, 192, 192))).shape == (1, 30, 2)
    with pytest.raises(ValueError, match="anchors"):
        get_model("lotr_m", query_init="anchor_pos")
    with pytest.raises(ValueError, match="pos_init"):
        get_model("lotr_m", pos_init="fourier")


def test_pre_norm_layers_follow_detr_forward_pre():
    """MODEL.TRANSFORMER.NORM_BEFORE: encoder layer = src + MHA(LN1(src)) then + FFN(LN2(.)), then DETR's encoder_norm.
    With zero attention output projections (MODEL.TRANSFORMER.ATTN_OUT_INIT zero) the attention branch adds
    nothing, so the encoder output is enc_norm(src + FFN(LN2(src)))."""
    tr = Transformer(units=8, num_heads=2, num_encoder_layers=1, num_decoder_layers=1, dropout=0.0,
                     norm_before=True, attn_out_init="zero")
    tr.initialize(mx.init.Normal(0.3))
    for name, p in tr.collect_params().items():
        if "out_weight" in name:
            assert np.all(p.data().asnumpy() == 0), name
        elif name.endswith("q_weight"):
            assert np.abs(p.data().asnumpy()).sum() > 0
    src = mx.nd.random.normal(shape=(2, 5, 8))
    pos = mx.nd.random.normal(shape=(1, 5, 8))
    layer = tr.encoder[0]
    ref = tr.enc_norm(src + layer.ffn(layer.norm2(src))).asnumpy()
    mem = tr.enc_norm(layer(src, pos)).asnumpy()
    np.testing.assert_allclose(mem, ref, rtol=1e-5, atol=1e-5)
    # the zero projections still receive gradient (the branch is not dead)
    with mx.autograd.record():
        out = tr(src, pos, mx.nd.random.normal(shape=(1, 3, 8)))
    out.backward()
    assert np.abs(tr.decoder[0].cross_attn.proj_out.weight.grad().asnumpy()).sum() > 0
    with pytest.raises(ValueError, match="attn_out_init"):
        Transformer(attn_out_init="xavier")


@pytest.mark.parametrize("kw", [dict(norm_before=True), dict(attn_out_init="zero")])
def test_transformer_variants_hybridize(kw):
    net = _build("lotr_m", 128, num_points=10, **kw)
    x = mx.nd.random.normal(shape=(2, 3, 128, 128))
    a = net(x).asnumpy()
    net.hybridize()
    np.testing.assert_allclose(a, net(x).asnumpy(), rtol=1e-4, atol=1e-3)


def _neck_layout(net):
    """[(kind, channels, kernel, stride)] of the layers between backbone and tokens."""
    out = []
    for blk in net.neck:
        if isinstance(blk, (mx.gluon.nn.Conv2D, mx.gluon.nn.Conv2DTranspose)):
            kind = "deconv" if isinstance(blk, mx.gluon.nn.Conv2DTranspose) else "conv"
            out.append((kind, blk._channels, blk._kwargs["kernel"], blk._kwargs["stride"]))
    return out


def test_lotr_hr_plus_config_is_the_m_plus_architecture():
    # LOTR Sec. IV-C: LOTR-HR+ "uses the same architecture as LOTR-M+ and LOTR-R+" with an HRNet backbone;
    # Table I: 1x1 conv to 256, deconvolutions 128 and 64 (4x4, stride 2), 2+2 layers, PFFN 512-512-2
    from lotr_gluon.config import load_config
    from lotr_gluon.model_zoo import build_model
    nets = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for rel in ("jd/lotr_m_plus", "jd/lotr_r_plus", "wflw/lotr_hr_plus"):
            cfg = load_config("experiments/%s.yaml" % rel, ["MODEL.BACKBONE.PRETRAINED", "False"])
            nets[rel] = build_model(cfg)
    plus = [("conv", 256, (1, 1), (1, 1)), ("deconv", 128, (4, 4), (2, 2)), ("deconv", 64, (4, 4), (2, 2))]
    for rel, net in nets.items():
        assert _neck_layout(net) == plus, rel
        assert len(net.transformer.encoder) == 2 and len(net.transformer.decoder) == 2
        # JD/WFLW configs follow eq. (14)-(19): no LayerNorm after the last decoder layer
        assert not hasattr(net.transformer, "dec_norm")
        assert not [k for k in net.collect_params() if "decnorm" in k]
    # stride-32 backbones, x4 by the two deconvolutions: 24x24 tokens at 192 (M+, R+), 32x32 at 256 (HR+)
    assert nets["jd/lotr_m_plus"].token_grid == nets["jd/lotr_r_plus"].token_grid == 24
    assert nets["wflw/lotr_hr_plus"].token_grid == 32
    out = nets["wflw/lotr_hr_plus"](mx.nd.zeros((1, 3, 256, 256)))
    assert out.shape == (1, 98, 2)
    assert _neck_layout(_build("lotr_hr_plus", 128, num_points=98)) == plus  # the preset too


# ------------------------------------------------------------------- parts, builders and parameter names

def _proj(prefix, d):
    """Structural names and shapes of one MultiHeadAttention of width d."""
    return {"%s.proj_%s.%s" % (prefix, p, w): ((d, d) if w == "weight" else (d,))
            for p in ("q", "k", "v", "out") for w in ("weight", "bias")}


def _names(net, size):
    net.initialize_params()
    net(mx.nd.zeros((1, 3, size, size)))
    return {k: tuple(v.shape) for k, v in net._collect_params_with_prefix().items() if not k.startswith("backbone.")}


def test_structural_parameter_names_are_those_of_saved_models():
    """The keys that save_parameters writes (and load_parameters reads) outside the backbone, for a LOTR using
    every optional part and a CNN+FFN: the names of every .params file written before the models were composed
    from parts. Shapes by hand: 64 px / stride 32 = 2x2 features, x4 by the two deconvolutions = 64 tokens of
    D = 16; MXNet deconvolution weights are (in, out, k, k), dense weights (out, in)."""
    d, n = 16, 3
    net = get_model("lotr", backbone="mobilenetv2_0.25", num_points=n, input_size=64, hidden_dim=d, upsample=True,
                    upsample_reduce=16, upsample_filters=(8, d), upsample_batchnorm=True, num_heads=2,
                    num_encoder_layers=1, num_decoder_layers=1, ffn_hidden=8, norm_before=True, final_norm=True,
                    head_hidden=(8,), head_per_landmark_out=True, anchors=np.zeros((n, 2)), aux_heatmap=True,
                    aux_heatmap_upsampler="SD", aux_heatmap_filters=4, aux_heatmap_reduce=8)
    bn = lambda p, c: {"%s.%s" % (p, w): (c,) for w in ("gamma", "beta", "running_mean", "running_var")}  # noqa
    ffn = lambda p: {p + ".ffn.net.0.weight": (8, d), p + ".ffn.net.0.bias": (8,),  # noqa: E731
                     p + ".ffn.net.1.weight": (d, 8), p + ".ffn.net.1.bias": (d,)}
    ln = lambda *ps: {"%s.%s" % (p, w): (d,) for p in ps for w in ("gamma", "beta")}  # noqa: E731
    enc, dec = "transformer.encoder.0", "transformer.decoder.0"
    want = {"pos_embed": (1, 64, d), "query_embed": (1, n, d), "to_pixels.anchors": (1, n, 2),
            "neck.0.weight": (16, 1280, 1, 1), "neck.0.bias": (16,), "neck.1.weight": (16, 8, 4, 4),
            "neck.4.weight": (8, d, 4, 4), "head.net.0.weight": (8, d), "head.net.0.bias": (8,),
            "head.net.1.weight": (n, 8, 2), "head.net.1.bias": (1, n, 2),
            # auxiliary head: reduce conv + BN, S block (conv 4 x 4 filters + BN), D block (deconv + BN), 1x1 conv
            "aux_heatmap.0.weight": (8, 1280, 1, 1), "aux_heatmap.3.0.weight": (16, 8, 3, 3),
            "aux_heatmap.4.0.weight": (4, 4, 4, 4), "aux_heatmap.5.weight": (n, 4, 1, 1), "aux_heatmap.5.bias": (n,)}
    for part in (bn("neck.2", 8), bn("neck.5", d), bn("aux_heatmap.1", 8), bn("aux_heatmap.3.1", 16),
                 bn("aux_heatmap.4.1", 4), _proj(enc + ".attn", d), _proj(dec + ".self_attn", d),
                 _proj(dec + ".cross_attn", d), ffn(enc), ffn(dec), ln(enc + ".norm1", enc + ".norm2"),
                 ln(dec + ".norm1", dec + ".norm2", dec + ".norm3", "transformer.enc_norm", "transformer.dec_norm")):
        want.update(part)
    assert _names(net, 64) == want
    cnn = get_model("cnn_ffn", backbone="mobilenetv2_0.25", num_points=n, input_size=64, hidden_dim=4,
                    head_hidden=(8,), anchors=np.zeros((n, 2)))
    assert _names(cnn, 64) == {"neck.weight": (4, 1280, 1, 1), "neck.bias": (4,), "head.net.0.weight": (8, 2 * 2 * 4),
                               "head.net.0.bias": (8,), "head.net.1.weight": (2 * n, 8), "head.net.1.bias": (2 * n,),
                               "to_pixels.anchors": (1, n, 2)}


def test_lotr_is_composed_from_built_parts():
    """LOTR(backbone, neck, transformer, head, output) from parts built by hand equals get_model's network:
    same structure, and with the same weights the same output."""
    from lotr_gluon.blocks.backbones import get_backbone
    from lotr_gluon.blocks.layers import he_init
    from lotr_gluon.models import LOTR
    from lotr_gluon.models.heads import landmark_head
    from lotr_gluon.models.lotr import token_neck
    trunk = get_backbone("mobilenetv2_0.25")[0]
    assert (trunk.num_channels, trunk.stride, trunk.pretrained_loaded) == (1280, 32, False)
    neck = token_neck(trunk.num_channels, 16)
    tr = Transformer(16, num_heads=2, num_encoder_layers=1, num_decoder_layers=1, weight_initializer=he_init(),
                     prefix="transformer_")
    head, output = landmark_head(16, 5, 64, hidden=(8,))
    net = LOTR(trunk, neck, tr, head, output, input_size=64)
    ref = get_model("lotr", backbone="mobilenetv2_0.25", num_points=5, input_size=64, hidden_dim=16, num_heads=2,
                    num_encoder_layers=1, num_decoder_layers=1, head_hidden=(8,))
    x = mx.nd.random.normal(shape=(2, 3, 64, 64))
    assert _names(net, 64) == _names(ref, 64) and net.token_grid == 2 and net.num_points == 5
    for k, p in ref._collect_params_with_prefix().items():
        net._collect_params_with_prefix()[k].set_data(p.data())
    np.testing.assert_allclose(net(x).asnumpy(), ref(x).asnumpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="transformer width"):
        LOTR(trunk, token_neck(trunk.num_channels, 8), tr, head, output, input_size=64)
    with pytest.raises(ValueError, match="multiple of the backbone stride"):
        LOTR(trunk, neck, tr, head, output, input_size=70)


def test_build_transformer_passes_its_whole_section():
    """A Transformer option is one key of MODEL.TRANSFORMER and one argument of the block: the builder passes
    every key (lower-cased) without a list of its own. A key the block does not know reaches it and fails."""
    import inspect
    from lotr_gluon.config import get_defaults
    from lotr_gluon.model_zoo import build_model
    cfg = get_defaults()
    args = set(inspect.signature(Transformer.__init__).parameters)
    renamed = {"ENC_LAYERS": "num_encoder_layers", "DEC_LAYERS": "num_decoder_layers"}
    assert {renamed.get(k, k.lower()) for k in cfg.MODEL.TRANSFORMER} <= args
    cfg.defrost()
    cfg.DATA.INPUT_SIZE, cfg.MODEL.NUM_POINTS, cfg.MODEL.HEAD.HIDDEN = 64, 3, [8]
    cfg.MODEL.BACKBONE.NAME, cfg.MODEL.BACKBONE.PRETRAINED = "mobilenetv2_0.25", False
    cfg.MODEL.NECK.HIDDEN_DIM, cfg.MODEL.TRANSFORMER.NUM_HEADS = 16, 2
    cfg.MODEL.TRANSFORMER.DEC_LAYERS = 3
    cfg.MODEL.TRANSFORMER.POS_INIT_STD = 0.5
    cfg.MODEL.AUX.DECODER_LOSS = True
    tr = build_model(cfg, initialize=False).transformer
    assert len(tr.decoder) == 3 and tr.return_intermediate and tr.pos_init_std == 0.5 and tr.units == 16
    cfg.MODEL.TRANSFORMER.set_new_allowed(True)
    cfg.MODEL.TRANSFORMER.TRIAL_LEVER = 1
    with pytest.raises(TypeError, match="trial_lever"):
        build_model(cfg, initialize=False)


def test_build_model_reads_each_part_from_its_section():
    """MODEL.NAME lotr with the preset-sized sections: backbone from MODEL.BACKBONE, neck width from MODEL.NECK,
    layers from MODEL.TRANSFORMER, head from MODEL.HEAD, the auxiliary head (MODEL.AUX.HEATMAP_WEIGHT > 0) with
    the MODEL.HEATMAP layout; cnn_ffn refuses the auxiliary head."""
    from lotr_gluon.config import get_defaults
    from lotr_gluon.model_zoo import build_model
    cfg = get_defaults()
    cfg.defrost()
    cfg.DATA.INPUT_SIZE = 64
    cfg.MODEL.NUM_POINTS = 4
    cfg.MODEL.BACKBONE.NAME, cfg.MODEL.BACKBONE.PRETRAINED = "mobilenetv2_0.25", False
    cfg.MODEL.NECK.HIDDEN_DIM = 8
    cfg.MODEL.TRANSFORMER.NUM_HEADS, cfg.MODEL.TRANSFORMER.ENC_LAYERS = 2, 3
    cfg.MODEL.HEAD.HIDDEN = [6]
    cfg.MODEL.AUX.HEATMAP_WEIGHT = 1.0
    cfg.MODEL.HEATMAP.UPSAMPLER, cfg.MODEL.HEATMAP.FILTERS = "D", 4
    net = build_model(cfg)
    assert len(net.transformer.encoder) == 3 and net.pos_embed.shape == (1, 4, 8)
    assert net.head.net[0].weight.shape == (6, 8) and net.aux_heatmap_size == 4
    net.set_aux_heatmap_output(True)
    lm, hm = net(mx.nd.zeros((1, 3, 64, 64)))
    assert lm.shape == (1, 4, 2) and hm.shape == (1, 4, 4, 4)
    cfg.MODEL.NAME = "cnn_ffn"
    with pytest.raises(ValueError, match="lotr only"):
        build_model(cfg)
    cfg.MODEL.AUX.HEATMAP_WEIGHT = 0.0
    assert build_model(cfg)(mx.nd.zeros((1, 3, 64, 64))).shape == (1, 4, 2)


def test_parts_carry_the_model_prefix_so_trainer_state_order_is_kept():
    """gluon.Trainer orders its parameters (and a checkpoint's optimiser states) by *prefixed* name. Parts built
    in :func:`model_scope` carry the model's prefix, as when LOTR built them in its own name scope: the names of
    the checkpoints written before the models were composed from parts (``lotr0_mobilenetv20_...``), so that
    such a checkpoint resumes with every state on its own parameter. A second model counts on (``lotr1_``)."""
    from lotr_gluon.config import load_config
    from lotr_gluon.model_zoo import build_model
    kw = dict(backbone="mobilenetv2_0.25", num_points=3, input_size=64, hidden_dim=16, num_heads=2,
              num_encoder_layers=1, num_decoder_layers=1, head_hidden=(8,), aux_heatmap=True)
    with mx.name.NameManager():
        a, b = get_model("lotr", **kw), get_model("cnn_ffn", backbone="mobilenetv2_0.25", num_points=3,
                                                     input_size=64, head_hidden=(8,))
        c = get_model("lotr", **kw)
    assert all(k.startswith("lotr0_") for k in a.collect_params())
    assert "lotr0_mobilenetv20_features_conv0_weight" in a.collect_params()
    assert "lotr0_auxhm_conv0_weight" in a.collect_params()
    assert "lotr0_transformer_enc_layer0_attn_q_weight" in a.collect_params()
    assert all(k.startswith("cnnffn0_") for k in b.collect_params())
    assert all(k.startswith("lotr1_") for k in c.collect_params())
    # the builder from a config names them as get_model does
    cfg = load_config("experiments/datatang/lotr_m.yaml")
    with mx.name.NameManager():
        net = build_model(cfg, initialize=False)
    keys = list(net.collect_params())
    assert all(k.startswith("lotr0_") for k in keys) and "lotr0_mobilenetv20_features_conv0_weight" in keys
