"""Run by test_distributed.py in a fresh process (the CPU must be split into
two logical devices before TensorFlow starts): `python replicas.py OUTDIR`.

Trains SEResNetCIFAR-8 through `training.train` on one device (the default
strategy, plain BatchNorm: the reference) and under MirroredStrategy on two
logical CPUs with and without `sync_batchnorm`, from the same initial weights
on the same batches, then measures how far the replicas' BatchNorm moving
statistics drift apart under plain `model.fit`. Prints one JSON line."""

import json
import os
import sys

from keras_senet.training import split_cpu

split_cpu(2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_senet import SEResNetCIFAR  # noqa: E402
from keras_senet import training  # noqa: E402
from keras_senet.training import fit  # noqa: E402

OUTDIR = sys.argv[1]
GLOBAL_BATCH, STEPS, EPOCHS = 64, 4, 2
rng = np.random.default_rng(0)
# Plain arrays in a fixed order, not the shuffled pipeline: its random
# streams move on with every iterator made from it, and Keras' fit makes one
# more (to build the model from a batch) under a strategy other than the
# default one, so the two runs would train on different batches.
images = rng.normal(size=(GLOBAL_BATCH * STEPS, 16, 16, 3)).astype("float32")
labels = rng.integers(0, 10, GLOBAL_BATCH * STEPS)
# Keras' decoupled weight decay with momentum under MirroredStrategy drifts
# from one device (2.5e-5 after 8 SGD steps, 2e-7 without it; measured with
# plain model.fit), so the recipe runs without it.
RECIPE = training.get_recipe("cifar", weight_decay=0.0)


def pipeline():
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(GLOBAL_BATCH).repeat()


keras.utils.set_random_seed(0)
initial = SEResNetCIFAR(8, input_shape=(16, 16, 3), classes=10).get_weights()


def run(strategy, name, sync_batchnorm):
    """Train a copy of `initial`; returns its (path, value) pairs (weights
    and BatchNorm statistics, in model order), history and replica spread."""
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = SEResNetCIFAR(8, input_shape=(16, 16, 3), classes=10)
    model.set_weights(initial)
    history = training.train(
        model, pipeline(), recipe=RECIPE, epochs=EPOCHS, steps_per_epoch=STEPS, global_batch=GLOBAL_BATCH,
        output_dir=os.path.join(OUTDIR, name), strategy=strategy, sync_batchnorm=sync_batchnorm,
        tensorboard=False, verbose=0,
    )
    variables = [(v.path, keras.ops.convert_to_numpy(v)) for v in model.weights]
    spread = 0.0  # between the replicas' copies of each BatchNorm statistic
    for v in model.non_trainable_variables:
        copies = [c.numpy() for c in getattr(v.value, "values", [v.value])]
        spread = max(spread, max(float(np.abs(c - copies[0]).max()) for c in copies))
    return variables, history, spread


def differences(reference, other):
    """Largest absolute differences: trainable weights, BatchNorm moving
    statistics, each logged metric."""
    (ref_vars, ref_hist, _), (vars_, hist, _) = reference, other
    assert [path for path, _ in ref_vars] == [path for path, _ in vars_]
    diffs = [(path, float(np.abs(a - b).max())) for (path, a), (_, b) in zip(ref_vars, vars_)]
    moving = [d for path, d in diffs if "moving_" in path]
    trainable = [d for path, d in diffs if "moving_" not in path]
    assert len(moving) > 0 and len(trainable) > 0
    return {
        "weights": max(trainable),
        "moving_statistics": max(moving),
        "metrics": {m: max(abs(a - b) for a, b in zip(ref_hist[m], hist[m])) for m in ref_hist},
    }


def bn_replica_spread(strategy, sync):
    """Max difference between the replicas' BN moving statistics after a
    plain `model.fit` (no `train`), with or without SyncReplicaStatistics."""
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = SEResNetCIFAR(8, input_shape=(16, 16, 3), classes=10, weights=None)
        model.compile("sgd", "sparse_categorical_crossentropy")
    x = images.copy()
    x[128:] += 3.0  # replica 1 sees different statistics than replica 0
    callbacks = [fit.SyncReplicaStatistics()] if sync else []
    model.fit(tf.data.Dataset.from_tensor_slices((x, labels)).batch(256), epochs=1, verbose=0,
              callbacks=callbacks, shuffle=False)
    spread = 0.0
    for v in model.non_trainable_variables:
        copies = [c.numpy() for c in v.value.values]
        spread = max(spread, float(np.abs(copies[0] - copies[1]).max()))
    return spread


# One MirroredStrategy for the whole process: two instances share collective
# instance keys and their all-reduces collide ("Shape mismatch in the
# collective instance").
strategy = training.get_strategy("mirrored")
single = run(tf.distribute.get_strategy(), "single", sync_batchnorm=False)
synced = run(strategy, "mirrored_sync", sync_batchnorm=True)
unsynced = run(strategy, "mirrored", sync_batchnorm=False)
result = {
    "replicas": [tf.distribute.get_strategy().num_replicas_in_sync, strategy.num_replicas_in_sync],
    "history_single": single[1],
    "synced": differences(single, synced),
    "unsynced": differences(single, unsynced),
    "spread_sync_batchnorm": synced[2],
    "bn_spread_unsynced": bn_replica_spread(strategy, False),
    "bn_spread_synced": bn_replica_spread(strategy, True),
}
print(json.dumps(result))
sys.stdout.flush()
