"""SE-MobileNet family: SE-MobileNet (v1, as in the SE paper's Table 3),
SE-MobileNetV2 and SE-MobileNetV3 Large/Small.

- `SEMobileNet` / `SEMobileNetV2` mirror `keras.applications.MobileNet` /
  `MobileNetV2` layer for layer (same names, padding, BatchNorm settings), so
  with `se_layer=None` they are those models, and with SE they hold every
  Keras layer plus an SE block: after each depthwise-separable block's
  pointwise conv (v1, ratio 16, as in the paper) or after each inverted
  residual's depthwise conv (v2, where MobileNetV3 places it).
- `SEMobileNetV3Large/Small` (Howard et al., "Searching for MobileNetV3",
  ICCV 2019) are built so that timm's `mobilenetv3_large_100` /
  `mobilenetv3_small_100` convert with no architectural change:
  PyTorch-style symmetric padding on strided convs (explicit ZeroPadding2D +
  "valid"), BatchNorm epsilon 1e-5, SE width `round8(0.25 * expanded)`, head
  = global pool, 1x1 conv with bias, activation, dropout, classifier. They
  mirror `keras.applications.MobileNetV3Large/Small`. Width (`alpha`),
  depth (`depth_coefficient`) and `implementation="rw"` cover timm's other
  MobileNetV3 checkpoints (`mobilenetv3_small_050/075`,
  `mobilenetv3_large_150d`, `mobilenetv3_rw`; timm/models/mobilenetv3.py).
"""

import math

import keras
import numpy as np
from keras import layers

from keras_senet.inputs import InputTransform
from keras_senet.layers.squeeze_excite import SqueezeExcite, reduced_width
from keras_senet.models import imagenet_utils
from keras_senet.models.imagenet_utils import decode_predictions  # noqa: F401
from keras_senet.weights import PRESETS, presets_for, resolve_weights
from keras_senet.weights.presets import DEFAULT_PRESETS, TIMM_ARCHS

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
# Implementations of SE-MobileNetV3 (the same blocks and widths).
# "standard": the paper's model as timm's mobilenetv3_large/small_*.
# "rw": timm's mobilenetv3_rw, its first MobileNetV3 (_gen_mobilenet_v3_rw):
# TensorFlow's BatchNorm epsilon 1e-3, no residual around the first
# (depthwise-separable) block, a head conv without bias, and SE width
# round(C / 4) (no multiple of 8) with the block's own activation inside the
# SE (activation None below) instead of ReLU.
IMPLEMENTATIONS = {
    "standard": dict(epsilon=1e-5, ds_residual=True, head_bias=True,
                     se=dict(ratio=4, divisor=8, round_limit=0.9, gate="hard_sigmoid", activation="relu")),
    "rw": dict(epsilon=1e-3, ds_residual=False, head_bias=False,
               se=dict(ratio=4, divisor=None, round_limit=0.0, gate="hard_sigmoid", activation=None)),
}


def preprocess_input(x, data_format=None):
    """RGB in [0, 255] -> [-1, 1], the input of `SEMobileNet` and
    `SEMobileNetV2` (as keras.applications.mobilenet / mobilenet_v2).

    SE-MobileNetV3 normalizes inside the model (`include_preprocessing=True`);
    give it raw [0, 255] images (as keras.applications.mobilenet_v3).
    """
    return InputTransform("tf").normalize(x, data_format)


def _channels(input_shape):
    """Channel count of a model's `input_shape` (no batch axis)."""
    return input_shape[-1 if keras.config.image_data_format() == "channels_last" else 0]


def _rows(input_shape):
    """Input height for a model's default name (224 when unknown), as
    keras.applications names MobileNets."""
    return input_shape[0 if keras.config.image_data_format() == "channels_last" else 1] or 224


def round8(v):
    """Nearest multiple of 8, never more than 10% below `v` (MobileNet rule)."""
    return reduced_width(v, 1, divisor=8, round_limit=0.9)


def _bn(name, epsilon=1e-5, momentum=0.9):
    """BatchNorm with PyTorch's epsilon and momentum (V3), or Keras' (V1/V2)."""
    return layers.BatchNormalization(
        axis=imagenet_utils.channel_axis(), epsilon=epsilon, momentum=momentum, name=name
    )


def apply_conv(x, filters, kernel, strides=1, depthwise=False, activation=None, use_bias=False, *, name,
               epsilon=1e-5):
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
    x = _bn(name + "_bn", epsilon)(x)
    if activation:
        x = layers.Activation(activation, name=name + "_act")(x)
    return x


def apply_mobile_block(x, kind, kernel, stride, expansion, filters, se, activation, se_options, *, name,
                       epsilon=1e-5, residual=True):
    """One MobileNetV3 block: "ds", "ir" or "cn" (see the tables above).

    `se_options`: the SqueezeExcite arguments (activation None: the
    block's `activation`); `residual=False` drops the shortcut a stride-1
    block of unchanged width would have (timm's "noskip")."""
    channel_axis = imagenet_utils.channel_axis()
    in_channels = x.shape[channel_axis]
    if kind == "cn":
        return apply_conv(x, filters, 1, activation=activation, name=name, epsilon=epsilon)
    shortcut = x
    if kind == "ir":
        mid = round8(in_channels * expansion)
        x = apply_conv(x, mid, 1, activation=activation, name=name + "_expand", epsilon=epsilon)
    else:
        mid = in_channels
    x = apply_conv(x, mid, kernel, stride, depthwise=True, activation=activation, name=name + "_dw", epsilon=epsilon)
    if se:
        options = dict(se_options, activation=se_options.get("activation") or activation)
        x = SqueezeExcite(name=name + "_se", **options)(x)
    x = apply_conv(x, filters, 1, name=name + "_project", epsilon=epsilon)
    if residual and stride == 1 and in_channels == filters:
        x = layers.Add(name=name + "_add")([shortcut, x])
    return x


def scale_depth(blocks, coefficient):
    """The block table with each stage's repeats scaled by `coefficient`,
    as timm's `depth_multiplier` scales them (_scale_stage_depth, "ceil"):
    the stage total becomes ceil(total * coefficient), shared out over the
    stage's rows from the last one back, rounding half to even as Python's
    round() does (so the first row, often a strided one, grows last)."""
    scaled = []
    for rows in blocks:
        left = sum(row[1] for row in rows)
        target = math.ceil(left * coefficient)
        repeats = []
        for row in reversed(rows):
            count = max(1, round(row[1] / left * target))
            repeats.append(count)
            left, target = left - row[1], target - count
        scaled.append([(row[0], count, *row[2:]) for row, count in zip(rows, reversed(repeats))])
    return scaled


def _architecture(options):
    """The architecture arguments a set of constructor options fixes."""
    return dict(alpha=options.get("alpha", 1.0), depth_coefficient=options.get("depth_coefficient", 1.0),
                minimalistic=options.get("minimalistic", False),
                implementation=options.get("implementation") or "standard")


def _preset_architecture(preset):
    return _architecture(TIMM_ARCHS[PRESETS[preset]["timm_model"]][1])


def _shown(architecture):
    return ", ".join(f"{k}={v!r}" for k, v in architecture.items())


def imagenet_preset(arch, architecture):
    """The preset `weights="imagenet"` loads into `arch` built with
    `architecture` (alpha, depth_coefficient, minimalistic, implementation), as
    keras.applications.MobileNetV3Small(alpha=0.75) loads its 0.75 weights:
    the architecture's default preset if it has those arguments, else the
    most accurate ImageNet-1k preset that has them.

    Raises:
        ValueError: when no preset has them, listing those that exist.
    """
    default = DEFAULT_PRESETS.get(arch)
    if default and _preset_architecture(default) == architecture:
        return default
    fitting = [p for p in presets_for(arch) if PRESETS[p]["classes"] == 1000 and _preset_architecture(p) == architecture]
    if fitting:
        return max(fitting, key=lambda p: PRESETS[p]["top1"])
    existing = sorted({_shown(_preset_architecture(p)) for p in presets_for(arch)})
    raise ValueError(
        f"No ImageNet weights exist for `{arch}` with {_shown(architecture)}; they exist for: "
        + "; ".join(existing) + ". Use `weights=None` for random initialization. Received: weights='imagenet'"
    )


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
    depth_coefficient=1.0,
    implementation=None,
    name="se_mobilenet_v3",
    arch=None,
    reference=None,
):
    """Generic SE-MobileNetV3 builder; see the named constructors (which
    pass themselves as `reference`: what a preset's checkpoint converts into)."""
    if not alpha > 0:
        raise ValueError(f"`alpha` must be positive. Received: alpha={alpha!r}")
    if not depth_coefficient > 0:
        raise ValueError(f"`depth_coefficient` must be positive. Received: depth_coefficient={depth_coefficient!r}")
    if implementation not in (None, *IMPLEMENTATIONS):
        raise ValueError(
            f"`implementation` must be one of {tuple(IMPLEMENTATIONS)}. Received: implementation={implementation!r}"
        )
    if not 0 <= dropout_rate < 1:
        raise ValueError(f"`dropout_rate` must be in [0, 1). Received: dropout_rate={dropout_rate!r}")
    architecture = dict(alpha=alpha, depth_coefficient=depth_coefficient, minimalistic=minimalistic,
                        implementation=implementation or "standard")
    if isinstance(weights, str) and weights == "imagenet":
        weights = imagenet_preset(arch, architecture)
    weights = resolve_weights(weights, arch)
    preset = weights.preset if weights.kind == "preset" else None
    if preset:
        expected = _preset_architecture(preset)
        architecture["implementation"] = implementation or expected["implementation"]  # None: the preset's
        if architecture != expected:
            raise ValueError(f"Preset {preset!r} is for {_shown(expected)}. Received: {_shown(architecture)}")
        if classes == 1000:  # the keras.applications default stands for the preset's own head
            classes = PRESETS[preset]["classes"]
    imagenet_utils.check_arguments(weights, include_top, classes, pooling, classifier_activation)
    form = IMPLEMENTATIONS[architecture["implementation"]]
    se_options = dict(form["se"], **(se_options or {}))
    SqueezeExcite(**dict(se_options, activation=se_options["activation"] or "relu"))  # validate before building
    data_format = keras.config.image_data_format()
    input_shape = imagenet_utils.obtain_input_shape(
        input_shape, default_size=224, min_size=32, data_format=data_format, weights=weights
    )
    img_input = imagenet_utils.model_input(input_tensor, input_shape)

    x = img_input
    if include_preprocessing:
        # Raw RGB in [0, 255] as keras.applications' MobileNetV3, normalized
        # as the preset's weights expect (ImageNet mean/std without a preset;
        # timm's ra4 weights use 0.5 / 0.5, the MIIL ImageNet-21K ones 0 / 1).
        transform = PRESETS[preset]["transform"] if preset else InputTransform("torch")
        mean, std = list(transform.mean), list(transform.std)
        channels = _channels(input_shape)
        if channels != 3:  # other channel counts: the RGB averages
            mean, std = [sum(mean) / 3] * channels, [sum(std) / 3] * channels
        # (x / 255 - mean) / std as one scale and offset per channel; constants
        # in the graph (a Normalization layer's captured tensors would become
        # extra inputs of an ONNX export). Rank 3, (1, 1, C) or (C, 1, 1):
        # Rescaling reshapes a vector by Keras' data format at call time, not
        # the model's, and leaves the offset unreshaped.
        shape = (1, 1, channels) if data_format == "channels_last" else (channels, 1, 1)
        scale = np.reshape([1 / (255 * s) for s in std], shape).tolist()
        offset = np.reshape([-m / s for m, s in zip(mean, std)], shape).tolist()
        x = layers.Rescaling(scale=scale, offset=offset, name="preprocessing")(x)
    head_activation = "relu" if minimalistic else "hard_swish"
    epsilon = form["epsilon"]
    # timm keeps the stem at 16 below alpha 0.75 (fix_stem), as Keras always does
    stem = 16 if alpha < 0.75 else round8(16 * alpha)
    x = apply_conv(x, stem, 3, 2, activation=head_activation, name="stem", epsilon=epsilon)
    if depth_coefficient != 1.0:
        blocks = scale_depth(blocks, depth_coefficient)
    for stage, rows in enumerate(blocks):
        index = 0
        for kind, repeats, kernel, stride, expansion, filters, se, activation in rows:
            if minimalistic:
                kernel, se, activation = min(kernel, 3), False, "relu"
            for r in range(repeats):
                x = apply_mobile_block(
                    x, kind, kernel, stride if r == 0 else 1, expansion, round8(filters * alpha),
                    se, activation, se_options, name=f"stage{stage}_block{index}", epsilon=epsilon,
                    residual=form["ds_residual"] or kind != "ds",
                )
                index += 1

    if include_top:
        # the head's width is not scaled by alpha (timm; Keras scales it above 1)
        x = layers.GlobalAveragePooling2D(keepdims=True, name="avg_pool")(x)
        x = layers.Conv2D(head_width, 1, use_bias=form["head_bias"], name="head_conv")(x)
        x = layers.Activation(head_activation, name="head_act")(x)
        x = layers.Flatten(name="flatten")(x)
        if dropout_rate:
            x = layers.Dropout(dropout_rate, name="top_dropout")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = imagenet_utils.apply_pooling(x, pooling)
    transform = InputTransform("raw" if include_preprocessing else "torch")
    return imagenet_utils.finish_model(input_tensor, img_input, x, name, weights, arch, transform, reference=reference)


BASE_DOCSTRING = """Instantiates the {title} architecture.

References: Howard et al., "Searching for MobileNetV3" (ICCV 2019); SE as in
Hu et al., "Squeeze-and-Excitation Networks"; timm's
`mobilenetv3_*` models (timm/models/mobilenetv3.py), whose checkpoints
convert with no change. Mirrors `keras.applications.{keras_name}`: with
`include_preprocessing=True` (the default) the model takes RGB in [0, 255].

Args:
    input_shape: optional shape tuple, each side at least 32; default
        (224, 224, 3).
    alpha: width multiplier (default 1.0): every block width times `alpha`,
        rounded to a multiple of 8 (never 10% below); the stem stays 16
        wide below 0.75 and the head conv ({head_width}) is not scaled, as
        in timm.
    minimalistic: no SE, no hard-swish, 3x3 kernels only (as in Keras).
    include_top, weights, input_tensor, pooling, classes,
    classifier_activation: as in keras.applications. `weights="imagenet"`
        loads the preset of this `alpha`, `depth_coefficient` and
        `implementation` ({imagenet}); with a preset, the default `classes=1000`
        stands for the preset's head (11,221 classes for
        `mobilenetv3_large_100.miil_in21k`).
    dropout_rate: dropout before the classifier (default 0.2).
    include_preprocessing: normalize inside the model (default True): the
        mean/std of the preset's weights, else ImageNet's.
    name: the model's name.
    se_options: dict of SqueezeExcite options overriding the implementation's
        (standard: ratio=4 of the expanded width, divisor=8,
        round_limit=0.9, gate="hard_sigmoid", activation="relu").
    depth_coefficient: multiplies each stage's block count (default 1.0),
        rounded up per stage as timm's `depth_multiplier` (1.2 in
        `mobilenetv3_large_150d`).
    implementation: None (default: the preset's, else "standard") or "rw":
        timm's `mobilenetv3_rw` (BatchNorm epsilon 1e-3, no shortcut around
        the first block, head conv without bias, SE width C / 4 unrounded
        with the block's activation).

Returns:
    A `keras.Model`.

Raises:
    ValueError: for an argument out of range, a preset whose architecture
        differs from the arguments (naming both), or `weights="imagenet"`
        with arguments no preset has (listing those that exist).

Example:
    >>> model = keras_senet.{fn}(weights=None)
    >>> model.predict(images_uint8_rgb)
"""

def _imagenet_docs(arch):
    """What `weights="imagenet"` exists for, from the presets: for the docstrings."""
    defaults = dict(alpha=1.0, depth_coefficient=1.0, minimalistic=False, implementation="standard")
    shown = []
    for preset in presets_for(arch):
        options = {k: v for k, v in _preset_architecture(preset).items() if v != defaults[k]}
        text = _shown(options) or "the defaults"
        if text not in shown:
            shown.append(text)
    return "; ".join(shown)


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
        depth_coefficient=1.0,
        implementation=None,
    ):
        return SEMobileNetV3(
            **row, arch=arch, alpha=alpha, minimalistic=minimalistic, include_top=include_top,
            weights=weights, input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
            classes=classes, dropout_rate=dropout_rate, classifier_activation=classifier_activation,
            include_preprocessing=include_preprocessing, se_options=se_options, name=name,
            depth_coefficient=depth_coefficient, implementation=implementation, reference=constructor,
        )

    constructor.__name__ = constructor.__qualname__ = fn_name
    constructor.__doc__ = BASE_DOCSTRING.format(
        title=title, keras_name=keras_name, fn=fn_name, head_width=row["head_width"], imagenet=_imagenet_docs(arch)
    )
    return constructor


SEMobileNetV3Large = _constructor("SEMobileNetV3Large", "se_mobilenet_v3_large", "SE-MobileNetV3-Large", "MobileNetV3Large")
SEMobileNetV3Small = _constructor("SEMobileNetV3Small", "se_mobilenet_v3_small", "SE-MobileNetV3-Small", "MobileNetV3Small")


# SE-MobileNet (v1): (pointwise filters, stride) of the 13 separable blocks.
V1_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
# SE-MobileNetV2: (expansion, filters, repeats, first stride), the paper's Table 2.
V2_BLOCKS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def _tf_pad(x, name):
    """keras.applications' padding before a 3x3/2 conv: TF's "same" split
    (one more pixel at the end on even sizes)."""
    spatial = x.shape[1:3] if keras.config.image_data_format() == "channels_last" else x.shape[2:4]
    top, left = [0 if (d is None or d % 2 == 0) else 1 for d in spatial]
    return layers.ZeroPadding2D(((top, 1), (left, 1)), name=name)(x)


def apply_separable_block(x, filters, stride, depth_multiplier, se, *, block_id):
    """MobileNet v1 block (keras.applications names) with SE after the pointwise conv."""
    if stride == 1:
        padding = "same"
    else:
        x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{block_id}")(x)
        padding = "valid"
    x = layers.DepthwiseConv2D(3, stride, padding=padding, depth_multiplier=depth_multiplier,
                               use_bias=False, name=f"conv_dw_{block_id}")(x)
    x = _bn(f"conv_dw_{block_id}_bn", 1e-3, 0.99)(x)
    x = layers.ReLU(6.0, name=f"conv_dw_{block_id}_relu")(x)
    x = layers.Conv2D(filters, 1, padding="same", use_bias=False, name=f"conv_pw_{block_id}")(x)
    x = _bn(f"conv_pw_{block_id}_bn", 1e-3, 0.99)(x)
    x = layers.ReLU(6.0, name=f"conv_pw_{block_id}_relu")(x)
    if se:
        x = se(f"conv_pw_{block_id}_se")(x)
    return x


def apply_inverted_residual_block(x, expansion, stride, filters, se, se_ratio=4, *, block_id):
    """MobileNetV2 block (keras.applications names) with SE after the
    depthwise conv, `in_channels / se_ratio` wide (the EfficientNet rule)."""
    channel_axis = imagenet_utils.channel_axis()
    in_channels = x.shape[channel_axis]
    inputs = x
    prefix = f"block_{block_id}_" if block_id else "expanded_conv_"
    if block_id:
        x = layers.Conv2D(expansion * in_channels, 1, padding="same", use_bias=False, name=prefix + "expand")(x)
        x = _bn(prefix + "expand_BN", 1e-3, 0.999)(x)
        x = layers.ReLU(6.0, name=prefix + "expand_relu")(x)
    if stride == 2:
        x = _tf_pad(x, prefix + "pad")
    x = layers.DepthwiseConv2D(3, stride, padding="same" if stride == 1 else "valid",
                               use_bias=False, name=prefix + "depthwise")(x)
    x = _bn(prefix + "depthwise_BN", 1e-3, 0.999)(x)
    x = layers.ReLU(6.0, name=prefix + "depthwise_relu")(x)
    if se:
        x = se(prefix + "se", reduced_channels=max(1, int(in_channels / se_ratio)))(x)
    x = layers.Conv2D(filters, 1, padding="same", use_bias=False, name=prefix + "project")(x)
    x = _bn(prefix + "project_BN", 1e-3, 0.999)(x)
    if in_channels == filters and stride == 1:
        return layers.Add(name=prefix + "add")([inputs, x])
    return x


def _keras_mobilenet_checks(weights, include_top, classes, pooling, classifier_activation,
                            alpha, dropout, input_shape, arch):
    """The resolved `weights` and the input shape, every argument checked."""
    weights = resolve_weights(weights, arch)
    imagenet_utils.check_arguments(weights, include_top, classes, pooling, classifier_activation)
    if not alpha > 0:
        raise ValueError(f"`alpha` must be positive. Received: alpha={alpha!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
    input_shape = imagenet_utils.obtain_input_shape(
        input_shape, default_size=224, min_size=32,
        data_format=keras.config.image_data_format(), weights=weights,
    )
    return weights, input_shape


def SEMobileNet(
    input_shape=None,
    alpha=1.0,
    depth_multiplier=1,
    dropout=1e-3,
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    se_ratio=16,
    se_layer="se",
    se_options=None,
):
    """Instantiates SE-MobileNet: MobileNet v1 with an SE block after every
    depthwise-separable block (Hu et al., Table 3: 569 -> 572 MFLOPs,
    top-1 error 29.4% -> 25.3% in the TPAMI version's retrained baseline).

    Mirrors `keras.applications.MobileNet` (same arguments, layer names and
    defaults); call `keras_senet.se_mobilenet.preprocess_input` first (RGB
    in [0, 255] -> [-1, 1]). No public ImageNet weights exist for it.

    Args:
        input_shape, alpha, depth_multiplier, dropout, include_top, weights,
        input_tensor, pooling, classes, classifier_activation, name: as in
            `keras.applications.MobileNet`.
        se_ratio: SE reduction ratio (paper: 16; width `C // r`).
        se_layer: "se", "sse", "scse", a callable `f(name)`, or None (then
            this is keras.applications.MobileNet).
        se_options: further SE layer options, e.g. `{"gate": "hard_sigmoid"}`.

    Example:
        >>> model = keras_senet.SEMobileNet(weights=None, classes=10)
    """
    weights, input_shape = _keras_mobilenet_checks(weights, include_top, classes, pooling, classifier_activation,
                                                   alpha, dropout, input_shape, "se_mobilenet")
    se = imagenet_utils.se_factory(se_layer, se_options, ratio=se_ratio)
    img_input = imagenet_utils.model_input(input_tensor, input_shape)
    x = layers.Conv2D(int(32 * alpha), 3, strides=2, padding="same", use_bias=False, name="conv1")(img_input)
    x = _bn("conv1_bn", 1e-3, 0.99)(x)
    x = layers.ReLU(6.0, name="conv1_relu")(x)
    for block_id, (filters, stride) in enumerate(V1_BLOCKS, start=1):
        x = apply_separable_block(x, int(filters * alpha), stride, depth_multiplier, se, block_id=block_id)
    if include_top:
        x = layers.GlobalAveragePooling2D(keepdims=True, name="avg_pool")(x)
        x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Conv2D(classes, 1, padding="same", name="conv_preds")(x)
        x = layers.Reshape((classes,), name="reshape_2")(x)
        x = layers.Activation(classifier_activation, name="predictions")(x)
    else:
        x = imagenet_utils.apply_pooling(x, pooling)
    name = name or f"se_mobilenet_{alpha:0.2f}_{_rows(input_shape)}"
    return imagenet_utils.finish_model(input_tensor, img_input, x, name, weights, "se_mobilenet", InputTransform("tf"))


def SEMobileNetV2(
    input_shape=None,
    alpha=1.0,
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    se_ratio=4,
    se_layer="se",
    se_options=None,
):
    """Instantiates SE-MobileNetV2: MobileNetV2 with SE in every inverted
    residual block, after the depthwise conv (where MobileNetV3 puts it).

    Mirrors `keras.applications.MobileNetV2` (arguments, layer names,
    defaults); call `keras_senet.se_mobilenet.preprocess_input` first. No
    public ImageNet weights exist for it.

    Args:
        input_shape, alpha, include_top, weights, input_tensor, pooling,
        classes, classifier_activation, name: as in keras.applications.
        se_ratio: the SE width is the block's input width / `se_ratio`
            (default 4: the EfficientNet rule; the SE sits on the expanded
            width, so a ratio of the expanded width would cost ~6x more).
        se_layer: "se", "sse", "scse", a callable `f(name)`, or None (then
            this is keras.applications.MobileNetV2).
        se_options: further SE layer options (default sigmoid gate).

    Example:
        >>> model = keras_senet.SEMobileNetV2(weights=None, alpha=0.75)
    """
    weights, input_shape = _keras_mobilenet_checks(weights, include_top, classes, pooling, classifier_activation,
                                                   alpha, 0.0, input_shape, "se_mobilenet_v2")
    se = imagenet_utils.se_factory(se_layer, se_options)
    img_input = imagenet_utils.model_input(input_tensor, input_shape)
    x = layers.Conv2D(round8(32 * alpha), 3, strides=2, padding="same", use_bias=False, name="Conv1")(img_input)
    x = _bn("bn_Conv1", 1e-3, 0.999)(x)
    x = layers.ReLU(6.0, name="Conv1_relu")(x)
    block_id = 0
    for expansion, filters, repeats, stride in V2_BLOCKS:
        for r in range(repeats):
            x = apply_inverted_residual_block(x, expansion, stride if r == 0 else 1,
                                              round8(int(filters * alpha)), se, se_ratio, block_id=block_id)
            block_id += 1
    last = round8(1280 * alpha) if alpha > 1.0 else 1280
    x = layers.Conv2D(last, 1, use_bias=False, name="Conv_1")(x)
    x = _bn("Conv_1_bn", 1e-3, 0.999)(x)
    x = layers.ReLU(6.0, name="out_relu")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = imagenet_utils.apply_pooling(x, pooling)
    name = name or f"se_mobilenetv2_{alpha:0.2f}_{_rows(input_shape)}"
    return imagenet_utils.finish_model(input_tensor, img_input, x, name, weights, "se_mobilenet_v2",
                                       InputTransform("tf"))
