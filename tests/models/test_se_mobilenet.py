import keras
import numpy as np
import pytest

import keras_senet
from keras_senet import SEMobileNetV3Large, SEMobileNetV3Small, model_info


@pytest.mark.parametrize(
    "ours, theirs", [(SEMobileNetV3Large, keras.applications.MobileNetV3Large),
                     (SEMobileNetV3Small, keras.applications.MobileNetV3Small)],
)
@pytest.mark.parametrize("alpha", [0.75, 1.0])
@pytest.mark.parametrize("minimalistic", [False, True])
def test_parameter_count_equals_keras_applications(ours, theirs, alpha, minimalistic):
    """Same architecture as keras.applications (and timm's mobilenetv3_*_100:
    5,483,032 / 2,542,856 learned parameters at alpha 1.0)."""
    reference = theirs(weights=None, alpha=alpha, minimalistic=minimalistic)
    expected = sum(int(np.prod(w.shape)) for w in reference.trainable_weights)
    assert model_info(ours(weights=None, alpha=alpha, minimalistic=minimalistic)).params == expected
    if alpha == 1.0 and not minimalistic:
        assert expected == {SEMobileNetV3Large: 5_483_032, SEMobileNetV3Small: 2_542_856}[ours]


def test_macs():
    # timm's mobilenetv3_large_100: 0.217 G (conv + dense), the paper's 219 M MAdds
    assert abs(model_info(SEMobileNetV3Large(weights=None)).macs / 1e9 - 0.217) < 0.001
    assert abs(model_info(SEMobileNetV3Small(weights=None)).macs / 1e9 - 0.057) < 0.001


def test_se_blocks_use_hard_sigmoid_and_round_to_8():
    model = SEMobileNetV3Large(weights=None)
    se = [layer for layer in model.layers if isinstance(layer, keras_senet.SqueezeExcite)]
    assert len(se) == 8  # 3 in the 40-channel stage, 2 at 112, 3 at 160
    assert all(layer.gate == "hard_sigmoid" for layer in se)
    assert tuple(model.get_layer("stage2_block0_se").weights[0].shape) == (72, 24)  # round8(72 / 4) = 24 (18 -> 16 < 0.9 * 18)
    assert not any(isinstance(layer, keras_senet.SqueezeExcite)
                   for layer in SEMobileNetV3Large(weights=None, minimalistic=True).layers)


def test_se_options_pass_through():
    model = SEMobileNetV3Small(weights=None, se_options=dict(gate="sigmoid", ratio=8))
    layer = model.get_layer("stage0_block0_se")
    assert layer.gate == "sigmoid" and tuple(layer.weights[0].shape) == (16, 8)


def test_preprocessing_included_by_default():
    """Raw [0, 255] input equals normalized input without the built-in layer."""
    keras.utils.set_random_seed(0)
    raw = SEMobileNetV3Small(weights=None, input_shape=(64, 64, 3), classifier_activation=None)
    plain = SEMobileNetV3Small(weights=None, input_shape=(64, 64, 3), classifier_activation=None,
                               include_preprocessing=False)
    plain.set_weights(raw.get_weights())
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    normalized = keras_senet.se_resnet.preprocess_input(x)
    np.testing.assert_allclose(np.asarray(raw(x)), np.asarray(plain(normalized)), atol=1e-4)
    assert keras_senet.se_mobilenet.preprocess_input(x) is x


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(alpha=0), r"`alpha`.*Received: alpha=0"),
        (dict(dropout_rate=-0.1), r"`dropout_rate`.*Received: dropout_rate=-0.1"),
        (dict(se_options=dict(squeeze="sum")), r"`squeeze`.*Received: squeeze='sum'"),
        (dict(weights="imagenet", alpha=0.75), r"is for alpha=1.0.*Received: alpha=0.75"),
    ],
)
def test_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SEMobileNetV3Large(**{"weights": None, **kwargs})
