"""Training recipes: optimizer, learning-rate schedule, loss.

- "paper": Hu et al.'s ImageNet schedule: SGD with momentum 0.9, batch 1024
  with learning rate 0.6 (scaled linearly with the global batch), divided by
  10 every 30 epochs, 100 epochs. Weight decay is not given in the paper;
  1e-4 is the ResNet value.
- "cosine": SGD (Nesterov) 0.1 per 256 examples, 5 warm-up epochs, cosine
  decay, label smoothing 0.1, weight decay 5e-5.
- "cifar": He et al.'s CIFAR recipe used by the SE paper's CIFAR experiment:
  SGD 0.9, 0.1 for batch 128, divided by 10 at 50% and 75% of training,
  weight decay 1e-4.
- "finetune": from ImageNet weights: SGD 0.9, 0.01 per 256, cosine, label
  smoothing 0.1; `frozen_epochs` train the new head on a frozen backbone
  first.
Weight decay skips BatchNorm parameters and biases, also in a model reloaded
from a `.keras` file (`SGD` keeps the exclusions in its config).
"""

import dataclasses

import keras


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A training recipe; `replace(recipe, epochs=...)` changes a field."""

    name: str
    epochs: int
    base_lr: float  # for a global batch of `base_batch`, scaled linearly
    base_batch: int
    schedule: str = "cosine"  # "cosine", "step" or "constant"
    milestones: tuple = ()  # "step": fractions of training at which lr /= 10
    warmup_epochs: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    frozen_epochs: int = 0  # fine-tuning: epochs with the backbone frozen


RECIPES = {
    "paper": Recipe("paper", 100, 0.6, 1024, "step", milestones=(0.3, 0.6, 0.9)),
    "cosine": Recipe(
        "cosine", 100, 0.1, 256, "cosine", warmup_epochs=5, nesterov=True,
        weight_decay=5e-5, label_smoothing=0.1,
    ),
    "cifar": Recipe("cifar", 164, 0.1, 128, "step", milestones=(0.5, 0.75)),
    "finetune": Recipe(
        "finetune", 10, 0.01, 256, "cosine", weight_decay=1e-5, label_smoothing=0.1, frozen_epochs=1,
    ),
}
SCHEDULES = ("cosine", "step", "constant")


def get_recipe(recipe, **changes):
    """A recipe by name (or a Recipe), with fields replaced by `changes`."""
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise ValueError(f"`recipe` must be one of {tuple(RECIPES)}. Received: recipe={recipe!r}")
        recipe = RECIPES[recipe]
    changes = {k: v for k, v in changes.items() if v is not None}
    recipe = dataclasses.replace(recipe, **changes)
    if recipe.schedule not in SCHEDULES:
        raise ValueError(f"`schedule` must be one of {SCHEDULES}. Received: schedule={recipe.schedule!r}")
    return recipe


def learning_rate(recipe, global_batch):
    """The peak learning rate for `global_batch` (linear scaling)."""
    return recipe.base_lr * global_batch / recipe.base_batch


@keras.saving.register_keras_serializable("keras_senet")
class WarmupStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak`, then divided by 10 at each boundary step."""

    def __init__(self, peak, boundaries, warmup_steps=0):
        self.peak = peak
        self.boundaries = list(boundaries)
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        drops = sum(keras.ops.cast(step >= b, "float32") for b in self.boundaries) if self.boundaries else 0.0
        lr = self.peak * keras.ops.power(0.1, drops)
        if self.warmup_steps:
            lr = lr * keras.ops.minimum(1.0, (step + 1) / self.warmup_steps)
        return lr

    def get_config(self):
        return {"peak": self.peak, "boundaries": self.boundaries, "warmup_steps": self.warmup_steps}


def make_schedule(recipe, steps_per_epoch, global_batch, epochs=None):
    """The recipe's learning-rate schedule over `epochs` (default: its own)."""
    epochs = epochs or recipe.epochs
    peak = learning_rate(recipe, global_batch)
    total = max(1, int(epochs * steps_per_epoch))
    warmup = int(recipe.warmup_epochs * steps_per_epoch)
    if recipe.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else peak, max(1, total - warmup),
            warmup_target=peak if warmup else None, warmup_steps=warmup,
        )
    boundaries = [int(m * total) for m in recipe.milestones] if recipe.schedule == "step" else []
    return WarmupStepDecay(peak, boundaries, warmup)


NO_DECAY = ("gamma", "beta", "bias")  # variable names weight decay skips (BatchNorm, biases)


@keras.saving.register_keras_serializable("keras_senet")
class SGD(keras.optimizers.SGD):
    """Keras' SGD whose weight-decay exclusions are part of its config.

    `keras.optimizers.SGD.exclude_from_weight_decay` is not saved: a model
    reloaded from a `.keras` file would decay its BatchNorm parameters and
    biases. Here the excluded variable names are an argument.

    Args:
        *args, **kwargs: those of `keras.optimizers.SGD`.
        no_decay_names: variable names (substrings) without weight decay.
    """

    def __init__(self, *args, no_decay_names=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.no_decay_names = tuple(no_decay_names)
        if self.no_decay_names:
            self.exclude_from_weight_decay(var_names=list(self.no_decay_names))

    def get_config(self):
        return {**super().get_config(), "no_decay_names": list(self.no_decay_names)}


def make_optimizer(recipe, steps_per_epoch, global_batch, epochs=None):
    """SGD with the recipe's schedule; no weight decay on BN and biases."""
    return SGD(
        make_schedule(recipe, steps_per_epoch, global_batch, epochs),
        momentum=recipe.momentum, nesterov=recipe.nesterov,
        weight_decay=recipe.weight_decay or None, no_decay_names=NO_DECAY if recipe.weight_decay else (),
    )


@keras.saving.register_keras_serializable("keras_senet")
class SparseCategoricalCrossentropy(keras.losses.Loss):
    """Cross-entropy on integer labels with label smoothing (Keras' sparse
    loss has none)."""

    def __init__(self, label_smoothing=0.0, from_logits=False, name="sparse_categorical_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        y_true = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,))
        one_hot = keras.ops.one_hot(y_true, keras.ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=self.from_logits, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing, "from_logits": self.from_logits}


def compile_model(model, recipe, steps_per_epoch, global_batch, epochs=None, from_logits=None):
    """Compile `model` (inside the strategy's scope) with the recipe."""
    if from_logits is None:
        from_logits = getattr(model.layers[-1], "activation", None) is not keras.activations.softmax
    optimizer = make_optimizer(recipe, steps_per_epoch, global_batch, epochs)
    if model.dtype_policy.name == "mixed_float16":
        # What compile() would wrap by itself; wrapped here, the saved compile
        # config names it, and the model reloads with loss scaling (and its
        # optimizer state) even under the default float32 policy.
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(
        optimizer=optimizer,
        loss=SparseCategoricalCrossentropy(recipe.label_smoothing, from_logits=from_logits),
        metrics=["sparse_categorical_accuracy"],
    )
    return model


def mixed_precision_policy():
    """"mixed_float16" on GPUs with tensor cores, "mixed_bfloat16" on TPUs,
    else "float32" (CPUs gain nothing from either)."""
    import tensorflow as tf

    if tf.config.list_logical_devices("TPU"):
        return "mixed_bfloat16"
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
        if capability >= (7, 0):
            return "mixed_float16"
    return "float32"
