"""Pretrained weights: resolve a `weights=` value, fetch, convert, cache, load.

`weights` is None, "imagenet" (the constructor's default preset), a preset
name from `presets.PRESETS`, or a path: a Keras weights file (`.weights.h5`,
`.keras`) or a reference checkpoint (`.safetensors`, `.pth`, `.pt`, `.bin`).

A preset is downloaded once with `keras.utils.get_file` (progress bar, Keras
cache directory), checked, converted, and cached as a Keras-side safetensors
file keyed by layer name (`<layer>/<index>`), so the same cache serves models
with or without the top and at any input size. The reference file is
downloaded under a temporary name and removed after conversion, and the
converted file is written atomically: an interrupted or corrupt download
never leaves a file that a later call would trust.
"""

import hashlib
import os
import re

import keras
import numpy as np

from keras_senet.weights.presets import DEFAULT_PRESETS, PRESETS

CHECKPOINT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
CACHE_SUBDIR = "keras_senet"


def presets_for(arch):
    """Names of the presets compatible with architecture `arch`."""
    return tuple(name for name, p in PRESETS.items() if p["arch"] == arch)


def resolve(weights, arch):
    """The preset that `weights` names for `arch`, or None for None/a path.

    Called before the model is built, so a bad value fails fast.
    """
    if weights is None or os.path.exists(str(weights)):
        return None
    name = DEFAULT_PRESETS.get(arch) if weights == "imagenet" else weights
    if name is None:
        raise ValueError(
            f"No public ImageNet weights exist for `{arch}`: train it (model.fit; "
            "the SE paper's recipe is SGD, momentum 0.9, lr 0.6 for batch 1024 "
            "divided by 10 every 30 epochs) or pass a weights file. Use "
            f"`weights=None` for random initialization. Received: weights={weights!r}"
        )
    if name not in presets_for(arch):
        raise ValueError(
            f"Preset {name!r} does not fit `{arch}`; compatible presets: "
            f"{list(presets_for(arch)) or 'none'}. Received: weights={weights!r}"
        )
    return dict(PRESETS[name], name=name)


def load_weights(model, weights, *, arch, variant=None):
    """Load `weights` into `model` (built for `arch` in `variant`)."""
    if weights is None:
        return model
    path = os.fspath(weights) if os.path.exists(str(weights)) else None
    if path is not None and path.endswith(CHECKPOINT_SUFFIXES):
        from keras_senet.weights.convert import check_variant, load_timm_state_dict, read_checkpoint

        tensors = read_checkpoint(path)
        check_variant(tensors, variant, source=path)
        load_timm_state_dict(model, tensors, source=path)
    elif path is not None:
        model.load_weights(path)
    else:
        preset = resolve(weights, arch)
        load_converted(model, fetch_preset(preset["name"]))
    return model


def cache_dir():
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(base, CACHE_SUBDIR)


def converted_path(name):
    return os.path.join(cache_dir(), f"{name}.keras.safetensors")


def fetch_preset(name):
    """Path of the converted weights of preset `name`, fetching them if needed.

    Tries each source URL in turn; raises ValueError listing every failure.
    """
    target = converted_path(name)
    if os.path.exists(target):
        return target
    preset = PRESETS[name]
    os.makedirs(cache_dir(), exist_ok=True)
    errors = []
    for url in preset["urls"]:
        downloaded = None
        try:
            downloaded = _download(url, name)
            _check_hash(downloaded, url)
            _convert_preset(name, preset, downloaded, target)
            return target
        except Exception as e:  # network errors come in many types; try the next source
            errors.append(f"{url}: {e}")
        finally:
            if downloaded and os.path.exists(downloaded):
                os.remove(downloaded)
    raise ValueError(
        f"Could not load the weights of preset {name!r}; nothing was cached. Tried:\n  "
        + "\n  ".join(errors)
    )


def _download(url, name):
    """Download under a process-unique name; keras.utils.get_file shows a
    progress bar and removes the file if the transfer fails."""
    basename = url.rstrip("/").split("/")[-1]
    fname = f"{name}.{os.getpid()}.partial.{basename}"
    return keras.utils.get_file(fname=fname, origin=url, cache_subdir=CACHE_SUBDIR, cache_dir=os.path.dirname(cache_dir()))


def _check_hash(path, url):
    """Check the SHA-256 prefix that torch-hub style file names carry
    (`name-<hex>.pth`)."""
    m = re.search(r"-([0-9a-f]{8,64})\.(pth|pt|bin)$", url)
    if not m:
        return
    expected = m[1][:8]  # torch hub names carry 8 hex digits; a few add a digit
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if not digest.hexdigest().startswith(expected):
        raise ValueError(
            f"{path} (from {url}) failed its hash check: SHA-256 "
            f"{digest.hexdigest()[:8]}..., expected {expected}...; it was deleted."
        )


def _convert_preset(name, preset, downloaded, target):
    import keras_senet
    from keras_senet.weights.convert import load_timm_state_dict, read_checkpoint

    tensors = read_checkpoint(downloaded)
    from keras_senet.weights.presets import TIMM_ARCHS

    options = TIMM_ARCHS[preset["timm_model"]][1]
    model = keras_senet.MODELS[preset["constructor"]](weights=None, input_shape=(None, None, 3), **options)
    load_timm_state_dict(model, tensors, source=f"{downloaded} (preset {name})")
    save_converted(model, target)


def save_converted(model, path):
    """Write `model`'s weights as `<layer>/<index>` -> array, atomically."""
    from safetensors.numpy import save_file

    arrays = {}
    for layer in model.layers:
        for i, w in enumerate(layer.get_weights()):
            arrays[f"{layer.name}/{i}"] = np.ascontiguousarray(w)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        save_file(arrays, tmp, metadata={"format": "keras_senet", "model": model.name})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_converted(model, path):
    """Load weights saved by `save_converted` into `model` by layer name.

    The classifier may be absent from `model` (include_top=False); every
    other layer must be in the file with matching shapes.
    """
    from keras_senet.weights.convert import read_checkpoint

    arrays = read_checkpoint(path)
    updates, problems = [], []
    for layer in model.layers:
        current = layer.get_weights()
        new = [arrays.get(f"{layer.name}/{i}") for i in range(len(current))]
        for i, (a, c) in enumerate(zip(new, current)):
            if a is None:
                problems.append(f"{layer.name}/{i} missing")
            elif a.shape != c.shape:
                problems.append(f"{layer.name}/{i}: {a.shape} in the file, {c.shape} expected")
        updates.append((layer, new))
    if problems:
        raise ValueError(
            f"{path} does not match model {model.name!r}: " + "; ".join(problems[:10])
            + (f" ... ({len(problems)} in all)" if len(problems) > 10 else "")
            + ". Delete the file to convert it again."
        )
    for layer, new in updates:
        if new:
            layer.set_weights(new)
    return model


def preset_transform(name):
    """The evaluation transform of preset `name` (see
    `imagenet_utils.eval_transform`): one RGB image -> normalized crop."""
    from keras_senet.models.imagenet_utils import eval_transform

    if name not in PRESETS:
        raise ValueError(f"Unknown preset. Received: name={name!r}; choose from {sorted(PRESETS)}")
    p = PRESETS[name]
    return eval_transform(p["eval_size"], p["crop_pct"], p["interpolation"], p["mean"], p["std"])
