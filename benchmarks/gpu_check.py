"""GPU check: SE-ResNet-50 and SE-ResNeXt-50 against keras.applications.ResNet50.

For a machine with a GPU; CI does not run it there (tests/test_gpu_check.py
runs a tiny setting on the CPU). On each Keras backend the machine has
(tensorflow, jax, torch: each in its own subprocess, since KERAS_BACKEND is
fixed per process), in float32 and in mixed precision, it measures

- a training step: `model.train_on_batch` after
  `model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")`
  with the backend's default `jit_compile` (XLA on JAX; eager on torch; graph
  mode on TensorFlow, where Keras turns XLA off under tf.distribute), on
  synthetic data already on the device;
- inference: `model.predict_on_batch`, the same way;

for keras.applications.ResNet50 (the baseline) and the keras_senet models,
all with random weights at 224x224 and 1000 classes. Each step is timed to a
device sync (the loss or the outputs come back as numpy); it reports images/s
(median of the timed steps, with min and max), each model's ratio to ResNet-50
in the same backend, precision and mode, mixed precision's speed-up over
float32, peak GPU memory where the backend reports it (the synthetic batches
included), and the first step's time (compilation included). Under TensorFlow
the models are built and trained under `tf.distribute.MirroredStrategy` over
all GPUs; there `--batch` is per replica (`train_on_batch` hands every replica
the whole batch).

Mixed precision: "mixed_float16" is what `keras-senet train --mixed-precision`
sets on a GPU with tensor cores (with loss scaling); "mixed_bfloat16" needs no
loss scaling and runs at the same tensor-core rate on Ampere and newer. Both
are measured by default (float16 first, as the one users get), to tell whether
the recipe should prefer bfloat16 there.

Measurements run in order of importance (float32, then each mixed policy; per
precision train then inference; per mode ResNet-50 first), each result is kept
as soon as it is measured, and --time-limit bounds the whole run: each backend
gets an equal share of the time left, skips what it cannot finish within its
share (judged by the measurements before) and is stopped at the end of it,
keeping what it measured. The JSON file is rewritten (atomically) after each
backend, so a run cut short still leaves valid, partial results.

With `--backends ... timm` it also measures the same architectures in PyTorch
through timm (resnet50, seresnet50, seresnext50_32x4d: the reference the
weights come from), as a PyTorch user runs them: eager, SGD, cross-entropy,
`torch.autocast` (and loss scaling for float16) for the mixed policies, the
memory format from --data-format. `--data-format channels_first` runs the
Keras models in NCHW, which spares the torch backend a transpose around every
convolution.

The check also records whether TensorFlow was imported in the jax and torch
processes (keras_senet must run there without it), whether each backend ran
on the GPU when nvidia-smi shows one, and whether the first loss and the
outputs are finite; it exits 1 when a check, a measurement or a backend's
process failed (not for what the time limit left unmeasured).

    python benchmarks/gpu_check.py                          # every backend installed, ~5 min
    python benchmarks/gpu_check.py --backends jax torch timm --precisions float32 mixed_bfloat16
    python benchmarks/gpu_check.py --backends jax --precisions float32 mixed_bfloat16 --steps 5
    python benchmarks/gpu_check.py --size 64 --batch 2 --steps 2 --warmup 1 --models SEResNet50  # CPU smoke

Where only torch and/or jax are installed (no TensorFlow, no Keras, no package
index), bring Keras and the dependencies such a machine lacks as wheels, made
where there is an index (typing_extensions is optree's; torch brings it too):

    pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \\
        --platform manylinux2014_x86_64 -d .whl keras==3.15.1 namex optree typing_extensions
    # on the GPU machine, in the repository root:
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    PYTHONPATH=/tmp/site:$PWD python3 benchmarks/gpu_check.py --backends torch jax --output gpu_check.json

Writes a table on stdout and the JSON file --output (default gpu_check.json).
"""

import argparse
import contextlib
import gc
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

BACKENDS = ("tensorflow", "jax", "torch", "timm")
KERAS_BACKENDS = BACKENDS[:3]
# Keras model -> the same architecture in timm (PyTorch), the reference. timm's resnet50 strides on
# its 3x3 convs, keras.applications.ResNet50 on its 1x1s (4.09 vs 3.86 GMACs): a ratio to timm's
# resnet50 is one to a slightly heavier baseline.
TIMM_NAMES = {"ResNet50": "resnet50", "SEResNet50": "seresnet50", "SEResNeXt50": "seresnext50_32x4d",
              "SEResNet101": "seresnet101", "SEResNeXt101": "seresnext101_32x4d", "SENet154": "senet154"}
DATA_FORMATS = ("channels_last", "channels_first")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
MODES = ("train", "infer")
BASELINE = "ResNet50"  # keras.applications.ResNet50
DEFAULT_MODELS = ("SEResNet50", "SEResNeXt50")
CLASSES = 1000
PACKAGES = ("keras", "numpy", "optree", "namex", "tensorflow", "jax", "jaxlib", "torch", "timm", "ml-dtypes", "h5py")
BAD_ARGUMENT = 2  # exit status for a rejected argument, as argparse's


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Images/s of keras_senet models against keras.applications.ResNet50 on each Keras backend, "
                    "float32 and mixed precision, training step and inference (see the module docstring).")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=None,
                        help="Keras backends to measure, each in its own process, and 'timm': the same "
                             "architectures in PyTorch (timm's models, eager, SGD step with autocast for mixed "
                             "precision), the reference (default: every one of "
                             f"{', '.join(BACKENDS)} that is installed)")
    parser.add_argument("--data-format", choices=DATA_FORMATS, default="channels_last",
                        help="Keras image data format (channels_first avoids the NHWC<->NCHW transposes of the "
                             "torch backend); for timm, the memory format (default: channels_last)")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                        help="keras_senet constructor names to compare with keras.applications.ResNet50, which is "
                             f"always measured (default: {' '.join(DEFAULT_MODELS)})")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS),
                        help="Keras dtype policies, measured in this order (default: all three)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES),
                        help="train: one SGD step (train_on_batch); infer: predict_on_batch (default: both)")
    parser.add_argument("--size", type=positive_int, default=224,
                        help="input height and width in pixels, at least 32 (default: 224)")
    parser.add_argument("--batch", type=positive_int, default=128,
                        help="training batch size (per replica under MirroredStrategy; default: 128)")
    parser.add_argument("--infer-batch", type=positive_int, default=None,
                        help="inference batch size (default: twice --batch)")
    parser.add_argument("--warmup", type=positive_int, default=3,
                        help="untimed steps before timing; the first one compiles (default: 3)")
    parser.add_argument("--steps", type=positive_int, default=10,
                        help="timed steps per model, precision and mode (default: 10)")
    parser.add_argument("--time-limit", type=positive_int, default=290,
                        help="seconds for the whole check: each backend gets an equal share of the time left, "
                             "skips a measurement it cannot finish within its share (judged by the ones before) "
                             "and is stopped at the end of it, keeping what it measured (default: 290)")
    parser.add_argument("--output", default="gpu_check.json",
                        help="JSON file to write, replaced atomically (default: gpu_check.json)")
    # internal, for one backend's process: the JSON-lines file it appends to, and its deadline (time.time())
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-kind", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.size < 32:
        parser.error(f"--size must be at least 32 (ResNet-50 downsamples 32x), got {args.size}")
    if args.infer_batch is None:
        args.infer_batch = 2 * args.batch
    return args


# ---------------------------------------------------------------- parent

def installed_backends():
    """The Keras backends whose framework is importable, and timm where it and torch are, without
    importing them."""
    return [name for name in BACKENDS
            if all(importlib.util.find_spec(m) is not None for m in ({name, "torch"} if name == "timm" else {name}))]


def nvidia_smi():
    """GPUs as nvidia-smi lists them (name, memory, driver), or [] without it."""
    if shutil.which("nvidia-smi") is None:
        return []
    fields = ("name", "memory.total", "driver_version", "compute_cap")
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if out.returncode:
        return []
    return [dict(zip(fields, (v.strip() for v in line.split(",")))) for line in out.stdout.splitlines() if line]


def machine_facts():
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {"gpus": nvidia_smi(), "python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "packages": versions}


def run_backend(backend, argv, share):
    """Runs one backend's worker process for at most `share` seconds.

    Returns:
        (facts, results): the backend's facts (with the process's status and
        wall time) and its result records, as far as it got.
    """
    if share < 1:
        return {"status": "not started: --time-limit spent", "exit_status": None, "wall_s": 0, "checks": None}, []
    with tempfile.TemporaryDirectory() as tmp:
        lines = os.path.join(tmp, "results.jsonl")
        start = time.time()
        command = [sys.executable, os.path.abspath(__file__), *argv,
                   "--worker", lines, "--worker-kind", backend, "--deadline", str(start + share)]
        # timm's process runs Keras (for the synthetic data and the policy names) on torch
        env = dict(os.environ, KERAS_BACKEND="torch" if backend == "timm" else backend, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
        try:
            code = subprocess.run(command, env=env, timeout=share).returncode
            status = "ok" if code == 0 else f"failed (exit status {code})"
        except subprocess.TimeoutExpired:
            code, status = None, f"stopped at the end of its {share:.0f} s share of --time-limit"
        wall = time.time() - start
        records = []
        if os.path.exists(lines):
            with open(lines) as f:
                records = [json.loads(line) for line in f if line.endswith("\n")]
    by_kind = {kind: [{k: v for k, v in r.items() if k != "kind"} for r in records if r["kind"] == kind]
               for kind in ("facts", "result", "checks")}
    facts = {**(by_kind["facts"] or [{}])[0], "status": status, "exit_status": code, "wall_s": round(wall, 1),
             "checks": (by_kind["checks"] or [None])[-1]}
    return facts, by_kind["result"]


def batch_size(args, mode):
    return args.batch if mode == "train" else args.infer_batch


def plan(args):
    """(precision, mode, model) in the order measured: most important first."""
    return [(precision, mode, model) for precision in args.precisions for mode in args.modes
            for model in [BASELINE, *args.models]]


def add_ratios(results):
    """Each model's images/s over ResNet-50's (same backend, precision, mode)
    and over its own float32 images/s (mixed precision's speed-up)."""
    speed = {(r["backend"], r["precision"], r["mode"], r["model"]): r["images_per_s"]["median"]
             for r in results if "images_per_s" in r}
    for r in results:
        key = (r["backend"], r["precision"], r["mode"])
        own = speed.get((*key, r["model"]))
        base = speed.get((*key, BASELINE))
        fp32 = speed.get((r["backend"], "float32", r["mode"], r["model"]))
        r["ratio_to_resnet50"] = own / base if own and base else None
        r["speedup_vs_float32"] = own / fp32 if own and fp32 and r["precision"] != "float32" else None


def failed_checks(report):
    problems = []
    for backend, facts in report["backends"].items():
        if facts["status"].startswith("failed"):  # not a stop at the time limit: that only skips
            problems.append(f"{backend}: {facts['status']}")
        for name, ok in (facts.get("checks") or {}).items():
            if ok is False:
                problems.append(f"{backend}: check {name} failed")
    problems += [f"{r['backend']} {r['precision']} {r['mode']} {r['model']}: {r['error']}"
                 for r in report["results"] if "error" in r]
    return problems


def write_json(report, path, indent=1):
    """Writes `report` to `path` through a temporary file in the same folder
    (also benchmarks/run.py's writer)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".benchmark.", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(report, f, indent=indent)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def note(result):
    """What is wrong with a measured result's numbers, or ""."""
    if not result["outputs_finite"]:
        return "first loss not finite" if result["mode"] == "train" else "outputs not finite"
    if result["mode"] == "train" and result["loss"] is None:
        return "last loss not finite (diverged on the synthetic labels)"
    return ""


def table(report):
    """The report as text: machine and settings, then one row per measurement."""
    def number(value, fmt):
        return "-" if value is None else format(value, fmt)

    rows = [("backend", "precision", "mode", "model", "batch", "images/s", "min", "max", "/ResNet50",
             "/float32", "peak MB", "1st step s", "note")]
    for r in report["results"]:
        head = (r["backend"], r["precision"], r["mode"], r["model"], str(r["batch"]))
        if "images_per_s" not in r:
            rows.append((*head, *["-"] * 7, "error: " + r["error"][:100] if "error" in r else r["skipped"]))
            continue
        ips = r["images_per_s"]
        rows.append((*head, number(ips["median"], ".1f"), number(ips["min"], ".1f"), number(ips["max"], ".1f"),
                     number(r["ratio_to_resnet50"], ".3f"), number(r["speedup_vs_float32"], ".2f"),
                     number(r["peak_memory_mb"], ".0f"), number(r["first_step_s"], ".1f"), note(r)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if i < 4 or i == 12 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in rows]
    machine, settings = report["machine"], report["settings"]
    gpus = ", ".join(g["name"] for g in machine["gpus"]) or "none seen by nvidia-smi"
    header = [f"GPUs: {gpus}; Python {machine['python']}, Keras {machine['packages'].get('keras', '?')}",
              *(f"{b}: {f.get('version', '?')} on {f.get('device', '?')}, {f['status']}, {f['wall_s']} s"
                for b, f in report["backends"].items()),
              f"{settings['size']}x{settings['size']}, warm-up {settings['warmup']} steps, timed {settings['steps']};"
              " images/s: median, min and max of the timed steps; /ResNet50: over keras.applications.ResNet50's"
              " images/s (same backend, precision, mode); /float32: over the same model's float32"]
    return "\n".join(header + [""] + lines[:1] + ["-" * max(map(len, lines))] + lines[1:])


def bad_argument(message):
    print(f"gpu_check.py: error: {message}", file=sys.stderr)
    return BAD_ARGUMENT


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    installed = installed_backends()
    backends = args.backends or installed
    missing = [b for b in backends if b not in installed]
    if missing:
        return bad_argument(f"--backends: {', '.join(missing)} is not installed here (installed: "
                            f"{', '.join(installed) or 'none'}); install it or leave it out")
    if not backends:
        return bad_argument(f"no Keras backend installed (none of {', '.join(BACKENDS)} imports); install one")
    if not os.path.isdir(os.path.dirname(os.path.abspath(args.output))):
        return bad_argument(f"--output {args.output}: its folder does not exist; create it or choose another path")
    report = {
        "tool": "benchmarks/gpu_check.py",
        "complete": False,
        "settings": {"backends": backends, "data_format": args.data_format, "baseline": f"keras.applications.{BASELINE}", "models": args.models,
                     "precisions": args.precisions, "modes": args.modes, "size": args.size, "classes": CLASSES,
                     "batch": {"train": args.batch, "infer": args.infer_batch}, "warmup": args.warmup,
                     "steps": args.steps, "time_limit_s": args.time_limit},
        "machine": machine_facts(), "backends": {}, "results": [],
    }
    print(f"gpu_check: {', '.join(backends)}; GPUs: {report['machine']['gpus'] or 'none'}", flush=True)
    end = time.time() + args.time_limit
    for i, backend in enumerate(backends):
        facts, results = run_backend(backend, argv, (end - time.time()) / (len(backends) - i))
        if facts["exit_status"] == BAD_ARGUMENT:  # the worker named the argument on stderr; nothing written
            return BAD_ARGUMENT
        done = {(r["precision"], r["mode"], r["model"]) for r in results}
        why = "not measured within --time-limit" if facts["status"] == "ok" else f"not measured: {facts['status']}"
        results += [{"backend": backend, "precision": precision, "mode": mode, "model": model,
                     "batch": batch_size(args, mode), "skipped": why}
                    for precision, mode, model in plan(args) if (precision, mode, model) not in done]
        report["backends"][backend] = facts
        report["results"] += results
        add_ratios(report["results"])
        report["problems"] = failed_checks(report)
        write_json(report, args.output)
    report["complete"] = True
    write_json(report, args.output)
    print("\n" + table(report))
    for problem in report["problems"]:
        print("PROBLEM:", problem)
    skipped = sum("skipped" in r for r in report["results"])
    if skipped:
        print(f"NOT MEASURED: {skipped} of {len(report['results'])} (see the table)")
    print(f"\nwrote {args.output}")
    return 1 if report["problems"] else 0


# ---------------------------------------------------------------- worker (one backend per process)

def backend_facts(backend, strategy):
    """The framework's version and the device the models run on."""
    import keras

    facts = {"kind": "facts", "backend": backend, "keras": keras.__version__}
    if backend in ("torch", "timm"):
        import torch

        cuda = torch.cuda.is_available()
        facts.update(version=torch.__version__, cuda=torch.version.cuda, on_gpu=cuda,
                     device=torch.cuda.get_device_name(0) if cuda else "cpu", devices_used=1,
                     cudnn_benchmark=torch.backends.cudnn.benchmark,
                     conv_tf32=torch.backends.cudnn.allow_tf32, matmul_tf32=torch.backends.cuda.matmul.allow_tf32)
        if backend == "timm":
            import timm

            facts["timm"] = timm.__version__
    elif backend == "jax":
        import jax

        device = jax.devices()[0]
        facts.update(version=jax.__version__, on_gpu=device.platform == "gpu",
                     device=f"{device.platform}: {device.device_kind}", devices_used=1,
                     matmul_precision=str(jax.config.jax_default_matmul_precision))
    else:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        names = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
        facts.update(version=tf.__version__, on_gpu=bool(gpus), device=", ".join(names) or "cpu",
                     strategy=type(strategy).__name__, devices_used=strategy.num_replicas_in_sync)
    return facts


class PeakMemory:
    """Peak GPU memory (MB) of one measurement, where the backend reports it.

    torch and TensorFlow reset their peak counters per measurement; JAX has no
    reset, so its figure is the process's peak so far (scope "process").
    """

    def __init__(self, backend):
        self.backend = backend
        self.scope = "process" if backend == "jax" else "measurement"

    def reset(self):
        if self.backend in ("torch", "timm"):
            import torch

            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
        elif self.backend == "tensorflow":
            import tensorflow as tf

            if tf.config.list_physical_devices("GPU"):
                tf.config.experimental.reset_memory_stats("GPU:0")

    def peak_mb(self):
        if self.backend in ("torch", "timm"):
            import torch

            return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
        if self.backend == "tensorflow":
            import tensorflow as tf

            if not tf.config.list_physical_devices("GPU"):
                return None
            return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        return stats["peak_bytes_in_use"] / 2**20 if "peak_bytes_in_use" in stats else None


def image_shape(args):
    """One image's shape: PyTorch's (timm's) is always (C, H, W), channels_last being a memory format."""
    if args.data_format == "channels_first" or args.worker_kind == "timm":
        return (3, args.size, args.size)
    return (args.size, args.size, 3)


def build(name, args):
    import keras

    import keras_senet

    if name == BASELINE:
        return keras.applications.ResNet50(weights=None, input_shape=image_shape(args), classes=CLASSES)
    return getattr(keras_senet, name)(weights=None, input_shape=image_shape(args), classes=CLASSES)


def keras_step(name, mode, x, y, args, strategy):
    """One compiled Keras model's training or inference step."""
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = build(name, args)
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    if mode == "train":
        def step():
            return float(model.train_on_batch(x, y))  # a Python float: waits for the device
    else:
        def step():
            return model.predict_on_batch(x)  # numpy: waits for the device
    return model.count_params(), bool(model.jit_compile), step


def timm_step(name, mode, x, y, args):
    """The same step for timm's model of the same architecture, as a PyTorch user writes it: SGD,
    cross-entropy, autocast (with loss scaling for float16) for the mixed policies."""
    import timm
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    memory_format = torch.channels_last if args.data_format == "channels_last" else torch.contiguous_format
    model = timm.create_model(TIMM_NAMES[name], num_classes=CLASSES).to(device, memory_format=memory_format)
    x = x.to(memory_format=memory_format)
    policy = keras_policy()
    dtype = {"mixed_float16": torch.float16, "mixed_bfloat16": torch.bfloat16}.get(policy)
    autocast = (lambda: torch.autocast(device, dtype=dtype)) if dtype else contextlib.nullcontext
    if mode == "train":
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        scaler = torch.amp.GradScaler(device, enabled=dtype == torch.float16)

        def step():
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                loss = torch.nn.functional.cross_entropy(model(x), y.long())
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            return float(loss)  # waits for the device
    else:
        model.eval()

        def step():
            with torch.no_grad(), autocast():
                return model(x).float().cpu().numpy()
    return sum(p.numel() for p in model.parameters()), False, step


def keras_policy():
    import keras

    return keras.mixed_precision.global_policy().name


def measure(name, mode, data, args, strategy, memory):
    """Builds, compiles, warms up and times one model; returns the result's fields."""
    x, y = data[mode]
    memory.reset()
    if args.worker_kind == "timm":
        parameters, jit, step = timm_step(name, mode, x, y, args)
    else:
        parameters, jit, step = keras_step(name, mode, x, y, args, strategy)
    start = time.perf_counter()
    out = first_out = step()
    first = time.perf_counter() - start
    for _ in range(args.warmup - 1):
        out = step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        out = step()
        times.append(time.perf_counter() - start)
    replicas = strategy.num_replicas_in_sync if strategy else 1
    images = int(x.shape[0]) * replicas
    speeds = [images / t for t in times]
    # The first loss is the initial model's, before any update: not finite means a numerical fault (e.g. a
    # float16 overflow). Later losses may diverge (SGD repeating one batch of random labels): reported only.
    finite = math.isfinite(first_out) if mode == "train" else bool(_all_finite(out))
    result = {"batch": int(x.shape[0]), "replicas": replicas, "images_per_step": images,
              "jit_compile": jit, "first_step_s": round(first, 3),
              "step_s": times,
              "images_per_s": {"median": statistics.median(speeds), "min": min(speeds), "max": max(speeds)},
              "peak_memory_mb": memory.peak_mb(), "peak_memory_scope": memory.scope,
              "outputs_finite": finite, "parameters": parameters}
    if mode == "train":
        # None for a loss that is not finite: JSON has no NaN
        result.update(first_loss=first_out if math.isfinite(first_out) else None,
                      loss=out if math.isfinite(out) else None)
    return result


def _all_finite(array):
    import numpy as np

    return np.isfinite(np.asarray(array, dtype="float32")).all()


def synthetic_data(args):
    """Images and labels per mode, converted to the backend's tensors (on the GPU where there is one)."""
    import numpy as np
    from keras import ops

    rng = np.random.default_rng(0)
    data = {}
    for mode in MODES:
        batch = batch_size(args, mode)
        x = rng.uniform(-1, 1, size=(batch, *image_shape(args))).astype("float32")
        y = rng.integers(0, CLASSES, size=(batch,)).astype("int32")
        data[mode] = (ops.convert_to_tensor(x), ops.convert_to_tensor(y))
    return data


def worker(args):
    """Measures every model, precision and mode on this process's backend,
    appending one JSON line per result to the file `args.worker`."""
    backend = args.worker_kind
    import keras

    import keras_senet

    # The constructor names, without importing every family's module as keras_senet.MODELS would.
    names = keras_senet._MODEL_NAMES
    unknown = [m for m in args.models if m not in names]
    if unknown:
        return bad_argument(f"--models: unknown {', '.join(unknown)}; choose from {', '.join(names)}")
    if backend == "timm" and any(m not in TIMM_NAMES for m in args.models):
        return bad_argument(f"--models: timm has no equivalent here for "
                            f"{', '.join(m for m in args.models if m not in TIMM_NAMES)}; choose from "
                            f"{', '.join(TIMM_NAMES)} or leave timm out of --backends")
    if keras.backend.backend() != os.environ["KERAS_BACKEND"]:
        raise RuntimeError(f"KERAS_BACKEND={os.environ['KERAS_BACKEND']} but Keras runs {keras.backend.backend()}")
    keras.config.set_image_data_format(args.data_format)
    strategy = None
    if backend == "tensorflow":
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")  # each new model's first step warns of "retracing"
        strategy = tf.distribute.MirroredStrategy()
    facts = {**backend_facts(backend, strategy), "keras_senet": keras_senet.__version__}
    memory = PeakMemory(backend)

    def emit(record):
        with open(args.worker, "a") as f:
            f.write(json.dumps(record) + "\n")

    def checks():  # emitted after every measurement: a process stopped at the time limit keeps them
        found = {"kind": "checks", "outputs_finite": all(r.get("outputs_finite", True) for r in measured)}
        if backend != "tensorflow":
            found["tensorflow_not_imported"] = "tensorflow" not in sys.modules
        if gpu_present:
            found["ran_on_gpu"] = bool(facts["on_gpu"])
        return found

    gpu_present = bool(nvidia_smi())
    measured, longest = [], {}  # longest: the slowest measurement so far per mode, in seconds
    emit(facts)
    emit(checks())
    print(f"[{backend}] {facts['version']} on {facts['device']}", flush=True)
    data = synthetic_data(args)
    for precision, mode, name in plan(args):
        # a mode not measured yet is judged by the quickest mode measured (inference after training)
        if time.time() + longest.get(mode, min(longest.values(), default=0)) > args.deadline:
            print(f"[{backend}] time limit: skips {precision} {mode} {name}", flush=True)
            continue
        keras.mixed_precision.set_global_policy(precision)
        record = {"kind": "result", "backend": backend, "precision": precision, "mode": mode, "model": name}
        start = time.time()
        try:
            record.update(measure(name, mode, data, args, strategy, memory))
            ips = record["images_per_s"]
            print(f"[{backend}] {precision} {mode} {name}: {ips['median']:.1f} images/s "
                  f"(first step {record['first_step_s']:.1f} s)", flush=True)
        except Exception as error:  # one failure (e.g. out of memory) does not stop the others
            traceback.print_exc()
            record.update(batch=batch_size(args, mode), error=f"{type(error).__name__}: {str(error)[:400]}")
        finally:  # free the model's device memory before the next peak is measured
            keras.backend.clear_session()
            gc.collect()
        longest[mode] = max(longest.get(mode, 0), time.time() - start)
        measured.append(record)
        emit(record)
        emit(checks())
    return 0


if __name__ == "__main__":
    sys.exit(main())
