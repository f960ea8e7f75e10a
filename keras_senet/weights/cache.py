"""Preset weights: download, check, convert once, cache, load; a cache that heals.

A preset's reference checkpoint is downloaded with `keras.utils.get_file`
(progress bar, Keras cache directory) under a temporary name, checked (the
SHA-256 prefix that torch-hub style file names carry, then every tensor's
name, shape and dtype against the model it converts into), converted, and
cached as a Keras-side safetensors file keyed by layer name
(`<layer>/<index>`), so one cache file serves models with or without the top
and at any input size. The download is removed once converted and the
converted file is written atomically, with a SHA-256 of its tensors.

On load, a cached file that is unreadable (truncated, corrupt), not written
by this package, or whose tensors no longer fit the model the preset
converts into (an older layout) is removed and made again, once, from the
source. When no source can be reached, the error says how to go on offline.

The model a checkpoint converts into is built by the caller's `reference`:
the named constructor of the preset's architecture (e.g. `SEResNet50`),
called as `reference(weights=None, input_shape=(None, None, 3), **options)`.
This module never imports the model builders.
"""

import hashlib
import os
import re

import keras
import numpy as np

from keras_senet.weights.convert import load_timm_state_dict, read_checkpoint
from keras_senet.weights.presets import PRESETS, TIMM_ARCHS

CACHE_SUBDIR = "keras_senet"
FORMAT = "keras_senet"  # the `format` metadata of a converted file


class StaleCacheError(ValueError):
    """A cached converted file that cannot be trusted (and may be remade)."""


def cache_dir():
    """The folder of converted presets: `$KERAS_HOME/keras_senet` (default
    `~/.keras/keras_senet`)."""
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(base, CACHE_SUBDIR)


def converted_path(name):
    """Where the converted weights of preset `name` are cached."""
    return os.path.join(cache_dir(), f"{name}.keras.safetensors")


def load_preset(model, name, reference=None):
    """Load preset `name` into `model`, converting and caching it if needed.

    A cached file that fails its checks is removed and converted again from
    the source, once.

    Args:
        model: a model of the preset's architecture (with or without top).
        name: a key of `PRESETS`.
        reference: the preset's constructor (see the module docstring);
            needed to convert a download and to tell a stale cache file from
            a model built with other options.

    Returns:
        `model`.

    Raises:
        ValueError: naming the preset and the file: no source reachable (with
            what to do offline), a download that fails its checks, or a
            model whose architecture options differ from the preset's.
    """
    path, removed = converted_path(name), None
    if os.path.exists(path):
        try:
            arrays = read_converted(path, name)
            problems = fit_problems(arrays, model)
            if not problems:
                return assign(model, arrays)
            if reference is not None:
                stale = fit_problems(arrays, reference_model(name, reference), exact=True)
                if stale:
                    raise StaleCacheError(f"its tensors do not fit {PRESETS[name]['constructor']} "
                                          f"(an older layout: {_listed(stale)})")
            raise ValueError(_model_mismatch(name, model, problems, path))
        except StaleCacheError as e:
            removed = _remove_stale(path, e)
    path = fetch_preset(name, reference, removed=removed)
    try:
        arrays = read_converted(path, name)
    except StaleCacheError as e:  # written a moment ago: the disk or another process
        raise ValueError(f"The converted file {path} cannot be read back: {e}. Delete it and try again.") from None
    problems = fit_problems(arrays, model)
    if problems:
        raise ValueError(_model_mismatch(name, model, problems, path))
    return assign(model, arrays)


def reference_model(name, reference):
    """The full model (classifier, any input size) preset `name` converts into."""
    _check_reference(name, reference)
    options = TIMM_ARCHS[PRESETS[name]["timm_model"]][1]
    return reference(weights=None, input_shape=(None, None, 3), classes=PRESETS[name]["classes"], **options)


def _check_reference(name, reference):
    if reference is None:
        raise ValueError(
            f"Converting preset {name!r} needs its constructor: build the model with "
            f"keras_senet.{PRESETS[name]['constructor']}(weights={name!r})."
        )


def fetch_preset(name, reference, removed=None):
    """Download, check and convert preset `name`; the converted file's path.

    Tries each source URL in turn. Every download is deleted once converted
    or once it fails a check; nothing is left in the cache on failure.

    Args:
        removed: why a cached file was just removed, for the error message.

    Raises:
        ValueError: listing every URL tried and why it failed, and what to
            do without network access.
    """
    _check_reference(name, reference)  # before downloading anything
    target = converted_path(name)
    folder = cache_dir()
    created = not os.path.isdir(folder)
    os.makedirs(folder, exist_ok=True)
    errors = []
    for url in PRESETS[name]["urls"]:
        try:
            downloaded = _download(url, name)
        except Exception as e:  # network errors come in many types; try the next source
            errors.append(f"{url}: {e}")
            continue
        try:
            _check_hash(downloaded, url)
            convert_download(name, downloaded, target, reference, source=url)
            return target
        except ValueError as e:
            errors.append(f"{url}: {e}\n    The download failed this check and was deleted.")
        finally:
            if os.path.exists(downloaded):
                os.remove(downloaded)
    if created and not os.listdir(folder):
        os.rmdir(folder)
    raise ValueError(_fetch_failed(name, errors, removed))


def convert_download(name, downloaded, target, reference, source):
    """Check a downloaded checkpoint against the model it converts into
    (tensor names, shapes, dtypes), convert it and cache it at `target`."""
    tensors = read_checkpoint(downloaded)
    model = reference_model(name, reference)
    load_timm_state_dict(model, tensors, source=source)
    save_converted(model, target, preset=name)


def _download(url, name):
    """Download under a process-unique name; keras.utils.get_file shows a
    progress bar and removes the file if the transfer fails."""
    basename = url.rstrip("/").split("/")[-1]
    fname = f"{name}.{os.getpid()}.partial.{basename}"
    return keras.utils.get_file(
        fname=fname, origin=url, cache_subdir=CACHE_SUBDIR, cache_dir=os.path.dirname(cache_dir())
    )


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
            f"{digest.hexdigest()[:8]}..., expected {expected}..."
        )


def _digest(arrays):
    """SHA-256 of the tensors' names, dtypes, shapes and bytes, in key order."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{a.dtype.str}:{a.shape};".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def save_converted(model, path, preset=None):
    """Write `model`'s weights as `<layer>/<index>` -> array, atomically,
    with their SHA-256 in the file's metadata."""
    from safetensors.numpy import save_file

    arrays = {}
    for layer in model.layers:
        for i, w in enumerate(layer.get_weights()):
            arrays[f"{layer.name}/{i}"] = np.ascontiguousarray(w)
    metadata = {"format": FORMAT, "model": model.name, "sha256": _digest(arrays)}
    if preset:
        metadata["preset"] = preset
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        save_file(arrays, tmp, metadata=metadata)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_converted(path, name=None):
    """The arrays of a file written by `save_converted`, checked.

    Raises:
        StaleCacheError: the file is unreadable (truncated, corrupt), was
            not written by this package or for preset `name`, or its tensors
            do not match the SHA-256 recorded when it was written.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="numpy") as f:
            metadata = f.metadata() or {}
            arrays = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise StaleCacheError(f"it is not a readable safetensors file ({e})") from None
    if metadata.get("format") != FORMAT:
        raise StaleCacheError("it was not written by keras-senet (no 'format: keras_senet' metadata)")
    if name and metadata.get("preset", name) != name:
        raise StaleCacheError(f"it holds preset {metadata['preset']!r}")
    # files from before the digest was recorded are checked by layout only
    if "sha256" in metadata and _digest(arrays) != metadata["sha256"]:
        raise StaleCacheError("its tensors do not match the SHA-256 recorded when it was written (corrupt)")
    return arrays


def fit_problems(arrays, model, exact=False):
    """How `arrays` (`<layer>/<index>` -> array) fail to fit `model`: missing
    or mis-shaped weights (and, if `exact`, tensors the model has no use for)."""
    problems, wanted = [], set()
    for layer in model.layers:
        for i, w in enumerate(layer.weights):
            key = f"{layer.name}/{i}"
            wanted.add(key)
            a = arrays.get(key)
            if a is None:
                problems.append(f"{key} missing")
            elif tuple(a.shape) != tuple(w.shape):
                problems.append(f"{key}: {tuple(a.shape)} in the file, {tuple(w.shape)} in the model")
    if exact:
        problems += [f"{key} unexpected" for key in sorted(set(arrays) - wanted)]
    return problems


def assign(model, arrays):
    """Set every layer's weights from `arrays` (checked by `fit_problems`)."""
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([arrays[f"{layer.name}/{i}"] for i in range(len(layer.weights))])
    return model


def _listed(problems, shown=3):
    more = f", ... ({len(problems)} in all)" if len(problems) > shown else ""
    return "; ".join(problems[:shown]) + more


def _remove_stale(path, error):
    """Remove an untrusted cache file; the reason, for later messages."""
    reason = f"The cached file {path} was removed: {error}."
    try:
        os.remove(path)
    except FileNotFoundError:  # another process removed it first
        pass
    except OSError as e:
        raise ValueError(
            f"The cached file {path} cannot be used ({error}) and could not be removed ({e}): "
            "delete it, then try again."
        ) from None
    return reason


def _model_mismatch(name, model, problems, path):
    preset = PRESETS[name]
    variant = f" (variant={preset['variant']!r})" if preset["variant"] else ""
    return (
        f"Preset {name!r} does not fit model {model.name!r}: {len(problems)} weights differ "
        f"({_listed(problems)}). Its weights ({path}) are those of {preset['constructor']}{variant} "
        "with the default architecture options: build the model with those (SE options, widths and "
        "the like at their defaults) or use `weights=None`."
    )


def _fetch_failed(name, errors, removed=None):
    preset = PRESETS[name]
    url = preset["urls"][0]
    filename = url.rstrip("/").split("/")[-1]
    variant = f", variant={preset['variant']!r}" if preset["variant"] else ""
    lines = [f"Could not load the weights of preset {name!r}; nothing was cached."]
    if removed:
        lines.append(removed)
    lines.append("Tried:\n  " + "\n  ".join(errors))
    lines.append(
        "To go on without network access here: download one of these files on a machine that has it "
        f"(e.g. {url}) and pass its path: keras_senet.{preset['constructor']}(weights=\"PATH/{filename}\""
        f"{variant}), on the command line --weights PATH/{filename}; or copy the converted file {converted_path(name)} from a machine where this "
        "preset loaded to that place here (the Keras cache: $KERAS_HOME, default ~/.keras)."
    )
    return "\n".join(lines)
