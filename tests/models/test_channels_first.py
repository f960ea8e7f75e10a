"""Every model under channels_first equals its channels_last twin.

Each model is built under both image data formats with the same weights
(Keras keeps one weight layout for both: conv kernels (kh, kw, in, out),
per-channel BatchNorm and SE vectors), fed the same images transposed, and
compared on logits. BatchNorm statistics, biases and scales are randomized
first, so that a layer normalizing or gating along the wrong axis changes
the result (fresh ones are identities).

Runs on torch, and on JAX with KERAS_SENET_ALL_MODELS=1: TensorFlow's CPU
kernels have no NCHW convolutions (the `not_tensorflow` marker deselects it
there), and the axis handling under test is the same code on JAX.
"""

import keras
import numpy as np
import pytest
from harness import forward

import keras_senet
from keras_senet.models import se_resnet

pytestmark = pytest.mark.not_tensorflow

# Images 64x64 (75x75 for Inception, its minimum), batch 2.
SIZE, BATCH = 64, 2
RELATIVE_TOLERANCE = 1e-4  # of the channels_last logits' range


def _shrunk(arch):
    """SE-ResNet builder row `arch` with one block per stage: every option of
    the row (stem, groups, widths, shortcut kernel, variant) at a fraction of
    the cost. The named constructors are thin calls of this builder with
    the full row."""

    def build(**kwargs):
        row = dict(se_resnet.ARCHS[arch], depths=(1, 1, 1, 1))
        row["default_variant"] = row.pop("variant")
        return se_resnet.SEResNet(**row, arch=arch, name=arch, **kwargs)

    return build


# Constructor -> (how this test builds it, input side). Which constructors
# share a builder, and which stand for the others (CI time; the others are
# marked `sibling` and run with KERAS_SENET_ALL_MODELS=1):
# - se_resnet.SEResNet: SEResNet18/34/50/101/152, SEResNeXt26/50/101,
#   SENet154, the ResNet-D rows (rows of ARCHS) and SEResNetCIFAR.
#   SEResNet18 (basic blocks), SEResNeXt26 (grouped bottlenecks),
#   SEResNetCIFAR (3x3 stem) and SEResNeXtAA101D_32x8d (deep stem, average-
#   pool shortcuts, anti-aliased pools; one block per stage) run always; the
#   other rows run with one block per stage (same layers, fewer repeats):
#   SEResNet50's is the torch variant, SENet154's has the deep stem and 3x3
#   projection shortcuts, SEResNeXt26T's the tiered stem, SEResNet33TS's and
#   SEResNeXt26TS's SiLU, SE after the 3x3 and the stem's max-pool after SiLU.
# - se_mobilenet.SEMobileNetV3: SEMobileNetV3Large/Small (both run).
#   SEMobileNet and SEMobileNetV2 have a builder each.
# - se_applications.SEApplication: SEInceptionV3, SEInceptionResNetV2 and
#   SEDenseNet121/169/201 over their keras.applications network, with SE
#   inserted by add_squeeze_excite; SEInceptionV3 (at its minimum, 75x75) and
#   SEDenseNet121 run always.
CASES = {
    "SEResNet18": (keras_senet.SEResNet18, SIZE),
    "SEResNeXt26": (keras_senet.SEResNeXt26, SIZE),
    "SEResNetCIFAR": (lambda **kwargs: se_resnet.SEResNetCIFAR(20, **kwargs), 32),
    "SEMobileNet": (keras_senet.SEMobileNet, SIZE),
    "SEMobileNetV2": (keras_senet.SEMobileNetV2, SIZE),
    "SEMobileNetV3Large": (keras_senet.SEMobileNetV3Large, SIZE),
    "SEMobileNetV3Small": (keras_senet.SEMobileNetV3Small, SIZE),
    "SEInceptionV3": (keras_senet.SEInceptionV3, 75),
    "SEDenseNet121": (keras_senet.SEDenseNet121, SIZE),
    "SEResNeXtAA101D_32x8d": (_shrunk("se_resnextaa101d_32x8d"), SIZE),
}
SIBLINGS = {
    **{name: (_shrunk(arch), SIZE) for name, arch in [
        ("SEResNet34", "se_resnet34"), ("SEResNet50", "se_resnet50"), ("SEResNet101", "se_resnet101"),
        ("SEResNet152", "se_resnet152"), ("SEResNeXt50", "se_resnext50"), ("SEResNeXt101", "se_resnext101"),
        ("SENet154", "senet154"), ("SEResNet152D", "se_resnet152d"), ("SEResNeXt26D", "se_resnext26d"),
        ("SEResNeXt26T", "se_resnext26t"), ("SEResNeXt101_32x8d", "se_resnext101_32x8d"),
        ("SEResNeXt101_64x4d", "se_resnext101_64x4d"), ("SEResNeXt101D_32x8d", "se_resnext101d_32x8d"),
        ("SEResNeXtAA201D_32x8d", "se_resnextaa201d_32x8d"), ("SEResNet33TS", "se_resnet33ts"),
        ("SEResNeXt26TS", "se_resnext26ts"),
    ]},
    "SEInceptionResNetV2": (keras_senet.SEInceptionResNetV2, 75),
    "SEDenseNet169": (keras_senet.SEDenseNet169, SIZE),
    "SEDenseNet201": (keras_senet.SEDenseNet201, SIZE),
}
ALL = {**CASES, **SIBLINGS}
PARAMS = [pytest.param(name) for name in CASES] + [
    pytest.param(name, marks=pytest.mark.sibling) for name in SIBLINGS
]


def test_every_constructor_is_covered():
    assert set(ALL) == set(keras_senet.MODELS) | {"SEResNetCIFAR"}


@pytest.fixture
def data_format():
    """Sets the global image data format for the test; restores it after."""
    saved = keras.config.image_data_format()
    try:
        yield keras.config.set_image_data_format
    finally:
        keras.config.set_image_data_format(saved)


def _randomize(model, rng):
    """Random BatchNorm statistics, scales and biases (fresh ones are 0 and 1)."""
    weights = []
    for variable, value in zip(model.weights, model.get_weights()):
        if variable.path.endswith(("moving_variance", "gamma")):
            value = rng.uniform(0.5, 1.5, value.shape).astype(value.dtype)
        elif variable.path.endswith(("moving_mean", "beta", "bias")):
            value = rng.normal(0.0, 0.1, value.shape).astype(value.dtype)
        weights.append(value)
    return weights


def _build_both(build, shape_last, data_format, **kwargs):
    """The model under channels_last and under channels_first, same weights."""
    keras.utils.set_random_seed(0)
    data_format("channels_last")
    last = build(input_shape=shape_last, weights=None, **kwargs)
    last.set_weights(_randomize(last, np.random.default_rng(0)))
    data_format("channels_first")
    first = build(input_shape=(shape_last[2], *shape_last[:2]), weights=None, **kwargs)
    first.set_weights(last.get_weights())
    return last, first


def _compare(last, first, size, channels, data_format):
    """Max |difference| of the logits relative to their range. Each model
    runs under the other global data format than it was built under: a
    model's output must not depend on the global setting at call time."""
    images = np.random.default_rng(1).uniform(0, 255, (BATCH, size, size, channels)).astype("float32")
    data_format("channels_first")
    y_last = forward(last, last.input_transform.normalize(images, "channels_last"))
    data_format("channels_last")
    x_first = first.input_transform.normalize(np.transpose(images, (0, 3, 1, 2)), "channels_first")
    y_first = forward(first, x_first)
    assert y_first.shape == y_last.shape == (BATCH, last.output_shape[-1])
    spread = float(np.ptp(y_last))
    assert spread > 0 and np.all(np.isfinite(y_last))
    return float(np.max(np.abs(y_first - y_last))) / spread


@pytest.mark.parametrize("name", PARAMS)
def test_channels_first_equals_channels_last(name, data_format):
    build, size = ALL[name]
    last, first = _build_both(build, (size, size, 3), data_format, classes=10, classifier_activation=None)
    assert first.input_shape == (None, 3, size, size)
    assert first.name == last.name
    difference = _compare(last, first, size, 3, data_format)
    print(f"{name}: max |difference| / logit range = {difference:.2e}")
    assert difference <= RELATIVE_TOLERANCE
    # The transform the model carries reads channels and size from the right axes.
    assert first.input_transform == last.input_transform
    assert (first.input_transform.channels, first.input_transform.size) == (3, size)


@pytest.mark.parametrize("name", ["SEMobileNetV3Small", "SEResNetCIFAR"])
def test_single_channel_input(name, data_format):
    """1-channel images: the channel count is read from the channel axis
    (SE-MobileNetV3's built-in normalization has one constant per channel)."""
    build, size = CASES[name]
    last, first = _build_both(build, (size, size, 1), data_format, classes=10, classifier_activation=None)
    assert first.input_shape == (None, 1, size, size)
    assert _compare(last, first, size, 1, data_format) <= RELATIVE_TOLERANCE
    assert first.input_transform == last.input_transform
    assert (first.input_transform.channels, first.input_transform.size) == (1, size)
