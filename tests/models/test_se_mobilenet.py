import keras
import numpy as np
import pytest
from harness import RUN_EAGERLY, assert_keras_round_trip, forward

import keras_senet
from keras_senet import SEMobileNetV3Large, SEMobileNetV3Small, model_info


@pytest.mark.structure
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


@pytest.mark.structure
def test_macs():
    # timm's mobilenetv3_large_100: 0.217 G (conv + dense), the paper's 219 M MAdds
    assert abs(model_info(SEMobileNetV3Large(weights=None)).macs / 1e9 - 0.217) < 0.001
    assert abs(model_info(SEMobileNetV3Small(weights=None)).macs / 1e9 - 0.057) < 0.001


@pytest.mark.structure
def test_se_blocks_use_hard_sigmoid_and_round_to_8():
    model = SEMobileNetV3Large(weights=None)
    se = [layer for layer in model.layers if isinstance(layer, keras_senet.SqueezeExcite)]
    assert len(se) == 8  # 3 in the 40-channel stage, 2 at 112, 3 at 160
    assert all(layer.gate == "hard_sigmoid" for layer in se)
    assert tuple(model.get_layer("stage2_block0_se").weights[0].shape) == (72, 24)  # round8(72 / 4) = 24 (18 -> 16 < 0.9 * 18)
    assert not any(isinstance(layer, keras_senet.SqueezeExcite)
                   for layer in SEMobileNetV3Large(weights=None, minimalistic=True).layers)


@pytest.mark.structure
def test_se_options_pass_through():
    model = SEMobileNetV3Small(weights=None, se_options=dict(gate="sigmoid", ratio=8))
    layer = model.get_layer("stage0_block0_se")
    assert layer.gate == "sigmoid" and tuple(layer.weights[0].shape) == (16, 8)


def test_v3_preprocessing_included_by_default():
    """Raw [0, 255] input equals normalized input without the built-in layer."""
    keras.utils.set_random_seed(0)
    raw = SEMobileNetV3Small(weights=None, input_shape=(64, 64, 3), classifier_activation=None)
    plain = SEMobileNetV3Small(weights=None, input_shape=(64, 64, 3), classifier_activation=None,
                               include_preprocessing=False)
    plain.set_weights(raw.get_weights())
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    normalized = keras_senet.se_resnet.preprocess_input(x)
    np.testing.assert_allclose(forward(raw, x), forward(plain, normalized), atol=1e-4)


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


@pytest.mark.structure
@pytest.mark.parametrize("alpha", [0.75, 1.0])
def test_se_mobilenet_v1_counts(alpha):
    reference = keras.applications.MobileNet(weights=None, alpha=alpha)
    plain = keras_senet.SEMobileNet(weights=None, alpha=alpha, se_layer=None)
    assert plain.count_params() == reference.count_params()
    assert [w.shape for w in plain.weights] == [w.shape for w in reference.weights]
    if alpha == 1.0:
        # keras.applications' 4,253,864 plus 486,068 of SE (C // 16, with biases)
        assert keras_senet.SEMobileNet(weights=None).count_params() == 4_739_932


@pytest.mark.structure
def test_se_mobilenet_v1_macs_match_paper():
    macs = model_info(keras_senet.SEMobileNet(weights=None)).macs / 1e6
    assert abs(macs - 572) / 572 <= 0.01  # paper, Table 3: 572 MFLOPs (MobileNet: 569)
    assert abs(model_info(keras_senet.SEMobileNet(weights=None, se_layer=None)).macs / 1e6 - 569) < 1


@pytest.mark.structure
@pytest.mark.parametrize("alpha", [0.75, 1.0, 1.4])
def test_se_mobilenet_v2_counts(alpha):
    reference = keras.applications.MobileNetV2(weights=None, alpha=alpha)
    plain = keras_senet.SEMobileNetV2(weights=None, alpha=alpha, se_layer=None)
    assert [w.shape for w in plain.weights] == [w.shape for w in reference.weights]
    with_se = keras_senet.SEMobileNetV2(weights=None, alpha=alpha)
    ses = [layer for layer in with_se.layers if isinstance(layer, keras_senet.SqueezeExcite)]
    assert len(ses) == 17  # one per inverted residual block
    # SE width: the block's input width / 4 (block_16: 160 in, 960 expanded)
    block = round(160 * alpha / 8) * 8 if alpha != 1.0 else 160
    assert tuple(with_se.get_layer("block_16_se").weights[0].shape)[1] == max(1, int(block / 4))


@pytest.mark.parametrize("constructor", [keras_senet.SEMobileNet, keras_senet.SEMobileNetV2])
def test_no_public_weights_is_a_clear_error(constructor):
    with pytest.raises(ValueError, match=r"No public ImageNet weights exist for `se_mobilenet.*Received: weights='imagenet'"):
        constructor()


def test_v1_v2_preprocess_to_minus_one_one():
    x = np.array([[0.0, 127.5, 255.0]])
    np.testing.assert_allclose(keras_senet.se_mobilenet.preprocess_input(x), [[-1.0, 0.0, 1.0]])


def test_se_mobilenet_v1_with_scse_trains():
    model = keras_senet.SEMobileNet(weights=None, alpha=0.25, input_shape=(32, 32, 3), classes=3, se_layer="scse")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", run_eagerly=RUN_EAGERLY)
    history = model.fit(np.random.default_rng(0).normal(size=(4, 32, 32, 3)), np.array([0, 1, 2, 0]),
                        epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


@pytest.mark.parametrize(
    "constructor", [keras_senet.SEMobileNet, keras_senet.SEMobileNetV2,
                    keras_senet.SEMobileNetV3Large, keras_senet.SEMobileNetV3Small],
)
def test_alpha_075_round_trip(constructor, tmp_path):
    model = constructor(weights=None, alpha=0.75, input_shape=(64, 64, 3))
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    assert_keras_round_trip(model, x, tmp_path)
