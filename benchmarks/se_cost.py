"""What the SE block costs in the TF graph, per family, and where that goes.

For each family three networks are built with random weights and timed in
turn (A, B, C, A, B, C, ...) in graph mode (`tf.function`), so that drift in
the machine's speed hits all of them; medians, min-max and ratios of medians:

- the SE network (SE-ResNet-50 is the "caffe" variant, stride on the 1x1 like
  keras.applications.ResNet50, so the two differ only by the SE blocks);
- its keras.applications baseline (ResNet50, MobileNet, MobileNetV2,
  MobileNetV3Large; the last has SE blocks of its own, written with
  GlobalAveragePooling2D and 1x1 Conv2D);
- the same SE network with every `SqueezeExcite` layer replaced by
  `keras.layers.Identity` (a clone; everything else is the same layers).

Then the SE layers alone: every SE layer of the network run on the exact
input shape it sees there, all in one `tf.function`, and the same for each
of its three steps (squeeze: the mean; excitation: the two FC layers and
activations; scale: the broadcast multiply), summed over the network.

Paper (Hu et al., TPAMI 2019, Table 2 and Sec. 5): SE-ResNet-50 costs
+0.26% FLOPs; ResNet-50 -> SE-ResNet-50 CPU inference 164 -> 167 ms (1.018).

    python benchmarks/se_cost.py                 # all families, batch 1 and 32
    python benchmarks/se_cost.py --only se_mobilenet --batches 1
    python benchmarks/se_cost.py --quick         # smoke run: small input, few rounds

Writes benchmarks/se_cost.json (or --output) and prints a table.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # run from a checkout without installing

# family: (SE constructor, keyword arguments, keras.applications baseline, paper ratio)
FAMILIES = {
    "se_resnet50": ("SEResNet50", {"variant": "caffe"}, "ResNet50", 167 / 164),
    "se_mobilenet": ("SEMobileNet", {}, "MobileNet", None),
    "se_mobilenetv2": ("SEMobileNetV2", {}, "MobileNetV2", None),
    "se_mobilenetv3_large": ("SEMobileNetV3Large", {}, "MobileNetV3Large", None),
}
TARGETS = {"se_resnet50": 1.02, "se_mobilenet": 1.05}  # issue 17, batch-1 SE / baseline


def summary(seconds):
    ms = [1000 * t for t in seconds]
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "runs": len(ms)}


def alternate(fns, warmup, repeats):
    """Time the callables in turn, `repeats` rounds after `warmup` rounds."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - start)
    return [summary(t) for t in times]


def se_layers(model):
    from keras_senet.layers.squeeze_excite import SqueezeExcite

    return [layer for layer in model.layers if isinstance(layer, SqueezeExcite)]


def without_se(model):
    """A clone of `model` with every SqueezeExcite layer an Identity."""
    import keras

    from keras_senet.layers.squeeze_excite import SqueezeExcite

    def clone(layer):
        if isinstance(layer, SqueezeExcite):
            return keras.layers.Identity(name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    return keras.models.clone_model(model, clone_function=clone)


def with_squeeze_by_axis(model):
    """A clone of `model` whose SE layers average one spatial axis at a time
    (outermost first) instead of one Mean over all of them, weights copied:
    the B side of the squeeze comparison (measured, not adopted)."""
    import keras
    from keras import ops

    from keras_senet.layers.squeeze_excite import SqueezeExcite

    class AxisAtATimeSqueezeExcite(SqueezeExcite):
        def squeeze_inputs(self, inputs):
            for _ in range(len(inputs.shape) - 2):  # channels_last: axis 1 is spatial
                inputs = ops.mean(inputs, axis=1)
            return inputs

    def clone(layer):
        cls = AxisAtATimeSqueezeExcite if isinstance(layer, SqueezeExcite) else layer.__class__
        return cls.from_config(layer.get_config())

    twin = keras.models.clone_model(model, clone_function=clone)
    twin.set_weights(model.get_weights())
    return twin


def build(family, size):
    import keras

    import keras_senet

    constructor, options, baseline, _ = FAMILIES[family]
    shape = (size, size, 3)
    # Logits out (no softmax), so that output differences are visible.
    se = getattr(keras_senet, constructor)(weights=None, input_shape=shape, classifier_activation=None, **options)
    base = getattr(keras.applications, baseline)(weights=None, input_shape=shape, classifier_activation=None)
    return se, base, without_se(se)


def forward(model, x):
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False))
    return lambda: fn(x).numpy()


def se_alone(model, batch, args):
    """Every SE layer of `model` on its own input shape, whole and by step,
    each summed over the network in one tf.function."""
    import numpy as np
    import tensorflow as tf

    layers = se_layers(model)
    rng = np.random.default_rng(0)
    inputs = [tf.constant(rng.normal(size=(batch, *layer.input.shape[1:])).astype("float32")) for layer in layers]
    pooled = [layer.squeeze_inputs(x) for layer, x in zip(layers, inputs)]
    gates = [layer.excite(s) for layer, s in zip(layers, pooled)]

    def each(step, args_lists):
        fn = tf.function(lambda *xs: [step(layer, *a) for layer, a in zip(layers, zip(*xs))])
        return lambda: fn(*args_lists)

    steps = {
        # The same function returning its inputs: the call's own overhead,
        # to subtract from the other rows.
        "call_overhead": each(lambda layer, x: x, [inputs]),
        "whole": each(lambda layer, x: layer(x), [inputs]),
        "squeeze": each(lambda layer, x: layer.squeeze_inputs(x), [inputs]),
        "excitation": each(lambda layer, s: layer.excite(s), [pooled]),
        "scale": each(lambda layer, x, g: layer.scale(x, g), [inputs, gates]),
    }
    times = alternate(list(steps.values()), args.warmup, repeats(args, batch))
    return {"layers": len(layers), **dict(zip(steps, times))}


def compare_squeeze(se, x, batch, args):
    """The network and its SE layers alone as shipped (one Mean) vs averaging
    one axis at a time, alternated, and the largest output difference."""
    import numpy as np

    twin = with_squeeze_by_axis(se)
    y_now, y_twin = se(x, training=False).numpy(), twin(x, training=False).numpy()
    t = alternate([forward(se, x), forward(twin, x)], args.warmup, repeats(args, batch))
    alone = [se_alone(m, batch, args)["whole"] for m in (se, twin)]
    return {
        "network_one_mean": t[0], "network_by_axis": t[1], "ratio_network": t[1]["median_ms"] / t[0]["median_ms"],
        "se_layers_one_mean": alone[0], "se_layers_by_axis": alone[1],
        "ratio_se_layers": alone[1]["median_ms"] / alone[0]["median_ms"],
        "max_abs_output_diff": float(np.abs(y_now - y_twin).max()), "max_abs_output": float(np.abs(y_now).max()),
    }


def repeats(args, batch):
    return args.repeats if batch == 1 else args.repeats_large


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def run_family(family, batch, args):
    import numpy as np
    import tensorflow as tf

    se, base, bare = build(family, args.size)
    x = tf.constant(np.random.default_rng(0).normal(size=(batch, args.size, args.size, 3)).astype("float32"))
    t_se, t_base, t_bare = alternate([forward(m, x) for m in (se, base, bare)], args.warmup, repeats(args, batch))
    alone = se_alone(se, batch, args)
    paper = FAMILIES[family][3]
    extra = {"squeeze_by_axis_vs_one_mean": compare_squeeze(se, x, batch, args)} if args.compare_squeeze else {}
    return {
        "family": family, "batch": batch,
        "se": t_se, "baseline": t_base, "se_as_identity": t_bare,
        "ratio_se_to_baseline": t_se["median_ms"] / t_base["median_ms"],
        "ratio_se_to_identity": t_se["median_ms"] / t_bare["median_ms"],
        "ratio_identity_to_baseline": t_bare["median_ms"] / t_base["median_ms"],
        "se_minus_identity_ms": t_se["median_ms"] - t_bare["median_ms"],
        "paper_ratio": paper if batch == 1 else None,
        "target": TARGETS.get(family) if batch == 1 else None,
        "se_layers_alone": alone,
        **extra,
    }


def span(t):
    return f"{t['median_ms']:.2f} ({t['min_ms']:.2f}-{t['max_ms']:.2f})"


def table(rows):
    head = ("| family | batch | SE ms | baseline ms | SE->identity ms | SE / baseline | SE / identity | paper "
            "| SE layers alone ms | squeeze | excitation | scale | call overhead |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        a = r["se_layers_alone"]
        lines.append(
            f"| {r['family']} | {r['batch']} | {span(r['se'])} | {span(r['baseline'])} | {span(r['se_as_identity'])} "
            f"| {r['ratio_se_to_baseline']:.3f} | {r['ratio_se_to_identity']:.3f} "
            f"| {r['paper_ratio'] and format(r['paper_ratio'], '.3f') or '-'} "
            f"| {a['whole']['median_ms']:.2f} ({a['layers']} layers) | {a['squeeze']['median_ms']:.2f} "
            f"| {a['excitation']['median_ms']:.2f} | {a['scale']['median_ms']:.2f} | {a['call_overhead']['median_ms']:.2f} |"
        )
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=sorted(FAMILIES), help="families to measure (default: all)")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 32], help="batch sizes (default: 1 32)")
    parser.add_argument("--size", type=int, default=224, help="input side in pixels (default: 224)")
    parser.add_argument("--repeats", type=int, default=21, help="timed rounds at batch 1 (default: 21)")
    parser.add_argument("--repeats-large", type=int, default=7, help="timed rounds at larger batches (default: 7)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default: 3)")
    parser.add_argument("--compare-squeeze", action="store_true",
                        help="also time the SE squeeze as shipped (one Mean over all spatial axes) against "
                             "averaging one axis at a time, network and SE layers alone")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 64x64 input, batches 1 and 2, 3 rounds, 1 warm-up")
    parser.add_argument("--output", default=os.path.join(HERE, "se_cost.json"), help="JSON file to write")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.batches, args.repeats, args.repeats_large, args.warmup = 64, [1, 2], 3, 3, 1
    return args


def main(argv=None):
    args = parse_args(argv)
    import keras
    import tensorflow as tf

    machine = {"cpu": cpu_name(), "cores": os.cpu_count(), "tensorflow": tf.__version__, "keras": keras.__version__,
               "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)")}
    print(machine, flush=True)
    rows = []
    for family in args.only or FAMILIES:
        for batch in args.batches:
            row = run_family(family, batch, args)
            rows.append(row)
            print(table([row]).splitlines()[-1], flush=True)
            if "squeeze_by_axis_vs_one_mean" in row:
                c = row["squeeze_by_axis_vs_one_mean"]
                print(f"    squeeze by axis / one Mean: network {c['ratio_network']:.3f} "
                      f"({span(c['network_by_axis'])} / {span(c['network_one_mean'])} ms), SE layers alone "
                      f"{c['ratio_se_layers']:.3f} ({span(c['se_layers_by_axis'])} / {span(c['se_layers_one_mean'])} ms), "
                      f"max |output diff| {c['max_abs_output_diff']:.1e} of {c['max_abs_output']:.1e}", flush=True)
            keras.backend.clear_session()
    print(table(rows))
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump({"machine": machine, "args": vars(args), "date": time.strftime("%Y-%m-%d %H:%M"), "rows": rows},
                  f, indent=2)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
