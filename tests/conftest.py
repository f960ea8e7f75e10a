import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow turns oneDNN on by itself only on CPUs with AVX-512 (and the
# like); on AVX2-only CPUs its grouped-convolution gradient and the fused
# grouped conv + bias do not exist. The suite runs one configuration on
# every x86 machine; the oneDNN-off path has its own test
# (test_grouped_conv.py::test_without_onednn_the_split_trains).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
if os.environ.get("KERAS_BACKEND") == "jax":
    # XLA compiles every new shape; the test models are tiny, so compile
    # time dominates and unoptimized code is faster overall (measured: a
    # keras.applications training step 47 s instead of 66 s).
    os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")
sys.path.insert(0, os.path.dirname(__file__))  # tests' own helpers

import keras  # noqa: E402
import pytest  # noqa: E402


_tests_run = [0]


@pytest.fixture(autouse=True)
def _clear_session():
    """Keras' global state reset after every test; Python's full garbage
    collection (0.4 s with TensorFlow loaded, even with nothing to free: a
    seventh of the suite's time when run after every test) after every 20th
    and otherwise left to Python's own schedule."""
    yield
    _tests_run[0] += 1
    keras.backend.clear_session(free_memory=_tests_run[0] % 20 == 0)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "tensorflow_only: needs the TensorFlow backend (export, tf.distribute); "
        "deselected when KERAS_BACKEND is another backend",
    )
    config.addinivalue_line(
        "markers", "not_tensorflow: needs what TensorFlow's CPU kernels lack (NCHW convolutions for "
        "channels_first); deselected when KERAS_BACKEND is tensorflow, and on JAX unless "
        "KERAS_SENET_ALL_MODELS=1 (CI time: torch runs them)",
    )
    config.addinivalue_line(
        "markers", "sibling: a model check repeated on another network of the same builder or "
        "kind; on JAX and torch it runs only with KERAS_SENET_ALL_MODELS=1 (CI time), on TensorFlow always",
    )
    config.addinivalue_line(
        "markers", "structure: checks only what a built Keras graph is (parameter and MAC counts, layer "
        "names, shapes of weights, wiring) or argument errors raised before any layer is built, which no "
        "backend changes; on JAX and torch it runs only with "
        "KERAS_SENET_ALL_MODELS=1 (CI time: the contract tests build and run every builder there)",
    )
    # Keras' TF backend converts tensors with np.array(x); numpy 2 warns on
    # every call. Not ours to fix; it would drown real warnings.
    config.addinivalue_line(
        "filterwarnings", "ignore:__array__ implementation doesn't accept a copy keyword"
    )


def pytest_collection_modifyitems(config, items):
    """On JAX or torch, leave out the TensorFlow-only tests (deselected, not
    skipped: they do not apply to that backend) and, unless
    KERAS_SENET_ALL_MODELS=1, the repeats on sibling networks and the
    structure checks (CI time; TensorFlow runs them), and on JAX the
    not_tensorflow ones (torch runs them). On TensorFlow, leave out the
    tests marked not_tensorflow."""
    if keras.backend.backend() == "tensorflow":
        markers = ["not_tensorflow"]
    else:
        markers = ["tensorflow_only"]
        if os.environ.get("KERAS_SENET_ALL_MODELS") != "1":
            markers += ["sibling", "structure"]
            if keras.backend.backend() == "jax":
                # channels_first: the axis handling is this package's and
                # Keras' code, the same on both; torch (NCHW's own backend)
                # runs it in half the time JAX takes
                markers += ["not_tensorflow"]
    left_out = [item for item in items if any(item.get_closest_marker(m) for m in markers)]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if item not in left_out]
