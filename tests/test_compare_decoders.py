"""tools/compare_decoders.py on real Datatang faces: the CLI end to end on a tiny random heatmap model, and its
NMEs on a stub heatmap network whose output is the encoded ground truth (DARK and vector ~0, argmax within
half a heatmap pixel per axis)."""
import importlib.util
import json
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

from heatmap_baseline import HeatmapCodec
from lotr_gluon.build import PostProcessor, build_dataset

from lotr_gluon.config import load_config
from lotr_gluon.model_zoo import build_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CFG = os.path.join(ROOT, "experiments", "datatang", "earp_mnv2_1.0_sdd.yaml")


def test_compare_decoders_tool(datatang_root, tmp_path):
    opts = ["DATA.ROOT", str(datatang_root), "DATA.MAX_SAMPLES", "4", "DATA.INPUT_SIZE", "64",
            "MODEL.BACKBONE.NAME", "mobilenetv2_0.25", "MODEL.BACKBONE.PRETRAINED", "False"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = build_model(load_config(CFG, opts))
        net(__import__("mxnet").nd.zeros((1, 3, 64, 64)))
    net.save_parameters(str(tmp_path / "w.params"))
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "compare_decoders.py"), "--cfg", CFG,
                        "--params", str(tmp_path / "w.params"), "--out", str(tmp_path / "dec")] + opts,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.load(open(tmp_path / "dec" / "decoders.json"))["rows"]
    assert [(x["decoder"], x["flip"]) for x in rows] == [(d, f) for f in (False, True)
                                                         for d in ("argmax", "argmax_shift", "dark", "vector")]
    assert all(x["num_images"] == 4 for x in rows)
    # every row timed its decoding (heatmap -> points is real work) and scored real, finite errors
    assert all(x["decode_ms_per_image"] > 0 and x["network_ms_per_image"] > 0 for x in rows)
    assert all(np.isfinite(x["nme"]) and x["nme"] > 0 for x in rows)
    assert (tmp_path / "dec" / "ced.png").stat().st_size > 0
    _check_markdown(tmp_path / "dec" / "decoders.md", rows)


def _check_markdown(path, rows):
    """decoders.md has one line per JSON row with the same NME / AUC / FR (percent, 2 decimals)."""
    lines = [l for l in open(path).read().splitlines() if re.match(r"\| (argmax|argmax_shift|dark|vector) \|", l)]
    assert len(lines) == len(rows)
    for line, r in zip(lines, rows):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[:2] == [r["decoder"], "on" if r["flip"] else "off"]
        assert [float(c) for c in cells[2:5]] == [round(100 * r[k], 2) for k in ("nme", "auc", "fr")]


class EncodedTruthNet:
    """Stub heatmap model for the tool: for each known crop, the Gaussian heatmaps (the codec's targets,
    LOTR eq. 1) of its ground truth; for the mirrored crop, those of the mirrored points."""

    def __init__(self, dataset, codec):
        from lotr_gluon.data.augment import flip_points
        perm = dataset.scheme.flip_permutation()
        self.codec = codec
        self.table = {}
        for i in range(len(dataset)):
            img, pts = dataset[i]
            self.table[img.tobytes()] = pts
            self.table[np.ascontiguousarray(img[:, :, ::-1]).tobytes()] = flip_points(pts, img.shape[2], perm)

    def hybridize(self, **kwargs):
        pass

    def __call__(self, x):
        import mxnet as mx
        return mx.nd.array(self.codec.encode(np.stack([self.table[a.tobytes()] for a in x.asnumpy()])))


def _load_tool():
    spec = importlib.util.spec_from_file_location("compare_decoders_tool", os.path.join(ROOT, "tools",
                                                                                       "compare_decoders.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_compare_decoders_nmes_on_encoded_ground_truth(datatang_root, tmp_path, monkeypatch, capsys):
    # 128 px crops at template scale 0.6: every landmark of these faces >= 4 heatmap px inside the 32 x 32 map
    opts = ["DATA.ROOT", str(datatang_root), "DATA.MAX_SAMPLES", "4", "DATA.INPUT_SIZE", "128",
            "DATA.TEMPLATE_SCALE", "0.6", "MODEL.BACKBONE.PRETRAINED", "False"]
    cfg = load_config(CFG, opts)
    test_set = build_dataset(cfg, "test")
    codec = HeatmapCodec(128, 32, sigma=cfg.MODEL.HEATMAP.SIGMA, decoder=cfg.MODEL.HEATMAP.DECODER)
    tool = _load_tool()
    post = PostProcessor(128, test_set.scheme.flip_permutation(), codec)  # build_postprocessor's for this model
    monkeypatch.setattr(tool, "load_model", lambda cfg, params, ctx=None: (EncodedTruthNet(test_set, codec), post))
    (tmp_path / "w.params").write_bytes(b"")
    assert tool.main(["--cfg", CFG, "--params", str(tmp_path / "w.params"), "--out", str(tmp_path / "dec")]
                     + opts) == 0
    rows = json.load(open(tmp_path / "dec" / "decoders.json"))["rows"]
    by = {(r["decoder"], r["flip"]): r for r in rows}
    assert len(by) == 8 and all(r["num_images"] == 4 for r in rows)
    # the largest NME a per-axis error of e crop pixels can give: sqrt(2) e / sqrt(w h) of the crop's gt box
    # (NME is invariant to the similarity that maps the crop back to the image)
    gt = test_set.aligned_landmarks()
    box = np.sqrt(np.prod(gt.max(1) - gt.min(1), axis=1)).min()
    for flip in (False, True):
        for dec in ("dark", "vector"):  # exact on Gaussian targets: ~0
            assert by[dec, flip]["nme"] < 1e-4, (dec, flip, by[dec, flip]["nme"])
            assert by[dec, flip]["fr"] == 0.0 and by[dec, flip]["auc"] > 0.999
        # argmax: at most half a heatmap pixel (2 crop px at stride 4) per axis; shift: a quarter
        a, s = by["argmax", flip]["nme"], by["argmax_shift", flip]["nme"]
        assert 1e-3 < a <= np.sqrt(2) * 2.0 / box, (flip, a)
        assert 1e-4 < s <= np.sqrt(2) * 1.0 / box and s < a, (flip, s)
        assert by["dark", flip]["nme"] < 0.1 * s
    _check_markdown(tmp_path / "dec" / "decoders.md", rows)
    out = capsys.readouterr().out
    assert re.search(r"dark +flip=False NME 0\.00%", out) and "wrote %s" % (tmp_path / "dec") in out


def test_compare_decoders_rejects_regression_models(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _load_tool().main(["--cfg", os.path.join(ROOT, "experiments", "datatang", "lotr_m.yaml"),
                           "--params", str(tmp_path / "none.params")])
    assert "heatmap models" in capsys.readouterr().err
