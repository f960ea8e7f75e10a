"""Fine-tuning as users run it: from a preset served in its real format by a
local host (a timm checkpoint with random weights and BatchNorm statistics),
through `training.train` and through `keras-senet train --weights PRESET`
(one's own 1-channel `.keras` file: test_user_flows.py).

What is compared: the backbone against the timm model it was converted from
(pooled features), the frozen phase against the weights before it, the
saved result against the model in memory, a run killed in phase 2 and
resumed against the same run uninterrupted."""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
from harness import kill_when_backed_up
from hosting import Server, host_pth
from PIL import Image
from timm_reference import random_timm_model

import keras_senet
from keras_senet import cli, inputs, training
from keras_senet.training import fit
from keras_senet.weights.presets import PRESETS

PRESET = "legacy_seresnet18.in1k"
CLASSES = 5
SIZE = 32
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    """PRESET on a local host, and a KERAS_HOME whose cache holds it once
    converted (what a subprocess finds offline)."""
    server = Server(str(tmp_path_factory.mktemp("hosted")))
    reference = random_timm_model("legacy_seresnet18", seed=3)
    home = tmp_path_factory.mktemp("keras_home")
    patch = pytest.MonkeyPatch()
    patch.setenv("KERAS_HOME", str(home))
    patch.setitem(PRESETS[PRESET], "urls", (f"{server.url}/{host_pth(server, reference, 'seresnet18')}",))
    yield reference, home
    patch.undo()
    server.close()


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Fashion-MNIST's first 5 classes as PNG folders (train/ and validation/),
    the layout a user's own dataset has."""
    root = tmp_path_factory.mktemp("five_classes")
    for split, count in (("train", 48), ("validation", 16)):
        images, labels = [], []
        source, _ = training.load_source("fashion_mnist", "train" if split == "train" else "test")
        for image, label in source.filter(lambda x, y: y < CLASSES).take(count * CLASSES):
            images.append(image.numpy()[..., 0])
            labels.append(int(label))
        for i, (image, label) in enumerate(zip(images, labels)):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{i:04d}.png")
    return root


def backbone_variables(model):
    """{path: value} of every variable outside the head, BatchNorm statistics included."""
    return {v.path: keras.ops.convert_to_numpy(v) for layer in model.layers if layer.name not in fit.HEAD_LAYERS
            for v in layer.weights}


class Snapshots(keras.callbacks.Callback):
    """Every variable of the model at the end of each `fit` (one per phase)."""

    def __init__(self):
        super().__init__()
        self.phases = []

    def on_train_end(self, logs=None):
        self.phases.append(backbone_variables(self.model))


def test_finetune_from_preset_freezes_then_trains_the_backbone(preset, folders, tmp_path):
    import torch

    reference, _ = preset
    model = training.build_classifier("SEResNet18", classes=CLASSES, weights=PRESET, input_shape=(SIZE, SIZE, 3),
                                      dropout_rate=0.2)
    # The backbone is the hosted checkpoint: pooled features equal timm's.
    images = np.random.default_rng(0).uniform(0, 1, (2, SIZE, SIZE, 3)).astype("float32")
    features = keras.Model(model.inputs, model.get_layer("avg_pool").output)
    with torch.no_grad():
        expected = reference.forward_head(reference.forward_features(torch.from_numpy(images).permute(0, 3, 1, 2)),
                                          pre_logits=True).numpy()
    np.testing.assert_allclose(features.predict(images, verbose=0), expected, atol=1e-4)

    before = backbone_variables(model)
    source, _ = training.load_source(str(folders), "train")
    data = training.make_dataset(source, training=True, image_size=SIZE, batch_size=16, seed=0,
                                 transform=inputs.input_transform(model), repeat=True)
    snapshots = Snapshots()
    history = training.train(
        model, data, recipe=training.get_recipe("finetune", epochs=2, frozen_epochs=1), steps_per_epoch=8,
        global_batch=16, output_dir=str(tmp_path / "run"), tensorboard=False, callbacks=[snapshots], verbose=0,
    )
    assert len(history["loss"]) == 2 and len(snapshots.phases) == 2
    frozen, trained = snapshots.phases
    moving = [k for k in before if "moving_" in k]
    assert len(before) > 100 and len(moving) >= 40
    for key in before:  # phase 1: weights and BatchNorm statistics untouched
        np.testing.assert_array_equal(frozen[key], before[key], err_msg=key)
    changed = [k for k in before if not np.array_equal(trained[k], before[k])]
    # phase 2: every kernel and every moving statistic moved
    assert {k for k in before if k.endswith("/kernel") or "moving_" in k} <= set(changed)

    path = tmp_path / "finetuned.keras"
    inputs.save_model(model, path)
    loaded = keras.saving.load_model(path)  # a plain Keras load after import keras_senet
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6)
    assert loaded.output_shape == (None, CLASSES)


def _train_command(folders, output, *extra):
    return [
        sys.executable, "-m", "keras_senet.cli", "train", "--model", "SEResNet18", "--weights", PRESET,
        "--dataset", str(folders), "--image-size", str(SIZE), "--batch-size", "16", "--epochs", "3",
        "--frozen-epochs", "1", "--seed", "0", "--deterministic", "--progress", "epoch",
        "--output", str(output), *extra,
    ]


def _epochs_run(stdout):
    """Epoch summary lines ("15/15 - 3s - ... loss: ...") that `--progress epoch` prints."""
    return len(re.findall(r"^\d+/\d+ - .* loss: ", stdout, re.MULTILINE))


def test_cli_finetune_killed_in_phase_two_resumes_to_the_uninterrupted_result(preset, folders, tmp_path, capsys):
    _, home = preset
    keras_senet.SEResNet18(weights=PRESET, include_top=False)  # the download, converted into the cache
    env = dict(ENV, KERAS_HOME=str(home))
    whole = subprocess.run(_train_command(folders, tmp_path / "whole"), env=env, capture_output=True, text=True,
                           timeout=600)
    assert whole.returncode == 0, whole.stdout[-2000:] + whole.stderr[-3000:]
    assert _epochs_run(whole.stdout) == 3

    output = tmp_path / "killed"
    # killed once phase 2 has backed up its first epoch (epoch 2 of 3)
    kill_when_backed_up(_train_command(folders, output), env, output, lambda s: s["epoch"] == 2,
                        tmp_path / "first.log")
    assert (output / "frozen_phase.weights.h5").exists() and not (output / "model.keras").exists()

    second = subprocess.run(_train_command(folders, output), env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-3000:]
    # phase 1 is not run again, phase 2 resumes in its second epoch: one epoch trained
    assert _epochs_run(second.stdout) == 1 and "Epoch 3/3" in second.stdout, second.stdout[-2000:]
    # weights, optimizer state, dropout generator and data position all restored: the same result
    resumed, expected = (keras.saving.load_model(path / "model.keras") for path in (output, tmp_path / "whole"))
    assert int(resumed.optimizer.iterations) == int(expected.optimizer.iterations) == 2 * 15
    for a, b in zip(resumed.weights, expected.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)

    # the result predicts, with its class names, through the command's entry point
    image = next((folders / "validation" / "class3").iterdir())
    capsys.readouterr()
    assert cli.main(["predict", str(image), "--model", str(output / "model.keras"), "--json"]) == 0
    top = json.loads(capsys.readouterr().out)[0]["top"]
    assert len(top) == CLASSES and {p["name"] for p in top} == {f"class{i}" for i in range(CLASSES)}
    assert abs(sum(p["probability"] for p in top) - 1) < 1e-4


def test_weights_file_of_a_single_channel_model_trains_further(tmp_path):
    """A `.weights.h5` saved from a 1-channel model loads into the classifier
    built with the same arguments, head included (a preset's new-head path
    would drop it)."""
    keras.utils.set_random_seed(1)
    saved = keras_senet.SEResNetCIFAR(8, input_shape=(28, 28, 1), classes=10)
    path = tmp_path / "run.weights.h5"
    saved.save_weights(path)
    model = training.build_classifier("SEResNetCIFAR", classes=10, weights=str(path), input_shape=(28, 28, 1),
                                      depth=8)
    assert len(model.weights) == len(saved.weights)
    for a, b in zip(model.weights, saved.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    with pytest.raises(ValueError, match="does not fit model"):
        training.build_classifier("SEResNetCIFAR", classes=5, weights=str(path), input_shape=(28, 28, 1), depth=8)
