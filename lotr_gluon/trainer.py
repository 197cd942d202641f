"""Training loop: data-parallel Gluon training with checkpoints, resume, JSON-lines logs and validation.

Defaults follow LOTR IV-C: LAMB, lr 1e-3, batch 32, 100 epochs, lr x0.1 at epochs 50 and 75.

Files in the run folder (``output/<dataset>/<cfg-name>/``):
- ``config.yaml``: the frozen configuration of the run;
- ``log.jsonl``: one JSON object per line (``{"type": "train", ...}``, ``{"type": "val", ...}``);
- ``checkpoint_last.params`` / ``.states`` / ``.json``: weights, optimiser state and progress after the last
  finished epoch, written atomically (temporary file + ``os.replace``);
- ``model_best.params`` (+ ``.json``): the weights with the lowest validation NME so far;
- ``loss_curve.png``, ``val_curve.png``.
"""
import json
import math
import os
import random
import time

import numpy as np
import mxnet as mx
from mxnet import autograd, gluon

from .build import build_aux_heatmap, build_dataset, build_loss, build_optimizer, build_scheme, contexts
from .config import run_dir
from .data.dataset import mean_shape
from .errors import DivergenceError, RunFolderError
from .evaluate import evaluate_dataset, mean_shape_baseline
from .models import build_model

__all__ = ["Trainer", "TrainingDiverged", "atomic_save_params", "lr_at"]


class TrainingDiverged(DivergenceError, RuntimeError):
    """The loss became NaN or infinite. The last good checkpoint on disk is kept untouched."""


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
    import pickle
    try:
        with open(states_file, "rb") as f:
            saved = pickle.loads(f.read())
    except Exception as e:  # noqa: BLE001 - any unpickling failure means an unusable file
        raise RunFolderError("cannot resume: the optimiser state %s is unreadable (%s)"
                             % (states_file, type(e).__name__)) from None
    saved_opt = saved[1] if isinstance(saved, tuple) and len(saved) == 2 else None
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


def _atomic(path, writer):
    tmp = path + ".tmp"
    writer(tmp)
    os.replace(tmp, path)


def atomic_save_params(net, path):
    """``net.save_parameters`` through a temporary file and ``os.replace`` (never a half-written file)."""
    _atomic(path, net.save_parameters)


def _atomic_json(obj, path):
    def w(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1)
    _atomic(path, w)


def lr_at(epoch_float, base_lr, steps, factor, warmup_epochs=0.0):
    """Step schedule with optional linear warm-up. ``epoch_float`` counts epochs from 0 (fractional)."""
    lr = base_lr * factor ** sum(1 for s in steps if epoch_float >= s)
    if warmup_epochs > 0 and epoch_float < warmup_epochs:
        lr *= (epoch_float + 1e-3) / warmup_epochs
    return lr


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    mx.random.seed(seed)


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
    """

    def __init__(self, cfg, out_dir=None, progress=True):
        self.cfg = cfg
        self.out_dir = out_dir or run_dir(cfg)
        self.progress = progress
        os.makedirs(self.out_dir, exist_ok=True)
        seed_everything(cfg.SEED)
        self.ctx = contexts(cfg)
        self.scheme = build_scheme(cfg)
        self.train_set = build_dataset(cfg, "train", train=True)
        self.val_set = build_dataset(cfg, "val") if cfg.DATA.VAL_SPLIT and cfg.TRAIN.VAL_EVERY > 0 else None
        self.mean_shape = mean_shape(self.train_set)
        anchors = self.mean_shape if cfg.MODEL.ANCHORS == "mean_shape" else None
        self.net = build_model(cfg, anchors=anchors, ctx=self.ctx)
        self.is_heatmap = hasattr(self.net, "codec")
        self.loss_fn = build_loss(cfg)
        self.aux_heatmap = build_aux_heatmap(cfg, self.net)  # (codec, loss) or None
        if cfg.TRAIN.HYBRIDIZE:
            self.net.hybridize(static_alloc=True)
            self.loss_fn.hybridize()
            if self.aux_heatmap:
                self.aux_heatmap[1].hybridize()
        opt_name, opt_params = build_optimizer(cfg)
        kv = cfg.KVSTORE if len(self.ctx) > 1 else None
        self.trainer = gluon.Trainer(self.net.collect_params(), opt_name, opt_params, kvstore=kv)
        self.epoch = 0  # next epoch to run
        self.step = 0
        self.best_nme = float("inf")
        with open(os.path.join(self.out_dir, "config.yaml"), "w") as f:
            f.write(cfg.dump())

    # ------------------------------------------------------------------ checkpoints
    def _ckpt(self, name):
        return os.path.join(self.out_dir, name)

    def save_checkpoint(self):
        atomic_save_params(self.net, self._ckpt("checkpoint_last.params"))
        _atomic(self._ckpt("checkpoint_last.states"), self.trainer.save_states)
        _atomic_json({"epoch": self.epoch, "step": self.step, "best_nme": self.best_nme},
                     self._ckpt("checkpoint_last.json"))

    def resume(self):
        """Load ``checkpoint_last.*`` of the run folder; returns False when there is none."""
        meta = self._ckpt("checkpoint_last.json")
        if not os.path.isfile(meta):
            return False
        with open(meta) as f:
            state = json.load(f)
        check_resume_optimizer(self._ckpt("checkpoint_last.states"), *build_optimizer(self.cfg))
        self.net.load_parameters(self._ckpt("checkpoint_last.params"), ctx=self.ctx)
        self.trainer.load_states(self._ckpt("checkpoint_last.states"))
        self.epoch, self.step, self.best_nme = state["epoch"], state["step"], state["best_nme"]
        self._log({"type": "resume", "epoch": self.epoch, "step": self.step})
        return True

    # ------------------------------------------------------------------ logging
    def _log(self, record):
        record = dict(record, time=time.time())
        with open(self._ckpt("log.jsonl"), "a") as f:
            f.write(json.dumps(record) + "\n")

    # ------------------------------------------------------------------ training
    def _heatmap_codec(self):
        """The codec whose targets a training step needs (heatmap model or auxiliary heatmap head), or None."""
        if self.is_heatmap:
            return self.net.codec
        return self.aux_heatmap[0] if self.aux_heatmap else None

    def _loader(self):
        """The training DataLoader. Items are ``(image, landmarks)``, plus the target heatmaps when the step
        needs them: encoded in the pipeline (:class:`lotr_gluon.data.targets.WithHeatmapTargets`; issue 15)."""
        cfg = self.cfg
        dataset = self.train_set
        codec = self._heatmap_codec()
        if codec is not None:
            from .data.targets import WithHeatmapTargets
            dataset = WithHeatmapTargets(dataset, codec)
        return gluon.data.DataLoader(dataset, batch_size=cfg.TRAIN.BATCH_SIZE, shuffle=True,
                                     last_batch="rollover" if len(self.train_set) > cfg.TRAIN.BATCH_SIZE else "keep",
                                     num_workers=cfg.WORKERS)

    def _batch_loss(self, data, label, target=None):
        """Per-sample loss (B,); with the auxiliary heatmap head also its part, else None.

        ``target``: the (B, N, h, w) target heatmaps from the loader; None encodes them here from ``label``
        (a host synchronisation and numpy work on the step's thread)."""
        outs = self.net(data)
        codec = self._heatmap_codec()
        if codec is not None and target is None:
            target = mx.nd.array(codec.encode(label.asnumpy()), ctx=data.context)
        if self.is_heatmap:
            return self.loss_fn(outs, target), None
        aux = None
        if self.aux_heatmap:
            outs, heatmaps = outs
            aux = self.aux_heatmap[1](heatmaps, target)
        if getattr(self.net, "aux_outputs", False):  # deep supervision: sum over decoder layers
            loss = sum(self.loss_fn(o, label) for o in outs)
        else:
            loss = self.loss_fn(outs, label)
        return (loss, None) if aux is None else (loss + aux, aux)

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
        if self.aux_heatmap:
            self.net.set_aux_heatmap_output(True)
        # Per-step loss sums stay on the device and are fetched in one host synchronisation per LOG_EVERY steps
        # and at the end of the epoch (issue 15): MXNet's engine keeps computing while the main thread loads
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
                if not math.isfinite(loss):
                    self._log({"type": "diverged", "epoch": self.epoch, "step": step, "loss": loss})
                    raise TrainingDiverged(
                        "loss is %s at step %d (epoch %d); stopped without saving. The last good checkpoint, if "
                        "any, is %s. Lower TRAIN.LR or set TRAIN.CLIP_GRAD." % (
                            loss, step, self.epoch + 1, self._ckpt("checkpoint_last.params")))
                losses.append(loss)
            del pending[:]

        for i, batch in enumerate(it):
            if cfg.TRAIN.MAX_STEPS and self.step >= cfg.TRAIN.MAX_STEPS:
                break
            data, label = batch[0], batch[1]
            lr = lr_at(self.epoch + i / max(steps_per_epoch, 1), cfg.TRAIN.LR, cfg.TRAIN.LR_STEPS,
                       cfg.TRAIN.LR_FACTOR, cfg.TRAIN.WARMUP_EPOCHS)
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
                            [p[1].sum() for p in parts] if self.aux_heatmap else None))
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
        if self.aux_heatmap:
            self.net.set_aux_heatmap_output(False)
            aux = float(np.mean(aux_losses)) if aux_losses else float("nan")
        return float(np.mean(losses)) if losses else float("nan"), seen / max(time.time() - t0, 1e-9), aux

    def validate(self, flip=False):
        metrics, nmes, _, _ = evaluate_dataset(self.net, self.val_set, self.scheme, self.ctx[0],
                                               self.cfg.TEST.BATCH_SIZE, flip=flip)
        return metrics, nmes

    def fit(self, resume=False):
        """Run (or continue) the schedule. Returns the final validation metrics (or None)."""
        cfg = self.cfg
        if resume:
            self.resume()
        steps_per_epoch = max(1, len(self.train_set) // cfg.TRAIN.BATCH_SIZE)
        if self.val_set is not None and self.epoch == 0:
            base, _ = mean_shape_baseline(self.mean_shape, self.val_set, self.scheme)
            self._log(dict({"type": "mean_shape_baseline"}, **base))
        metrics = None
        while self.epoch < cfg.TRAIN.EPOCHS:
            if cfg.TRAIN.MAX_STEPS and self.step >= cfg.TRAIN.MAX_STEPS:
                break
            t0 = time.time()
            loss, ips, aux_loss = self.train_epoch(steps_per_epoch)
            self.epoch += 1
            rec = {"type": "epoch", "epoch": self.epoch, "step": self.step, "loss": loss, "images_per_s": ips,
                   "seconds": time.time() - t0}
            if aux_loss is not None:
                rec["loss_aux_heatmap"] = aux_loss
            last = self.epoch >= cfg.TRAIN.EPOCHS or (cfg.TRAIN.MAX_STEPS and self.step >= cfg.TRAIN.MAX_STEPS)
            if self.val_set is not None and (self.epoch % cfg.TRAIN.VAL_EVERY == 0 or last):
                metrics, _ = self.validate()
                self._log(dict({"type": "val", "epoch": self.epoch, "step": self.step}, **metrics))
                rec.update(val_nme=metrics["nme"], val_auc=metrics["auc"], val_fr=metrics["fr"],
                           val_spread_px=metrics["pred_spread_px"])
                if metrics["nme"] < self.best_nme:
                    self.best_nme = metrics["nme"]
                    atomic_save_params(self.net, self._ckpt("model_best.params"))
                    _atomic_json({"epoch": self.epoch, "step": self.step, **metrics}, self._ckpt("model_best.json"))
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
        from .vis import plot_loss_curves
        recs = read_log(self._ckpt("log.jsonl"))
        train = [(r["step"], r["loss"]) for r in recs if r.get("type") == "train"]
        val = [(r["step"], 100 * r["nme"]) for r in recs if r.get("type") == "val"]
        if train:
            plot_loss_curves({"train loss": tuple(zip(*train))}, self._ckpt("loss_curve.png"))
        if val:
            plot_loss_curves({"val NME (%)": tuple(zip(*val))}, self._ckpt("val_curve.png"))


def read_log(path):
    """Records of a ``log.jsonl`` file (missing file: empty list)."""
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
