"""Training loop: data-parallel Gluon training with checkpoints, resume, JSON-lines logs and validation.

Defaults follow LOTR IV-C: LAMB, lr 1e-3, batch 32, 100 epochs, lr x0.1 at epochs 50 and 75.

Files in the run folder (``output/<dataset>/<cfg-name>/``):
- ``config.yaml``: the frozen configuration of the run;
- ``log.jsonl``: one JSON object per line (``{"type": "train", ...}``, ``{"type": "val", ...}``), each appended
  with a single ``write`` so that a kill leaves at most one partial last line, which :func:`read_log` skips;
- ``checkpoint_last.params`` / ``.states`` / ``.json``: weights, optimiser state and progress after the last
  finished epoch, written atomically (temporary file + ``os.replace``); the ``.json`` also holds the random
  state (Python ``random``, ``numpy.random``, the augmenter's generator) and the recent step losses of the
  divergence check, so that a resumed run continues exactly as an uninterrupted one;
- ``model_best.params`` (+ ``.json``): the weights with the lowest validation NME so far;
- ``loss_curve.png``, ``val_curve.png``.

Reliability rules:

- A run folder that already holds a run is never overwritten: without ``resume`` the trainer raises
  :class:`RunFolderError` before writing anything; ``resume`` without a checkpoint raises it too; ``config.yaml``
  is written only after the resume succeeded.
- One training per run folder: :meth:`Trainer.fit` holds the folder's lock (:mod:`lotr_gluon.runlock`); a second
  process training into it gets :class:`lotr_gluon.runlock.RunFolderBusy` before anything is read or written.
- Divergence: a non-finite step loss, or one above ``TRAIN.DIVERGENCE_FACTOR`` times the median of the last
  ``TRAIN.DIVERGENCE_WINDOW`` step losses, or a validation NME that is non-finite or above
  ``TRAIN.DIVERGENCE_VAL_FACTOR`` times the mean-shape baseline, raises :class:`TrainingDiverged` before
  anything is saved, so ``checkpoint_last.*`` and ``model_best.*`` stay those of the last good epoch.
- Random state: MXNet cannot export its generator state, so it is re-seeded from ``(SEED, epoch)`` at the start
  of every epoch (dropout); Python's and NumPy's states (data order) and the augmenter's are saved in the
  checkpoint and restored by :meth:`Trainer.resume`. Exact equality needs ``WORKERS 0`` (forked workers
  re-seed the augmenter from their process id).
"""
import json
import math
import os
import pickle
import random
import signal
import threading
import time
import warnings
from contextlib import contextmanager

import numpy as np
import mxnet as mx
from mxnet import autograd, gluon

from .build import build, build_dataset, build_optimizer, build_scheme, contexts, load_params, needs_anchors
from .config import run_dir
from .data.dataset import mean_shape
from .errors import DivergenceError, Interrupted, RunFolderError
from .files import append_line, atomic_text, atomic_write, atomic_write_all, json_writer, writing
from .evaluate import evaluate_dataset, mean_shape_baseline
from .runlock import run_lock
from .vis import plot_loss_curves

__all__ = ["Trainer", "TrainingDiverged", "RunFolderError", "atomic_save_params", "lr_at", "read_log",
           "check_run_folder", "RUN_FILES"]

#: Files whose presence makes a folder a run folder (see :func:`check_run_folder`).
RUN_FILES = ("config.yaml", "log.jsonl", "checkpoint_last.json", "checkpoint_last.params",
             "checkpoint_last.states", "model_best.params", "model_best.json")


class TrainingDiverged(DivergenceError, RuntimeError):
    """The loss became non-finite or exploded, or validation became non-finite or absurd. The last good
    checkpoint and best model on disk are kept untouched."""


def check_run_folder(out_dir, resume):
    """Check that a training may start (``resume=False``) or continue (``resume=True``) in ``out_dir``.

    Parameters
    ----------
    out_dir : str
        Run folder (may not exist yet).
    resume : bool

    Raises
    ------
    RunFolderError
        ``resume=False`` and the folder already holds a run (any of :data:`RUN_FILES`): the message says to use
        ``--resume`` or a new ``--out``. ``resume=True`` and the folder has no complete checkpoint
        (``checkpoint_last.json``, ``.params``, ``.states``).
    """
    present = [f for f in RUN_FILES if os.path.isfile(os.path.join(out_dir, f))]
    if not resume:
        if present:
            raise RunFolderError(
                "%s already holds a run (%s); continue it with --resume, or train into a new folder with "
                "--out DIR" % (out_dir, ", ".join(present)))
        return
    missing = [f for f in ("checkpoint_last.json", "checkpoint_last.params", "checkpoint_last.states")
               if f not in present]
    if missing:
        raise RunFolderError(
            "cannot resume: %s has no checkpoint to continue from (missing %s); start a new run without --resume "
            "%s" % (out_dir, ", ".join(missing),
                    "in a new --out folder" if present else "(the folder is empty)"))


def _read_states(states_file):
    """``(states, optimizer)`` of a ``.states`` file (``gluon.Trainer.save_states``; optimizer None when the
    pickle holds the states alone)."""
    try:
        with open(states_file, "rb") as f:
            saved = pickle.loads(f.read())
    except Exception as e:  # noqa: BLE001 - any unpickling failure means an unusable file
        raise RunFolderError("cannot resume: the optimiser state %s is unreadable (%s)"
                             % (states_file, type(e).__name__)) from None
    return saved if isinstance(saved, tuple) and len(saved) == 2 else (saved, None)


def check_resume_optimizer(states_file, opt_name, opt_params):
    """Check that a checkpoint's optimiser state was written by the optimiser the config asks for now.

    ``gluon.Trainer.load_states`` silently replaces the trainer's optimiser by the one pickled in the states
    file, so a resume with another ``TRAIN.OPTIMIZER`` (or weight decay, momentum, LAMB bounds) would go on with
    the old one. The learning rate is not compared (the schedule sets it every step).

    Parameters
    ----------
    states_file : str
        ``checkpoint_last.states`` (``Trainer.save_states``: a pickle of ``(states, optimizer)``).
    opt_name, opt_params : str, dict
        :func:`lotr_gluon.build.build_optimizer` of the current config.

    Raises
    ------
    RunFolderError
        The states file holds another optimiser class or other hyper-parameters (the message names both), or
        cannot be read.
    """
    saved_opt = _read_states(states_file)[1]
    if saved_opt is None:
        return
    wanted = mx.optimizer.Optimizer.opt_registry.get(opt_name.lower())
    diffs = []
    if wanted is not None and type(saved_opt) is not wanted:
        diffs.append("optimiser %s, the config now %s (TRAIN.OPTIMIZER)" % (type(saved_opt).__name__.lower(),
                                                                             opt_name))
    else:
        for k, v in sorted(opt_params.items()):
            if k == "learning_rate" or not hasattr(saved_opt, k):
                continue
            old = getattr(saved_opt, k)
            if isinstance(v, (int, float)) and isinstance(old, (int, float)) and not math.isclose(old, v, rel_tol=1e-9):
                diffs.append("%s %g, the config now %g" % (k, old, v))
    if diffs:
        raise RunFolderError("cannot resume %s: its checkpoint was trained with %s. Resume with the run's "
                             "settings (its config.yaml) or train into a new --out"
                             % (os.path.dirname(os.path.abspath(states_file)), "; ".join(diffs)))


def _state_arrays(state):
    """The NDArrays of one parameter's optimiser state (None, an NDArray, or nested tuples / lists of them)."""
    if isinstance(state, mx.nd.NDArray):
        return [state]
    if isinstance(state, (tuple, list)):
        return [a for s in state for a in _state_arrays(s)]
    return []


def structural_names(net, params):
    """The structural names (``backbone.features.0.weight``, as ``save_parameters`` writes them) of ``params``,
    parameters of ``net``, in their order; a parameter outside ``net`` keeps its prefixed name."""
    names = {id(p): k for k, p in net._collect_params_with_prefix().items()}
    return [names.get(id(p), p.name) for p in params]


def check_optimizer_states(states_file, param_names, param_shapes, saved_names):
    """Check that a checkpoint's optimiser states belong, index by index, to this trainer's parameters.

    ``gluon.Trainer`` keeps one state per parameter *index*; a states file of a build that names, orders or
    shapes the parameters otherwise would hand the states to the wrong parameters.

    Parameters
    ----------
    states_file : str
        ``checkpoint_last.states``.
    param_names, param_shapes : list of str, list of tuple
        Structural name and shape of the trainer's parameters, in its index order.
    saved_names : list of str
        The ``param_order`` stored in ``checkpoint_last.json`` (structural names in the writer's index order).

    Raises
    ------
    RunFolderError
        One line naming the first difference: another parameter at an index, or a state of another shape than
        its parameter. Nothing is changed.
    """
    where = os.path.dirname(os.path.abspath(states_file))
    if list(saved_names) != list(param_names):
        i = next((i for i, (a, b) in enumerate(zip(saved_names, param_names)) if a != b),
                 min(len(saved_names), len(param_names)))
        saved = saved_names[i] if i < len(saved_names) else "(none)"
        now = param_names[i] if i < len(param_names) else "(none)"
        raise RunFolderError("cannot resume %s: optimiser parameter %d is %s in the checkpoint but %s in this "
                             "model (%d vs %d parameters); train into a new --out"
                             % (where, i, saved, now, len(saved_names), len(param_names)))
    states = _read_states(states_file)[0]
    for k, v in sorted(states.items()):
        want = tuple(param_shapes[k]) if k < len(param_shapes) else None
        if want is not None and 0 in want:  # shape not inferred yet: nothing to compare
            continue
        for a in _state_arrays(v):
            if want is None or tuple(a.shape) != want:
                raise RunFolderError(
                    "cannot resume %s: optimiser state %d has shape %s but parameter %d of this model is %s %s; "
                    "train into a new --out"
                    % (where, k, tuple(a.shape), k, param_names[k] if want is not None else "(none)", want))


#: what ``checkpoint_last.json`` holds (:meth:`Trainer.save_checkpoint`); a resume needs every key
CHECKPOINT_KEYS = ("epoch", "step", "best_nme", "seed", "loss_history", "rng", "param_order")

#: the end of the message of a failed write in a run folder
RESUME_HINT = "the last complete checkpoint is kept: make room or fix the folder, then continue with --resume"


def atomic_save_params(net, path):
    """``net.save_parameters`` through a temporary file and ``os.replace`` (never a half-written file)."""
    atomic_write(path, net.save_parameters, RESUME_HINT)


def lr_at(epoch_float, base_lr, steps, factor, warmup_epochs=0.0, schedule="step", epochs=None):
    """Learning rate at ``epoch_float`` (epochs from 0, fractional), with optional linear warm-up.

    Parameters
    ----------
    epoch_float : float
        Training progress in epochs.
    base_lr : float
        Peak learning rate.
    steps, factor : list of float, float
        ``schedule='step'``: the lr is multiplied by ``factor`` at each epoch of ``steps`` (LOTR Sec. IV-C).
    warmup_epochs : float
        Linear warm-up from 0 over this many epochs (0 = none), multiplied onto either schedule.
    schedule : {'step', 'cosine'}
        'cosine': ``base_lr * (1 + cos(pi * t / epochs)) / 2`` (Loshchilov and Hutter, SGDR, without restarts),
        from ``base_lr`` at epoch 0 to 0 at ``epochs``; ``steps`` and ``factor`` are ignored.
    epochs : float
        Length of the cosine schedule (required for 'cosine').

    Raises
    ------
    ValueError
        Unknown schedule, or 'cosine' without a positive ``epochs``.
    """
    if schedule == "step":
        lr = base_lr * factor ** sum(1 for s in steps if epoch_float >= s)
    elif schedule == "cosine":
        if not epochs or epochs <= 0:
            raise ValueError("the cosine schedule needs the number of epochs, got %r" % (epochs,))
        t = min(max(epoch_float / float(epochs), 0.0), 1.0)
        lr = base_lr * 0.5 * (1.0 + math.cos(math.pi * t))
    else:
        raise ValueError("unknown lr schedule %r (step | cosine)" % (schedule,))
    if warmup_epochs > 0 and epoch_float < warmup_epochs:
        lr *= (epoch_float + 1e-3) / warmup_epochs
    return lr


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    mx.random.seed(seed)


def _epoch_seed(seed, epoch):
    """MXNet's seed for ``epoch`` (MXNet cannot save its generator state; re-seeding makes resume exact)."""
    return (int(seed) * 1000003 + 7919 * (int(epoch) + 1)) % (2 ** 31 - 1)


def _rng_state(augmenter=None):
    """JSON-serialisable state of Python's and NumPy's global generators and of ``augmenter.rng``."""
    py = random.getstate()
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    st = {"python": [py[0], list(py[1]), py[2]],
          "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(gauss)]}
    rng = getattr(augmenter, "rng", None)
    if rng is not None and hasattr(rng, "bit_generator"):
        st["augmenter"] = rng.bit_generator.state
    return st


def _set_rng_state(st, augmenter=None):
    """Inverse of :func:`_rng_state`."""
    v, keys, gauss = st["python"]
    random.setstate((v, tuple(keys), gauss))
    name, keys, pos, has_gauss, gauss = st["numpy"]
    np.random.set_state((name, np.array(keys, np.uint32), pos, has_gauss, gauss))
    rng = getattr(augmenter, "rng", None)
    if "augmenter" in st and rng is not None and hasattr(rng, "bit_generator"):
        rng.bit_generator.state = st["augmenter"]


class Trainer:
    """Train the model of a config.

    Parameters
    ----------
    cfg : CfgNode
        Frozen configuration.
    out_dir : str or None
        Run folder (default :func:`lotr_gluon.config.run_dir`).
    progress : bool
        Show tqdm bars.
    resume : bool or None
        When given, the run folder is checked (:func:`check_run_folder`) before any data is loaded, and
        :meth:`fit` uses it as its default. None: the check happens in :meth:`fit`.

    Raises
    ------
    RunFolderError
        See :func:`check_run_folder` (nothing is written to the folder).

    Nothing is written to the run folder before :meth:`fit` has checked it (and, with ``resume``, loaded the
    checkpoint).
    """

    def __init__(self, cfg, out_dir=None, progress=True, resume=None):
        self.cfg = cfg
        self.out_dir = out_dir or run_dir(cfg)
        self.progress = progress
        self._resume_default = resume
        self._stop_signal = None  # set by SIGTERM / SIGINT during fit()
        if resume is not None:
            check_run_folder(self.out_dir, resume)
        os.makedirs(self.out_dir, exist_ok=True)
        seed_everything(cfg.SEED)
        self.ctx = contexts(cfg)
        self.scheme = build_scheme(cfg)
        self.train_set = build_dataset(cfg, "train", train=True)
        self.val_set = build_dataset(cfg, "val") if cfg.DATA.VAL_SPLIT and cfg.TRAIN.VAL_EVERY > 0 else None
        self.mean_shape = mean_shape(self.train_set)
        # the network, its training loss and its output -> landmarks step (lotr_gluon.build.build)
        self.net, self.criterion, self.post = build(cfg, anchors=self.mean_shape if needs_anchors(cfg) else None,
                                                    ctx=self.ctx)
        if cfg.TRAIN.HYBRIDIZE:
            self.net.hybridize(static_alloc=True)
            self.criterion.hybridize()
        opt_name, opt_params = build_optimizer(cfg)
        kv = cfg.KVSTORE if len(self.ctx) > 1 else None
        self.trainer = gluon.Trainer(self.net.collect_params(), opt_name, opt_params, kvstore=kv)
        self.epoch = 0  # next epoch to run
        self.step = 0
        self.best_nme = float("inf")
        self.loss_history = []  # recent step losses (at most TRAIN.DIVERGENCE_WINDOW) for the divergence check
        self.baseline_nme = None  # mean-shape baseline NME on the validation set (set by fit)

    # ------------------------------------------------------------------ checkpoints
    def _ckpt(self, name):
        return os.path.join(self.out_dir, name)

    def save_checkpoint(self):
        """Write ``checkpoint_last.params`` / ``.states`` / ``.json`` together (:func:`atomic_write_all`: all
        three of this epoch, or, when a write fails, all three of the previous one)."""
        meta = {"epoch": self.epoch, "step": self.step, "best_nme": self.best_nme, "seed": self.cfg.SEED,
                "loss_history": self.loss_history, "rng": _rng_state(self.train_set.augmenter),
                "param_order": self._param_order()[0]}
        atomic_write_all([(self._ckpt("checkpoint_last.params"), self.net.save_parameters),
                          (self._ckpt("checkpoint_last.states"), self.trainer.save_states),
                          (self._ckpt("checkpoint_last.json"), json_writer(meta))], RESUME_HINT)

    def _param_order(self):
        """Structural names and shapes of the optimiser's parameters in its index order (gluon.Trainer sorts
        them by prefixed name; the ``.states`` file holds one state per index)."""
        params = self.trainer._params
        return structural_names(self.net, params), [tuple(p.shape) for p in params]

    def resume(self):
        """Load ``checkpoint_last.*`` of the run folder: weights, optimiser state, progress, random state.

        Step records of the interrupted epoch (``train`` / ``epoch`` / ``val`` records after the checkpoint's
        step) and a partial last line are dropped from ``log.jsonl``, so that the log reads as one run; the
        ``resume`` record says how many were dropped.

        Returns
        -------
        True

        Raises
        ------
        RunFolderError
            No complete checkpoint in the run folder, an unreadable ``checkpoint_last.json``, another
            optimiser than the checkpoint's, or optimiser states that do not fit this model's parameters
            (:func:`check_optimizer_states`).
        lotr_gluon.build.ParamsFileError
            ``checkpoint_last.params`` is unreadable or belongs to another architecture.

        Nothing in the run folder changes when this raises.
        """
        check_run_folder(self.out_dir, True)
        meta = self._ckpt("checkpoint_last.json")
        try:
            with open(meta) as f:
                state = json.load(f)
        except (OSError, ValueError) as e:
            raise RunFolderError("cannot resume: %s is unreadable (%s)" % (meta, e)) from None
        missing = [k for k in CHECKPOINT_KEYS if k not in state]
        if missing:
            raise RunFolderError("cannot resume %s: %s lacks %s (a checkpoint of an older build); train into a new "
                                 "--out" % (self.out_dir, meta, ", ".join(missing)))
        check_resume_optimizer(self._ckpt("checkpoint_last.states"), *build_optimizer(self.cfg))
        # the weights (checked against this architecture: ParamsFileError names what does not match)
        load_params(self.net, self._ckpt("checkpoint_last.params"), ctx=self.ctx,
                    cfg_name=getattr(self.cfg, "CFG_NAME", None))
        states_file = self._ckpt("checkpoint_last.states")
        check_optimizer_states(states_file, *self._param_order(), saved_names=state["param_order"])
        self.trainer.load_states(states_file)
        self.epoch, self.step, self.best_nme = state["epoch"], state["step"], state["best_nme"]
        self.loss_history = list(state["loss_history"])
        _set_rng_state(state["rng"], self.train_set.augmenter)
        dropped = self._drop_records_after(self.step)
        self._log({"type": "resume", "epoch": self.epoch, "step": self.step, "dropped_records": dropped})
        return True

    # ------------------------------------------------------------------ logging
    def _log(self, record):
        """Append one record to ``log.jsonl`` as one ``write`` of a whole line (no partial line unless killed
        inside that system call)."""
        line = (json.dumps(dict(record, time=time.time())) + "\n").encode("utf-8")
        append_line(self._ckpt("log.jsonl"), line, RESUME_HINT)

    def _drop_records_after(self, step):
        """Rewrite ``log.jsonl`` (atomically) without the step records after ``step`` (an interrupted epoch)
        and without undecodable lines; returns how many lines were dropped."""
        path = self._ckpt("log.jsonl")
        if not os.path.isfile(path):
            return 0
        keep, dropped = [], 0
        with open(path, "rb") as f:
            for raw in f:
                if not raw.strip():
                    continue
                try:
                    r = json.loads(raw)
                except ValueError:
                    dropped += 1
                    continue
                if r.get("type") in ("train", "epoch", "val") and r.get("step", 0) > step:
                    dropped += 1
                    continue
                keep.append(raw if raw.endswith(b"\n") else raw + b"\n")
        if dropped:
            def w(tmp):
                with open(tmp, "wb") as f:
                    f.writelines(keep)
            atomic_write(path, w, RESUME_HINT)
        return dropped

    # ------------------------------------------------------------------ divergence
    def _check_loss(self, loss, step):
        """Raise :class:`TrainingDiverged` when a step loss is non-finite or above ``TRAIN.DIVERGENCE_FACTOR``
        times the median of the last ``TRAIN.DIVERGENCE_WINDOW`` accepted step losses; else record it.

        Called on every step loss when the training loop fetches it to the host (in batches of
        ``TRAIN.LOG_EVERY`` steps and at the end of the epoch), always before any checkpoint is written."""
        t = self.cfg.TRAIN
        why = None
        if not math.isfinite(loss):
            why = "loss is %s" % loss
        elif t.DIVERGENCE_FACTOR > 0 and self.loss_history:
            med = float(np.median(self.loss_history))
            if med > 0 and loss > t.DIVERGENCE_FACTOR * med:
                why = ("loss %.4g is %.3g times the median %.4g of the last %d steps (TRAIN.DIVERGENCE_FACTOR %g)"
                       % (loss, loss / med, med, len(self.loss_history), t.DIVERGENCE_FACTOR))
        if why is not None:
            self._diverged(why, step, self.epoch + 1, loss=loss)
        self.loss_history.append(float(loss))
        del self.loss_history[:-max(1, t.DIVERGENCE_WINDOW)]

    def _check_val(self, metrics):
        """Raise :class:`TrainingDiverged` when the validation NME is non-finite or absurd: above
        ``TRAIN.DIVERGENCE_VAL_FACTOR`` times the mean-shape baseline NME (a baseline below 1 % counts as 1 %)."""
        nme = metrics["nme"]
        f = self.cfg.TRAIN.DIVERGENCE_VAL_FACTOR
        if not math.isfinite(nme):
            self._diverged("validation NME is %s" % nme, self.step, self.epoch, val_nme=nme)
        if f > 0 and self.baseline_nme is not None:
            limit = f * max(self.baseline_nme, 0.01)
            if nme > limit:
                self._diverged("validation NME %.4g is above %g times the mean-shape baseline %.4g "
                               "(TRAIN.DIVERGENCE_VAL_FACTOR)" % (nme, f, self.baseline_nme), self.step,
                               self.epoch, val_nme=nme)

    def _check_weights(self, epoch):
        """Raise :class:`TrainingDiverged` when the weights are non-finite or so large that their squared L2 norm
        overflows float32 (one host synchronisation; run before a checkpoint is written)."""
        sq = [(p.data(self.ctx[0]).astype("float32") ** 2).sum() for p in self.net.collect_params().values()
              if p._data is not None]
        if not sq:
            return
        total = float(mx.nd.add_n(*sq).asscalar()) if len(sq) > 1 else float(sq[0].asscalar())
        if not math.isfinite(total):
            self._diverged("the weights are non-finite or overflow (squared L2 norm %s)" % total, self.step, epoch)

    def _diverged(self, why, step, epoch, **extra):
        """Log a ``diverged`` record and raise :class:`TrainingDiverged` (``epoch``: 1-based, the one running)."""
        self._log(dict({"type": "diverged", "epoch": epoch, "step": step, "reason": why}, **extra))
        last = self._ckpt("checkpoint_last.params")
        raise TrainingDiverged(
            "%s at step %d (epoch %d); stopped without saving. The last good checkpoint is %s. Lower TRAIN.LR "
            "or set TRAIN.CLIP_GRAD, then continue with --resume." % (
                why, step, epoch, last if os.path.isfile(last) else "none (no epoch finished)"))

    # ------------------------------------------------------------------ training
    def _loader(self):
        """The training DataLoader. Items are ``(image, landmarks)``, plus the targets the criterion needs
        (``criterion.target_codec``): encoded in the pipeline (:meth:`lotr_gluon.build.Criterion.wrap_dataset`)."""
        cfg = self.cfg
        dataset = self.criterion.wrap_dataset(self.train_set)
        return gluon.data.DataLoader(dataset, batch_size=cfg.TRAIN.BATCH_SIZE, shuffle=True,
                                     last_batch="rollover" if len(self.train_set) > cfg.TRAIN.BATCH_SIZE else "keep",
                                     num_workers=cfg.WORKERS)

    def _batch_loss(self, data, label, target=None):
        """Per-sample loss (B,); with the auxiliary heatmap head also its part, else None
        (:class:`lotr_gluon.build.Criterion`).

        ``target``: the encoded targets from the loader; None encodes them here from ``label`` (a host
        synchronisation and numpy work on the step's thread)."""
        return self.criterion(self.net(data), label, target)

    def train_epoch(self, steps_per_epoch):
        """One pass over the training set. Returns (mean loss, images/s, mean auxiliary heatmap loss or None)."""
        cfg = self.cfg
        losses = []
        it = self._loader()
        bar = None
        if self.progress:
            from tqdm import tqdm
            bar = tqdm(total=steps_per_epoch, desc="epoch %d/%d" % (self.epoch + 1, cfg.TRAIN.EPOCHS),
                       leave=False, dynamic_ncols=True)
        t0 = time.time()
        seen = 0
        aux_losses = []
        has_aux = self.criterion.aux_loss is not None
        self.criterion.training_outputs(self.net, True)
        # Per-step loss sums stay on the device and are fetched in one host synchronisation per LOG_EVERY steps
        # and at the end of the epoch: MXNet's engine keeps computing while the main thread loads
        # the next batch. One fetch serves the log, the progress bar and the divergence check.
        pending = []  # (step, batch size, [loss sum per context], [aux sum per context] or None)

        def fetch():
            if not pending:
                return
            flat = [v for _, _, ls_, as_ in pending for v in ls_ + (as_ or [])]
            host = mx.nd.concat(*[v.reshape((1,)).as_in_context(self.ctx[0]) for v in flat], dim=0).asnumpy()
            k = 0
            for step, bs, ls_, as_ in pending:
                # same float arithmetic as the former per-step asscalar() (float32 sums, float64 mean)
                loss = sum(float(host[k + j]) for j in range(len(ls_))) / bs
                k += len(ls_)
                if as_ is not None:
                    aux_losses.append(sum(float(host[k + j]) for j in range(len(as_))) / bs)
                    k += len(as_)
                self._check_loss(loss, step)  # non-finite or exploding: TrainingDiverged, nothing saved
                losses.append(loss)
            del pending[:]

        for i, batch in enumerate(it):
            if self._stop_signal is not None:
                self._interrupted()
            if cfg.TRAIN.MAX_STEPS and self.step >= cfg.TRAIN.MAX_STEPS:
                break
            data, label = batch[0], batch[1]
            lr = lr_at(self.epoch + i / max(steps_per_epoch, 1), cfg.TRAIN.LR, cfg.TRAIN.LR_STEPS,
                       cfg.TRAIN.LR_FACTOR, cfg.TRAIN.WARMUP_EPOCHS, cfg.TRAIN.LR_SCHEDULE, cfg.TRAIN.EPOCHS)
            self.trainer.set_learning_rate(lr)
            datas = gluon.utils.split_and_load(data, self.ctx, even_split=False)
            labels = gluon.utils.split_and_load(label, self.ctx, even_split=False)
            targets = (gluon.utils.split_and_load(batch[2], self.ctx, even_split=False) if len(batch) > 2
                       else [None] * len(datas))
            with autograd.record():
                parts = [self._batch_loss(x, y, t) for x, y, t in zip(datas, labels, targets)]
            ls = [p[0] for p in parts]
            autograd.backward(ls)
            pending.append((self.step + 1, data.shape[0], [l.sum() for l in ls],
                            [p[1].sum() for p in parts] if has_aux else None))
            if cfg.TRAIN.CLIP_GRAD > 0:
                grads = [p.grad(c) for p in self.net.collect_params().values() if p.grad_req != "null"
                         for c in self.ctx]
                gluon.utils.clip_global_norm(grads, cfg.TRAIN.CLIP_GRAD * len(self.ctx))
            self.trainer.step(data.shape[0])
            self.step += 1
            seen += data.shape[0]
            if self.step % cfg.TRAIN.LOG_EVERY == 0:
                fetch()
                loss = losses[-1]
                rec = {"type": "train", "epoch": self.epoch + 1, "step": self.step, "loss": loss, "lr": lr,
                       "images_per_s": seen / max(time.time() - t0, 1e-9)}
                if aux_losses:
                    rec["loss_aux_heatmap"] = aux_losses[-1]
                self._log(rec)
                if bar:
                    bar.set_postfix(loss="%.4g" % loss, lr="%.1e" % lr)
            if bar:
                bar.update(1)
        fetch()
        if bar:
            bar.close()
        aux = None
        self.criterion.training_outputs(self.net, False)
        if has_aux:
            aux = float(np.mean(aux_losses)) if aux_losses else float("nan")
        return float(np.mean(losses)) if losses else float("nan"), seen / max(time.time() - t0, 1e-9), aux

    def validate(self, flip=False):
        metrics, nmes, _, _ = evaluate_dataset(self.net, self.val_set, self.scheme, self.ctx[0],
                                               self.cfg.TEST.BATCH_SIZE, flip=flip, post=self.post)
        return metrics, nmes

    def fit(self, resume=None):
        """Run (or continue) the schedule. Returns the final validation metrics (or None).

        Parameters
        ----------
        resume : bool or None
            Continue from the run folder's checkpoint; None: the ``resume`` given to the constructor (False if
            none).

        Raises
        ------
        RunFolderError
            A new run into a folder that holds one, or a resume without a checkpoint (nothing written).
        lotr_gluon.runlock.RunFolderBusy
            Another process trains (or evaluates) in the run folder (nothing read or written).
        TrainingDiverged
            See :meth:`_check_loss` and :meth:`_check_val`; the last good checkpoint is kept.

        The run folder is locked (:func:`lotr_gluon.runlock.run_lock`) while this runs.
        """
        with run_lock(self.out_dir), self._stop_on_signals():
            return self._fit(resume)

    @contextmanager
    def _stop_on_signals(self):
        """SIGTERM and SIGINT stop the training at the next step (:meth:`_interrupted`), never inside a checkpoint
        write. Only in the main thread (Python delivers signals there); the previous handlers come back after."""
        self._stop_signal = None
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def stop(signum, frame):
            self._stop_signal = signum
        old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)

    def _interrupted(self):
        name = signal.Signals(self._stop_signal).name
        raise Interrupted("training stopped by %s during epoch %d (step %d); %s holds the checkpoint of epoch %d: "
                          "continue with --resume" % (name, self.epoch + 1, self.step, self.out_dir, self.epoch),
                          self._stop_signal)

    def _fit(self, resume):
        cfg = self.cfg
        if resume is None:
            resume = bool(self._resume_default)
        check_run_folder(self.out_dir, resume)
        steps_per_epoch = max(1, len(self.train_set) // cfg.TRAIN.BATCH_SIZE)
        base = None
        if self.val_set is not None:
            base, _ = mean_shape_baseline(self.mean_shape, self.val_set, self.scheme)
            self.baseline_nme = base["nme"]
        if resume:
            self.resume()
        # only now (checks passed, checkpoint loaded) is the folder written
        atomic_text(cfg.dump(), self._ckpt("config.yaml"), RESUME_HINT)
        if base is not None and self.epoch == 0:
            self._log(dict({"type": "mean_shape_baseline"}, **base))
        metrics = None
        while self.epoch < cfg.TRAIN.EPOCHS:
            if cfg.TRAIN.MAX_STEPS and self.step >= cfg.TRAIN.MAX_STEPS:
                break
            t0 = time.time()
            mx.random.seed(_epoch_seed(cfg.SEED, self.epoch))  # dropout etc.; see the module notes
            loss, ips, aux_loss = self.train_epoch(steps_per_epoch)
            if not math.isfinite(loss):  # every step loss was checked when fetched; this guards the mean
                self._diverged("epoch mean loss is %s" % loss, self.step, self.epoch + 1, loss=loss)
            self._check_weights(self.epoch + 1)  # a last update to NaN weights is seen by no loss of this epoch
            self.epoch += 1
            rec = {"type": "epoch", "epoch": self.epoch, "step": self.step, "loss": loss, "images_per_s": ips,
                   "seconds": time.time() - t0}
            if aux_loss is not None:
                rec["loss_aux_heatmap"] = aux_loss
            last = self.epoch >= cfg.TRAIN.EPOCHS or (cfg.TRAIN.MAX_STEPS and self.step >= cfg.TRAIN.MAX_STEPS)
            if self.val_set is not None and (self.epoch % cfg.TRAIN.VAL_EVERY == 0 or last):
                metrics, _ = self.validate()
                self._log(dict({"type": "val", "epoch": self.epoch, "step": self.step}, **metrics))
                self._check_val(metrics)  # non-finite or absurd: TrainingDiverged before anything is saved
                rec.update(val_nme=metrics["nme"], val_auc=metrics["auc"], val_fr=metrics["fr"],
                           val_spread_px=metrics["pred_spread_px"])
                if metrics["nme"] < self.best_nme:
                    self.best_nme = metrics["nme"]
                    best = {"epoch": self.epoch, "step": self.step, **metrics}
                    atomic_write_all([(self._ckpt("model_best.params"), self.net.save_parameters),
                                      (self._ckpt("model_best.json"), json_writer(best))],
                                     RESUME_HINT)
            self._log(rec)
            self.save_checkpoint()
            # one summary line per epoch, with or without tqdm bars
            msg = "epoch %d/%d  loss %.5g  %.1f img/s" % (self.epoch, cfg.TRAIN.EPOCHS, loss, ips)
            if "val_nme" in rec:
                msg += "  val NME %.2f%%  AUC %.2f%%  FR %.2f%%" % (100 * rec["val_nme"], 100 * rec["val_auc"],
                                                                 100 * rec["val_fr"])
            print(msg, flush=True)
        if self.val_set is None or not os.path.isfile(self._ckpt("model_best.params")):
            atomic_save_params(self.net, self._ckpt("model_best.params"))
        self.plot_curves()
        return metrics

    def plot_curves(self):
        """Write loss_curve.png and val_curve.png from log.jsonl."""
        recs = read_log(self._ckpt("log.jsonl"))
        train = [(r["step"], r["loss"]) for r in recs if r.get("type") == "train"]
        val = [(r["step"], 100 * r["nme"]) for r in recs if r.get("type") == "val"]
        for series, name in (({"train loss": tuple(zip(*train))} if train else None, "loss_curve.png"),
                             ({"val NME (%)": tuple(zip(*val))} if val else None, "val_curve.png")):
            if series:
                with writing(self._ckpt(name), "the checkpoints are complete"):
                    plot_loss_curves(series, self._ckpt(name))


def read_log(path):
    """Records of a ``log.jsonl`` file (missing file: empty list).

    A line that is not valid JSON (a partial last line left by a kill during a write) is skipped with a
    warning naming the file and the line."""
    if not os.path.isfile(path):
        return []
    recs = []
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            recs.append(json.loads(line))
        except ValueError:
            warnings.warn("%s:%d: skipping a %s line that is not a whole JSON record (interrupted write?)"
                          % (path, i, "partial last" if i >= len(lines) - 1 else "corrupt"), stacklevel=2)
    return recs
