"""Landmarks on any photo: face detection, five-point alignment, one batched forward pass, original pixels.

:class:`Predictor` wraps a trained model (Gluon, from a config and its ``.params``; or an exported symbol from
``tools/export.py``) with a face detector (:mod:`lotr_gluon.detectors`)::

    from lotr_gluon.predictor import Predictor
    p = Predictor.from_config("experiments/datatang/lotr_m.yaml", "output/datatang/lotr_m/model_best.params")
    for face in p.predict("photo.jpg"):
        face["landmarks"]   # (N, 2) in pixels of photo.jpg

Pipeline per image (as in training, :class:`lotr_gluon.data.dataset.AlignedFaceDataset`, and both papers):

1. **Detect** faces (or take the ``faces`` given, checked against the image: :class:`BadFaceError`): a box, a
   score and, with YuNet (the default when its model file is found, :mod:`lotr_gluon.detectors`) or insightface's
   RetinaFace/SCRFD, five points (eye centres, nose tip, mouth corners).
2. **Align**: the similarity transform that maps the five points onto the ArcFace template scaled to the crop
   (``arcface_template(S, DATA.TEMPLATE_SCALE)``), ``cv2.warpAffine`` (bilinear, black border) to an S x S crop.
   A detector with only a box (OpenCV's Haar cascade) gets five *initial* points placed in the box by the
   detector's ``box_template`` (where the five points lie, in box units: ``centre + t * (w, h)``; measured for
   the Haar cascade on the Datatang training faces, see :data:`lotr_gluon.detectors.HAAR_BOX_TEMPLATE`; other
   box-only faces use the ArcFace template stretched onto the box, :data:`~lotr_gluon.detectors.DEFAULT_BOX_TEMPLATE`).
3. **Predict** all crops of the image in one forward pass (with ``flip``: the crops and their mirrors in the same
   batch; the mirrored predictions are mirrored back with ``scheme.flip_permutation()`` and averaged).
4. **Refine** (box-only faces, ``refine=True``): the five points of the prediction (``scheme.five_points``) are
   mapped to the image, the face is re-aligned with them and predicted again, so that the final crop is
   aligned as in training (the papers align with a detector's five points). A re-alignment that would change
   the crop's scale by more than 2x or its rotation by more than 45 degrees (a collapsed or failed prediction,
   e.g. an untrained model) is skipped and the face keeps its box alignment (``alignment='box'``).
5. Map the crop points back to the original image with the inverse affine.
"""
import os

import numpy as np
import mxnet as mx

from .build import PostProcessor, build_scheme, check_params_file, deep_supervision, load_model, output_names
from .config import load_config
from .data.align import IMAGENET_MEAN, IMAGENET_STD, align_face, arcface_template, estimate_similarity, \
    five_points_from_landmarks, invert_affine, normalize_crops, transform_points
from .data.formats import read_image, to_rgb
from .data.schemes import LandmarkScheme, get_scheme
from .detection_cache import MATCH_IOU, landmark_box, match_face
from .detectors import DEFAULT_BOX_TEMPLATE, Face, five_points_from_box, get_detector
from .errors import DataError
from .export import load_symbol
from .metrics import evaluate as evaluate_metrics, nme_per_image

__all__ = ["Predictor", "BadFaceError", "check_face", "to_rgb", "evaluate_predictor"]


class BadFaceError(DataError, ValueError):
    """A face passed by the caller that does not fit the image (a box or five points outside it, or not finite)."""


def _as_face(f):
    """A :class:`Face` from a Face, a dict (box / five_points / score), a (5, 2) five-point or a (4,) box array."""
    if isinstance(f, Face):
        return f
    if isinstance(f, dict):
        box = f.get("box")
        pts = f.get("five_points")
        if box is None and pts is None:
            raise BadFaceError("a face dict needs 'box' and/or 'five_points', got keys %s" % sorted(f))
        if box is None:
            box = _points_box(pts)
        return Face(box=box, score=f.get("score", 1.0) if f.get("score") is not None else 1.0, five_points=pts)
    a = np.asarray(f, np.float64)
    if a.shape == (5, 2):
        return Face(box=_points_box(a), score=1.0, five_points=a)
    if a.shape == (4,):
        return Face(box=a, score=1.0, five_points=None)
    raise BadFaceError("a face is a Face, a dict, five points (5, 2) or a box (4,); got shape %s" % (a.shape,))


def _points_box(pts):
    p = np.asarray(pts, np.float64).reshape(-1, 2)
    return np.r_[p.min(0), p.max(0)]


def check_face(face, width, height, index=0):
    """Check a caller's face against the image it is used on.

    A face is accepted when its box is finite with ``x1 > x0`` and ``y1 > y0`` and its centre lies inside the
    image (``0 <= x < width``, ``0 <= y < height``; faces cut by the image border are fine), and its five points,
    when given, are finite with their centroid inside the image.

    Raises
    ------
    BadFaceError
        Otherwise; the message gives the face's index, its box or points and the image size (a box outside the
        image would give an all-black crop and landmarks far outside the photo).
    """
    b = np.asarray(face.box, np.float64)
    where = "face %d: box %s" % (index, np.round(b, 1).tolist())
    size = "the %d x %d image" % (width, height)
    if not np.isfinite(b).all() or b[2] <= b[0] or b[3] <= b[1]:
        raise BadFaceError("%s is not a box x0, y0, x1, y1 with x1 > x0 and y1 > y0" % where)
    cx, cy = (b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0
    if not (0 <= cx < width and 0 <= cy < height):
        raise BadFaceError("%s lies outside %s (its centre (%.1f, %.1f) is not in the image)" % (where, size, cx, cy))
    if face.five_points is not None:
        p = np.asarray(face.five_points, np.float64)
        c = p.mean(0) if np.isfinite(p).all() else None
        if c is None or not (0 <= c[0] < width and 0 <= c[1] < height):
            raise BadFaceError("face %d: five points %s lie outside %s" % (index, np.round(p, 1).tolist(), size))


class Predictor:
    """Face landmarks on whole photos with a trained model.

    Parameters
    ----------
    net : callable
        Maps an ``mx.nd`` (B, 3, S, S) batch of crops (normalised RGB, or raw 0-255 RGB with ``raw_input``) to
        the output that ``postprocess`` turns into landmarks: (B, N, 2) crop pixels, (L, B, N, 2) (deep
        supervision: the last is used), or heatmaps / vectors with a codec's post-processor.
    scheme : LandmarkScheme or str
        Landmark scheme of the model (flip permutation, five points).
    input_size : int
        Crop side S (config ``DATA.INPUT_SIZE``).
    template_scale : float
        Config ``DATA.TEMPLATE_SCALE`` of the training run: the crops must be aligned as in training.
    mean, std : 3 floats
        RGB normalisation (config ``DATA.MEAN`` / ``DATA.STD``); unused with ``raw_input``.
    raw_input : bool
        The net takes raw 0-255 RGB (a symbol exported with ``preprocess=True``).
    ctx : mx.Context
        Device of the input batch (default CPU).
    detector : str, detector object or None
        ``'auto'`` (YuNet, else insightface, else OpenCV's Haar cascade) | ``'yunet'`` | ``'insightface'`` |
        ``'opencv'`` (:func:`lotr_gluon.detectors.get_detector`), an object with ``detect(rgb) -> list of Face``
        and ``name``, or None (then :meth:`predict` needs ``faces``).
    detector_kw : dict, optional
        Keywords for :func:`~lotr_gluon.detectors.get_detector` (e.g. ``yunet_model``, ``model``, ``det_size``).
    flip : bool
        Default of :meth:`predict`'s flip test.
    postprocess : lotr_gluon.build.PostProcessor, optional
        Network output -> (B, N, 2) crop pixels and the flip averaging (:func:`lotr_gluon.build.load_model`
        gives the model's; for an exported heatmap model ``PostProcessor(S, scheme.flip_permutation(), codec)``
        with its codec). Default: coordinate regression (the output is crop pixels).
    box_template : array (5, 2), optional
        Five points in box units for box-only faces; default the detector's ``box_template`` or
        :data:`~lotr_gluon.detectors.DEFAULT_BOX_TEMPLATE`.
    """

    def __init__(self, net, scheme, input_size, template_scale=1.0, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 raw_input=False, ctx=None, detector="auto", detector_kw=None, flip=False, postprocess=None,
                 box_template=None):
        self.net = net
        self.scheme = get_scheme(scheme) if isinstance(scheme, str) else scheme
        if not isinstance(self.scheme, LandmarkScheme):
            raise TypeError("scheme must be a LandmarkScheme or a scheme name, got %r" % (scheme,))
        self.input_size = int(input_size)
        self.template_scale = float(template_scale)
        self.template = arcface_template(self.input_size, self.template_scale)
        self.mean = np.asarray(mean, np.float32).reshape(3, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(3, 1, 1)
        if (self.std <= 0).any():
            raise ValueError("std must be positive, got %r" % (std,))
        self.raw_input = bool(raw_input)
        self.ctx = ctx or mx.cpu()
        if isinstance(detector, str):
            detector = get_detector(detector, **(detector_kw or {}))
        self.detector = detector
        self.flip = bool(flip)
        self.flip_perm = self.scheme.flip_permutation()
        self.post = postprocess or PostProcessor(self.input_size, self.flip_perm, outputs=output_names(net),
                                                 deep_supervision=deep_supervision(net))
        if box_template is None:
            box_template = getattr(detector, "box_template", None)
        self.box_template = np.asarray(DEFAULT_BOX_TEMPLATE if box_template is None else box_template,
                                       np.float64).reshape(5, 2)

    # ------------------------------------------------------------------------------------- builders
    @classmethod
    def from_config(cls, cfg_file, params, ctx=None, opts=None, detector="auto", **kw):
        """A predictor from an experiment YAML and trained weights (``net.save_parameters`` / checkpoints).

        Parameters
        ----------
        cfg_file : str
            Experiment YAML (the one the model was trained with).
        params : str
            ``.params`` file.
        opts : list of str, optional
            ``KEY VALUE`` overrides. All weights come from ``params`` (:func:`lotr_gluon.build.load_model`: no
            pretrained backbone is read).
        detector, **kw
            See :class:`Predictor`.

        Raises
        ------
        lotr_gluon.build.ParamsFileError
            ``params`` does not exist, is not an MXNet params file (truncated, another format), or holds the
            weights of another architecture (also a ``FileNotFoundError`` / ``ModelError``).
        lotr_gluon.config.ConfigFileError, ConfigError
            ``cfg_file`` does not exist or is malformed.

        Training-only parameters in ``params`` (the auxiliary heatmap head) are skipped silently: the model is
        built without that head (:func:`lotr_gluon.build.load_model`).
        """

        check_params_file(params)
        return cls.from_model(load_config(cfg_file, list(opts or [])), str(params), ctx=ctx, detector=detector, **kw)

    @classmethod
    def from_model(cls, cfg, params=None, ctx=None, detector="auto", **kw):
        """A predictor from a loaded config and weights (:func:`lotr_gluon.build.load_model`; ``params`` None:
        random initialisation, seed ``mx.random`` first). See :meth:`from_config`."""

        ctx = ctx or mx.cpu()
        net, post = load_model(cfg, params, ctx=ctx)
        net.hybridize()
        p = cls(net, build_scheme(cfg), cfg.DATA.INPUT_SIZE, template_scale=cfg.DATA.TEMPLATE_SCALE,
                mean=tuple(cfg.DATA.MEAN), std=tuple(cfg.DATA.STD), ctx=ctx, detector=detector, postprocess=post,
                **kw)
        p.cfg = cfg
        return p

    @classmethod
    def from_symbol(cls, prefix, input_size, scheme, mean=IMAGENET_MEAN, std=IMAGENET_STD, preprocess=False,
                    template_scale=1.0, ctx=None, detector="auto", epoch=0, **kw):
        """A predictor from ``PREFIX-symbol.json`` + ``PREFIX-%04d.params`` (``tools/export.py``).

        Parameters
        ----------
        prefix : str
        input_size : int
            Crop side S of the export.
        scheme : LandmarkScheme or str
        mean, std : 3 floats
            Normalisation applied here when the export has none (``preprocess=False``).
        preprocess : bool
            The export was made with ``--preprocess`` (normalisation folded in: it takes raw 0-255 RGB).
        template_scale : float
            ``DATA.TEMPLATE_SCALE`` of the training config.
        kw
            See :class:`Predictor` (``postprocess`` is needed for exported heatmap models:
            ``PostProcessor(input_size, scheme.flip_permutation(), codec)`` with the model's codec).
        """

        for f in ("%s-symbol.json" % prefix, "%s-%04d.params" % (prefix, epoch)):
            if not os.path.isfile(f):
                raise FileNotFoundError("exported model file not found: %s" % f)
        ctx = ctx or mx.cpu()
        net = load_symbol(prefix, ctx=ctx, epoch=epoch)
        return cls(net, scheme, input_size, template_scale=template_scale, mean=mean, std=std,
                   raw_input=preprocess, ctx=ctx, detector=detector, **kw)

    # ----------------------------------------------------------------------------------------- parts
    @property
    def detector_name(self):
        return getattr(self.detector, "name", type(self.detector).__name__) if self.detector is not None else None

    def align(self, image_rgb, five_points):
        """Crop (S, S, 3) uint8 and its image -> crop affine (2, 3), as :class:`AlignedFaceDataset` does
        (:func:`lotr_gluon.data.align.align_face`)."""
        return align_face(image_rgb, five_points, self.input_size, self.template)

    def _net_input(self, crops):
        if self.raw_input:
            return np.asarray(crops, np.float32).transpose(0, 3, 1, 2)
        return normalize_crops(crops, self.mean, self.std)

    def _forward(self, x):
        out = self.post(self.net(mx.nd.array(x, ctx=self.ctx)))
        if out.shape != (len(x), self.scheme.num_points, 2):
            raise ValueError("the model gave %s; expected (B, %d, 2) landmarks (heatmap models need their "
                             "postprocess=)" % (out.shape, self.scheme.num_points))
        return out.astype(np.float64)

    def _plausible(self, five_points, M_prev):
        """Whether re-aligning on predicted five points is sane: the new alignment's scale is within a factor 2
        and its rotation within 45 degrees of the current one (an untrained or failed prediction can collapse the
        five points and blow the crop up)."""
        try:
            M = estimate_similarity(five_points, self.template)
        except ValueError:
            return False
        s_new, s_old = np.sqrt(abs(np.linalg.det(M[:, :2]))), np.sqrt(abs(np.linalg.det(M_prev[:, :2])))
        a_new, a_old = np.arctan2(M[1, 0], M[0, 0]), np.arctan2(M_prev[1, 0], M_prev[0, 0])
        dang = abs((a_new - a_old + np.pi) % (2 * np.pi) - np.pi)
        return 0.5 <= s_new / s_old <= 2.0 and dang <= np.pi / 4

    def predict_crops(self, crops, flip=None):
        """Landmarks (B, N, 2) in crop pixels for aligned RGB uint8 crops (B, S, S, 3), in one forward pass.

        With ``flip`` the mirrored crops go into the same batch; their predictions are mirrored back
        (:func:`lotr_gluon.data.augment.flip_points` with the scheme's permutation) and averaged.
        """
        flip = self.flip if flip is None else flip
        crops = np.asarray(crops)
        if len(crops) == 0:
            return np.zeros((0, self.scheme.num_points, 2))
        x = self._net_input(crops)
        b = len(x)
        if flip:
            x = np.concatenate([x, x[:, :, :, ::-1]], 0)
        p = self._forward(x)
        if flip:
            p = self.post.flip_average(p[:b], p[b:])
        return p

    def detect(self, image, color="rgb"):
        """Faces of the detector on an image (path or array)."""
        if self.detector is None:
            raise ValueError("this predictor has no detector; pass faces=")
        return self.detector.detect(self._load(image, color))

    @staticmethod
    def _load(image, color):
        if isinstance(image, (str, os.PathLike)):
            return read_image(image)
        return to_rgb(image, color)

    # ---------------------------------------------------------------------------------------- predict
    def predict(self, image, faces=None, refine=True, color="rgb", flip=None, max_faces=None,
                return_crops=False):
        """Landmarks of every face in an image, in the image's pixels.

        Parameters
        ----------
        image : str, Path or ndarray
            A file (decoded as RGB; ``color`` is ignored) or an array of any size: grey (H, W) / (H, W, 1),
            colour (H, W, 3) or with alpha (H, W, 4), channel order ``color`` (see :func:`to_rgb`).
        faces : list, optional
            Faces to use instead of the detector: :class:`~lotr_gluon.detectors.Face`, dicts with ``box``
            and/or ``five_points`` (and ``score``), five-point arrays (5, 2) or boxes (4,), in image pixels;
            each is checked against the image (:func:`check_face`).
        refine : bool or int
            For faces without five points: re-align with the predicted five points and predict again
            (an int: that many times). Faces with five points are aligned once with them. A re-alignment
            that changes the scale by more than 2x or the rotation by more than 45 degrees is not done (the
            face keeps its previous alignment and prediction).
        color : {'rgb', 'bgr'}
        flip : bool, optional
            Flip test (default: the predictor's ``flip``).
        max_faces : int, optional
            Keep only the highest-scoring faces.
        return_crops : bool
            Add the final aligned crop, ``'crop'`` (S, S, 3) uint8 RGB, to each result.

        Returns
        -------
        list of dict, one per face (detector order: highest score first); empty when no face is found:
            ``landmarks`` ndarray (N, 2) float64, original image pixels;
            ``five_points`` (5, 2): the scheme's five points of the prediction (eye centres, nose tip, mouth
            corners), image pixels;
            ``box`` (4,) ``x0, y0, x1, y1``: the detector's (or given) box;
            ``score`` float: the detector's score (1.0 for given faces);
            ``detector`` str: the detector that ran (``'yunet'``, ``'insightface'``, ``'opencv'``) or
            ``'given'``;
            ``align_points`` (5, 2): the five points the final crop was aligned with;
            ``alignment`` str: ``'five_points'`` (detector/given points), ``'box'`` (box template, no
            refinement, or the refinement was implausible) or ``'refined'`` (box template, then re-aligned on
            the prediction);
            ``affine`` (2, 3): image -> crop of the final pass.

        Raises
        ------
        ImageReadError
            ``image`` is a path that is missing or cannot be decoded (the message names the file).
        BadFaceError
            A given face lies outside the image or is not finite (:func:`check_face`).
        """
        rgb = self._load(image, color)
        if faces is None:
            if self.detector is None:
                raise ValueError("this predictor has no detector; pass faces=")
            faces = list(self.detector.detect(rgb))
            source = self.detector_name
            box_template = getattr(self.detector, "box_template", None)
        else:
            faces = [_as_face(f) for f in faces]
            for i, f in enumerate(faces):
                check_face(f, rgb.shape[1], rgb.shape[0], i)
            source = "given"
            box_template = None
        box_template = self.box_template if box_template is None else box_template
        if max_faces is not None:
            faces = sorted(faces, key=lambda f: -f.score)[:int(max_faces)]
        if not faces:
            return []
        rounds = int(refine)
        align_pts = []
        alignment = []
        for f in faces:
            if f.five_points is not None:
                align_pts.append(np.asarray(f.five_points, np.float64))
                alignment.append("five_points")
            else:
                align_pts.append(five_points_from_box(f.box, box_template))
                alignment.append("box")
        todo = list(range(len(faces)))  # faces to (re)predict in the next pass
        landmarks = [None] * len(faces)
        affines = [None] * len(faces)
        crops = [None] * len(faces)
        for r in range(rounds + 1):
            if not todo:
                break
            batch = [self.align(rgb, align_pts[i]) for i in todo]
            pred = self.predict_crops(np.stack([c for c, _ in batch]), flip=flip)
            for k, i in enumerate(todo):
                crops[i], affines[i] = batch[k]
                landmarks[i] = transform_points(pred[k], invert_affine(affines[i]))
            if r == rounds:
                break
            nxt = []
            for i in todo:
                if alignment[i] == "five_points":
                    continue
                cand = five_points_from_landmarks(landmarks[i], self.scheme)
                if self._plausible(cand, affines[i]):
                    align_pts[i] = cand
                    alignment[i] = "refined"
                    nxt.append(i)
            todo = nxt
        results = []
        for i, f in enumerate(faces):
            res = dict(landmarks=landmarks[i], five_points=five_points_from_landmarks(landmarks[i], self.scheme),
                       box=np.asarray(f.box, np.float64), score=float(f.score), detector=source,
                       align_points=np.asarray(align_pts[i], np.float64), alignment=alignment[i],
                       affine=affines[i])
            if return_crops:
                res["crop"] = crops[i]
            results.append(res)
        return results

    def __repr__(self):
        return "Predictor(scheme=%s, input_size=%d, template_scale=%g, detector=%s, flip=%s)" % (
            self.scheme.name, self.input_size, self.template_scale, self.detector_name, self.flip)


def evaluate_predictor(predictor, samples, scheme, flip=False, min_iou=MATCH_IOU):
    """Score a :class:`Predictor` end to end on annotated photos: what a user gets on these images.

    Each image goes through :meth:`Predictor.predict` (its detector on the whole photo, alignment, forward pass,
    decoding, back to image pixels); the result whose detector box matches the annotated face (IoU with the
    landmarks' box >= ``min_iou``, :func:`lotr_gluon.detection_cache.match_face`, the rule of the detections
    cache) is scored. A face the detector misses is predicted on its ground-truth five points and counted, as in
    the evaluation under ``DATA.ALIGN detector`` (:func:`lotr_gluon.evaluate.evaluate_weights`), so that both
    give the same numbers on the same faces.

    Parameters
    ----------
    predictor : Predictor
        With a detector.
    samples : list of FaceSample
        Annotated faces (landmarks in image pixels).
    scheme : LandmarkScheme
        Normaliser, threshold and five points of the dataset.
    flip : bool
        Flip test.
    min_iou : float
        Least IoU of a match.

    Returns
    -------
    metrics : dict
        As :func:`lotr_gluon.metrics.evaluate_metrics`, with ``flip``, ``detector_misses`` and
        ``detector_miss_names``.
    nmes : ndarray (M,)
    preds : ndarray (M, N, 2), image pixels.
    """
    preds, misses = [], []
    for s in samples:
        faces = predictor.predict(s.image_path, flip=flip)
        found = [Face(box=f["box"], score=f["score"]) for f in faces]
        face, _ = match_face(found, landmark_box(s.landmarks), min_iou)
        if face is None:
            misses.append(s.name)
            gt5 = five_points_from_landmarks(s.landmarks, scheme)
            preds.append(predictor.predict(s.image_path, faces=[gt5], flip=flip)[0]["landmarks"])
        else:
            preds.append(faces[next(i for i, f in enumerate(found) if f is face)]["landmarks"])
    preds = np.stack(preds) if preds else np.zeros((0, scheme.num_points, 2))
    gt = np.stack([s.landmarks for s in samples]) if samples else np.zeros_like(preds)
    norm_idx = scheme.norm_indices or None
    metrics = evaluate_metrics(preds, gt, scheme.norm, norm_idx, scheme.threshold)
    metrics.update(flip=bool(flip), detector_misses=len(misses), detector_miss_names=misses)
    return metrics, nme_per_image(preds, gt, scheme.norm, norm_idx), preds
