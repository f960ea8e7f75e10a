import keras
import numpy as np
import pytest
from harness import RUN_EAGERLY, assert_keras_round_trip, forward

import keras_senet
from keras_senet import SEMobileNetV3Large, SEMobileNetV3Small, model_info
from keras_senet.models import se_mobilenet
from keras_senet.weights.presets import TIMM_ARCHS


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


# timm's other MobileNetV3 models: (constructor, options as in TIMM_ARCHS)
TIMM_MOBILENETS = {
    "mobilenetv3_small_050": (SEMobileNetV3Small, dict(alpha=0.5)),
    "mobilenetv3_small_075": (SEMobileNetV3Small, dict(alpha=0.75)),
    "mobilenetv3_large_150d": (SEMobileNetV3Large, dict(alpha=1.5, depth_coefficient=1.2)),
    "mobilenetv3_rw": (SEMobileNetV3Large, dict(implementation="rw")),
}
# learned parameters, counted on timm 1.0.31's models (issue 18)
TIMM_PARAMS = {"mobilenetv3_small_050": 1_593_224, "mobilenetv3_small_075": 2_041_872,
               "mobilenetv3_large_150d": 14_622_320, "mobilenetv3_rw": 5_479_918}


@pytest.mark.structure
@pytest.mark.parametrize("timm_name", list(TIMM_MOBILENETS))
def test_timm_variants_parameters_and_depths(timm_name):
    """Parameter count and blocks per stage equal timm's (its models built
    here: the depth scaling of mobilenetv3_large_150d is checked on timm's
    own block lists, 1.2x per stage rounded as timm rounds)."""
    import timm

    constructor, options = TIMM_MOBILENETS[timm_name]
    assert TIMM_ARCHS[timm_name] == (constructor.__name__, dict(include_preprocessing=False, **options))
    model = constructor(weights=None, **options)
    reference = timm.create_model(timm_name)
    assert model_info(model).params == sum(p.numel() for p in reference.parameters()) == TIMM_PARAMS[timm_name]
    blocks = [len({layer.name.split("_")[1] for layer in model.layers if layer.name.startswith(f"stage{i}_")})
              for i in range(len(reference.blocks))]
    assert blocks == [len(stage) for stage in reference.blocks]


def test_imagenet_picks_the_preset_of_the_arguments():
    """weights="imagenet" means the preset of the model's width, depth and
    implementation (keras.applications: MobileNetV3Small(alpha=0.75) loads
    its 0.75 weights); the preset's name says which timm model it is."""
    arch = {SEMobileNetV3Small: "se_mobilenet_v3_small", SEMobileNetV3Large: "se_mobilenet_v3_large"}
    standard = dict(alpha=1.0, depth_coefficient=1.0, minimalistic=False, implementation="standard")
    rows = {**TIMM_MOBILENETS, "mobilenetv3_small_100": (SEMobileNetV3Small, {}),
            "mobilenetv3_large_100": (SEMobileNetV3Large, {})}
    for timm_name, (constructor, options) in rows.items():
        preset = se_mobilenet.imagenet_preset(arch[constructor], dict(standard, **options))
        assert preset.split(".")[0] == timm_name


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
        (dict(depth_coefficient=0), r"`depth_coefficient`.*Received: depth_coefficient=0"),
        (dict(implementation="caffe"), r"`implementation`.*Received: implementation='caffe'"),
        # as keras.applications: ImageNet weights only for the widths that have them
        (dict(weights="imagenet", alpha=0.75),
         r"No ImageNet weights exist for `se_mobilenet_v3_large` with alpha=0.75, .*alpha=1.5, depth_coefficient=1.2"),
        (dict(weights="mobilenetv3_large_100.ra_in1k", alpha=0.75),
         r"'mobilenetv3_large_100.ra_in1k' is for alpha=1.0, .*Received: alpha=0.75"),
        (dict(weights="mobilenetv3_rw.rmsp_in1k", implementation="standard"),
         r"is for .*implementation='rw'. Received: .*implementation='standard'"),
        (dict(weights="mobilenetv3_large_100.ra_in1k", minimalistic=True), r"Received: .*minimalistic=True"),
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


@pytest.mark.sibling
def test_rw_round_trip(tmp_path):
    """implementation="rw" (SE with the block's hard-swish, head conv without bias) saves and reloads exactly."""
    model = SEMobileNetV3Large(weights=None, implementation="rw", input_shape=(64, 64, 3))
    assert model.get_layer("stage5_block0_se").activation == "hard_swish"
    assert not model.get_layer("head_conv").use_bias
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    assert_keras_round_trip(model, x, tmp_path)
