"""One worker of test_distributed.py's two-worker MultiWorkerMirroredStrategy
run: `python mwms_worker.py INDEX PORT0 PORT1 OUTDIR`. Trains through
keras_senet.training.train and saves its final weights to OUTDIR/weightsINDEX.npz."""

import json
import os
import sys

index, port0, port1, outdir = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
os.environ["TF_CONFIG"] = json.dumps({
    "cluster": {"worker": [f"127.0.0.1:{port0}", f"127.0.0.1:{port1}"]},
    "task": {"type": "worker", "index": index},
})

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_senet import SEResNetCIFAR  # noqa: E402
from keras_senet import training  # noqa: E402

strategy = training.get_strategy("auto")  # TF_CONFIG names two workers
assert isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy), strategy
rng = np.random.default_rng(0)
x = rng.integers(0, 256, (512, 16, 16, 3)).astype("uint8")
y = rng.integers(0, 10, 512)
source = tf.data.Dataset.from_tensor_slices((x, y))
train_data = training.make_dataset(source, training=True, image_size=16, batch_size=64, seed=1,
                                   deterministic=True).repeat()
val_data = training.make_dataset(source, training=False, image_size=16, batch_size=64, limit=128)
keras.utils.set_random_seed(0)
with strategy.scope():
    model = SEResNetCIFAR(8, input_shape=(16, 16, 3), classes=10)
history = training.train(
    model, train_data, recipe="cosine", epochs=2, steps_per_epoch=4, global_batch=64,
    output_dir=os.path.join(outdir, "run"), val_data=val_data, strategy=strategy, tensorboard=False,
    verbose=0,
)
np.savez(os.path.join(outdir, f"weights{index}.npz"), *model.get_weights())
with open(os.path.join(outdir, f"history{index}.json"), "w") as f:
    json.dump({"replicas": strategy.num_replicas_in_sync, "history": history}, f)
