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
"""

import json
import os

import keras

from keras_senet import inputs
from keras_senet.training.recipes import compile_model, get_recipe
from keras_senet.training.strategy import is_chief

HEAD_LAYERS = ("avg_pool", "top_dropout", "predictions")


def build_classifier(model, *, classes, weights=None, input_shape=None, dropout_rate=0.0, **options):
    """A constructor's model with a `classes`-way softmax head.

    With ImageNet weights and `classes != 1000`, the backbone keeps its
    weights and gets a new head (global average pooling, dropout, Dense
    named "predictions"), as fine-tuning needs.

    Args:
        model: a constructor name from `keras_senet.MODELS`, "SEResNetCIFAR"
            or a constructor.
        Others: passed to the constructor.
    """
    import keras_senet

    constructors = dict(keras_senet.MODELS, SEResNetCIFAR=keras_senet.SEResNetCIFAR)
    if isinstance(model, str):
        if model not in constructors:
            raise ValueError(f"`model` must be one of {sorted(constructors)}. Received: model={model!r}")
        model = constructors[model]
    if weights is None or classes == 1000:
        return model(weights=weights, input_shape=input_shape, classes=classes, **options)
    backbone = model(weights=weights, input_shape=input_shape, include_top=False, pooling="avg", **options)
    x = backbone.output
    if dropout_rate:
        x = keras.layers.Dropout(dropout_rate, name="top_dropout")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    model = keras.Model(backbone.inputs, outputs, name=backbone.name)
    return inputs.attach(model, inputs.input_transform(backbone))


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


def _worker_dir(output_dir):
    """Chief: `output_dir`; other workers: a folder of their own inside it."""
    if is_chief():
        return output_dir
    task = json.loads(os.environ["TF_CONFIG"])["task"]
    return os.path.join(output_dir, "workers", f"{task['type']}_{task.get('index', 0)}")


def make_callbacks(output_dir, *, backup_dir="backup", backup_freq="epoch", tensorboard=True):
    """Replica statistics sync, BackupAndRestore, CSV history, TensorBoard.

    Args:
        output_dir: run folder (created).
        backup_freq: "epoch" or a number of batches between backups.
    """
    output_dir = _worker_dir(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    callbacks = [
        SyncReplicaStatistics(),  # first: backups and checkpoints see synced statistics
        keras.callbacks.BackupAndRestore(os.path.join(output_dir, backup_dir), save_freq=backup_freq),
        keras.callbacks.CSVLogger(os.path.join(output_dir, "history.csv"), append=True),
    ]
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(output_dir, "logs")))
    return callbacks


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
    tensorboard=True,
    callbacks=(),
    verbose="auto",
):
    """Compile `model` with `recipe` and fit it, resumable.

    Args:
        model: built inside `strategy.scope()`.
        train_data: batches of the global size, repeating or not.
        recipe: a name from `RECIPES` or a `Recipe`; `frozen_epochs > 0`
            first trains the head alone (fine-tuning).
        epochs: total epochs (default: the recipe's).
        steps_per_epoch: batches per epoch.
        global_batch: the batch size the pipeline yields (scales the lr).
        output_dir: run folder, see the module docstring.
        val_data: evaluation batches; the best model by validation accuracy
            is saved as `best.keras`.
        strategy: the strategy the model was built in (default: current).
        backup_freq: "epoch" or batches between backups.
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
    history = {}
    frozen_weights = os.path.join(_worker_dir(output_dir), "frozen_phase.weights.h5")
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
        result = model.fit(
            train_data, initial_epoch=start, epochs=end, steps_per_epoch=steps_per_epoch,
            validation_data=val_data, verbose=verbose, shuffle=False,  # the pipeline shuffles
            callbacks=make_callbacks(output_dir, backup_dir=backup, backup_freq=backup_freq,
                                     tensorboard=tensorboard) + extra,
        )
        for key, values in result.history.items():
            history.setdefault(key, []).extend(values)
        if not trainable:
            model.save_weights(frozen_weights)
    best = os.path.join(output_dir, "best.keras")
    if is_chief() and os.path.exists(best):
        inputs.write_metadata(best, model)  # ModelCheckpoint saved it with model.save
    return history
