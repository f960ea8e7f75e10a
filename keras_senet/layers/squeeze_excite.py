"""Squeeze-and-Excitation layers.

- `SqueezeExcite`: channel SE (Hu et al., "Squeeze-and-Excitation Networks",
  CVPR 2018 / TPAMI 2019) with the paper's options and its ablations.
- `SpatialSqueezeExcite`: sSE, and `ChannelSpatialSqueezeExcite`: scSE
  (Roy et al., "Concurrent Spatial and Channel Squeeze & Excitation in Fully
  Convolutional Networks", MICCAI 2018).

Written with `keras.ops` only, so they run on every Keras backend, and for
inputs of any rank >= 3 (1-D, 2-D and 3-D feature maps).
"""

import keras
from keras import ops

SQUEEZES = ("avg", "max", "avgmax")
GATES = {
    "sigmoid": ops.sigmoid,
    "hard_sigmoid": ops.hard_sigmoid,  # relu6(x + 3) / 6, as in PyTorch
    "tanh": ops.tanh,
    "relu": ops.relu,
}
COMBINES = ("add", "max")


def reduced_width(channels, ratio=16, divisor=None, round_limit=0.0):
    """Width of the SE bottleneck for `channels` input channels.

    Args:
        channels: input channels C.
        ratio: reduction ratio r.
        divisor: None for the authors' rule `max(1, C // r)`; an integer to
            round `C / r` to the nearest multiple of it (MobileNetV3 and
            newer timm models), never below `divisor`.
        round_limit: with a divisor, add one more `divisor` when rounding
            went below `round_limit * C / r` (MobileNetV3 uses 0.9).

    Returns:
        The reduced width, an int.
    """
    if divisor is None:
        return max(1, int(channels // ratio))
    value = channels / ratio
    width = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if width < round_limit * value:
        width += divisor
    return width


def _standardize_data_format(data_format):
    data_format = data_format or keras.config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            "`data_format` must be 'channels_last' or 'channels_first'. "
            f"Received: data_format={data_format!r}"
        )
    return data_format


def _channel_axis(data_format, rank):
    return rank - 1 if data_format == "channels_last" else 1


def _check_choice(argument, value, choices):
    if value not in choices:
        raise ValueError(
            f"`{argument}` must be one of {sorted(choices)}. "
            f"Received: {argument}={value!r}"
        )


def _check_input(layer, input_shape):
    if len(input_shape) < 3:
        raise ValueError(
            f"{layer.__class__.__name__} expects a feature map of rank >= 3 "
            f"(batch, ..., channels). Received: input_shape={input_shape}"
        )
    channels = input_shape[_channel_axis(layer.data_format, len(input_shape))]
    if channels is None:
        raise ValueError(
            f"{layer.__class__.__name__} needs a known channel dimension. "
            f"Received: input_shape={input_shape}"
        )
    return channels


@keras.saving.register_keras_serializable(package="keras_senet")
class SqueezeExcite(keras.layers.Layer):
    """Channel Squeeze-and-Excitation.

    Squeeze: pool every channel over all spatial positions. Excite: two
    fully-connected layers (C -> C' -> C) with an activation between them and
    a gate after them. Scale: multiply the input by the gate, per channel.

    The two FC layers are `Dense` layers on the pooled vector; their kernels
    are the reference's 1x1 convolution weights transposed, one to one.

    Args:
        ratio: reduction ratio r (paper default 16); C' from `reduced_width`.
        divisor: None (default) for the authors' `C // r`, or round `C / r`
            to a multiple of `divisor`.
        round_limit: see `reduced_width`; only used with a divisor.
        reduced_channels: set C' directly; overrides `ratio`.
        squeeze: "avg" (paper), "max", or "avgmax" (mean of both).
        gate: "sigmoid" (paper), "hard_sigmoid", "tanh" or "relu".
        activation: activation between the FC layers (default "relu").
        use_bias: whether the FC layers have biases (default True).
        data_format: "channels_last" or "channels_first"; defaults to
            `keras.config.image_data_format()`.

    Example:
        >>> x = keras.Input((32, 32, 64))
        >>> y = SqueezeExcite(ratio=16)(x)   # 64 -> 4 -> 64
    """

    def __init__(
        self,
        ratio=16,
        divisor=None,
        round_limit=0.0,
        reduced_channels=None,
        squeeze="avg",
        gate="sigmoid",
        activation="relu",
        use_bias=True,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not ratio or ratio <= 0:
            raise ValueError(f"`ratio` must be positive. Received: ratio={ratio!r}")
        if divisor is not None and (int(divisor) != divisor or divisor < 1):
            raise ValueError(
                f"`divisor` must be None or a positive integer. Received: divisor={divisor!r}"
            )
        if reduced_channels is not None and (
            int(reduced_channels) != reduced_channels or reduced_channels < 1
        ):
            raise ValueError(
                "`reduced_channels` must be None or a positive integer. "
                f"Received: reduced_channels={reduced_channels!r}"
            )
        _check_choice("squeeze", squeeze, SQUEEZES)
        _check_choice("gate", gate, GATES)
        self.ratio = ratio
        self.divisor = divisor
        self.round_limit = round_limit
        self.reduced_channels = reduced_channels
        self.squeeze = squeeze
        self.gate = gate
        self.activation = activation
        self.use_bias = use_bias
        self.data_format = _standardize_data_format(data_format)
        self._activation_fn = keras.activations.get(activation)

    def build(self, input_shape):
        channels = _check_input(self, input_shape)
        width = self.reduced_channels or reduced_width(
            channels, self.ratio, self.divisor, self.round_limit
        )
        self.reduce = keras.layers.Dense(
            width, use_bias=self.use_bias, name="reduce", dtype=self.dtype_policy
        )
        self.expand = keras.layers.Dense(
            channels, use_bias=self.use_bias, name="expand", dtype=self.dtype_policy
        )
        self.reduce.build((None, channels))
        self.expand.build((None, width))

    def call(self, inputs):
        return self.scale(inputs, self.excite(self.squeeze_inputs(inputs)))

    # The three steps are separate methods so that benchmarks/se_cost.py can
    # time each one on the shapes a network gives them.
    def squeeze_inputs(self, inputs):
        """Squeeze: (batch, ..., C) -> (batch, C), pooled over all positions."""
        rank = len(inputs.shape)
        channel_axis = _channel_axis(self.data_format, rank)
        spatial = [a for a in range(1, rank) if a != channel_axis]
        if self.squeeze == "avg":
            # One Mean over all spatial axes. Averaging one axis at a time is
            # up to 1.7x faster for the SE layers alone on TensorFlow at batch
            # 32, but made no difference inside the networks (+-3%, not
            # faster at batch 1: benchmarks/se_cost.py --compare-squeeze).
            return ops.mean(inputs, axis=spatial)
        if self.squeeze == "max":
            return ops.max(inputs, axis=spatial)
        return 0.5 * (ops.mean(inputs, axis=spatial) + ops.max(inputs, axis=spatial))

    def excite(self, s):
        """Excitation: (batch, C) -> gates (batch, C), the two FC layers."""
        return GATES[self.gate](self.expand(self._activation_fn(self.reduce(s))))

    def scale(self, inputs, gates):
        """Scale: the input times its (batch, C) gates, per channel."""
        rank = len(inputs.shape)
        channel_axis = _channel_axis(self.data_format, rank)
        # Back to rank `rank` for broadcasting, in one reshape: LiteRT's
        # XNNPACK delegate takes RESHAPE but not EXPAND_DIMS, which would
        # split the graph at every SE block.
        shape = [1] * rank
        shape[0], shape[channel_axis] = -1, gates.shape[-1]
        return inputs * ops.reshape(gates, shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def count_macs(self, input_shape):
        """Multiply-accumulates of the two FC layers for one example."""
        return 2 * int(self.reduce.kernel.shape[0]) * int(self.reduce.kernel.shape[1])

    def get_config(self):
        config = super().get_config()
        config.update(
            ratio=self.ratio,
            divisor=self.divisor,
            round_limit=self.round_limit,
            reduced_channels=self.reduced_channels,
            squeeze=self.squeeze,
            gate=self.gate,
            activation=self.activation,
            use_bias=self.use_bias,
            data_format=self.data_format,
        )
        return config


@keras.saving.register_keras_serializable(package="keras_senet")
class SpatialSqueezeExcite(keras.layers.Layer):
    """Spatial squeeze, channel excitation (sSE, Roy et al. 2018).

    A 1x1 convolution to one channel (with bias), a sigmoid, and the input
    multiplied by that map at every position.

    Args:
        data_format: "channels_last" or "channels_first"; defaults to
            `keras.config.image_data_format()`.

    Example:
        >>> y = SpatialSqueezeExcite()(keras.Input((32, 32, 64)))
    """

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _standardize_data_format(data_format)

    def build(self, input_shape):
        channels = _check_input(self, input_shape)
        # A 1x1 conv to one channel is a dot product over the channel axis.
        self.kernel = self.add_weight(
            name="kernel", shape=(channels, 1), initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="bias", shape=(1,), initializer="zeros")

    def call(self, inputs):
        channel_axis = _channel_axis(self.data_format, len(inputs.shape))
        kernel = ops.cast(self.kernel[:, 0], inputs.dtype)
        q = ops.tensordot(inputs, kernel, axes=[[channel_axis], [0]])
        q = ops.sigmoid(ops.expand_dims(q, channel_axis) + ops.cast(self.bias, inputs.dtype))
        return inputs * q

    def compute_output_shape(self, input_shape):
        return input_shape

    def count_macs(self, input_shape):
        positions = 1
        for d in input_shape[1:]:
            positions *= int(d)
        return positions  # one MAC per input element

    def get_config(self):
        config = super().get_config()
        config.update(data_format=self.data_format)
        return config


@keras.saving.register_keras_serializable(package="keras_senet")
class ChannelSpatialSqueezeExcite(SqueezeExcite):
    """Concurrent channel and spatial SE (scSE, Roy et al. 2018).

    `combine="add"`: cSE(x) + sSE(x) (the paper's default); `"max"`: their
    element-wise maximum. The channel part is this layer's `SqueezeExcite`;
    the spatial part is a `SpatialSqueezeExcite` sub-layer named "sse".

    Args:
        combine: "add" or "max".
        **kwargs: the `SqueezeExcite` options (ratio, gate, ...).

    Example:
        >>> y = ChannelSpatialSqueezeExcite(ratio=8)(keras.Input((32, 32, 64)))
    """

    def __init__(self, *args, combine="add", **kwargs):
        super().__init__(*args, **kwargs)
        _check_choice("combine", combine, COMBINES)
        self.combine = combine

    def build(self, input_shape):
        super().build(input_shape)
        self.sse = SpatialSqueezeExcite(
            data_format=self.data_format, name="sse", dtype=self.dtype_policy
        )
        self.sse.build(input_shape)

    def call(self, inputs):
        c, s = super().call(inputs), self.sse(inputs)
        return c + s if self.combine == "add" else ops.maximum(c, s)

    def count_macs(self, input_shape):
        return super().count_macs(input_shape) + self.sse.count_macs(input_shape)

    def get_config(self):
        return {**super().get_config(), "combine": self.combine}


SE_LAYERS = {
    "se": SqueezeExcite,
    "sse": SpatialSqueezeExcite,
    "scse": ChannelSpatialSqueezeExcite,
}


def get_se_layer(kind, **options):
    """Factory: `kind` is "se", "sse", "scse", or a layer class/callable.

    Returns a function `make(name, **per_block_options) -> layer` used by
    the model builders.
    """
    if callable(kind):
        factory = kind
    elif kind in SE_LAYERS:
        factory = SE_LAYERS[kind]
    else:
        raise ValueError(
            f"`se_layer` must be one of {sorted(SE_LAYERS)} or a callable that "
            f"returns a layer. Received: se_layer={kind!r}"
        )
    def make(name, **per_block):
        merged = {**options, **per_block}
        if factory is SpatialSqueezeExcite:  # it has no width options
            merged = {k: v for k, v in merged.items() if k == "data_format"}
        return factory(name=name, **merged)

    return make
