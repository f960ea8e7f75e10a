"""add_squeeze_excite on the keras.applications models, its placements and
its refusals."""

import keras
import numpy as np
import pytest

from harness import RUN_EAGERLY, assert_keras_round_trip, forward

import keras_senet

A = keras.applications


def _pw_relu(layer):
    return layer.name.startswith("conv_pw_") and layer.name.endswith("_relu")


def _vgg_pool(layer):
    return layer.name.endswith("_pool")


# name -> (constructor, input size, SE blocks expected, `after`): one per
# residual block, Inception module or dense layer; after each depthwise-
# separable block (MobileNet) or conv block (VGG16) where there are none.
CASES = {
    "ResNet50": (A.ResNet50, 32, 16, None),
    "ResNet101": (A.ResNet101, 32, 33, None),
    "ResNet152": (A.ResNet152, 32, 50, None),
    "ResNet50V2": (A.ResNet50V2, 32, 16, None),
    "ResNet101V2": (A.ResNet101V2, 32, 33, None),
    "ResNet152V2": (A.ResNet152V2, 32, 50, None),
    "InceptionV3": (A.InceptionV3, 75, 11, None),  # mixed0 .. mixed10
    "InceptionResNetV2": (A.InceptionResNetV2, 75, 43, None),  # 10 + 20 + 10 residual, 3 reduction modules
    "DenseNet121": (A.DenseNet121, 32, 58, None),  # 6 + 12 + 24 + 16 dense layers
    "DenseNet169": (A.DenseNet169, 32, 82, None),
    "DenseNet201": (A.DenseNet201, 32, 98, None),
    "MobileNet": (A.MobileNet, 32, 13, _pw_relu),
    "MobileNetV2": (A.MobileNetV2, 32, 10, None),  # blocks with a residual sum
    "EfficientNetB0": (A.EfficientNetB0, 32, 9, None),
    "VGG16": (A.VGG16, 32, 5, _vgg_pool),
}


def se_layers(model):
    return [layer for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, keras_senet.SqueezeExcite)]


def producers(model, name):
    node = model.get_layer(name)._inbound_nodes[0]
    return [t._keras_history.operation.name for t in node.input_tensors]


def consumers(model, name):
    return [layer.name for layer in model.layers
            if layer._inbound_nodes and name in producers(model, layer.name)]


# A residual network trains on every backend; the others on JAX and torch only
# with KERAS_SENET_ALL_MODELS=1 (CI time: JAX compiles each training step for
# 15 s (VGG16) to a minute (DenseNet-121); the SE layer itself trains on every
# backend in tests/layers), on TensorFlow always. The structure tests below
# check the Inception and dense sites' wiring.
REPRESENTATIVE = {"ResNet50"}
# Deeper rows of a family: the same sites as the row above them, which trains;
# for these the SE count and the copied weights are checked.
DEEPER = {"ResNet101", "ResNet152", "ResNet101V2", "ResNet152V2", "DenseNet169", "DenseNet201"}


def converted(name):
    """`add_squeeze_excite` on keras.applications' `name`: one SE per site,
    every original layer there under its name with its weights. Returns the
    new model, the input size and the original model."""
    constructor, size, expected, after = CASES[name]
    base = constructor(weights=None, include_top=False, input_shape=(size, size, 3))
    model = keras_senet.add_squeeze_excite(base, after=after)
    assert model.name == f"se_{base.name}"
    assert len(se_layers(model)) == expected
    for layer in base.layers:
        for old, new in zip(layer.get_weights(), model.get_layer(layer.name).get_weights(), strict=True):
            np.testing.assert_array_equal(old, new)
    assert len(model.layers) == len(base.layers) + expected
    return model, size, base


def open_every_gate(model):
    """Make every SE layer of `model` pass its input through unchanged: a zero
    expand kernel and a bias of 20 give the sigmoid gate 1 - 2e-9, which
    float32 rounds to exactly 1.0 (its nearest value below 1 is 1 - 6e-8),
    and x * 1.0 is x."""
    for layer in se_layers(model):
        assert layer.gate == "sigmoid"
        kernel, bias = layer.expand.get_weights()
        layer.expand.set_weights([np.zeros_like(kernel), np.full_like(bias, 20.0)])


@pytest.mark.parametrize("name", [n if n in REPRESENTATIVE else pytest.param(n, marks=pytest.mark.sibling)
                                  for n in CASES if n not in DEEPER])
def test_keras_applications_model(name, tmp_path):
    model, size, base = converted(name)
    x = np.random.default_rng(0).uniform(-1, 1, (2, size, size, 3)).astype("float32")
    # The original model is the independent reference: with every SE gate
    # open, the SE model must compute what it computes (exactly, on
    # TensorFlow); with the gates as initialized (about 0.5), it must not
    # (else the SE layers would not be on the path to the output). Bounds are
    # relative to the output's size: untrained, some of these networks end in
    # values of 1e-21 (MobileNet) to 1e-9 (EfficientNetB0).
    expected = forward(base, x)
    scale = np.abs(expected).max()
    assert scale > 0
    assert np.abs(forward(model, x) - expected).max() > 1e-3 * scale
    open_every_gate(model)
    np.testing.assert_allclose(forward(model, x), expected, rtol=0, atol=1e-6 * scale)
    model.compile(optimizer="sgd", loss="mse", run_eagerly=RUN_EAGERLY)
    loss = model.train_on_batch(x, np.zeros((2,) + model.output_shape[1:], "float32"))
    assert np.isfinite(loss)
    assert_keras_round_trip(model, x, tmp_path)


@pytest.mark.structure
@pytest.mark.parametrize("name", sorted(DEEPER))
def test_deeper_rows(name):
    converted(name)


@pytest.mark.structure
def test_se_sits_on_the_residual_branch_before_the_sum():
    base = A.ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3))
    model = keras_senet.add_squeeze_excite(base)
    # conv2_block1: shortcut conv2_block1_0_bn, residual conv2_block1_3_bn.
    assert producers(model, "conv2_block1_add_se") == ["conv2_block1_3_bn"]
    assert producers(model, "conv2_block1_add") == ["conv2_block1_0_bn", "conv2_block1_add_se"]
    assert producers(model, "conv2_block2_add") == ["conv2_block1_out", "conv2_block2_add_se"]


@pytest.mark.structure
@pytest.mark.parametrize(
    "placement, source, users",
    [
        ("pre", ["pool1_pool"], ["conv2_block1_1_conv"]),  # the shortcut still reads the unscaled input
        ("post", ["conv2_block1_out"], ["conv2_block2_1_conv", "conv2_block2_add"]),  # after sum and ReLU
        ("identity", ["conv2_block1_0_bn"], ["conv2_block1_add"]),
    ],
)
def test_placements(placement, source, users):
    base = A.ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3))
    model = keras_senet.add_squeeze_excite(base, placement=placement)
    assert len(se_layers(model)) == 16
    assert producers(model, "conv2_block1_add_se") == source
    assert sorted(consumers(model, "conv2_block1_add_se")) == users


@pytest.mark.structure
def test_inception_modules_and_inception_resnet_branches():
    v3 = keras_senet.add_squeeze_excite(A.InceptionV3(weights=None, include_top=False, input_shape=(75, 75, 3)))
    assert producers(v3, "mixed9_se") == ["mixed9"]  # the module's output, not its inner concatenations
    assert "mixed9_0_se" not in [layer.name for layer in v3.layers]
    irv2 = A.InceptionResNetV2(weights=None, include_top=False, input_shape=(75, 75, 3))
    model = keras_senet.add_squeeze_excite(irv2)
    merge = irv2.get_layer("block35_1_ac")._inbound_nodes[0].input_tensors[0]._keras_history.operation.name
    assert producers(model, f"{merge}_se") == ["block35_1_conv"]  # x + scale * SE(branch)
    # "pre": one SE on the block input, read by all three branches.
    pre = keras_senet.add_squeeze_excite(irv2, placement="pre")
    assert len(se_layers(pre)) == 43
    assert len(consumers(pre, f"{merge}_se")) == 3


@pytest.mark.structure
def test_dense_layers_get_se_on_their_new_features():
    model = keras_senet.add_squeeze_excite(A.DenseNet121(weights=None, include_top=False, input_shape=(32, 32, 3)))
    assert producers(model, "conv2_block1_concat_se") == ["conv2_block1_2_conv"]
    assert producers(model, "conv2_block1_concat") == ["pool1", "conv2_block1_concat_se"]


@pytest.mark.structure
def test_se_options_pass_through():
    base = A.ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3))
    model = keras_senet.add_squeeze_excite(base, se_layer="scse", ratio=8, gate="hard_sigmoid")
    layer = model.get_layer("conv2_block1_add_se")
    assert isinstance(layer, keras_senet.ChannelSpatialSqueezeExcite)
    assert layer.gate == "hard_sigmoid" and layer.reduce.units == 256 // 8


def test_sequential_and_a_backbone_inside_a_classifier(tmp_path):
    sequential = keras.Sequential([
        keras.Input((16, 16, 3)),
        keras.layers.Conv2D(8, 3, name="c1"),
        keras.layers.Conv2D(16, 3, name="c2"),
        keras.layers.GlobalAveragePooling2D(),
    ])
    model = keras_senet.add_squeeze_excite(sequential, after=["c1", "c2"])
    assert [layer.name for layer in se_layers(model)] == ["c1_se", "c2_se"]
    backbone = A.MobileNetV2(weights=None, include_top=False, input_shape=(32, 32, 3))
    inputs = keras.Input((32, 32, 3))
    classifier = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(backbone(inputs))))
    model = keras_senet.add_squeeze_excite(classifier)
    inner = model.get_layer(backbone.name)  # the backbone keeps its name, gains its 10 SE blocks
    assert len(se_layers(inner)) == 10
    np.testing.assert_array_equal(model.layers[-1].get_weights()[0], classifier.layers[-1].get_weights()[0])
    x = np.zeros((1, 32, 32, 3), "float32")
    assert_keras_round_trip(model, x, tmp_path)


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv = keras.layers.Conv2D(4, 3)

    def call(self, x):
        return self.conv(x)


def _shared():
    inputs = keras.Input((8, 8, 4))
    conv = keras.layers.Conv2D(4, 3, padding="same", name="shared")
    return keras.Model(inputs, keras.layers.Add()([conv(inputs), conv(conv(inputs))]))


def _plain():
    inputs = keras.Input((8, 8, 3))
    return keras.Model(inputs, keras.layers.Conv2D(4, 3, name="c")(inputs), name="plain")


@pytest.mark.parametrize(
    "make, kwargs, match",
    [
        (Subclassed, {}, r"subclassed Subclassed; its call\(\) is Python code"),
        (_shared, {}, r"layer 'shared' is called 3 times"),
        (lambda: keras.Sequential([keras.layers.Dense(2)]), {}, r"has no input yet"),
        (_plain, {}, r"'plain' has no residual merge.*`after=`"),
        (_plain, dict(after=["c", "nope"]), r"does not have: \['nope'\]"),
        (_plain, dict(after=lambda layer: False), r"`after` selects no layer"),
        (_plain, dict(placement="middle"), r"`placement` must be one of .*Received: placement='middle'"),
        (_plain, dict(after=3), r"`after` must be a layer name"),
        (_plain, dict(after="c", se_layer="xx"), r"`se_layer` must be one of"),
    ],
)
def test_refusals_say_why(make, kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_senet.add_squeeze_excite(make(), **kwargs)


def test_reuse_layers_shares_the_original_layers():
    base = A.MobileNetV2(weights=None, include_top=False, input_shape=(32, 32, 3))
    x = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    before = forward(base, x)
    model = keras_senet.add_squeeze_excite(base, reuse_layers=True)
    assert model.get_layer("block_1_project") is base.get_layer("block_1_project")
    assert len(se_layers(model)) == 10
    np.testing.assert_array_equal(forward(base, x), before)  # the original still works unchanged
    copied = keras_senet.add_squeeze_excite(base)
    assert copied.get_layer("block_1_project") is not base.get_layer("block_1_project")
