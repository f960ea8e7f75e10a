import keras
import numpy as np
import pytest
from harness import assert_keras_round_trip

from keras_senet.layers import (
    ChannelSpatialSqueezeExcite,
    SpatialSqueezeExcite,
    SqueezeExcite,
    reduced_width,
)

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 5, 7, 32)).astype("float32")


def np_se(x, layer, squeeze="avg", gate=lambda z: 1 / (1 + np.exp(-z))):
    """Reference SE in numpy from the layer's own weights."""
    w1, b1, w2, b2 = [keras.ops.convert_to_numpy(w) for w in layer.weights]
    pooled = {"avg": x.mean((1, 2)), "max": x.max((1, 2))}.get(squeeze)
    if squeeze == "avgmax":
        pooled = 0.5 * (x.mean((1, 2)) + x.max((1, 2)))
    s = gate(np.maximum(pooled @ w1 + b1, 0) @ w2 + b2)
    return x * s[:, None, None, :]


def test_matches_numpy_reference():
    layer = SqueezeExcite(ratio=4)
    y = keras.ops.convert_to_numpy(layer(X))
    np.testing.assert_allclose(y, np_se(X, layer), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("squeeze", ["avg", "max", "avgmax"])
def test_squeeze_operators(squeeze):
    layer = SqueezeExcite(ratio=4, squeeze=squeeze)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(X)), np_se(X, layer, squeeze), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 56, 56, 64), (1, 7, 7, 256)])
def test_large_maps_match_float64_reference(shape):
    """Maps as large as a network's (3136 positions): the squeeze and the
    output against a float64 reference, and the same layer in a model with
    unknown map size, eagerly and in channels_first order at 1e-6."""
    x = np.maximum(RNG.normal(size=shape), 0).astype("float32")
    layer = SqueezeExcite(ratio=4)
    y = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(y, np_se(x.astype("float64"), layer), rtol=1e-5, atol=1e-7)
    pooled = keras.ops.convert_to_numpy(layer.squeeze_inputs(x))
    np.testing.assert_allclose(pooled, x.astype("float64").mean((1, 2)), rtol=1e-5)
    unknown, known = keras.Input((None, None, shape[-1])), keras.Input(shape[1:])
    y_unknown = keras.Model(unknown, layer(unknown)).predict(x, verbose=0)
    y_known = keras.Model(known, layer(known)).predict(x, verbose=0)
    np.testing.assert_allclose(y_known, y_unknown, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(y_known, y, rtol=1e-6, atol=1e-7)
    first = SqueezeExcite(ratio=4, data_format="channels_first")
    first.build((None, shape[-1], *shape[1:3]))
    first.set_weights(layer.get_weights())
    y_first = keras.ops.convert_to_numpy(first(np.moveaxis(x, -1, 1)))
    np.testing.assert_allclose(np.moveaxis(y_first, 1, -1), y, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "gate, fn",
    [
        ("sigmoid", lambda z: 1 / (1 + np.exp(-z))),
        ("hard_sigmoid", lambda z: np.clip(z + 3, 0, 6) / 6),
        ("tanh", np.tanh),
        ("relu", lambda z: np.maximum(z, 0)),
    ],
)
def test_gates(gate, fn):
    layer = SqueezeExcite(ratio=4, gate=gate)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(X)), np_se(X, layer, gate=fn), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "channels, ratio, divisor, limit, expected",
    [
        (64, 16, None, 0.0, 4),      # authors' C // r
        (72, 16, None, 0.0, 4),      # floor, not round (4.5 -> 4)
        (8, 16, None, 0.0, 1),       # never 0
        (64, 16, 8, 0.0, 8),         # timm's SE: multiple of 8, at least 8
        (256, 16, 8, 0.0, 16),
        (72, 4, 8, 0.0, 16),         # 18 -> 16
        (120, 4, 8, 0.9, 32),        # MobileNetV3: 30 -> 32
        (40, 4, 8, 0.9, 16),         # 10 -> 8 < 0.9 * 10, bumped to 16
    ],
)
def test_reduced_width(channels, ratio, divisor, limit, expected):
    assert reduced_width(channels, ratio, divisor, limit) == expected


def test_weight_shapes_and_bias_option():
    layer = SqueezeExcite(ratio=8)
    layer.build((None, 4, 4, 64))
    assert [tuple(w.shape) for w in layer.weights] == [(64, 8), (8,), (8, 64), (64,)]
    no_bias = SqueezeExcite(ratio=8, use_bias=False)
    no_bias.build((None, 4, 4, 64))
    assert [tuple(w.shape) for w in no_bias.weights] == [(64, 8), (8, 64)]
    explicit = SqueezeExcite(reduced_channels=5)
    explicit.build((None, 4, 4, 64))
    assert tuple(explicit.weights[0].shape) == (64, 5)


def test_channels_first_equals_channels_last():
    last = SqueezeExcite(ratio=4, data_format="channels_last")
    first = SqueezeExcite(ratio=4, data_format="channels_first")
    y_last = keras.ops.convert_to_numpy(last(X))
    first.build((None, 32, 5, 7))
    first.set_weights(last.get_weights())
    y_first = first(np.transpose(X, (0, 3, 1, 2)))
    np.testing.assert_allclose(np.transpose(keras.ops.convert_to_numpy(y_first), (0, 2, 3, 1)), y_last, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 9, 16), (2, 3, 4, 5, 16)])
def test_other_ranks(shape):
    x = RNG.normal(size=shape).astype("float32")
    layer = SqueezeExcite(ratio=4)
    assert layer(x).shape == shape
    assert SpatialSqueezeExcite()(x).shape == shape


def test_spatial_se_matches_numpy():
    layer = SpatialSqueezeExcite()
    y = keras.ops.convert_to_numpy(layer(X))
    kernel, bias = [keras.ops.convert_to_numpy(w) for w in layer.weights]
    q = 1 / (1 + np.exp(-(X @ kernel + bias)))
    np.testing.assert_allclose(y, X * q, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("combine", ["add", "max"])
def test_scse_combines_both(combine):
    layer = ChannelSpatialSqueezeExcite(ratio=4, combine=combine)
    y = keras.ops.convert_to_numpy(layer(X))
    x = keras.ops.convert_to_tensor(X)  # call() without __call__'s conversion
    c = keras.ops.convert_to_numpy(SqueezeExcite.call(layer, x))
    s = keras.ops.convert_to_numpy(layer.sse(x))
    np.testing.assert_allclose(y, c + s if combine == "add" else np.maximum(c, s), rtol=1e-6)
    assert len(layer.weights) == 6


@pytest.mark.parametrize(
    "layer",
    [
        SqueezeExcite(ratio=8, divisor=8, round_limit=0.9, squeeze="avgmax", gate="hard_sigmoid",
                      activation="swish", use_bias=False, name="se"),
        SpatialSqueezeExcite(name="sse"),
        ChannelSpatialSqueezeExcite(ratio=4, combine="max", gate="tanh", name="scse"),
    ],
    ids=["se", "sse", "scse"],
)
def test_config_and_keras_round_trip(layer, tmp_path):
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config
    inputs = keras.Input((5, 7, 32))
    model = keras.Model(inputs, layer(inputs))
    assert_keras_round_trip(model, X, tmp_path)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(gate="softmax"), "gate.*Received: gate='softmax'"),
        (dict(squeeze="median"), "squeeze.*Received: squeeze='median'"),
        (dict(ratio=0), "ratio.*Received: ratio=0"),
        (dict(divisor=2.5), "divisor.*Received: divisor=2.5"),
        (dict(reduced_channels=0), "reduced_channels.*Received: reduced_channels=0"),
        (dict(data_format="nhwc"), "data_format.*Received: data_format='nhwc'"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SqueezeExcite(**kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match="combine.*Received: combine='mean'"):
        ChannelSpatialSqueezeExcite(combine="mean")
    with pytest.raises(ValueError, match="rank >= 3"):
        SqueezeExcite()(keras.Input((32,)))


def test_trains():
    inputs = keras.Input((5, 7, 32))
    x = ChannelSpatialSqueezeExcite(ratio=4)(SqueezeExcite(ratio=4)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)))
    model.compile(optimizer="sgd", loss="mse")
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.weights]
    model.fit(X, RNG.normal(size=(2, 3)), epochs=1, verbose=0)
    changed = [not np.allclose(a, keras.ops.convert_to_numpy(b)) for a, b in zip(before, model.weights)]
    assert all(changed), "every SE weight gets a gradient"
