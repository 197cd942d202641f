"""Benchmark: behaviour only (row structure, Markdown, CLI files), never timings, on tiny models
(MobileNetV2-0.25 at 64 px)."""
import json
import os
import time
import types
import warnings

import mxnet as mx
import pytest

import lotr_gluon.benchmark as benchmark_module
from conftest import load_tool
from lotr_gluon.benchmark import (ROW_KEYS, benchmark_model, parse_ctx, render_markdown, speed_ratios,
                                  time_callable)

warnings.filterwarnings("ignore", category=UserWarning)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOTR_CFG = os.path.join(ROOT, "experiments", "datatang", "lotr_m.yaml")
EARP_CFG = os.path.join(ROOT, "experiments", "datatang", "earp_mnv2_1.0_sdd.yaml")
TINY = ["MODEL.BACKBONE.NAME", "mobilenetv2_0.25", "MODEL.BACKBONE.PRETRAINED", "False", "DATA.INPUT_SIZE", "64"]
RUNTIMES = ("gluon", "symbol", "onnx")
BATCHES = (1, 2)
FLIPS = (False, True)


def test_time_callable_sleep():
    calls = []

    def fn():
        calls.append(1)
        time.sleep(0.002)

    t = time_callable(fn, runs=3, warmup=2)
    assert len(calls) == 5 and t["runs"] == 3
    assert t["mean_ms"] >= 1.5 and t["min_ms"] >= 1.5  # slept 2 ms each time
    assert t["min_ms"] <= t["median_ms"] <= t["max_ms"]
    assert time_callable(fn, runs=1, warmup=0)["std_ms"] == 0.0
    with pytest.raises(ValueError):
        time_callable(fn, runs=0)


def test_time_callable_statistics_on_a_fake_clock(monkeypatch):
    """Exact statistics on a clock that advances by known amounts: timed calls take 1, 3, 2, 6 ms."""
    clock = [100.0]
    durations = iter([0.5, 0.5, 1.0, 3.0, 2.0, 6.0])  # two warmup calls, then four timed ones (ms)

    def fn():
        clock[0] += next(durations) / 1e3

    monkeypatch.setattr(benchmark_module, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    t = time_callable(fn, runs=4, warmup=2)
    assert t["runs"] == 4
    assert t["mean_ms"] == pytest.approx(3.0) and t["median_ms"] == pytest.approx(2.5)
    assert t["min_ms"] == pytest.approx(1.0) and t["max_ms"] == pytest.approx(6.0)
    # sample std (ddof 1): sqrt(((1-3)^2 + 0 + (2-3)^2 + (6-3)^2) / 3) = sqrt(14 / 3)
    assert t["std_ms"] == pytest.approx((14.0 / 3.0) ** 0.5)


@pytest.fixture(scope="module")
def rows():
    out = []
    for cfg, decoders in ((LOTR_CFG, None), (EARP_CFG, ("dark", "argmax"))):
        out += benchmark_model(cfg, opts=TINY, runtimes=RUNTIMES, batches=BATCHES, flips=FLIPS, decoders=decoders,
                               runs=2, warmup=1)
    return out


def test_rows_cover_every_combination(rows):
    lotr = [r for r in rows if r["model"] == "lotr_m"]
    earp = [r for r in rows if r["model"] == "earp_mnv2_1.0_sdd"]
    combos = {(rt, b, f) for rt in RUNTIMES for b in BATCHES for f in FLIPS}
    assert {(r["runtime"], r["batch"], r["flip"]) for r in lotr} == combos and len(lotr) == len(combos)
    assert {(r["runtime"], r["batch"], r["flip"], r["decoder"]) for r in earp} == \
        {c + (d,) for c in combos for d in ("dark", "argmax")} and len(earp) == 2 * len(combos)
    for r in rows:
        assert set(ROW_KEYS) <= set(r), set(ROW_KEYS) - set(r)
        # two timed runs a <= b: mean (a + b) / 2, sample std (b - a) / sqrt(2); decoding is real work (> 0)
        for kind in ("net", "decode"):
            t = r[kind + "_timing"]
            assert r[kind + "_ms_mean"] == t["mean_ms"] and r[kind + "_ms_std"] == t["std_ms"] and t["runs"] == 2
            assert t["mean_ms"] == pytest.approx((t["min_ms"] + t["max_ms"]) / 2)
            assert t["std_ms"] == pytest.approx((t["max_ms"] - t["min_ms"]) / 2 ** 0.5)
            assert t["min_ms"] > 0
        assert r["runs"] == 2 and r["warmup"] == 1 and r["input_size"] == 64
        assert r["ms_per_image"] == pytest.approx((r["net_ms_mean"] + r["decode_ms_mean"]) / r["batch"])
        assert r["images_per_s"] == pytest.approx(1e3 / r["ms_per_image"])
        assert r["params"] > 0 and r["size_mb"] > 0 and r["gmacs"] > 0
        assert r["weights"] == "random init"
        assert r["flip_mode"] == ("batch" if r["flip"] else None)
        if r["runtime"] == "gluon":
            assert r["max_abs_diff_vs_gluon"] is None
        elif r["runtime"] == "symbol":  # the same MXNet kernels: 1e-4, as the export tests (test_export.py)
            assert r["max_abs_diff_vs_gluon"] <= 1e-4
        else:  # onnxruntime, up to its rounding (random LOTR at 64 px: ~1e-3 px)
            assert r["max_abs_diff_vs_gluon"] < 0.05
    assert {r["kind"] for r in lotr} == {"regression"} and {r["decoder"] for r in lotr} == {None}
    assert {r["kind"] for r in earp} == {"heatmap"}
    # the network timing is shared by the decoders of one runtime/batch/flip
    for rt in RUNTIMES:
        pair = [r for r in earp if (r["runtime"], r["batch"], r["flip"]) == (rt, 1, False)]
        assert pair[0]["net_ms_mean"] == pair[1]["net_ms_mean"]


def test_render_markdown_and_ratios(rows):
    md = render_markdown(rows)
    timing, ratio_part = md.split("LOTR vs Earp speed ratio")
    table = [l for l in timing.splitlines() if l.startswith("| lotr_m |") or l.startswith("| earp_mnv2_1.0_sdd |")]
    assert len(table) == len(rows)
    for r in rows:
        flip = "off" if not r["flip"] else "on (2B batch)"
        start = "| %s | %s | %d | %s | %s |" % (r["model"], r["runtime"], r["batch"], flip, r["decoder"] or "-")
        assert any(l.startswith(start) for l in table), start
    assert "random init" in md.lower() or "random initialisation" in md.lower()
    ratios = speed_ratios(rows)
    assert len(ratios) == len(RUNTIMES) * len(BATCHES) * len(FLIPS) * 2
    assert all(q["total_ratio"] > 0 and q["net_ratio"] > 0 for q in ratios)
    assert "ratio (total, dark)" in ratio_part and "ratio (total, argmax)" in ratio_part
    assert "| lotr_m | earp_mnv2_1.0_sdd | onnx | 2 | on (2B batch) |" in ratio_part
    assert len([l for l in ratio_part.splitlines() if l.startswith("| lotr_m |")]) == 12  # runtime x batch x flip
    assert "LOTR vs Earp" not in render_markdown(rows, ratios=False)


def test_flip_twice_and_errors():
    rows = benchmark_model(LOTR_CFG, opts=TINY, runtimes=("gluon",), batches=(2,), flips=(True,), runs=1,
                           warmup=0, flip_mode="twice")
    assert len(rows) == 1 and rows[0]["flip_mode"] == "twice" and rows[0]["batch"] == 2
    assert "on (2 passes)" in render_markdown(rows)
    with pytest.raises(ValueError):
        benchmark_model(LOTR_CFG, opts=TINY, runtimes=("tensorrt",))
    with pytest.raises(ValueError):
        benchmark_model(EARP_CFG, opts=TINY, runtimes=("gluon",), decoders=("soft_argmax",), runs=1)
    with pytest.raises(FileNotFoundError):
        benchmark_model(LOTR_CFG, params="/nonexistent.params", opts=TINY)


def test_gpu_context_fails_clearly():
    assert parse_ctx("cpu") == mx.cpu()
    with pytest.raises(ValueError):
        parse_ctx("tpu0")
    if mx.context.num_gpus() == 0:
        with pytest.raises(RuntimeError, match="GPU"):
            parse_ctx("gpu0")


def _cli():
    return load_tool("benchmark")


def test_cli_writes_json_and_md(tmp_path, capsys):
    out = tmp_path / "bench" / "tiny.json"
    rc = _cli().main(["--models", LOTR_CFG, EARP_CFG, "--runs", "1", "--warmup", "0", "--batch", "1",
                      "--runtimes", "gluon", "onnx", "--decoders", "argmax", "--flip", "off",
                      "--opts"] + TINY + ["--out", str(out), "--quiet", "--note", "tiny test"])
    assert rc == 0
    md_path = tmp_path / "bench" / "tiny.md"
    assert out.is_file() and md_path.is_file()
    data = json.loads(out.read_text())
    assert len(data["rows"]) == 4 and len(data["models"]) == 2
    assert {r["runtime"] for r in data["rows"]} == {"gluon", "onnx"}
    assert all(r["flip"] is False and r["batch"] == 1 for r in data["rows"])
    assert len(data["ratios"]) == 2
    m = data["machine"]
    for key in ("cpu_model", "cpu_count", "mxnet", "onnxruntime", "env", "date"):
        assert key in m
    assert "OMP_NUM_THREADS" in m["env"] and data["settings"]["runs"] == 1
    assert "random" in data["weights_note"] and data["date"]
    md = md_path.read_text()
    assert "tiny test" in md and md in capsys.readouterr().out
    assert md.count("| lotr_m |") == 2 + 2  # 2 timing rows + 2 ratio rows


def test_cli_rejects_bad_arguments(capsys):
    cli = _cli()
    with pytest.raises(SystemExit):
        cli.main(["--models", LOTR_CFG, "--params", "a.params", "b.params"])
    with pytest.raises(SystemExit):
        cli.main(["--runs", "0"])
    if mx.context.num_gpus() == 0:
        with pytest.raises(SystemExit):
            cli.main(["--ctx", "gpu0", "--runtimes", "gluon"])
        assert "GPU" in capsys.readouterr().err
