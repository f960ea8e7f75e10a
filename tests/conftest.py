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
    # Keras' TF backend converts tensors with np.array(x); numpy 2 warns on
    # every call. Not ours to fix; it would drown real warnings.
    config.addinivalue_line(
        "filterwarnings", "ignore:__array__ implementation doesn't accept a copy keyword"
    )
