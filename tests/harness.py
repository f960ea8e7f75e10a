"""Common checks run for every model and layer."""

import json

import keras
import numpy as np


def _plain(config):
    """Config with tuples as lists (Keras reloads build shapes as lists)."""
    return json.loads(json.dumps(config))


# One training step runs fastest eagerly on TensorFlow (tracing the step takes
# 15+ s) and torch; JAX compiles every op of an eager step, one compiled step
# is faster there.
RUN_EAGERLY = keras.backend.backend() != "jax"


def forward(model, x):
    """Outputs as numpy, the fastest way per backend: a direct call on
    TensorFlow and torch (predict traces a graph first), predict on JAX (a
    direct call compiles every op for its shapes; predict compiles once)."""
    if keras.backend.backend() == "jax":
        return model.predict(x, batch_size=len(x), verbose=0)
    return keras.ops.convert_to_numpy(model(x))


def assert_keras_round_trip(model, x, tmp_path):
    """Save as .keras, load, and get identical outputs and configs."""
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(forward(model, x), forward(loaded, x))
    assert _plain(loaded.get_config()) == _plain(model.get_config())
    assert [w.name for w in loaded.weights] == [w.name for w in model.weights]
    return loaded


def assert_predicts(model, x):
    """Predict on arrays and on a tf.data pipeline; same results both ways."""
    import tensorflow as tf

    by_array = model.predict(x, batch_size=len(x), verbose=0)
    by_dataset = model.predict(tf.data.Dataset.from_tensor_slices(x).batch(len(x)), verbose=0)
    assert np.all(np.isfinite(by_array))
    np.testing.assert_allclose(by_array, by_dataset, atol=1e-6)
    return by_array


def built_once(tmp_path_factory, name, build):
    """A folder `name` that build(folder) fills once per test run, whichever
    pytest-xdist worker asks first; the others wait for it and share it (a
    module fixture is otherwise built by every worker that runs one of its
    tests). Returns the folder."""
    import fcntl
    import os
    import shutil

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the workers' common base
    folder = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (folder / ".built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (folder / ".built").touch()
    return folder


def kill_when_backed_up(command, env, output, ready, log_path, timeout=300):
    """Run a `keras-senet train` command and SIGKILL it as soon as
    ready(metadata) holds for its BackupAndRestore metadata
    (output/backup/training_metadata.json); returns that metadata."""
    import signal
    import subprocess
    import time

    metadata = output / "backup" / "training_metadata.json"
    state = None
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    state = json.loads(metadata.read_text())
                except (OSError, ValueError):
                    state = None
                if state and ready(state):
                    break
                time.sleep(0.02)
            assert process.poll() is None, "training ended before it could be killed:\n" + log_path.read_text()[-3000:]
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (output / "model.keras").exists()
    return state
