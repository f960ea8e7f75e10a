"""This package's model for a timm checkpoint: the constructor that a timm
model name converts into (`weights.presets.TIMM_ARCHS`), built and loaded
through `weights.convert` (timm: github.com/huggingface/pytorch-image-models).
"""

import os

from keras_senet import inputs
from keras_senet.models import imagenet_utils, se_mobilenet, se_resnet
from keras_senet.weights.convert import load_timm_state_dict, read_checkpoint
from keras_senet.weights.presets import PRESETS, TIMM_ARCHS

_HEADS = ("last_linear.weight", "fc.weight", "classifier.weight")


def timm_constructor(timm_model):
    """The constructor and options that load `timm_model`'s checkpoints.

    Raises:
        ValueError: for a timm model this package has no converter for.
    """
    if timm_model not in TIMM_ARCHS:
        raise ValueError(
            f"`timm_model` must be one of {sorted(TIMM_ARCHS)}. Received: timm_model={timm_model!r}"
        )
    name, options = TIMM_ARCHS[timm_model]
    family = se_mobilenet if name.startswith("SEMobileNet") else se_resnet
    return getattr(family, name), dict(options)


def convert_timm_checkpoint(timm_model, checkpoint, output=None, **model_kwargs):
    """Build this package's model for `timm_model` and load `checkpoint`.

    Args:
        timm_model: a timm model name (see `weights.presets.TIMM_ARCHS`).
        checkpoint: path to its state dict (.safetensors, or .pth/.bin).
        output: optional path; the model is saved there (.keras, with the
            input transform of timm's preset for `timm_model`, or
            .weights.h5). Written to a temporary name first, then renamed.
        **model_kwargs: passed to the constructor (e.g. input_shape).

    Returns:
        The Keras model.

    Example:
        >>> model = convert_timm_checkpoint("seresnet50", "model.safetensors", "seresnet50.keras")
    """
    constructor, options = timm_constructor(timm_model)
    tensors = read_checkpoint(checkpoint)
    head = next((tensors[k] for k in _HEADS if k in tensors), None)
    model_kwargs.setdefault("include_top", head is not None)
    classes = int(head.shape[0]) if head is not None else 1000
    model = constructor(weights=None, classes=classes, **{**options, **model_kwargs})
    load_timm_state_dict(model, tensors, source=os.fspath(checkpoint))
    # the evaluation transform timm publishes for this model's (first) preset
    preset = next((name for name, p in PRESETS.items() if p["timm_model"] == timm_model), None)
    inputs.attach(model, imagenet_utils.model_transform(model, model.input_transform, preset))
    if output is not None:
        inputs.save_model(model, output)
    return model
