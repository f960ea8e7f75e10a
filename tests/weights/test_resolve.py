"""`weights=` resolved once (resolve_weights), the errors of files that do not
fit, offline presets, and a preset cache that heals: damaged converted files
are removed and converted again from a source served on 127.0.0.1."""

import ast
import dataclasses
import pathlib
import re
import types

import numpy as np
import pytest
import safetensors.numpy
import torch
from hosting import Server, cached_files, host_pth
from safetensors.numpy import save_file
from timm_reference import random_timm_model, timm_logits

import keras_senet
from keras_senet.weights import Weights, converted_path, resolve_weights
from keras_senet.weights.presets import PRESETS

PRESET = "legacy_seresnet18.in1k"  # SEResNet18's "imagenet"
X = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype("float32")


def small(weights, **kwargs):
    """A quick model whose weights files are quick to write."""
    return keras_senet.SEResNetCIFAR(8, weights=weights, input_shape=(16, 16, 3), **kwargs)


# -- resolve_weights -------------------------------------------------------

def test_resolves_none_presets_and_files_by_suffix(tmp_path):
    assert resolve_weights(None, "se_resnet18") == Weights("none")
    assert resolve_weights("imagenet", "se_resnet18") == Weights("preset", preset="legacy_seresnet18.in1k")
    assert resolve_weights("seresnet50.a3_in1k", "se_resnet50") == Weights("preset", preset="seresnet50.a3_in1k")
    for suffix, fmt in [(".keras", "keras"), (".weights.h5", "keras_weights"), (".h5", "keras_weights"),
                        (".safetensors", "checkpoint"), (".pth", "checkpoint"), (".bin", "checkpoint")]:
        path = tmp_path / f"w{suffix}"
        path.write_bytes(b"")
        assert resolve_weights(path, "se_resnet18") == Weights("file", path=str(path), format=fmt)
    resolved = resolve_weights("imagenet", "se_resnet18")
    assert resolve_weights(resolved, "se_resnet18") is resolved
    with pytest.raises(dataclasses.FrozenInstanceError):
        resolved.kind = "none"


@pytest.mark.parametrize("value", ["missing/w.weights.h5", "w.weights.h5", "w.safetensors", "./model"])
def test_path_that_does_not_exist(value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=rf"`weights` file not found: {re.escape(value)} \(relative to "
                                         rf"{re.escape(str(tmp_path))}\).*Received: weights='{re.escape(value)}'"):
        small(value)


def test_unknown_suffix_and_folder(tmp_path):
    path = tmp_path / "weights.npz"
    path.write_bytes(b"PK")
    with pytest.raises(ValueError, match=r"`weights` file .*weights.npz has an unknown suffix '.npz': expected"):
        small(str(path))
    with pytest.raises(ValueError, match=r"is a folder, not a weights file"):
        small(str(tmp_path))


def test_weights_does_not_import_models():
    """Imports run cli -> training/export -> models -> weights -> layers."""
    folder = pathlib.Path(keras_senet.__file__).parent / "weights"
    imported = set()
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module + "".join(f" {a.name}" for a in node.names if node.module == "keras_senet"))
            elif isinstance(node, ast.Import):
                imported.update(a.name for a in node.names)
    ours = sorted(m for m in imported if m.startswith("keras_senet"))
    assert ours and all(m.startswith(("keras_senet.weights", "keras_senet.layers", "keras_senet.inputs"))
                        for m in ours), ours


# -- Keras weights files that do not fit ------------------------------------

@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_unreadable_weights_h5_is_named(damage, tmp_path):
    path = tmp_path / "model.weights.h5"
    small(None).save_weights(path)
    data = path.read_bytes()
    path.write_bytes(b"not hdf5" * 100 if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"`weights` file {re.escape(str(path))} is not a readable HDF5 weights "
                                         r"file \(Unable to .*\): it is truncated, corrupt"):
        small(str(path))


@pytest.mark.parametrize("suffix", [".weights.h5", ".keras"])
def test_file_of_another_architecture_is_one_short_message(suffix, tmp_path):
    path = tmp_path / f"wide{suffix}"
    wide = small(None, width=32)
    wide.save_weights(path) if suffix == ".weights.h5" else wide.save(path)
    with pytest.raises(ValueError) as error:
        small(str(path))
    message = str(error.value)
    # every layer with weights has another width: stem conv + BN, 2 x 2 per block, SE
    count = int(re.search(r": (\d+) layers could not be loaded from it \(", message)[1])
    assert count >= 5
    assert message.startswith(f"`weights` file {path} does not fit model 'se_resnet8_cifar': ")
    assert "conv1_conv/kernel is (3, 3, 3, 32) in the file, (3, 3, 3, 16) in the model" in message
    assert "\n" not in message and len(message) < 600  # no weight values
    assert len(re.search(r"\(([^)]*)\);", message)[1].split(", ")) <= 4  # three names and "..."


# -- presets offline, a cache that heals ------------------------------------

@pytest.fixture(scope="module")
def hosted(tmp_path_factory):
    """A legacy SE-ResNet-18 checkpoint on a local host, its timm model, and
    the bytes of the converted cache file made from it."""
    server = Server(str(tmp_path_factory.mktemp("hosted")))
    reference = random_timm_model("legacy_seresnet18")
    url = f"{server.url}/{host_pth(server, reference, 'seresnet18')}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERAS_HOME", str(tmp_path_factory.mktemp("keras_home")))
        patch.setitem(PRESETS[PRESET], "urls", (url,))
        keras_senet.SEResNet18(weights=PRESET, input_shape=(64, 64, 3))
        converted = pathlib.Path(converted_path(PRESET)).read_bytes()
    yield types.SimpleNamespace(server=server, reference=reference, url=url, converted=converted)
    server.close()


@pytest.fixture
def online(hosted, cache, monkeypatch):
    monkeypatch.setitem(PRESETS[PRESET], "urls", (hosted.url,))
    hosted.server.requests.clear()
    cache.mkdir(parents=True)
    return hosted


def _old_layout(data):
    """The converted file's tensors under other layer names, as a renaming
    of layers would leave an older cache file."""
    return {k.replace("_conv/", "_convolution/"): v for k, v in safetensors.numpy.load(data).items()}


def assert_same_tensors(data, expected):
    a, b = safetensors.numpy.load(data), safetensors.numpy.load(expected)
    assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)


def damaged(kind, data, path):
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "flipped":  # one bit of one weight: only the recorded SHA-256 tells
        flipped = bytearray(data)
        flipped[-1000] ^= 0x01
        path.write_bytes(bytes(flipped))
    elif kind == "not_ours":  # the right tensors without this package's metadata
        save_file(safetensors.numpy.load(data), str(path))
    elif kind == "old_layout":
        save_file(_old_layout(data), str(path), metadata={"format": "keras_senet", "model": "se_resnet18"})


@pytest.mark.parametrize("kind", ["truncated", "garbage", "flipped", "not_ours", "old_layout"])
def test_damaged_cache_file_is_converted_again_from_the_source(kind, online, cache):
    path = cache / f"{PRESET}.keras.safetensors"
    damaged(kind, online.converted, path)
    model = keras_senet.SEResNet18(weights="imagenet", input_shape=(64, 64, 3), classifier_activation=None)
    assert online.server.requests == [online.url.removeprefix(online.server.url)]  # fetched once
    assert_same_tensors(path.read_bytes(), online.converted)
    assert np.abs(model.predict(X, verbose=0) - timm_logits(online.reference, X)).max() <= 1e-4
    assert cached_files(cache) == [path.name]


def test_damaged_cache_file_offline_says_it_was_removed_and_how_to_go_on(online, cache, monkeypatch):
    url = f"{online.server.url}/timm/{PRESET}/resolve/main/model.safetensors"
    monkeypatch.setitem(PRESETS[PRESET], "urls", (url,))
    online.server.broken[url.removeprefix(online.server.url)] = "503"
    path = cache / f"{PRESET}.keras.safetensors"
    damaged("truncated", online.converted, path)
    with pytest.raises(ValueError) as error:
        keras_senet.SEResNet18(weights="imagenet")
    message = str(error.value)
    assert f"The cached file {path} was removed: it is not a readable safetensors file" in message
    assert f"{url}: " in message and "503" in message
    assert cached_files(cache) == []


def test_offline_preset_says_how_to_go_on(server, cache, monkeypatch):
    urls = (f"{server.url}/timm/{PRESET}/resolve/main/model.safetensors", f"{server.url}/seresnet18-4bb0ce65.pth")
    monkeypatch.setitem(PRESETS[PRESET], "urls", urls)
    server.close()  # no host answers
    with pytest.raises(ValueError) as error:
        keras_senet.SEResNet18(weights="imagenet")
    message = str(error.value)
    assert message.startswith(f"Could not load the weights of preset '{PRESET}'; nothing was cached.")
    assert all(f"{u}: " in message for u in urls)
    assert ("download one of these files on a machine that has it (e.g. "
            f"{urls[0]}) and pass its path: keras_senet.SEResNet18(weights=\"PATH/model.safetensors\", "
            "variant='caffe')") in message
    assert f"copy the converted file {cache / PRESET}.keras.safetensors from a machine" in message
    assert not cache.exists()  # a failed fetch leaves nothing, not even the folder


def test_other_architecture_options_keep_a_good_cache(online, cache):
    path = cache / f"{PRESET}.keras.safetensors"
    path.write_bytes(online.converted)
    with pytest.raises(ValueError, match=rf"Preset '{PRESET}' does not fit model 'se_resnet18': \d+ weights differ "
                                         r"\(conv2_block1_se/0: \(64, 4\) in the file, \(64, 8\) in the model"):
        keras_senet.SEResNet18(weights="imagenet", se_ratio=8)
    assert path.read_bytes() == online.converted and online.server.requests == []  # untouched


def test_download_with_non_float_tensor_is_deleted(server, cache, monkeypatch):
    state = random_timm_model("legacy_seresnet18").state_dict()
    state["layer0.conv1.weight"] = state["layer0.conv1.weight"].to(torch.int32)
    name = host_pth(server, state, "seresnet18")
    monkeypatch.setitem(PRESETS[PRESET], "urls", (f"{server.url}/{name}",))
    with pytest.raises(ValueError, match=r"non-float tensors: layer0.conv1.weight: int32\n"
                                         r"    The download failed this check and was deleted."):
        keras_senet.SEResNet18(weights="imagenet")
    assert not cache.exists()
