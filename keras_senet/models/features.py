"""Multi-scale features: the stage outputs of a network by stride, for
detection and segmentation heads (FPN, U-Net, DeepLab).

Level `"P<k>"` is the output of the last stage whose stride is 2**k, the
convention of keras-hub's `Backbone.pyramid_outputs` and of timm's
`features_only=True` (whose outputs these equal, tested for every timm
architecture here): SE-ResNet/ResNeXt/-D and SENet-154 give P1 (the stem,
before its max-pool) to P5 (the last block); SE-MobileNetV3 gives P1 to P5 with
P5 the final 1x1 conv, as timm does.

One rule serves every family, including keras.applications networks with SE
added (`add_squeeze_excite`), because it reads only the layer graph:

- a candidate is a layer that every path from the input to the output goes
  through (a block boundary: inside a residual block the shortcut bypasses
  each layer), with a 4-D spatial output, not a padding layer;
- its stride is the product of the strides of the layers on its path;
- a layer of a block that downsamples later (e.g. the expansion 1x1 conv of
  an inverted-residual block whose depthwise conv has stride 2) is not the
  end of its stage: blocks are recognised by the standard names,
  `conv<stage>_block<i>` (ResNet, DenseNet), `pool<i>` (DenseNet's
  transitions), `stage<s>_block<i>` (SE-MobileNetV3), `block_<i>`
  (MobileNetV2);
- P<k> is the last candidate with stride 2**k.
"""

import re

import keras
from keras.src.ops.function import make_node_key

LEVELS = ("P1", "P2", "P3", "P4", "P5")
_BLOCK = re.compile(r"^(conv\d+_block\d+|stage\d+_block\d+|block_\d+|pool\d+)_")
_GLOBAL = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)


def _node(model, layer):
    """The call of `layer` that belongs to `model`'s graph: a layer reused
    from another model (add_squeeze_excite keeps the original layers) was
    also called in that model's graph."""
    nodes = [n for i, n in enumerate(layer._inbound_nodes) if make_node_key(layer, i) in model._nodes]
    if len(nodes) != 1:
        raise ValueError(f"Layer {layer.name!r} is called {len(nodes)} times in {model.name}: no single feature map")
    return nodes[0]


def _graph(model):
    """(layers in topological order, parents of each layer by name)."""
    parents = {layer.name: {p.operation.name for p in _node(model, layer).parent_nodes} for layer in model.layers}
    order, done = [], set()
    pending = list(model.layers)
    while pending:  # model.layers is already in order for functional models; this checks it
        ready = [layer for layer in pending if parents[layer.name] <= done]
        if not ready:
            raise ValueError(f"{model.name}: the layer graph has a cycle or a layer used twice")
        for layer in ready:
            order.append(layer)
            done.add(layer.name)
        pending = [layer for layer in pending if layer.name not in done]
    return order, parents


def _stride(layer):
    strides = getattr(layer, "strides", 1)
    strides = strides if isinstance(strides, (tuple, list)) else (strides, strides)
    if len(set(strides)) != 1:
        raise ValueError(f"Layer {layer.name!r} has unequal strides {strides}: no single stride per level")
    return int(strides[0])


def pyramid_layers(model):
    """The name of the layer that gives each feature level of `model`.

    Args:
        model: a functional Keras model of this package (or any functional
            image model whose stages follow the rule in the module docstring),
            with or without its classifier.

    Returns:
        A dict {"P1": layer name, ..., "P5": ...} with the levels the model has
        (stride 2**k for "P<k>"), in order.

    Raises:
        ValueError: if the model is not a functional model with 4-D image
            features.
    """
    if not isinstance(model, keras.Model) or not getattr(model, "_functional", None) and not hasattr(
        model, "_operations"
    ):
        raise ValueError(f"Expected a functional keras.Model. Received: model={model!r}")
    order, parents = _graph(model)
    index = {layer.name: i for i, layer in enumerate(order)}
    # A layer is on every input-output path iff no edge jumps over it in
    # topological order (every layer here lies on some such path).
    crossed = [0] * (len(order) + 1)
    for layer in order:
        for parent in parents[layer.name]:
            if index[layer.name] - index[parent] > 1:
                crossed[index[parent] + 1] += 1
                crossed[index[layer.name]] -= 1
    stride, spatial, candidates, running = {}, {}, [], 0
    for i, layer in enumerate(order):
        running += crossed[i]
        ins = parents[layer.name]
        stride[layer.name] = max((stride[p] for p in ins), default=1) * _stride(layer)
        spatial[layer.name] = all(spatial[p] for p in ins) and not isinstance(layer, _GLOBAL)
        shape = _node(model, layer).output_tensors[0].shape
        if running == 0 and spatial[layer.name] and len(shape) == 4 and not isinstance(
            layer, keras.layers.ZeroPadding2D
        ):
            candidates.append(layer.name)
    # the stride a block ends at: its layers before a later downsampling are not stage ends
    block_stride = {}
    for layer in order:
        block = _BLOCK.match(layer.name)
        if block and spatial[layer.name]:
            block_stride[block.group(1)] = max(block_stride.get(block.group(1), 1), stride[layer.name])
    levels = {}
    for name in candidates:
        block = _BLOCK.match(name)
        if block and block_stride[block.group(1)] > stride[name]:
            continue
        k = stride[name].bit_length() - 1
        if 2**k == stride[name] and 1 <= k <= len(LEVELS):
            levels[f"P{k}"] = name  # the last one wins
    if not levels:
        raise ValueError(f"{model.name}: found no 4-D feature maps to take levels from")
    return {level: levels[level] for level in LEVELS if level in levels}


def pyramid_outputs(model):
    """{"P1": tensor, ...}: the symbolic outputs of `pyramid_layers(model)`,
    as keras-hub backbones expose them (`Backbone.pyramid_outputs`)."""
    return {level: _node(model, model.get_layer(name)).output_tensors[0] for level, name in pyramid_layers(model).items()}


def feature_extractor(model, levels=None, **kwargs):
    """A model that returns the feature maps of `model` by stride.

    Args:
        model: a Keras model, or the name of a constructor in
            `keras_senet.MODELS` (e.g. "SEResNeXt50"), built with
            `include_top=False`, `input_shape=(None, None, 3)` (any input
            size; channels first if Keras is set so) unless `kwargs` say
            otherwise, and `weights=None` unless given (a preset name,
            "imagenet" or a file: see the constructor).
        levels: the levels to return, e.g. ("P3", "P4", "P5"); default: all
            the model has.
        **kwargs: constructor arguments, only with a name.

    Returns:
        A functional keras.Model from the model's input to a dict
        {level: feature map}, sharing the model's layers and weights. Map
        "P<k>" has stride 2**k: (batch, about H / 2**k, about W / 2**k,
        channels), rounded as the network's padding and pooling round
        (exactly H / 2**k when H is a multiple of 32).

    Raises:
        ValueError: unknown model name, kwargs with a model instance, or a
            level the model does not have.

    Example:
        >>> extractor = keras_senet.feature_extractor("SEResNet50", levels=("P3", "P4", "P5"))
        >>> {k: v.shape for k, v in extractor(np.zeros((1, 256, 320, 3))).items()}
        {'P3': (1, 32, 40, 512), 'P4': (1, 16, 20, 1024), 'P5': (1, 8, 10, 2048)}
    """
    if isinstance(model, str):
        from keras_senet import MODELS

        if model not in MODELS:
            raise ValueError(f"Unknown model name {model!r}; choose from {', '.join(sorted(MODELS))}")
        shape = (3, None, None) if keras.config.image_data_format() == "channels_first" else (None, None, 3)
        kwargs = {"include_top": False, "input_shape": shape, "weights": None, **kwargs}
        model = MODELS[model](**kwargs)
    elif kwargs:
        raise ValueError(f"Constructor arguments go with a model name, not a model. Received: {sorted(kwargs)}")
    layers = pyramid_layers(model)
    if levels is not None:
        unknown = [level for level in levels if level not in layers]
        if unknown:
            raise ValueError(f"{model.name} has no level {', '.join(unknown)}; it has {', '.join(layers)}. "
                             f"Received: levels={tuple(levels)!r}")
        layers = {level: layers[level] for level in levels}
    outputs = {level: _node(model, model.get_layer(name)).output_tensors[0] for level, name in layers.items()}
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, outputs, name=f"{model.name}_features")
