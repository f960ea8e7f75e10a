"""The SE layer family."""

from keras_senet.layers.squeeze_excite import (  # noqa: F401
    ChannelSpatialSqueezeExcite,
    SpatialSqueezeExcite,
    SqueezeExcite,
    get_se_layer,
    reduced_width,
)
