"""Pretrained weights: the preset registry and loading.

The registry (`PRESETS`) is plain data: preset name -> architecture and
source. No ImageNet presets are registered yet (the converter from the
reference checkpoints lands with them), so `weights="imagenet"` raises a
clear error instead of pretending to load anything.
"""

import os

# preset name -> dict(arch=..., variant=..., url=..., ...)
PRESETS = {}
# constructor arch -> default preset for weights="imagenet"
DEFAULT_PRESETS = {}


def presets_for(arch):
    """Names of the presets compatible with architecture `arch`."""
    return tuple(name for name, p in PRESETS.items() if p["arch"] == arch)


def resolve(weights, arch):
    """The preset that `weights` names for `arch`, or None for None/a path.

    Called before the model is built, so a bad value fails fast.
    """
    if weights is None or os.path.exists(str(weights)):
        return None
    if weights == "imagenet":
        if arch not in DEFAULT_PRESETS:
            raise ValueError(
                f"No ImageNet weights are registered yet for `{arch}`. "
                "Use `weights=None` (random initialization) or the path to a "
                f"Keras weights file. Received: weights={weights!r}"
            )
        weights = DEFAULT_PRESETS[arch]
    if weights not in presets_for(arch):
        raise ValueError(
            f"Preset {weights!r} does not fit `{arch}`; compatible presets: "
            f"{list(presets_for(arch)) or 'none'}. Received: weights={weights!r}"
        )
    return PRESETS[weights]


def load_weights(model, weights, *, arch):
    """Load `weights` (a path to a Keras weights or `.keras` file) into `model`."""
    resolve(weights, arch)
    if weights is not None:
        model.load_weights(weights)
    return model
