"""keras-senet: Squeeze-and-Excitation networks for Keras 3.

The public names load on first use (PEP 562, see `keras_senet._lazy`), so
`import keras_senet` and `keras-senet --help` import neither Keras nor
TensorFlow; `keras_senet.SEResNet50`, `from keras_senet import SEResNet50`
and `keras_senet.MODELS` work as if everything were imported here.

Every object the package can save (layers, losses, learning-rate schedules,
activations; `_SERIALIZABLE_MODULES`) registers with Keras' serialization as
soon as Keras is imported (before or after this package), so
`keras.saving.load_model` finds them without any keras_senet name being read
first.
"""

from keras_senet import _lazy

__version__ = "0.1.0"

# Constructor names in the order the command line and the tests list them.
_MODEL_NAMES = (
    "SEResNet18", "SEResNet34", "SEResNet50", "SEResNet101", "SEResNet152",
    "SEResNeXt26", "SEResNeXt50", "SEResNeXt101", "SENet154",
    "SEResNet152D", "SEResNeXt26D", "SEResNeXt26T", "SEResNeXt101_32x8d", "SEResNeXt101_64x4d",
    "SEResNeXt101D_32x8d", "SEResNeXtAA101D_32x8d", "SEResNeXtAA201D_32x8d", "SEResNet33TS", "SEResNeXt26TS",
    "SEMobileNet", "SEMobileNetV2", "SEMobileNetV3Large", "SEMobileNetV3Small",
    "SEInceptionV3", "SEInceptionResNetV2", "SEDenseNet121", "SEDenseNet169", "SEDenseNet201",
)


def _models():
    """Constructor name -> constructor, for the command line and the tests."""
    return {name: __getattr__(name) for name in _MODEL_NAMES}


__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    {
        "keras_senet.info": ("ModelInfo", "model_info"),
        "keras_senet.layers": ("ChannelSpatialSqueezeExcite", "SpatialSqueezeExcite", "SqueezeExcite"),
        "keras_senet.models": ("se_mobilenet", "se_resnet"),
        "keras_senet.models.add_se": ("add_squeeze_excite",),
        "keras_senet.models.features": ("feature_extractor", "pyramid_layers", "pyramid_outputs"),
        "keras_senet.models.se_resnet": (
            "SEResNet18", "SEResNet34", "SEResNet50", "SEResNet101", "SEResNet152", "SEResNetCIFAR",
            "SEResNeXt26", "SEResNeXt50", "SEResNeXt101", "SENet154",
            "SEResNet152D", "SEResNeXt26D", "SEResNeXt26T", "SEResNeXt101_32x8d", "SEResNeXt101_64x4d",
            "SEResNeXt101D_32x8d", "SEResNeXtAA101D_32x8d", "SEResNeXtAA201D_32x8d", "SEResNet33TS",
            "SEResNeXt26TS",
        ),
        "keras_senet.models.se_mobilenet": ("SEMobileNet", "SEMobileNetV2", "SEMobileNetV3Large", "SEMobileNetV3Small"),
        "keras_senet.models.se_applications": (
            "SEInceptionV3", "SEInceptionResNetV2", "SEDenseNet121", "SEDenseNet169", "SEDenseNet201",
        ),
    },
    computed={"MODELS": _models},
)

# The one place that lists the modules whose objects a saved file can name
# (a layer, a compiled loss, an optimizer and its schedule, an activation);
# each registers them with Keras on import.
_SERIALIZABLE_MODULES = (
    "keras_senet.layers",  # SqueezeExcite, SpatialSqueezeExcite, ChannelSpatialSqueezeExcite, GroupedConv2D
    "keras_senet.training.recipes",  # SparseCategoricalCrossentropy, WarmupStepDecay, SGD (compiled by `train`)
    "keras_senet.export",  # _hard_swish_int8, the activation of the int8 copies of SE-MobileNetV3
)
_lazy.import_with_keras(*_SERIALIZABLE_MODULES)
