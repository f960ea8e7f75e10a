import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import save_file
from timm_reference import random_timm_model, state_dict_arrays

from keras_senet.cli import build_parser, main


def test_help_explains_every_flag():
    for command in ("info", "convert", "presets", "export"):
        parser = build_parser()._subparsers._group_actions[0].choices[command]
        for action in parser._actions:
            if action.dest != "help":
                assert action.help, f"{command} {action.dest} has no help"


def test_info_prints_reference_numbers(capsys):
    assert main(["info", "SEResNet50", "--variant", "caffe"]) == 0
    out = capsys.readouterr().out
    assert "28,088,024" in out and "3.860" in out


def test_info_run(capsys):
    assert main(["info", "SEResNet18", "SEMobileNetV3Small", "--variant", "torch", "--input-size", "64", "--run"]) == 0
    out = capsys.readouterr().out
    assert out.count("(1, 1000)") == 2 and "2,542,856" in out


def test_info_unknown_model():
    with pytest.raises(SystemExit, match="unknown model 'SEResNet51'"):
        main(["info", "SEResNet51"])


def test_convert_and_validate(tmp_path):
    path = tmp_path / "legacy_seresnet18.safetensors"
    save_file(state_dict_arrays(random_timm_model("legacy_seresnet18")), str(path))
    out = tmp_path / "model.keras"
    result = subprocess.run(
        [sys.executable, "-m", "keras_senet.cli", "convert", "--timm-model", "legacy_seresnet18",
         "--checkpoint", str(path), "--output", str(out), "--validate", "--input-size", "97"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert out.exists()
    diff = float(result.stdout.split("max abs logit difference vs timm: ")[1].split()[0])
    assert diff <= 1e-4
    assert "top-5 agreement 100%" in result.stdout


def test_convert_bad_checkpoint_exits_with_message(tmp_path, capsys):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"not a checkpoint")
    assert main(["convert", "--timm-model", "seresnet50", "--checkpoint", str(path), "--output", str(tmp_path / "x.keras")]) == 2
    assert "broken.safetensors is not a readable safetensors file" in capsys.readouterr().err
    assert not (tmp_path / "x.keras").exists()


def test_presets_lists_every_preset(capsys):
    from keras_senet.weights.presets import PRESETS

    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in PRESETS)
    assert "seresnet50.ra2_in1k *" in out


def test_export_named_model_and_keras_file(tmp_path, capsys):
    import keras_senet

    assert main(["export", "SEMobileNetV3Small", "--weights", "none", "--input-size", "64",
                 "--format", "tflite", "--quantize", "float16", "--output", str(tmp_path / "m.tflite")]) == 0
    assert "tflite/float16" in capsys.readouterr().out and (tmp_path / "m.tflite").exists()
    model = keras_senet.SEResNet18(weights=None, input_shape=(64, 64, 3), classes=5)
    model.save(tmp_path / "r18.keras")
    np.save(tmp_path / "calibration.npy", np.random.default_rng(0).normal(size=(8, 64, 64, 3)).astype("float32"))
    assert main(["export", str(tmp_path / "r18.keras"), "--format", "tflite", "--quantize", "int8",
                 "--calibration", str(tmp_path / "calibration.npy"), "--output", str(tmp_path / "r18.tflite")]) == 0
    assert main(["export", str(tmp_path / "r18.keras"), "--format", "onnx", "--output", str(tmp_path / "r18.onnx")]) == 0
    out = capsys.readouterr().out
    assert "tflite/int8" in out and "onnx ->" in out


def test_export_errors(tmp_path):
    with pytest.raises(SystemExit, match="neither a file nor a model name"):
        main(["export", "SEResNet51", "--format", "onnx", "--output", str(tmp_path / "x.onnx")])
    with pytest.raises(SystemExit, match="--quantize applies to --format tflite only"):
        main(["export", "SEResNet18", "--weights", "none", "--format", "onnx", "--quantize", "int8",
              "--output", str(tmp_path / "x.onnx")])


def test_export_int8_with_an_image_folder(tmp_path, capsys):
    import keras

    keras.utils.set_random_seed(1)  # seed 0 gave a dead SE bottleneck that XNNPACK refuses (tested in export)
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        keras.utils.save_img(folder / f"{i}.png", rng.integers(0, 256, (80, 70, 3)).astype("uint8"))
    assert main(["export", "SEResNet18", "--weights", "none", "--input-size", "64", "--format", "tflite",
                 "--quantize", "int8", "--int8-io", "--calibration", str(folder),
                 "--output", str(tmp_path / "m.tflite")]) == 0
    assert "tflite/int8" in capsys.readouterr().out


def test_train_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for flag in ("--model", "--weights", "--dataset", "--epochs", "--batch-size", "--strategy",
                 "--output", "--recipe", "--backup-freq", "--cpu-replicas", "--export-tflite"):
        assert flag in text


def test_train_rejects_unknown_model(tmp_path, capsys):
    code = main(["train", "--model", "ResNet9000", "--dataset", "fashion_mnist", "--output", str(tmp_path)])
    assert code == 2 and "ResNet9000" in capsys.readouterr().err


def test_train_rejects_bad_backup_freq(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--model", "SEResNet18", "--dataset", "fashion_mnist", "--output", str(tmp_path),
              "--backup-freq", "often"])
    assert "--backup-freq: must be 'epoch' or a positive number of batches" in capsys.readouterr().err
