"""SE versus the same network without SE, trained the same way.

The paper's central claim (Tables 2-3): adding SE blocks to a network
improves accuracy at almost no cost. `compare` trains SE-ResNet-`depth` and
ResNet-`depth` (CIFAR layout) with the same recipe, data order and seed, and
`plot` draws their curves. Used by examples/quickstart.py and
examples/se_vs_baseline.py.
"""

import dataclasses
import time

import keras

from keras_senet.info import model_info
from keras_senet.models.se_resnet import SEResNetCIFAR
from keras_senet.training import data, pipeline, recipes
from keras_senet.training.fit import train


@dataclasses.dataclass
class RunResult:
    name: str
    seed: int
    params: int
    macs: int
    test_accuracy: float
    train_seconds: float
    history: dict
    model: object = dataclasses.field(default=None, repr=False)  # the trained model

    def row(self):
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("history", "model")}


def compare(
    *,
    dataset="fashion_mnist",
    depth=20,
    epochs=3,
    train_images=12_000,
    test_images=None,
    batch_size=128,
    image_size=28,
    seed=0,
    strategy=None,
    output_dir="compare_out",
    recipe=None,
    lr=None,
    verbose=2,
):
    """Train SE-ResNet-`depth` and ResNet-`depth` alike; return two RunResults.

    Args:
        dataset: anything `keras_senet.training.load_source` takes.
        train_images / test_images: how many images to use (None: all).
        batch_size: the global batch.
        strategy: a tf.distribute strategy (default: the current one).
        recipe: a recipe name or Recipe (default: cosine with a short warm-up
            and no label smoothing), run for `epochs`.
        lr: peak learning rate (default: the recipe's, scaled to the batch).
    """
    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    source, info = data.load_source(dataset, "train")
    test_source, _ = data.load_source(dataset, "test")
    common = dict(image_size=image_size, batch_size=batch_size, seed=seed, deterministic=True)
    train_data = pipeline.make_dataset(source, training=True, limit=train_images, repeat=True, **common)
    test_data = pipeline.make_dataset(test_source, training=False, limit=test_images, **common)
    steps = pipeline.steps_per_epoch(min(train_images or info.num_examples, info.num_examples), batch_size)
    changes = {"base_lr": lr, "base_batch": batch_size} if lr else {}
    if recipe is None:
        recipe = recipes.get_recipe("cosine", epochs=epochs, warmup_epochs=min(1, epochs / 4),
                                    label_smoothing=0.0, **changes)
    else:
        recipe = recipes.get_recipe(recipe, epochs=epochs, **changes)
    results = []
    for se_layer in ("se", None):
        keras.utils.set_random_seed(seed)  # same initial weights for the shared layers
        with strategy.scope():
            model = SEResNetCIFAR(depth, input_shape=(image_size, image_size, info.channels),
                                  classes=info.num_classes, se_layer=se_layer)
        start = time.perf_counter()
        history = train(model, train_data, recipe=recipe, steps_per_epoch=steps, global_batch=batch_size,
                        output_dir=f"{output_dir}/{model.name}_seed{seed}", val_data=test_data,
                        strategy=strategy, tensorboard=False, verbose=verbose)
        seconds = time.perf_counter() - start
        _, accuracy = model.evaluate(test_data, verbose=0)
        facts = model_info(model)
        results.append(RunResult(model.name, seed, facts.params, facts.macs, float(accuracy), seconds, history, model))
    return results


def table(results):
    """A Markdown table of RunResults."""
    lines = ["| model | seed | params | MMACs | test accuracy | train time |", "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r.name} | {r.seed} | {r.params:,} | {r.macs / 1e6:.1f} | "
                     f"{100 * r.test_accuracy:.2f}% | {r.train_seconds:.0f} s |")
    return "\n".join(lines)


def plot(results, path, title="SE vs no SE"):
    """Training loss and test accuracy per epoch, one line per run, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for r in results:
        epochs = range(1, len(r.history["loss"]) + 1)
        style = "-" if "se_" in r.name else "--"
        label = f"{r.name} (seed {r.seed})"
        ax_loss.plot(epochs, r.history["loss"], style, label=label)
        ax_acc.plot(epochs, [100 * a for a in r.history["val_sparse_categorical_accuracy"]], style, label=label)
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="training loss")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_acc.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
