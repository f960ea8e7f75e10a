"""A quiet, light `keras-senet` command and a lazy `keras_senet` package.

`--help` of every subcommand imports no TensorFlow, Keras or JAX; commands
print no TensorFlow, CUDA or absl log lines unless `keras-senet --verbose`
(compared with what TensorFlow itself prints on this machine); errors are one
line and exit 2; every public name of the package still works.
"""

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import keras_senet
from keras_senet import cli
from keras_senet.cli import build_parser, main

HEAVY = ("tensorflow", "keras", "jax", "torch")
# A TensorFlow C++ log line: absl's "I0000 00:00:1796049657.317188    8715 port.cc:153] ..."
# or the older "2025-09-17 14:44:05.157831: I external/.../cudart_stub.cc:32] ...".
LOG_LINE = re.compile(r"^(?:[IWEF]\d{4} [\d:.]+ +\d+ ([\w.]+:\d+)\] |\d{4}-\d\d-\d\d [\d:.]+: [IWEF] \S*?([\w.]+:\d+)\] )",
                      re.MULTILINE)
# The public names of keras_senet before it became lazy, and MODELS' order.
PUBLIC = (
    "ChannelSpatialSqueezeExcite", "SpatialSqueezeExcite", "SqueezeExcite", "ModelInfo", "model_info",
    "add_squeeze_excite", "se_mobilenet", "se_resnet", "MODELS", "SEResNetCIFAR",
)
MODEL_ORDER = (
    "SEResNet18", "SEResNet34", "SEResNet50", "SEResNet101", "SEResNet152", "SEResNeXt26", "SEResNeXt50",
    "SEResNeXt101", "SENet154", "SEResNet152D", "SEResNeXt26D", "SEResNeXt26T", "SEResNeXt101_32x8d",
    "SEResNeXt101_64x4d", "SEResNeXt101D_32x8d", "SEResNeXtAA101D_32x8d", "SEResNeXtAA201D_32x8d",
    "SEResNet33TS", "SEResNeXt26TS",
    "SEMobileNet", "SEMobileNetV2", "SEMobileNetV3Large", "SEMobileNetV3Small",
    "SEInceptionV3", "SEInceptionResNetV2", "SEDenseNet121", "SEDenseNet169", "SEDenseNet201",
)
SUBCOMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)


def _run(*args, **env):
    """`python ARGS` with TensorFlow's default logging (conftest sets TF_CPP_MIN_LOG_LEVEL)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP_")}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, env={**base, **env})


def _log_sources(text):
    return {a or b for a, b in LOG_LINE.findall(text)}


def test_every_help_imports_no_framework():
    """`keras-senet [SUBCOMMAND] --help` for each subcommand, in a fresh process."""
    assert {"info", "presets", "export", "train", "convert"} <= set(SUBCOMMANDS)
    script = textwrap.dedent(f"""
        import contextlib, io, json, sys
        from keras_senet.cli import main
        report = {{}}
        for command in [[]] + [[c] for c in {SUBCOMMANDS!r}]:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                try:
                    main(command + ["--help"])
                except SystemExit as e:
                    code = e.code
            heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
            report[" ".join(command) or "-"] = [code, out.getvalue().startswith("usage: keras-senet"), heavy[:3]]
        print(json.dumps(report))
    """)
    result = _run("-c", script)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""
    report = json.loads(result.stdout)
    assert set(report) == {"-", *SUBCOMMANDS}
    for command, (code, usage, heavy) in report.items():
        assert (code, usage, heavy) == (0, True, []), command


def test_console_script_help_imports_no_framework():
    script = os.path.join(os.path.dirname(sys.executable), "keras-senet")
    result = _run("-X", "importtime", script, "--help")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--verbose" in result.stdout
    imported = [line.rpartition("|")[2].strip() for line in result.stderr.splitlines()]
    assert [m for m in imported if m.split(".")[0] in HEAVY] == []
    assert all(line.startswith("import time:") for line in result.stderr.splitlines())


def test_import_package_is_light():
    result = _run("-c", f"import sys, keras_senet; print(keras_senet.__version__, "
                        f"[m for m in sys.modules if m.split('.')[0] in {HEAVY!r}])")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["0.1.0", "[]"]


def test_public_names_as_before():
    namespace = {}
    exec(f"from keras_senet import {', '.join(PUBLIC + MODEL_ORDER)}", namespace)
    for name in PUBLIC + MODEL_ORDER:
        assert getattr(keras_senet, name) is namespace[name], name
        assert name in dir(keras_senet) and name in keras_senet.__all__
    assert tuple(keras_senet.MODELS) == MODEL_ORDER
    assert all(keras_senet.MODELS[name].__name__ == name for name in MODEL_ORDER)
    assert keras_senet.se_resnet.__name__ == "keras_senet.models.se_resnet"
    assert callable(keras_senet.se_mobilenet.preprocess_input)
    assert keras_senet.weights.__name__ == "keras_senet.weights"  # a subpackage, as before
    with pytest.raises(AttributeError, match="no attribute 'SEResNet51'"):
        keras_senet.SEResNet51  # noqa: B018


def test_saved_model_loads_after_bare_import(tmp_path):
    """The SE layers register with Keras whatever the import order, without a
    keras_senet name being read; without keras_senet the same file fails."""
    import keras

    inputs = keras.Input((8, 8, 16))
    path = tmp_path / "se.keras"
    keras.Model(inputs, keras_senet.SqueezeExcite()(inputs)).save(path)
    load = f"import keras; print(keras.saving.load_model({str(path)!r}).layers[-1].__class__.__name__)"
    for prefix in ("import keras_senet; ", "import keras; import keras_senet; "):
        result = _run("-c", prefix + load)
        assert result.returncode == 0 and result.stdout.split()[-1] == "SqueezeExcite", result.stderr[-2000:]
    assert _run("-c", load).returncode != 0


def test_every_module_imports_first():
    """Whichever public module a user imports first, it loads: the one whose import
    brings Keras in fires the registration hook (keras_senet._lazy) while it
    is still half-loaded, and the modules the hook imports must cope
    (`from keras_senet.layers import SqueezeExcite` failed this way)."""
    # The modules users import from (all 30 took 2 minutes of CI: each
    # process imports TensorFlow), each in a fresh process.
    names = ["keras_senet.layers", "keras_senet.layers.squeeze_excite", "keras_senet.layers.grouped_conv",
             "keras_senet.models.se_resnet", "keras_senet.export", "keras_senet.training"]
    failed, running = {}, []
    for name in names + [None, None]:  # two at a time: one per core
        if len(running) == 2 or name is None:
            if running:
                module, process = running.pop(0)
                if process.wait(timeout=300):
                    failed[module] = process.stderr.read().strip().splitlines()[-1:]
        if name:
            running.append((name, subprocess.Popen([sys.executable, "-c", f"import {name}"], text=True,
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
    assert not running and not failed, failed


@pytest.mark.tensorflow_only
def test_info_is_quiet_unless_verbose():
    """stderr empty; with --verbose it shows what TensorFlow itself prints here."""
    reference = _run("-c", "import tensorflow as tf; print(float(tf.constant(1.0) + 1))")
    assert reference.returncode == 0 and reference.stdout.strip() == "2.0", reference.stderr[-2000:]
    command = ("-m", "keras_senet.cli", "info", "SEResNet18", "--input-size", "64", "--variant", "caffe")
    quiet = _run(*command)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert quiet.stderr == ""
    assert re.search(r"SEResNet18 +caffe +64 +11,778,592 ", quiet.stdout)  # timm legacy_seresnet18
    verbose = _run(*command[:2], "--verbose", *command[2:])
    assert verbose.returncode == 0 and verbose.stdout == quiet.stdout, verbose.stderr[-3000:]
    assert _log_sources(reference.stderr) <= _log_sources(verbose.stderr)


@pytest.mark.tensorflow_only
def test_train_is_quiet(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "validation"):
        for label in ("a", "b"):
            (tmp_path / "data" / split / label).mkdir(parents=True)
            for i in range(8):
                pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / "data" / split / label / f"{i}.png")
    result = _run("-m", "keras_senet.cli", "train", "--model", "SEResNetCIFAR", "--depth", "8",
                  "--dataset", str(tmp_path / "data"), "--image-size", "16", "--batch-size", "8", "--epochs", "2",
                  "--seed", "0", "--progress", "epoch", "--output", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""  # no `Local rendezvous is aborting`, no absl lines
    assert "Epoch 2/2" in result.stdout and (tmp_path / "run" / "model.keras").exists()


def test_train_progress_replaces_its_verbose():
    parser = build_parser()
    base = ["train", "--model", "SEResNet18", "--dataset", "d", "--output", "o"]
    assert parser.parse_args(base).progress is None  # a bar on a terminal, else a line per epoch
    assert parser.parse_args([*base, "--progress", "none"]).progress == "none"
    # The former spelling still runs (hidden): 0/1/2 as Keras' verbose.
    assert [parser.parse_args([*base, "--verbose", v]).progress for v in "012"] == ["none", "bar", "epoch"]
    args = parser.parse_args(["--verbose", *base])
    assert args.verbose is True and args.progress is None
    train_help = parser._subparsers._group_actions[0].choices["train"].format_help()
    assert "--progress" in train_help and "--verbose" not in train_help


def _fail_presets(monkeypatch, error):
    def cmd_presets(args):
        raise error

    monkeypatch.setattr(cli, "cmd_presets", cmd_presets)


def test_error_is_the_message_and_verbose_shows_traceback(monkeypatch, capsys):
    _fail_presets(monkeypatch, ValueError("bad value for --x\ndetail 1\nwhat to do"))
    assert main(["presets"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["keras-senet presets: bad value for --x", "  detail 1", "  what to do"]
    _fail_presets(monkeypatch, ValueError("\n".join(f"line {i}" for i in range(20))))  # a dump: cut
    assert main(["presets"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 13 and err[-1] == "  (and 8 more lines: keras-senet --verbose presets ... shows them)"
    _fail_presets(monkeypatch, ValueError("bad value for --x\ndetail 1\nwhat to do"))
    assert main(["--verbose", "presets"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and "detail 1" in err
    assert err.splitlines()[-3:] == ["keras-senet presets: bad value for --x", "  detail 1", "  what to do"]


def test_internal_import_error_is_not_hidden(monkeypatch):
    _fail_presets(monkeypatch, ImportError("cannot import name 'x' from 'keras_senet.y'", name="keras_senet.y"))
    with pytest.raises(ImportError, match="cannot import name 'x'"):
        main(["presets"])


@pytest.mark.tensorflow_only
def test_missing_optional_package_names_the_extra(monkeypatch, capsys, tmp_path):
    for module in ("onnxruntime", "tf2onnx"):
        monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    assert main(["export", "SEResNet18", "--weights", "none", "--input-size", "32", "--format", "onnx",
                 "--output", str(tmp_path / "m.onnx")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("keras-senet export: ") and re.search("onnxruntime|tf2onnx", line)
    assert line.endswith("install it with: pip install 'keras-senet[export]'")  # pyproject.toml's extras
    assert not list(tmp_path.iterdir())


def test_file_error_is_one_line(monkeypatch, capsys, tmp_path):
    missing = tmp_path / "missing.keras"
    _fail_presets(monkeypatch, FileNotFoundError(2, "No such file or directory", str(missing)))
    assert main(["presets"]) == 2
    assert capsys.readouterr().err == f"keras-senet presets: [Errno 2] No such file or directory: '{missing}'\n"


@pytest.mark.parametrize("module, hint", [
    ("torch", "pip install 'keras-senet[convert]'"),  # pyproject.toml's optional-dependencies
    ("ai_edge_litert", "pip install 'keras-senet[export]'"),
    ("matplotlib", "pip install 'keras-senet[plot]'"),
    ("numpy", "pip install numpy"),  # a requirement of its own
    ("not_a_keras_senet_requirement", None),
])
def test_install_hint(module, hint):
    assert cli._install_hint(module) == hint
