"""`model.fit` with a recipe, fault tolerance and logs.

    strategy = get_strategy("auto")
    with strategy.scope():
        model = build_classifier("SEResNet50", classes=10, weights="imagenet")
    history = train(model, train_ds, recipe="finetune", epochs=5,
                    steps_per_epoch=..., global_batch=..., output_dir="run",
                    val_data=val_ds, strategy=strategy)

`output_dir` gets `backup/` (keras.callbacks.BackupAndRestore: a killed run
restarted with the same command resumes from its last backup), `best.keras`,
`history.csv` and TensorBoard logs in `logs/`. Under multi-worker training
only the chief writes the files users read; the others back up to their own
folders.

Data position: a repeating `train_data` is read from batch
`epoch * steps_per_epoch` at the start of every `fit` (each phase, and a
resumed run), so epoch e trains on the stream's e-th slice however the run
was split or interrupted. With `make_dataset(..., repeat=True)` that slice
is a function of its position alone.

Resuming: Keras restores the weights and optimizer state of the last backup
and restarts the epoch it was taken in; `train` also restores the random
generators (dropout) and positions the data, so with epoch backups (the
default) and `make_dataset(..., seed=S, deterministic=True, repeat=True)` a
killed and resumed run ends with the same weights as an uninterrupted one,
in either phase of fine-tuning. A backup taken inside an epoch (an integer
`backup_freq`) holds weights that have already seen that epoch's first
batches, which Keras then trains on again: that run differs from an
uninterrupted one by those extra steps.

BatchNorm under several replicas: by default each replica normalizes with
its own batch's statistics (no extra communication; what PyTorch's DDP and
tf.keras do) and `SyncReplicaStatistics` averages the moving statistics.
`sync_batchnorm=True` normalizes with the statistics of the global batch
(Keras' `BatchNormalization(synchronized=True)`: three all-reduces per
BatchNorm layer and step), which makes training on N replicas equal to one
device and helps when the per-replica batch is small (under about 16).
"""

import json
import os

import keras
import numpy as np

from keras_senet import inputs
from keras_senet.training.recipes import compile_model, get_recipe
from keras_senet.training.strategy import is_chief

HEAD_LAYERS = ("avg_pool", "top_dropout", "predictions")


def build_classifier(model, *, classes, weights=None, input_shape=None, dropout_rate=0.0, **options):
    """A constructor's model with a `classes`-way softmax head.

    With ImageNet weights and `classes != 1000`, the backbone keeps its
    weights and gets a new head (global average pooling, dropout, Dense
    named "predictions"), as fine-tuning needs. With a `.keras` file as
    `weights` (a model saved by `keras-senet train` or `model.save`), the
    saved model itself is the starting point: its input shape and channels,
    its weights, and its head when it already has `classes` outputs (else a
    new head on its pooled features). A `.weights.h5` file holds weights
    only: the model is built with these arguments, head included, and the
    file must fit it (else a ValueError says what differs).

    Args:
        model: a constructor name from `keras_senet.MODELS`, "SEResNetCIFAR"
            or a constructor.
        classes: outputs of the softmax head.
        weights: None, "imagenet", a preset name or a weights file.
        input_shape: (height, width, channels); for a `.keras` file it must
            be None or the file's.
        dropout_rate: dropout before a new head.
        Others: passed to the constructor.

    Raises:
        ValueError: a `.keras` file whose input shape differs from
            `input_shape`, or that has no "avg_pool" layer to put a new head
            on.
    """
    import keras_senet

    constructors = dict(keras_senet.MODELS, SEResNetCIFAR=keras_senet.SEResNetCIFAR)
    if isinstance(model, str):
        if model not in constructors:
            raise ValueError(f"`model` must be one of {sorted(constructors)}. Received: model={model!r}")
        model = constructors[model]
    if isinstance(weights, (str, os.PathLike)) and os.fspath(weights).endswith(".keras"):
        return _from_keras_file(os.fspath(weights), classes, input_shape, dropout_rate)
    if isinstance(weights, (str, os.PathLike)) and os.fspath(weights).endswith((".weights.h5", ".h5", ".hdf5")):
        # Keras weights of this very configuration, head included: train it further
        return model(weights=weights, input_shape=input_shape, classes=classes, **options)
    if weights is None or classes == 1000:
        return model(weights=weights, input_shape=input_shape, classes=classes, **options)
    backbone = model(weights=weights, input_shape=input_shape, include_top=False, pooling="avg", **options)
    return _new_head(backbone, backbone.output, classes, dropout_rate)


def _new_head(model, features, classes, dropout_rate):
    x = features
    if dropout_rate:
        x = keras.layers.Dropout(dropout_rate, name="top_dropout")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    head = keras.Model(model.inputs, outputs, name=model.name)
    return inputs.attach(head, inputs.input_transform(model))


def _from_keras_file(path, classes, input_shape, dropout_rate):
    """A saved model to fine-tune: as saved when its head has `classes`
    outputs, else with a new head on its "avg_pool" features."""
    saved = inputs.load_model(path, compile=False)
    shape = tuple(saved.input_shape[1:])
    if input_shape is not None and tuple(input_shape) != shape:
        raise ValueError(
            f"`weights` file {path} holds a model for inputs of shape {shape}, not {tuple(input_shape)}: "
            "train at its input size and channel count (CLI: drop --image-size or set it to "
            f"{shape[0]}). Received: input_shape={tuple(input_shape)}"
        )
    if saved.output_shape[-1] == classes:
        return saved
    try:
        features = saved.get_layer("avg_pool").output
    except ValueError:
        raise ValueError(
            f"`weights` file {path} has {saved.output_shape[-1]} outputs, not {classes}, and no 'avg_pool' "
            "layer to put a new head on: fine-tune it with its own classes, or build the model with "
            "include_top=False, pooling='avg' and add the head yourself."
        ) from None
    return _new_head(saved, features, classes, dropout_rate)


def batchnorm_layers(model):
    """Every `keras.layers.BatchNormalization` in `model`, nested models included."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif hasattr(layer, "layers"):
            found.extend(batchnorm_layers(layer))
    return found


def set_backbone_trainable(model, trainable):
    """Freeze or unfreeze every layer but the head (BatchNorm frozen runs in
    inference mode, as fine-tuning wants)."""
    for layer in model.layers:
        layer.trainable = trainable or layer.name in HEAD_LAYERS


class SyncReplicaStatistics(keras.callbacks.Callback):
    """Average BatchNorm moving statistics over replicas.

    Under a multi-replica strategy, Keras 3's BatchNormalization updates
    each replica's copy of `moving_mean` / `moving_variance` from that
    replica's batch and never reconciles them (tf.keras 2 created them with
    aggregation MEAN): evaluation then depends on which replica sees which
    example, and a saved model keeps replica 0's copy. This callback
    all-reduces every float non-trainable variable to its replica mean
    before each evaluation, at each epoch end and at the end of training;
    the mean of the replicas' moving averages is the moving average of the
    global batch mean, as single-device training keeps it.
    """

    def __init__(self):
        super().__init__()
        self._sync = None

    def sync(self):
        import tensorflow as tf

        strategy = self.model.distribute_strategy
        if strategy.num_replicas_in_sync < 2:
            return
        if self._sync is None:
            variables = [v for v in self.model.non_trainable_variables if "float" in str(v.dtype)]

            def replica_fn():
                context = tf.distribute.get_replica_context()
                means = context.all_reduce("mean", [tf.identity(v.value) for v in variables])
                for variable, mean in zip(variables, means):
                    variable.value.assign(mean)

            self._sync = tf.function(lambda: strategy.run(replica_fn))
        self._sync()

    def on_test_begin(self, logs=None):
        self.sync()

    def on_epoch_end(self, epoch, logs=None):
        self.sync()

    def on_train_end(self, logs=None):
        self.sync()


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore`, plus the states of the model's
    random generators (dropout masks, random augmentation layers), which
    `save_weights` leaves out: a resumed run then draws what an uninterrupted
    one would, instead of restarting every generator from its seed."""

    def _random_states(self):
        saved = {id(v) for v in self.model.weights}
        return [v for v in self.model.non_trainable_variables if id(v) not in saved]

    def _states_path(self):
        return os.path.join(self.backup_dir, "random_states.npz")

    def _save_model(self):
        super()._save_model()
        states = {v.path: keras.ops.convert_to_numpy(v) for v in self._random_states()}
        path = self._states_path()
        with open(path + ".partial", "wb") as f:
            np.savez(f, **states)
        os.replace(path + ".partial", path)  # a kill mid-write leaves the previous file

    def _load_model(self):
        super()._load_model()
        if os.path.exists(self._states_path()):
            with np.load(self._states_path()) as states:
                for v in self._random_states():
                    if v.path in states:
                        v.assign(states[v.path])


def _worker_dir(output_dir):
    """Chief: `output_dir`; other workers: a folder of their own inside it."""
    if is_chief():
        return output_dir
    task = json.loads(os.environ["TF_CONFIG"])["task"]
    return os.path.join(output_dir, "workers", f"{task['type']}_{task.get('index', 0)}")


def make_callbacks(output_dir, *, backup_dir="backup", backup_freq="epoch", tensorboard=True,
                   sync_statistics=True):
    """Replica statistics sync, BackupAndRestore, CSV history, TensorBoard.

    Args:
        output_dir: run folder (created).
        backup_freq: "epoch" or a number of batches between backups.
        sync_statistics: add `SyncReplicaStatistics` (not needed when every
            BatchNorm layer is synchronized).
    """
    output_dir = _worker_dir(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    # SyncReplicaStatistics first: backups and checkpoints see synced statistics
    callbacks = [SyncReplicaStatistics()] if sync_statistics else []
    callbacks += [
        BackupAndRestore(os.path.join(output_dir, backup_dir), save_freq=backup_freq),
        keras.callbacks.CSVLogger(os.path.join(output_dir, "history.csv"), append=True),
    ]
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(output_dir, "logs")))
    return callbacks


def _check_data(model, data, name):
    """A clear error when batches do not fit the model's input."""
    spec = getattr(data, "element_spec", None)
    if not isinstance(spec, tuple) or not hasattr(spec[0], "shape") or not isinstance(model.input_shape, tuple):
        return
    given, expected = tuple(spec[0].shape[1:]), tuple(model.input_shape[1:])
    if len(given) != len(expected) or any(g is not None and e is not None and g != e for g, e in zip(given, expected)):
        raise ValueError(
            f"`{name}` yields images of shape {given}, but model {model.name!r} takes {expected}: build the "
            "pipeline with the model's size and channels (make_dataset(image_size=..., channels=...)) or build "
            f"the model with input_shape={given}."
        )


def _is_repeating(data):
    """True for a tf.data.Dataset that never ends (e.g. `.repeat()`)."""
    import tensorflow as tf

    return isinstance(data, tf.data.Dataset) and int(data.cardinality()) == int(tf.data.INFINITE_CARDINALITY)


def _resumed_epoch(backup_dir, start):
    """The epoch BackupAndRestore will restart a phase starting at `start`
    in (its backup's epoch; a backup taken inside the phase's first epoch
    records 0), or `start` when there is no backup."""
    try:
        with open(os.path.join(backup_dir, "training_metadata.json")) as f:
            return max(start, int(json.load(f)["epoch"]))
    except (OSError, ValueError, KeyError, TypeError):
        return start


def train(
    model,
    train_data,
    *,
    recipe="cosine",
    epochs=None,
    steps_per_epoch,
    global_batch,
    output_dir,
    val_data=None,
    strategy=None,
    backup_freq="epoch",
    sync_batchnorm=False,
    tensorboard=True,
    callbacks=(),
    verbose="auto",
):
    """Compile `model` with `recipe` and fit it, resumable.

    Args:
        model: built inside `strategy.scope()`.
        train_data: batches of the global size, repeating or not; a
            repeating one (best: `make_dataset(..., repeat=True)`) is read
            from the first batch of the epoch each `fit` starts with (its
            pipeline reads the skipped batches without training on them).
        recipe: a name from `RECIPES` or a `Recipe`; `frozen_epochs > 0`
            first trains the head alone (fine-tuning).
        epochs: total epochs (default: the recipe's).
        steps_per_epoch: batches per epoch.
        global_batch: the batch size the pipeline yields (scales the lr).
        output_dir: run folder, see the module docstring.
        val_data: evaluation batches; the best model by validation accuracy
            is saved as `best.keras`.
        strategy: the strategy the model was built in (default: current).
        backup_freq: "epoch" or batches between backups (see the module
            docstring for what resuming from each gives).
        sync_batchnorm: normalize with the global batch's statistics under
            several replicas (TensorFlow backend; see the module docstring).
            The layers are put back as they were when training ends, so
            saved models load on every backend.
        callbacks: further callbacks.

    Returns:
        The merged history: {metric: [value per epoch]}.
    """
    import tensorflow as tf

    recipe = get_recipe(recipe)
    epochs = epochs or recipe.epochs
    strategy = strategy or tf.distribute.get_strategy()
    extra = list(callbacks)
    if val_data is not None and is_chief():
        os.makedirs(output_dir, exist_ok=True)
        extra.append(keras.callbacks.ModelCheckpoint(
            os.path.join(output_dir, "best.keras"), monitor="val_sparse_categorical_accuracy",
            mode="max", save_best_only=True,
        ))
    phases = [(0, epochs, True, "backup")]
    if recipe.frozen_epochs and 0 < recipe.frozen_epochs < epochs:
        phases = [(0, recipe.frozen_epochs, False, "backup_frozen"), (recipe.frozen_epochs, epochs, True, "backup")]
    _check_data(model, train_data, "train_data")
    if val_data is not None:
        _check_data(model, val_data, "val_data")
    history = {}
    frozen_weights = os.path.join(_worker_dir(output_dir), "frozen_phase.weights.h5")
    norms = batchnorm_layers(model)
    synchronized = [layer.synchronized for layer in norms]
    if sync_batchnorm:
        for layer in norms:
            layer.synchronized = True  # read when the train step is traced
    sync_statistics = strategy.num_replicas_in_sync > 1 and not all(layer.synchronized for layer in norms)
    repeating = _is_repeating(train_data)
    try:
        for start, end, trainable, backup in phases:
            if not trainable and os.path.exists(frozen_weights):
                model.load_weights(frozen_weights)  # the frozen phase finished before a restart
                continue
            set_backbone_trainable(model, trainable)
            # BackupAndRestore resumes by setting this private field, which
            # Keras never clears: reset it so a later phase starts where it should.
            model._initial_epoch = None
            with strategy.scope():
                compile_model(model, recipe, steps_per_epoch, global_batch, epochs=end - start)
            data = train_data
            first = _resumed_epoch(os.path.join(_worker_dir(output_dir), backup), start)
            if repeating and first:
                # the batches this epoch trains on in an uninterrupted run: every
                # fit starts a new iterator at the stream's beginning
                data = train_data.skip(first * steps_per_epoch)
            result = model.fit(
                data, initial_epoch=start, epochs=end, steps_per_epoch=steps_per_epoch,
                validation_data=val_data, verbose=verbose, shuffle=False,  # the pipeline shuffles
                callbacks=make_callbacks(output_dir, backup_dir=backup, backup_freq=backup_freq,
                                         tensorboard=tensorboard, sync_statistics=sync_statistics) + extra,
            )
            for key, values in result.history.items():
                history.setdefault(key, []).extend(values)
            if not trainable:
                model.save_weights(frozen_weights)
    finally:
        for layer, value in zip(norms, synchronized):
            layer.synchronized = value
    if os.path.exists(frozen_weights):
        os.remove(frozen_weights)  # the run is complete: a new run in this folder starts over
    best = os.path.join(output_dir, "best.keras")
    if is_chief() and os.path.exists(best):
        if sync_batchnorm:  # saved with synchronized BatchNorm, which only TensorFlow loads
            saved = keras.saving.load_model(best)
            for layer, value in zip(batchnorm_layers(saved), synchronized):
                layer.synchronized = value
            inputs.save_model(inputs.attach(saved, inputs.input_transform(model), inputs.class_names(model)), best)
        else:
            inputs.write_metadata(best, model)  # ModelCheckpoint saved it with model.save
    return history
