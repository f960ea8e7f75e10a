import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
from safetensors.numpy import save_file
from timm_reference import random_timm_model, state_dict_arrays

from keras_senet.cli import build_parser, main


def test_help_explains_every_flag():
    for command in ("info", "convert", "presets", "export", "predict"):
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


def test_info_lists_only_the_variants_a_model_has(capsys):
    """A ResNet-D row has "torch" only (se_resnet.ARCHS' `variants`): no
    caffe row for it, with the default --variant both or asking for caffe."""
    assert main(["info", "SEResNeXt26D", "SEResNet18", "--input-size", "64"]) == 0
    rows = [line.split()[:4] for line in capsys.readouterr().out.splitlines()[2:]]
    # parameters: timm's seresnext26d_32x4d, legacy_seresnet18, seresnet18
    assert rows == [["SEResNeXt26D", "torch", "64", "16,809,512"], ["SEResNet18", "caffe", "64", "11,778,592"],
                    ["SEResNet18", "torch", "64", "11,779,624"]]
    assert main(["info", "SEResNeXt26D", "--variant", "caffe"]) == 0
    assert capsys.readouterr().out.splitlines()[2:] == [
        "SEResNeXt26D           caffe    (none: SEResNeXt26D has variant torch only)"]


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
    # timm's results-imagenet.csv at 0173a139: seresnet50.ra2_in1k at 288, 81.284 / 95.652, crop 0.95, bicubic
    assert re.search(r"^seresnet50\.ra2_in1k +\* +SEResNet50 +torch +1,000 +81\.28 +95\.65 +288 / 0\.95 bicubic", out, re.M)
    # an ImageNet-12k head: its width, and no ImageNet-1k accuracy
    assert re.search(r"^seresnextaa101d_32x8d\.sw_in12k +SEResNeXtAA101D_32x8d +torch +11,821 +- +- ", out, re.M)


def test_readme_preset_table_is_the_command_output(capsys):
    """The README's table is what `keras-senet presets --markdown` prints."""
    assert main(["presets", "--markdown"]) == 0
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read().splitlines()
    start = readme.index(table[0])
    assert readme[start:start + len(table)] == table


def test_export_named_model_and_keras_file(tmp_path, capsys):
    import keras_senet

    assert main(["export", "SEMobileNetV3Small", "--weights", "none", "--input-size", "64",
                 "--format", "tflite", "--quantize", "float16", "--output", str(tmp_path / "m.tflite")]) == 0
    assert "tflite/float16" in capsys.readouterr().out and (tmp_path / "m.tflite").exists()
    model = keras_senet.SEResNet18(weights=None, input_shape=(64, 64, 3), classes=5)
    model.save(tmp_path / "r18.keras")
    np.save(tmp_path / "calibration.npy", np.random.default_rng(0).normal(size=(8, 64, 64, 3)).astype("float32"))
    # random weights: near-tie logits that int8 cannot keep (the trained case is in test_user_flows)
    assert main(["export", str(tmp_path / "r18.keras"), "--format", "tflite", "--quantize", "int8", "--min-agreement",
                 "0", "--calibration", str(tmp_path / "calibration.npy"), "--output", str(tmp_path / "r18.tflite")]) == 0
    # (a .keras file to ONNX, SavedModel and fp32 TFLite: test_user_flows)
    assert "tflite/int8" in capsys.readouterr().out


def test_export_errors(tmp_path, capsys):
    assert main(["export", "SEResNet51", "--format", "onnx", "--output", str(tmp_path / "x.onnx")]) == 2
    assert "'SEResNet51' is neither a model file nor a model name" in capsys.readouterr().err
    assert main(["export", "SEResNet18", "--weights", "none", "--format", "onnx", "--quantize", "int8",
                 "--output", str(tmp_path / "x.onnx")]) == 2
    assert "--quantize applies to --format tflite only" in capsys.readouterr().err
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(4):
        keras.utils.save_img(folder / f"{i}.png", np.zeros((40, 40, 3), "uint8"))
    assert main(["export", "SEResNet18", "--weights", "none", "--input-size", "64", "--format", "tflite",
                 "--quantize", "int8", "--calibration", str(folder), "--output", str(tmp_path / "m.tflite")]) == 2
    assert "--calibration: 4 images; give at least 5" in capsys.readouterr().err
    assert not (tmp_path / "m.tflite").exists()


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


def test_train_refuses_to_overwrite_a_finished_run(tmp_path, capsys):
    (tmp_path / "model.keras").write_bytes(b"a finished run's model")
    code = main(["train", "--model", "SEResNetCIFAR", "--dataset", "fashion_mnist", "--output", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "already holds a finished run" in err and str(tmp_path) in err
    assert (tmp_path / "model.keras").read_bytes() == b"a finished run's model"  # untouched


def test_train_rejects_bad_backup_freq(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--model", "SEResNet18", "--dataset", "fashion_mnist", "--output", str(tmp_path),
              "--backup-freq", "often"])
    assert "--backup-freq: must be 'epoch' or a positive number of batches" in capsys.readouterr().err
