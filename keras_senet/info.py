"""Model facts users check: parameters and multiply-accumulates.

Multiply-accumulates (MACs) count convolutions and fully-connected layers,
the convention of the paper's GFLOPs column (Table 2) and of most model
zoos; BatchNorm, activations, pooling and additions are not counted.
"""

import dataclasses

import keras
import numpy as np


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    name: str
    input_shape: tuple
    params: int
    keras_params: int
    trainable_params: int
    macs: int

    def __str__(self):
        return (
            f"{self.name}: {self.params:,} parameters "
            f"({self.keras_params:,} with BatchNorm statistics), "
            f"{self.macs / 1e9:.3f} G multiply-accumulates at {self.input_shape}"
        )


def _layer_macs(layer, in_shape, out_shape):
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw, cin, mult = layer.kernel.shape
        return int(np.prod(out_shape[1:-1] if _last(layer) else out_shape[2:])) * kh * kw * cin * mult
    if isinstance(layer, keras.layers.SeparableConv2D):
        kh, kw, cin, mult = layer.depthwise_kernel.shape
        spatial = int(np.prod(out_shape[1:-1] if _last(layer) else out_shape[2:]))
        return spatial * (kh * kw * cin * mult + int(np.prod(layer.pointwise_kernel.shape)))
    if isinstance(layer, keras.layers.Conv2D):
        spatial = int(np.prod(out_shape[1:-1] if _last(layer) else out_shape[2:]))
        return spatial * int(np.prod(layer.kernel.shape))  # kernel is (kh, kw, cin/groups, cout)
    if isinstance(layer, keras.layers.Dense):
        return int(np.prod(out_shape[1:-1])) * int(np.prod(layer.kernel.shape))
    if hasattr(layer, "count_macs"):
        return int(layer.count_macs(in_shape))
    return 0


def _last(layer):
    return layer.data_format == "channels_last"


def own_nodes(model):
    """The calls of layers that belong to `model`'s graph (a layer shared
    with another model has that model's calls too)."""
    graph = getattr(model, "_functional", None) or model  # Sequential keeps one inside
    return {id(n) for nodes in getattr(graph, "_nodes_by_depth", {}).values() for n in nodes}


def _count(model):
    total = 0
    own = own_nodes(model)
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += _count(layer)
            continue
        for node in layer._inbound_nodes:
            if own and id(node) not in own:
                continue
            ins = node.input_tensors
            outs = node.output_tensors
            if not ins or not outs:
                continue
            in_shape, out_shape = tuple(ins[0].shape), tuple(outs[0].shape)
            if None in in_shape[1:] or None in out_shape[1:]:
                raise ValueError(
                    f"Layer {layer.name!r} has an unknown spatial size; pass "
                    "`input_shape` to model_info to count multiply-accumulates."
                )
            total += _layer_macs(layer, in_shape, out_shape)
    return total


def _bn_statistics(model):
    """Number of BatchNorm moving means/variances (state, not parameters)."""
    total = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            total += int(np.prod(layer.moving_mean.shape)) + int(np.prod(layer.moving_variance.shape))
    return total


def model_info(model, input_shape=None):
    """Parameter count and multiply-accumulates of `model` for one example.

    Args:
        model: a functional `keras.Model`.
        input_shape: e.g. (224, 224, 3), to count at another input size than
            the model's own (needed when the model's size is undefined).

    Returns:
        A `ModelInfo`: name, input_shape, params (learned parameters, as
        PyTorch and the paper count them), keras_params (`count_params()`,
        which adds BatchNorm moving statistics), trainable_params, macs.

    Example:
        >>> print(keras_senet.model_info(keras_senet.SEResNet50(weights=None)))
        se_resnet50: 28,088,024 parameters (...), 4.09 G multiply-accumulates ...
    """
    counted = model
    if input_shape is not None and tuple(input_shape) != tuple(model.input_shape[1:]):
        counted = keras.models.clone_model(model, input_tensors=keras.Input(shape=tuple(input_shape)))
    return ModelInfo(
        name=model.name,
        input_shape=tuple(counted.input_shape[1:]),
        params=int(model.count_params()) - _bn_statistics(model),
        keras_params=int(model.count_params()),
        trainable_params=int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        macs=_count(counted),
    )
