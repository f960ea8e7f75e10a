"""The flows a new user runs first, run the way the user runs them: the
`keras-senet` command on real image files, offline.

A SE-MobileNetV3-Small (which normalizes inside and takes [0, 255]) is
trained by `keras-senet train` on Fashion-MNIST (Debian's
dataset-fashion-mnist); its test images are written as PNG and JPEG files.
The checks compare against things the code under test does not produce:
the true labels, an independent PIL preprocessing path, the Keras model's
own outputs for the exported files, and the pixel range of real images.
"""

import json
import os

import keras
import numpy as np
import pytest
from harness import built_once
from PIL import Image

from keras_senet import cli, export, inputs
from keras_senet.training.data import FASHION_MNIST_CLASSES, load_fashion_mnist

pytestmark = pytest.mark.tensorflow_only


def _write(folder, images, labels, suffix, rgb=False):
    os.makedirs(folder)
    for i, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(image).convert("RGB" if rgb else "L").save(os.path.join(folder, f"{i:04d}_{label}{suffix}"))
    return str(folder)


def _train_and_write(root):
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    code = cli.main([
        "train", "--model", "SEMobileNetV3Small", "--dataset", "fashion_mnist", "--image-size", "32",
        "--epochs", "2", "--limit", "12000", "--val-limit", "500", "--batch-size", "64", "--lr", "0.05",
        "--label-smoothing", "0", "--seed", "0", "--deterministic", "--output", str(root / "run"),
    ])
    assert code == 0
    # calibration from training images the run did not use (it read the first 12,000)
    _write(root / "calibration", x_train[20000:20200], y_train[20000:20200], ".png")
    _write(root / "check", x_test[:500], y_test[:500], ".png")
    _write(root / "photos", x_test[500:532], y_test[500:532], ".jpg", rgb=True)  # photos as users have them


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = built_once(tmp_path_factory, "flows", _train_and_write)
    return dict(
        model=str(root / "run" / "model.keras"), calibration=str(root / "calibration"), check=str(root / "check"),
        photos=str(root / "photos"), photo_labels=load_fashion_mnist()[1][1][500:532], root=root,
    )


def test_trained_model_carries_its_input_and_classes(run):
    model = inputs.load_model(run["model"])
    assert model.input_transform.mode == "raw"  # SE-MobileNetV3 normalizes inside: [0, 255] in
    assert model.input_transform.channels == 1 and model.input_transform.size == 32
    assert model.class_names == FASHION_MNIST_CLASSES
    assert keras.saving.load_model(run["model"]).count_params() == model.count_params()  # plain Keras loads it


def test_int8_export_from_image_folder(run, capfd):
    """Also the --min-agreement floor: set at 100%, the command must exit 1
    exactly when the independent agreement below is under 100%."""
    path = str(run["root"] / "int8.tflite")
    code = cli.main(["export", run["model"], "--format", "tflite", "--quantize", "int8", "--int8-io",
                     "--calibration", run["calibration"], "--check-data", run["check"], "--output", path,
                     "--min-agreement", "1.0"])
    printed = capfd.readouterr()
    assert code in (0, 1), printed
    assert "on 500 inputs from --check-data" in printed.out
    # quiet: the converter's and LiteRT's native log lines are not shown
    assert "fully_quantize" not in printed.err and "XNNPACK delegate" not in printed.err, printed.err
    from ai_edge_litert.interpreter import Interpreter

    scale, zero = Interpreter(model_path=path).get_input_details()[0]["quantization"]
    low, high = scale * (-128 - zero), scale * (127 - zero)
    assert low <= 0 and high >= 255 - scale, (low, high)  # the int8 input holds [0, 255] pixels, not [-1, 1]
    # independently of the CLI's report: LiteRT vs Keras on the held-out images
    model = inputs.load_model(run["model"])
    x = inputs.load_images(inputs.image_files(run["check"]), model.input_transform)
    lite, _ = export.run_tflite(path, x, timing_runs=0)
    agreement = np.mean(lite.argmax(1) == model.predict(x, verbose=0).argmax(1))
    assert agreement >= 0.95, agreement
    assert code == (0 if agreement == 1 else 1), (agreement, printed)
    if code:  # the file stays (it is usable), and the message says why the command failed
        assert "below --min-agreement 100%" in printed.err and os.path.exists(path), printed.err


def test_predict_gives_the_same_classes_in_every_format(run, capsys):
    """The .keras from train, its .tflite, .onnx and raw-input SavedModel:
    the same top-1 for every JPEG, equal to an independent PIL path into
    Keras, and right far above chance (the model is ~70% accurate)."""
    files = {"keras": run["model"]}
    for fmt, name, extra in (("tflite", "fp32.tflite", []), ("onnx", "m.onnx", []),
                             ("saved_model", "sm", ["--raw-input", "--check-data", run["check"]])):
        files[fmt] = str(run["root"] / name)
        assert cli.main(["export", run["model"], "--format", fmt, "--output", files[fmt], *extra]) == 0
    capsys.readouterr()
    top1 = {}
    for fmt, path in files.items():
        assert cli.main(["predict", run["photos"], "--model", path, "--top", "2", "--json"]) == 0
        results = json.loads(capsys.readouterr().out)
        assert [os.path.basename(r["image"]) for r in results] == sorted(os.listdir(run["photos"]))
        assert all(r["top"][0]["name"] in FASHION_MNIST_CLASSES for r in results)
        top1[fmt] = [r["top"][0]["index"] for r in results]
    assert top1["tflite"] == top1["keras"] and top1["onnx"] == top1["keras"] and top1["saved_model"] == top1["keras"]
    # independent preprocessing: PIL decodes, converts to gray and resizes; the model takes [0, 255]
    photos = [Image.open(os.path.join(run["photos"], f)).convert("L").resize((32, 32), Image.BILINEAR)
              for f in sorted(os.listdir(run["photos"]))]
    x = np.stack([np.asarray(p, "float32")[..., None] for p in photos])
    reference = keras.saving.load_model(run["model"]).predict(x, verbose=0).argmax(1)
    assert np.mean(reference == np.array(top1["keras"])) >= 0.9
    assert np.mean(np.array(top1["keras"]) == run["photo_labels"]) >= 0.45  # chance: 10%


def test_text_output_names_classes(run, capsys):
    photo = os.path.join(run["photos"], sorted(os.listdir(run["photos"]))[0])
    assert cli.main(["predict", photo, "--model", run["model"], "--top", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == photo and len(lines) == 4
    assert all(line.split(". ", 1)[1].split("  ")[0].strip() in FASHION_MNIST_CLASSES for line in lines[1:])


def test_cli_finetunes_the_trained_single_channel_model(run, tmp_path):
    """The 1-channel model that `train` saved, trained further from its file:
    no RGB forced on it, and the run starts from its weights (with a
    vanishing learning rate they stay; a fresh start would differ by about
    their own size)."""
    output = tmp_path / "again"
    assert cli.main(["train", "--model", "SEMobileNetV3Small", "--weights", run["model"], "--dataset", "fashion_mnist",
                     "--limit", "1024", "--val-limit", "256", "--batch-size", "64", "--epochs", "1",
                     "--frozen-epochs", "0", "--lr", "1e-9", "--seed", "0", "--progress", "none",
                     "--output", str(output)]) == 0
    saved = keras.saving.load_model(output / "model.keras")
    start = keras.saving.load_model(run["model"])
    assert saved.input_shape == start.input_shape == (None, 32, 32, 1)
    assert len(saved.trainable_weights) == len(start.trainable_weights) > 10
    for a, b in zip(saved.trainable_weights, start.trainable_weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, err_msg=a.path)


def test_errors_name_the_file_and_the_way_out(run, tmp_path, capsys):
    plain = str(tmp_path / "plain.keras")
    keras.saving.load_model(run["model"]).save(plain)  # saved without the package: no input transform
    assert cli.main(["predict", run["photos"], "--model", plain]) == 2
    err = capsys.readouterr().err
    assert f"{plain} carries no input transform" in err and "--preprocess" in err
    assert cli.main(["predict", run["photos"], "--model", plain, "--preprocess", "raw", "--top", "1"]) == 0
    capsys.readouterr()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    assert cli.main(["predict", str(broken), "--model", run["model"]]) == 2
    assert f"{broken} is not a readable image" in capsys.readouterr().err
    assert cli.main(["predict", str(tmp_path / "missing.jpg"), "--model", run["model"]]) == 2
    assert "Image file or folder not found" in capsys.readouterr().err
    assert cli.main(["export", str(tmp_path / "none.keras"), "--format", "onnx", "--output", "x.onnx"]) == 2
    assert "none.keras" in capsys.readouterr().err
