"""Training with `model.fit` on any `tf.distribute` strategy.

- `get_strategy`, `split_cpu`: pick TPU / multi-worker / mirrored / default.
- `load_source`, `make_dataset`: tfds, image-folder and Fashion-MNIST inputs.
- `RECIPES`, `get_recipe`, `compile_model`: the paper's schedule and others.
- `build_classifier`, `train`: fit with BackupAndRestore, checkpoints, logs.

The names load on first use (see `keras_senet._lazy`), so importing a light
submodule such as `keras_senet.training.strategy` imports no Keras.
"""

from keras_senet import _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, {
    "keras_senet.training.data": ("load_fashion_mnist", "load_source", "read_idx"),
    "keras_senet.training.fit": ("build_classifier", "make_callbacks", "train"),
    "keras_senet.training.pipeline": ("make_dataset", "steps_per_epoch"),
    "keras_senet.training.recipes": ("RECIPES", "Recipe", "compile_model", "get_recipe"),
    "keras_senet.training.strategy": ("get_strategy", "is_chief", "split_cpu"),
})
