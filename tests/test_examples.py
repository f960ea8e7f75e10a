"""The examples run (briefly) as users run them."""

import json
import os
import subprocess
import sys

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
    _run("se_vs_baseline.py", "--seeds", "0", "1", "--depth", "8", "--epochs", "1", "--train-images", "256",
         "--test-images", "256", "--output", "out", cwd=tmp_path)
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    assert len(result["runs"]) == 4 and set(result["summary"]) == {"se_resnet8_cifar", "resnet8_cifar"}
    assert all(n == 2 for _, _, n in result["summary"].values())
    assert "± " in (tmp_path / "out" / "results.md").read_text()
    assert (tmp_path / "out" / "accuracy.png").exists()
