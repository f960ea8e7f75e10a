"""benchmarks/run.py runs and writes its results (no timing is asserted:
speed is for the benchmark's own report)."""

import json
import os
import re
import subprocess
import sys

import keras
import pytest

import keras_senet

RUN = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "run.py")


def test_benchmark_smoke_run_writes_json_and_chart(tmp_path):
    out = subprocess.run(
        [sys.executable, RUN, "--quick", "--only", "se_mobilenet", "--skip", "xla", "train", "tflite", "timm",
         "--output", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    result = json.loads((tmp_path / "r.json").read_text())
    names = [r["name"] for r in result["results"]]
    assert "SEMobileNet / keras.MobileNet: batch 1, graph" in names
    assert any(n.startswith("grouped 3x3 conv") for n in names)
    memory = next(r for r in result["results"] if "peak RSS" in r["name"])
    # The fresh process holds at least the model's float32 weights on top of
    # what the same imports take without a model (measured the same way).
    imports_only = subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, %r); import run, keras, tensorflow; "
         "print([int(l.split()[1]) / 1024 for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
         % os.path.dirname(RUN)],
        capture_output=True, text=True, timeout=300,
    )
    base_mb = float(imports_only.stdout.split()[-1])
    weights_mb = {name: 4 * model.count_params() / 2**20 for name, model in (
        ("a_mb", keras_senet.SEMobileNet(weights=None, input_shape=(64, 64, 3))),
        ("b_mb", keras.applications.MobileNet(weights=None, input_shape=(64, 64, 3))),
    )}
    for side, mb in weights_mb.items():
        assert memory[side] >= base_mb + mb, (side, memory[side], base_mb, mb)
    rows = [r for r in result["results"] if "ratio" in r]
    assert rows
    for r in rows:
        a, b = r["a"], r["b"]
        assert a["runs"] == b["runs"] >= 2
        for side in (a, b):  # a median of its own runs
            assert 0 < side["min_ms"] <= side["median_ms"] <= side["max_ms"], (r["name"], side)
        assert r["ratio"] == pytest.approx(a["median_ms"] / b["median_ms"], rel=1e-12), r["name"]
        if "images_per_s" in r:  # the batch in the row's name over each median
            batch = int(re.search(r"batch (\d+)", r["name"]).group(1))
            assert r["images_per_s"] == pytest.approx([batch / (t["median_ms"] / 1000) for t in (a, b)])
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    assert "| SEMobileNet / keras.MobileNet: batch 1, graph |" in (tmp_path / "r.md").read_text()
