"""Everything keras-senet saves loads, compiled, in a fresh process after a
bare `import keras_senet`: the layers, the loss, the learning-rate schedules,
the optimizer (its weight-decay exclusions and loss scaling included) and the
int8 hard-swish activation register with Keras as soon as Keras is imported.

Two files: the model.keras of a tiny `keras-senet train` run, and a model
saved by `keras_senet.inputs.save_model` that holds every registered object,
built and trained one step under mixed_float16.
"""

import json
import os
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_senet
from keras_senet import cli, export, inputs
from keras_senet.training import recipes

pytestmark = pytest.mark.tensorflow_only

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOAD = textwrap.dedent("""
    import json, sys
    import keras_senet
    import keras
    import numpy as np

    report = {"registered": sorted(k for k in keras.saving.get_custom_objects() if k.startswith("keras_senet>"))}
    for path in sys.argv[1:]:
        data = np.load(path + ".npz")
        model = keras.saving.load_model(path)  # compile=True
        optimizer = model.optimizer
        inner = getattr(optimizer, "inner_optimizer", optimizer)
        report[path] = {
            "evaluate": model.evaluate(data["x"], data["y"], return_dict=True, verbose=0),
            "predictions": np.asarray(model.predict(data["x"], verbose=0), "float64").tolist(),
            "loss": [type(model.loss).__module__, model.loss.label_smoothing],
            "optimizer": [type(optimizer).__name__, type(inner).__module__, int(optimizer.iterations)],
            "schedule": type(inner._learning_rate).__name__,
            "no_weight_decay": sorted(v.path for v in model.trainable_variables if not inner._use_weight_decay(v)),
        }
    print(json.dumps(report))
""")


def run_python(code, *args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def registered_in_source():
    """`keras_senet>NAME` for every class or function the package's source
    decorates with `register_keras_serializable`."""
    names = set()
    for folder, _, files in os.walk(os.path.join(ROOT, "keras_senet")):
        for name in files:
            if name.endswith(".py"):
                source = open(os.path.join(folder, name)).read()
                names |= {f"keras_senet>{n}" for n in re.findall(
                    r"@keras\.saving\.register_keras_serializable\([^)]*\)\s*\n(?:class|def) (\w+)", source)}
    return names


def every_object_model():
    """A small model that holds every object keras-senet registers with Keras."""
    x = keras.Input((16, 16, 3))
    y = keras.layers.Conv2D(8, 3, padding="same", activation=export._hard_swish_int8)(x)
    y = keras_senet.SpatialSqueezeExcite()(y)
    y = keras_senet.ChannelSpatialSqueezeExcite(ratio=2)(y)
    y = keras_senet.layers.GroupedConv2D(8, 3, padding="same", groups=2)(y)
    y = keras_senet.SqueezeExcite(ratio=2)(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    return keras.Model(x, keras.layers.Dense(3, activation="softmax")(y))


def image_folder(root, size=16, per_class=8):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "validation"):
        for label in ("a", "b"):
            (root / split / label).mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
                    root / split / label / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """{path: in-process facts} for the two files, with their evaluation data
    in PATH.npz."""
    tmp = tmp_path_factory.mktemp("saved")
    rng = np.random.default_rng(1)
    facts = {}

    run = tmp / "run"
    code = cli.main(["train", "--model", "SEResNetCIFAR", "--depth", "8", "--dataset", str(image_folder(tmp / "data")),
                     "--image-size", "16", "--batch-size", "8", "--epochs", "1", "--recipe", "cifar",
                     "--label-smoothing", "0.1", "--seed", "0", "--progress", "none", "--output", str(run)])
    assert code == 0
    path = str(run / "model.keras")
    np.savez(path + ".npz", x=rng.uniform(-2, 2, (8, 16, 16, 3)).astype("float32"), y=rng.integers(0, 2, 8))
    facts[path] = {"steps": 2, "classes": 2, "label_smoothing": 0.1, "schedule": "WarmupStepDecay",
                   "optimizer": "SGD"}

    keras.utils.set_random_seed(0)
    previous = keras.config.dtype_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = every_object_model()
    finally:
        keras.mixed_precision.set_global_policy(previous)
    recipes.compile_model(model, recipes.get_recipe("cosine", epochs=2), steps_per_epoch=4, global_batch=8)
    x, y = rng.uniform(-2, 2, (8, 16, 16, 3)).astype("float32"), rng.integers(0, 3, 8)
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)  # 4 steps: loss scaling may skip the first
    path = str(tmp / "every_object.keras")
    inputs.save_model(model, path)
    np.savez(path + ".npz", x=x, y=y)
    facts[path] = {"steps": int(model.optimizer.iterations), "classes": 3, "label_smoothing": 0.1,
                   "schedule": "CosineDecay", "optimizer": "LossScaleOptimizer",
                   "evaluate": model.evaluate(x, y, return_dict=True, verbose=0),
                   "predictions": np.asarray(model.predict(x, verbose=0), "float64")}
    return facts


def test_every_registered_object_is_known_after_bare_import(saved):
    result = run_python(LOAD, *saved)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report.pop("registered")) == registered_in_source()
    for path, facts in saved.items():
        loaded = report[path]
        data = np.load(path + ".npz")
        probabilities, labels = np.asarray(loaded["predictions"]), data["y"]
        # The compiled loss, recomputed here: cross-entropy on smoothed one-hot labels.
        smoothing, classes = facts["label_smoothing"], facts["classes"]
        targets = np.eye(classes)[labels] * (1 - smoothing) + smoothing / classes
        cross_entropy = -np.mean(np.sum(targets * np.log(np.clip(probabilities, 1e-7, 1)), axis=1))
        assert loaded["evaluate"]["loss"] == pytest.approx(cross_entropy, rel=2e-3), path
        assert loaded["evaluate"]["sparse_categorical_accuracy"] == pytest.approx(
            np.mean(probabilities.argmax(1) == labels)), path
        assert loaded["loss"] == ["keras_senet.training.recipes", facts["label_smoothing"]]
        # The optimizer as trained: its class, its state (the step count) and its exclusions.
        assert loaded["optimizer"] == [facts["optimizer"], "keras_senet.training.recipes", facts["steps"]]
        assert loaded["schedule"] == facts["schedule"]
        assert loaded["no_weight_decay"] and all(p.rsplit("/", 1)[-1] in ("gamma", "beta", "bias")
                                                 for p in loaded["no_weight_decay"])
        if "evaluate" in facts:  # the same numbers as the model that was saved
            assert loaded["evaluate"] == pytest.approx(facts["evaluate"], rel=1e-5)
            np.testing.assert_allclose(probabilities, facts["predictions"], rtol=1e-5, atol=1e-6)

