"""Fixtures of the weights tests: a local weight host and an empty Keras
cache (KERAS_HOME in a temporary folder)."""

import pytest
from hosting import Server


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "hosted"
    root.mkdir()
    s = Server(str(root))
    yield s
    s.close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home / "keras_senet"
