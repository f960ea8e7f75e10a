"""Speed of keras-senet against its baselines, measured side by side.

Every comparison builds both models (random weights, the same input), warms
both up, then times them alternately (A, B, A, B, ...) so that drift in the
machine's speed hits both; it reports medians with min/max and the ratio of
medians. The timing and the LiteRT, onnxruntime, JAX and PyTorch paths are
keras_senet.bench's (what `keras-senet bench` runs). Measured:

- inference latency (batch 1) and throughput (batch 32) in graph mode
  (`tf.function`) and with XLA (`jit_compile=True`);
- a training step (`train_on_batch`, SGD);
- peak memory (resident set of a fresh process that builds the model and
  runs one batch-32 inference);
- TFLite fp32 / fp16 / dynamic-range int8 / full int8 latency in LiteRT;
- timm's PyTorch models on the same CPU with the same thread count (when
  torch and timm are installed), batch 1, alternated in the same rounds with
  the TF graph and, for SE-ResNet-50 and SE-ResNeXt-50, with LiteRT fp32,
  onnxruntime and Keras' JAX and PyTorch backends (worker processes that time
  their own calls); for those two also a training step (SGD, --train-batch)
  on TensorFlow, JAX and PyTorch against timm's.

    python benchmarks/run.py                       # everything (20+ min on 2 cores)
    python benchmarks/run.py --only se_resnet50 --skip tflite timm
    python benchmarks/run.py --skip backends       # no JAX / PyTorch Keras backends
    python benchmarks/run.py --quick               # a smoke run: small inputs, few repeats
    python benchmarks/run.py --resume              # go on with a stopped run's missing sections

Writes benchmarks/results.json, .md (tables) and .png (chart), or --output.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # keras_senet from this checkout

from keras_senet.bench import alternate, cpu_name, summary  # noqa: E402,F401  (the one timing code; grouped_conv.py reads them here)

# name: (candidate, baseline, target ratio for batch-1 graph latency or None)
PAIRS = {
    "se_resnet50": ("SEResNet50[caffe]", "keras.ResNet50", 1.02),
    "se_resnext50": ("SEResNeXt50", "SEResNet50", 1.10),
    "se_mobilenetv3_large": ("SEMobileNetV3Large", "keras.MobileNetV3Large", None),
    "se_mobilenet": ("SEMobileNet", "keras.MobileNet", None),
}
# Keras model -> the timm model with the same architecture
TIMM = {"SEResNet50[caffe]": "legacy_seresnet50", "SEResNet50": "seresnet50", "SEResNeXt50": "seresnext50_32x4d",
        "SEMobileNetV3Large": "mobilenetv3_large_100"}
TFLITE_MODELS = ("SEResNet50", "SEMobileNetV3Large")
# Models timed on every execution path of keras_senet.bench (and its JAX and
# PyTorch Keras backends, forward and training step) next to timm.
BACKEND_MODELS = ("SEResNet50", "SEResNeXt50")
BACKEND_PATHS = ("graph", "litert", "onnx", "jax", "torch")  # XLA: its own section
# issue 17's targets, as timm's time / the path's (at least)
FASTER_THAN_TIMM = {"litert": {"SEResNet50": 1.5, "SEResNeXt50": 1.3},
                    "onnx": {"SEResNet50": 1.3, "SEResNeXt50": 1.3}}
# Batch-1 latencies are short and noisy (+-10% between runs of 7 rounds
# here): they get this many times --repeats rounds.
BATCH1_ROUNDS = 5
SECTIONS = ("graph", "xla", "train", "memory", "grouped_conv", "tflite", "timm", "backends")


def build(spec, size, channels=3):
    """A model by spec: "SEResNet50", "SEResNet50[caffe]" or "keras.ResNet50"."""
    import keras

    import keras_senet

    shape = (size, size, channels)
    if spec.startswith("keras."):
        return getattr(keras.applications, spec[6:])(weights=None, input_shape=shape)
    name, _, variant = spec.partition("[")
    options = {"variant": variant.rstrip("]")} if variant else {}
    return keras_senet.MODELS[name](weights=None, input_shape=shape, **options)


def compare(name, a, b, results, target=None, at_least=False, **extra):
    """Record A / B; `target` bounds the ratio from above (or from below
    with `at_least`, for "A takes at least N times as long as B")."""
    ratio = a["median_ms"] / b["median_ms"]
    met = None if target is None else (ratio >= target if at_least else ratio <= target)
    row = {"name": name, "a": a, "b": b, "ratio": ratio, "target": target, "at_least": at_least, "met": met, **extra}
    results.append(row)
    mark = "" if target is None else " (target %s %.2f: %s)" % (">=" if at_least else "<=", target,
                                                               "met" if met else "NOT met")
    print(f"{name:<58} {a['median_ms']:9.1f} {b['median_ms']:9.1f} ms  ratio {ratio:5.3f}{mark}", flush=True)
    return row


def inference(models, batch, size, jit, args):
    import numpy as np
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(0).normal(size=(batch, size, size, 3)).astype("float32"))
    fns = []
    for model in models:
        forward = tf.function(lambda x, m=model: m(x, training=False), jit_compile=jit)
        fns.append(lambda f=forward: f(x).numpy())
    return alternate(fns, args.warmup, args.repeats * BATCH1_ROUNDS if batch == 1 else args.repeats)


def train_step(models, batch, size, args):
    import keras
    import numpy as np

    x = np.random.default_rng(0).normal(size=(batch, size, size, 3)).astype("float32")
    y = np.zeros(batch, "int64")
    for model in models:
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy")
    return alternate([lambda m=m: m.train_on_batch(x, y) for m in models], args.warmup, args.repeats)


def peak_memory_mb(spec, size, batch):
    """Peak resident memory (MB) of a fresh process running one batch.

    Read from VmHWM, which starts afresh at exec; getrusage's ru_maxrss
    would carry this (large) process's peak over into the child.
    """
    code = (
        "import numpy as np, sys; sys.path.insert(0, %r); import run; "
        "m = run.build(%r, %d); m.predict(np.zeros((%d, %d, %d, 3), 'float32'), verbose=0, batch_size=%d); "
        "print([int(l.split()[1]) / 1024 for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
    ) % (HERE, spec, size, batch, size, size, batch)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return float(out.stdout.strip().splitlines()[-1])


def grouped_conv(args, results):
    """GroupedConv2D (its "auto" kernel; benchmarks/grouped_conv.py compares its two) vs Keras'
    Conv2D(groups=32) (an XLA-compiled call on TensorFlow), 8x28x28x256."""
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_senet.layers.grouped_conv import GroupedConv2D

    x = tf.constant(np.random.default_rng(0).normal(size=(8, 28, 28, 256)).astype("float32"))
    ours = GroupedConv2D(256, 3, padding="same", groups=32, use_bias=False)
    native = keras.layers.Conv2D(256, 3, padding="same", groups=32, use_bias=False)
    ours.build(x.shape)
    native.build(x.shape)
    native.set_weights(ours.get_weights())
    fns = [tf.function(lambda x, l=layer: l(x)) for layer in (ours, native)]
    a, b = alternate([lambda f=f: f(x).numpy() for f in fns], args.warmup, args.repeats * 2)
    compare("grouped 3x3 conv, 32 groups, 8x28x28x256: GroupedConv2D / Conv2D(groups)", a, b, results)


def recalibrate_batchnorm(model, images):
    """Set BatchNorm statistics to those of `images`, as training would.

    With random weights and identity statistics activations grow layer by
    layer; int8 ranges then differ from a trained network's by orders of
    magnitude, and XNNPACK refuses int8 ADDs whose input and output scales
    are too far apart (they fall back to slower kernels), which no trained
    model would show.
    """
    import keras

    saved = {layer: layer.momentum for layer in model._flatten_layers()
             if isinstance(layer, keras.layers.BatchNormalization)}
    for layer in saved:
        layer.momentum = 0.0  # the moving statistics become this batch's
    model(images, training=True)
    for layer, momentum in saved.items():
        layer.momentum = momentum


def tflite(spec, size, args, results):
    """fp32 / fp16 / dynamic / int8 TFLite latency of one model in LiteRT
    (keras_senet.bench's LiteRT runner, batch 1)."""
    import numpy as np

    from keras_senet import bench
    from keras_senet.export import to_tflite

    model = build(spec, size)
    rng = np.random.default_rng(0)
    # Calibration data only sets quantization ranges; for latency random
    # pixels do, through the model's own input transform.
    pixels = rng.normal(128, 60, size=(8, size, size, 3)).clip(0, 255)
    calibration = [np.asarray(model.input_transform.normalize(pixels), "float32")]
    recalibrate_batchnorm(model, calibration[0])
    runners = {}
    with tempfile.TemporaryDirectory() as tmp:
        for quantize in (None, "float16", "dynamic", "int8"):
            path = os.path.join(tmp, f"{quantize or 'fp32'}.tflite")
            to_tflite(model, path, quantize=quantize, representative_data=calibration if quantize == "int8" else None,
                      sample=calibration[0][:1], num_threads=args.threads)
            runners[quantize or "fp32"] = bench.litert_runner(path, calibration[0][:1], args.threads)
        timed = [summary(t) for t in bench.rounds([r.run for r in runners.values()], args.warmup,
                                                  args.repeats * BATCH1_ROUNDS)]
    timed = dict(zip(runners, timed))
    for kind in ("fp16", "dynamic", "int8"):
        kind_key = "float16" if kind == "fp16" else kind
        compare(f"{spec} LiteRT fp32 / {kind} (batch 1)", timed["fp32"], timed[kind_key], results,
                target={"int8": 1.5 if "MobileNet" in spec else 3.0}.get(kind), at_least=True)
    return timed


def timm_model(spec, train=False):
    """timm's model with the same architecture as `spec`, random weights."""
    import timm

    model = timm.create_model(TIMM[spec], pretrained=False)
    return model.train() if train else model.eval()


def timm_forward(spec, x):
    """A function running timm's `spec` on `x` (NHWC numpy) once, no gradients."""
    import torch

    reference, xt = timm_model(spec), torch.from_numpy(x.transpose(0, 3, 1, 2).copy())

    def run():
        with torch.inference_mode():
            reference(xt)

    return run


def timm_train_step(spec, x):
    """A function making one SGD step (momentum 0.9, cross-entropy on labels
    0) of timm's `spec` on `x`, as train_step's Keras models do."""
    import torch

    reference = timm_model(spec, train=True)
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.01, momentum=0.9)
    xt, yt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), torch.zeros(len(x), dtype=torch.long)

    def step():
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(reference(xt), yt).backward()
        optimizer.step()

    return step


def paths_vs_timm(spec, size, args, results):
    """Batch-1 forward of `spec` on keras_senet.bench's paths (the TF graph
    only, or every path in BACKEND_PATHS for BACKEND_MODELS), alternated
    with timm's PyTorch model in the same rounds; each path against timm."""
    import keras
    import numpy as np
    import torch

    from keras_senet import bench

    torch.set_num_threads(args.threads)
    model = build(spec, size)
    x = np.random.default_rng(0).normal(size=(1, size, size, 3)).astype("float32")
    paths = [p for p in BACKEND_PATHS if bench.installed(p)] if spec in BACKEND_MODELS else ["graph"]
    if "backends" in args.skip:
        paths = [p for p in paths if p not in bench.WORKER_PATHS]
    runners = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for path in paths:
                runners.append(bench.prepare(path, model, x, tmp, args.threads))
            times = bench.rounds([r.run for r in runners] + [bench.stopwatch(timm_forward(spec, x))],
                                 args.warmup, args.repeats * BATCH1_ROUNDS)
        finally:
            for runner in runners:
                runner.close()
    reference = summary(times[-1])
    keras_output = keras.ops.convert_to_numpy(model(x, training=False))
    tag = f"timm {TIMM[spec]} (torch {torch.__version__}, batch 1)"
    for runner, seconds in zip(runners, times):
        mine = summary(seconds)
        diff = bench.difference(keras_output, runner.output)  # as `keras-senet bench` checks each path
        if diff > bench.TOLERANCE * float(np.abs(keras_output).max()):
            print(f"  {spec} {runner.path}: output differs from Keras by {diff:.2e} (beyond bench's tolerance)")
        if runner.path in FASTER_THAN_TIMM:  # the targets: "N x faster than timm"
            compare(f"{tag} / {spec} {runner.path}", reference, mine, results,
                    target=FASTER_THAN_TIMM[runner.path].get(spec), at_least=True, max_abs_diff=diff)
        else:
            compare(f"{spec} {runner.path} / {tag}", mine, reference, results,
                    target=1.0 if runner.path == "graph" and spec in BACKEND_MODELS else None, max_abs_diff=diff)


def train_vs_timm(spec, size, args, results):
    """A training step of `spec` (batch --train-batch) on TensorFlow in this
    process and on Keras' JAX and PyTorch backends (keras_senet.bench's
    workers), alternated with timm's; each against timm."""
    import keras
    import numpy as np

    from keras_senet import bench

    model = build(spec, size)
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(args.train_batch, size, size, 3)).astype("float32")
    y = np.zeros(len(x), "int64")
    runners = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            file = bench.save_for_workers(model, tmp)
            for backend in bench.WORKER_PATHS:
                if bench.installed(backend):
                    worker = bench.start_worker(backend, file, x, tmp, args.threads, mode="train")
                    runners.append(bench.worker_runner(worker))
            timers = [bench.stopwatch(lambda: model.train_on_batch(x, y))] + [r.run for r in runners]
            times = bench.rounds(timers + [bench.stopwatch(timm_train_step(spec, x))], args.warmup, args.repeats)
        finally:
            for runner in runners:
                runner.close()
    reference = summary(times[-1])
    for name, seconds in zip(["tensorflow"] + [r.path for r in runners], times):
        compare(f"{spec} train step on {name} / timm {TIMM[spec]}, batch {args.train_batch}", summary(seconds),
                reference, results)


def write_json(args, machine, results, done, complete=False):
    """The results so far, replaced atomically: a run that is stopped (or
    runs out of memory) keeps what it measured, marked "complete": false,
    with the sections it finished ("done"), from which --resume goes on."""
    from gpu_check import write_json as write_atomically  # this folder's one JSON writer

    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    write_atomically({"machine": machine, "args": vars(args), "date": time.strftime("%Y-%m-%d"),
                      "complete": complete, "done": done, "results": results}, args.output + ".json", indent=2)


def resumed(args, machine):
    """(results, finished sections) of the stopped run in the output's JSON;
    only one measured on this machine with the same options continues."""
    path = args.output + ".json"
    try:
        with open(path) as f:
            old = json.load(f)
    except FileNotFoundError:
        sys.exit(f"--resume: {path} does not exist; run without --resume to start a run there")
    same = {k: v for k, v in vars(args).items() if k != "resume"}
    if old.get("machine") != machine or {k: v for k, v in old.get("args", {}).items() if k != "resume"} != same:
        sys.exit(f"--resume: {path} was measured on another machine or with other options "
                 f"({old.get('machine')}; {old.get('args')}); run without --resume to start afresh")
    if old.get("complete"):
        sys.exit(f"--resume: {path} is a complete run; nothing to resume")
    print(f"resuming {path}: finished sections {', '.join(old['done']) or 'none'}", flush=True)
    return old["results"], old["done"]


def release_memory():
    """Drop the models of a finished section: one process builds, traces,
    exports and trains dozens of large models (a full run reached 20 GB of
    resident memory and was killed before this)."""
    import gc

    import keras

    keras.backend.clear_session()
    gc.collect()


def markdown(results, machine):
    """The results as Markdown tables, for the README."""
    lines = [f"Measured on {machine}.", "", "| comparison (A / B) | A ms | B ms | A / B | target |",
             "|---|---:|---:|---:|---|"]
    for r in results:
        if "ratio" not in r:
            continue
        a, b = r["a"], r["b"]
        target = "" if r["target"] is None else "%s %.2f: %s" % (
            ">=" if r["at_least"] else "<=", r["target"], "met" if r["met"] else "**not met**")
        lines.append(f"| {r['name']} | {a['median_ms']:.1f} ({a['min_ms']:.1f}-{a['max_ms']:.1f}) | "
                     f"{b['median_ms']:.1f} ({b['min_ms']:.1f}-{b['max_ms']:.1f}) | {r['ratio']:.3f} | {target} |")
    memory = [r for r in results if "a_mb" in r]
    if memory:
        lines += ["", "| peak resident memory (fresh process, one batch) | A MB | B MB |", "|---|---:|---:|"]
        lines += [f"| {r['name'].split(': ')[0]} | {r['a_mb']:.0f} | {r['b_mb']:.0f} |" for r in memory]
    return "\n".join(lines) + "\n"


def chart(results, path, machine):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results if "ratio" in r]
    fig, ax = plt.subplots(figsize=(10, 0.38 * len(rows) + 1.5))
    names = [r["name"] for r in rows][::-1]
    ratios = [r["ratio"] for r in rows][::-1]
    colors = [{None: "tab:gray", True: "tab:green", False: "tab:red"}[r["met"]] for r in rows[::-1]]
    ax.barh(names, ratios, color=colors)
    ax.axvline(1.0, color="black", lw=0.8)
    for i, v in enumerate(ratios):
        ax.text(v, i, f" {v:.2f}", va="center", fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("time ratio A / B (median); green: target met, red: missed, gray: no target")
    ax.set_title(f"keras-senet benchmarks\n{machine}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(PAIRS), help="model pairs to run (default all)")
    parser.add_argument("--skip", nargs="+", choices=SECTIONS, default=[], help="sections to skip")
    parser.add_argument("--size", type=int, default=224, help="input side (default 224)")
    parser.add_argument("--batch", type=int, default=32, help="throughput batch (default 32)")
    parser.add_argument("--train-batch", type=int, default=16, help="training-step batch (default 16)")
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds per comparison (default 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default 3)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for TF, LiteRT and torch")
    parser.add_argument("--quick", action="store_true", help="smoke run: 64 px, batch 4, 2 repeats, one pair")
    parser.add_argument("--output", default=os.path.join(HERE, "results"), help="output prefix (.json, .png)")
    parser.add_argument("--resume", action="store_true",
                        help="go on from the output's JSON of a stopped run (same machine and options): "
                             "keep its finished sections, run the rest")
    args = parser.parse_args()
    if args.quick:
        args.size, args.batch, args.train_batch, args.repeats, args.warmup = 64, 4, 2, 2, 1
        args.only = args.only or ["se_resnet50"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    machine = (f"{cpu_name()}, {os.cpu_count()} cores, {args.threads} threads, TF {tf.__version__}, "
               f"Keras {keras.__version__}")
    print(f"{machine}; inputs {args.size}x{args.size}; medians of {args.repeats} alternating runs "
          f"({args.repeats * BATCH1_ROUNDS} at batch 1)")
    print(f"{'comparison (A / B)':<58} {'A':>9} {'B':>9}")
    results, done = resumed(args, machine) if args.resume else ([], [])

    def finished(section):
        release_memory()
        done.append(section)
        write_json(args, machine, results, done)

    pairs = {k: PAIRS[k] for k in (args.only or PAIRS)}
    for key, (spec_a, spec_b, target) in pairs.items():
        if key in done:
            continue
        a, b = build(spec_a, args.size), build(spec_b, args.size)
        for section, jit in (("graph", False), ("xla", True)):
            if section in args.skip:
                continue
            t1 = inference([a, b], 1, args.size, jit, args)
            compare(f"{spec_a} / {spec_b}: batch 1, {section}", *t1, results, target=target if not jit else None)
            tn = inference([a, b], args.batch, args.size, jit, args)
            compare(f"{spec_a} / {spec_b}: batch {args.batch}, {section}", *tn, results,
                    images_per_s=[args.batch / (t["median_ms"] / 1000) for t in tn])
        if "train" not in args.skip:
            t = train_step([a, b], args.train_batch, args.size, args)
            compare(f"{spec_a} / {spec_b}: train step, batch {args.train_batch}", *t, results,
                    target=1.10 if key == "se_resnet50" else None)
        if "memory" not in args.skip:
            ma, mb = (peak_memory_mb(s, args.size, args.batch) for s in (spec_a, spec_b))
            results.append({"name": f"{spec_a} / {spec_b}: peak RSS MB, batch {args.batch}", "a_mb": ma, "b_mb": mb})
            print(f"{spec_a} / {spec_b}: peak resident memory {ma:.0f} / {mb:.0f} MB", flush=True)
        del a, b
        finished(key)
    if "grouped_conv" not in args.skip and "grouped_conv" not in done:
        grouped_conv(args, results)
        finished("grouped_conv")
    specs = list(dict.fromkeys(s for k in pairs for s in pairs[k][:2]))
    if "se_resnet50" in pairs:
        specs.append("SEResNet50")  # the torch variant, as timm's seresnet50
    if "tflite" not in args.skip:
        for spec in TFLITE_MODELS:
            if spec in specs and f"tflite {spec}" not in done:
                tflite(spec, args.size, args, results)
                finished(f"tflite {spec}")
    if "timm" not in args.skip:
        try:
            import timm  # noqa: F401
            import torch  # noqa: F401
        except ImportError:
            print("timm / torch not installed: no PyTorch comparison")
        else:
            for spec in dict.fromkeys(specs):
                if spec in TIMM and f"timm {spec}" not in done:
                    paths_vs_timm(spec, args.size, args, results)
                    finished(f"timm {spec}")
                if spec in BACKEND_MODELS and "train" not in args.skip and f"train timm {spec}" not in done:
                    train_vs_timm(spec, args.size, args, results)
                    finished(f"train timm {spec}")
    write_json(args, machine, results, done, complete=True)
    chart(results, args.output + ".png", machine)
    with open(args.output + ".md", "w") as f:
        f.write(markdown(results, machine))
    print(f"wrote {args.output}.json, .md and .png")


if __name__ == "__main__":
    main()
