"""keras-senet: Squeeze-and-Excitation networks for Keras 3."""

from keras_senet.info import ModelInfo, model_info  # noqa: F401
from keras_senet.layers import (  # noqa: F401
    ChannelSpatialSqueezeExcite,
    SpatialSqueezeExcite,
    SqueezeExcite,
)
from keras_senet.models import se_mobilenet, se_resnet  # noqa: F401
from keras_senet.models.add_se import add_squeeze_excite  # noqa: F401
from keras_senet.models.se_applications import (  # noqa: F401
    SEDenseNet121,
    SEDenseNet169,
    SEDenseNet201,
    SEInceptionResNetV2,
    SEInceptionV3,
)
from keras_senet.models.se_mobilenet import (  # noqa: F401
    SEMobileNet,
    SEMobileNetV2,
    SEMobileNetV3Large,
    SEMobileNetV3Small,
)
from keras_senet.models.se_resnet import (  # noqa: F401
    SENet154,
    SEResNet18,
    SEResNet34,
    SEResNet50,
    SEResNet101,
    SEResNet152,
    SEResNetCIFAR,
    SEResNeXt26,
    SEResNeXt50,
    SEResNeXt101,
)

__version__ = "0.1.0"

# Constructor name -> constructor, for the command line and the tests.
MODELS = {
    fn.__name__: fn
    for fn in (
        SEResNet18, SEResNet34, SEResNet50, SEResNet101, SEResNet152,
        SEResNeXt26, SEResNeXt50, SEResNeXt101, SENet154,
        SEMobileNet, SEMobileNetV2, SEMobileNetV3Large, SEMobileNetV3Small,
        SEInceptionV3, SEInceptionResNetV2, SEDenseNet121, SEDenseNet169, SEDenseNet201,
    )
}
