"""Argument checks and ImageNet helpers shared by every model family.

The checks and their error texts follow keras.applications, so that code
written against `keras.applications.ResNet50` behaves the same here.
`decode_predictions` reads the class lists shipped in this package (the
1000 ImageNet-1k synsets in their standard sorted order, and the ImageNet-12k
and ImageNet-21K-P lists of timm's larger heads, each with its first WordNet
lemma), so it works offline.
"""

import warnings

import keras

from keras_senet.inputs import (  # noqa: F401
    IMAGENET_LABEL_SETS, IMAGENET_MEAN, IMAGENET_STD, InputTransform, attach, fit_to_input, resize_center_crop, top_k,
)


def check_arguments(weights, include_top, classes, pooling, classifier_activation):
    """Validate the keras.applications arguments before anything is built.

    Args:
        weights: the resolved `keras_senet.weights.Weights` (see
            `resolve_weights`, which checks the value itself).
        include_top, classes, pooling, classifier_activation: as in
            keras.applications.

    Raises:
        ValueError: naming the argument and the received value.
    """
    pretrained = weights.kind == "preset"
    if pretrained:
        from keras_senet.weights.presets import PRESETS

        expected = PRESETS[weights.preset]["classes"]  # 1000, or 11821 for ImageNet-12k heads
    if pretrained and include_top and classes != expected:
        raise ValueError(
            f"If using `weights='{weights.preset}'` with `include_top=True`, "
            f"`classes` should be {expected}. Received: classes={classes}"
        )
    if pooling not in (None, "avg", "max"):
        raise ValueError(
            "`pooling` must be None, 'avg' or 'max'. "
            f"Received: pooling={pooling!r}"
        )
    if pretrained and include_top and classifier_activation not in {None, "softmax"}:
        if classifier_activation is not keras.activations.softmax:
            raise ValueError(
                "Only `None` and `softmax` activations are allowed for the "
                "`classifier_activation` argument when using pretrained "
                f"weights, with `include_top=True`; Received: "
                f"classifier_activation={classifier_activation}"
            )


def obtain_input_shape(input_shape, default_size, min_size, data_format, weights):
    """Input shape for a model, checked as keras.applications checks it.

    Unlike keras.applications the top is global-pooled, so every size of at
    least `min_size` works with `include_top=True`; `default_size` is used
    when no shape is given. `weights` is the resolved `Weights` (a preset
    needs 3 channels).
    """
    pretrained = weights.kind == "preset"
    channels_last = data_format == "channels_last"
    if input_shape is None:
        return (default_size, default_size, 3) if channels_last else (3, default_size, default_size)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(
            "`input_shape` must be a tuple of three integers. "
            f"Received: input_shape={input_shape}"
        )
    channels = input_shape[-1] if channels_last else input_shape[0]
    spatial = input_shape[:2] if channels_last else input_shape[1:]
    if pretrained and channels != 3:
        raise ValueError(
            f"The input must have 3 channels; Received `input_shape={input_shape}`"
        )
    if channels is None or channels < 1:
        raise ValueError(
            "The channel dimension of `input_shape` must be a positive integer. "
            f"Received: input_shape={input_shape}"
        )
    if channels not in (1, 3):
        warnings.warn(
            "This model usually expects 1 or 3 input channels. However, it "
            f"was passed an input_shape with {channels} input channels.",
            stacklevel=3,
        )
    if any(d is not None and d < min_size for d in spatial):
        raise ValueError(
            f"Input size must be at least {min_size}x{min_size}; "
            f"Received: input_shape={input_shape}"
        )
    return input_shape


def channel_axis():
    """Axis of the channels under Keras' image data format: -1 or 1."""
    return -1 if keras.config.image_data_format() == "channels_last" else 1


def se_factory(se_layer, se_options=None, **defaults):
    """The SE layer factory the blocks call: `get_se_layer(se_layer, ...)`
    with the family's `defaults` (ratio, divisor) for channel SE and scSE,
    overridden by the user's `se_options`; None for `se_layer=None`."""
    from keras_senet.layers.squeeze_excite import get_se_layer

    if se_layer is None:
        return None
    options = dict(se_options or {})
    if se_layer in ("se", "scse"):
        options = {**defaults, **options}
    return get_se_layer(se_layer, data_format=keras.config.image_data_format(), **options)


def model_input(input_tensor, input_shape):
    """The model's Input (or the user's tensor), as keras.applications does."""
    if input_tensor is None:
        return keras.layers.Input(shape=input_shape)
    if not keras.backend.is_keras_tensor(input_tensor):
        return keras.layers.Input(tensor=input_tensor, shape=input_shape)
    return input_tensor


def model_inputs(input_tensor, img_input):
    """Inputs of the functional model: the sources of a user's tensor."""
    if input_tensor is not None:
        return keras.utils.get_source_inputs(input_tensor)
    return img_input


def apply_pooling(x, pooling):
    """The no-top head: None (feature map), "avg" or "max" global pooling."""
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def finish_model(input_tensor, img_input, outputs, name, weights, arch, transform=None, **load_options):
    """The functional model, with `weights` (a resolved `Weights`) loaded
    and its `InputTransform` attached (`model.input_transform`): that of the
    preset if any (in `transform`'s mode: a model that normalizes inside
    stays "raw"), else `transform` (the family's default), fitted to the
    model's input shape."""
    from keras_senet.weights import load_weights

    model = keras.Model(model_inputs(input_tensor, img_input), outputs, name=name)
    if weights.kind != "none":
        load_weights(model, weights, arch=arch, **load_options)
    return attach(model, model_transform(model, transform or InputTransform(), weights.preset))


def model_transform(model, transform, preset=None):
    """`transform` (a family default), or preset `preset`'s evaluation
    transform in `transform`'s mode, fitted to `model`'s input shape."""
    from keras_senet.weights.presets import PRESETS

    if preset:
        transform = PRESETS[preset]["transform"].replace(mode=transform.mode)
    return fit_to_input(transform, tuple(model.input_shape[1:]), keras.config.image_data_format())


def preprocess_input(x, data_format=None, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """RGB in [0, 255] -> scaled to [0, 1] and normalized per channel.

    The normalization of every reference checkpoint in this package (timm's
    ImageNet defaults; `InputTransform(mode="torch")`). Accepts numpy arrays
    and tensors, any batch shape.

    Args:
        x: images, channels last (or first with `data_format`).
        data_format: None (Keras' global setting), "channels_last" or
            "channels_first".
        mean, std: per-channel statistics in [0, 1] units.

    Returns:
        Float32 array or tensor of the same shape.
    """
    return InputTransform("torch", mean, std, channels=len(mean)).normalize(x, data_format)


def decode_predictions(preds, top=5):
    """Decode ImageNet predictions, as keras.applications does, offline.

    Also decodes the ImageNet-12k (11,821 classes) and ImageNet-21K-P (11,221)
    heads of timm's `*.sw_in12k` / `*.miil_in21k` presets, chosen by width as
    timm does (`keras_senet.inputs.imagenet_labels`).

    Args:
        preds: array of shape (batch, classes) with classes 1000, 11821 or
            11221; probabilities or logits.
        top: how many classes to return per example.

    Returns:
        A list (one per example) of lists of (wnid, name, score) tuples,
        highest score first.

    Raises:
        ValueError: for another shape.

    Example:
        >>> decode_predictions(model.predict(x), top=3)[0][0]
        ('n01440764', 'tench', 0.87)
    """
    preds = keras.ops.convert_to_numpy(preds)
    if preds.ndim != 2 or preds.shape[1] not in IMAGENET_LABEL_SETS:
        raise ValueError(
            "`decode_predictions` expects a batch of predictions (i.e. a 2D "
            "array of shape (samples, 1000)), or (samples, 11821) / (samples, 11221) "
            "for ImageNet-12k / ImageNet-21K-P heads. "
            f"Received array with shape: {preds.shape}"
        )
    return [[entry[1:] for entry in row] for row in top_k(preds, k=top)]
