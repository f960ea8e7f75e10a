"""The examples run (briefly) as users run them."""

import json
import os
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def _run(script, *args, cwd):
    out = subprocess.run([sys.executable, os.path.join(EXAMPLES, script), *args], cwd=cwd,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return out.stdout


def test_every_example_explains_its_flags(tmp_path):
    for script in ("quickstart.py", "se_vs_baseline.py", "paper_cifar.py"):
        text = _run(script, "--help", cwd=tmp_path)
        assert "--epochs" in text and "--output" in text, script


def test_paper_cifar_runs_on_local_data(tmp_path):
    text = _run("paper_cifar.py", "--dataset", "fashion_mnist", "--depth", "8", "--epochs", "1",
                "--train-images", "256", "--image-size", "16", "--output", "out", cwd=tmp_path)
    assert "se_resnet8_cifar seed 0: top-1 error" in text
    runs = json.loads((tmp_path / "out" / "results.json").read_text())["runs"]
    assert [r["name"] for r in runs] == ["se_resnet8_cifar", "resnet8_cifar"]
    assert (tmp_path / "out" / "curves.png").exists()


def test_se_vs_baseline_summarizes_seeds(tmp_path):
    sys.path.insert(0, EXAMPLES)
    try:
        import se_vs_baseline
    finally:
        sys.path.remove(EXAMPLES)
    from keras_senet.training.experiments import RunResult

    def run(name, seed, accuracy):
        history = {"loss": [1.0, 0.5], "val_sparse_categorical_accuracy": [0.5, accuracy]}
        return RunResult(name, seed, 100, 1000, accuracy, 1.0, history)

    results = [run("se_resnet8_cifar", 0, 0.80), run("resnet8_cifar", 0, 0.70),
               run("se_resnet8_cifar", 1, 0.90), run("resnet8_cifar", 1, 0.70)]
    summary = se_vs_baseline.summarize(results)
    assert summary["se_resnet8_cifar"] == pytest.approx((0.85, 0.0707107, 2))
    assert summary["resnet8_cifar"] == (0.70, 0.0, 2)
    se_vs_baseline.plot_summary(results, tmp_path / "a.png", "title")
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
