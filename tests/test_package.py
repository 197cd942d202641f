"""The package's public face: the names the README promises import from ``lotr_gluon`` itself."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_public_names_import_from_the_package():
    import lotr_gluon
    from lotr_gluon import Predictor, Trainer, build_model, get_model, load_config
    from lotr_gluon.config import load_config as lc
    from lotr_gluon.model_zoo import build_model as bm, get_model as gm
    from lotr_gluon.predictor import Predictor as P
    from lotr_gluon.trainer import Trainer as T
    assert (Predictor, Trainer, build_model, get_model, load_config) == (P, T, bm, gm, lc)
    assert set(lotr_gluon.__all__) == {"Predictor", "Trainer", "build_model", "get_model", "load_config"}


def test_unknown_attribute_is_an_attribute_error():
    import lotr_gluon
    try:
        lotr_gluon.NoSuchThing
    except AttributeError as err:
        assert "NoSuchThing" in str(err)
    else:
        raise AssertionError("lotr_gluon.NoSuchThing did not raise")


def test_import_is_light_and_sets_threads_first():
    """``import lotr_gluon`` alone imports neither mxnet nor the model code (the exports are lazy)."""
    code = "import sys, lotr_gluon; print('mxnet' in sys.modules, 'lotr_gluon.predictor' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_readme_names_exist():
    """Every ``lotr_gluon.<Name>`` the README names as a package attribute resolves."""
    import lotr_gluon
    text = (ROOT / "README.md").read_text()
    names = set(re.findall(r"`lotr_gluon\.([A-Z][A-Za-z]+)`", text))
    assert "Predictor" in names
    for n in names:
        assert getattr(lotr_gluon, n) is not None, n
