"""This package's model for a timm checkpoint: the constructor that a timm
model name converts into (`weights.presets.TIMM_ARCHS`), built and loaded
through `weights.convert` (timm: github.com/huggingface/pytorch-image-models).
"""

import os

from keras_senet import inputs
from keras_senet.inputs import InputTransform
from keras_senet.models import imagenet_utils, se_mobilenet, se_resnet
from keras_senet.weights.convert import load_timm_state_dict, read_checkpoint
from keras_senet.weights.presets import DEFAULT_PRESETS, PRESETS, TIMM_ARCHS

_HEADS = ("last_linear.weight", "fc.weight", "classifier.weight", "head.fc.weight")


def timm_constructor(timm_model):
    """The constructor and options that load `timm_model`'s checkpoints.

    Args:
        timm_model: a timm model name, with or without a pretrained tag
            (`seresnet50`, `mobilenetv3_large_100.miil_in21k`).

    Raises:
        ValueError: for a timm model this package has no converter for.
    """
    arch = timm_model.partition(".")[0]
    if arch not in TIMM_ARCHS:
        raise ValueError(
            f"`timm_model` must be one of {sorted(TIMM_ARCHS)}, optionally with a pretrained tag "
            f"(e.g. mobilenetv3_large_100.miil_in21k). Received: timm_model={timm_model!r}"
        )
    name, options = TIMM_ARCHS[arch]
    family = se_mobilenet if name.startswith("SEMobileNet") else se_resnet
    return getattr(family, name), dict(options)


def timm_transform(timm_model):
    """The evaluation transform of `timm_model`'s checkpoints, and its source.

    Checkpoints of one timm model differ in their input: e.g.
    `mobilenetv3_large_100.miil_in21k*` take [0, 1] images (mean 0, std 1)
    and the `ra4` ones are evaluated at another size and crop. In order:
    the preset named `timm_model` (`weights.presets.PRESETS`); else, when
    timm is installed, its pretrained_cfg for the name (a tagless name means
    timm's default tag: its preset if there is one), at timm's test size and
    crop where it has them, as the presets' reference accuracies were
    measured; else the default preset of the timm model (that of
    `weights="imagenet"` when it is this timm model's, else its first).

    Returns:
        `(transform, source)`: an `InputTransform` (None where nothing is
        known: the constructor's own), and a sentence saying where it is from.

    Raises:
        ValueError: for a tag that timm does not know for the model.

    Example:
        >>> timm_transform("mobilenetv3_large_100.miil_in21k")[0].std
        (1.0, 1.0, 1.0)
    """
    timm_constructor(timm_model)  # a model this package converts
    if timm_model in PRESETS:
        return PRESETS[timm_model]["transform"], f"preset {timm_model}"
    arch, _, tag = timm_model.partition(".")
    try:
        from timm.models import get_pretrained_cfg
    except ImportError:
        cfg, why = None, "timm is not installed to read its pretrained_cfg"
    else:
        try:
            cfg, why = get_pretrained_cfg(timm_model), "timm has no pretrained_cfg for it"
        except RuntimeError as e:  # a tag timm does not know
            tags = sorted(n.partition(".")[2] for n, p in PRESETS.items() if p["timm_model"] == arch)
            raise ValueError(
                f"`timm_model` {timm_model!r}: {e} This package's presets of {arch} have the tags {tags}; "
                f"pass one of timm's tags, or {arch} alone. Received: timm_model={timm_model!r}"
            ) from None
    if cfg is not None:
        named = f"{arch}.{cfg.tag}"
        if named in PRESETS:
            return PRESETS[named]["transform"], f"preset {named} (timm's default tag for {arch})"
        transform = InputTransform(
            "torch", cfg.mean, cfg.std, (cfg.test_input_size or cfg.input_size)[-1],
            cfg.test_crop_pct or cfg.crop_pct, cfg.interpolation or "bilinear",
        )
        return transform, f"timm's pretrained_cfg of {named}"
    named = "a tagless name" if not tag else f"tag {tag!r}, which no preset has,"
    ours = [n for n, p in PRESETS.items() if p["timm_model"] == arch]
    if not ours:
        return None, f"the constructor's default ({named} and {why})"
    preset = next((n for n in ours if n in DEFAULT_PRESETS.values()), ours[0])
    return PRESETS[preset]["transform"], (
        f"default preset {preset} ({named} and {why}; name the checkpoint's tag, e.g. {ours[-1]}, to choose)"
    )


def convert_timm_checkpoint(timm_model, checkpoint, output=None, **model_kwargs):
    """Build this package's model for `timm_model` and load `checkpoint`.

    Args:
        timm_model: a timm model name (see `weights.presets.TIMM_ARCHS`),
            with the pretrained tag of the checkpoint where it has one (e.g.
            `mobilenetv3_large_100.miil_in21k`): the tag picks the model's
            input transform (see `timm_transform`).
        checkpoint: path to its state dict (.safetensors, or .pth/.bin).
        output: optional path; the model is saved there (.keras, with its
            input transform, or .weights.h5). Written to a temporary name
            first, then renamed.
        **model_kwargs: passed to the constructor (e.g. input_shape).

    Returns:
        The Keras model.

    Example:
        >>> model = convert_timm_checkpoint("seresnet50.a1_in1k", "model.safetensors", "seresnet50.keras")
    """
    constructor, options = timm_constructor(timm_model)
    transform = timm_transform(timm_model)[0]
    tensors = read_checkpoint(checkpoint)
    head = next((tensors[k] for k in _HEADS if k in tensors), None)
    model_kwargs.setdefault("include_top", head is not None)
    classes = int(head.shape[0]) if head is not None else 1000
    model = constructor(weights=None, classes=classes, **{**options, **model_kwargs})
    load_timm_state_dict(model, tensors, source=os.fspath(checkpoint))
    if transform is not None:  # in the model's mode (SE-MobileNetV3 built with its own preprocessing: "raw")
        transform = transform.replace(mode=model.input_transform.mode)
    inputs.attach(model, imagenet_utils.model_transform(model, transform or model.input_transform))
    if output is not None:
        inputs.save_model(model, output)
    return model
