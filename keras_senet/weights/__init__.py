"""Pretrained weights: a `weights=` value resolved once, then loaded.

`resolve_weights(weights, arch)` turns what a constructor receives (None,
"imagenet" -- the architecture's default preset --, a preset name from
`presets.PRESETS`, or a path) into a `Weights`: none, a preset, or a local
file of a known format (a Keras `.keras` / `.weights.h5` file, or a
reference checkpoint: `.safetensors`, `.pth`, `.pt`, `.bin`). Builders call
it before building anything, so a bad value fails fast, and hand the result
on; `load_weights` loads it into the built model, with errors that name the
file and what is wrong. Presets are fetched, checked, converted and cached
by `keras_senet.weights.cache` (a cache that heals).

Importing this package imports neither Keras nor TensorFlow (so
`keras-senet presets` prints the table at once): the names of its Keras
modules `cache` and `convert` load on first use (PEP 562).
"""

import dataclasses
import importlib
import os
import re
import warnings
import zipfile

from keras_senet.weights.presets import DEFAULT_PRESETS, PRESETS

# public name -> the module (which imports Keras) that defines it
_KERAS_NAMES = {
    **dict.fromkeys(("cache_dir", "converted_path", "load_preset"), "keras_senet.weights.cache"),
    **dict.fromkeys(("check_variant", "load_timm_state_dict", "read_checkpoint"), "keras_senet.weights.convert"),
}


def __getattr__(name):
    if name in _KERAS_NAMES:
        value = globals()[name] = getattr(importlib.import_module(_KERAS_NAMES[name]), name)
        return value
    if name in ("cache", "convert"):  # attributes once imported, as when this file imported them
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_KERAS_NAMES) | {"cache", "convert"})

CHECKPOINT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
# suffix -> format; Keras reads .h5 / .hdf5 in its legacy HDF5 layout
SUFFIXES = {
    ".keras": "keras", ".weights.h5": "keras_weights", ".h5": "keras_weights", ".hdf5": "keras_weights",
    **dict.fromkeys(CHECKPOINT_SUFFIXES, "checkpoint"),
}


@dataclasses.dataclass(frozen=True)
class Weights:
    """A resolved `weights=` value (see `resolve_weights`).

    Attributes:
        kind: "none" (random initialization), "preset" or "file".
        preset: the preset name (kind "preset"), else None.
        path: the file (kind "file"), else None.
        format: for kind "file": "keras" (.keras), "keras_weights"
            (.weights.h5, .h5) or "checkpoint" (a reference state dict:
            .safetensors, .pth, .pt, .bin); else None.
    """

    kind: str = "none"
    preset: str = None
    path: str = None
    format: str = None


def presets_for(arch):
    """Names of the presets compatible with architecture `arch`."""
    return tuple(name for name, p in PRESETS.items() if p["arch"] == arch)


def file_format(path):
    """The format of a weights file from its suffix (see `SUFFIXES`), or None."""
    return next((fmt for suffix, fmt in SUFFIXES.items() if os.fspath(path).endswith(suffix)), None)


def resolve_weights(weights, arch):
    """Resolve a constructor's `weights=` value, before anything is built.

    Args:
        weights: None, "imagenet" (the default preset of `arch`), a preset
            name, the path of a weights file (str or os.PathLike), or an
            already resolved `Weights` (returned as is).
        arch: the architecture (e.g. "se_resnet50", a key of the family's
            ARCHS): which presets fit.

    Returns:
        A `Weights`.

    Raises:
        ValueError: naming the argument and what is wrong: a file that does
            not exist or has an unknown suffix, a folder, a preset of
            another architecture, "imagenet" where no ImageNet weights
            exist, or a value that is none of the above.

    Example:
        >>> resolve_weights("imagenet", "se_resnet50")
        Weights(kind='preset', preset='seresnet50.ra2_in1k', path=None, format=None)
    """
    if isinstance(weights, Weights):
        return weights
    if weights is None:
        return Weights()
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(_not_weights(weights))
    value = os.fspath(weights)
    if value == "imagenet" or value in PRESETS:
        return Weights("preset", preset=_preset_for(value, arch))
    if os.path.isdir(value):
        raise ValueError(
            f"`weights` {value} is a folder, not a weights file. Pass a Keras file (.keras, .weights.h5) "
            "or a reference checkpoint (.safetensors, .pth, .pt, .bin); a SavedModel folder cannot be "
            f"loaded as weights. Received: weights={weights!r}"
        )
    fmt = file_format(value)
    if os.path.exists(value):
        if fmt is None:
            raise ValueError(
                f"`weights` file {value} has an unknown suffix {os.path.splitext(value)[1]!r}: expected a Keras "
                "file (.keras, .weights.h5) or a reference checkpoint (.safetensors, .pth, .pt, .bin). "
                f"Give it the suffix of its format. Received: weights={weights!r}"
            )
        return Weights("file", path=value, format=fmt)
    if fmt is not None or os.sep in value or "/" in value or (os.altsep and os.altsep in value):
        where = "" if os.path.isabs(value) else f" (relative to {os.getcwd()})"
        raise ValueError(
            f"`weights` file not found: {value}{where}. Check the path, or pass None (random "
            "initialization), 'imagenet' or a preset name (keras_senet.weights.PRESETS). "
            f"Received: weights={weights!r}"
        )
    raise ValueError(_not_weights(weights))


def _not_weights(weights):
    return (
        "The `weights` argument should be either `None` (random "
        "initialization), 'imagenet' (pre-training on ImageNet), a preset "
        "name (keras_senet.weights.PRESETS), or the path to the weights "
        f"file to be loaded. Received: weights={weights}"
    )


def _preset_for(value, arch):
    """The preset that "imagenet" or a preset name means for `arch`."""
    name = DEFAULT_PRESETS.get(arch) if value == "imagenet" else value
    if name is None:
        raise ValueError(
            f"No public ImageNet weights exist for `{arch}`: train it (model.fit; "
            "the SE paper's recipe is SGD, momentum 0.9, lr 0.6 for batch 1024 "
            "divided by 10 every 30 epochs) or pass a weights file. Use "
            f"`weights=None` for random initialization. Received: weights={value!r}"
        )
    if name not in presets_for(arch):
        raise ValueError(
            f"Preset {name!r} does not fit `{arch}`; compatible presets: "
            f"{list(presets_for(arch)) or 'none'}. Received: weights={value!r}"
        )
    return name


def load_weights(model, weights, *, arch=None, variant=None, reference=None):
    """Load `weights` into `model`.

    Args:
        model: the built model.
        weights: a `Weights` from `resolve_weights`, or a value it accepts
            (then resolved for `arch`).
        arch: the model's architecture, for an unresolved value.
        variant: the SE-ResNet variant the model was built in, checked
            against a reference checkpoint's key names.
        reference: the preset's constructor, to convert a preset that is not
            cached yet (see `keras_senet.weights.cache`).

    Returns:
        `model`.

    Raises:
        ValueError: naming the file or preset and what is wrong with it.
    """
    from keras_senet.weights.cache import load_preset
    from keras_senet.weights.convert import check_variant, load_timm_state_dict, read_checkpoint

    weights = resolve_weights(weights, arch)
    if weights.kind == "preset":
        load_preset(model, weights.preset, reference)
    elif weights.format == "checkpoint":
        tensors = read_checkpoint(weights.path)
        check_variant(tensors, variant, source=weights.path)
        load_timm_state_dict(model, tensors, source=weights.path)
    elif weights.kind == "file":
        load_keras_file(model, weights.path)
    return model


def load_keras_file(model, path):
    """`model.load_weights(path)` for a .keras / .weights.h5 / .h5 file, with
    errors that name the file: unreadable, or of another architecture (a
    count and a few of the layers that do not fit; no weight values).
    Keras' warnings are passed on only when the weights load."""
    kind = "a readable .keras archive" if path.endswith(".keras") else "a readable HDF5 weights file"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(path)
        except (OSError, zipfile.BadZipFile, EOFError, KeyError) as e:
            raise ValueError(
                f"`weights` file {path} is not {kind} ({e}): it is truncated, corrupt or of another format. "
                "Save it again (model.save / model.save_weights) or pass another file."
            ) from None
        except ValueError as e:
            raise ValueError(_keras_mismatch(path, model, str(e))) from None
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return model


def _keras_mismatch(path, model, error):
    """A short message for Keras' load_weights error (which holds the
    values of the weights it could not assign)."""
    count = re.search(r"A total of (\d+) objects could not be loaded", error)
    listed = error.rpartition("List of objects that could not be loaded:")[2]
    names = re.findall(r"<\w+ name=([^,>]+)", listed)
    example = re.search(
        r"variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\))\. Target variable: <Variable path=([^,]+)",
        error,
    )
    if example:
        first = f"{example[3]} is {example[2]} in the file, {example[1]} in the model"
    else:  # e.g. "Layer 'predictions' expected 2 variables, but received 0 variables during loading."
        first = re.split(r"(?<=\.) |\n", error.partition(":\n\n")[2] or error)[0][:200].rstrip(".")
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    counted = f"{count[1]} layers could not be loaded from it ({shown}); " if count else ""
    return (
        f"`weights` file {path} does not fit model {model.name!r}: {counted}{first}. It holds the weights "
        "of another architecture or configuration (depth, classes, include_top, SE options, ...): build "
        "the model with the arguments it was saved with"
        + (", or load the whole model with keras.saving.load_model." if path.endswith(".keras") else ".")
    )


def preset_transform(name):
    """The evaluation transform of preset `name`: a function from one RGB
    (H, W, 3) image in [0, 255] to the normalized crop its reference
    accuracy was measured on (`PRESETS[name]["transform"].eval_image`)."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset. Received: name={name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[name]["transform"].eval_image
