"""Configuration: yacs defaults (:mod:`.defaults`), YAML experiments and command-line overrides."""
import os

from yacs.config import CfgNode as CN

from ..errors import UsageError

from .defaults import get_defaults

__all__ = ["get_defaults", "load_config", "ConfigError", "run_dir", "flatten_keys"]


class ConfigError(UsageError, KeyError):
    """An unknown or malformed configuration key. ``str(err)`` lists the valid keys."""

    def __str__(self):
        return self.args[0] if self.args else ""


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
        An unknown key (the message lists the valid keys at that level) or an odd-length ``opts``.
    FileNotFoundError
        ``cfg_file`` does not exist.
    """
    cfg = get_defaults()
    if cfg_file:
        if not os.path.isfile(cfg_file):
            raise FileNotFoundError("config file not found: %s" % cfg_file)
        with open(cfg_file) as f:
            other = CN.load_cfg(f)
        _check_keys(cfg, other, "", cfg_file)
        cfg.merge_from_other_cfg(other)
    if opts:
        if len(opts) % 2:
            raise ConfigError("overrides must be KEY VALUE pairs, got an odd number: %r" % (opts,))
        valid = set(flatten_keys(cfg))
        for key in opts[0::2]:
            if key not in valid:
                raise ConfigError("unknown config key %r on the command line; valid keys: %s"
                                  % (key, ", ".join(sorted(valid))))
        cfg.merge_from_list(list(opts))
    cfg.CFG_NAME = os.path.splitext(os.path.basename(cfg_file))[0] if cfg_file else "default"
    if freeze:
        cfg.freeze()
    return cfg


def run_dir(cfg):
    """``OUTPUT_DIR/<DATA.NAME>/<config stem>``: where a run keeps its frozen config, logs and checkpoints."""
    return os.path.join(cfg.OUTPUT_DIR, cfg.DATA.NAME, cfg.CFG_NAME)
