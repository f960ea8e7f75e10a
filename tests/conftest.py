import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))  # tests' own helpers

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _clear_session():
    yield
    keras.backend.clear_session()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "tensorflow_only: needs the TensorFlow backend (export, tf.distribute); "
        "deselected when KERAS_BACKEND is another backend",
    )
    # Keras' TF backend converts tensors with np.array(x); numpy 2 warns on
    # every call. Not ours to fix; it would drown real warnings.
    config.addinivalue_line(
        "filterwarnings", "ignore:__array__ implementation doesn't accept a copy keyword"
    )


def pytest_collection_modifyitems(config, items):
    """On JAX or torch, leave out the TensorFlow-only tests (deselected, not
    skipped: they do not apply to that backend)."""
    if keras.backend.backend() == "tensorflow":
        return
    other = [item for item in items if item.get_closest_marker("tensorflow_only")]
    if other:
        config.hook.pytest_deselected(items=other)
        items[:] = [item for item in items if not item.get_closest_marker("tensorflow_only")]
