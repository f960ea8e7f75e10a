"""A `keras-senet train` run killed with SIGKILL and restarted with the same
command, against the same command run without interruption.

With epoch backups (the default) and a deterministic pipeline the resumed
run ends with exactly the uninterrupted run's weights: Keras restores weights
and optimizer state, `train` restores the random generators and positions
the data at the resumed epoch. With a backup inside an epoch, Keras restarts
that epoch from its first batch with weights that already saw some of it:
the resumed run makes that many extra optimizer steps."""

import os
import subprocess
import sys

import keras
import numpy as np
from harness import kill_when_backed_up

import keras_senet  # noqa: F401  (registers the package's classes for loading)

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
STEPS = 1536 // 64  # batches per epoch


def _command(output, backup_freq):
    return [
        sys.executable, "-m", "keras_senet.cli", "train", "--model", "SEResNetCIFAR", "--depth", "8",
        "--dataset", "fashion_mnist", "--image-size", "16", "--limit", "1536", "--val-limit", "256",
        "--batch-size", "64", "--epochs", "3", "--backup-freq", str(backup_freq), "--seed", "0",
        "--deterministic", "--progress", "epoch", "--output", str(output),
    ]


def _run(command):
    out = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return out.stdout


def _final(output):
    model = keras.saving.load_model(output / "model.keras")
    return model.get_weights(), int(model.optimizer.iterations.numpy())


def test_killed_and_resumed_run_equals_uninterrupted_run(tmp_path):
    _run(_command(tmp_path / "whole", "epoch"))
    expected, steps = _final(tmp_path / "whole")
    assert steps == 3 * STEPS

    # epoch backups: killed during the second epoch, after the first epoch's backup
    output = tmp_path / "epoch"
    state = kill_when_backed_up(_command(output, "epoch"), ENV, output, lambda s: s["epoch"] == 1,
                                tmp_path / "epoch.log")
    assert state == {"epoch": 1, "batch": 0}
    stdout = _run(_command(output, "epoch"))
    assert "Epoch 1/3" not in stdout and "Epoch 2/3" in stdout, stdout[-2000:]
    weights, steps = _final(output)
    assert steps == 3 * STEPS
    for a, b in zip(weights, expected):  # bit for bit, BatchNorm statistics included
        np.testing.assert_array_equal(a, b)
    assert not (output / "backup").exists()  # removed once training finished

    # a backup inside the second epoch: Keras trains that epoch again from its first batch
    output = tmp_path / "batch"
    state = kill_when_backed_up(_command(output, 8), ENV, output, lambda s: s["epoch"] == 1 and s["batch"] > 0,
                       tmp_path / "batch.log")
    _run(_command(output, 8))
    weights, steps = _final(output)
    assert steps == 3 * STEPS + state["batch"] + 1  # the batches done before the kill, done twice
    assert max(float(np.abs(a - b).max()) for a, b in zip(weights, expected)) > 1e-4
