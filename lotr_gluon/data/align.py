"""Five-point face alignment to insightface's ArcFace template, as in LOTR and Earp et al.

Both papers crop faces by a similarity transform that maps five points (eye centres, nose tip, mouth corners)
onto the ArcFace template of insightface (``insightface.utils.face_align``: ``arcface_dst``, ``estimate_norm``,
``norm_crop``). The same is done here, with the template scaled to the crop size.

Pixel convention (OpenCV's, used by ``cv2.warpAffine``): the centre of pixel column c, row r is at (x, y) =
(c, r), so an image of width W spans x in [-0.5, W - 0.5]. An affine ``M`` (2, 3) maps a point p (x, y) to
``M[:, :2] @ p + M[:, 2]``.
"""
import cv2
import numpy as np

__all__ = [
    "ARCFACE_TEMPLATE_112", "arcface_template", "estimate_similarity", "five_points_from_landmarks",
    "align_face", "warp_crop", "normalize_crops", "transform_points", "invert_affine", "generalized_procrustes",
    "IMAGENET_MEAN", "IMAGENET_STD", "similarity_parameters", "alignment_residual",
]

#: ImageNet RGB mean and std of [0, 1] pixel values (gluoncv, torchvision): the default input normalisation
#: (config ``DATA.MEAN`` / ``DATA.STD``, :func:`normalize_crops`).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: insightface's ArcFace five-point template for a 112 x 112 crop (``insightface.utils.face_align.arcface_dst``,
#: insightface 0.7.3), pixels: image-left eye, image-right eye, nose tip, image-left and image-right mouth corner.
#: Copied so that data workers need not import insightface (and onnxruntime); a test checks it is equal.
ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32)


def arcface_template(size, scale=1.0):
    """ArcFace five-point template for a ``size`` x ``size`` crop.

    Parameters
    ----------
    size : int
        Crop side, pixels.
    scale : float
        The template's offsets from the crop centre (size / 2, size / 2) are multiplied by ``scale``:
        1.0 = insightface's template scaled by size / 112 (as ``estimate_norm`` for multiples of 112);
        < 1 makes the face smaller and includes more context (e.g. 0.75 keeps the whole face contour of nearly
        all Datatang faces inside the crop, whereas at 1.0 the temples and chin leave it on most faces).

    Returns
    -------
    ndarray float64, shape (5, 2)
        Template points in crop pixels.
    """
    if size <= 0 or scale <= 0:
        raise ValueError("size and scale must be positive, got %r, %r" % (size, scale))
    dst = ARCFACE_TEMPLATE_112.astype(np.float64) * (float(size) / 112.0)
    c = float(size) / 2.0
    return c + (dst - c) * float(scale)


def estimate_similarity(src, dst):
    """Least-squares similarity transform (rotation, uniform scale, translation) mapping ``src`` to ``dst``.

    Uses ``skimage.transform.SimilarityTransform.estimate`` (Umeyama), as insightface's ``estimate_norm``.

    Parameters
    ----------
    src, dst : array_like, shape (K, 2), K >= 2
        Corresponding points, pixels (e.g. five points in the image and the template in the crop).

    Returns
    -------
    M : ndarray float64, shape (2, 3)
        ``dst ~= transform_points(src, M)``.

    Raises
    ------
    ValueError
        On wrong shapes, non-finite values, or degenerate points (all equal).
    """
    from skimage.transform import SimilarityTransform

    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    if src.ndim != 2 or src.shape[1] != 2 or src.shape != dst.shape or len(src) < 2:
        raise ValueError("expected two (K, 2) point arrays with K >= 2, got %s and %s" % (src.shape, dst.shape))
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise ValueError("non-finite points in the similarity estimate")
    if np.ptp(src, axis=0).max() <= 0:
        raise ValueError("degenerate source points (all equal): %s" % src.tolist())
    tform = SimilarityTransform()
    ok = tform.estimate(src, dst)
    M = tform.params[:2, :].astype(np.float64)
    if ok is False or not np.isfinite(M).all() or abs(np.linalg.det(M[:, :2])) < 1e-12:
        raise ValueError("similarity estimate failed for points %s" % src.tolist())
    return M


def five_points_from_landmarks(landmarks, scheme):
    """The five alignment points of a landmark scheme: the mean of each index group of ``scheme.five_points``.

    Parameters
    ----------
    landmarks : array_like, shape (N, 2) or (B, N, 2)
        Points in pixels, ``N == scheme.num_points``.
    scheme : LandmarkScheme

    Returns
    -------
    ndarray float64, shape (5, 2) or (B, 5, 2)
        Image-left eye, image-right eye, nose tip, image-left mouth corner, image-right mouth corner.
    """
    p = np.asarray(landmarks, np.float64)
    if p.shape[-2:] != (scheme.num_points, 2):
        raise ValueError("scheme %s expects (..., %d, 2) landmarks, got %s"
                         % (scheme.name, scheme.num_points, p.shape))
    return np.stack([p[..., list(g), :].mean(axis=-2) for g in scheme.five_points], axis=-2)


def align_face(image, five_points, size, template=None, border_value=0):
    """Warp a face to a square crop so that its five points land on the template.

    Parameters
    ----------
    image : ndarray uint8, shape (H, W, 3)
        Original image (RGB or BGR; channels are not touched).
    five_points : array_like, shape (5, 2)
        Five points in the image, pixels, in the template's order.
    size : int
        Crop side S, pixels.
    template : array_like (5, 2), optional
        Target points in crop pixels; default ``arcface_template(size)``.
    border_value : int
        Fill value outside the image.

    Returns
    -------
    crop : ndarray uint8, shape (S, S, 3)
    M : ndarray float64, shape (2, 3)
        Image -> crop affine (bilinear ``cv2.warpAffine``).
    """
    dst = arcface_template(size) if template is None else np.asarray(template, np.float64)
    M = estimate_similarity(five_points, dst)
    return warp_crop(image, M, size, border_value), M


def warp_crop(image, M, size, border_value=0):
    """The S x S crop of ``image`` under the image -> crop affine ``M`` (2, 3): bilinear ``cv2.warpAffine``,
    constant border. The one warp of training, evaluation and the predictor.

    Returns
    -------
    ndarray, shape (S, S, 3), the dtype of ``image``
    """
    return cv2.warpAffine(np.ascontiguousarray(image), M, (int(size), int(size)), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(border_value,) * 3)


def normalize_crops(crops, mean, std):
    """Network input of RGB crops: ``(crop / 255 - mean) / std`` per channel, channels first.

    The one input normalisation of training, evaluation and the predictor (config ``DATA.MEAN`` /
    ``DATA.STD``; ImageNet's by default, as gluoncv).

    Parameters
    ----------
    crops : array_like uint8, shape (..., S, S, 3)
        One crop or a batch.
    mean, std : array_like, 3 floats each
        Of RGB values in [0, 1].

    Returns
    -------
    ndarray float32, shape (..., 3, S, S)
    """
    x = np.moveaxis(np.asarray(crops, np.float32), -1, -3) * np.float32(1.0 / 255.0)
    return (x - np.asarray(mean, np.float32).reshape(3, 1, 1)) / np.asarray(std, np.float32).reshape(3, 1, 1)


def transform_points(pts, M):
    """Apply an affine to points.

    Parameters
    ----------
    pts : array_like, shape (..., 2)
        Points (x, y), pixels.
    M : array_like, shape (2, 3)

    Returns
    -------
    ndarray float64, shape (..., 2)
    """
    p = np.asarray(pts, np.float64)
    M = np.asarray(M, np.float64)
    if p.shape[-1] != 2 or M.shape != (2, 3):
        raise ValueError("expected (..., 2) points and a (2, 3) affine, got %s and %s" % (p.shape, M.shape))
    return p @ M[:, :2].T + M[:, 2]


def invert_affine(M):
    """Inverse of a (2, 3) affine (e.g. crop -> image from image -> crop).

    Returns
    -------
    ndarray float64, shape (2, 3)

    Raises
    ------
    ValueError
        When ``M`` is singular.
    """
    M = np.asarray(M, np.float64)
    if M.shape != (2, 3):
        raise ValueError("expected a (2, 3) affine, got %s" % (M.shape,))
    A = M[:, :2]
    det = np.linalg.det(A)
    if abs(det) < 1e-12:
        raise ValueError("singular affine %s" % M.tolist())
    Ai = np.linalg.inv(A)
    return np.hstack([Ai, -Ai @ M[:, 2:]])


def generalized_procrustes(shapes, max_iter=50, tol=1e-10):
    """Generalised Procrustes analysis with similarity transforms (no reflection).

    Parameters
    ----------
    shapes : array_like, shape (M, N, 2)
        Point sets, any units.
    max_iter : int
    tol : float
        Stop when the mean shape moves less than this (max coordinate change, unit-norm shapes).

    Returns
    -------
    mean : ndarray float64, shape (N, 2)
        Mean shape, centred at 0 with unit Frobenius norm, oriented like the first shape.
    aligned : ndarray float64, shape (M, N, 2)
        Every shape similarity-aligned onto ``mean``.
    """
    X = np.asarray(shapes, np.float64)
    if X.ndim != 3 or X.shape[2] != 2:
        raise ValueError("expected (M, N, 2) shapes, got %s" % (X.shape,))
    X = X - X.mean(axis=1, keepdims=True)
    X = X / np.linalg.norm(X, axis=(1, 2), keepdims=True)

    def normalise(s):
        s = s - s.mean(0)
        return s / np.linalg.norm(s)

    mean = normalise(X[0])
    aligned = X
    for _ in range(max_iter):
        # batched Umeyama onto `mean` (both centred)
        H = np.einsum("mni,nj->mij", X, mean)
        u, s, vt = np.linalg.svd(H)
        d = np.sign(np.linalg.det(u @ vt))
        d[d == 0] = 1.0
        D = np.stack([np.ones_like(d), d], axis=1)
        R = u @ (D[:, :, None] * vt)
        scale = (s * D).sum(1)  # / ||X||^2 = 1
        aligned = scale[:, None, None] * X @ R
        new = normalise(aligned.mean(0))
        # keep the orientation of the first reference (no drift)
        u2, _, vt2 = np.linalg.svd(new.T @ mean)
        d2 = np.sign(np.linalg.det(u2 @ vt2)) or 1.0
        new = new @ (u2 @ np.diag([1.0, d2]) @ vt2)
        delta = np.abs(new - mean).max()
        mean = new
        if delta < tol:
            break
    return mean, aligned


def similarity_parameters(M, size):
    """Log scale, rotation and shift of a crop -> crop similarity, about the crop centre.

    The inverse of the geometric part of :meth:`lotr_gluon.data.augment.Augmenter.geometric_matrix` (without the
    flip): ``M`` maps a point p to ``s R(a) (p - c) + c + t``, c = ((size - 1) / 2, (size - 1) / 2).

    Parameters
    ----------
    M : array_like, shape (2, 3)
        Similarity (rotation, uniform scale, translation) in crop pixels.
    size : int
        Crop side S, pixels.

    Returns
    -------
    ndarray float64, shape (4,)
        ``(log s, a, t_x / S, t_y / S)``: a in degrees, counter-clockwise on screen (``cv2.getRotationMatrix2D``'s
        sign), the shift of the crop centre as a fraction of the crop side.
    """
    M = np.asarray(M, np.float64)
    if M.shape != (2, 3):
        raise ValueError("expected a (2, 3) affine, got %s" % (M.shape,))
    scale = float(np.hypot(M[0, 0], M[1, 0]))
    angle = float(np.degrees(np.arctan2(-M[1, 0], M[0, 0])))
    c = np.full(2, (float(size) - 1.0) / 2.0)
    shift = (M[:, :2] @ c + M[:, 2] - c) / float(size)
    return np.array([np.log(scale), angle, shift[0], shift[1]])


def alignment_residual(M_reference, M_other, size):
    """How a second alignment of the same face differs from a reference one, as :func:`similarity_parameters`.

    Parameters
    ----------
    M_reference, M_other : array_like, shape (2, 3)
        Image -> crop similarities of the same face (e.g. from its ground-truth five points and from a detector's).
    size : int
        Crop side S, pixels.

    Returns
    -------
    ndarray float64, shape (4,)
        ``(log scale, rotation degrees, shift x, shift y as crop fractions)`` of the map from the reference crop to
        the other crop; zeros when the two alignments agree.
    """
    A = np.vstack([np.asarray(M_other, np.float64), [0.0, 0.0, 1.0]])
    return similarity_parameters((A @ np.vstack([invert_affine(M_reference), [0.0, 0.0, 1.0]]))[:2], size)
