"""The keras.applications contract, for every constructor."""

import keras
import numpy as np
import pytest

from harness import assert_keras_round_trip, assert_predicts

import keras_senet

NAMES = list(keras_senet.MODELS)
# Width of the last feature map per family.
FEATURES = {
    "SEResNet18": 512, "SEResNet34": 512, "SEMobileNet": 1024, "SEMobileNetV2": 1280,
    "SEMobileNetV3Large": 960, "SEMobileNetV3Small": 576,
}


def features(name):
    return FEATURES.get(name, 2048)


@pytest.fixture(params=NAMES)
def constructor(request):
    return keras_senet.MODELS[request.param]


@pytest.mark.parametrize("channels", [1, 4])
def test_no_top_any_channels(constructor, channels):
    with pytest.warns(UserWarning, match="1 or 3") if channels == 4 else _nothing():
        model = constructor(weights=None, include_top=False, input_shape=(64, 64, channels))
    assert model.output_shape == (None, 2, 2, features(constructor.__name__))
    assert model.predict(np.zeros((1, 64, 64, channels), "float32"), verbose=0).shape == (1, 2, 2, features(constructor.__name__))


def test_default_and_custom_input_shapes(constructor):
    assert constructor(weights=None).input_shape == (None, 224, 224, 3)
    model = constructor(weights=None, input_shape=(123, 123, 3), classes=7)
    assert model.output_shape == (None, 7)
    assert constructor(weights=None, include_top=False).input_shape == (None, 224, 224, 3)
    flexible = constructor(weights=None, include_top=False, input_shape=(None, None, 3), pooling="avg")
    assert flexible.predict(np.zeros((1, 40, 56, 3), "float32"), verbose=0).shape == (1, features(constructor.__name__))


def test_input_tensor(constructor):
    image = keras.Input((64, 64, 3), name="image")
    scaled = keras.layers.Rescaling(1 / 255.0)(image)
    model = constructor(weights=None, input_tensor=scaled, classes=5)
    assert model.inputs[0].name == "image"
    assert model.output_shape == (None, 5)


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_pooling(constructor, pooling):
    model = constructor(weights=None, include_top=False, pooling=pooling, input_shape=(64, 64, 3))
    assert model.output_shape == (None, features(constructor.__name__))
    assert model.layers[-1].name == f"{pooling}_pool"


def test_classifier_activation(constructor):
    x = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype("float32")
    keras.utils.set_random_seed(0)
    logits = constructor(weights=None, input_shape=(64, 64, 3), classes=10, classifier_activation=None)
    keras.utils.set_random_seed(0)
    probs = constructor(weights=None, input_shape=(64, 64, 3), classes=10)
    z, p = np.asarray(logits(x)), np.asarray(probs(x))
    assert (z < 0).any()
    np.testing.assert_allclose(p, np.exp(z) / np.exp(z).sum(1, keepdims=True), rtol=1e-4, atol=1e-6)


def test_weights_from_file(constructor, tmp_path):
    model = constructor(weights=None, include_top=False, input_shape=(64, 64, 3))
    path = tmp_path / "w.weights.h5"
    model.save_weights(path)
    loaded = constructor(weights=str(path), include_top=False, input_shape=(64, 64, 3))
    x = np.ones((1, 64, 64, 3), "float32")
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(loaded(x)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(weights="nope"), r"`weights` argument should be.*Received: weights=nope"),
        (dict(weights="imagenet", include_top=True, input_shape=(None, None, 3), classes=5), r"`classes` should be 1000"),
        (dict(weights="imagenet", classes=10), r"`classes` should be 1000.*Received: classes=10"),
        (dict(weights="imagenet", classifier_activation="relu"), r"Received: classifier_activation=relu"),
        (dict(weights="imagenet", input_shape=(224, 224, 1)), r"must have 3 channels.*input_shape=\(224, 224, 1\)"),
        (dict(weights=None, input_shape=(31, 64, 3)), r"at least 32x32.*input_shape=\(31, 64, 3\)"),
        (dict(weights=None, input_shape=(64, 64)), r"tuple of three integers.*input_shape=\(64, 64\)"),
        (dict(weights=None, pooling="mean"), r"`pooling`.*Received: pooling='mean'"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_errors_name_argument_and_value(constructor, kwargs, match):
    with pytest.raises(ValueError, match=match):
        constructor(**kwargs)


def family(name):
    return keras_senet.se_mobilenet if "MobileNet" in name else keras_senet.se_resnet


@pytest.mark.parametrize("name", NAMES)
def test_common_checks(name, tmp_path):
    """Predict on arrays and tf.data, softmax outputs, exact .keras round trip."""
    model = keras_senet.MODELS[name](weights=None, input_shape=(64, 64, 3))
    x = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    x = family(name).preprocess_input(x)
    probs = assert_predicts(model, x)
    assert probs.shape == (2, 1000)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert_keras_round_trip(model, x, tmp_path)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
