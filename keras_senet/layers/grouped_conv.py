"""Grouped 2-D convolution computed as one convolution per group.

Same weights as `keras.layers.Conv2D(groups=g)` (kernel (kh, kw, in/g, out),
groups contiguous, as in PyTorch), different kernel: on TensorFlow, Keras
runs a grouped conv through an XLA-compiled function on CPU, which is slow
there and which tf2onnx cannot export (a StatefulPartitionedCall node).
Splitting into g plain convolutions and concatenating runs everywhere,
converts to TFLite and ONNX, and measured about 3x faster on this CPU
(`python benchmarks/run.py`, "grouped 3x3 conv"). JAX and PyTorch have
native grouped convolutions, so on those backends the layer is plain Conv2D.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_senet")
class GroupedConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` with `groups > 1` evaluated group by group.

    Takes exactly the `Conv2D` arguments; the kernel layout is unchanged, so
    weights move between the two layers with `set_weights(get_weights())`.

    Example:
        >>> y = GroupedConv2D(128, 3, padding="same", groups=32)(x)
    """

    def convolution_op(self, inputs, kernel):
        if self.groups == 1 or keras.backend.backend() != "tensorflow":
            return super().convolution_op(inputs, kernel)
        axis = -1 if self.data_format == "channels_last" else 1
        inputs = ops.split(inputs, self.groups, axis=axis)
        kernels = ops.split(kernel, self.groups, axis=-1)
        outputs = [
            ops.conv(x, k, strides=list(self.strides), padding=self.padding,
                     dilation_rate=self.dilation_rate, data_format=self.data_format)
            for x, k in zip(inputs, kernels)
        ]
        return ops.concatenate(outputs, axis=axis)
