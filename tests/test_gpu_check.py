"""benchmarks/gpu_check.py on the CPU: a tiny setting on torch in a subprocess
(the JSON it writes, checked against figures computed here), its time limit,
its argument errors, and its ratio arithmetic. No speed is asserted."""

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "gpu_check.py")
# keras.applications.ResNet50 with 1000 classes, as Keras documents it (25.6M,
# counting BatchNorm's moving statistics); SE-ResNet-50: timm's seresnet50
# (28,088,024 parameters) plus the same 53,120 BatchNorm moving statistics.
RESNET50_PARAMETERS = 25_636_712
SERESNET50_PARAMETERS = 28_088_024 + 53_120


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(*args):
    # One thread: on 2 cores shared with other processes, torch's two spinning
    # OpenMP threads made each step about 6x slower (no speed is checked here).
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=600, env=env)


def test_tiny_run_on_torch_writes_images_per_second_and_ratios(tmp_path):
    # torch: no compilation, the cheapest backend on this CPU (JAX compiles each model and mode)
    output = tmp_path / "check.json"
    start = time.perf_counter()
    out = run("--backends", "torch", "--size", "32", "--batch", "2", "--steps", "2", "--warmup", "1",
              "--models", "SEResNet50", "--precisions", "float32", "--output", str(output))
    wall_s = time.perf_counter() - start
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report = json.loads(output.read_text())
    assert report["complete"] and report["problems"] == []
    assert report["settings"]["batch"] == {"train": 2, "infer": 4}
    facts = report["backends"]["torch"]
    assert facts["status"] == "ok" and facts["version"]
    # keras_senet's models ran on torch without importing TensorFlow (installed here)
    assert facts["checks"]["tensorflow_not_imported"] is True
    results = {(r["mode"], r["model"]): r for r in report["results"]}
    assert sorted(results) == [("infer", "ResNet50"), ("infer", "SEResNet50"),
                               ("train", "ResNet50"), ("train", "SEResNet50")]
    for (mode, model), r in results.items():
        assert r["backend"] == "torch" and r["precision"] == "float32"
        assert r["parameters"] == {"ResNet50": RESNET50_PARAMETERS, "SEResNet50": SERESNET50_PARAMETERS}[model]
        assert r["batch"] == {"train": 2, "infer": 4}[mode] and len(r["step_s"]) == 2
        speeds = [r["batch"] / t for t in r["step_s"]]
        assert r["images_per_s"]["median"] == pytest.approx(statistics.median(speeds), rel=1e-3)
        assert r["images_per_s"]["min"] == pytest.approx(min(speeds), rel=1e-3)
        assert r["images_per_s"]["max"] == pytest.approx(max(speeds), rel=1e-3)
        assert r["replicas"] == 1 and r["images_per_step"] == r["batch"]
        assert r["outputs_finite"] and r["jit_compile"] is False
        assert r["speedup_vs_float32"] is None
    # The step times are seconds of this run: every timed interval (first and
    # timed steps of the four results) lies inside the subprocess's lifetime,
    # one after another, so together they are shorter than it; milliseconds
    # reported as seconds would exceed it. (A bound, not a speed check.)
    timed = [t for r in results.values() for t in (r["first_step_s"], *r["step_s"])]
    assert min(timed) > 0 and sum(timed) < wall_s, (timed, wall_s)
    for mode in ("train", "infer"):
        se, base = results[mode, "SEResNet50"], results[mode, "ResNet50"]
        assert base["ratio_to_resnet50"] == pytest.approx(1.0)
        expected = se["images_per_s"]["median"] / base["images_per_s"]["median"]
        assert se["ratio_to_resnet50"] == pytest.approx(expected)
    # the initial models' loss on random labels: about ln(1000) = 6.9
    assert 1 < results["train", "SEResNet50"]["first_loss"] < 50
    rows = [line.split() for line in out.stdout.splitlines()]
    row = next(r for r in rows if r[:5] == ["torch", "float32", "train", "SEResNet50", "2"])
    assert float(row[5]) == pytest.approx(results["train", "SEResNet50"]["images_per_s"]["median"], abs=0.051)


def test_time_limit_keeps_a_valid_report_with_what_was_not_measured(tmp_path):
    output = tmp_path / "check.json"
    out = run("--backends", "jax", "--size", "32", "--batch", "2", "--models", "SEResNet50",
              "--time-limit", "3", "--output", str(output))
    assert out.returncode == 0, out.stderr[-3000:]  # what the time limit leaves out is no failure
    report = json.loads(output.read_text())
    assert report["backends"]["jax"]["status"] == "stopped at the end of its 3 s share of --time-limit"
    # 3 precisions x 2 modes x (ResNet50, SEResNet50), none measured in 3 s (ResNet-50's first step compiles)
    assert len(report["results"]) == 12 and all("skipped" in r for r in report["results"])
    assert "NOT MEASURED: 12 of 12" in out.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["check.json"]  # no temporary file left


@pytest.mark.parametrize("args, message", [
    (["--models", "SEResNet5O"], "--models: unknown SEResNet5O"),
    (["--size", "16"], "--size must be at least 32"),
    (["--output", "/nonexistent/folder/x.json"], "--output /nonexistent/folder/x.json: its folder does not exist"),
])
def test_bad_arguments_name_the_argument_and_write_nothing(tmp_path, args, message):
    output = tmp_path / "check.json"
    out = run("--backends", "jax", "--output", str(output), *args)
    assert out.returncode == 2
    assert message in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_ratios_are_over_resnet50_and_float32_of_the_same_backend_and_mode():
    gpu_check = load_script()

    def result(backend, precision, mode, model, speed):
        return {"backend": backend, "precision": precision, "mode": mode, "model": model,
                "images_per_s": {"median": speed}}

    results = [result("jax", "float32", "train", "ResNet50", 100.0),
               result("jax", "float32", "train", "SEResNet50", 80.0),
               result("jax", "mixed_bfloat16", "train", "ResNet50", 250.0),
               result("jax", "mixed_bfloat16", "train", "SEResNet50", 180.0),
               result("torch", "float32", "train", "SEResNet50", 50.0),
               {"backend": "torch", "precision": "float32", "mode": "train", "model": "ResNet50", "skipped": "x"}]
    gpu_check.add_ratios(results)
    assert [r["ratio_to_resnet50"] for r in results] == [1.0, 0.8, 1.0, 0.72, None, None]
    assert [r["speedup_vs_float32"] for r in results] == [None, None, 2.5, 2.25, None, None]


def test_timm_reference_and_channels_first(tmp_path):
    # timm's process measures timm's own models (the parameter counts are
    # timm's: seresnext50_32x4d 27,559,896, no BatchNorm statistics counted
    # and resnet50 without the conv biases of keras.applications' ResNet50),
    # and --data-format channels_first runs the Keras models in NCHW.
    output = tmp_path / "check.json"
    out = run("--backends", "torch", "timm", "--data-format", "channels_first", "--size", "32", "--batch", "2",
              "--steps", "1", "--warmup", "1", "--models", "SEResNeXt50", "--precisions", "float32",
              "--modes", "infer", "--output", str(output))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report = json.loads(output.read_text())
    assert report["settings"]["data_format"] == "channels_first" and report["problems"] == []
    params = {(r["backend"], r["model"]): r["parameters"] for r in report["results"]}
    assert params[("timm", "SEResNeXt50")] == 27_559_896
    assert params[("timm", "ResNet50")] == 25_557_032
    # Keras counts BatchNorm's moving statistics too, 2 per channel: stem 64, then per stage
    # blocks x (width + width + 4 x filters) + the projection's 4 x filters, width = 2 x filters
    channels = 64 + sum(n * (4 * f + 4 * f) + 4 * f for n, f in zip((3, 4, 6, 3), (64, 128, 256, 512)))
    assert params[("torch", "SEResNeXt50")] == 27_559_896 + 2 * channels
    assert params[("torch", "ResNet50")] == RESNET50_PARAMETERS
    assert report["backends"]["timm"]["timm"]


def test_timm_rejects_a_model_it_has_no_equivalent_for(tmp_path):
    out = run("--backends", "timm", "--models", "SEMobileNet", "--output", str(tmp_path / "c.json"))
    assert out.returncode == 2 and "--models: timm has no equivalent" in out.stderr
    assert not (tmp_path / "c.json").exists()
