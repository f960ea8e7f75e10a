"""Run by test_distributed.py: one worker of a two-worker
MultiWorkerMirroredStrategy run, `python mwms_worker.py INDEX PORT0 PORT1
OUTDIR` (`train(..., sync_batchnorm=True)`), or the one-process reference,
`python mwms_worker.py single OUTDIR` (default strategy, plain BatchNorm).

Both train SEResNetCIFAR-8 from the same initial weights on the same global
batches and write OUTDIR/weights{INDEX,single}.npz and history{...}.json.
A worker also records which examples (by index) it received in the first
steps, through `strategy.experimental_distribute_dataset` as Keras' fit
distributes its data."""

import json
import os
import sys

if sys.argv[1] == "single":
    index, outdir = "single", sys.argv[2]
else:
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

GLOBAL_BATCH, STEPS, EPOCHS, SHARD_STEPS = 64, 4, 2, 3
strategy = training.get_strategy("auto")  # TF_CONFIG, when set, names two workers
if index != "single":
    assert isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy), strategy
rng = np.random.default_rng(0)
images = rng.normal(size=(GLOBAL_BATCH * STEPS, 16, 16, 3)).astype("float32")
labels = rng.integers(0, 10, GLOBAL_BATCH * STEPS)
# Plain arrays in a fixed order (see replicas.py for why not the shuffled
# pipeline); each worker's shard is cut from these global batches.
train_data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(GLOBAL_BATCH).repeat()
val_data = tf.data.Dataset.from_tensor_slices((images[:128], labels[:128])).batch(GLOBAL_BATCH)
keras.utils.set_random_seed(0)
initial = SEResNetCIFAR(8, input_shape=(16, 16, 3), classes=10).get_weights()
with strategy.scope():
    model = SEResNetCIFAR(8, input_shape=(16, 16, 3), classes=10)
model.set_weights(initial)
history = training.train(
    model, train_data, recipe=training.get_recipe("cifar", weight_decay=0.0), epochs=EPOCHS,
    steps_per_epoch=STEPS, global_batch=GLOBAL_BATCH,
    output_dir=os.path.join(outdir, "run_single" if index == "single" else "run"),
    val_data=val_data, strategy=strategy, sync_batchnorm=index != "single", tensorboard=False, verbose=0,
)
np.savez(os.path.join(outdir, f"weights{index}.npz"), *model.get_weights())
result = {"replicas": strategy.num_replicas_in_sync, "history": history}
if index != "single":
    # Which examples this worker reads: its local part of each global batch,
    # identified by the example's first pixel (unique in normal noise).
    ids = {images[i, 0, 0].tobytes(): i for i in range(len(images))}
    seen = []
    for step, batch in zip(range(SHARD_STEPS), strategy.experimental_distribute_dataset(train_data)):
        local = np.concatenate([x.numpy() for x in strategy.experimental_local_results(batch[0])])
        seen.append(sorted(ids[x[0, 0].tobytes()] for x in local))
    result["examples"] = seen
with open(os.path.join(outdir, f"history{index}.json"), "w") as f:
    json.dump(result, f)
