"""The SE layer family, and the grouped convolution the ResNeXts use."""

from keras_senet.layers.grouped_conv import GroupedConv2D  # noqa: F401
from keras_senet.layers.squeeze_excite import (  # noqa: F401
    ChannelSpatialSqueezeExcite,
    SpatialSqueezeExcite,
    SqueezeExcite,
    get_se_layer,
    reduced_width,
)
