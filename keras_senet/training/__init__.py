"""Training with `model.fit` on any `tf.distribute` strategy.

- `get_strategy`, `split_cpu`: pick TPU / multi-worker / mirrored / default.
- `load_source`, `make_dataset`: tfds, image-folder and Fashion-MNIST inputs.
- `RECIPES`, `get_recipe`, `compile_model`: the paper's schedule and others.
- `build_classifier`, `train`: fit with BackupAndRestore, checkpoints, logs.
"""

from keras_senet.training.data import load_fashion_mnist, load_source, read_idx  # noqa: F401
from keras_senet.training.fit import build_classifier, make_callbacks, train  # noqa: F401
from keras_senet.training.pipeline import make_dataset, steps_per_epoch  # noqa: F401
from keras_senet.training.recipes import RECIPES, Recipe, compile_model, get_recipe  # noqa: F401
from keras_senet.training.strategy import get_strategy, is_chief, split_cpu  # noqa: F401
