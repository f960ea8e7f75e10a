"""The notebooks run end to end, offline, on small local data."""

import os

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = os.path.join(os.path.dirname(__file__), "..", "notebooks")
OFFLINE = {
    "MODEL": "SEResNet18",  # the same code path as SE-ResNet-50, a third of its layers to trace
    "WEIGHTS": None,
    "DATASET": "/usr/share/datasets/fashion-mnist",  # Debian's dataset-fashion-mnist
    "TRAIN_SPLIT": "train",
    "VAL_SPLIT": "test",
    "IMAGE_SIZE": 64,
    "EPOCHS": 2,
    "BATCH_SIZE": 16,
    "LIMIT": 48,
    "VAL_LIMIT": 16,
    "INSTALL": False,  # the package under test is installed already
    "OUTPUT": "out",
}


def _run(path, parameters, workdir):
    nb = nbformat.read(path, as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(
        "\n".join(f"{k} = {v!r}" for k, v in parameters.items()), metadata={"tags": ["injected-parameters"]}))
    # The kernel is this Python (ipykernel's native "python3" spec); it
    # inherits TF_CPP_MIN_LOG_LEVEL from conftest and plots inline.
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    return nb


@pytest.mark.parametrize("name", ["finetune_se_resnet50.ipynb"])
def test_notebook_runs_offline(name, tmp_path):
    nb = _run(os.path.join(NOTEBOOKS, name), OFFLINE, tmp_path)
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "se_resnet18: " in text and "validation accuracy" in text
    assert "top-1 agreement 100.0%" in text
    assert (tmp_path / "out" / "model.tflite").exists() and (tmp_path / "out" / "history.csv").exists()
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 3  # samples, curves, predictions
