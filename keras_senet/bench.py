"""Latency and throughput of one model on every execution path installed,
measured side by side: the one place where keras-senet times things (the
`keras-senet bench` command and `benchmarks/` use it).

Paths (`PATHS`):

- "graph": the Keras model as a `tf.function` (TensorFlow's graph runtime);
- "xla": the same with `jit_compile=True` (XLA);
- "litert": a float32 `.tflite` written by `keras_senet.export.to_tflite`,
  run by LiteRT (`ai-edge-litert`) with its XNNPACK delegate at a fixed
  batch (XNNPACK cannot prepare a dynamic one);
- "onnx": an `.onnx` written by `keras_senet.export.to_onnx`, run by
  onnxruntime's CPU provider;
- "jax", "torch": the same model on Keras' JAX / PyTorch backend, saved as
  `.keras` and loaded by a persistent worker process started with
  `KERAS_BACKEND` set (a backend is chosen once per process). JAX runs a
  `jax.jit`-compiled stateless call, PyTorch Keras' eager call under
  `torch.no_grad()`.

Method. Rounds alternate across the paths (round r runs path 1 once, path 2
once, ...), so that drift in the machine's speed hits every path alike;
each path reports the median of its rounds, min-max, throughput (batch /
median) and its first call (tracing, compilation, delegate preparation).
A worker times its own call and replies with the seconds, so process
communication is not counted. Before any timing, each path's output on the
same input is compared with the Keras model's own (an eager call): a path
whose max abs difference exceeds `TOLERANCE` x the largest output magnitude
is marked wrong and never recommended. TensorFlow, onnxruntime, LiteRT and
PyTorch get the same number of threads (default: all cores); JAX has no
thread-count setting, so its worker is pinned to that many cores instead.
"""

import contextlib
import dataclasses
import importlib.util
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import numpy as np

PATHS = ("graph", "xla", "litert", "onnx", "jax", "torch")

# Max abs difference from Keras allowed, as a fraction of the largest |output|.
# float32 paths differ by reordered sums (measured here on SE-ResNet-18:
# 1e-7 to 1e-6 of it); a wrong kernel is off by a sizeable part of it.
TOLERANCE = 1e-4

# path -> (modules it imports, what installs them)
PACKAGES = {
    "graph": ((), None),
    "xla": ((), None),
    "litert": (("ai_edge_litert",), "pip install 'keras-senet[export]'"),
    "onnx": (("tf2onnx", "onnx", "onnxruntime"), "pip install 'keras-senet[export]'"),
    "jax": (("jax",), "pip install 'keras-senet[jax]'"),
    "torch": (("torch",), "pip install 'keras-senet[torch]'"),
}
# what each kind of input can run on
FILE_PATHS = {"keras": PATHS, "tflite": ("litert",), "onnx": ("onnx",), "saved_model": ("graph",)}
# Keras backends that run in a worker process
WORKER_PATHS = ("jax", "torch")


# ---------------------------------------------------------------- timing


def summary(times):
    """Median, min and max in ms of `times` (seconds), and how many there are."""
    ms = [1000 * t for t in times]
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "runs": len(ms)}


def stopwatch(fn):
    """A function that calls `fn` and returns the seconds the call took."""

    def timed():
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    return timed


def rounds(timers, warmup, repeats, progress=None):
    """Seconds per round of each timer, the timers taking turns.

    Args:
        timers: functions that each run one call and return its seconds
            (`stopwatch(fn)`, or `Worker.run`, which times inside the worker).
        warmup: untimed rounds first.
        repeats: timed rounds.
        progress: optional function `(done, total)` called after each round.

    Returns:
        One list of `repeats` times in seconds per timer.
    """
    total = warmup + repeats
    times = [[] for _ in timers]
    for r in range(total):
        for i, timer in enumerate(timers):
            seconds = timer()
            if r >= warmup:
                times[i].append(seconds)
        if progress:
            progress(r + 1, total)
    return times


def alternate(fns, warmup, repeats, progress=None):
    """Time the callables in turn, `repeats` rounds after `warmup` rounds.

    Returns:
        A `summary` (median/min/max ms, runs) per callable.
    """
    return [summary(t) for t in rounds([stopwatch(fn) for fn in fns], warmup, repeats, progress)]


def cpu_name():
    """The CPU model and its vector extensions: int8 speed depends on them
    (LiteRT's int8 SE-ResNet-50 was 3.3x faster than fp32 on a CPU with
    VNNI, 1.1x on one with AVX2 only)."""
    model, flags = platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    return f"{model} ({', '.join(isa)})" if isa else model


# ---------------------------------------------------------------- runners


@dataclasses.dataclass
class Runner:
    """One execution path, ready to time.

    Attributes:
        path: its name, e.g. "litert".
        output: its output on the benchmark input (numpy).
        run: a function that runs one call and returns its seconds.
        first_call_s: seconds of the first call, including tracing and
            compilation (graph, xla, jax), creating the interpreter with its
            XNNPACK delegate (litert) or the session (onnx).
        prepare_s: seconds spent before it (export, loading the model).
        detail: the runtime and its version, e.g. "onnxruntime 1.31".
        close: releases what it holds (a worker process).
    """

    path: str
    output: object
    run: object
    first_call_s: float
    prepare_s: float = 0.0
    detail: str = ""
    close: object = lambda: None


def _first(fn):
    """(output, seconds) of the first call of `fn`."""
    start = time.perf_counter()
    output = fn()
    return output, time.perf_counter() - start


def graph_runner(model, x, jit_compile=False):
    """"graph" (or "xla" with `jit_compile`): `model` as a `tf.function`.

    Traced inside `inference_graphs()` (as an exported file is), so that
    grouped convolutions take the native kernel where its forward runs.
    """
    import tensorflow as tf

    from keras_senet.layers.grouped_conv import inference_graphs

    function = tf.function(lambda t: model(t, training=False), jit_compile=jit_compile)
    feed = tf.constant(x)
    call = lambda: function(feed).numpy()  # noqa: E731  (.numpy(): wait for the result)
    with inference_graphs():
        output, first = _first(call)
    return Runner("xla" if jit_compile else "graph", output, stopwatch(call), first,
                  detail=f"TensorFlow {tf.__version__}{', XLA' if jit_compile else ''}")


def saved_model_runner(path, x):
    """"graph" for a SavedModel folder: its `serving_default` signature."""
    import tensorflow as tf

    start = time.perf_counter()
    loaded = tf.saved_model.load(os.fspath(path))
    signature = loaded.signatures["serving_default"]
    prepare = time.perf_counter() - start
    dtype = next(iter(signature.structured_input_signature[1].values())).dtype
    feed = tf.cast(tf.constant(x), dtype)
    call = lambda: next(iter(signature(feed).values())).numpy()  # noqa: E731
    output, first = _first(call)
    # close() refers to `loaded`, which owns the variables: alive as long as the runner
    return Runner("graph", output, stopwatch(call), first, prepare,
                  detail=f"TensorFlow {tf.__version__}, SavedModel", close=lambda: loaded)


def litert_runner(path, x, threads):
    """"litert": a .tflite file in LiteRT with XNNPACK at batch `len(x)`.

    int8 inputs are fed `x` quantized with the input tensor's scale; outputs
    are returned as stored (int8 ones not dequantized).
    """
    from importlib import metadata

    from keras_senet.export import _interpreter

    start = time.perf_counter()
    interpreter = _interpreter(path, list(x.shape), threads, delegates=True)  # fixed batch: see its comment
    detail = f"LiteRT {metadata.version('ai-edge-litert')}, XNNPACK"
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    feed = x
    if source["dtype"] in (np.int8, np.uint8):
        scale, zero = source["quantization"]
        info = np.iinfo(source["dtype"])
        feed = np.clip(np.round(x / scale + zero), info.min, info.max).astype(source["dtype"])

    def call():
        interpreter.set_tensor(source["index"], feed)
        interpreter.invoke()
        return interpreter.get_tensor(target["index"])

    output, first = _first(call)
    return Runner("litert", output, stopwatch(call), time.perf_counter() - start, detail=detail)


def onnx_runner(path, x, threads):
    """"onnx": an .onnx file in onnxruntime's CPU provider, `threads` intra-op
    threads, ops run one after another (like the other paths)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    start = time.perf_counter()
    session = onnxruntime.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    call = lambda: session.run(None, {name: x})[0]  # noqa: E731
    output, _ = _first(call)
    return Runner("onnx", output, stopwatch(call), time.perf_counter() - start,
                  detail=f"onnxruntime {onnxruntime.__version__}")


class Worker:
    """A Python process running Keras on another backend, kept for many
    calls: it loads a `.keras` model once, then times one call per `run()`.

    The protocol is one JSON object a line over its stdin and stdout; the
    worker's stdout carries nothing else (what libraries print goes to its
    stderr, kept in a file for error messages).

    Args:
        backend: "jax" or "torch" (KERAS_BACKEND of the process).
        threads: threads for the backend: PyTorch's `set_num_threads`, and
            for both, the process is pinned to that many cores when fewer
            than all (JAX has no thread-count setting).
    """

    def __init__(self, backend, threads):
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3",
                   PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
        self.backend = backend
        self._stderr = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "keras_senet.bench", "--worker", str(threads)], env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True, bufsize=1,
        )
        self._replies = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self._process.stdout:
            self._replies.put(line)
        self._replies.put(None)  # the process ended

    def send(self, **message):
        """Send a request without waiting for the reply (`receive` it)."""
        self._process.stdin.write(json.dumps(message) + "\n")
        self._process.stdin.flush()

    def receive(self, timeout=1800):
        """The reply to the oldest request sent.

        Raises:
            RuntimeError: when the worker reports an error or ends, with its
                message and the end of its stderr.
        """
        try:
            line = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"{self.backend} worker: no reply within {timeout} s") from None
        reply = json.loads(line) if line else {"error": f"the process ended (exit status {self._process.wait()})"}
        if "error" in reply:
            self._stderr.seek(0)
            tail = self._stderr.read().decode(errors="replace").strip().splitlines()[-15:]
            raise RuntimeError(f"{self.backend} worker: {reply['error']}" + ("\n" + "\n".join(tail) if tail else ""))
        return reply

    def request(self, **message):
        self.send(**message)
        return self.receive()

    def run(self):
        """Seconds of one call, timed inside the worker."""
        return self.request(cmd="run")["seconds"]

    def close(self):
        if self._process.poll() is None:
            try:
                self.send(cmd="quit")
                self._process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait()
        self._stderr.close()


def start_worker(backend, model_file, x, workdir, threads, mode="forward"):
    """A `Worker` for `backend`, already sent its "load" request: it imports
    its backend and loads `model_file` while the caller does other work;
    `worker_runner` waits for it.

    Args:
        backend: "jax" or "torch".
        model_file: a `.keras` file.
        x: the input (saved in `workdir` for the worker).
        threads: see `Worker`.
        mode: "forward" (inference) or "train" (`train_on_batch` with SGD,
            momentum 0.9, sparse cross-entropy on labels 0; the output is
            the first step's loss).
    """
    worker = Worker(backend, threads)
    handle, x_path = tempfile.mkstemp(suffix=".npy", dir=workdir)
    with os.fdopen(handle, "wb") as f:
        np.save(f, x)
    worker.mode = mode
    worker.send(cmd="load", model=os.fspath(model_file), x=x_path, mode=mode, output=x_path[:-4] + "-output.npy")
    return worker


def worker_runner(worker):
    """The `Runner` of a `start_worker` worker, once it has loaded and made
    its first call (closes the worker if that failed)."""
    try:
        reply = worker.receive()
    except Exception:
        worker.close()
        raise
    output = np.load(reply["output"]) if worker.mode == "forward" else np.asarray(reply["output"])
    return Runner(worker.backend, output, worker.run, reply["first_s"], reply["load_s"],
                  detail=reply["detail"], close=worker.close)


def save_for_workers(model, workdir):
    """`model` saved as a `.keras` file in `workdir` (with its input
    transform), for `start_worker`; the file's path."""
    from keras_senet import inputs

    path = os.path.join(workdir, f"{model.name}-{id(model)}.keras")
    if not os.path.exists(path):
        inputs.save_model(model, path)
    return path


def prepare(path, model, x, workdir, threads, *, file=None, worker=None, quiet=None):
    """The `Runner` of one path.

    Args:
        path: a name from `PATHS`.
        model: the Keras model (TensorFlow backend), or None for a file.
        x: the input, a float32 batch.
        workdir: a folder for exported files.
        threads: threads of the runtime.
        file: a `.tflite` / `.onnx` file or SavedModel folder to run instead
            of exporting `model`; for "jax" / "torch", a `.keras` file
            (default: `model` saved in `workdir`).
        worker: for "jax" / "torch", a `start_worker` worker to use.
        quiet: a context-manager factory wrapped around exports.
    """
    from keras_senet import export

    if path in WORKER_PATHS:
        worker = worker or start_worker(path, file or save_for_workers(model, workdir), x, workdir, threads)
        return worker_runner(worker)
    if path == "graph" and model is None:
        return saved_model_runner(file, x)
    if path in ("graph", "xla"):
        return graph_runner(model, x, jit_compile=path == "xla")
    start = time.perf_counter()
    if model is not None:
        file = os.path.join(workdir, f"{model.name}-{id(model)}.{'tflite' if path == 'litert' else 'onnx'}")
        with (quiet or contextlib.nullcontext)():
            if path == "litert":
                export.to_tflite(model, file, sample=x[:1], num_threads=threads)
            else:
                export.to_onnx(model, file, sample=x[:1])
    prepared = time.perf_counter() - start
    runner = (litert_runner if path == "litert" else onnx_runner)(file, x, threads)
    return dataclasses.replace(runner, prepare_s=prepared)


# ---------------------------------------------------------------- the worker process


def _worker_main(threads):
    """The worker's loop (`python -m keras_senet.bench --worker THREADS`)."""
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever a library prints goes to stderr, not into the protocol
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if 0 < threads < len(available):
        os.sched_setaffinity(0, available[:threads])  # JAX/XLA sizes its thread pool from the cores it may use
    backend = os.environ["KERAS_BACKEND"]
    if backend == "torch":
        import torch

        torch.set_num_threads(threads)
    state = {}
    for line in sys.stdin:
        message = json.loads(line)
        try:
            if message["cmd"] == "quit":
                break
            if message["cmd"] == "load":
                reply = _worker_load(message, state, backend)
            else:
                reply = {"seconds": stopwatch(state["call"])()}
        except Exception as error:  # noqa: BLE001  (reported to the parent, which raises it)
            traceback.print_exc()
            reply = {"error": f"{type(error).__name__}: {error}"}
        replies.write(json.dumps(reply) + "\n")


def _worker_load(message, state, backend):
    import keras

    from keras_senet import inputs

    start = time.perf_counter()
    model = inputs.load_model(message["model"], compile=False)
    x = np.load(message["x"])
    if message["mode"] == "train":
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy")
        y = np.zeros(len(x), "int64")
        call = lambda: float(model.train_on_batch(x, y))  # noqa: E731
    elif backend == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        fixed = [v.value for v in model.non_trainable_variables]
        forward = jax.jit(lambda t, n, x: model.stateless_call(t, n, x, training=False)[0])
        feed = jax.numpy.asarray(x)
        call = lambda: np.asarray(forward(trainable, fixed, feed).block_until_ready())  # noqa: E731
    else:
        import torch

        feed = keras.ops.convert_to_tensor(x)

        def call():
            with torch.no_grad():
                return keras.ops.convert_to_numpy(model(feed, training=False))

    load = time.perf_counter() - start
    output, first = _first(call)
    state["call"] = call
    version = sys.modules[backend].__version__
    detail = f"Keras {keras.__version__} on {backend} {version}, " + (
        "train_on_batch" if message["mode"] == "train" else "jax.jit" if backend == "jax" else "eager, no_grad")
    if message["mode"] == "train":
        return {"output": output, "first_s": first, "load_s": load, "detail": detail}
    np.save(message["output"], output)
    return {"output": message["output"], "first_s": first, "load_s": load, "detail": detail}


# ---------------------------------------------------------------- the report


@dataclasses.dataclass(frozen=True)
class Row:
    """One path's result.

    Attributes:
        path: "graph", "xla", "litert", "onnx", "jax" or "torch".
        status: "ok", "wrong" (output differs from Keras beyond the
            tolerance), "not installed (pip install ...)", "failed: ..."
            or "not checked" (no Keras model to compare with: a .tflite,
            .onnx or SavedModel input).
        median_ms, min_ms, max_ms: latency of one call of the whole batch.
        images_per_s: batch / median latency.
        first_call_ms: the first call (see `Runner.first_call_s`).
        prepare_s: export or model loading before the first call.
        max_abs_diff: max abs difference from the Keras model's output.
        times_ms: every timed round.
        detail: runtime and version.
    """

    path: str
    status: str
    median_ms: float = None
    min_ms: float = None
    max_ms: float = None
    images_per_s: float = None
    first_call_ms: float = None
    prepare_s: float = None
    max_abs_diff: float = None
    times_ms: tuple = ()
    detail: str = ""

    @property
    def timed(self):
        return self.median_ms is not None


@dataclasses.dataclass(frozen=True)
class BenchReport:
    """What `bench` measured.

    Attributes:
        model: the model's name or file.
        batch: images per call.
        input_shape: one input's shape, (H, W, C).
        rows: a `Row` per path, in `PATHS` order.
        recommended: the fastest path whose output matches Keras, when at
            least two paths ran (`recommend`); else None.
        tolerance: the allowed max abs difference (`TOLERANCE` x the largest
            |output| of the Keras model); None without a Keras model.
        threads: runtime -> threads used.
        warmup, repeats: untimed and timed rounds.
        machine: CPU, cores and framework versions.
    """

    model: str
    batch: int
    input_shape: tuple
    rows: tuple
    recommended: str
    tolerance: float
    threads: dict
    warmup: int
    repeats: int
    machine: str

    def row(self, path):
        return next(r for r in self.rows if r.path == path)

    def to_json(self):
        """The report as a JSON string (rows as objects)."""
        return json.dumps(dataclasses.asdict(self), indent=1)

    def table(self):
        """The report as a text table, with the recommendation."""
        threads = ", ".join(f"{k} {v}" for k, v in self.threads.items())
        lines = [
            f"{self.model}: batch {self.batch}, input {'x'.join(map(str, self.input_shape))}; "
            f"median of {self.repeats} alternating rounds after {self.warmup} warm-up rounds",
            f"{self.machine}; threads: {threads}",
            "",
            f"{'path':<7} {'median ms':>10} {'min-max ms':>17} {'images/s':>10} {'first call ms':>14} "
            f"{'max abs diff':>13}  status",
        ]
        for r in self.rows:
            diff = "" if r.max_abs_diff is None else f"{r.max_abs_diff:.1e}"
            if r.timed:
                spread = f"{r.min_ms:.2f}-{r.max_ms:.2f}"
                lines.append(f"{r.path:<7} {r.median_ms:>10.2f} {spread:>17} {r.images_per_s:>10.1f} "
                             f"{r.first_call_ms:>14.0f} {diff:>13}  {r.status} ({r.detail})")
            else:
                lines.append(f"{r.path:<7} {'':>10} {'':>17} {'':>10} {'':>14} {diff:>13}  {r.status}")
        check = ("outputs compared with the Keras model on the same input; tolerance "
                 f"{self.tolerance:.1e} ({TOLERANCE:g} of its largest |output|)" if self.tolerance is not None
                 else "no Keras model to compare with: outputs not checked")
        lines += ["", check]
        ran = [r for r in self.rows if r.timed]
        if self.recommended:
            best = self.row(self.recommended)
            lines.append(f"recommended: {self.recommended} ({best.median_ms:.2f} ms, "
                         f"{best.images_per_s:.1f} images/s at batch {self.batch}), the fastest of the "
                         f"{len(ran)} paths that ran whose outputs match Keras")
        elif not ran:
            lines.append("recommended: none (no path ran)")
        elif len(ran) == 1:
            lines.append(f"recommended: none (only one path ran, {ran[0].path}: nothing to compare it with)")
        elif self.tolerance is None:
            lines.append("recommended: none (outputs not checked against Keras)")
        else:
            lines.append("recommended: none (no path's output matches Keras)")
        return "\n".join(lines)


# ---------------------------------------------------------------- bench


class _Bar:
    """A one-line progress display on stderr (a terminal only)."""

    def __init__(self, enabled):
        self.enabled = enabled and sys.stderr.isatty()
        self.width = 0

    def show(self, text):
        if self.enabled:
            sys.stderr.write("\r" + text.ljust(self.width))
            sys.stderr.flush()
            self.width = len(text)

    def stage(self, text):
        self.show(f"bench: {text}")

    def rounds(self, done, total):
        filled = round(30 * done / total)
        self.show(f"bench: [{'=' * filled}{'.' * (30 - filled)}] round {done}/{total}")

    def close(self):
        if self.enabled and self.width:
            sys.stderr.write("\r" + " " * self.width + "\r")
            sys.stderr.flush()


def installed(path):
    """Whether the packages that path `path` imports are installed."""
    return _missing(path) is None


def _missing(path):
    """The first module that path `path` imports and cannot find, or None."""
    return next((m for m in PACKAGES[path][0] if importlib.util.find_spec(m) is None), None)


def _set_tf_threads(threads):
    """Sets TensorFlow's intra-op threads (inter-op 1, ops one after another
    like the other runtimes) if its runtime has not started; returns the
    intra-op count in force."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialized: keep what it has
        pass
    return tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()


def _resolve(model, image_size, weights):
    """(kind, Keras model or None, file or None, label) of bench's `model`."""
    import keras_senet

    if not isinstance(model, (str, os.PathLike)):
        return "keras", model, None, model.name
    name = os.fspath(model)
    if name in keras_senet.MODELS:
        _check_weights(weights)
        shape = None if image_size is None else (image_size, image_size, 3)
        try:
            built = keras_senet.MODELS[name](weights=None if weights in (None, "none") else weights,
                                             input_shape=shape)
        except ValueError as error:  # the constructor names its own arguments: name bench's
            text = str(error)
            if "Received: weights=" in text:
                raise ValueError(f"`weights`: {text}") from error
            if image_size is not None and "input_shape" in text:
                reason = text.split("Received")[0].strip().rstrip(";.")
                raise ValueError(f"`image_size`: {name} cannot take {image_size}x{image_size} inputs: {reason}. "
                                 f"Received: image_size={image_size}") from error
            raise
        return "keras", built, None, f"{name} ({'random weights' if weights in (None, 'none') else weights})"
    if weights not in (None, "none"):
        raise ValueError(f"`weights` applies to a constructor name only; {name} is a file. Received: weights={weights!r}")
    if name.endswith((".weights.h5", ".h5")):
        raise ValueError(
            f"`model`: {name} holds weights only, no architecture: give the constructor name and the file as "
            f"weights (keras-senet bench SEResNet50 --weights {name})"
        )
    if not os.path.exists(name):
        if os.sep in name or "." in os.path.basename(name):
            raise ValueError(f"`model`: file not found: {name}")
        raise ValueError(f"`model`: {name!r} is neither a file nor a constructor name ({', '.join(keras_senet.MODELS)})")
    from keras_senet import export, inputs

    kind = export.model_format(name)
    if kind == "keras":
        return "keras", inputs.load_model(name, compile=False), name, name
    return kind, None, name, name


def _check_weights(weights):
    """`weights` for a constructor name: None, "none", "imagenet", a preset
    name or an existing file (the constructor checks which presets fit)."""
    from keras_senet.weights.presets import PRESETS

    if weights in (None, "none", "imagenet") or weights in PRESETS or os.path.exists(weights):
        return
    raise ValueError(
        f"`weights` {weights!r}: no such file ({os.path.abspath(weights)}) and no preset of that name. Give 'none' "
        "(random weights), 'imagenet', a preset name (`keras-senet presets` lists them) or the path of a weights "
        "file (.weights.h5, .keras, .safetensors, .pth)"
    )


def _input_shape(kind, model, path, image_size, label):
    """One input's (H, W, C) for the model or file (`label` names it)."""
    if kind == "keras":
        shape = tuple(model.input_shape[1:])
        if None in shape[:2]:
            if image_size is None:
                from keras_senet import inputs

                transform = inputs.input_transform(model)
                if transform is None:
                    raise ValueError(f"`image_size`: {label} takes any input size; give one (e.g. 224)")
                image_size = transform.size
            return (image_size, image_size, shape[2])
        if image_size not in (None, shape[0]):
            raise ValueError(f"`image_size`: {label} takes {shape[0]}x{shape[1]} inputs only. "
                             f"Received: image_size={image_size}")
        return shape
    if kind == "tflite":
        from ai_edge_litert.interpreter import Interpreter

        shape = tuple(int(d) for d in Interpreter(model_path=path).get_input_details()[0]["shape"][1:])
    elif kind == "onnx":
        import onnx

        dims = onnx.load(path, load_external_data=False).graph.input[0].type.tensor_type.shape.dim[1:]
        shape = tuple(d.dim_value or None for d in dims)
    else:
        import tensorflow as tf

        spec = tf.saved_model.load(path).signatures["serving_default"].structured_input_signature[1]
        shape = tuple(next(iter(spec.values())).shape[1:])
    if None in shape[:2]:
        if image_size is None:
            raise ValueError(f"`image_size`: {path} takes any input size; give one (e.g. 224)")
        shape = (image_size, image_size) + tuple(shape[2:])
    elif image_size not in (None, shape[0]):
        raise ValueError(f"`image_size`: {path} takes {shape[0]}x{shape[1]} inputs only. Received: image_size={image_size}")
    return shape


def _choose_paths(kind, paths, backend, label):
    """(paths to run, {path: status} of those that cannot run).

    Raises:
        ImportError / ValueError: when no path can run (`label` names the
            model or file), naming the missing package and how to install it.
    """
    possible = FILE_PATHS[kind]
    if paths is None:
        chosen, explicit = list(possible), False
    else:
        chosen, explicit = sorted(set(paths), key=lambda p: PATHS.index(p) if p in PATHS else -1), True
        for path in chosen:
            if path not in PATHS:
                raise ValueError(f"`paths`: unknown path {path!r}; choose from {', '.join(PATHS)}")
            if path not in possible:
                raise ValueError(f"`paths`: a {kind} file runs on {', '.join(possible)} only. Received: {path!r}")
        if not chosen:
            raise ValueError("`paths` is empty; choose from " + ", ".join(PATHS))
    skipped, missing = {}, {}  # path -> status; path -> the package it lacks
    for path in chosen:
        hint, lacking = PACKAGES[path][1], _missing(path)
        if lacking:
            missing[path] = lacking
            if explicit:
                raise ImportError(f"`paths`: {path} needs the {missing[path]} package; {hint}", name=missing[path])
            skipped[path] = f"not installed ({hint})"
        elif backend != "tensorflow" and path not in WORKER_PATHS:
            if explicit:
                raise ValueError(f"`paths`: {path} needs KERAS_BACKEND=tensorflow in this process (it runs {backend})")
            skipped[path] = f"needs KERAS_BACKEND=tensorflow (this process runs {backend})"
    if set(chosen) <= set(skipped):  # nothing to time: say why, once, instead of an empty table
        reasons = "; ".join(f"{p} needs the {missing[p]} package: {PACKAGES[p][1]}" if p in missing
                            else f"{p} {skipped[p]}" for p in chosen)
        if kind == "keras":
            message = f"nothing to measure on {label}: {reasons}"
        else:
            what = {"tflite": "a .tflite file", "onnx": "an .onnx file", "saved_model": "a SavedModel folder"}[kind]
            message = f"nothing to measure: {label} is {what}, which runs on {', '.join(chosen)} only, and {reasons}"
        if missing:
            raise ImportError(message, name=next(iter(missing.values())))
        raise ValueError(message)
    return chosen, skipped


def _check(batch, warmup, repeats, threads):
    for name, value, least in (("batch", batch, 1), ("warmup", warmup, 0), ("repeats", repeats, 1),
                               ("threads", threads, 1)):
        if value is not None and (not isinstance(value, int) or value < least):
            raise ValueError(f"`{name}` must be an integer >= {least}. Received: {name}={value!r}")


def bench(model, *, batch=1, paths=None, image_size=None, weights=None, warmup=3, repeats=10, threads=None,
          progress=False, quiet=None):
    """Time `model` on each execution path, alternating, and check each path's
    output against Keras.

    Args:
        model: a Keras model, a constructor name from `keras_senet.MODELS`, a
            `.keras` file (every path), a `.tflite` file ("litert" only), an
            `.onnx` file ("onnx" only) or a SavedModel folder ("graph", its
            serving signature). A `.weights.h5` file holds no architecture:
            give the constructor name and the file as `weights`.
        batch: images per call (default 1).
        paths: names from `PATHS` (default: every one the input allows; a
            path whose package is missing becomes a "not installed" row).
        image_size: square input side, for a constructor name (default: its
            own, 224 or 299) or a model that takes any size.
        weights: for a constructor name: None or "none" (random, default),
            "imagenet", a preset name or a weights file.
        warmup: untimed rounds before timing (default 3).
        repeats: timed rounds (default 10); each path's median is over them.
        threads: threads for TensorFlow (intra-op, and inter-op 1, set for
            the process if its runtime has not started yet; else the count
            it has is used for all), onnxruntime,
            LiteRT and PyTorch; JAX's worker is pinned to that many cores
            (default: all cores).
        progress: show a progress line on stderr (on a terminal).
        quiet: optional context-manager factory wrapped around the exports
            (the command line passes one that hides TensorFlow's native logs).

    Returns:
        A `BenchReport`. Latencies in ms for one call of `batch` images,
        throughput in images/s. It recommends a path only when two or more
        ran, among those whose outputs match Keras (see `recommend`).

    Raises:
        ValueError: naming the argument: an unknown path or model name, a
            missing file, weights that are neither a preset nor an existing
            file, a path the file cannot run on, a size the model does not
            take, a batch/warmup/repeats/threads below 1 (0 for warmup).
        ImportError: for a path named in `paths` whose package is missing,
            or when no path can run for want of a package (e.g. a .tflite
            file without LiteRT), naming the package and how to install it.
    """
    import keras

    _check(batch, warmup, repeats, threads)
    if isinstance(paths, str):
        paths = [p.strip() for p in paths.split(",") if p.strip()]
    bar = _Bar(progress is True)
    backend = keras.backend.backend()
    threads = threads or os.cpu_count()
    if backend == "tensorflow":
        threads = _set_tf_threads(threads)
    bar.stage("loading the model")
    kind, keras_model, path, label = _resolve(model, image_size, weights)
    chosen, skipped = _choose_paths(kind, paths, backend, label)  # raises when none can run
    shape = _input_shape(kind, keras_model, path, image_size, label)
    x = np.random.default_rng(0).normal(size=(batch,) + tuple(shape)).astype("float32")
    reference = None
    if keras_model is not None:
        try:
            if tuple(keras_model.input_shape[1:3]) != tuple(shape[:2]):
                keras_model = _fixed_size(keras_model, shape)
            reference = keras.ops.convert_to_numpy(keras_model(x, training=False))
        except ValueError as error:  # e.g. a size that shrinks to nothing in a 'valid' convolution
            if image_size is None:
                raise
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ValueError(f"`image_size`: {label} fails at {image_size}x{image_size} inputs ({reason}); give a "
                             f"larger size. Received: image_size={image_size}") from error
    tolerance = None if reference is None else TOLERANCE * float(np.abs(reference).max())

    runners, failed, workers = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="keras_senet_bench_") as workdir:
        try:
            backends = [p for p in chosen if p in WORKER_PATHS and p not in skipped]
            if backends:  # started first: they import and load while this process exports
                bar.stage("starting " + ", ".join(backends))
                model_file = path or save_for_workers(keras_model, workdir)
                for name in backends:
                    workers[name] = start_worker(name, model_file, x, workdir, threads)
            for name in chosen:
                if name in skipped:
                    continue
                bar.stage(f"preparing {name}")
                try:
                    runners[name] = prepare(name, keras_model, x, workdir, threads, file=path,
                                            worker=workers.pop(name, None), quiet=quiet)
                except Exception as error:  # noqa: BLE001  (reported in its row)
                    failed[name] = "failed: " + (str(error).strip().splitlines() or [type(error).__name__])[0]
            timed = list(runners.values())
            times = rounds([r.run for r in timed], warmup, repeats, bar.rounds)
        finally:
            for runner in runners.values():
                runner.close()
            for worker in workers.values():
                worker.close()
            bar.close()

    rows = []
    for name in chosen:
        if name in skipped or name in failed:
            rows.append(Row(name, skipped.get(name) or failed[name]))
            continue
        runner = runners[name]
        seconds = times[timed.index(runner)]
        stats = summary(seconds)
        diff = None
        if reference is not None:
            diff = difference(reference, runner.output)
        status = "not checked" if diff is None else "ok" if diff <= tolerance else "wrong"
        rows.append(Row(name, status, stats["median_ms"], stats["min_ms"], stats["max_ms"],
                        batch / (stats["median_ms"] / 1000), 1000 * runner.first_call_s, runner.prepare_s, diff,
                        tuple(1000 * s for s in seconds), runner.detail))
    return BenchReport(label, batch, tuple(shape), tuple(rows), recommend(rows), tolerance,
                       _thread_counts(chosen, skipped, threads), warmup, repeats, _machine())


def recommend(rows):
    """The path to recommend among `rows` (`Row`s), or None.

    Only a comparison recommends: at least two paths must have run, and the
    one chosen is the fastest whose output was checked against Keras and
    matched ("ok"). One path alone, or outputs not checked (a .tflite,
    .onnx or SavedModel input has no Keras model to compare with), give None.
    """
    good = [r for r in rows if r.status == "ok" and r.timed]
    if sum(r.timed for r in rows) < 2 or not good:
        return None
    return min(good, key=lambda r: r.median_ms).path


def difference(reference, output):
    """Max abs difference of `output` from `reference` (the Keras model's),
    as float64; inf when they hold different numbers of values."""
    reference, output = np.asarray(reference, "float64"), np.asarray(output, "float64")
    if output.size != reference.size:
        return float("inf")
    return float(np.abs(output.reshape(reference.shape) - reference).max())


def _fixed_size(model, shape):
    """A model that takes any size, rebuilt at `shape` (same weights): the
    exporters need a fixed input."""
    import keras

    from keras_senet import inputs

    fixed = keras.models.clone_model(model, input_tensors=keras.Input(shape))
    fixed.set_weights(model.get_weights())
    return inputs.attach(fixed, inputs.input_transform(model), inputs.class_names(model))


def _thread_counts(chosen, skipped, threads):
    names = {"graph": "tensorflow", "xla": "tensorflow", "litert": "litert", "onnx": "onnxruntime",
             "jax": "jax (cores)", "torch": "torch"}
    return {names[p]: threads for p in chosen if p not in skipped}


def _machine():
    import keras

    versions = [f"Keras {keras.__version__}"]
    if "tensorflow" in sys.modules:
        versions.append(f"TF {sys.modules['tensorflow'].__version__}")
    return f"{cpu_name()}, {os.cpu_count()} cores, " + ", ".join(versions)


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    _worker_main(int(sys.argv[2]))
