"""SE-MobileNetV3 (Howard et al., "Searching for MobileNetV3", ICCV 2019):
SE with a hard-sigmoid gate in the inverted residual blocks.

Built so that timm's `mobilenetv3_large_100` / `mobilenetv3_small_100`
(and the `_minimal_` variants) convert with no architectural change:
PyTorch-style symmetric padding on strided convs (explicit ZeroPadding2D +
"valid"), BatchNorm epsilon 1e-5, SE width `round8(0.25 * expanded)`, head
= global pool, 1x1 conv with bias, activation, dropout, classifier. The
constructors mirror `keras.applications.MobileNetV3Large/Small`.
"""

import keras
from keras import layers

from keras_senet.layers.squeeze_excite import SqueezeExcite, reduced_width
from keras_senet.models import imagenet_utils
from keras_senet.models.imagenet_utils import decode_predictions  # noqa: F401
from keras_senet.weights import PRESETS, load_weights, resolve

# One row per repeated block group, as in the paper's Tables 1 and 2:
# (kind, repeats, kernel, stride, expansion, out channels, SE, activation).
# kind: "ds" depthwise-separable, "ir" inverted residual, "cn" 1x1 conv.
# The first block of a row takes the stride; a block adds its input when the
# stride is 1 and the width is unchanged.
V3_LARGE = [
    [("ds", 1, 3, 1, 1, 16, False, "relu")],
    [("ir", 1, 3, 2, 4, 24, False, "relu"), ("ir", 1, 3, 1, 3, 24, False, "relu")],
    [("ir", 3, 5, 2, 3, 40, True, "relu")],
    [("ir", 1, 3, 2, 6, 80, False, "hard_swish"), ("ir", 1, 3, 1, 2.5, 80, False, "hard_swish"),
     ("ir", 2, 3, 1, 2.3, 80, False, "hard_swish")],
    [("ir", 2, 3, 1, 6, 112, True, "hard_swish")],
    [("ir", 3, 5, 2, 6, 160, True, "hard_swish")],
    [("cn", 1, 1, 1, 1, 960, False, "hard_swish")],
]
V3_SMALL = [
    [("ds", 1, 3, 2, 1, 16, True, "relu")],
    [("ir", 1, 3, 2, 4.5, 24, False, "relu"), ("ir", 1, 3, 1, 3.67, 24, False, "relu")],
    [("ir", 1, 5, 2, 4, 40, True, "hard_swish"), ("ir", 2, 5, 1, 6, 40, True, "hard_swish")],
    [("ir", 2, 5, 1, 3, 48, True, "hard_swish")],
    [("ir", 3, 5, 2, 6, 96, True, "hard_swish")],
    [("cn", 1, 1, 1, 1, 576, False, "hard_swish")],
]
ARCHS = {
    "se_mobilenet_v3_large": dict(blocks=V3_LARGE, head_width=1280),
    "se_mobilenet_v3_small": dict(blocks=V3_SMALL, head_width=1024),
}


def preprocess_input(x, data_format=None):
    """A pass-through, as in keras.applications.mobilenet_v3: the models
    normalize RGB in [0, 255] themselves (`include_preprocessing=True`)."""
    return x


def round8(v):
    """Nearest multiple of 8, never more than 10% below `v` (MobileNet rule)."""
    return reduced_width(v, 1, divisor=8, round_limit=0.9)


def _bn(name):
    axis = -1 if keras.config.image_data_format() == "channels_last" else 1
    return layers.BatchNormalization(axis=axis, epsilon=1e-5, momentum=0.9, name=name)


def apply_conv(x, filters, kernel, strides=1, depthwise=False, activation=None, use_bias=False, *, name):
    """Conv (or depthwise conv) + BN + activation, padded as PyTorch pads."""
    if strides > 1 and kernel > 1:
        # PyTorch pads k // 2 on every side; TF's "same" pads more at the end
        x = layers.ZeroPadding2D(kernel // 2, name=name + "_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    if depthwise:
        x = layers.DepthwiseConv2D(kernel, strides, padding=padding, use_bias=False, name=name + "_conv")(x)
    else:
        x = layers.Conv2D(filters, kernel, strides, padding=padding, use_bias=use_bias, name=name + "_conv")(x)
    x = _bn(name + "_bn")(x)
    if activation:
        x = layers.Activation(activation, name=name + "_act")(x)
    return x


def apply_mobile_block(x, kind, kernel, stride, expansion, filters, se, activation, se_options, *, name):
    """One MobileNetV3 block: "ds", "ir" or "cn" (see the tables above)."""
    channel_axis = -1 if keras.config.image_data_format() == "channels_last" else 1
    in_channels = x.shape[channel_axis]
    if kind == "cn":
        return apply_conv(x, filters, 1, activation=activation, name=name)
    shortcut = x
    if kind == "ir":
        mid = round8(in_channels * expansion)
        x = apply_conv(x, mid, 1, activation=activation, name=name + "_expand")
    else:
        mid = in_channels
    x = apply_conv(x, mid, kernel, stride, depthwise=True, activation=activation, name=name + "_dw")
    if se:
        options = dict(dict(ratio=4, divisor=8, round_limit=0.9, gate="hard_sigmoid"), **se_options)
        x = SqueezeExcite(name=name + "_se", **options)(x)
    x = apply_conv(x, filters, 1, name=name + "_project")
    if stride == 1 and in_channels == filters:
        x = layers.Add(name=name + "_add")([shortcut, x])
    return x


def SEMobileNetV3(
    *,
    blocks,
    head_width,
    alpha=1.0,
    minimalistic=False,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    dropout_rate=0.2,
    classifier_activation="softmax",
    include_preprocessing=True,
    se_options=None,
    name="se_mobilenet_v3",
    arch=None,
):
    """Generic SE-MobileNetV3 builder; see the named constructors."""
    imagenet_utils.check_arguments(weights, include_top, classes, pooling, classifier_activation, PRESETS)
    if not alpha > 0:
        raise ValueError(f"`alpha` must be positive. Received: alpha={alpha!r}")
    if not 0 <= dropout_rate < 1:
        raise ValueError(f"`dropout_rate` must be in [0, 1). Received: dropout_rate={dropout_rate!r}")
    SqueezeExcite(**(se_options or {}))  # validate the SE options before building
    data_format = keras.config.image_data_format()
    input_shape = imagenet_utils.obtain_input_shape(
        input_shape, default_size=224, min_size=32, data_format=data_format, weights=weights
    )
    preset = resolve(weights, arch)
    if preset and (alpha != 1.0 or minimalistic):
        raise ValueError(
            f"Preset {preset['name']!r} is for alpha=1.0 and minimalistic=False. "
            f"Received: alpha={alpha!r}, minimalistic={minimalistic!r}"
        )
    img_input = imagenet_utils.model_input(input_tensor, input_shape)

    x = img_input
    if include_preprocessing:
        # Raw RGB in [0, 255] as keras.applications' MobileNetV3; the reference
        # weights expect ImageNet mean/std normalization.
        mean = [255 * m for m in (0.485, 0.456, 0.406)]
        variance = [(255 * s) ** 2 for s in (0.229, 0.224, 0.225)]
        axis = -1 if data_format == "channels_last" else 1
        if input_shape[axis] != 3:  # other channel counts: the RGB averages
            mean, variance = [sum(mean) / 3] * input_shape[axis], [sum(variance) / 3] * input_shape[axis]
        x = layers.Normalization(axis=axis, mean=mean, variance=variance, name="preprocessing")(x)
    head_activation = "relu" if minimalistic else "hard_swish"
    stem = 16 if alpha < 0.75 else round8(16 * alpha)
    x = apply_conv(x, stem, 3, 2, activation=head_activation, name="stem")
    for stage, rows in enumerate(blocks):
        index = 0
        for kind, repeats, kernel, stride, expansion, filters, se, activation in rows:
            if minimalistic:
                kernel, se, activation = min(kernel, 3), False, "relu"
            for r in range(repeats):
                x = apply_mobile_block(
                    x, kind, kernel, stride if r == 0 else 1, expansion, round8(filters * alpha),
                    se, activation, se_options or {}, name=f"stage{stage}_block{index}",
                )
                index += 1

    if include_top:
        x = layers.GlobalAveragePooling2D(keepdims=True, name="avg_pool")(x)
        x = layers.Conv2D(head_width, 1, use_bias=True, name="head_conv")(x)
        x = layers.Activation(head_activation, name="head_act")(x)
        x = layers.Flatten(name="flatten")(x)
        if dropout_rate:
            x = layers.Dropout(dropout_rate, name="top_dropout")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)

    model = keras.Model(imagenet_utils.model_inputs(input_tensor, img_input), x, name=name)
    if weights is not None:
        load_weights(model, weights, arch=arch)
    return model


BASE_DOCSTRING = """Instantiates the {title} architecture.

References: Howard et al., "Searching for MobileNetV3" (ICCV 2019); SE as in
Hu et al., "Squeeze-and-Excitation Networks". Mirrors
`keras.applications.{keras_name}`: with `include_preprocessing=True` (the
default) the model takes RGB in [0, 255].

Args:
    input_shape: optional shape tuple, each side at least 32; default
        (224, 224, 3).
    alpha: width multiplier (channels rounded to multiples of 8).
    minimalistic: no SE, no hard-swish, 3x3 kernels only (as in Keras).
    include_top, weights, input_tensor, pooling, classes,
    classifier_activation: as in keras.applications.
    dropout_rate: dropout before the classifier (default 0.2).
    include_preprocessing: include ImageNet mean/std normalization.
    name: the model's name.
    se_options: dict of SqueezeExcite options overriding the MobileNetV3
        defaults (ratio=4 of the expanded width, divisor=8,
        round_limit=0.9, gate="hard_sigmoid").

Returns:
    A `keras.Model`.

Example:
    >>> model = keras_senet.{fn}(weights=None)
    >>> model.predict(images_uint8_rgb)
"""


def _constructor(fn_name, arch, title, keras_name):
    row = ARCHS[arch]

    def constructor(
        input_shape=None,
        alpha=1.0,
        minimalistic=False,
        include_top=True,
        weights="imagenet",
        input_tensor=None,
        classes=1000,
        pooling=None,
        dropout_rate=0.2,
        classifier_activation="softmax",
        include_preprocessing=True,
        name=arch,
        *,
        se_options=None,
    ):
        return SEMobileNetV3(
            **row, arch=arch, alpha=alpha, minimalistic=minimalistic, include_top=include_top,
            weights=weights, input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
            classes=classes, dropout_rate=dropout_rate, classifier_activation=classifier_activation,
            include_preprocessing=include_preprocessing, se_options=se_options, name=name,
        )

    constructor.__name__ = constructor.__qualname__ = fn_name
    constructor.__doc__ = BASE_DOCSTRING.format(title=title, keras_name=keras_name, fn=fn_name)
    return constructor


SEMobileNetV3Large = _constructor("SEMobileNetV3Large", "se_mobilenet_v3_large", "SE-MobileNetV3-Large", "MobileNetV3Large")
SEMobileNetV3Small = _constructor("SEMobileNetV3Small", "se_mobilenet_v3_small", "SE-MobileNetV3-Small", "MobileNetV3Small")
