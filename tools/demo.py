#!/usr/bin/env python
"""Face landmarks on photos or a video:
``python tools/demo.py --cfg FILE (--params FILE | --random-init) (--image PATH | --dir DIR | --video PATH)
[--out OUT.png|DIR|OUT.mp4] [--json OUT.json] [--detector auto|yunet|insightface|opencv] [--det-model PATH]
[--no-download] [--flip] [--no-refine] [--max-faces K] [KEY VALUE ...]``.

Faces are found by a detector (``auto``: OpenCV Zoo's YuNet when its model file is found: ``--det-model``,
``$LOTR_YUNET_MODEL``, the user cache ``~/.cache/lotr_gluon/models/``, ``../shared/models/``, or fetched once
into the cache when online; else insightface's RetinaFace/SCRFD when its model file is on the machine; else
OpenCV's Haar cascade; see ``lotr_gluon.detectors``), aligned on the detector's five points, and the model's
landmarks are drawn on the photo: landmarks green, the detector's box blue with its name and score, the five
points the crop was aligned with red.

Outputs
  --image: a PNG (default ``output/demo/<stem>_landmarks.png``);
  --dir:   one PNG per image in the ``--out`` folder (default ``output/demo/<dir name>``);
  --video: an annotated video (mp4v; default ``output/demo/<stem>_landmarks.mp4``).
  --json:  per image (per frame for a video), per face: landmarks, five_points, box, score, detector (plus
           align_points and alignment), pixels of the original image.
A photo without a face is reported and gives an empty face list (exit status 0). Errors are one line
``error: ...`` with the exit status of :mod:`lotr_gluon.errors` (2 usage/config, 3 unreadable image or video,
4 weights, 7 output path, 8 detector); ``--dir``: the bad files are listed in the JSON with their error, exit
status 3.
``--random-init`` runs an untrained model (to try the pipeline): its landmarks are meaningless.
"""
import json
import os
import sys
import warnings

import cv2
import numpy as np

from lotr_gluon.cli import ArgumentParser, ensure_output_dir, ensure_output_file, load_cli_config, run_main
from lotr_gluon.data.formats import IMAGE_EXTENSIONS, ImageReadError, read_image
from lotr_gluon.detectors import DETECTORS
from lotr_gluon.errors import OutputError, UsageError
from lotr_gluon.predictor import Predictor
from lotr_gluon.vis import draw_landmarks

BOX_COLOR = (0, 128, 255)  # RGB
ALIGN_COLOR = (255, 0, 0)
LANDMARK_COLOR = (0, 255, 0)


def face_json(res):
    """JSON-ready dict of one :meth:`Predictor.predict` result (numbers rounded to 1/1000 px)."""
    def r(a):
        return np.round(np.asarray(a, np.float64), 3).tolist()
    return dict(landmarks=r(res["landmarks"]), five_points=r(res["five_points"]), box=r(res["box"]),
                score=round(float(res["score"]), 5), detector=res["detector"],
                align_points=r(res["align_points"]), alignment=res["alignment"])


def draw(image_rgb, results):
    """Copy of the image with boxes, alignment points and landmarks of every face."""
    out = np.ascontiguousarray(image_rgb).copy()
    h, w = out.shape[:2]
    s = max(h, w)
    thick = max(1, int(round(s / 500)))
    for res in results:
        x0, y0, x1, y1 = [int(round(v)) for v in res["box"]]
        cv2.rectangle(out, (x0, y0), (x1, y1), BOX_COLOR, thick, lineType=cv2.LINE_AA)
        label = "%s %.2f" % (res["detector"], res["score"])
        font = 0.35 * thick
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        tx = int(np.clip(x0, 0, max(0, w - tw)))
        ty = y0 - 3 * thick if y0 - 3 * thick - th >= 0 else y1 + th + 3 * thick
        cv2.putText(out, label, (tx, int(np.clip(ty, th, h - 1))), cv2.FONT_HERSHEY_SIMPLEX, font, BOX_COLOR,
                    max(1, thick - 1), cv2.LINE_AA)
    for res in results:
        # landmark radius from the face size, so that the points of small faces do not merge
        face = max(1.0, float(np.ptp(res["landmarks"][:, 0])))
        radius = int(np.clip(face / 80.0, 1, 3 * thick))
        out = draw_landmarks(out, res["align_points"], ALIGN_COLOR, radius=radius + 1, thickness=thick)
        out = draw_landmarks(out, res["landmarks"], LANDMARK_COLOR, radius=radius)
    return out


def write_png(path, image_rgb):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)):
        raise OutputError("cannot write the image %s (cv2.imwrite failed)" % path)


def list_images(folder):
    exts = {e.lower() for e in IMAGE_EXTENSIONS}
    return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                  if os.path.splitext(f)[1].lower() in exts and os.path.isfile(os.path.join(folder, f)))


def run_image(pred, path, out_png, args):
    """Predict one image; returns its JSON record (raises ImageReadError)."""
    img = read_image(path)
    results = pred.predict(img, refine=not args.no_refine, flip=args.flip, max_faces=args.max_faces)
    if out_png:
        write_png(out_png, draw(img, results))
    if results:
        print("%s: %d face(s) (%s)%s" % (path, len(results), pred.detector_name,
                                         " -> %s" % out_png if out_png else ""))
    else:
        print("%s: no face found (detector %s)%s" % (path, pred.detector_name,
                                                     " -> %s" % out_png if out_png else ""))
    return dict(image=os.path.abspath(path), width=int(img.shape[1]), height=int(img.shape[0]),
                faces=[face_json(r) for r in results])


def run_video(pred, path, out_video, args):
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise ImageReadError(path, "cannot open video")
    fps = cap.get(cv2.CAP_PROP_FPS)
    fps = fps if fps and np.isfinite(fps) and fps > 0 else 25.0
    writer = None
    frames = []
    try:
        while args.max_frames <= 0 or len(frames) < args.max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            results = pred.predict(bgr, color="bgr", refine=not args.no_refine, flip=args.flip,
                                   max_faces=args.max_faces)
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if writer is None:
                os.makedirs(os.path.dirname(os.path.abspath(out_video)), exist_ok=True)
                writer = cv2.VideoWriter(out_video, cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                         (rgb.shape[1], rgb.shape[0]))
                if not writer.isOpened():
                    raise OutputError("cannot write the video %s (mp4v)" % out_video)
            writer.write(cv2.cvtColor(draw(rgb, results), cv2.COLOR_RGB2BGR))
            frames.append(dict(frame=len(frames), faces=[face_json(r) for r in results]))
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    if not frames:
        raise ImageReadError(path, "no frame could be read from the video")
    n = sum(len(f["faces"]) for f in frames)
    print("%s: %d frames, %d faces (%s) -> %s" % (path, len(frames), n, pred.detector_name, out_video))
    return dict(video=os.path.abspath(path), fps=float(fps), frames=frames)


def build_predictor(args):
    import mxnet as mx

    det_kw = {"download": not args.no_download}
    if args.det_model:
        # the file of the chosen detector; with auto a YuNet .onnx (checked first) or an insightface model
        det_kw["yunet_model" if args.detector in ("yunet", "auto") else "model"] = args.det_model
        if args.detector == "auto":
            det_kw["model"] = args.det_model
    opts = list(args.opts)
    if args.random_init:
        cfg = load_cli_config(args.cfg, opts)
        print("warning: --random-init: an untrained model, its landmarks are meaningless", file=sys.stderr)
        mx.random.seed(args.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Predictor.from_model(cfg, None, ctx=mx.cpu(), detector=args.detector, detector_kw=det_kw)
    load_cli_config(args.cfg, opts)  # config and model name checks before the weights are read
    return Predictor.from_config(args.cfg, args.params, opts=opts, detector=args.detector, detector_kw=det_kw)


def main(argv=None):
    """Exit status 0 (``--dir`` with unreadable files: 3); errors raise LotrError (see the module doc)."""
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("--cfg", required=True, help="experiment YAML the model was trained with")
    ap.add_argument("--params", help="trained weights (.params)")
    ap.add_argument("--random-init", action="store_true", help="untrained model (to try the pipeline)")
    ap.add_argument("--seed", type=int, default=0, help="seed of --random-init")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--image", help="one photo")
    src.add_argument("--dir", help="a folder of photos")
    src.add_argument("--video", help="a video file")
    ap.add_argument("--out", help="PNG (--image), folder (--dir) or video (--video) to write")
    ap.add_argument("--json", help="write the landmarks as JSON")
    ap.add_argument("--detector", default="auto", choices=DETECTORS,
                    help="auto (default): YuNet, else insightface, else OpenCV's Haar cascade")
    ap.add_argument("--det-model", help="detector model file: YuNet .onnx (--detector yunet or auto), or insightface "
                                        ".onnx / model pack name (--detector insightface)")
    ap.add_argument("--no-download", action="store_true", help="never download the YuNet model")
    ap.add_argument("--flip", action="store_true", help="flip test")
    ap.add_argument("--no-refine", action="store_true", help="box-only faces: do not re-align on the prediction")
    ap.add_argument("--max-faces", type=int, default=None, help="keep the K highest-scoring faces")
    ap.add_argument("--max-frames", type=int, default=0, help="--video: stop after this many frames (0 = all)")
    args = ap.parse_args(argv)  # KEY VALUE config overrides anywhere on the line -> args.opts
    if bool(args.params) == bool(args.random_init):
        ap.error("give exactly one of --params and --random-init")
    if args.dir and not os.path.isdir(args.dir):
        raise UsageError("not a folder: %s" % args.dir)
    if args.image:
        stem = os.path.splitext(os.path.basename(args.image))[0]
        out = ensure_output_file(args.out or os.path.join("output", "demo", "%s_landmarks.png" % stem), "output image")
    elif args.dir:
        out = ensure_output_dir(args.out or os.path.join("output", "demo", os.path.basename(os.path.normpath(args.dir))))
    else:
        stem = os.path.splitext(os.path.basename(args.video))[0]
        out = ensure_output_file(args.out or os.path.join("output", "demo", "%s_landmarks.mp4" % stem), "output video")
    if args.json:
        ensure_output_file(args.json, "JSON output")
    pred = build_predictor(args)

    record = dict(detector=pred.detector_name, cfg=os.path.abspath(args.cfg),
                  params=os.path.abspath(args.params) if args.params else "random-init", flip=args.flip,
                  refine=not args.no_refine, scheme=pred.scheme.name)
    status = 0
    if args.image:
        record["images"] = [run_image(pred, args.image, out, args)]  # ImageReadError: exit status 3
    elif args.dir:
        record["images"] = []
        for path in list_images(args.dir):
            stem = os.path.splitext(os.path.basename(path))[0]
            try:
                record["images"].append(run_image(pred, path, os.path.join(out, stem + ".png"), args))
            except ImageReadError as e:
                print("error: %s" % e, file=sys.stderr)
                record["images"].append(dict(image=os.path.abspath(path), error=str(e), faces=[]))
                status = ImageReadError.exit_code
        if not record["images"]:
            print("no images (%s) in %s" % (", ".join(IMAGE_EXTENSIONS), args.dir))
    else:
        record.update(run_video(pred, args.video, out, args))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(record, f)
        print("wrote %s" % args.json)
    return status


if __name__ == "__main__":
    sys.exit(run_main(main))
