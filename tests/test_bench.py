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
    # one path, its outputs unchecked: nothing to recommend, and the table says why
    assert report["recommended"] is None and report["input_shape"] == [16, 16, 3]
    assert f"recommended: none (only one path ran, {path_name}" in capsys.readouterr().out
    assert main(["bench", str(path), "--paths", "graph"]) == 2
    assert f"--paths: a {kind} file runs on {path_name} only" in capsys.readouterr().err
    assert main(["bench", str(path), "--image-size", "20"]) == 2  # the former spelling, an alias
    assert f"--input-size: {path} takes 16x16 inputs only. Received: --input-size 20" in capsys.readouterr().err


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


@pytest.mark.parametrize("flag, value, wrong", [
    ("--warmup", "-1", "must be an integer >= 0"),
    ("--batch", "0", "must be a positive integer"),
    ("--repeats", "-2", "must be a positive integer"),
    ("--threads", "0", "must be a positive integer"),
    ("--input-size", "0", "must be a positive integer"),
    ("--image-size", "x", "must be a positive integer"),
])
def test_a_bad_flag_value_exits_2_naming_flag_and_value(flag, value, wrong, capsys):
    """Rejected while parsing, before any model is built."""
    with pytest.raises(SystemExit) as exited:
        main(["bench", "SEResNet18", flag, value])
    assert exited.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    named = "--input-size/--image-size" if flag in ("--input-size", "--image-size") else flag
    assert error == f"keras-senet bench: error: argument {named}: {wrong}, not {value!r}"


def test_a_size_or_weights_the_model_cannot_take_names_the_flag(tmp_path, monkeypatch, capsys):
    # SE-ResNeXt-26 takes 32x32 and larger (checked before anything is built)
    assert main(["bench", "SEResNeXt26", "--image-size", "8"]) == 2
    assert capsys.readouterr().err == ("keras-senet bench: --input-size: SEResNeXt26 cannot take 8x8 inputs: Input "
                                       "size must be at least 32x32. Received: --input-size 8\n")
    # a model of any size whose 5x5 'valid' convolution has nothing to slide over at 4x4
    x = keras.Input((None, None, 3))
    any_size = tmp_path / "any_size.keras"
    inputs.save_model(keras.Model(x, keras.layers.Conv2D(2, 5)(x)), str(any_size))
    assert main(["bench", str(any_size), "--input-size", "4", "--paths", "graph"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"keras-senet bench: --input-size: {any_size} fails at 4x4 inputs (")
    assert error.endswith("give a larger size. Received: --input-size 4\n")
    # weights that are neither a preset nor a file: the file is not found
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "SEResNet18", "--weights", "bogus"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"keras-senet bench: --weights 'bogus': no such file ({tmp_path / 'bogus'}) and no "
                            "preset of that name. Give 'none' (random weights), 'imagenet', a preset name")
    # a preset of another architecture: the constructor's message, under the flag's name
    assert main(["bench", "SEResNet18", "--weights", "seresnext26d_32x4d.bt_in1k"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("keras-senet bench: --weights: Preset 'seresnext26d_32x4d.bt_in1k' does not fit")
    assert error.endswith("Received: --weights 'seresnext26d_32x4d.bt_in1k'\n")


def test_input_size_is_the_flag_and_image_size_its_alias_in_bench_and_train():
    parser = build_parser()
    train = ["train", "--model", "SEResNet18", "--dataset", "d", "--output", "o"]
    for spelling in ("--input-size", "--image-size"):
        assert parser.parse_args(["bench", "SEResNet18", spelling, "64"]).input_size == 64
        assert parser.parse_args(train + [spelling, "64"]).image_size == 64  # what _train reads
    for command in ("bench", "train"):
        usage = parser._subparsers._group_actions[0].choices[command].format_help()
        assert "--input-size INPUT_SIZE, --image-size INPUT_SIZE" in usage
        assert "--image-size is an alias" in " ".join(usage.split())


@pytest.mark.tensorflow_only
def test_nothing_to_measure_exits_2_naming_the_package(tmp_path, monkeypatch, capsys):
    """A .tflite file without LiteRT: no table (it would have no rows to
    time), one message with the package and the pip command, exit 2."""
    path = tmp_path / "tiny.tflite"
    export.to_tflite(_tiny_model(), str(path))
    find_spec = importlib.util.find_spec

    def hide(*modules):
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a: None if name in modules else find_spec(name, *a))

    hide("ai_edge_litert")
    with pytest.raises(ImportError, match="ai_edge_litert") as error:
        bench.bench(str(path))
    assert error.value.name == "ai_edge_litert"
    assert main(["bench", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f"keras-senet bench: nothing to measure: {path} is a .tflite file, which runs on litert "
                            "only, and litert needs the ai_edge_litert package: pip install 'keras-senet[export]'\n")
    # named in --paths: the error names the flag
    assert main(["bench", str(path), "--paths", "litert"]) == 2
    error = capsys.readouterr().err
    assert "--paths: litert needs the ai_edge_litert package; pip install 'keras-senet[export]'" in error
    # with other paths left to run, a missing package is a row of the table, not an error
    hide("jax", "torch")
    chosen, skipped = bench._choose_paths("keras", None, "tensorflow", "m")
    assert chosen == list(bench.PATHS)
    assert skipped == {"jax": "not installed (pip install 'keras-senet[jax]')",
                       "torch": "not installed (pip install 'keras-senet[torch]')"}


@pytest.mark.tensorflow_only
def test_one_path_alone_is_not_recommended(capsys):
    """A Keras model timed on the graph only: checked and ok, but with
    nothing to compare it with, nothing is recommended."""
    report = bench.bench(_tiny_model(), paths=["graph"], warmup=0, repeats=2)
    assert [(r.path, r.status) for r in report.rows] == [("graph", "ok")]
    assert report.recommended is None
    assert "recommended: none (only one path ran, graph: nothing to compare it with)" in report.table()


def test_recommended_only_among_paths_that_ran_and_match_keras():
    """The rule itself, on made-up rows: faster paths that failed, were not
    checked or are wrong lose to a slower one that matches Keras."""
    def row(path, status, ms=None):
        return bench.Row(path, status, median_ms=ms)

    ok, ok_slow = row("graph", "ok", 5.0), row("onnx", "ok", 9.0)
    assert bench.recommend([ok_slow, ok]) == "graph"
    assert bench.recommend([ok_slow, row("xla", "wrong", 1.0), row("jax", "not checked", 1.0)]) == "onnx"
    assert bench.recommend([ok_slow, row("litert", "failed: no XNNPACK")]) is None  # one path ran
    assert bench.recommend([row("litert", "not checked", 1.0), row("onnx", "not checked", 2.0)]) is None
    assert bench.recommend([row("xla", "wrong", 1.0), row("graph", "wrong", 2.0)]) is None
    assert bench.recommend([]) is None
