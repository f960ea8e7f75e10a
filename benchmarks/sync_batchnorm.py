"""Cost of synchronized BatchNorm: a training step of SE-ResNet-20 (CIFAR,
32x32, global batch 128) under MirroredStrategy on 2 logical CPU devices,
with every BatchNormalization `synchronized=True` (what
`train(..., sync_batchnorm=True)` sets: three all-reduces per layer and
step) and without.

    python benchmarks/sync_batchnorm.py [--rounds 15] [--steps 3]

Rounds alternate the two models; each round times `--steps` calls of the
model's compiled train function (what `model.fit` runs per step, without
fit's set-up), and the medians of the per-step times are compared. Measured
on logical CPU devices of one machine, where an all-reduce is a memory copy:
it says little about GPUs with NCCL or about several machines.
"""

import argparse
import json
import statistics
import time

from keras_senet.training import split_cpu

split_cpu(2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_senet import SEResNetCIFAR  # noqa: E402
from keras_senet.training import get_strategy  # noqa: E402
from keras_senet.training.fit import batchnorm_layers  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    strategy = get_strategy("mirrored")
    rng = np.random.default_rng(0)
    data = tf.data.Dataset.from_tensor_slices(
        (rng.normal(size=(128 * 4, 32, 32, 3)).astype("float32"), rng.integers(0, 10, 128 * 4))
    ).batch(128).repeat()
    steps = {}
    for synchronized in (False, True):
        with strategy.scope():
            model = SEResNetCIFAR(20, input_shape=(32, 32, 3), classes=10)
            for layer in batchnorm_layers(model):
                layer.synchronized = synchronized  # read when the train step is traced
            model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
        model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)  # builds the optimizer, traces
        iterator = iter(strategy.experimental_distribute_dataset(data))
        steps[synchronized] = (model.train_function, iterator)
    times = {False: [], True: []}
    for _ in range(args.rounds):
        for synchronized, (step, iterator) in steps.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                logs = step(iterator)
            float(logs["loss"])  # wait for the last step
            times[synchronized].append((time.perf_counter() - start) / args.steps)
    plain, synced = (statistics.median(times[s]) for s in (False, True))
    print(f"SE-ResNet-20, 32x32, global batch 128, MirroredStrategy on {strategy.num_replicas_in_sync} logical "
          f"CPU devices, medians of {args.rounds} rounds x {args.steps} steps")
    print(f"  per-replica BatchNorm   {plain * 1000:8.1f} ms/step")
    print(f"  synchronized BatchNorm  {synced * 1000:8.1f} ms/step")
    print(f"  ratio synchronized / per-replica: {synced / plain:.3f}")
    print("  (logical CPU devices: all-reduces are memory copies; says little about GPUs with NCCL)")
    print("  per round (ms/step):", {("synchronized" if s else "per-replica"): [round(t * 1000) for t in v]
                                     for s, v in times.items()})
    print(json.dumps({"per_replica_ms": plain * 1000, "synchronized_ms": synced * 1000, "ratio": synced / plain}))


if __name__ == "__main__":
    main()
