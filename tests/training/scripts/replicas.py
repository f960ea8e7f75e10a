"""Run by test_distributed.py in a fresh process (the CPU must be split into
two logical devices before TensorFlow starts). Prints one JSON line."""

import json
import sys

from keras_senet.training import split_cpu

split_cpu(2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_senet import SEResNetCIFAR, SqueezeExcite  # noqa: E402
from keras_senet.training import fit, get_strategy  # noqa: E402

rng = np.random.default_rng(0)
x = rng.normal(size=(256, 16, 16, 3)).astype("float32")
y = rng.integers(0, 10, 256)


def se_cnn():
    """Conv + SE + dense, no BatchNorm: replicas must match one device."""
    inputs = keras.Input((16, 16, 3))
    h = keras.layers.Conv2D(16, 3, activation="relu")(inputs)
    h = SqueezeExcite(ratio=4)(h)
    h = keras.layers.Conv2D(32, 3, strides=2, activation="relu")(h)
    h = SqueezeExcite(ratio=4)(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inputs, keras.layers.Dense(10)(h))


def fit_se_cnn(strategy):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = se_cnn()
        model.compile(keras.optimizers.SGD(0.05, momentum=0.9),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    history = model.fit(data, epochs=2, verbose=0)
    return model.get_weights(), history.history["loss"], strategy.num_replicas_in_sync


def bn_replica_spread(strategy, sync):
    """Max difference between the replicas' BN moving statistics after fit."""
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = SEResNetCIFAR(8, input_shape=(16, 16, 3), classes=10, weights=None)
        model.compile("sgd", "sparse_categorical_crossentropy")
    shifted = x.copy()
    shifted[128:] += 3.0  # replica 1 sees different statistics than replica 0
    callbacks = [fit.SyncReplicaStatistics()] if sync else []
    model.fit(tf.data.Dataset.from_tensor_slices((shifted, y)).batch(256), epochs=1, verbose=0,
              callbacks=callbacks, shuffle=False)
    spread = 0.0
    for v in model.non_trainable_variables:
        copies = [c.numpy() for c in v.value.values]
        spread = max(spread, float(np.abs(copies[0] - copies[1]).max()))
    return spread


# One MirroredStrategy for the whole process: two instances share collective
# instance keys and their all-reduces collide ("Shape mismatch in the
# collective instance").
strategy = get_strategy("mirrored")
single, single_loss, n1 = fit_se_cnn(tf.distribute.get_strategy())
mirrored, mirrored_loss, n2 = fit_se_cnn(strategy)
result = {
    "replicas": [n1, n2],
    "max_weight_diff": max(float(np.abs(a - b).max()) for a, b in zip(single, mirrored)),
    "loss_single": single_loss,
    "loss_mirrored": mirrored_loss,
    "bn_spread_unsynced": bn_replica_spread(strategy, False),
    "bn_spread_synced": bn_replica_spread(strategy, True),
}
print(json.dumps(result))
sys.stdout.flush()
