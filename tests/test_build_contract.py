"""The model contract: ``lotr_gluon.build.build`` returns ``(net, criterion, postprocessor)`` for every
model family, ``load_model`` is the one loader, the post-processor's decoding and flip averaging give hand values,
and no module outside the builder asks what kind of model it holds."""
import os
import re
import warnings

import mxnet as mx
import numpy as np
import pytest

from heatmap_baseline.codec import HeatmapCodec
from lotr_gluon.build import Criterion, PostProcessor, build, load_model, inference_config
from lotr_gluon.config import load_config
from lotr_gluon.data.align import normalize_crops, warp_crop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
S = 64
TINY = ["MODEL.BACKBONE.NAME", "mobilenetv2_0.25", "MODEL.BACKBONE.PRETRAINED", "False", "DATA.INPUT_SIZE", str(S)]

#: config -> (decodes, dense criterion, auxiliary heatmap head): coordinate models regress crop pixels (the
#: Datatang LOTR-M recipe with the training-only heatmap head), Earp models are decoded
FAMILIES = {"lotr_m": (False, False, True), "cnn_ffn_mnv2": (False, False, False),
            "earp_mnv2_1.0_sdd": (True, True, False), "earp_mnv2_1.0_sdd_vector": (True, True, False)}


def _cfg(name, opts=()):
    return load_config(os.path.join(ROOT, "experiments", "datatang", name + ".yaml"), TINY + list(opts))


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_build_returns_net_criterion_postprocessor(name):
    decodes, dense, aux_head = FAMILIES[name]
    cfg = _cfg(name)
    mx.random.seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net, criterion, post = build(cfg)
    assert isinstance(criterion, Criterion) and isinstance(post, PostProcessor)
    assert post.decodes is decodes and criterion.dense is dense
    assert (post.codec is net.codec) if decodes else post.codec is None
    # the data pipeline must encode the targets of a dense loss or of the auxiliary head, and only those
    if dense:
        assert criterion.target_codec is net.codec and criterion.aux_loss is None
    elif aux_head:
        assert criterion.aux_loss is not None and criterion.target_codec.heatmap_size == net.aux_heatmap_size
    else:
        assert criterion.target_codec is None and criterion.aux_loss is None
    x = mx.nd.random.normal(shape=(2, 3, S, S))
    pts = post(net(x))
    assert pts.shape == (2, cfg.MODEL.NUM_POINTS, 2) and pts.dtype == np.float32 and np.isfinite(pts).all()
    # the criterion scores the training output against landmarks: one finite loss per sample (and the
    # auxiliary head's positive part of it while the training outputs are on)
    label = mx.nd.array(np.random.RandomState(0).uniform(8, S - 8, (2, cfg.MODEL.NUM_POINTS, 2)))
    criterion.training_outputs(net, True)
    loss, aux = criterion(net(x), label)
    criterion.training_outputs(net, False)
    assert loss.shape == (2,) and np.isfinite(loss.asnumpy()).all()
    assert (aux is not None and (aux.asnumpy() > 0).all() and (aux.asnumpy() < loss.asnumpy()).all()) \
        if aux_head else aux is None
    # inference: no criterion, the same post-processing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, none, post2 = build(cfg, train=False)
    assert none is None and post2.decodes is decodes


def test_postprocessor_flip_average_hand_values():
    # 3 points in a 10 px crop; points 0 and 1 swap under the mirror, 2 maps to itself
    post = PostProcessor(10, flip_perm=[1, 0, 2])
    p = np.array([[[1, 2], [3, 4], [5, 6]]], np.float32)
    mirrored = np.array([[[8, 2], [6, 4], [4, 6]]], np.float32)
    # un-mirror: reorder by perm -> [[6, 4], [8, 2], [4, 6]], then x -> 9 - x -> [[3, 4], [1, 2], [5, 6]]
    out = post.flip_average(p, mirrored)
    np.testing.assert_array_equal(out, [[[2, 3], [2, 3], [5, 6]]])
    assert out.dtype == np.float32 and post.flip_average(p.astype(np.float64), mirrored).dtype == np.float64
    with pytest.raises(ValueError, match="permutation"):
        PostProcessor(10).flip_average(p, mirrored)


def test_the_builder_tells_criterion_and_postprocessor_about_deep_supervision():
    """MODEL.AUX.DECODER_LOSS: the network returns every decoder layer's prediction; the builder says so to the
    criterion (summed over layers) and the post-processor (the last layer), which never read the output shape."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net, criterion, post = build(_cfg("lotr_m", ["MODEL.AUX.DECODER_LOSS", "True", "MODEL.AUX.HEATMAP_WEIGHT",
                                                     "0.0", "MODEL.HEAD.PER_LANDMARK_OUT", "False"]))
        plain = build(_cfg("lotr_m"))[2]
    assert criterion.deep_supervision and post.deep_supervision and not plain.deep_supervision
    out = net(mx.nd.zeros((2, 3, S, S)))
    assert out.shape == (2, 2, 106, 2) and post(out).shape == (2, 106, 2)
    np.testing.assert_array_equal(post(out), out.asnumpy()[-1])


def test_postprocessor_output_selection_and_decoding():
    post = PostProcessor(10)
    layers = mx.nd.array(np.arange(2 * 1 * 3 * 2, dtype=np.float32).reshape(2, 1, 3, 2))  # (L, B, N, 2)
    deep = PostProcessor(10, deep_supervision=True)  # told by the builder, never guessed from the shape
    np.testing.assert_array_equal(deep(layers), layers.asnumpy()[-1])  # the last decoder layer
    np.testing.assert_array_equal(post(layers[0]), layers.asnumpy()[0])
    np.testing.assert_array_equal(post((mx.nd.ones((4,)), layers[0])), layers.asnumpy()[0])  # last of a tuple
    assert not post.decodes and post.decoders == (None,) and post.default_decoder is None
    # a heatmap model: a one-hot map at heatmap pixel (u, v) = (2, 1) is input pixel (u + 0.5) s - 0.5, s = 4
    codec = HeatmapCodec(16, 4, sigma=1.0, decoder="argmax")
    hm = np.zeros((1, 1, 4, 4), np.float32)
    hm[0, 0, 1, 2] = 1.0
    hp = PostProcessor(16, [0], codec)
    np.testing.assert_allclose(hp(mx.nd.array(hm)), [[[9.5, 5.5]]])
    assert hp.decodes and hp.default_decoder == "argmax" and "dark" in hp.decoders



def test_postprocessor_reads_the_landmarks_of_lotr_with_its_heatmap_output_on():
    # the Datatang LOTR-M recipe has the training-only heatmap head: its tuple output is (landmarks, heatmaps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net, _, post = build(_cfg("lotr_m"))
    assert post.outputs == ("landmarks", "aux_heatmaps")
    x = mx.nd.random.normal(shape=(2, 3, S, S))
    landmarks = net(x).asnumpy()
    net.set_aux_heatmap_output(True)
    out = net(x)
    assert isinstance(out, (list, tuple)) and len(out) == 2 and out[1].ndim == 4  # (B, N, h, h) heatmaps
    np.testing.assert_allclose(post(out), landmarks, rtol=1e-5, atol=1e-4)
    net.set_aux_heatmap_output(False)
    with pytest.raises(ValueError, match="returned 3 outputs; this post-processor knows 2"):
        post.host(tuple(out) + (out[0],))
    with pytest.raises(ValueError, match="no 'landmarks'"):
        PostProcessor(S, outputs=("heatmaps",))

def test_criterion_deep_supervision_and_targets_hand_values():
    l1 = mx.gluon.loss.L1Loss()
    label = mx.nd.zeros((1, 2, 2))
    outs = mx.nd.array([[[[1, 1], [1, 1]]], [[[2, 2], [2, 2]]]])  # (L=2, B=1, N=2, 2): mean |err| 1 and 2
    assert Criterion(l1, deep_supervision=True)(outs, label)[0].asscalar() == pytest.approx(3.0)
    assert Criterion(l1)(outs[1], label)[0].asscalar() == pytest.approx(2.0)
    # a dense loss against targets encoded from the landmarks when the pipeline gave none
    codec = HeatmapCodec(16, 4, sigma=1.0)
    pts = np.array([[[9.5, 5.5]]], np.float32)
    crit = Criterion(mx.gluon.loss.L2Loss(), target_codec=codec, dense=True)
    target = mx.nd.array(codec.encode(pts))
    assert crit(target, mx.nd.array(pts))[0].asscalar() == 0.0
    assert crit(target * 0, mx.nd.array(pts), target)[0].asscalar() > 0
    data = [(np.zeros((3, 16, 16), np.float32), pts[0])]
    img, lab, hm = crit.wrap_dataset(data)[0]
    np.testing.assert_array_equal(hm, codec.encode(pts[0]))
    assert Criterion(l1).wrap_dataset(data) is data


def test_load_model_reads_no_backbone_weights_and_checks_weights(tmp_path):
    # PRETRAINED on with a file that does not exist: load_model must not try to read it
    cfg = _cfg("lotr_m", ["MODEL.BACKBONE.PRETRAINED", "True", "MODEL.BACKBONE.PRETRAINED_FILE",
                          str(tmp_path / "missing.params"), "MODEL.AUX.HEATMAP_WEIGHT", "1.0"])
    c = inference_config(cfg)
    assert not c.MODEL.BACKBONE.PRETRAINED and c.MODEL.BACKBONE.PRETRAINED_FILE == "" and \
        c.MODEL.AUX.HEATMAP_WEIGHT == 0.0
    mx.random.seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "cannot load pretrained weights" warning
        net, post = load_model(cfg, None)
    net(mx.nd.zeros((1, 3, S, S)))
    net.save_parameters(str(tmp_path / "w.params"))
    net2, _ = load_model(cfg, str(tmp_path / "w.params"))
    x = mx.nd.random.normal(shape=(1, 3, S, S))
    np.testing.assert_array_equal(post(net2(x)), post(net(x)))
    from lotr_gluon.build import ParamsFileError
    with pytest.raises(ParamsFileError, match="another architecture"):
        load_model(_cfg("cnn_ffn_mnv2"), str(tmp_path / "w.params"))


def test_one_preprocessing_hand_values():
    crop = np.zeros((2, 2, 3), np.uint8)
    crop[0, 1] = (255, 0, 51)
    x = normalize_crops(crop, mean=(0.5, 0.0, 0.2), std=(0.25, 1.0, 0.5))
    assert x.shape == (3, 2, 2) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0, 1], [2.0, 0.0, 0.0], atol=1e-6)  # (1 - .5) / .25, 0, (.2 - .2) / .5
    np.testing.assert_allclose(x[:, 1, 0], [-2.0, 0.0, -0.4], atol=1e-6)
    np.testing.assert_array_equal(normalize_crops(crop[None], (0.5, 0, 0.2), (0.25, 1, 0.5))[0], x)
    # warp: a pure shift by (-1, -2) moves image pixel (x, y) = (1, 2) to crop pixel (0, 0)
    img = np.zeros((5, 5, 3), np.uint8)
    img[2, 1] = 200
    out = warp_crop(img, np.array([[1.0, 0, -1], [0, 1.0, -2]]), 3)
    assert out.shape == (3, 3, 3) and out[0, 0, 0] == 200 and out.sum() == 600


SOURCES = ("lotr_gluon", "heatmap_baseline", "tools")
FORBIDDEN = [re.compile(r"hasattr\(\s*\w+\s*,\s*[\"']codec[\"']\s*\)"), re.compile(r"MODEL\.NAME\s*[!=]="),
             re.compile(r"\bis_heatmap\b"), re.compile(r"\b_heatmap_codec\b")]


def test_no_module_outside_the_builder_asks_the_model_kind():
    hits = []
    for top in SOURCES:
        for d, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                path = os.path.join(d, f)
                rel = os.path.relpath(path, ROOT)
                if not f.endswith(".py") or rel == os.path.join("lotr_gluon", "build.py"):
                    continue
                for i, line in enumerate(open(path, encoding="utf-8"), 1):
                    if any(p.search(line) for p in FORBIDDEN):
                        hits.append("%s:%d: %s" % (rel, i, line.strip()))
    assert not hits, "\n".join(hits)
