"""Inference speed of landmark models: network and post-processing timed separately, per runtime.

What is timed
-------------
For one model, every combination of runtime x batch size x flip test gives one measurement of the
**network** part and, per heatmap decoder, one of the **decoding** part; each is the mean and (sample) std
of ``runs`` calls after ``warmup`` untimed calls (:func:`time_callable`, ``time.perf_counter``).

* Input: a fixed (B, 3, S, S) float32 batch of normalised random values, already on the device (an
  ``NDArray`` on the context, or a numpy array for onnxruntime). Image loading, alignment, normalisation
  and the host-to-device copy of the input are not timed. Weights are random (He init) unless ``params``
  is given: the time does not depend on the weight values.
* Runtimes: ``gluon`` (the Gluon block hybridized with ``static_alloc=True, static_shape=True``),
  ``symbol`` (the exported ``-symbol.json`` / ``.params`` loaded as a ``gluon.SymbolBlock``, hybridized the
  same way; :func:`lotr_gluon.export.export_symbol`), ``onnx`` (onnxruntime, all graph optimisations,
  ``threads`` intra-op threads, one inter-op thread, on a model from
  :func:`lotr_gluon.export.export_onnx` with a fixed input shape, one export per batch shape;
  CUDAExecutionProvider for a GPU context).
* **Network** = forward pass and the copy of the output to a numpy array on the host (``asnumpy()``
  then ``mx.nd.waitall()``, so MXNet's asynchronous engine has finished everything it queued).
  With the flip test the network part also builds the mirrored input: by default (``flip_mode='batch'``)
  the batch and its horizontal mirror are concatenated and run as **one batch of 2B**; with
  ``flip_mode='twice'`` the model is run twice on B images (as :func:`lotr_gluon.evaluate.predict`).
* **Decoding** = what turns the network output (numpy) into landmarks in crop pixels:
  for heatmap models the heatmap decoder (``codec.decode(heatmaps, method)``; with flip on all 2B maps)
  plus, with flip, un-mirroring the mirrored predictions
  (:func:`lotr_gluon.data.augment.flip_points` with the scheme's flip permutation) and averaging the two;
  for LOTR / CNN+FFN (coordinate regression) only the un-mirroring and averaging with flip (nothing
  without flip, apart from taking the last decoder layer of a model with auxiliary outputs): essentially
  zero.
* Per image: ``(network mean + decoding mean) / B``; images/s is its inverse.

Example (what ``tools/benchmark.py`` does per model; the size columns come from
:func:`lotr_gluon.flops.model_info`)::

    from lotr_gluon.benchmark import benchmark_model, machine_info, render_markdown
    rows = benchmark_model("experiments/datatang/lotr_m.yaml", runtimes=("onnx",), batches=(1,),
                           flips=(False,), runs=100, warmup=10)
    rows += benchmark_model("experiments/datatang/earp_mnv2_1.0_sdd.yaml", runtimes=("onnx",), batches=(1,),
                            flips=(False,), decoders=("dark",))
    print(render_markdown(rows, machine_info()))   # timing table + LOTR/Earp speed ratios

MXNet's own thread count is read from ``OMP_NUM_THREADS`` when mxnet is imported (set it before). Measure
on a quiet machine: OpenMP threads spin-wait by default, and when another process shares the cores that
can be pathological. Seen here (2 cores shared with a training job, ``OMP_NUM_THREADS=2``): the first
batch-1 graph of LOTR-M at 192 px took a steady 2.6 s per forward pass (40 ms after a batch-2 pass, or
with ``OMP_WAIT_POLICY=passive`` or ``OMP_NUM_THREADS=1``). The thread variables in effect are recorded
(:func:`machine_info`).
"""
import datetime
import gc
import os
import platform
import shutil
import subprocess
import tempfile
import time
import warnings

import numpy as np
import mxnet as mx
from . import markdown
from .build import inference_config, load_model
from .config import load_config
from .export import export_onnx, export_symbol, load_symbol
from .flops import model_info

__all__ = ["time_callable", "benchmark_model", "render_markdown", "speed_ratios", "machine_info", "parse_ctx",
           "load_benchmark_config", "RUNTIMES", "ROW_KEYS", "FLIP_MODES", "WEIGHTS_NOTE"]

RUNTIMES = ("gluon", "symbol", "onnx")
FLIP_MODES = ("batch", "twice")
#: keys of every row returned by :func:`benchmark_model`
ROW_KEYS = ("model", "cfg", "kind", "runtime", "ctx", "batch", "flip", "flip_mode", "decoder",
            "net_ms_mean", "net_ms_std", "decode_ms_mean", "decode_ms_std", "total_ms", "ms_per_image",
            "images_per_s", "runs", "warmup", "params", "params_m", "size_mb", "gmacs", "input_size",
            "weights", "threads", "max_abs_diff_vs_gluon")
WEIGHTS_NOTE = ("random initialisation unless a params file is given: inference time does not depend on "
                "the weight values")
_ENV_KEYS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MXNET_CPU_WORKER_NTHREADS",
             "MXNET_ENGINE_TYPE", "MXNET_MKLDNN_ENABLED", "MXNET_SUBGRAPH_BACKEND", "MXNET_USE_OPERATOR_TUNING",
             "OMP_WAIT_POLICY", "OMP_PROC_BIND", "KMP_AFFINITY", "KMP_BLOCKTIME", "CUDA_VISIBLE_DEVICES")


# --------------------------------------------------------------------------------------------- timing

def time_callable(fn, runs=100, warmup=10):
    """Time ``fn()``: ``warmup`` untimed calls, then ``runs`` timed calls (``time.perf_counter``).

    ``fn`` must block until its work is done (for MXNet: ``asnumpy()`` / ``mx.nd.waitall()`` inside it).

    Returns
    -------
    dict
        ``mean_ms``, ``std_ms`` (sample std, 0 for one run), ``median_ms``, ``min_ms``, ``max_ms`` and
        ``runs``.
    """
    runs, warmup = int(runs), int(warmup)
    if runs < 1 or warmup < 0:
        raise ValueError("runs must be >= 1 and warmup >= 0, got runs=%r warmup=%r" % (runs, warmup))
    for _ in range(warmup):
        fn()
    times = np.empty(runs, np.float64)
    for i in range(runs):
        t0 = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t0
    times *= 1e3
    return {"mean_ms": float(times.mean()), "std_ms": float(times.std(ddof=1)) if runs > 1 else 0.0,
            "median_ms": float(np.median(times)), "min_ms": float(times.min()), "max_ms": float(times.max()),
            "runs": runs}


# ------------------------------------------------------------------------------------------- context

def parse_ctx(ctx):
    """``'cpu'``, ``'gpu'``, ``'gpu0'``, ``'gpu:1'`` or an ``mx.Context`` -> ``mx.Context``.

    Raises
    ------
    RuntimeError
        A GPU context when MXNet sees no GPU (CPU-only build, no driver, or ``CUDA_VISIBLE_DEVICES``).
    ValueError
        Anything else.
    """
    if isinstance(ctx, mx.Context):
        c = ctx
    elif ctx is None or str(ctx).lower() == "cpu":
        return mx.cpu()
    else:
        s = str(ctx).lower().replace(":", "").replace("(", "").replace(")", "")
        if not s.startswith("gpu") or not (s[3:] == "" or s[3:].isdigit()):
            raise ValueError("ctx must be 'cpu' or 'gpuN' (e.g. gpu0), got %r" % (ctx,))
        c = mx.gpu(int(s[3:] or 0))
    if c.device_type == "gpu":
        try:
            n = mx.context.num_gpus()
        except Exception as err:  # noqa: BLE001  (CPU-only builds may raise instead of returning 0)
            raise RuntimeError("GPU context %s requested but MXNet cannot query GPUs (%s); this mxnet build "
                               "has CUDA: %s. Install the CUDA build (requirements-gpu.txt) or use --ctx cpu"
                               % (c, err, _mx_has_cuda())) from None
        if c.device_id >= n:
            raise RuntimeError("GPU context %s requested but MXNet sees %d GPU(s) (mxnet %s built with CUDA: %s). "
                               "Install the CUDA build of mxnet (requirements-gpu.txt) on a machine with a GPU, "
                               "or use --ctx cpu" % (c, n, mx.__version__, _mx_has_cuda()))
    return c


def _mx_has_cuda():
    try:
        from mxnet.runtime import Features
        return bool(Features().is_enabled("CUDA"))
    except Exception:  # noqa: BLE001
        return None


def _ort_session(onnx_path, threads, gpu_id=None):
    """onnxruntime session with all graph optimisations; CUDA provider for ``gpu_id`` (else CPU)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    if gpu_id is None:
        providers = ["CPUExecutionProvider"]
    else:
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RuntimeError("runtime 'onnx' on a GPU needs onnxruntime's CUDAExecutionProvider, but this "
                               "onnxruntime %s offers only %s (install onnxruntime-gpu, or drop 'onnx' from the "
                               "runtimes)" % (ort.__version__, ", ".join(ort.get_available_providers())))
        providers = [("CUDAExecutionProvider", {"device_id": int(gpu_id)}), "CPUExecutionProvider"]
    sess = ort.InferenceSession(onnx_path, so, providers=providers)
    if gpu_id is not None and sess.get_providers()[0] != "CUDAExecutionProvider":
        raise RuntimeError("onnxruntime could not start the CUDAExecutionProvider (session providers: %s)"
                           % (sess.get_providers(),))
    return sess


# ------------------------------------------------------------------------------------------- machine

def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu_names():
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        return [l.strip() for l in out.stdout.splitlines() if l.strip()] or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info(ctx=None):
    """Where and with what the benchmark ran: CPU model, cores, versions, thread env vars, load, date."""
    info = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "cpu_model": _cpu_model(), "cpu_count": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(),
            "mxnet": mx.__version__, "mxnet_cuda": _mx_has_cuda(), "numpy": np.__version__,
            "env": {k: os.environ.get(k) for k in _ENV_KEYS}}
    try:
        info["cpu_affinity"] = len(os.sched_getaffinity(0))
    except AttributeError:
        info["cpu_affinity"] = None
    try:
        info["load_avg_1_5_15"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        info["load_avg_1_5_15"] = None
    try:
        from mxnet.runtime import Features
        info["mxnet_mkldnn"] = bool(Features().is_enabled("MKLDNN"))
    except Exception:  # noqa: BLE001
        info["mxnet_mkldnn"] = None
    try:
        import onnxruntime as ort
        info["onnxruntime"] = ort.__version__
        info["onnxruntime_providers"] = list(ort.get_available_providers())
    except ImportError:
        info["onnxruntime"] = None
    try:
        import onnx
        info["onnx"] = onnx.__version__
    except ImportError:
        info["onnx"] = None
    if ctx is not None and getattr(ctx, "device_type", "cpu") == "gpu":
        info["gpu"] = _gpu_names()
    try:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        out = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=10)
        info["git_commit"] = out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info


# --------------------------------------------------------------------------------------------- model

def load_benchmark_config(cfg, opts=None):
    """Config for timing: a CfgNode or a YAML path (+ ``KEY VALUE`` overrides), as
    :func:`lotr_gluon.build.inference_config` (no pretrained backbone: nothing is downloaded or read; random
    weights or ``params``)."""

    if isinstance(cfg, str):
        return inference_config(load_config(cfg, list(opts or [])))
    return inference_config(cfg, list(opts or []))


def _check_args(runtimes, batches, flips, flip_mode, ctx):
    """Validated ``(runtimes, batches, flips, ctx)``; raises ValueError / RuntimeError (see
    :func:`benchmark_model`)."""
    runtimes = list(runtimes)
    bad = [r for r in runtimes if r not in RUNTIMES]
    if bad or not runtimes:
        raise ValueError("runtimes must be a non-empty subset of %s, got %r" % (RUNTIMES, runtimes))
    if flip_mode not in FLIP_MODES:
        raise ValueError("flip_mode must be one of %s, got %r" % (FLIP_MODES, flip_mode))
    batches = [int(b) for b in batches]
    if not batches or min(batches) < 1:
        raise ValueError("batch sizes must be >= 1, got %r" % (batches,))
    ctx = parse_ctx(ctx)
    if "onnx" in runtimes:
        import onnxruntime  # noqa: F401  (fail early)
        if ctx.device_type == "gpu" and "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            raise RuntimeError("runtime 'onnx' on a GPU needs onnxruntime's CUDAExecutionProvider, but this "
                               "onnxruntime %s offers only %s (install onnxruntime-gpu, or drop 'onnx' from the "
                               "runtimes)" % (onnxruntime.__version__,
                                              ", ".join(onnxruntime.get_available_providers())))
    return runtimes, batches, [bool(f) for f in flips], ctx


def _timed_model(cfg, params, ctx, seed):
    """``(net, postprocessor, model_info)``: :func:`lotr_gluon.build.load_model` (random init from ``seed``
    without ``params``) and :func:`lotr_gluon.flops.model_info` (size and FLOPs on a separate CPU copy)."""

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = model_info(cfg)
        mx.random.seed(seed)
        net, post = load_model(cfg, params, ctx=ctx)
    return net, post, info


def _decoders(post, decoders):
    """The decoders to time: ``[None]`` for coordinate regression; for heatmap models ``decoders``, all of the
    codec's (None) or the config's (``'default'``)."""
    if not post.decodes:
        return [None]
    if decoders == "default":
        return [post.default_decoder]
    decoders = list(decoders or post.decoders)
    bad = [d for d in decoders if d not in post.decoders]
    if bad:
        raise ValueError("unknown decoder(s) %s; valid: %s" % (bad, ", ".join(post.decoders)))
    return decoders


class _Exports:
    """The runtimes' models of one Gluon net: the net itself, its exported SymbolBlock and one ONNX file per
    batch shape, in ``workdir`` (a temporary folder, removed on exit, when None)."""

    def __init__(self, net, name, size, runtimes, threads, ctx, workdir=None):
        self.net, self.name, self.size, self.ctx = net, name, size, ctx
        self.runtimes, self.threads = runtimes, threads
        self.own_tmp = workdir is None
        self.workdir = workdir
        self.onnx_files = {}
        self.symbol = None

    def __enter__(self):
        if self.own_tmp:
            self.workdir = tempfile.mkdtemp(prefix="lotr_bench_")
        os.makedirs(self.workdir, exist_ok=True)
        self.prefix = os.path.join(self.workdir, self.name)
        try:
            if "symbol" in self.runtimes or "onnx" in self.runtimes:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    export_symbol(self.net, self.prefix, self.size)
            if "symbol" in self.runtimes:
                self.symbol = load_symbol(self.prefix, ctx=self.ctx)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        if self.own_tmp:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def block(self, runtime):
        """The Gluon net or the SymbolBlock, hybridized with ``static_alloc`` and ``static_shape`` (which
        also drops a previous measurement's cached graph)."""
        blk = self.net if runtime == "gluon" else self.symbol
        blk.hybridize(static_alloc=True, static_shape=True)
        return blk

    def session(self, batch):
        """A new onnxruntime session (dropped after its measurement, to keep memory low) on the ONNX model for
        ``batch`` (exported once)."""
        if batch not in self.onnx_files:
            path = "%s_b%d.onnx" % (self.prefix, batch)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                export_onnx(self.prefix, path, self.size, batch=batch)
            self.onnx_files[batch] = path
        return _ort_session(self.onnx_files[batch], self.threads,
                            self.ctx.device_id if self.ctx.device_type == "gpu" else None)


def _no_wait():
    return None


def _runtime_ops(exports, runtime, x_np, x_nd, batch, flip, flip_mode):
    """``(run, x, mirror, concat, wait)`` of a runtime: the forward call, its input, the horizontal mirror
    and the batch concatenation in the runtime's array type, and what waits for the device."""
    if runtime in ("gluon", "symbol"):
        return (exports.block(runtime), x_nd, lambda a: mx.nd.flip(a, axis=3),
                lambda a, b: mx.nd.concat(a, b, dim=0), mx.nd.waitall)
    sess = exports.session(2 * batch if flip and flip_mode == "batch" else batch)
    iname = sess.get_inputs()[0].name
    return (lambda a: sess.run(None, {iname: a})[0], x_np, lambda a: np.ascontiguousarray(a[..., ::-1]),
            lambda a, b: np.concatenate([a, b], axis=0), _no_wait)


def _net_fn(ops, post, flip, flip_mode):
    """The timed network part: forward (of the batch, of the batch and its mirror as one 2B batch, or of the
    two in turn) and the copy of the output to host numpy (:meth:`lotr_gluon.build.PostProcessor.host`)."""
    run, x, mirror, concat, wait = ops

    def net_fn():
        if not flip:
            out = post.host(run(x))
        elif flip_mode == "batch":
            out = post.host(run(concat(x, mirror(x))))
        else:
            outs = run(x), run(mirror(x))
            out = tuple(post.host(o) for o in outs)
        wait()
        return out
    return net_fn


def _decode_fn(post, method, flip, batch):
    """The timed decoding part: network output (numpy) -> (B, N, 2) crop pixels, with the flip averaging."""
    if not flip:
        return lambda out: post.decode(out, method)

    def decode_flip(out):
        if isinstance(out, tuple):  # flip_mode 'twice': (plain, mirrored)
            p, pf = post.decode(out[0], method), post.decode(out[1], method)
        else:  # one batch of 2B: plain then mirrored
            pts = post.decode(out, method)
            p, pf = pts[:batch], pts[batch:]
        return post.flip_average(p, pf)
    return decode_flip


def _timed(fn, runs, warmup):
    """``(first output, time_callable dict)``; the first call (graph building, memory planning) is untimed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fn()
        return out, time_callable(fn, runs, warmup)


def _row(model, runtime, batch, flip, flip_mode, method, t_net, t_dec, threads, diff):
    """One result row (:data:`ROW_KEYS`): ``model`` holds the per-model keys."""
    total = t_net["mean_ms"] + t_dec["mean_ms"]
    return dict(model, runtime=runtime, batch=batch, flip=flip, flip_mode=flip_mode if flip else None,
                decoder=method, net_ms_mean=t_net["mean_ms"], net_ms_std=t_net["std_ms"],
                decode_ms_mean=t_dec["mean_ms"], decode_ms_std=t_dec["std_ms"], total_ms=total,
                ms_per_image=total / batch, images_per_s=1e3 * batch / total if total > 0 else float("inf"),
                threads=_threads(runtime, threads), max_abs_diff_vs_gluon=diff, net_timing=t_net,
                decode_timing=t_dec)


def _decode_rows(model, post, decoders, out, setting, t_net, diff, runs, warmup, log):
    """Time every decoder on one network output; one row each. ``setting``: (runtime, batch, flip, flip_mode,
    threads)."""
    runtime, batch, flip, flip_mode, threads = setting
    rows = []
    for method in decoders:
        dec = _decode_fn(post, method, flip, batch)
        pts = dec(out)
        expected = (batch, len(post.flip_perm), 2)
        if pts.shape != expected:
            raise AssertionError("decoded landmarks have shape %s, expected %s" % (pts.shape, expected))
        t_dec = time_callable(lambda: dec(out), runs, warmup)
        row = _row(model, runtime, batch, flip, flip_mode, method, t_net, t_dec, threads, diff)
        rows.append(row)
        log("  %-6s B=%-3d flip=%-5s %-12s net %8.2f +- %6.2f ms  decode %7.3f ms  %8.3f ms/img"
            % (runtime, batch, "on" if flip else "off", method or "-", t_net["mean_ms"], t_net["std_ms"],
               t_dec["mean_ms"], row["ms_per_image"]))
    return rows


def benchmark_model(cfg, params=None, runtimes=RUNTIMES, batches=(1, 32), flips=(False, True), decoders=None,
                    runs=100, warmup=10, ctx=None, threads=2, flip_mode="batch", opts=None, seed=0, name=None,
                    workdir=None, log=None):
    """Time one model (see the module docstring for what is timed).

    Parameters
    ----------
    cfg : CfgNode or str
        Config or YAML path (``opts``: ``KEY VALUE`` overrides); loaded by :func:`load_benchmark_config`.
    params : str or None
        Weights file (``net.save_parameters``, checked by :func:`lotr_gluon.build.load_model`); None: random
        initialisation (same speed).
    runtimes : sequence of {'gluon', 'symbol', 'onnx'}
    batches : sequence of int
    flips : sequence of bool
        Flip test off / on.
    decoders : sequence of str, 'default' or None
        Heatmap decoders (:data:`heatmap_baseline.codec.DECODERS`, or the vector codec's) for heatmap models;
        None: all of them; ``'default'``: the config's. Ignored for coordinate-regression models (one row with
        ``decoder=None``).
    runs, warmup : int
        Timed and untimed calls per measurement.
    ctx : str or mx.Context
        ``'cpu'`` (default) or ``'gpu0'``; a GPU context raises ``RuntimeError`` when there is none.
    threads : int or None
        onnxruntime intra-op threads (MXNet's are set by ``OMP_NUM_THREADS`` before it is imported).
    flip_mode : {'batch', 'twice'}
        Flip test as one batch of 2B images (default) or two forward passes of B.
    name : str
        Model name in the rows (default: the config file stem, ``cfg.CFG_NAME``).
    workdir : str or None
        Folder for the exported symbol / ONNX files (default: a temporary folder, removed afterwards).
    log : callable or None
        Called with progress strings.

    Returns
    -------
    list of dict
        One row per runtime x batch x flip x decoder, with the keys :data:`ROW_KEYS` plus ``net_timing``
        and ``decode_timing`` (the full :func:`time_callable` dicts).
    """
    log = log or (lambda msg: None)
    runtimes, batches, flips, ctx = _check_args(runtimes, batches, flips, flip_mode, ctx)
    cfg_file = cfg if isinstance(cfg, str) else None
    cfg = load_benchmark_config(cfg, opts)
    name = name or getattr(cfg, "CFG_NAME", None) or cfg.MODEL.NAME
    size = int(cfg.DATA.INPUT_SIZE)
    if params is not None and not os.path.isfile(params):
        raise FileNotFoundError("params file not found: %s" % params)
    net, post, info = _timed_model(cfg, params, ctx, seed)
    decoders = _decoders(post, decoders)
    weights = os.path.abspath(params) if params else "random init"
    model = {"model": name, "cfg": cfg_file, "kind": post.kind, "ctx": str(ctx), "runs": int(runs),
             "warmup": int(warmup), "params": info["params"], "params_m": info["params"] / 1e6,
             "size_mb": info["size_mb"], "gmacs": info["gmacs"], "input_size": size, "weights": weights}
    log("%s: %s, %.2fM params, %.3f GMACs (the papers' GFLOPs), input %d, weights: %s"
        % (name, post.kind, info["params"] / 1e6, info["gmacs"], size, weights))
    rng = np.random.RandomState(seed)
    rows = []
    with _Exports(net, name, size, runtimes, threads, ctx, workdir) as exports:
        for batch in batches:
            x_np = rng.standard_normal((batch, 3, size, size)).astype(np.float32)
            x_nd = mx.nd.array(x_np, ctx=ctx)
            for flip in flips:
                ref = None  # the Gluon model's output for the same input (checks the other runtimes)
                for runtime in runtimes:
                    ops = _runtime_ops(exports, runtime, x_np, x_nd, batch, flip, flip_mode)
                    out, t_net = _timed(_net_fn(ops, post, flip, flip_mode), runs, warmup)
                    if runtime == "gluon":
                        ref = out
                    elif ref is None:
                        ref = _net_fn(_runtime_ops(exports, "gluon", x_np, x_nd, batch, flip, flip_mode), post,
                                      flip, flip_mode)()
                    diff = None if runtime == "gluon" else _max_diff(out, ref)
                    rows += _decode_rows(model, post, decoders, out, (runtime, batch, flip, flip_mode, threads),
                                         t_net, diff, runs, warmup, log)
                    ops = out = None  # release this measurement's memory (MXNet cached ops, onnxruntime arena)
                    if runtime in ("gluon", "symbol"):
                        exports.block(runtime)  # drops the cached op
                    gc.collect()
    return rows


def _threads(runtime, threads):
    """onnxruntime intra-op threads, or MXNet's OMP_NUM_THREADS (None: unset, OpenMP's default)."""
    if runtime == "onnx":
        return int(threads) if threads else None
    v = os.environ.get("OMP_NUM_THREADS")
    return int(v) if v and v.isdigit() else None


def _max_diff(a, b):
    if isinstance(a, tuple):
        return max(_max_diff(u, v) for u, v in zip(a, b))
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


# -------------------------------------------------------------------------------------------- report

def speed_ratios(rows):
    """Heatmap-model time / regression-model time for every runtime x batch x flip present for both.

    One entry per (regression model, heatmap model, heatmap decoder, runtime, batch, flip):
    ``total_ratio`` (ms per image, network + decoding) and ``net_ratio`` (network only); > 1 means the
    regression model (LOTR) is faster.
    """
    out = []
    reg = [r for r in rows if r["kind"] == "regression"]
    hm = [r for r in rows if r["kind"] == "heatmap"]
    for r in reg:
        for h in hm:
            if (h["runtime"], h["batch"], h["flip"], h["flip_mode"], h["ctx"]) != \
                    (r["runtime"], r["batch"], r["flip"], r["flip_mode"], r["ctx"]):
                continue
            out.append({"regression_model": r["model"], "heatmap_model": h["model"], "decoder": h["decoder"],
                        "runtime": r["runtime"], "ctx": r["ctx"], "batch": r["batch"], "flip": r["flip"],
                        "flip_mode": r["flip_mode"],
                        "regression_ms_per_image": r["ms_per_image"], "heatmap_ms_per_image": h["ms_per_image"],
                        "total_ratio": h["ms_per_image"] / r["ms_per_image"] if r["ms_per_image"] > 0 else None,
                        "net_ratio": h["net_ms_mean"] / r["net_ms_mean"] if r["net_ms_mean"] > 0 else None})
    return out


def _ms(mean, std):
    if mean < 0.1:
        return "%.3f ± %.3f" % (mean, std)
    if mean < 10:
        return "%.2f ± %.2f" % (mean, std)
    return "%.1f ± %.1f" % (mean, std)


def _flip_str(r):
    if not r["flip"]:
        return "off"
    return "on (2B batch)" if r["flip_mode"] == "batch" else "on (2 passes)"


def render_markdown(rows, machine=None, notes=None, ratios=True):
    """Markdown: the timing table (one line per row), then the regression-vs-heatmap speed ratios.

    Parameters
    ----------
    rows : list of dict
        From :func:`benchmark_model` (several models may be concatenated).
    machine : dict or None
        From :func:`machine_info`; printed as a header line.
    notes : list of str or None
        Extra lines printed under the table.
    ratios : bool
        Append the LOTR-vs-Earp ratio table (:func:`speed_ratios`) when both kinds are present.
    """
    lines = []
    if machine:
        env = ", ".join("%s=%s" % (k, v) for k, v in sorted((machine.get("env") or {}).items()) if v is not None)
        lines.append("Measured %s on %s (%s logical CPUs%s), mxnet %s, onnxruntime %s%s%s." % (
            machine.get("date"), machine.get("cpu_model"), machine.get("cpu_count"),
            ", GPU %s" % ", ".join(machine["gpu"]) if machine.get("gpu") else "",
            machine.get("mxnet"), machine.get("onnxruntime"), "; " + env if env else "; no thread env vars set",
            "; load average at start %s" % (machine["load_avg_1_5_15"],) if machine.get("load_avg_1_5_15") else ""))
        lines.append("")
    lines += markdown.table(
        ["model", "runtime", "batch", "flip", "decoder", "network ms (mean ± std)", "decode ms (mean ± std)",
         "total ms/img", "images/s", "params M", "size MB", "GFLOPs (paper = GMACs)"],
        [[r["model"], r["runtime"] + ("" if r.get("ctx", "cpu(0)").startswith("cpu") else " (%s)" % r["ctx"]),
          "%d" % r["batch"], _flip_str(r), r["decoder"] or "-", _ms(r["net_ms_mean"], r["net_ms_std"]),
          _ms(r["decode_ms_mean"], r["decode_ms_std"]), "%.3f" % r["ms_per_image"], "%.1f" % r["images_per_s"],
          "%.2f" % r["params_m"], "%.2f" % r["size_mb"], "%.3f" % r["gmacs"]] for r in rows], "llrllrrrrrrr")
    if rows:
        r0 = rows[0]
        lines.append("")
        lines.append("%d timed runs after %d warm-up runs per cell; network = forward + copy of the output to "
                     "host numpy (asnumpy, mx.nd.waitall); decode = heatmap decoding and, with flip, un-mirroring "
                     "+ averaging (regression models: only that, so about 0). Flip on = the batch and its mirror "
                     "as one batch of 2B (\"2B batch\") or two passes of B (\"2 passes\"); ms/img = (network + "
                     "decode) / B. Weights: %s." % (r0["runs"], r0["warmup"], WEIGHTS_NOTE))
    for n in notes or ():
        lines.append("")
        lines.append(n)
    rat = speed_ratios(rows) if ratios else []
    if rat:
        lines.append("")
        lines.extend(_ratio_lines(rat))
    return "\n".join(lines) + "\n"


def _ratio_lines(rat):
    """Markdown of :func:`speed_ratios`: one line per model pair x runtime x batch x flip, one column per
    heatmap decoder."""
    lines = ["LOTR vs Earp speed ratio = heatmap-model time / LOTR time per image (> 1: LOTR faster); network "
             "only, and network + decoding with each heatmap decoder. The LOTR paper reports LOTR 4-6x faster "
             "than Earp on a V100 GPU; these are our measurements on the machine above."]
    decoders = []
    for q in rat:
        if q["decoder"] not in decoders:
            decoders.append(q["decoder"])
    groups = {}
    for q in rat:
        key = (q["regression_model"], q["heatmap_model"], q["runtime"], q["batch"], q["flip"], q["flip_mode"])
        groups.setdefault(key, {})[q["decoder"]] = q
    lines.append("")
    body = []
    for key, by_dec in groups.items():
        q0 = next(iter(by_dec.values()))
        cells = ["%.2fx" % by_dec[d]["total_ratio"] if d in by_dec and by_dec[d]["total_ratio"] else "-"
                 for d in decoders]
        body.append([key[0], key[1], key[2], "%d" % key[3], _flip_str(q0), "%.3f" % q0["regression_ms_per_image"],
                     "%.2fx" % q0["net_ratio"] if q0["net_ratio"] else "-"] + cells)
    lines += markdown.table(["LOTR model", "heatmap model", "runtime", "batch", "flip", "LOTR ms/img",
                             "ratio (network)"] + ["ratio (total, %s)" % d for d in decoders], body,
                            "lllrlrr" + "r" * len(decoders))
    tot = [q["total_ratio"] for q in rat if q["total_ratio"]]
    if tot:
        lines.append("")
        lines.append("Measured LOTR/Earp speed ratio (total ms per image, all rows above): %.2fx to %.2fx (median "
                     "%.2fx); LOTR paper (V100 GPU): 4-6x." % (min(tot), max(tot), float(np.median(tot))))
    return lines
