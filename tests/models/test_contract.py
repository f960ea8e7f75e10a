"""The keras.applications contract, for every constructor."""

import keras
import numpy as np
import pytest

from harness import assert_keras_round_trip, assert_predicts, forward

import keras_senet
from keras_senet.weights import PRESETS

NAMES = list(keras_senet.MODELS)
# Argument errors: every constructor but the DEEPER rows below (the same
# builder, checks and preset status as a shallower sibling; 8 error tests
# per constructor, each ~0.7 s here, mostly the per-test clear_session).
# Argument handling (input shapes and channels, pooling, input_tensor,
# classifier activation) is builder code, the same for every row: one model
# per builder and block kind.
ARGUMENTS = ["SEResNet18", "SEResNeXt26", "SEMobileNet", "SEMobileNetV2", "SEMobileNetV3Small", "SEInceptionV3"]
# Predict, the .keras round trip and loading a weights file as `weights=`:
# every network but the deeper rows of a family (the same blocks as a
# shallower sibling; test_se_resnet / test_se_applications / tests/weights
# check each row's counts and logits). On JAX and torch the networks beyond
# ARGUMENTS run only with KERAS_SENET_ALL_MODELS=1 (CI time).
DEEPER = {
    "SEResNet101", "SEResNet152", "SEResNeXt101", "SEDenseNet169", "SEDenseNet201",
    # ResNet-D / wide ResNeXt rows: SEResNeXt26D and SEResNeXt26T have their
    # stems and shortcuts; test_se_resnet round-trips an anti-aliased one
    "SEResNet152D", "SEResNeXt101_32x8d", "SEResNeXt101_64x4d", "SEResNeXt101D_32x8d",
    "SEResNeXtAA101D_32x8d", "SEResNeXtAA201D_32x8d",
}
BUILT = [n if n in ARGUMENTS else pytest.param(n, marks=pytest.mark.sibling) for n in NAMES if n not in DEEPER]


# Constructors with ImageNet presets (the others refuse weights="imagenet").
WITH_PRESETS = {p["constructor"] for p in PRESETS.values()}
# Width of the last feature map per family.
FEATURES = {"SEResNet18": 512, "SEMobileNet": 1024, "SEMobileNetV2": 1280, "SEMobileNetV3Small": 576}
# Smallest input side, where it is not 32 (keras.applications' Inceptions).
MIN_SIZE = {"SEInceptionV3": 75, "SEInceptionResNetV2": 75}
DEFAULT_SIZE = {"SEInceptionV3": 299}


def features(name):
    return FEATURES.get(name, 2048)


def size(name):
    """A small test input side the model accepts."""
    return max(64, MIN_SIZE.get(name, 32))


def final_side(name):
    return 1 if name in MIN_SIZE else 2  # at size(name)


@pytest.fixture(params=ARGUMENTS)
def constructor(request):
    return keras_senet.MODELS[request.param]


@pytest.fixture(params=[n for n in NAMES if n not in DEEPER])
def any_constructor(request):
    return keras_senet.MODELS[request.param]


# 4 channels is the 1-channel check again (the stem conv takes any count):
# on JAX and torch one compile, not two.
@pytest.mark.parametrize("channels", [1, pytest.param(4, marks=pytest.mark.sibling)])
def test_no_top_any_channels(constructor, channels):
    name, s = constructor.__name__, size(constructor.__name__)
    with pytest.warns(UserWarning, match="1 or 3") if channels == 4 else _nothing():
        model = constructor(weights=None, include_top=False, input_shape=(s, s, channels))
    out = (final_side(name), final_side(name), features(name))
    assert model.output_shape == (None,) + out
    assert forward(model, np.zeros((1, s, s, channels), "float32")).shape == (1,) + out


def test_default_and_custom_input_shapes(constructor):
    name = constructor.__name__
    default = DEFAULT_SIZE.get(name, 224)
    assert constructor(weights=None).input_shape == (None, default, default, 3)
    model = constructor(weights=None, input_shape=(123, 123, 3), classes=7)
    assert model.output_shape == (None, 7)
    assert constructor(weights=None, include_top=False).input_shape == (None, default, default, 3)
    flexible = constructor(weights=None, include_top=False, input_shape=(None, None, 3), pooling="avg")
    h, w = (40, 56) if name not in MIN_SIZE else (80, 96)
    assert forward(flexible, np.zeros((1, h, w, 3), "float32")).shape == (1, features(name))


@pytest.mark.structure  # symbolic wiring only
def test_input_tensor(constructor):
    image = keras.Input((size(constructor.__name__),) * 2 + (3,), name="image")
    scaled = keras.layers.Rescaling(1 / 255.0)(image)
    model = constructor(weights=None, input_tensor=scaled, classes=5)
    assert model.inputs[0].name == "image"
    assert model.output_shape == (None, 5)


@pytest.mark.structure  # output shape and the last layer, no forward
@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_pooling(constructor, pooling):
    s = size(constructor.__name__)
    model = constructor(weights=None, include_top=False, pooling=pooling, input_shape=(s, s, 3))
    assert model.output_shape == (None, features(constructor.__name__))
    assert model.layers[-1].name == f"{pooling}_pool"


def test_classifier_activation(constructor):
    s = size(constructor.__name__)
    x = np.random.default_rng(0).normal(size=(2, s, s, 3)).astype("float32")
    keras.utils.set_random_seed(0)
    logits = constructor(weights=None, input_shape=(s, s, 3), classes=10, classifier_activation=None)
    keras.utils.set_random_seed(0)
    probs = constructor(weights=None, input_shape=(s, s, 3), classes=10)
    z, p = forward(logits, x), forward(probs, x)
    assert (z < 0).any()
    np.testing.assert_allclose(p, np.exp(z) / np.exp(z).sum(1, keepdims=True), rtol=1e-4, atol=1e-6)


@pytest.mark.structure  # raised before any layer is built
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(weights="nope"), r"`weights` argument should be.*Received: weights=nope"),
        (dict(weights="imagenet", include_top=True, input_shape=(None, None, 3), classes=5), r"`classes` should be 1000"),
        (dict(weights="imagenet", classes=10), r"`classes` should be 1000.*Received: classes=10"),
        (dict(weights="imagenet", classifier_activation="relu"), r"Received: classifier_activation=relu"),
        (dict(weights="imagenet", input_shape=(224, 224, 1)), r"must have 3 channels.*input_shape=\(224, 224, 1\)"),
        (dict(weights=None, input_shape=("min-1", 80, 3)), r"at least {m}x{m}.*input_shape=\({m1}, 80, 3\)"),
        (dict(weights=None, input_shape=(64, 64)), r"tuple of three integers.*input_shape=\(64, 64\)"),
        (dict(weights=None, pooling="mean"), r"`pooling`.*Received: pooling='mean'"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_errors_name_argument_and_value(any_constructor, kwargs, match):
    constructor = any_constructor
    m = MIN_SIZE.get(constructor.__name__, 32)
    if kwargs.get("weights") == "imagenet" and constructor.__name__ not in WITH_PRESETS:
        # no ImageNet weights: that is the error, before the checks of pretrained use
        match = r"No (public )?ImageNet weights exist.*Received: weights='imagenet'"
    if kwargs.get("input_shape", (0,))[0] == "min-1":
        kwargs = dict(kwargs, input_shape=(m - 1,) + kwargs["input_shape"][1:])
    with pytest.raises(ValueError, match=match.replace("{m}", str(m)).replace("{m1}", str(m - 1))):
        constructor(**kwargs)


def family(name):
    return keras_senet.se_mobilenet if "MobileNet" in name else keras_senet.se_resnet


@pytest.mark.parametrize("name", BUILT)
def test_common_checks(name, tmp_path):
    """Predict on arrays and tf.data, softmax outputs, exact .keras round
    trip, and a weights file given back as `weights=` (keras.applications'
    file path): one build serves all four."""
    s = size(name)
    constructor = keras_senet.MODELS[name]
    model = constructor(weights=None, input_shape=(s, s, 3))
    x = np.random.default_rng(1).uniform(0, 255, (2, s, s, 3)).astype("float32")
    x = family(name).preprocess_input(x)
    probs = assert_predicts(model, x)
    assert probs.shape == (2, 1000)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert_keras_round_trip(model, x, tmp_path)
    path = tmp_path / "w.weights.h5"
    model.save_weights(path)  # (weights= the .keras archive: SENet-154 106 s against 44 s)
    loaded = constructor(weights=str(path), input_shape=(s, s, 3))
    np.testing.assert_array_equal(forward(loaded, x), forward(model, x))


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
