"""`keras-senet bench` and keras_senet.bench: every path runs and agrees with
Keras, the reported numbers are consistent with each other and with the
wall time of the command, and errors name the argument. No speed is
asserted (speed is the command's own report)."""

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

import keras_senet
from keras_senet import bench, export, inputs
from keras_senet.cli import build_parser, main


@pytest.fixture(scope="module")
def small_keras_file(tmp_path_factory):
    """A small SE-ResNeXt-like model, 32x32 inputs: strided stem, a grouped
    3x3 conv (GroupedConv2D, 4 groups: the native TensorFlow kernel on graph,
    XLA, LiteRT and ONNX, Keras' Conv2D on JAX and PyTorch), an SE block and
    a softmax head. Few ops, so that exporting it takes seconds."""
    x = keras.Input((32, 32, 3))
    y = keras.layers.Conv2D(16, 3, strides=2, use_bias=False)(x)
    y = keras.layers.ReLU()(keras.layers.BatchNormalization(epsilon=1e-5)(y))
    y = keras_senet.layers.GroupedConv2D(32, 3, padding="same", groups=4)(y)
    y = keras_senet.SqueezeExcite(ratio=4)(keras.layers.ReLU()(y))
    y = keras.layers.Dense(10, activation="softmax")(keras.layers.GlobalAveragePooling2D()(y))
    path = tmp_path_factory.mktemp("bench") / "small_se.keras"
    inputs.save_model(keras.Model(x, y), str(path))
    return path


def _tiny_model():
    x = keras.Input((16, 16, 3))
    y = keras.layers.Conv2D(8, 3, activation="relu")(x)
    y = keras.layers.GlobalAveragePooling2D()(y)
    return keras.Model(x, keras.layers.Dense(5)(y))


def test_help_explains_every_flag():
    parser = build_parser()._subparsers._group_actions[0].choices["bench"]
    for action in parser._actions:
        if action.dest != "help":
            assert action.help, f"bench {action.dest} has no help"


@pytest.mark.tensorflow_only  # graph, xla and the exporters need the TensorFlow backend
def test_every_path_agrees_with_keras_and_times_add_up(small_keras_file, tmp_path):
    out = tmp_path / "report.json"
    command = [sys.executable, "-m", "keras_senet.cli", "bench", str(small_keras_file), "--batch", "2",
               "--paths", "graph,xla,litert,onnx,jax,torch", "--warmup", "1", "--repeats", "3", "--json", str(out)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP_")}  # TensorFlow's default logging
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    wall_ms = 1000 * (time.perf_counter() - start)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert result.stderr == ""  # quiet: the progress line shows on a terminal only
    report = json.loads(out.read_text())
    rows = {r["path"]: r for r in report["rows"]}
    assert list(rows) == list(bench.PATHS)
    # The tolerance is a fixed fraction of the Keras model's largest output,
    # computed here from the model itself on inputs of the same distribution.
    model = inputs.load_model(str(small_keras_file), compile=False)
    scale = float(np.abs(model.predict(np.random.default_rng(0).normal(size=(2, 32, 32, 3)), verbose=0)).max())
    assert report["tolerance"] == pytest.approx(bench.TOLERANCE * scale, rel=1e-5)
    for name, r in rows.items():
        assert r["status"] == "ok", (name, r["status"])
        assert r["max_abs_diff"] <= report["tolerance"], name
        times = r["times_ms"]
        assert len(times) == 3 and all(t > 0 for t in times) and r["first_call_ms"] > 0, name
        assert r["median_ms"] == pytest.approx(statistics.median(times)) and r["min_ms"] == min(times)
        assert r["max_ms"] == max(times)
        assert r["images_per_s"] == pytest.approx(2 / (r["median_ms"] / 1000), rel=1e-12), name
    # Every timed interval happened inside the command: their sum in ms is
    # below its wall time (a unit error of 1000x would not be).
    assert sum(r["first_call_ms"] + sum(r["times_ms"]) for r in rows.values()) < wall_ms
    fastest = min(rows.values(), key=lambda r: r["median_ms"])
    assert report["recommended"] == fastest["path"]
    assert len(set(report["threads"].values())) == 1  # every runtime got the same threads
    table = result.stdout
    assert f"recommended: {report['recommended']}" in table
    assert all(f"\n{name} " in table for name in bench.PATHS)


@pytest.mark.tensorflow_only  # graph, xla and the exporters need the TensorFlow backend
def test_a_path_that_disagrees_with_keras_is_wrong_and_not_recommended(monkeypatch):
    """A path whose output is off by 1% of the largest output (a broken
    kernel would be off by far more) is marked wrong, even when fastest."""
    real = bench.graph_runner

    def runners(model, x, jit_compile=False):
        runner = real(model, x, jit_compile=False)  # "xla" as a graph too: no compile time here
        if not jit_compile:
            return runner
        off = runner.output + 0.01 * np.abs(runner.output).max()
        return bench.Runner("xla", off, lambda: 1e-9, runner.first_call_s)  # and "fastest"

    monkeypatch.setattr(bench, "graph_runner", runners)
    report = bench.bench("SEMobileNetV3Small", image_size=32, paths=["graph", "xla"], warmup=0, repeats=2)
    assert report.row("xla").status == "wrong" and report.row("graph").status == "ok"
    assert report.row("xla").max_abs_diff > report.tolerance
    assert report.recommended == "graph"
    assert "SEMobileNetV3Small (random weights)" in report.table()


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("kind", ["tflite", "onnx"])
def test_a_tflite_or_onnx_file_benches_its_own_path(kind, tmp_path, capsys):
    model = _tiny_model()
    path = tmp_path / f"tiny.{kind}"
    x = np.random.default_rng(1).normal(size=(3, 16, 16, 3)).astype("float32")
    (export.to_tflite if kind == "tflite" else export.to_onnx)(model, str(path), sample=x)
    out = tmp_path / "r.json"
    assert main(["bench", str(path), "--batch", "3", "--warmup", "0", "--repeats", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    path_name = {"tflite": "litert", "onnx": "onnx"}[kind]
    assert [r["path"] for r in report["rows"]] == [path_name]
    assert report["rows"][0]["status"] == "not checked" and report["tolerance"] is None
    assert report["recommended"] == path_name and report["input_shape"] == [16, 16, 3]
    assert main(["bench", str(path), "--paths", "graph"]) == 2
    assert f"--paths: a {kind} file runs on {path_name} only" in capsys.readouterr().err
    assert main(["bench", str(path), "--image-size", "20"]) == 2
    assert f"--image-size: {path} takes 16x16 inputs only" in capsys.readouterr().err


def test_errors_name_the_argument(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["bench", "SEResNet18", "--paths", "graph,tpu"])
    assert "argument --paths: unknown path 'tpu'" in capsys.readouterr().err
    assert main(["bench", str(tmp_path / "missing.keras")]) == 2
    assert f"MODEL|FILE: file not found: {tmp_path / 'missing.keras'}" in capsys.readouterr().err
    weights = tmp_path / "w.weights.h5"
    weights.write_bytes(b"")
    assert main(["bench", str(weights)]) == 2
    assert f"--weights {weights}" in capsys.readouterr().err
    assert main(["bench", "SEResNet51"]) == 2
    assert "MODEL|FILE: 'SEResNet51' is neither a file nor a constructor name" in capsys.readouterr().err
    assert main(["bench", "SEResNet18", "--warmup", "-1"]) == 2
    assert "--warmup must be an integer >= 0" in capsys.readouterr().err


@pytest.mark.tensorflow_only
def test_a_missing_package_is_a_row_by_default_and_an_error_when_asked_for(tmp_path, monkeypatch, capsys):
    path = tmp_path / "tiny.tflite"
    export.to_tflite(_tiny_model(), str(path))
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ai_edge_litert" else find_spec(name, *a))
    report = bench.bench(str(path))
    assert [(r.path, r.status) for r in report.rows] == [("litert", "not installed (pip install 'keras-senet[export]')")]
    assert report.recommended is None and "recommended: none" in report.table()
    assert main(["bench", str(path), "--paths", "litert"]) == 2
    assert "--paths: litert needs the ai_edge_litert package; pip install 'keras-senet[export]'" in capsys.readouterr().err
