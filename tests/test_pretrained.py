"""ImageNet weights offline: torchvision's legacy .pth read without PyTorch, mapped onto gluoncv MobileNetV2-1.0
(the same values as ../shared's converted copy), classifying the probe photos as torchvision does; configs find
the file in the default folders and fail with one line naming it when it is missing."""
import os
import pickle
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from gluoncv.model_zoo import get_model as gcv_get_model

from lotr_gluon import pretrained as pt
from lotr_gluon.blocks.backbones import get_backbone
from lotr_gluon.data.formats.core import read_image
from lotr_gluon.errors import ModelError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PTH = "torchvision_mobilenet_v2-b0353104.pth"
PARAMS = "mobilenetv2_1.0_imagenet.params"


@pytest.fixture(scope="module")
def converted(models_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrained") / PARAMS
    net, bias = pt.convert_file(str(models_dir / PTH), str(out))
    return net, bias, out


def test_reads_torch_legacy_state_dict(models_dir):
    state = pt.read_torch_legacy(str(models_dir / PTH))
    assert len(state) == 314  # 262 tensors + 52 num_batches_tracked counters (models/README.md)
    assert state["features.0.0.weight"].shape == (32, 3, 3, 3) and state["features.0.0.weight"].dtype == np.float32
    assert state["classifier.1.weight"].shape == (1000, 1280)
    assert state["features.0.1.num_batches_tracked"].dtype == np.int64
    assert len(pt.read_torchvision_mobilenet_v2(str(models_dir / PTH))) == 262


def test_converted_equals_shared_params(converted, models_dir):
    _, bias, out = converted
    ours, ref = mx.nd.load(str(out)), mx.nd.load(str(models_dir / PARAMS))
    assert sorted(ours) == sorted(ref) and len(ours) == 261
    for k in ref:
        np.testing.assert_array_equal(ours[k].asnumpy(), ref[k].asnumpy(), err_msg=k)
    assert bias.shape == (1000,)


def test_converted_classifies_probe_photos_as_torchvision(converted, shared_dir):
    net, bias, _ = converted
    folder = shared_dir / "data" / "imagenet_probe"
    labels = [line.strip() for line in open(folder / "imagenet_labels.txt")][1:]
    top = {name: [labels[i] for i, _ in pt.classify(net, bias, read_image(folder / name), k=2)]
           for name in ("cat.png", "bird.png", "parrot.jpg", "grace_hopper.png")}
    assert top["cat.png"][0] == "Egyptian cat"
    assert top["bird.png"][0] == "chickadee"
    assert top["parrot.jpg"][0] == "macaw"
    assert {"bow tie, bow-tie, bowtie", "military uniform"} & set(top["grace_hopper.png"])


def test_mapping_checks_shapes(models_dir):
    state = pt.read_torchvision_mobilenet_v2(str(models_dir / PTH))
    net = gcv_get_model("mobilenetv2_0.5", pretrained=False)
    net.initialize()
    net(mx.nd.zeros((1, 3, 64, 64)))
    with pytest.raises(ModelError, match="cannot map features.0.0.weight"):
        pt.torchvision_to_gluoncv(state, net)


def _legacy_file(path, obj, extra=b""):
    with open(path, "wb") as f:
        for head in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(head, f, protocol=2)
        f.write(obj)
        f.write(extra)


def test_refuses_foreign_globals_and_truncated_files(tmp_path, models_dir):
    bad = tmp_path / "evil.pth"
    _legacy_file(bad, b"cos\nsystem\n(S'echo hi'\ntR.")  # a pickle calling os.system
    with pytest.raises(ModelError, match="refusing global os.system"):
        pt.read_torch_legacy(str(bad))
    cut = tmp_path / "cut.pth"
    cut.write_bytes((models_dir / PTH).read_bytes()[:5_000_000])
    with pytest.raises(ModelError, match="cut.pth: (truncated|storage)"):
        pt.read_torch_legacy(str(cut))
    with pytest.raises(ModelError, match="missing.pth: file not found"):
        pt.read_torch_legacy(str(tmp_path / "missing.pth"))


def test_default_file_found_in_default_then_shared_folder(tmp_path):
    assert pt.default_pretrained_file("mobilenetv2_1.0", str(tmp_path)) is None
    shared = tmp_path / "repo" / ".." / "shared" / "models"
    os.makedirs(shared)
    (shared / PARAMS).write_bytes(b"x")
    repo = str(tmp_path / "repo")
    assert pt.default_pretrained_file("mobilenetv2_1.0", repo) == os.path.normpath(str(shared / PARAMS))
    os.makedirs(os.path.join(repo, "data", "pretrained"))
    own = os.path.join(repo, "data", "pretrained", PARAMS)
    open(own, "wb").close()
    assert pt.default_pretrained_file("mobilenetv2_1.0", repo) == own
    assert pt.default_pretrained_file("resnet50_v1", repo) is None
    assert pt.resolve_pretrained_file("mobilenetv2_1.0", False, "", repo) == ""


def test_pretrained_backbone_loads_the_default_file(models_dir):
    trunk, _, _, loaded = get_backbone("mobilenetv2_1.0", pretrained=True)
    assert loaded and trunk.pretrained_loaded
    ref = mx.nd.load(str(models_dir / PARAMS))["features.0.weight"].asnumpy()
    np.testing.assert_array_equal(trunk[0].weight.data().asnumpy(), ref)


def test_missing_weights_are_one_line_errors(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        if kwargs.get("pretrained"):
            raise OSError("Failed to download\nretries exceeded")
        return gcv_get_model(*args, **kwargs)

    monkeypatch.setattr(pt, "default_pretrained_file", lambda *a, **k: None)
    monkeypatch.setattr("gluoncv.model_zoo.get_model", offline)
    with pytest.raises(pt.PretrainedUnavailable) as e:
        get_backbone("mobilenetv2_1.0", pretrained=True)
    msg = str(e.value)
    assert "\n" not in msg and "data/pretrained/mobilenetv2_1.0_imagenet.params" in msg and "make pretrained" in msg
    with pytest.raises(pt.PretrainedUnavailable, match="resnet18_v1: no local copy.*PRETRAINED False"):
        get_backbone("resnet18_v1", pretrained=True)
    with pytest.raises(FileNotFoundError, match="nope.params: ImageNet weights not found"):
        get_backbone("mobilenetv2_1.0", pretrained_file=str(tmp_path / "nope.params"))
    wrong = tmp_path / "wrong.params"
    net = gcv_get_model("mobilenetv2_0.25", pretrained=False)
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.save_parameters(str(wrong))
    with pytest.raises(ModelError, match="wrong.params: not the ImageNet parameters of gluoncv mobilenetv2_1.0"):
        get_backbone("mobilenetv2_1.0", pretrained_file=str(wrong))


def test_train_cli_names_missing_weights_file(tmp_path, datatang_root):
    missing = tmp_path / "absent.params"
    r = subprocess.run([sys.executable, "tools/train.py", "--cfg", "experiments/datatang/lotr_m.yaml", "--out",
                        str(tmp_path / "run"), "--no-progress", "MODEL.BACKBONE.PRETRAINED_FILE", str(missing)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 4, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "absent.params: ImageNet weights not found" in last
    assert not os.path.exists(tmp_path / "run" / "config.yaml")  # nothing written before the model builds
