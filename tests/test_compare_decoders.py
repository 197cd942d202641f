"""tools/compare_decoders.py on a tiny random heatmap model and real Datatang faces."""
import json
import os
import subprocess
import sys
import warnings

from lotr_gluon.config import load_config
from lotr_gluon.models import build_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CFG = os.path.join(ROOT, "experiments", "datatang", "earp_mnv2_1.0_sdd.yaml")


def test_compare_decoders_tool(datatang_root, tmp_path):
    opts = ["DATA.ROOT", str(datatang_root), "DATA.MAX_SAMPLES", "4", "DATA.INPUT_SIZE", "64",
            "MODEL.BACKBONE", "mobilenetv2_0.25", "MODEL.PRETRAINED", "False"]
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
    assert all(x["num_images"] == 4 and x["decode_ms_per_image"] >= 0 for x in rows)
    assert (tmp_path / "dec" / "ced.png").stat().st_size > 0
    assert "| dark | on |" in open(tmp_path / "dec" / "decoders.md").read()
