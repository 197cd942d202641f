"""The flat ``MODEL`` section of configurations of the earlier layout, and its mapping to the nested
sections (``MODEL.BACKBONE``, ``NECK``, ``TRANSFORMER``, ``HEAD``, ``AUX``, ``HEATMAP``).

A YAML or a command-line override in the old form is an error naming the new key
(:func:`lotr_gluon.config.load_config`); :func:`migrate_legacy` rewrites an old configuration dict (the
``config.yaml`` of a run folder trained before the change) in the new layout, for internal use.
"""
import copy

__all__ = ["LEGACY_KEYS", "migrate_legacy", "is_legacy", "legacy_message"]

_TRANSFORMER = ("NUM_HEADS", "ENC_LAYERS", "DEC_LAYERS", "FFN_HIDDEN", "DROPOUT", "DECODER_INPUT", "POS_IN_VALUES",
                "NORM_BEFORE", "ATTN_OUT_INIT", "FINAL_NORM", "QUERY_INIT_STD", "POS_INIT_STD", "POS_INIT",
                "QUERY_INIT")

#: old flat key -> new key (dotted, from the root); keys not listed kept their place
LEGACY_KEYS = {
    "MODEL.BACKBONE": "MODEL.BACKBONE.NAME",
    "MODEL.PRETRAINED": "MODEL.BACKBONE.PRETRAINED",
    "MODEL.PRETRAINED_FILE": "MODEL.BACKBONE.PRETRAINED_FILE",
    "MODEL.PRETRAINED_ROOT": "MODEL.BACKBONE.PRETRAINED_ROOT",
    "MODEL.HRNET_STRIDE": "MODEL.BACKBONE.HRNET_STRIDE",
    "MODEL.HIDDEN_DIM": "MODEL.NECK.HIDDEN_DIM",
    "MODEL.UPSAMPLE": "MODEL.NECK.UPSAMPLE",
    "MODEL.UPSAMPLE_REDUCE": "MODEL.NECK.UPSAMPLE_REDUCE",
    "MODEL.UPSAMPLE_FILTERS": "MODEL.NECK.UPSAMPLE_FILTERS",
    "MODEL.UPSAMPLE_KERNEL": "MODEL.NECK.UPSAMPLE_KERNEL",
    "MODEL.UPSAMPLE_BATCHNORM": "MODEL.NECK.UPSAMPLE_BATCHNORM",
    **{"MODEL." + k: "MODEL.TRANSFORMER." + k for k in _TRANSFORMER},
    "MODEL.HEAD_HIDDEN": "MODEL.HEAD.HIDDEN",
    "MODEL.COORD_UNITS": "MODEL.HEAD.COORD_UNITS",
    "MODEL.ANCHORS": "MODEL.HEAD.ANCHORS",
    "MODEL.HEAD_LAST_INIT_STD": "MODEL.HEAD.LAST_INIT_STD",
    "MODEL.HEAD_PER_LANDMARK_OUT": "MODEL.HEAD.PER_LANDMARK_OUT",
    "MODEL.AUX_LOSS": "MODEL.AUX.DECODER_LOSS",
    "MODEL.AUX_HEATMAP_WEIGHT": "MODEL.AUX.HEATMAP_WEIGHT",
    "MODEL.UPSAMPLER": "MODEL.HEATMAP.UPSAMPLER",
    "MODEL.UPSAMPLER_FILTERS": "MODEL.HEATMAP.FILTERS",
    "MODEL.UPSAMPLER_REDUCE": "MODEL.HEATMAP.REDUCE",
    "MODEL.UPSAMPLER_S_BLOCK": "MODEL.HEATMAP.S_BLOCK",
    "MODEL.UPSAMPLER_D_KERNEL": "MODEL.HEATMAP.D_KERNEL",
    "MODEL.UPSAMPLER_S_KERNEL": "MODEL.HEATMAP.S_KERNEL",
    "MODEL.UPSAMPLER_S_CONV_MULT": "MODEL.HEATMAP.S_CONV_MULT",
    "MODEL.HEATMAP_CONV": "MODEL.HEATMAP.CONV",
    "MODEL.HEATMAP_KERNEL": "MODEL.HEATMAP.KERNEL",
    "MODEL.HEATMAP_PRE_KERNEL": "MODEL.HEATMAP.PRE_KERNEL",
    "MODEL.HEATMAP_FINAL_S_KERNEL": "MODEL.HEATMAP.FINAL_S_KERNEL",
    "MODEL.HEATMAP_SIGMA": "MODEL.HEATMAP.SIGMA",
    "MODEL.HEATMAP_DECODER": "MODEL.HEATMAP.DECODER",
    "MODEL.VECTOR_BANDWIDTHS": "MODEL.HEATMAP.VECTOR_BANDWIDTHS",
    "MODEL.VECTOR_THETA": "MODEL.HEATMAP.VECTOR_THETA",
    "MODEL.VECTOR_DECODER": "MODEL.HEATMAP.VECTOR_DECODER",
}


def legacy_message(key, value=None):
    """The one-line hint for an old flat ``key`` (dotted from the root), or None when ``key`` is not old.

    ``MODEL.BACKBONE`` with a non-mapping ``value`` (the old backbone name) is an old key; as a mapping it
    is the new section."""
    if key == "MODEL.BACKBONE":
        if isinstance(value, dict):
            return None
        return "MODEL.BACKBONE is a section now: use MODEL.BACKBONE.NAME"
    new = LEGACY_KEYS.get(key)
    return None if new is None else "%s moved to %s" % (key, new)


def is_legacy(d):
    """True when the config dict ``d`` (nested, as read from YAML) has a key of the old flat ``MODEL``."""
    model = (d or {}).get("MODEL") or {}
    return isinstance(model, dict) and any(legacy_message("MODEL." + k, v) for k, v in model.items())


def migrate_legacy(d):
    """An old configuration dict rewritten in the nested ``MODEL`` layout.

    Parameters
    ----------
    d : dict
        A nested config dict (``yaml.safe_load`` of a run folder's ``config.yaml``, or a CfgNode) whose
        ``MODEL`` section may use the old flat keys (:data:`LEGACY_KEYS`); keys already in the new layout and
        keys outside ``MODEL`` are kept. ``d`` is not modified.

    Returns
    -------
    dict
        A deep copy of ``d`` with each old key moved to its new place; the values are unchanged. Keys the
        old file lacks stay absent (merge the result over :func:`lotr_gluon.config.get_defaults`).

    Raises
    ------
    lotr_gluon.config.ConfigError
        An old key and its new key are both present with different values.
    """
    out = copy.deepcopy(_plain(d))
    model = out.get("MODEL")
    if not isinstance(model, dict):
        return out
    for k in sorted(model, key=lambda k: k != "BACKBONE"):  # the old backbone name before its new section
        if not legacy_message("MODEL." + k, model[k]):
            continue
        value = model.pop(k)
        section, leaf = LEGACY_KEYS["MODEL." + k].split(".")[1:]
        node = model.setdefault(section, {})
        if leaf in node and node[leaf] != value:
            from . import ConfigError
            raise ConfigError("config has both MODEL.%s (%r) and MODEL.%s.%s (%r)" % (k, value, section, leaf,
                                                                                    node[leaf]))
        node[leaf] = value
    return out


def _plain(d):
    """Nested dicts (a CfgNode becomes a plain dict)."""
    if isinstance(d, dict):
        return {k: _plain(v) for k, v in d.items()}
    return d
