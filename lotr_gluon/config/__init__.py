"""Configuration: yacs defaults (:mod:`.defaults`), YAML experiments and command-line overrides."""
import os

from yacs.config import CfgNode as CN

from ..errors import UsageError

from .defaults import get_defaults
from .legacy import LEGACY_KEYS, legacy_message

__all__ = ["get_defaults", "load_config", "ConfigError", "ConfigFileError", "run_dir", "flatten_keys",
           "LEGACY_KEYS"]


class ConfigError(UsageError, KeyError):
    """An unknown or malformed configuration key, a value of the wrong type, or a YAML syntax error.
    ``str(err)`` is one line: the file (and line) or "the command line", the key and the cause."""


class ConfigFileError(UsageError, FileNotFoundError):
    """The experiment YAML does not exist."""


def _type_name(v):
    return {bool: "bool (True/False)", int: "int", float: "float", str: "str", list: "list", tuple: "list"}.get(
        type(v), type(v).__name__)


def _lookup(cfg, key):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _type_error(key, expected, value, source):
    """ConfigError for a value of ``key`` whose type differs from the default's (``expected``)."""
    hint = ""
    if isinstance(expected, float) and isinstance(value, int) and not isinstance(value, bool):
        hint = " (write %r)" % float(value)
    elif isinstance(expected, (list, tuple)) and not isinstance(value, (list, tuple)):
        hint = " (write a list, e.g. %s)" % (list(expected) or "[1, 2]")
    elif isinstance(expected, str) and not isinstance(value, str):
        hint = " (quote it)"
    return ConfigError("config key %s %s expects %s (like %r), got %r (%s)%s"
                       % (key, source, _type_name(expected), expected, value, type(value).__name__, hint))


#: list keys whose items are not of the defaults' item type: LR_STEPS are epochs, whole or fractional (the
#: learning rate is set per step, so a step at 1.5 takes effect half-way through epoch 2); DEVICES are GPU ids
LIST_ITEM_TYPES = {"TRAIN.LR_STEPS": (int, float), "DEVICES": (int,), "DATA.SPLIT_LABELS": (str,)}


def _item_types(key, expected):
    """The types a list ``key`` accepts for its items (from its default), or None when not known."""
    if key in LIST_ITEM_TYPES:
        return LIST_ITEM_TYPES[key]
    kinds = {type(v) for v in expected}
    if kinds == {int}:
        return (int,)
    if kinds and kinds <= {int, float}:
        return (int, float)
    if kinds == {str}:
        return (str,)
    return None


def _check_items(key, value, expected, source):
    """ConfigError for the first item of the list ``value`` whose type ``key`` does not accept."""
    types = _item_types(key, expected)
    if types is None:
        return
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, types):
            what = {(int,): "whole numbers", (int, float): "numbers", (str,): "strings"}[types]
            raise ConfigError("config key %s %s expects a list of %s (like %r), got %r: item %d is %r (%s)"
                              % (key, source, what, list(expected) or [0], list(value), i, item,
                                 type(item).__name__))


def _same_type(value, expected):
    """yacs' rule: the same type, or list <-> tuple (no int -> float)."""
    return type(value) is type(expected) or (isinstance(value, (list, tuple)) and isinstance(expected, (list, tuple)))


def _check_types(cfg, other, path, source):
    """Raise ConfigError for the first value of ``other`` whose type is not the default's (yacs' own check
    says only 'Type mismatch'), naming the key and the expected type."""
    for k, v in other.items():
        full = path + k
        cur = cfg[k]
        if isinstance(cur, CN):
            if isinstance(v, dict):
                _check_types(cur, v, full + ".", source)
                continue
            raise ConfigError("config key %s %s is a section (%s), got the value %r"
                              % (full, source, ", ".join(sorted(cur.keys())), v))
        if v is not None and cur is not None and not _same_type(v, cur):
            raise _type_error(full, cur, v, source)
        if isinstance(v, (list, tuple)):
            _check_items(full, v, cur, source)


def flatten_keys(cfg, prefix=""):
    """All leaf keys of a CfgNode as dotted names, sorted."""
    keys = []
    for k, v in cfg.items():
        name = prefix + k
        if isinstance(v, CN):
            keys.extend(flatten_keys(v, name + "."))
        else:
            keys.append(name)
    return sorted(keys)


def _check_keys(cfg, other, path, source):
    valid = get_defaults()
    for k, v in other.items():
        full = path + k
        moved = legacy_message(full, v)
        if moved:
            raise ConfigError("%s: %s" % (source, moved))
        if k not in cfg:
            parent = valid
            for part in path.rstrip(".").split(".") if path else []:
                parent = parent[part]
            raise ConfigError("unknown config key %r in %s; valid keys here: %s"
                              % (full, source, ", ".join(path + x for x in sorted(parent.keys()))))
        if isinstance(v, dict) and isinstance(cfg[k], CN):
            _check_keys(cfg[k], v, full + ".", source)


def load_config(cfg_file=None, opts=None, freeze=True):
    """Defaults <- YAML file <- ``KEY VALUE`` list.

    Parameters
    ----------
    cfg_file : str or None
        YAML experiment file.
    opts : list of str
        Alternating dotted keys and values, e.g. ``['TRAIN.EPOCHS', '5', 'DATA.ROOT', '/data/jd']``.

    Returns
    -------
    CfgNode
        Frozen unless ``freeze=False``. ``cfg.CFG_NAME`` holds the YAML stem (``'default'`` without file).

    Raises
    ------
    ConfigError
        A key of the flat ``MODEL`` section of the earlier layout (the message names the file or "the command
        line" and the new key, e.g. ``MODEL.ENC_LAYERS moved to MODEL.TRANSFORMER.ENC_LAYERS``), an unknown key
        (the message lists the valid keys at that level), a value whose type differs from the default's (the message names the key and the
        expected type), a YAML syntax error (file and line), or an odd-length ``opts``.
    ConfigFileError
        ``cfg_file`` does not exist (also a ``FileNotFoundError``).
    """
    cfg = get_defaults()
    if cfg_file:
        if not os.path.isfile(cfg_file):
            raise ConfigFileError("config file not found: %s" % cfg_file)
        other = _read_yaml(cfg_file)
        _check_keys(cfg, other, "", cfg_file)
        _check_types(cfg, other, "", "in %s" % cfg_file)
        cfg.merge_from_other_cfg(other)
    if opts:
        if len(opts) % 2:
            raise ConfigError("overrides must be KEY VALUE pairs, got an odd number: %r" % (opts,))
        valid = set(flatten_keys(cfg))
        for key in opts[0::2]:
            moved = legacy_message(key)
            if moved:
                raise ConfigError("the command line: %s" % moved)
            if key not in valid:
                raise ConfigError("unknown config key %r on the command line; valid keys: %s"
                                  % (key, ", ".join(sorted(valid))))
        for key, raw in zip(opts[0::2], opts[1::2]):
            value = CN._decode_cfg_value(raw)
            expected = _lookup(cfg, key)
            if value is not None and expected is not None and not _same_type(value, expected):
                raise _type_error(key, expected, value, "on the command line")
            if isinstance(value, (list, tuple)):
                _check_items(key, value, expected, "on the command line")
        cfg.merge_from_list(list(opts))
    cfg.CFG_NAME = os.path.splitext(os.path.basename(cfg_file))[0] if cfg_file else "default"
    if freeze:
        cfg.freeze()
    return cfg


def _read_yaml(cfg_file):
    """The YAML experiment as a CfgNode; a syntax error or a non-mapping is a one-line ConfigError naming the
    file and line."""
    import yaml
    try:
        with open(cfg_file) as f:
            text = f.read()
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = "%s line %d column %d" % (cfg_file, mark.line + 1, mark.column + 1) if mark else cfg_file
        start = getattr(e, "context_mark", None)
        if mark and start and start.line != mark.line:
            where += " (in the construct that starts at line %d)" % (start.line + 1)
        what = " ".join(str(x) for x in (getattr(e, "context", None), getattr(e, "problem", None)) if x) or str(e)
        raise ConfigError("YAML syntax error in %s: %s" % (where, " ".join(what.split()))) from None
    except UnicodeDecodeError as e:
        raise ConfigError("config file %s is not UTF-8 text (%s)" % (cfg_file, e.reason)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("config file %s must be a YAML mapping of config keys (DATA:, MODEL:, ...), got a %s"
                          % (cfg_file, type(data).__name__))
    return CN.load_cfg(text) if data else CN()


def run_dir(cfg):
    """``OUTPUT_DIR/<DATA.NAME>/<config stem>``: where a run keeps its frozen config, logs and checkpoints."""
    return os.path.join(cfg.OUTPUT_DIR, cfg.DATA.NAME, cfg.CFG_NAME)
