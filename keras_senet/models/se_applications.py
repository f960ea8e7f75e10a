"""SE-Inception-v3, SE-Inception-ResNet-v2 and SE-DenseNet-121/169/201.

The keras.applications networks with SE inserted by `add_squeeze_excite`
(Hu et al., TPAMI 2019): on the output of every Inception module (Fig. 2),
on the residual branch of every Inception-ResNet module (Fig. 3), and on
the new features of every dense layer. No ImageNet weights exist for them
(the authors released SE-BN-Inception, SE-ResNet/ResNeXt and SENet-154
only), so `weights` is None or a file; to start from keras.applications'
ImageNet weights instead, call `add_squeeze_excite` on
`keras.applications.InceptionV3(weights="imagenet")` and fine-tune.
"""

import keras

from keras_senet.inputs import InputTransform, attach
from keras_senet.models import imagenet_utils
from keras_senet.models.add_se import add_squeeze_excite
from keras_senet.weights import load_weights, resolve_weights

A = keras.applications
# Constructor -> (keras.applications base, default size, min size, title,
# input mode: that of the base's keras.applications preprocess_input).
ARCHS = {
    "SEInceptionV3": (A.InceptionV3, 299, 75, "SE-Inception-v3", "tf"),
    "SEInceptionResNetV2": (A.InceptionResNetV2, 299, 75, "SE-Inception-ResNet-v2", "tf"),
    "SEDenseNet121": (A.DenseNet121, 224, 32, "SE-DenseNet-121", "torch"),
    "SEDenseNet169": (A.DenseNet169, 224, 32, "SE-DenseNet-169", "torch"),
    "SEDenseNet201": (A.DenseNet201, 224, 32, "SE-DenseNet-201", "torch"),
}


def SEApplication(
    arch,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    se_layer="se",
    se_options=None,
    se_placement="standard",
):
    """Generic builder; the named constructors call it with their `arch`."""
    base_fn, default_size, min_size, title, mode = ARCHS[arch]
    if isinstance(weights, str) and weights == "imagenet":  # say how to start from keras.applications' weights
        raise ValueError(
            f"No ImageNet weights exist for {title}. Use `weights=None` or a weights file, or call "
            f"keras_senet.add_squeeze_excite(keras.applications.{base_fn.__name__}(weights='imagenet')) "
            f"to start from the network without SE. Received: weights={weights!r}"
        )
    weights = resolve_weights(weights, arch)  # no presets: None or a file
    imagenet_utils.check_arguments(weights, include_top, classes, pooling, classifier_activation)
    input_shape = imagenet_utils.obtain_input_shape(
        input_shape, default_size=default_size, min_size=min_size,
        data_format=keras.config.image_data_format(), weights=weights,
    )
    img_input = imagenet_utils.model_input(input_tensor, input_shape)
    base = _base(base_fn, img_input)
    x = base.output
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = imagenet_utils.apply_pooling(x, pooling)
    plain = keras.Model(imagenet_utils.model_inputs(input_tensor, img_input), x, name=base.name)
    model = add_squeeze_excite(
        plain, placement=se_placement, se_layer=se_layer, reuse_layers=True,
        name=f"se_{base.name}", **{"data_format": keras.config.image_data_format(), **(se_options or {})},
    )
    load_weights(model, weights)
    transform = InputTransform(mode, size=default_size)
    return attach(model, imagenet_utils.model_transform(model, transform))


def _base(base_fn, img_input):
    """The keras.applications network `base_fn` without its top, on `img_input`.

    Under channels_first, a network whose constructor refuses that format
    (Keras' DenseNets: their layers take it, their constructor raises) is
    built channels_last and copied layer by layer into channels_first: the
    same layers, names and weight shapes (Keras keeps one weight layout for
    both formats). Found by trying, so a Keras that lifts the refusal builds
    its own network.
    """
    try:
        return base_fn(include_top=False, weights=None, input_tensor=img_input)
    except ValueError as error:
        if keras.config.image_data_format() != "channels_first" or "channels_first" not in str(error):
            raise
    channels, height, width = img_input.shape[1:]
    keras.config.set_image_data_format("channels_last")
    try:
        base = base_fn(include_top=False, weights=None, input_shape=(height, width, channels))
    finally:
        keras.config.set_image_data_format("channels_first")
    return keras.models.clone_model(base, input_tensors=img_input, clone_function=_channels_first_copy)


def _channels_first_copy(layer):
    """A new layer like `layer` (from a channels_last 4-D network) that
    works on channels_first tensors."""
    config = layer.get_config()
    if "data_format" in config:
        config["data_format"] = "channels_first"
    if isinstance(layer, (keras.layers.BatchNormalization, keras.layers.Concatenate)):
        if config["axis"] not in (-1, 3):
            raise ValueError(f"Cannot move layer {layer.name!r} to channels_first: axis={config['axis']!r}")
        config["axis"] = 1
    elif "axis" in config or isinstance(layer, (keras.layers.Flatten, keras.layers.Reshape, keras.layers.Permute)):
        raise ValueError(f"Cannot move layer {layer.name!r} ({type(layer).__name__}) to channels_first")
    return layer.__class__.from_config(config)


DOCSTRING = """Instantiates {title}: keras.applications.{base_fn} with SE blocks.

Reference: Hu et al., "Squeeze-and-Excitation Networks" (TPAMI 2019). At
{size}x{size}, the network without SE needs {base:.2f} G multiply-accumulates;
the SE blocks add {fc:.2f} M in their FC layers and {scale:.2f} M multiplies
for the scaling ({share:.3f}% in all).

Args:
    include_top: whether to include the classifier on top.
    weights: None (random initialization) or the path to a weights file.
        No ImageNet weights exist (see the module docstring).
    input_tensor: optional Keras tensor to use as the image input.
    input_shape: optional shape tuple; each side at least {min_size}.
        Defaults to ({size}, {size}, 3).
    pooling: with `include_top=False`: None, "avg" or "max".
    classes: number of classes with `include_top=True`.
    classifier_activation: activation of the top layer; None returns logits.
    se_layer: "se" (default), "sse", "scse", or a callable returning a layer.
    se_options: SE layer options, e.g. {{"ratio": 16}}.
    se_placement: for residual modules: "standard", "pre", "post" or
        "identity" (see `add_squeeze_excite`).

Returns:
    A `keras.Model`. Preprocess inputs with
    `keras.applications.{module}.preprocess_input`.
"""


# Measured at the default size with keras_senet.model_info (MACs of the
# network without SE, MACs of the SE FC layers, multiplies of the SE scaling);
# tests/models/test_se_applications.py checks them.
MACS = {
    "SEInceptionV3": (5_713_216_096, 1_650_944, 2_473_024),
    "SEInceptionResNetV2": (13_155_794_016, 9_196_928, 12_379_392),
    "SEDenseNet121": (2_834_161_664, 7_424, 1_078_784),
    "SEDenseNet169": (3_359_843_328, 10_496, 1_154_048),
    "SEDenseNet201": (4_291_365_888, 12_544, 1_254_400),
}


def _constructor(arch, module):
    def constructor(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                    classes=1000, classifier_activation="softmax", se_layer="se", se_options=None,
                    se_placement="standard"):
        return SEApplication(arch, include_top, weights, input_tensor, input_shape, pooling, classes,
                             classifier_activation, se_layer, se_options, se_placement)

    base_fn, size, min_size, title, _ = ARCHS[arch]
    base, fc, scale = MACS[arch]
    constructor.__name__ = constructor.__qualname__ = arch
    constructor.__doc__ = DOCSTRING.format(
        title=title, base=base / 1e9, fc=fc / 1e6, scale=scale / 1e6, share=100 * (fc + scale) / base,
        size=size, min_size=min_size, module=module, base_fn=base_fn.__name__,
    )
    return constructor


SEInceptionV3 = _constructor("SEInceptionV3", "inception_v3")
SEInceptionResNetV2 = _constructor("SEInceptionResNetV2", "inception_resnet_v2")
SEDenseNet121 = _constructor("SEDenseNet121", "densenet")
SEDenseNet169 = _constructor("SEDenseNet169", "densenet")
SEDenseNet201 = _constructor("SEDenseNet201", "densenet")
