"""GroupedConv2D's two TensorFlow kernels side by side: the per-group split
and TensorFlow's native grouped convolution (see
keras_senet/layers/grouped_conv.py for which one runs where).

Measured, alternating A and B with medians (run.py's `alternate`), in the
TF graph (`tf.function`):

- the layer alone (3x3, 32 groups), split / native, forward and forward
  plus the gradients with respect to the input and the kernel;
- SE-ResNeXt-50 batch 1 with the split and with the native op, each against
  SE-ResNet-50 (the same torch variant, stride on the 3x3: 4.23 vs 4.09
  GMACs); before/after = the split and native ratios;
- an SE-ResNeXt-50 training step (SGD, batch 8) with each kernel;
- SE-ResNeXt-50 exported to TFLite fp32 each way, batch 1 in LiteRT.

    python benchmarks/grouped_conv.py                # ~8 min on 2 cores
    python benchmarks/grouped_conv.py --quick        # a smoke run
    TF_ENABLE_ONEDNN_OPTS=0 python benchmarks/grouped_conv.py --skip models  # no oneDNN:
        # native forward only (its gradient has no CPU kernel there)

Prints one line per comparison; --output writes the rows as JSON.
"""

import argparse
import contextlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import run  # noqa: E402  (alternate, compare, build, cpu_name)

LAYER_SHAPES = ((1, 56, 56, 128), (8, 28, 28, 256), (16, 56, 56, 128))


def traced(fn, x, implementation):
    """A tf.function of `fn`, traced on `x` with `implementation` in force
    (later calls reuse that graph whatever the setting)."""
    import tensorflow as tf

    from keras_senet.layers import grouped_conv

    function = tf.function(fn)
    with grouped_conv.use_implementation(implementation):
        function.get_concrete_function(x)
    return lambda: tf.nest.map_structure(lambda t: t.numpy(), function(x))


def layer_rows(args, results, kinds):
    import numpy as np
    import tensorflow as tf

    from keras_senet.layers import GroupedConv2D

    for shape in LAYER_SHAPES[:1] if args.quick else LAYER_SHAPES:
        layer = GroupedConv2D(shape[-1], 3, padding="same", groups=32, use_bias=False)
        layer.build(shape)
        x = tf.constant(np.random.default_rng(0).normal(size=shape).astype("float32"))

        def with_gradients(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x)
            return tape.gradient(y, [x, layer.kernel])

        label = "x".join(map(str, shape))
        for what, fn in (("forward", layer), ("forward + gradient", with_gradients)):
            if what not in kinds:
                continue
            times = run.alternate([traced(fn, x, "split"), traced(fn, x, "native")], args.warmup, args.repeats)
            run.compare(f"grouped 3x3/32 {label} {what}: split / native", *times, results)


def forward_pair(args, kernel):
    """(SE-ResNeXt-50 with `kernel`, SE-ResNet-50): batch-1 forward timings,
    alternating, in this process."""
    import numpy as np
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(0).normal(size=(1, args.size, args.size, 3)).astype("float32"))
    resnext, resnet = run.build("SEResNeXt50", args.size), run.build("SEResNet50", args.size)
    fns = [traced(lambda x, m=model: m(x, training=False), x, k) for model, k in ((resnext, kernel), (resnet, "auto"))]
    return run.alternate(fns, args.warmup, args.repeats * run.BATCH1_ROUNDS)


def model_rows(args, results):
    """Before (split) and after (native), each in its own process, as one
    process holding both SE-ResNeXt graphs slowed the native one (see
    `train_rows`)."""
    import subprocess

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    pairs = {}
    for kernel in ("split", "native"):
        command = [sys.executable, os.path.abspath(__file__), "--forward-pair", kernel, "--size", str(args.size),
                   "--repeats", str(args.repeats), "--warmup", str(args.warmup), "--threads", str(args.threads)]
        out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
        if out.returncode:
            raise RuntimeError(out.stderr[-2000:])
        pairs[kernel] = json.loads(out.stdout.strip().splitlines()[-1])
    (split, base_split), (native, base_native) = pairs["split"], pairs["native"]
    run.compare("SEResNeXt50 (split) / SEResNet50: batch 1, graph (before)", split, base_split, results)
    run.compare("SEResNeXt50 (native) / SEResNet50: batch 1, graph (after)", native, base_native, results,
                target=1.10)
    run.compare("SEResNeXt50 batch 1, graph: split / native (two processes)", split, native, results)


TRAIN_STEP = """
import json, sys, time
sys.path.insert(0, {here!r})
import numpy as np, tensorflow as tf, keras
import run
from keras_senet.layers import grouped_conv
tf.config.threading.set_intra_op_parallelism_threads({threads})
tf.config.threading.set_inter_op_parallelism_threads(1)
x = np.random.default_rng(0).normal(size=({batch}, {size}, {size}, 3)).astype("float32")
y = np.zeros({batch}, "int64")
model = run.build("SEResNeXt50", {size})
model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy")
with grouped_conv.use_implementation({kernel!r}):
    for _ in range({warmup} + 1):
        model.train_on_batch(x, y)
times = []
for _ in range({repeats}):
    start = time.perf_counter()
    model.train_on_batch(x, y)
    times.append(time.perf_counter() - start)
print(json.dumps(times))
"""


def train_rows(args, results):
    """SE-ResNeXt-50 training step (SGD, train_on_batch), split / native.

    Each kernel trains in its own process, the two processes in turn (A, B,
    A, B). Alternating the two models' steps in one process measured the
    native step 0.81x and 0.96x of the split's at batch 8 (twice, here),
    while in their own processes it is 1.28x faster and every grouped layer
    alone is 1.4-2.6x faster with its gradients; what the split model does
    to the other one in the same process (it creates ~550 oneDNN primitives
    per step at batch 2, the native model 56) was not pinned down.
    """
    import subprocess

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    times = {"split": [], "native": []}
    for _ in range(2):
        for kernel in times:
            code = TRAIN_STEP.format(here=os.path.dirname(os.path.abspath(__file__)), threads=args.threads,
                                     batch=args.train_batch, size=args.size, kernel=kernel, warmup=args.warmup,
                                     repeats=max(1, args.repeats // 2))
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=1800)
            if out.returncode:
                raise RuntimeError(out.stderr[-2000:])
            times[kernel] += json.loads(out.stdout.strip().splitlines()[-1])
    run.compare(f"SEResNeXt50 train step, batch {args.train_batch} (own processes): split / native",
                run.summary(times["split"]), run.summary(times["native"]), results)


def litert_rows(args, results):
    """SE-ResNeXt-50 exported to TFLite fp32 with each kernel, batch 1 in
    LiteRT with XNNPACK (the split leaves SPLIT / CONCATENATION outside)."""
    import tempfile

    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    from keras_senet import export
    from keras_senet.layers import grouped_conv

    model = run.build("SEResNeXt50", args.size)
    x = np.random.default_rng(0).normal(size=(1, args.size, args.size, 3)).astype("float32")
    invokes, outside = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for kernel in ("split", "native"):
            path = os.path.join(tmp, kernel + ".tflite")
            with grouped_conv.use_implementation(kernel):
                export.to_tflite(model, path, sample=x, num_threads=args.threads)
            outside[kernel] = export.ops_outside_xnnpack(path, x.shape[1:])
            interpreter = Interpreter(model_path=path, num_threads=args.threads)
            interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], x.shape)
            interpreter.allocate_tensors()
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
            invokes.append(interpreter.invoke)
        times = run.alternate(invokes, args.warmup, args.repeats * run.BATCH1_ROUNDS)
    run.compare("SEResNeXt50 LiteRT fp32 batch 1: split / native", *times, results,
                outside_xnnpack={k: len(v) for k, v in outside.items()})
    print(f"  ops outside XNNPACK: split {len(outside['split'])}, native {len(outside['native'])}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip", nargs="+", choices=("layer", "models", "train", "litert"), default=[], help="sections to skip")
    parser.add_argument("--size", type=int, default=224, help="model input side (default 224)")
    parser.add_argument("--train-batch", type=int, default=8, help="training-step batch (default 8)")
    parser.add_argument("--repeats", type=int, default=20, help="timed rounds (x5 for the models; default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default 3)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="TensorFlow threads")
    parser.add_argument("--quick", action="store_true", help="smoke run: one layer shape, 64 px, 2 repeats")
    parser.add_argument("--output", help="write the rows to this JSON file")
    parser.add_argument("--forward-pair", choices=("split", "native"), help=argparse.SUPPRESS)  # model_rows' child
    args = parser.parse_args()
    if args.quick:
        args.size, args.train_batch, args.repeats, args.warmup = 64, 2, 2, 1
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    from keras_senet.layers import grouped_conv

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    if args.forward_pair:
        with grouped_conv.inference_graphs():  # forward only: "native" also where its gradient is missing
            print(json.dumps(forward_pair(args, args.forward_pair)))
        return
    found = grouped_conv.capability("CPU", "float32", "channels_last", (1, 1), "same", (1, 1))
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(unset: on for x86 wheels)")
    machine = (f"{run.cpu_name()}, {os.cpu_count()} cores, {args.threads} threads, TF {tf.__version__}, "
               f"Keras {keras.__version__}, TF_ENABLE_ONEDNN_OPTS={onednn}")
    print(f"{machine}\nprobe (CPU, float32): forward {found.forward}, gradient {found.gradient}"
          + (f" ({found.reason})" if found.reason else ""))
    print(f"{'comparison (A / B)':<58} {'A':>9} {'B':>9}")
    results = []
    if "layer" not in args.skip:
        # Without a native gradient kernel "native" cannot train: time its forward only.
        kinds = ("forward", "forward + gradient") if found.gradient else ("forward",)
        with grouped_conv.inference_graphs() if not found.gradient else contextlib.nullcontext():
            layer_rows(args, results, kinds)
    if "models" not in args.skip:
        model_rows(args, results)
    if "train" not in args.skip and found.gradient:
        train_rows(args, results)
    if "litert" not in args.skip:
        litert_rows(args, results)
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"machine": machine, "args": vars(args), "results": results}, f, indent=2)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
