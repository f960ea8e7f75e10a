import keras
import pytest

import keras_senet
from keras_senet import model_info


def small_model(shape=(16, 16, 8)):
    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)    # 16*16 * 3*3*8*16
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", groups=4)(x)  # 8*8 * 3*3*4*16
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)                  # 8*8 * 3*3*16
    x = keras_senet.SqueezeExcite(ratio=4)(x)                               # 2 * 16*4
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x))                   # 16*10


def expected_macs(side=16):
    half = (side + 1) // 2
    return side * side * 9 * 8 * 16 + half * half * 9 * 4 * 16 + half * half * 9 * 16 + 2 * 16 * 4 + 160


def test_counts_exactly():
    model = small_model()
    info = model_info(model)
    assert info.macs == expected_macs()
    assert info.keras_params == model.count_params()
    assert info.params == model.count_params() - 2 * 16  # minus BN moving mean/variance
    assert "multiply-accumulates" in str(info)


def test_other_input_size_and_undefined_size():
    assert model_info(small_model(), input_shape=(32, 32, 8)).macs == expected_macs(32)
    flexible = small_model((None, None, 8))
    with pytest.raises(ValueError, match="unknown spatial size"):
        model_info(flexible)
    assert model_info(flexible, input_shape=(16, 16, 8)).macs == expected_macs()


def test_se_resnet_at_other_size():
    model = keras_senet.SEResNet50(weights=None, include_top=False, input_shape=(None, None, 3))
    for side in (224, 112):
        built = keras_senet.SEResNet50(weights=None, include_top=False, input_shape=(side, side, 3))
        assert model_info(model, input_shape=(side, side, 3)).macs == model_info(built).macs
