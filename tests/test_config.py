"""Config: defaults, YAML overrides, command-line overrides, unknown keys, and every experiment builds."""
import glob
import json
import os
import re
import subprocess
import sys
import warnings

import pytest

from lotr_gluon.config import ConfigError, flatten_keys, get_defaults, load_config, run_dir
from lotr_gluon.errors import UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS = sorted(glob.glob(os.path.join(ROOT, "experiments", "**", "*.yaml"), recursive=True))


def test_every_default_key_is_commented():
    src = open(os.path.join(ROOT, "lotr_gluon", "config", "defaults.py")).read()
    for line in src.splitlines():
        if line.startswith("_C.") and "= CN()" not in line:
            assert "#" in line, "uncommented config key: %s" % line


def test_unknown_yaml_key_lists_valid(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("TRAIN:\n  EPOCS: 3\n")
    with pytest.raises(ConfigError) as e:
        load_config(str(p))
    assert "TRAIN.EPOCS" in str(e.value) and "TRAIN.EPOCHS" in str(e.value)


def test_unknown_cli_key_lists_valid():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["MODEL.BACKBONEZ", "resnet50_v1"])
    assert "MODEL.BACKBONE" in str(e.value)


def test_overrides_and_run_dir():
    cfg = load_config(os.path.join(ROOT, "experiments/datatang/lotr_m.yaml"), ["TRAIN.EPOCHS", "3", "DEVICES", "[0, 1]"])
    assert cfg.TRAIN.EPOCHS == 3 and list(cfg.DEVICES) == [0, 1]
    assert run_dir(cfg) == os.path.join("output", "datatang", "lotr_m")
    assert cfg.is_frozen()


def test_frozen_config_round_trips(tmp_path):
    cfg = load_config(os.path.join(ROOT, "experiments/jd/lotr_r_plus.yaml"))
    p = tmp_path / "config.yaml"
    p.write_text(cfg.dump())
    again = load_config(str(p))
    assert again.MODEL.BACKBONE.NAME == "resnet50_v1" and flatten_keys(again) == flatten_keys(cfg)


def test_jd_configs_carry_paper_recipe():
    for name in ("lotr_m", "lotr_m_plus", "lotr_r_plus"):
        cfg = load_config(os.path.join(ROOT, "experiments/jd/%s.yaml" % name))
        t = cfg.TRAIN
        assert (t.OPTIMIZER, t.LR, t.BATCH_SIZE, t.EPOCHS, list(t.LR_STEPS)) == ("lamb", 1e-3, 32, 100, [50, 75])
        assert cfg.LOSS.NAME == "smooth_wing" and cfg.MODEL.BACKBONE.PRETRAINED
        assert cfg.MODEL.TRANSFORMER.QUERY_INIT_STD == 1e-4 and cfg.MODEL.TRANSFORMER.DECODER_INPUT == "queries"


def test_final_decoder_norm_follows_the_equations_in_jd_wflw_configs():
    # LOTR eq. (14)-(19): post-norm layers, nothing after the last decoder layer
    for rel in ("jd/lotr_m", "jd/lotr_m_plus", "jd/lotr_r_plus", "wflw/lotr_hr_plus"):
        m = load_config(os.path.join(ROOT, "experiments/%s.yaml" % rel)).MODEL.TRANSFORMER
        assert m.FINAL_NORM is False and m.NORM_BEFORE is False, rel
    # the Datatang recipe's pre-norm layers keep DETR's final decoder LayerNorm (its residual stream is
    # never normalised otherwise)
    for name in ("lotr_m", "lotr_m_plus", "lotr_r_plus"):
        m = load_config(os.path.join(ROOT, "experiments/datatang/%s.yaml" % name)).MODEL.TRANSFORMER
        assert m.NORM_BEFORE is True and m.FINAL_NORM is True, name


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_experiment_parses_and_builds(path):
    cfg = load_config(path, ["MODEL.BACKBONE.PRETRAINED", "False"])
    from lotr_gluon.model_zoo import build_model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = build_model(cfg)
    import mxnet as mx
    s = cfg.DATA.INPUT_SIZE
    if cfg.MODEL.BACKBONE.NAME in ("resnet50_v1", "hrnet_w18"):
        return  # built above; running the heavy ones is covered by test_models
    out = net(mx.nd.zeros((1, 3, s, s)))
    if cfg.MODEL.NAME == "earp_heatmap":
        assert out.shape[:2] == (1, cfg.MODEL.NUM_POINTS)
    elif cfg.MODEL.NAME == "earp_vector":  # x- and y-vectors per landmark
        assert out.shape == (1, cfg.MODEL.NUM_POINTS, 2, net.vector_size)
    else:
        assert out.shape == (1, cfg.MODEL.NUM_POINTS, 2)


def test_model_info_tool_prints_one_json_line():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tools/model_info.py"), "--cfg",
                          os.path.join(ROOT, "experiments/jd/lotr_m.yaml")], capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()
    info = json.loads(out[-1])
    assert set(info) >= {"params", "size_mb", "gmacs", "gflops_2x_macs", "input_size"}
    assert abs(info["params"] / 1e6 - 2.81) / 2.81 < 0.03 and info["input_size"] == 192
    # LOTR Sec. IV-E: LOTR-M 0.23 "GFLOPs" = GMACs (within 20%: tests/test_flops.py)
    assert 0.8 * 0.23 < info["gmacs"] < 1.2 * 0.23 and info["gflops_2x_macs"] == pytest.approx(2 * info["gmacs"], abs=2e-4)


def test_train_tool_rejects_unknown_key():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools/train.py"), "--cfg",
                        os.path.join(ROOT, "experiments/jd/lotr_m.yaml"), "TRAIN.NOPE", "1"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "TRAIN.NOPE" in r.stderr and "TRAIN.EPOCHS" in r.stderr


# ------------------------------------------------------------------------------ nested MODEL sections
# the plan's table of moved keys (/work/notes/i13_plan.md), written out independently of lotr_gluon/config/legacy.py
MOVED = """
BACKBONE NAME=BACKBONE PRETRAINED PRETRAINED_FILE PRETRAINED_ROOT HRNET_STRIDE
NECK HIDDEN_DIM UPSAMPLE UPSAMPLE_REDUCE UPSAMPLE_FILTERS UPSAMPLE_KERNEL UPSAMPLE_BATCHNORM
TRANSFORMER NUM_HEADS ENC_LAYERS DEC_LAYERS FFN_HIDDEN DROPOUT DECODER_INPUT POS_IN_VALUES NORM_BEFORE ATTN_OUT_INIT
TRANSFORMER FINAL_NORM QUERY_INIT_STD POS_INIT_STD POS_INIT QUERY_INIT
HEAD HIDDEN=HEAD_HIDDEN COORD_UNITS ANCHORS LAST_INIT_STD=HEAD_LAST_INIT_STD PER_LANDMARK_OUT=HEAD_PER_LANDMARK_OUT
AUX DECODER_LOSS=AUX_LOSS HEATMAP_WEIGHT=AUX_HEATMAP_WEIGHT
HEATMAP UPSAMPLER FILTERS=UPSAMPLER_FILTERS REDUCE=UPSAMPLER_REDUCE S_BLOCK=UPSAMPLER_S_BLOCK D_KERNEL=UPSAMPLER_D_KERNEL
HEATMAP S_KERNEL=UPSAMPLER_S_KERNEL S_CONV_MULT=UPSAMPLER_S_CONV_MULT CONV=HEATMAP_CONV KERNEL=HEATMAP_KERNEL
HEATMAP PRE_KERNEL=HEATMAP_PRE_KERNEL FINAL_S_KERNEL=HEATMAP_FINAL_S_KERNEL SIGMA=HEATMAP_SIGMA DECODER=HEATMAP_DECODER
HEATMAP VECTOR_BANDWIDTHS VECTOR_THETA VECTOR_DECODER
"""
OLD_TO_NEW = {}
for _line in MOVED.strip().splitlines():
    _section, *_leaves = _line.split()
    for _leaf in _leaves:
        _new, _, _old = _leaf.partition("=")
        OLD_TO_NEW["MODEL." + (_old or _new)] = "MODEL.%s.%s" % (_section, _new)
LEGACY_RUN = os.path.join(ROOT, "tests", "data", "legacy_run_config.yaml")  # a run's config.yaml, pre-issue-13 code


def test_model_sections_hold_the_moved_keys_and_nothing_else_moved():
    assert len(OLD_TO_NEW) == 48  # the flat MODEL section had 52 keys: all but NAME, NUM_POINTS, INIT_FROM* moved
    keys = set(flatten_keys(get_defaults()))
    assert set(OLD_TO_NEW.values()) <= keys
    model = {k for k in keys if k.startswith("MODEL.")}
    assert model - set(OLD_TO_NEW.values()) == {"MODEL.NAME", "MODEL.NUM_POINTS", "MODEL.INIT_FROM",
                                                 "MODEL.INIT_FROM_PREFIXES",
                                                 "MODEL.HEATMAP.FINAL_S_ACT"}   # added after the move


def test_section_defaults_are_the_old_flat_defaults():
    d = get_defaults()
    # hand-copied from the flat defaults of the earlier layout
    assert (d.MODEL.BACKBONE.NAME, d.MODEL.BACKBONE.PRETRAINED, d.MODEL.BACKBONE.HRNET_STRIDE) == ("mobilenetv2_1.0", True, 4)
    assert (d.MODEL.NECK.HIDDEN_DIM, d.MODEL.NECK.UPSAMPLE, list(d.MODEL.NECK.UPSAMPLE_FILTERS)) == (64, False, [128, 64])
    t = d.MODEL.TRANSFORMER
    assert (t.NUM_HEADS, t.ENC_LAYERS, t.DEC_LAYERS, t.FFN_HIDDEN, t.DROPOUT, t.QUERY_INIT_STD, t.FINAL_NORM) == \
        (8, 2, 2, 0, 0.1, 1e-4, False)
    assert (list(d.MODEL.HEAD.HIDDEN), d.MODEL.HEAD.COORD_UNITS, d.MODEL.HEAD.LAST_INIT_STD) == ([512, 512], "input_frac", 1e-3)
    assert (d.MODEL.AUX.DECODER_LOSS, d.MODEL.AUX.HEATMAP_WEIGHT) == (False, 0.0)
    h = d.MODEL.HEATMAP
    assert (h.UPSAMPLER, h.FILTERS, h.REDUCE, h.S_CONV_MULT, h.SIGMA, h.DECODER, list(h.VECTOR_BANDWIDTHS)) == \
        ("SDD", 32, 256, 4, 1.5, "dark", [3, 5])


def _other_value(v):
    """A value of the same type as ``v`` that differs from it, as a command-line string."""
    if isinstance(v, bool):
        return str(not v), (not v)
    if isinstance(v, int):
        return str(v + 3), v + 3
    if isinstance(v, float):
        return repr(v * 2 + 1), v * 2 + 1
    if isinstance(v, str):
        return "x" + v, "x" + v
    return str(list(v) + [7]), list(v) + [7]


@pytest.mark.parametrize("old", sorted(OLD_TO_NEW))
def test_old_key_on_command_line_names_new_key_and_new_key_is_reachable(old):
    new = OLD_TO_NEW[old]
    with pytest.raises(ConfigError) as e:
        load_config(None, [old, "1"])
    msg = str(e.value)
    assert isinstance(e.value, UsageError) and e.value.exit_code == 2 and "\n" not in msg
    if old == "MODEL.BACKBONE":
        assert msg == "the command line: MODEL.BACKBONE is a section now: use MODEL.BACKBONE.NAME"
    else:
        assert msg == "the command line: %s moved to %s" % (old, new)
    section, leaf = new.split(".")[1:]
    raw, value = _other_value(get_defaults().MODEL[section][leaf])
    cfg = load_config(None, [new, raw])
    got = cfg.MODEL[section][leaf]
    assert (list(got) if isinstance(got, (list, tuple)) else got) == value


def test_old_keys_in_yaml_name_file_and_new_key(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("MODEL:\n  NAME: lotr\n  ENC_LAYERS: 3\n")
    with pytest.raises(ConfigError) as e:
        load_config(str(p))
    assert str(e.value) == "%s: MODEL.ENC_LAYERS moved to MODEL.TRANSFORMER.ENC_LAYERS" % p
    p.write_text("MODEL:\n  BACKBONE: resnet50_v1\n")
    with pytest.raises(UsageError) as e:
        load_config(str(p))
    assert str(e.value) == "%s: MODEL.BACKBONE is a section now: use MODEL.BACKBONE.NAME" % p
    p.write_text("MODEL:\n  UPSAMPLER_FILTERS: 64\n")
    with pytest.raises(ConfigError, match=r"MODEL\.UPSAMPLER_FILTERS moved to MODEL\.HEATMAP\.FILTERS$"):
        load_config(str(p))
    p.write_text("MODEL:\n  BACKBONE:\n    NAME: resnet50_v1\n  TRANSFORMER:\n    ENC_LAYERS: 3\n")
    cfg = load_config(str(p))
    assert cfg.MODEL.BACKBONE.NAME == "resnet50_v1" and cfg.MODEL.TRANSFORMER.ENC_LAYERS == 3


def test_unknown_key_in_a_section_lists_the_section(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("MODEL:\n  TRANSFORMER:\n    ENC_LAYER: 3\n")
    with pytest.raises(ConfigError) as e:
        load_config(str(p))
    assert "MODEL.TRANSFORMER.ENC_LAYER" in str(e.value) and "MODEL.TRANSFORMER.ENC_LAYERS" in str(e.value)
    with pytest.raises(ConfigError) as e:
        load_config(None, ["MODEL.HEAD.HIDDEN_SIZES", "[1]"])
    assert "MODEL.HEAD.HIDDEN" in str(e.value) and "MODEL.NECK.HIDDEN_DIM" in str(e.value)
    p.write_text("MODEL:\n  TRANSFORMER: 3\n")  # a section given a value
    with pytest.raises(ConfigError, match="MODEL.TRANSFORMER .*is a section"):
        load_config(str(p))


def test_an_old_run_config_is_a_one_line_error_naming_the_new_key():
    with pytest.raises(ConfigError, match="moved to|is a section now") as e:
        load_config(LEGACY_RUN)  # a run's config.yaml of the flat layout: experiments must use the new keys
    assert "\n" not in str(e.value) and LEGACY_RUN in str(e.value)


@pytest.mark.parametrize("key,value,item", [("TRAIN.LR_STEPS", '["a"]', "item 0 is 'a' (str)"),
                                            ("TRAIN.LR_STEPS", "[10, True]", "item 1 is True (bool)"),
                                            ("MODEL.HEAD.HIDDEN", "[512, 0.5]", "item 1 is 0.5 (float)"),
                                            ("DATA.MEAN", '[0.5, "x", 0.5]', "item 1 is 'x' (str)"),
                                            ("MODEL.INIT_FROM_PREFIXES", "[1]", "item 0 is 1 (int)")])
def test_list_items_of_the_wrong_type_are_refused_at_load(tmp_path, key, value, item):
    with pytest.raises(ConfigError, match=re.escape(item)):
        load_config(None, [key, value])
    section, name = key.rsplit(".", 1)
    text = "".join("%s%s:\n" % ("  " * i, part) for i, part in enumerate(section.split("."))) + \
        "%s%s: %s\n" % ("  " * len(section.split(".")), name, value)
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match=re.escape("%s in %s" % (key, tmp_path / "c.yaml"))):
        load_config(str(tmp_path / "c.yaml"))


def test_fractional_lr_steps_are_mid_epoch_steps():
    from lotr_gluon.trainer import lr_at
    cfg = load_config(None, ["TRAIN.LR_STEPS", "[1.5]"])
    assert cfg.TRAIN.LR_STEPS == [1.5]
    assert lr_at(1.49, 1.0, cfg.TRAIN.LR_STEPS, 0.1) == 1.0
    assert lr_at(1.5, 1.0, cfg.TRAIN.LR_STEPS, 0.1) == pytest.approx(0.1)
    assert load_config(None, ["DATA.MEAN", "[0, 0.5, 1]"]).DATA.MEAN == [0, 0.5, 1]  # ints are numbers too


def test_datatang_alignment_noise_is_the_measured_one():
    """The Datatang configs' AUG.ALIGN_NOISE_STD is what tools/detector_noise.py measured on the train faces."""
    import glob
    import json
    from lotr_gluon.config import load_config
    rec = json.load(open(os.path.join(ROOT, "results", "datatang", "detector_noise_train.json")))
    used = 0
    for path in sorted(glob.glob(os.path.join(ROOT, "experiments", "datatang", "*.yaml"))):
        cfg = load_config(path)
        if any(cfg.AUG.ALIGN_NOISE_STD):
            used += 1
            assert list(cfg.AUG.ALIGN_NOISE_STD) == rec["align_noise_std"], path
            assert cfg.DATA.ALIGN == "detector" and cfg.AUG.ROTATION == 0.0, path
    assert used >= 5
