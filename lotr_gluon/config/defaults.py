"""Default configuration (yacs). Every key is commented; ``experiments/<dataset>/<name>.yaml`` overrides
these, and ``tools/*.py --cfg FILE KEY VALUE ...`` overrides on the command line. An unknown key is an
error that lists the valid keys (see :func:`lotr_gluon.config.load_config`).

Defaults are the LOTR paper's (JD-landmark, LOTR-M) unless a comment says otherwise.
"""
from yacs.config import CfgNode as CN

from ..data.align import IMAGENET_MEAN, IMAGENET_STD

_C = CN()
_C.CFG_NAME = ""             # set by load_config to the YAML file stem; names the run folder
_C.OUTPUT_DIR = "output"        # runs go to OUTPUT_DIR/<DATA.NAME>/<config file stem>/
_C.SEED = 0                     # seeds numpy, random and mxnet
_C.DEVICES = []                 # [] = CPU; [0, 1] = GPUs 0 and 1 (data parallel with split_and_load)
_C.NUM_CPU_CONTEXTS = 1         # with DEVICES empty: number of CPU contexts (>1 only to test data parallelism)
_C.KVSTORE = "device"           # mxnet kvstore for gradient aggregation ('device', 'local', ...)
_C.WORKERS = 0                  # DataLoader worker processes (0 = main process)

# ---------------------------------------------------------------------------------------------- data
_C.DATA = CN()
_C.DATA.NAME = "jd"             # dataset name used in the output path (jd, wflw, 300w, datatang)
_C.DATA.FORMAT = "jd"           # annotation format: datatang | jd | wflw | 300w
_C.DATA.SCHEME = "jd106"        # landmark scheme (flip pairs, five points, NME normaliser): jd106 | wflw98 | 300w68 | datatang106
_C.DATA.ROOT = "data/jd"        # dataset root (relative paths are taken from the current directory)
_C.DATA.TRAIN_SPLIT = "Train"   # datatang: file of stems; jd/300w: sub-folder of ROOT; wflw: annotation list file
_C.DATA.VAL_SPLIT = "Val"       # split used for validation during training ('' = no validation)
_C.DATA.TEST_SPLIT = "Test"     # split evaluated by tools/test.py
_C.DATA.SPLIT_LABELS = []       # how a split is named wherever its numbers are printed: "VALUE=LABEL" per split value (DATA.*_SPLIT), {n} = its number of faces (lotr_gluon.build.split_label); a value without one is "<DATA.NAME> <VALUE> ({n} faces)". Say what the data is not (e.g. a subset of a benchmark)
_C.DATA.ON_ERROR = "raise"      # bad annotation or image: 'raise' (default) or 'warn' (skip with a warning); images are decoded and points checked when a split is loaded
_C.DATA.OUTSIDE_MARGIN = 0.5    # reject (warn: skip) a face with a landmark outside the image by more than this fraction of the image width/height (< 0 = no check)
_C.DATA.INPUT_SIZE = 192        # side of the aligned square crop, pixels (LOTR: 192 JD, 256 WFLW)
_C.DATA.TEMPLATE_SCALE = 1.0    # scales insightface's ArcFace five-point template about its centre (1.0 = as is)
_C.DATA.DETECTIONS = ""         # explicit JSON of detected five points per image (tools/detect_faces.py), used as given whatever DATA.ALIGN; '' = DATA.ALIGN decides
_C.DATA.ALIGN = "ground_truth"  # five points of the alignment: ground_truth (from the landmarks; deviation from both papers) | detector (DATA.DETECTOR's, as the papers; cached per split in DATA.DETECTIONS_CACHE, rebuilt when stale). A face the detector misses (no detection with IoU >= 0.4 to its landmarks' box) is aligned on its ground-truth five points in training and in evaluation, where it is scored that way and counted in detector_misses.
_C.DATA.DETECTOR = "yunet"      # DATA.ALIGN detector: the face detector giving the five points (yunet | insightface; lotr_gluon.detectors)
_C.DATA.DETECTIONS_CACHE = "data/detections"  # DATA.ALIGN detector: folder of the cached detections, <DATA.NAME>_<split file stem>_<DATA.DETECTOR>.json (git-ignored; relative to the current directory)
_C.DATA.FIVE_POINT_JITTER = 0.0 # std of gaussian noise added to ground-truth five points, fraction of the crop size (imitates a detector)
_C.DATA.MEAN = list(IMAGENET_MEAN)  # RGB normalisation mean of [0, 1] pixels (ImageNet, gluoncv)
_C.DATA.STD = list(IMAGENET_STD)    # RGB normalisation std
_C.DATA.CACHE = True           # pre-align every face once and keep the uint8 crops in memory (False: read + align on every access)
_C.DATA.MAX_SAMPLES = 0         # use only the first N samples of each split (0 = all; for smoke runs)

# ------------------------------------------------------------------------------------- augmentation
_C.AUG = CN()
_C.AUG.FLIP = True              # random horizontal flip with point permutation, p=0.5 (Earp 5.1, LOTR IV-C)
_C.AUG.ROTATION = 15.0          # random rotation, uniform in +-ROTATION degrees (0 = off)
_C.AUG.ERASING_PROB = 0.5       # random erasing probability (Zhong et al.; papers give no value; 0 = off)
_C.AUG.PCA_STD = 0.05           # AlexNet PCA lighting noise std (0 = off)
_C.AUG.JITTER = 0.4             # colour jitter: brightness/contrast/saturation (0 = off)
_C.AUG.SCALE = [1.0, 1.0]       # random scale range (off by default)
_C.AUG.ALIGN_NOISE_STD = [0.0, 0.0, 0.0]  # gaussian alignment noise on top of ROTATION/SCALE/SHIFT: std of log scale, rotation (deg), shift (crop fraction); set from a detector's measured error (tools/detector_noise.py); 0 = off
_C.AUG.SHIFT = 0.0              # random shift, fraction of the crop size (off by default)
_C.AUG.FLIP_MODE = "random"     # random: flip each draw with p=0.5 | extend: train on every image and its mirror, set doubled (Earp 5.1 trick 1)
_C.AUG.ERASING_MODE = "zhong"   # zhong: Zhong et al. rectangle, random fill (ERASING_PROB) | aid: Huang et al. AID information dropping (Earp 5.1 trick 3; AID_* keys)
_C.AUG.AID_CUTOUT_PROB = 0.3    # AID cutout: probability of blacking out elliptical patches (Huang et al. code: 0.3)
_C.AUG.AID_RADIUS_FACTOR = 0.1  # AID cutout: radii = factor * (1 + U[0,1)) * crop width, per axis (Huang et al. code: 0.1)
_C.AUG.AID_NUM_PATCH = 1        # AID cutout: patches per image (Huang et al. code: 1)
_C.AUG.AID_HAS_PROB = 0.3       # AID hide-and-seek: probability of hiding grid cells (Huang et al. code: 0.3; 0 = off)
_C.AUG.AID_HAS_HIDE_PROB = 0.3  # AID hide-and-seek: probability that a cell is hidden (Huang et al. code: 0.3)
_C.AUG.AID_HAS_GRIDS = [0, 16, 32, 44]  # AID hide-and-seek: grid sizes, pixels, one drawn uniformly (0 = no hiding; Huang et al. code)

# -------------------------------------------------------------------------------------------- model
# A model is built from parts, each read by its part's builder (lotr_gluon/model_zoo.py): backbone ->
# neck (1x1 conv, optional deconvolutions) -> Transformer -> head (LOTR), or backbone -> heatmap upsampler
# (Earp). Old flat keys (MODEL.ENC_LAYERS, ...) are errors naming their new place (lotr_gluon/config/__init__.py).
_C.MODEL = CN()
_C.MODEL.NAME = "lotr"          # registry name: lotr | cnn_ffn | earp_heatmap | earp_vector
_C.MODEL.INIT_FROM = ""         # .params of one of our trained models to start from ('' = none), e.g. a heatmap run's backbone (not in the papers; a from-scratch aid)
_C.MODEL.INIT_FROM_PREFIXES = ["backbone."]  # which tensors of INIT_FROM to copy (structural-name prefixes; shapes must match)
_C.MODEL.NUM_POINTS = 106       # N landmarks = N landmark queries

# backbone: a gluoncv ImageNet classifier's feature extractor
_C.MODEL.BACKBONE = CN()
_C.MODEL.BACKBONE.NAME = "mobilenetv2_1.0"  # gluoncv backbone: mobilenetv2_1.0, resnet50_v1, hrnet_w18, ...
_C.MODEL.BACKBONE.PRETRAINED = True      # ImageNet weights from gluoncv (needs the network; offline: warning + random init)
_C.MODEL.BACKBONE.PRETRAINED_FILE = ""   # local .params of the gluoncv classifier (used instead of downloading)
_C.MODEL.BACKBONE.PRETRAINED_ROOT = ""   # gluoncv model store folder ('' = ~/.mxnet/models)
_C.MODEL.BACKBONE.HRNET_STRIDE = 4       # HRNet only: output stride of the concatenated HRNetV2 representation

# neck (LOTR, CNN+FFN): backbone features -> D-channel feature map (LOTR Table I)
_C.MODEL.NECK = CN()
_C.MODEL.NECK.HIDDEN_DIM = 64        # D, token width after the 1x1 conv (Table I: 64)
_C.MODEL.NECK.UPSAMPLE = False       # "+" models: 1x1 conv to UPSAMPLE_REDUCE, then deconvolutions
_C.MODEL.NECK.UPSAMPLE_REDUCE = 256  # channels of the 1x1 conv before the deconvolutions (Table I: 256)
_C.MODEL.NECK.UPSAMPLE_FILTERS = [128, 64]  # filters of each stride-2 deconvolution (Table I: 128, 64; last = HIDDEN_DIM)
_C.MODEL.NECK.UPSAMPLE_KERNEL = 4    # deconvolution kernel (Table I: 4x4)
_C.MODEL.NECK.UPSAMPLE_BATCHNORM = False  # BatchNorm after deconvolutions (not in Table I)

# Transformer (LOTR Sec. III-A, eq. (9)-(18)); width D = MODEL.NECK.HIDDEN_DIM
_C.MODEL.TRANSFORMER = CN()
_C.MODEL.TRANSFORMER.NUM_HEADS = 8          # attention heads
_C.MODEL.TRANSFORMER.ENC_LAYERS = 2         # Transformer encoder layers (Table I: 2; Table VII: 1-6)
_C.MODEL.TRANSFORMER.DEC_LAYERS = 2         # Transformer decoder layers (Table I: 2; Table VII: 1-6)
_C.MODEL.TRANSFORMER.FFN_HIDDEN = 0         # Transformer FFN: 0 = single D->D layer (eq. 13), >0 = two layers with this hidden size
_C.MODEL.TRANSFORMER.DROPOUT = 0.1          # Transformer dropout (LOTR: 0.1)
_C.MODEL.TRANSFORMER.DECODER_INPUT = "queries"  # first decoder input: 'queries' (LOTR eq. 14) or 'zeros' (DETR)
_C.MODEL.TRANSFORMER.POS_IN_VALUES = "none"  # positional encoding also in attention values: 'none' (LOTR, DETR), 'cross' (decoder cross-attention), 'all' (+ encoder); from-scratch lever
_C.MODEL.TRANSFORMER.NORM_BEFORE = False   # pre-norm Transformer layers (DETR normalize_before); LOTR's equations are post-norm; from-scratch lever
_C.MODEL.TRANSFORMER.ATTN_OUT_INIT = "he"   # attention output projections: 'he' (paper's He init) | 'zero' (residual branches start as identity); from-scratch lever
_C.MODEL.TRANSFORMER.FINAL_NORM = False     # LayerNorm after the last decoder layer: none in LOTR eq. (14)-(19); True = DETR
_C.MODEL.TRANSFORMER.QUERY_INIT_STD = 1e-4  # landmark-query init std (LOTR: 1e-4)
_C.MODEL.TRANSFORMER.POS_INIT_STD = 1.0     # positional-encoding init std (LOTR: standard normal)
_C.MODEL.TRANSFORMER.POS_INIT = "normal"    # positional-encoding init: 'normal' (LOTR, std POS_INIT_STD) | 'sine' (DETR 2-D sine, still learnable); from-scratch lever
_C.MODEL.TRANSFORMER.QUERY_INIT = "normal"  # landmark queries init: 'normal' (LOTR, std QUERY_INIT_STD) | 'anchor_pos' (pos enc at each anchor + cross-attn keys = queries proj.; needs MODEL.HEAD.ANCHORS); from-scratch lever

# head: the position-wise FFN from decoder outputs (LOTR) or pooled features (CNN+FFN) to coordinates
_C.MODEL.HEAD = CN()
_C.MODEL.HEAD.HIDDEN = [512, 512]   # PFFN hidden sizes (eq. 19, Table I)
_C.MODEL.HEAD.COORD_UNITS = "input_frac" # head output unit: 'input_frac' (x input size -> pixels) or 'pixels' (paper silent)
_C.MODEL.HEAD.ANCHORS = "none"       # 'none' (paper) or 'mean_shape': predict offsets from the mean training shape, head's last layer at 0
_C.MODEL.HEAD.LAST_INIT_STD = 1e-3  # with ANCHORS: std of the PFFN's last-layer init (0 = zeros: stalls at the mean shape)
_C.MODEL.HEAD.PER_LANDMARK_OUT = False  # PFFN last layer with its own weights per landmark (eq. 19 shares it; from-scratch lever)

# training-only auxiliary losses (LOTR)
_C.MODEL.AUX = CN()
_C.MODEL.AUX.DECODER_LOSS = False     # supervise every decoder layer (as MTLD); inference uses the last
_C.MODEL.AUX.HEATMAP_WEIGHT = 0.0     # LOTR: weight of an auxiliary heatmap MSE on the backbone features, training only (0 = off, the paper; MTLD-style from-scratch aid). Head layout: MODEL.HEATMAP.UPSAMPLER, FILTERS, REDUCE, SIGMA

# heatmap baseline (Earp et al.), used when MODEL.NAME = earp_heatmap / earp_vector, and by LOTR's auxiliary
# heatmap head (MODEL.AUX.HEATMAP_WEIGHT > 0)
_C.MODEL.HEATMAP = CN()
_C.MODEL.HEATMAP.UPSAMPLER = "SDD"      # string of S (conv+BN+ReLU+pixel shuffle) and D (deconv+BN+ReLU) blocks
_C.MODEL.HEATMAP.FILTERS = 32     # output channels of each upsampling block (32 + REDUCE 256 = LOTR Table V 2.92M / 24.42M; see heatmap_baseline/model.py)
_C.MODEL.HEATMAP.REDUCE = 256     # 1x1 conv + BN + ReLU to this many channels before the upsampler (0 = none; widths not in the papers)
_C.MODEL.HEATMAP.S_BLOCK = "conv_shuffle"  # S block order: conv_shuffle (3x3 conv to 4*FILTERS, BN, ReLU, shuffle; ESPCN) | shuffle_conv
_C.MODEL.HEATMAP.D_KERNEL = 4   # deconvolution kernel of D blocks, 2 | 3 | 4 (Earp silent; 4 = Simple Baselines, reproduces Earp Tables 2-4 GFLOPs)
_C.MODEL.HEATMAP.S_KERNEL = 3   # kernel of the S-block convolution, odd (Earp silent; 3 = ESPCN)
_C.MODEL.HEATMAP.S_CONV_MULT = 4  # S-block conv has S_CONV_MULT*FILTERS filters, S_CONV_MULT*FILTERS/4 channels leave the block (4: LOTR aux head / Table V model; Earp configs 1: "256 filters")
_C.MODEL.HEATMAP.CONV = "after"   # after: conv to N heatmaps after the last block | before_last_s: before a final S block (Earp Sec. 4.2; Earp configs)
_C.MODEL.HEATMAP.KERNEL = 1       # kernel of the heatmap conv after the last block (Earp 4.1 "a 2D convolution with 106 filters"; size silent)
_C.MODEL.HEATMAP.PRE_KERNEL = 3   # CONV before_last_s: kernel of the heatmap conv before the final S block (Earp silent)
_C.MODEL.HEATMAP.FINAL_S_KERNEL = 1  # CONV before_last_s: kernel of the final S block conv, N -> 4N (Earp silent)
_C.MODEL.HEATMAP.FINAL_S_ACT = "bn_relu"  # CONV before_last_s: that final S block with BN + ReLU on the heatmaps (as every S block) | linear (conv with bias, N(0, 0.001) init, + shuffle; Earp configs). Earp silent
_C.MODEL.HEATMAP.SIGMA = 1.5    # Gaussian target std, heatmap pixels (LOTR eq. 1)
_C.MODEL.HEATMAP.DECODER = "dark"   # argmax | argmax_shift | dark | vector
# Gaussian-vector model (MODEL.NAME earp_vector; LOTR Table V "with vectorization", after Xiong et al.): the Earp
# net above + band pooling, trained on vector labels of std MODEL.HEATMAP.SIGMA; see heatmap_baseline/vector.py
_C.MODEL.HEATMAP.VECTOR_BANDWIDTHS = [3, 5]  # band-pooling bandwidths (odd), vectors of each averaged (Xiong et al.'s aggregated 3 and 5, per a public summary)
_C.MODEL.HEATMAP.VECTOR_THETA = 0.1     # constant added to the label inside its 3-sigma window (Xiong et al.'s value not read offline; ours)
_C.MODEL.HEATMAP.VECTOR_DECODER = "gaussian_fit"  # gaussian_fit (argmax + 3-point log-parabola on v - theta) | argmax

# --------------------------------------------------------------------------------------------- loss
_C.LOSS = CN()
_C.LOSS.NAME = "smooth_wing"    # l1 | l2 | smooth_l1 | wing | smooth_wing (LOTR Table VI)
_C.LOSS.WING_W = 10.0           # Wing / smooth-Wing w, pixels (LOTR: 10)
_C.LOSS.WING_EPS = 2.0          # Wing / smooth-Wing epsilon (LOTR: 2)
_C.LOSS.SMOOTH_WING_T = 0.01    # smooth-Wing t, pixels (LOTR: 0.01)
_C.LOSS.SMOOTH_L1_BETA = 1.0    # smooth-L1 threshold, pixels (eq. 6)

# ----------------------------------------------------------------------------------------- training
_C.TRAIN = CN()
_C.TRAIN.OPTIMIZER = "lamb"     # lamb (paper) | adam | adamw | sgd
_C.TRAIN.LR = 1e-3              # base learning rate (LOTR: 1e-3)
_C.TRAIN.WD = 0.0               # weight decay
_C.TRAIN.MOMENTUM = 0.9         # sgd only
_C.TRAIN.LAMB_LOWER_BOUND = -1.0    # LAMB trust-ratio lower bound (mxnet lower_bound; <0 = none)
_C.TRAIN.LAMB_UPPER_BOUND = -1.0    # LAMB trust-ratio upper bound (<0 = none)
_C.TRAIN.LAMB_EXCLUDE_SMALL = False # no layer-wise adaptation (plain Adam step) for queries, pos-enc, biases and norms
_C.TRAIN.EPOCHS = 100           # LOTR: 100
_C.TRAIN.LR_STEPS = [50, 75]    # epochs where the lr is multiplied by LR_FACTOR (LOTR: 50, 75); a fractional epoch (1.5) steps mid-epoch
_C.TRAIN.LR_SCHEDULE = "step"   # step: LR_STEPS x LR_FACTOR (LOTR Sec. IV-C) | cosine: half-cosine from LR to 0 over EPOCHS (SGDR without restarts; LR_STEPS ignored; a resume with another EPOCHS follows the new curve)
_C.TRAIN.LR_FACTOR = 0.1         # lr multiplier at each of LR_STEPS (LOTR: 0.1)
_C.TRAIN.WARMUP_EPOCHS = 0.0    # linear warm-up from 0 (paper: none)
_C.TRAIN.BATCH_SIZE = 32        # total over devices (LOTR: 32)
_C.TRAIN.CLIP_GRAD = 0.0        # global gradient-norm clip (0 = off)
_C.TRAIN.VAL_EVERY = 1          # validate every N epochs (0 = never)
_C.TRAIN.LOG_EVERY = 10         # log the training loss every N steps
_C.TRAIN.MAX_STEPS = 0          # stop after this many steps in total (0 = no limit; smoke runs)
_C.TRAIN.DIVERGENCE_FACTOR = 100.0   # stop (TrainingDiverged, nothing saved) when a step loss exceeds this multiple of the running median (0 = non-finite only)
_C.TRAIN.DIVERGENCE_WINDOW = 100     # step losses in that running median
_C.TRAIN.DIVERGENCE_VAL_FACTOR = 1000.0  # stop when val NME exceeds this multiple of the mean-shape baseline (floored at 1%); an untrained LOTR scores ~50x (0 = non-finite only)
_C.TRAIN.HYBRIDIZE = True       # hybridize the network for speed

# ----------------------------------------------------------------------------------------- testing
_C.TEST = CN()
_C.TEST.FLIP = False            # flip test: average the prediction and the un-mirrored prediction of the mirrored crop
_C.TEST.BATCH_SIZE = 32        # evaluation batch size
_C.TEST.GRID_IMAGES = 20        # faces in the prediction grid PNG


def get_defaults():
    """A fresh, mutable copy of the defaults."""
    return _C.clone()
