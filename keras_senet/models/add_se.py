"""Insert Squeeze-and-Excitation blocks into an existing Keras model.

The paper's integration rules (Hu et al., TPAMI 2019, Sec. 4 and Fig. 2-3,
placements of Table 14 / Fig. 5):

- Residual blocks: SE on the residual branch, before the merge with the
  shortcut ("standard"); or at the start of the residual branch ("pre"),
  after the merge and the activation that follows it ("post"), or on the
  shortcut ("identity").
- Non-residual multi-branch modules (Inception): SE on the concatenated
  output of the module.
- Dense connections (DenseNet, `concat([x, f(x)])`): SE on the new features
  f(x), the dense analogue of the residual branch.
- Anything else: after the layers chosen by name or predicate (`after=`).

The model is rebuilt with `keras.models.clone_model` (its `call_function`
inserts the SE layers); every existing layer keeps its name and weights.
"""

import keras

from keras_senet.info import own_nodes
from keras_senet.layers.squeeze_excite import get_se_layer

PLACEMENTS = ("standard", "pre", "post", "identity")
# Merge layers that are not residual sums even with equal input shapes.
_NOT_RESIDUAL = ("Multiply", "Subtract", "Maximum", "Minimum", "Dot", "Concatenate")


class _Graph:
    """Producer/consumer links of a functional model, by layer name."""

    def __init__(self, model):
        own = own_nodes(model)
        self.layers = {}
        self.parents = {}  # name -> producer names, in argument order
        self.children = {}
        for layer in model.operations:
            nodes = [n for n in layer._inbound_nodes if id(n) in own]
            if len(nodes) > 1:
                raise ValueError(
                    f"add_squeeze_excite: layer {layer.name!r} is called {len(nodes)} times in model "
                    f"{model.name!r}. SE cannot be inserted into a model that reuses a layer (its call "
                    "sites share weights, so one SE placement cannot be told apart from another); "
                    "rebuild the model with one layer per call."
                )
            self.layers[layer.name] = layer
            self.parents[layer.name] = [
                t._keras_history.operation.name for t in (nodes[0].input_tensors if nodes else [])
            ]
            self.children.setdefault(layer.name, [])
            for parent in self.parents[layer.name]:
                self.children.setdefault(parent, []).append(layer.name)
        self._ancestors = {}

    def ancestors(self, name):
        """All layers that `name` depends on, itself included."""
        if name not in self._ancestors:
            result = {name}
            stack = list(self.parents[name])
            while stack:
                parent = stack.pop()
                if parent in result:
                    continue
                if parent in self._ancestors:
                    result |= self._ancestors[parent]
                else:
                    result.add(parent)
                    stack.extend(self.parents[parent])
            self._ancestors[name] = result
        return self._ancestors[name]

    def shape(self, name):
        return tuple(self.layers[name].output.shape)


def _is_residual_merge(graph, name):
    layer = graph.layers[name]
    parents = graph.parents[name]
    if len(parents) != 2 or len(set(parents)) != 2:
        return False
    if isinstance(layer, keras.layers.Add):
        return True
    # Custom sums such as InceptionResNetV2's CustomScaleLayer: two inputs
    # and an output of one shape.
    if type(layer).__name__ in _NOT_RESIDUAL:
        return False
    try:
        shapes = {graph.shape(p) for p in parents} | {graph.shape(name)}
    except (AttributeError, ValueError):
        return False
    return len(shapes) == 1


def _find_sites(graph):
    """Residual merges, dense concatenations and multi-branch modules.

    Returns a list of (kind, layer name, input index or None); input index
    is the residual branch / new-features input of the merge.
    """
    sites = []
    branch_layers = set()  # layers inside some residual branch
    for name in graph.layers:
        if not _is_residual_merge(graph, name):
            continue
        a, b = graph.parents[name]
        only_a = graph.ancestors(a) - graph.ancestors(b)
        only_b = graph.ancestors(b) - graph.ancestors(a)
        residual = 0 if len(only_a) >= len(only_b) else 1
        branch_layers |= only_a if residual == 0 else only_b
        sites.append(("residual", name, residual))
    for name, layer in graph.layers.items():
        if not isinstance(layer, keras.layers.Concatenate) or name in branch_layers:
            continue
        parents = graph.parents[name]
        old = [i for i, p in enumerate(parents) if all(p in graph.ancestors(q) for q in parents if q != p)]
        if len(parents) == 2 and len(old) == 1:
            sites.append(("dense", name, 1 - old[0]))
        elif not graph.children[name] or not all(
            isinstance(graph.layers[c], keras.layers.Concatenate) for c in graph.children[name]
        ):
            sites.append(("module", name, None))  # else: part of an enclosing module
    order = {name: i for i, name in enumerate(graph.layers)}
    return sorted(sites, key=lambda site: order[site[1]])


def _names(after):
    return [after] if isinstance(after, str) else list(after)


def _plan(graph, placement, after):
    """What to insert where: {layer name: [(where, input index or None, site)]},
    where is "input" or "output" and site names the SE layer."""
    if after is not None:
        if callable(after):
            names = [n for n, layer in graph.layers.items() if after(layer)]
        else:
            names = [n for n in _names(after) if n in graph.layers]
        return {n: [("output", None, n)] for n in names}
    sites = _find_sites(graph)
    plan = {}

    def at(layer, where, index, site):
        plan.setdefault(layer, []).append((where, index, site))

    for kind, name, index in sites:
        if kind == "module":
            at(name, "output", None, name)
        elif kind == "dense" or placement == "standard":
            at(name, "input", index, name)
        elif placement == "identity":
            at(name, "input", 1 - index, name)
        elif placement == "post":
            children = graph.children[name]
            follow = children[0] if len(children) == 1 and _is_activation(graph.layers[children[0]]) else name
            at(follow, "output", None, name)
        else:  # pre: on the block input, where the residual branch reads it
            residual, shortcut = graph.parents[name][index], graph.parents[name][1 - index]
            branch = graph.ancestors(residual) - graph.ancestors(shortcut)
            for layer in branch:
                for i, parent in enumerate(graph.parents[layer]):
                    if parent not in branch:
                        at(layer, "input", i, name)
    return plan


def _is_activation(layer):
    return isinstance(layer, (keras.layers.Activation, keras.layers.ReLU))


def _copy_layer(layer):
    return layer.__class__.from_config(layer.get_config())


def add_squeeze_excite(
    model, *, placement="standard", after=None, se_layer="se", name=None, reuse_layers=False, **se_options
):
    """A copy of `model` with Squeeze-and-Excitation blocks inserted.

    Args:
        model: a functional or Sequential Keras model (e.g. any
            keras.applications model). Nested functional models are rewritten
            too. Subclassed models and models that call one layer in several
            places are refused.
        placement: for residual blocks: "standard" (SE on the residual branch
            before the sum; the paper's choice), "pre" (at the start of the
            residual branch), "post" (after the sum and its activation) or
            "identity" (on the shortcut). Multi-branch modules always get SE
            on their concatenated output, dense connections on the new
            features.
        after: instead of the automatic rules, put SE after these layers:
            a name, a list of names, or a predicate `fn(layer) -> bool`.
        se_layer: "se" (default), "sse", "scse", or a callable
            `fn(name=..., **se_options)` returning a layer.
        name: the new model's name (default "se_<model name>").
        reuse_layers: False (default) gives the new model copies of the
            layers; True builds it from `model`'s own layer objects, which
            then share their weights between both models: faster, and no
            second copy of the weights when `model` will not be used again.
        **se_options: passed to the SE layer (ratio, gate, squeeze, ...).

    Returns:
        A new functional model; every layer of `model`
        keeps its name and weights. SE layers are named "<site>_se" after the
        layer whose input or output they act on.

    Example:
        >>> base = keras.applications.ResNet50(weights=None)
        >>> model = keras_senet.add_squeeze_excite(base, ratio=16)
    """
    if placement not in PLACEMENTS:
        raise ValueError(f"`placement` must be one of {PLACEMENTS}. Received: placement={placement!r}")
    if after is not None and not (callable(after) or isinstance(after, (str, list, tuple))):
        raise ValueError(f"`after` must be a layer name, a list of names or a predicate. Received: after={after!r}")
    make_se = get_se_layer(se_layer, **se_options)
    if after is not None and not callable(after):
        known = {layer.name for layer in model._flatten_layers(include_self=False)}
        missing = [n for n in _names(after) if n not in known]
        if missing:
            raise ValueError(
                f"add_squeeze_excite: `after` names layers that model {model.name!r} does not have: "
                f"{missing}. Received: after={after!r}"
            )
    inserted = []
    rewritten = _rewrite(model, placement, after, make_se, inserted, reuse_layers, name=name)
    if not inserted:
        if after is not None:
            raise ValueError(f"add_squeeze_excite: `after` selects no layer of model {model.name!r}.")
        raise ValueError(
            f"add_squeeze_excite: model {model.name!r} has no residual merge, dense concatenation or "
            "multi-branch module for the automatic rules. Say where SE goes with `after=` (layer names or "
            "a predicate), e.g. after=lambda layer: layer.name.endswith('_pool')."
        )
    return rewritten


def _as_functional(model):
    if isinstance(model, keras.Sequential):
        if not model.built or not getattr(model, "_functional", None):
            raise ValueError(
                f"add_squeeze_excite: Sequential model {model.name!r} has no input yet; start it with "
                "keras.Input(shape) or build it first."
            )
        return keras.Model(model.inputs, model.outputs, name=model.name)
    from keras.src.models.functional import Functional

    if isinstance(model, Functional):
        return model
    raise ValueError(
        f"add_squeeze_excite: model {model.name!r} is a subclassed {type(model).__name__}; its call() "
        "is Python code with no layer graph to rewrite. Build it with the functional API (as "
        "keras.applications does), or add SE layers inside its call()."
    )


def _rewrite(model, placement, after, make_se, inserted, reuse, name=None):
    functional = _as_functional(model)
    graph = _Graph(functional)
    plan = _plan(graph, placement, after)
    taken = set(graph.layers)
    made = {}  # (site, id of the tensor it scales) -> SE output: one SE per site

    def se(site, tensor):
        key = (site, id(tensor))
        if key not in made:
            name = f"{site}_se"
            if name in taken:
                raise ValueError(f"add_squeeze_excite: model {model.name!r} already has a layer named {name!r}.")
            taken.add(name)
            made[key] = make_se(name)(tensor)
            inserted.append(name)
        return made[key]

    def clone(layer):
        if isinstance(layer, keras.Model):
            # e.g. a backbone in a classifier; it keeps its name
            return _rewrite(layer, placement, after, make_se, inserted, reuse, name=layer.name)
        return layer if reuse else _copy_layer(layer)

    def call(layer, *args, **kwargs):
        edits = plan.get(layer.name, [])
        inputs = {i: site for where, i, site in edits if where == "input"}
        if inputs:
            first, *rest = args
            if isinstance(first, (list, tuple)):
                first = [se(inputs[i], t) if i in inputs else t for i, t in enumerate(first)]
            else:
                first = se(inputs[0], first)
            args = (first, *rest)
        output = layer(*args, **kwargs)
        for where, _, site in edits:
            if where == "output":
                output = se(site, output)
        return output

    # New inputs under the old names (clone_model would rename them).
    inputs = [
        keras.Input(batch_shape=t.shape, dtype=t.dtype, name=t._keras_history.operation.name)
        for t in functional.inputs
    ]
    inputs = keras.tree.pack_sequence_as(functional.input, inputs)
    rewritten = keras.models.clone_model(
        functional, input_tensors=inputs, clone_function=clone, call_function=call
    )
    for layer_name, layer in graph.layers.items():
        if not reuse and not isinstance(layer, (keras.Model, keras.layers.InputLayer)):
            rewritten.get_layer(layer_name).set_weights(layer.get_weights())
    return keras.Model(rewritten.input, rewritten.output, name=name or f"se_{model.name}")
