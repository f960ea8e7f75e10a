"""SE-Inception-v3, SE-Inception-ResNet-v2, SE-DenseNet: what SE adds to
the keras.applications networks (the common contract is in test_contract)."""

import keras
import numpy as np
import pytest

import keras_senet
from keras_senet.models import se_applications


@pytest.mark.structure
@pytest.mark.parametrize("arch", [
    pytest.param(a, marks=pytest.mark.sibling) if a in ("SEDenseNet169", "SEDenseNet201", "SEInceptionResNetV2") else a
    for a in se_applications.ARCHS
])
def test_se_adds_under_one_percent_macs(arch):
    """The paper: Inception-ResNet-v2 11.75 -> 11.76 GFLOPs, BN-Inception
    2.03 -> 2.04. MACs of the FC layers come from model_info; the scaling is
    one multiply per element of each SE block's output."""
    base_fn, size = se_applications.ARCHS[arch][:2]
    model = getattr(keras_senet, arch)(weights=None)
    base = keras_senet.model_info(base_fn(weights=None)).macs
    se_fc = keras_senet.model_info(model).macs - base
    scale = sum(int(np.prod(layer.output.shape[1:])) for layer in model.layers
                if isinstance(layer, keras_senet.SqueezeExcite))
    assert (base, se_fc, scale) == se_applications.MACS[arch]  # the figures in the docstrings
    assert 0 < se_fc + scale < 0.01 * base
    assert model.input_shape == (None, size, size, 3)


def test_no_imagenet_weights_and_the_way_to_start_from_keras_ones():
    with pytest.raises(ValueError, match=r"No ImageNet weights exist for SE-Inception-v3.*add_squeeze_excite"):
        keras_senet.SEInceptionV3(weights="imagenet")


@pytest.mark.structure
def test_names_and_se_options():
    model = keras_senet.SEDenseNet121(weights=None, input_shape=(64, 64, 3), se_options={"ratio": 4},
                                      classes=3)
    assert model.name == "se_densenet121" and model.output_shape == (None, 3)
    layer = model.get_layer("conv2_block1_concat_se")
    assert layer.reduce.units == 32 // 4
    pre = keras_senet.SEInceptionResNetV2(weights=None, input_shape=(75, 75, 3), se_placement="pre",
                                          include_top=False)
    assert sum(isinstance(layer, keras_senet.SqueezeExcite) for layer in pre.layers) == 43
    assert isinstance(pre.get_layer("conv_7b"), keras.layers.Conv2D)
