"""SE-ResNet, SE-ResNeXt and SENet-154 (Hu et al., "Squeeze-and-Excitation
Networks", CVPR 2018 / TPAMI 2019).

Built to load the reference checkpoints with no architectural change:
- `variant="caffe"`: the authors' released Caffe models (timm's `legacy_*`):
  the stem max-pool rounds up (ceil mode); SE-ResNet bottlenecks stride on
  their first 1x1 conv; basic blocks apply ReLU before SE (the legacy
  SE-ResNet-18/34 weights were trained that way).
- `variant="torch"`: torchvision-style ResNets (timm's `seresnet*`,
  `seresnext*`, `senet154`): the stem max-pool pads by one; every block
  strides on its 3x3 conv; the SE width C / r is rounded to a multiple of 8
  (it differs from C // r only for 64-channel basic blocks: 8, not 4).
SE-ResNeXt and SENet-154 stride on the grouped 3x3 in both variants.
The ResNet-D rows (timm's `seresnet152d`, `seresnext26d_32x4d`, ...; He et
al., "Bag of Tricks for Image Classification with Convolutional Neural
Networks", CVPR 2019) use a deep stem of three 3x3 convs (`deep`: 32-32-64;
`deep_tiered`, timm's "t": 24-32-64) and project strided shortcuts with a
2x2 average pool and a 1x1 conv. The "aa" rows (timm's `seresnextaa*`) are
anti-aliased as timm's `aa_layer=nn.AvgPool2d` makes them: the stem's
max-pool becomes a 2x2/2 average pool and each strided 3x3 conv runs at
stride 1, followed (after its ReLU) by a 2x2/2 average pool. These rows and
the 32x8d / 64x4d SE-ResNeXt-101s exist in timm's torchvision-style layout
only, so they have the "torch" variant only (ARCHS' `variants`).
The "TS" rows are timm's ByobNet SE-ResNets (`timm/models/byobnet.py`:
`seresnet33ts`, `seresnext26ts`): the tiered deep stem, SiLU after every
conv-BN and addition, SE after the 3x3 conv on its width (the SE paper's
"SE_3x3" integration, Table 14), 1x1 projection shortcuts; SE-ResNet-33-TS
strides its last stem conv instead of pooling, has stages 256-512-1536-1536
wide and a final 1x1 conv to 1280 before the pooling; SE-ResNeXt-26-TS has
32 channels per group (2 to 16 groups), not 32 groups.
PyTorch pads strided convs symmetrically while TF's "same" pads bottom/right
more, so strided convs get an explicit ZeroPadding2D and "valid". BatchNorm
uses PyTorch's epsilon (1e-5) and momentum (0.1, i.e. Keras 0.9).
"""

import keras
from keras import layers

from keras_senet.inputs import InputTransform
from keras_senet.layers.grouped_conv import GroupedConv2D
from keras_senet.models import imagenet_utils
from keras_senet.models.imagenet_utils import decode_predictions, preprocess_input  # noqa: F401
from keras_senet.weights import PRESETS, resolve_weights

# One row per architecture. depths: blocks per stage (conv2..conv5).
# groups / base_width: ResNeXt cardinality and width per group (64 = ResNet).
# reduce_first: the first 1x1 conv is this many times narrower than the 3x3
# (SENet-154). stem: "7x7", "deep" (three 3x3 convs, stem_width,
# stem_width and stem_out wide) or "deep_tiered" (3/4 stem_width,
# stem_width, stem_out). down_kernel: kernel of strided projection
# shortcuts. avg_down: project with avg-pool + 1x1 conv ("d" ResNets).
# aa: anti-aliased downsampling by 2x2 average pools (see the module
# docstring). variant: the default, that of the constructor's default
# ImageNet weights. variants: the layouts the row is built in; the
# ResNet-D, anti-aliased and 32x8d / 64x4d rows exist in timm's
# torchvision-style layout only (no legacy Caffe models), so their
# constructors refuse variant="caffe".
# widths: bottleneck widths per stage (outputs 4x). group_size: channels
# per group of the 3x3 (timm's ByobNet `gs`), instead of `groups`.
# stem_pool: False strides the last stem conv instead of a pool.
# activation: after each conv-BN and addition. num_features: a final
# 1x1 conv-BN-activation to this width (timm's `final_conv`). se_placement:
# the constructor's default (see its docstring; "3x3": after the 3x3 conv).
VARIANTS = ("caffe", "torch")
_TORCH = ("torch",)
_RESNET_D = dict(stem="deep", stem_width=32, stem_out=64, avg_down=True, variant="torch", variants=_TORCH)
# timm's ByobNet SE-ResNets ("ts": tiered stem, SiLU)
_BYOB = dict(
    block="bottleneck", stem="deep_tiered", stem_width=32, stem_out=64, activation="silu", se_placement="3x3",
    variant="torch", variants=_TORCH,
)
ARCHS = {
    "se_resnet18": dict(block="basic", depths=(2, 2, 2, 2), variant="caffe", variants=VARIANTS),
    "se_resnet34": dict(block="basic", depths=(3, 4, 6, 3), variant="caffe", variants=VARIANTS),
    "se_resnet50": dict(block="bottleneck", depths=(3, 4, 6, 3), variant="torch", variants=VARIANTS),
    "se_resnet101": dict(block="bottleneck", depths=(3, 4, 23, 3), variant="caffe", variants=VARIANTS),
    "se_resnet152": dict(block="bottleneck", depths=(3, 8, 36, 3), variant="caffe", variants=VARIANTS),
    "se_resnext26": dict(
        block="bottleneck", depths=(2, 2, 2, 2), groups=32, base_width=4, variant="caffe", variants=VARIANTS,
    ),
    "se_resnext50": dict(
        block="bottleneck", depths=(3, 4, 6, 3), groups=32, base_width=4, variant="torch", variants=VARIANTS,
    ),
    "se_resnext101": dict(
        block="bottleneck", depths=(3, 4, 23, 3), groups=32, base_width=4, variant="torch", variants=VARIANTS,
    ),
    "senet154": dict(
        block="bottleneck", depths=(3, 8, 36, 3), groups=64, base_width=4, reduce_first=2,
        stem="deep", stem_width=64, stem_out=128, down_kernel=3, dropout=0.2,
        variant="caffe", variants=VARIANTS,
    ),
    "se_resnet152d": dict(_RESNET_D, block="bottleneck", depths=(3, 8, 36, 3)),
    "se_resnext26d": dict(_RESNET_D, block="bottleneck", depths=(2, 2, 2, 2), groups=32, base_width=4),
    "se_resnext26t": dict(
        _RESNET_D, block="bottleneck", depths=(2, 2, 2, 2), groups=32, base_width=4, stem="deep_tiered",
    ),
    "se_resnext101_32x8d": dict(
        block="bottleneck", depths=(3, 4, 23, 3), groups=32, base_width=8, variant="torch", variants=_TORCH,
    ),
    "se_resnext101_64x4d": dict(
        block="bottleneck", depths=(3, 4, 23, 3), groups=64, base_width=4, variant="torch", variants=_TORCH,
    ),
    "se_resnext101d_32x8d": dict(_RESNET_D, block="bottleneck", depths=(3, 4, 23, 3), groups=32, base_width=8),
    "se_resnextaa101d_32x8d": dict(
        _RESNET_D, block="bottleneck", depths=(3, 4, 23, 3), groups=32, base_width=8, aa=True,
    ),
    "se_resnextaa201d_32x8d": dict(
        _RESNET_D, block="bottleneck", depths=(3, 24, 36, 4), groups=32, base_width=8, aa=True,
        stem_width=64, stem_out=128,
    ),
    "se_resnet33ts": dict(
        _BYOB, depths=(2, 3, 3, 2), widths=(64, 128, 384, 384), stem_pool=False, num_features=1280,
    ),
    "se_resnext26ts": dict(_BYOB, depths=(2, 2, 2, 2), group_size=32),
}

STEMS = ("7x7", "deep", "deep_tiered", "cifar")
PLACEMENTS = ("standard", "pre", "post", "identity", "3x3")
STAGES = (2, 3, 4, 5)


def apply_conv_bn(x, filters, kernel_size, strides=1, groups=1, activation="relu", *, name):
    """Conv (no bias) + BatchNorm (+ `activation`, None for none), padded as
    PyTorch pads."""
    if strides > 1 and kernel_size > 1:
        x = layers.ZeroPadding2D((kernel_size - 1) // 2, name=name + "_pad")(x)
        padding = "valid"
    else:  # stride 1: TF's "same" is symmetric here, like PyTorch's padding
        padding = "same" if kernel_size > 1 else "valid"
    # GroupedConv2D: TensorFlow's native grouped conv where it works, else one
    # conv per group (same weights); exportable, unlike Keras' XLA path.
    conv = GroupedConv2D if groups > 1 else layers.Conv2D
    x = conv(
        filters, kernel_size, strides=strides, padding=padding, groups=groups,
        use_bias=False, name=name + "_conv",
    )(x)
    x = layers.BatchNormalization(
        axis=imagenet_utils.channel_axis(), epsilon=1e-5, momentum=0.9, name=name + "_bn"
    )(x)
    if activation:
        x = layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


def apply_stem(x, stem, stem_width, stem_out, pool, activation="relu", *, name="conv1"):
    """7x7/2 conv or three 3x3 convs, then a 3x3/2 max-pool (or, with
    `pool="aa"`, a 2x2/2 average pool; with `pool=None`, none: the last
    3x3 conv strides instead, as in timm's ByobNet stems without a pool);
    or, for CIFAR-size images, one 3x3/1 conv and no pool."""
    if stem == "cifar":
        return apply_conv_bn(x, stem_out, 3, 1, activation=activation, name=name)
    if stem == "7x7":
        x = apply_conv_bn(x, stem_out, 7, 2, activation=activation, name=name)
    else:
        # timm's "tiered" deep stem narrows the first conv to 3/4
        first = 3 * (stem_width // 4) if stem == "deep_tiered" else stem_width
        x = apply_conv_bn(x, first, 3, 2, activation=activation, name=name + "_1")
        x = apply_conv_bn(x, stem_width, 3, 1, activation=activation, name=name + "_2")
        x = apply_conv_bn(x, stem_out, 3, 1 if pool else 2, activation=activation, name=name + "_3")
    if pool is None:
        return x
    if pool == "aa":  # timm replaces the max-pool by its aa_layer, AvgPool2d(2)
        return layers.AveragePooling2D(2, name="pool1_pool")(x)
    if activation != "relu" and pool == "pad":
        # Outputs below 0 (SiLU's reach -0.28): PyTorch's -inf padding is
        # TF's "same" max-pool at stride 1 (padding 1 each side, left out
        # of the max); every second position of it is the 3x3/2 pool.
        x = layers.MaxPooling2D(3, strides=1, padding="same", name="pool1_max")(x)
        return layers.MaxPooling2D(1, strides=2, name="pool1_pool")(x)
    # The input is post-ReLU (>= 0), so zero padding acts like PyTorch's
    # -inf padding (the Caffe variant's "ceil" pool only follows ReLUs).
    # "ceil" pads bottom/right only: floor((H + 1 - 3) / 2) + 1 equals
    # PyTorch's ceil-mode ceil((H - 3) / 2) + 1 for every H.
    padding = ((0, 1), (0, 1)) if pool == "ceil" else 1
    x = layers.ZeroPadding2D(padding, name="pool1_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


def apply_shortcut(x, filters, stride, down_kernel, avg_down, *, name):
    """Identity, or a projection when the shape changes."""
    if stride == 1 and x.shape[imagenet_utils.channel_axis()] == filters:
        return x
    if avg_down:
        if stride > 1:
            # TF's "same" average excludes the padding, like PyTorch's
            # ceil_mode=True, count_include_pad=False.
            x = layers.AveragePooling2D(2, stride, padding="same", name=name + "_0_pool")(x)
        return apply_conv_bn(x, filters, 1, activation=None, name=name + "_0")
    kernel = down_kernel if stride > 1 else 1
    return apply_conv_bn(x, filters, kernel, stride, activation=None, name=name + "_0")


def apply_strided_conv_bn(x, filters, stride, groups=1, aa=False, activation="relu", *, name):
    """A block's 3x3 conv + BN + activation at `stride`; with `aa` (anti-
    aliased, timm's aa_layer=nn.AvgPool2d) at stride 1, then a 2x2/2
    average pool."""
    if not (aa and stride > 1):
        return apply_conv_bn(x, filters, 3, stride, groups, activation, name=name)
    x = apply_conv_bn(x, filters, 3, 1, groups, activation, name=name)
    return layers.AveragePooling2D(2, name=name + "_aa")(x)


def apply_basic_block(
    x, filters, stride, *, se, se_placement, variant, down_kernel, avg_down, aa=False,
    activation="relu", name, **_,
):
    """Two 3x3 convs with SE; output width `filters`."""
    shortcut = apply_shortcut(x, filters, stride, down_kernel, avg_down, name=name)
    if se and se_placement == "pre":
        x = se(name + "_se")(x)
    y = apply_strided_conv_bn(x, filters, stride, aa=aa, activation=activation, name=name + "_1")
    y = apply_conv_bn(y, filters, 3, activation=activation if variant == "caffe" else None, name=name + "_2")
    return _merge(y, shortcut, se, se_placement, activation, name)


def apply_bottleneck_block(
    x, filters, stride, *, groups, base_width, reduce_first, se, se_placement,
    variant, down_kernel, avg_down, aa=False, group_size=None, activation="relu", name,
):
    """1x1 -> 3x3 (grouped) -> 1x1 with SE; output width 4 * `filters`.
    `group_size` (timm's ByobNet `gs`): channels per group of the 3x3,
    instead of a fixed number of `groups`."""
    width = int(filters * base_width / 64) * groups
    groups = width // group_size if group_size else groups
    shortcut = apply_shortcut(x, filters * 4, stride, down_kernel, avg_down, name=name)
    if se and se_placement == "pre":
        x = se(name + "_se")(x)
    stride_in_1x1 = variant == "caffe" and groups == 1 and not aa  # aa acts on the 3x3, as in timm
    y = apply_conv_bn(x, width // reduce_first, 1, stride if stride_in_1x1 else 1, activation=activation,
                      name=name + "_1")
    y = apply_strided_conv_bn(y, width, 1 if stride_in_1x1 else stride, groups, aa, activation, name=name + "_2")
    if se and se_placement == "3x3":
        y = se(name + "_se")(y)
    y = apply_conv_bn(y, filters * 4, 1, activation=None, name=name + "_3")
    return _merge(y, shortcut, se, se_placement, activation, name)


def _merge(y, shortcut, se, se_placement, activation, name):
    """Residual addition with SE placed as in the paper's Fig. 5."""
    if se and se_placement == "standard":
        y = se(name + "_se")(y)
    elif se and se_placement == "identity":
        shortcut = se(name + "_se")(shortcut)
    x = layers.Add(name=name + "_add")([shortcut, y])
    x = layers.Activation(activation, name=name + "_out")(x)
    if se and se_placement == "post":
        x = se(name + "_se")(x)
    return x


def SEResNet(
    *,
    depths,
    block="bottleneck",
    groups=1,
    base_width=64,
    reduce_first=1,
    stem="7x7",
    stem_width=64,
    stem_out=64,
    widths=(64, 128, 256, 512),
    down_kernel=1,
    avg_down=False,
    aa=False,
    group_size=None,
    stem_pool=True,
    activation="relu",
    num_features=None,
    dropout=0.0,
    variant=None,
    default_variant="torch",
    variants=VARIANTS,
    se_ratio=16,
    se_stages=STAGES,
    se_placement="standard",
    se_layer="se",
    se_options=None,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="se_resnet",
    arch=None,
    default_size=224,
    min_size=32,
    reference=None,
):
    """Generic SE-ResNet builder; the named constructors call it with a row
    of `ARCHS` and themselves as `reference` (what a preset's checkpoint
    converts into). Other arguments are documented on the constructors."""
    weights = resolve_weights(weights, arch)
    if weights.kind == "preset" and classes == 1000:
        # the keras.applications default stands for the preset's own head
        # (11,821 classes for the ImageNet-12k presets)
        classes = PRESETS[weights.preset]["classes"]
    imagenet_utils.check_arguments(weights, include_top, classes, pooling, classifier_activation)
    if stem not in STEMS:
        raise ValueError(f"`stem` must be one of {STEMS}. Received: stem={stem!r}")
    if variant not in VARIANTS + (None,):
        raise ValueError(f"`variant` must be one of {VARIANTS}. Received: variant={variant!r}")
    model_name = reference.__name__ if reference else name
    if variant is not None and variant not in variants:
        raise ValueError(
            f"`variant` must be one of {variants} for {model_name}: its reference (timm) exists only in that "
            f"layout, so no weights of another exist. Leave `variant` unset (default {variants[0]!r}). "
            f"Received: variant={variant!r}"
        )
    if se_placement not in PLACEMENTS:
        raise ValueError(
            f"`se_placement` must be one of {PLACEMENTS}. Received: se_placement={se_placement!r}"
        )
    if se_placement == "3x3" and block == "basic":
        raise ValueError(
            "`se_placement` \"3x3\" (after a bottleneck's 3x3 conv) needs bottleneck blocks; this network has "
            f"basic blocks (two 3x3 convs). Use \"standard\", \"pre\", \"post\" or \"identity\". "
            f"Received: se_placement={se_placement!r}"
        )
    if not set(se_stages) <= set(STAGES):
        raise ValueError(
            f"`se_stages` must be a subset of {STAGES} (conv2..conv5). Received: se_stages={se_stages!r}"
        )
    if not 0 <= dropout < 1:
        raise ValueError(f"`dropout_rate` must be in [0, 1). Received: dropout_rate={dropout!r}")
    data_format = keras.config.image_data_format()
    input_shape = imagenet_utils.obtain_input_shape(
        input_shape, default_size=default_size, min_size=min_size, data_format=data_format, weights=weights
    )
    if aa:
        _check_aa_sides(input_shape, data_format, len(depths))
    preset = PRESETS[weights.preset] if weights.kind == "preset" else None
    if preset and variant not in (None, preset["variant"]):
        raise ValueError(
            f"Preset {weights.preset!r} needs variant={preset['variant']!r}. "
            f"Received: variant={variant!r}"
        )
    if variant is None and weights.format == "checkpoint":  # as for a preset: the file's variant
        from keras_senet.weights.convert import checkpoint_variant

        variant = checkpoint_variant(weights.path)
        if variant not in variants:
            raise ValueError(
                f"`weights` file {weights.path} holds a timm checkpoint of the {variant!r} layout (by its key "
                f"names), which {model_name} does not have (variants {variants}): it is another architecture's. "
                f"Pass a checkpoint of {model_name}'s timm model. Received: weights={weights.path!r}"
            )
    variant = variant or (preset["variant"] if preset else default_variant)
    # timm's newer SE rounds C / r to a multiple of 8
    se = imagenet_utils.se_factory(se_layer, se_options, ratio=se_ratio, **({"divisor": 8} if variant == "torch" else {}))
    img_input = imagenet_utils.model_input(input_tensor, input_shape)

    pool = ("aa" if aa else "ceil" if variant == "caffe" else "pad") if stem_pool else None
    x = apply_stem(img_input, stem, stem_width, stem_out, pool, activation)
    apply_block = apply_basic_block if block == "basic" else apply_bottleneck_block
    for stage, (depth, filters) in enumerate(zip(depths, widths), start=2):
        for i in range(depth):
            x = apply_block(
                x, filters, 2 if (i == 0 and stage > 2) else 1,
                groups=groups, base_width=base_width, reduce_first=reduce_first,
                se=se if stage in se_stages else None, se_placement=se_placement,
                variant=variant, down_kernel=down_kernel, avg_down=avg_down, aa=aa,
                group_size=group_size, activation=activation, name=f"conv{stage}_block{i + 1}",
            )
    if num_features:  # timm's ByobNet `final_conv`: 1x1 conv + BN + activation, part of the features
        x = apply_conv_bn(x, num_features, 1, activation=activation, name="final")

    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout:
            x = layers.Dropout(dropout, name="top_dropout")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = imagenet_utils.apply_pooling(x, pooling)
    # ImageNet evaluation (0.875 center crop); small inputs are only resized
    transform = InputTransform(size=default_size, crop_pct=0.875 if default_size >= 64 else 1.0)
    return imagenet_utils.finish_model(
        input_tensor, img_input, x, name, weights, arch, transform, variant=variant, reference=reference
    )


def _check_aa_sides(input_shape, data_format, stages):
    """Anti-aliased rows halve by floor (the 2x2 average pools) on the
    residual branch and by ceil (the shortcut's pool) on the shortcut, so an
    odd side before a strided stage gives two sizes that cannot be added;
    timm's models fail the same way. Say so before building."""
    sides = input_shape[:2] if data_format == "channels_last" else input_shape[1:]
    for side in sides:
        if side is None:
            continue
        size = (side + 1) // 2 // 2  # stem conv (stride 2, padded), then the 2x2 pool
        for stage in range(3, stages + 2):
            if size % 2:
                raise ValueError(
                    f"`input_shape` {tuple(input_shape)} does not fit an anti-aliased (aa) model: a side of "
                    f"{side} is {size} (odd) at the input of stage conv{stage}, whose residual branch halves "
                    f"it to {size // 2} and whose shortcut to {(size + 1) // 2}. Use sides that stay even, e.g. "
                    f"multiples of 32 (224, 256, 288, 320). Received: input_shape={input_shape!r}"
                )
            size //= 2


BASE_DOCSTRING = """Instantiates the {title} architecture.

Reference: Hu et al., "Squeeze-and-Excitation Networks" (CVPR 2018 /
TPAMI 2019). {note}

The constructor follows `keras.applications`: call
`keras_senet.se_resnet.preprocess_input` on RGB images in [0, 255] first.

Args:
    include_top: whether to include the classifier on top.
    weights: None (random initialization), "imagenet" (the default ImageNet
        preset), a preset name, or the path to a weights file.
    input_tensor: optional Keras tensor to use as the image input.
    input_shape: optional shape tuple, e.g. (224, 224, 3); each side at
        least 32. Defaults to (224, 224, 3).
    pooling: with `include_top=False`: None (4D feature map), "avg" or
        "max" (global pooling to a 2D tensor).
    classes: number of classes with `include_top=True`; with a preset, that
        of its head (1000 for ImageNet-1k; 11,821 for the ImageNet-12k
        presets, `*.sw_in12k`, which the default 1000 stands for).
    classifier_activation: activation of the top layer; None returns logits.
    name: the model's name.
    variant: "caffe" (the authors' released models) or "torch"
        (torchvision-style, stride on the 3x3); this model has {variants}.
        Defaults to that of the preset or timm checkpoint file in `weights`,
        else "{variant}" (that of the default ImageNet weights). See the
        module docstring.
    se_ratio: SE reduction ratio (paper: 16).
    se_stages: which stages (2..5, i.e. conv2..conv5) carry SE; () for none.
    se_placement: "standard" (on the residual branch before the addition),
        "pre", "post" or "identity" (the paper's Fig. 5 integrations), or
        "3x3" (after a bottleneck's 3x3 conv, the paper's Table 14 SE_3x3;
        timm's ByobNet). Default here: "{placement}".
    se_layer: "se" (channel SE), "sse", "scse", a callable `f(name)` -> layer,
        or None for no SE.
    se_options: dict of further SE layer options (e.g. `{{"gate":
        "hard_sigmoid", "squeeze": "max", "divisor": 8}}`).
    dropout_rate: dropout before the classifier (default {dropout}).

Returns:
    A `keras.Model`.

Example:
    >>> model = keras_senet.{fn}(weights=None)
    >>> model.predict(preprocess_input(images))
"""


def _constructor(fn_name, arch, title, note=""):
    row = ARCHS[arch]
    placement = row.get("se_placement", "standard")  # the row's default, an argument here

    def constructor(
        include_top=True,
        weights="imagenet",
        input_tensor=None,
        input_shape=None,
        pooling=None,
        classes=1000,
        classifier_activation="softmax",
        name=arch,
        *,
        variant=None,
        se_ratio=16,
        se_stages=STAGES,
        se_placement=placement,
        se_layer="se",
        se_options=None,
        dropout_rate=None,
    ):
        row = ARCHS[arch]  # read at each call: the row is data (tests shrink depths)
        config = dict(row, variant=variant, default_variant=row["variant"], se_placement=se_placement)
        if dropout_rate is not None:
            config["dropout"] = dropout_rate
        return SEResNet(
            **config, arch=arch, se_ratio=se_ratio, se_stages=se_stages,
            se_layer=se_layer, se_options=se_options,
            include_top=include_top, weights=weights, input_tensor=input_tensor,
            input_shape=input_shape, pooling=pooling, classes=classes,
            classifier_activation=classifier_activation, name=name, reference=constructor,
        )

    constructor.__name__ = constructor.__qualname__ = fn_name
    constructor.variants = row["variants"]  # what `keras-senet info` lists
    variants = " and ".join(f'"{v}"' for v in row["variants"]) + (" only" if len(row["variants"]) == 1 else "")
    constructor.__doc__ = BASE_DOCSTRING.format(
        title=title, note=note, variant=row["variant"], variants=variants, dropout=row.get("dropout", 0.0), fn=fn_name,
        placement=placement,
    )
    return constructor


SEResNet18 = _constructor("SEResNet18", "se_resnet18", "SE-ResNet-18")
SEResNet34 = _constructor("SEResNet34", "se_resnet34", "SE-ResNet-34")
SEResNet50 = _constructor("SEResNet50", "se_resnet50", "SE-ResNet-50")
SEResNet101 = _constructor("SEResNet101", "se_resnet101", "SE-ResNet-101")
SEResNet152 = _constructor("SEResNet152", "se_resnet152", "SE-ResNet-152")
SEResNeXt26 = _constructor("SEResNeXt26", "se_resnext26", "SE-ResNeXt-26 (32x4d)")
SEResNeXt50 = _constructor("SEResNeXt50", "se_resnext50", "SE-ResNeXt-50 (32x4d)")
SEResNeXt101 = _constructor("SEResNeXt101", "se_resnext101", "SE-ResNeXt-101 (32x4d)")
SENet154 = _constructor(
    "SENet154", "senet154", "SENet-154",
    "SE-ResNeXt-152 (64x4d) with a three-conv stem, 3x3 projection shortcuts "
    "and a first 1x1 conv half as wide as the 3x3; the ILSVRC 2017 winner.",
)
# ResNet-D and wide SE-ResNeXts, named after timm's models (seresnet152d,
# seresnext101d_32x8d, ...) in keras.applications' CamelCase: "D" / "T" /
# "AA" as capital suffixes and prefixes (like "V2"), the ResNeXt width
# "32x8d" (groups x width per group, the ResNeXt paper's notation) after an
# underscore, since SEResNeXt101 already means the 32x4d network.
_D_NOTE = (
    "ResNet-D (He et al., \"Bag of Tricks for Image Classification with Convolutional "
    "Neural Networks\", CVPR 2019; timm's `{}`): a deep stem of three 3x3 convs ({}) and "
    "2x2 average-pool + 1x1 conv projection shortcuts."
)
_AA_NOTE = (
    " Anti-aliased (timm's `aa_layer=nn.AvgPool2d`): the stem pools by a 2x2/2 average and each "
    "strided 3x3 conv runs at stride 1 before a 2x2/2 average pool; input sides must stay even "
    "before each strided stage (e.g. multiples of 32), as in timm."
)
SEResNet152D = _constructor("SEResNet152D", "se_resnet152d", "SE-ResNet-152-D", _D_NOTE.format("seresnet152d", "32-32-64"))
SEResNeXt26D = _constructor(
    "SEResNeXt26D", "se_resnext26d", "SE-ResNeXt-26-D (32x4d)", _D_NOTE.format("seresnext26d_32x4d", "32-32-64")
)
SEResNeXt26T = _constructor(
    "SEResNeXt26T", "se_resnext26t", "SE-ResNeXt-26-T (32x4d)",
    _D_NOTE.format("seresnext26t_32x4d", "tiered: 24-32-64"),
)
SEResNeXt101_32x8d = _constructor("SEResNeXt101_32x8d", "se_resnext101_32x8d", "SE-ResNeXt-101 (32x8d)")
SEResNeXt101_64x4d = _constructor("SEResNeXt101_64x4d", "se_resnext101_64x4d", "SE-ResNeXt-101 (64x4d)")
SEResNeXt101D_32x8d = _constructor(
    "SEResNeXt101D_32x8d", "se_resnext101d_32x8d", "SE-ResNeXt-101-D (32x8d)",
    _D_NOTE.format("seresnext101d_32x8d", "32-32-64"),
)
SEResNeXtAA101D_32x8d = _constructor(
    "SEResNeXtAA101D_32x8d", "se_resnextaa101d_32x8d", "anti-aliased SE-ResNeXt-101-D (32x8d)",
    _D_NOTE.format("seresnextaa101d_32x8d", "32-32-64") + _AA_NOTE,
)
SEResNeXtAA201D_32x8d = _constructor(
    "SEResNeXtAA201D_32x8d", "se_resnextaa201d_32x8d", "anti-aliased SE-ResNeXt-201-D (32x8d)",
    _D_NOTE.format("seresnextaa201d_32x8d", "64-64-128") + _AA_NOTE
    + " Stages of 3, 24, 36 and 4 blocks.",
)
# timm's ByobNet SE-ResNets (seresnet33ts, seresnext26ts): "TS" as timm's
# suffix in capitals, like "D" / "T" above.
_TS_NOTE = (
    "timm's ByobNet `{}` (\"ts\": tiered stem, SiLU): a tiered stem of three 3x3 convs (24-32-64), "
    "SiLU after each conv-BN and addition, SE after the 3x3 conv (the paper's SE_3x3 integration, "
    "Table 14) and 1x1 projection shortcuts."
)
SEResNet33TS = _constructor(
    "SEResNet33TS", "se_resnet33ts", "SE-ResNet-33-TS",
    _TS_NOTE.format("seresnet33ts") + " Stages of 2, 3, 3 and 2 blocks, 256-512-1536-1536 wide; the last "
    "stem conv strides (no pool); a final 1x1 conv to 1280 channels before the pooling.",
)
SEResNeXt26TS = _constructor(
    "SEResNeXt26TS", "se_resnext26ts", "SE-ResNeXt-26-TS",
    _TS_NOTE.format("seresnext26ts") + " Grouped 3x3 convs of 32 channels per group (2, 4, 8, 16 groups), "
    "the stem's 3x3/2 max-pool.",
)


def SEResNetCIFAR(
    depth=20,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name=None,
    *,
    width=16,
    se_ratio=16,
    se_stages=(2, 3, 4),
    se_placement="standard",
    se_layer="se",
    se_options=None,
):
    """SE-ResNet for 32x32 images, as in the paper's CIFAR experiments.

    He et al.'s CIFAR ResNet-`depth` (depth = 6n + 2: 20, 32, 44, 56, 110):
    a 3x3 stem, three stages of n basic blocks `width`, 2x and 4x wide, the
    second and third strided, and global pooling. SE follows the paper: on
    each residual branch, C // `se_ratio` units. `se_layer=None` gives the
    plain ResNet with the same layers otherwise.

    Args:
        depth: 6n + 2 layers.
        weights: None or the path to a Keras weights file (no presets).
        width: channels of the first stage (16 in the paper).
        Others: as for `SEResNet50`; inputs default to (32, 32, 3), any
            size of at least 8 works.

    Example:
        >>> model = SEResNetCIFAR(20, input_shape=(28, 28, 1), classes=10)
    """
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"`depth` must be 6n + 2 (20, 32, 56, 110...). Received: depth={depth!r}")
    n = (depth - 2) // 6
    return SEResNet(
        depths=(n, n, n), block="basic", stem="cifar", stem_out=width,
        widths=(width, 2 * width, 4 * width), variant="torch",
        se_ratio=se_ratio, se_stages=se_stages, se_placement=se_placement, se_layer=se_layer,
        # the authors' width C // r, not timm's multiple of 8
        se_options={"divisor": None, **(se_options or {})} if se_layer in ("se", "scse") else se_options,
        include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation,
        name=name or (f"se_resnet{depth}_cifar" if se_layer else f"resnet{depth}_cifar"),
        arch="se_resnet_cifar", default_size=32, min_size=8,
    )
