"""Multi-scale features (keras_senet.feature_extractor): every level equals
timm's `features_only=True` output through our converter (random weights and
BatchNorm statistics, 97x97: odd sizes exercise the padding at each stride);
families timm lacks are checked by shape and channels against the
keras.applications / paper tables."""

import keras
import numpy as np
import pytest
from timm_reference import random_timm_model, shallow_twin, state_dict_arrays

import keras_senet
from keras_senet.models.features import pyramid_layers
from keras_senet.weights.convert import load_timm_state_dict

TOLERANCE = 1e-4
SIZE = 97
# timm name -> this package's SE-ResNet row when the check runs one block per
# stage deep (timm: layers=(1, 1, 1, 1)) to save CI time, else None
CASES = {
    "legacy_seresnet18": None,       # Caffe-style: stride on the 1x1, ceil-mode pool
    "mobilenetv3_small_100": None,   # P1 is the stem; P5 the final 1x1 conv
    "seresnet50": None,              # torch-style bottleneck
    "mobilenetv3_large_100": None,
    "legacy_senet154": "senet154",   # three-conv stem, 3x3 downsampling
    "seresnext26d_32x4d": None,      # deep stem, average-pool downsampling
    "seresnextaa101d_32x8d": "se_resnextaa101d_32x8d",  # anti-aliased downsampling
    "seresnet33ts": None,            # ByobNet: SiLU, strided tiered stem, final 1x1 conv
    "seresnext26ts": None,
}


def timm_features(name, shallow):
    import torch

    kwargs = {"layers": (1, 1, 1, 1)} if shallow else {}
    reference = random_timm_model(name, **kwargs)
    import timm

    features = timm.create_model(name, pretrained=False, features_only=True, **kwargs).eval()
    # timm's feature wrappers may flatten module paths (ByobNet: stem.conv1 ->
    # stem_conv1); match the keys with "." and "_" treated alike.
    by_flat_name = {k.replace(".", "_"): v for k, v in reference.state_dict().items()}
    state = {k: by_flat_name[k.replace(".", "_")] for k in features.state_dict() if k.replace(".", "_") in by_flat_name}
    missing, _ = features.load_state_dict(state, strict=False)
    assert not missing, missing
    x = np.random.default_rng(0).normal(size=(2, SIZE, SIZE, 3)).astype("float32")
    with torch.no_grad():
        maps = features(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))))
    return reference, x, [m.numpy().transpose(0, 2, 3, 1) for m in maps], features.feature_info.reduction()


def keras_model(name, arch, reference):
    if arch:
        model = shallow_twin(arch, input_shape=(SIZE, SIZE, 3), include_top=False)
    else:
        constructor, options = keras_senet.weights.presets.TIMM_ARCHS[name]
        model = keras_senet.MODELS[constructor](
            weights=None, include_top=False, input_shape=(SIZE, SIZE, 3), **options
        )
    load_timm_state_dict(model, state_dict_arrays(reference), skip_top=True)
    return model


# TensorFlow runs every case; on JAX and torch the levels are the same layers
# (a graph property) and the logits parity tests cover the numerics, so these
# are `sibling` there (test_shares_the_models_weights runs on every backend).
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.sibling) for n in CASES])
def test_levels_match_timm_features_only(name):
    reference, x, expected, reductions = timm_features(name, CASES[name] is not None)
    model = keras_model(name, CASES[name], reference)
    extractor = keras_senet.feature_extractor(model)
    actual = extractor(x)
    assert list(actual) == [f"P{r.bit_length() - 1}" for r in reductions] == ["P1", "P2", "P3", "P4", "P5"]
    for level, want in zip(actual, expected):
        got = keras.ops.convert_to_numpy(actual[level])
        assert got.shape == want.shape, (level, got.shape, want.shape)
        assert np.abs(want).max() > 0.1
        assert np.abs(got - want).max() <= TOLERANCE, level


# (constructor, channels of P1..P5): keras.applications' MobileNet/MobileNetV2/
# DenseNet121 stage widths and the Inception papers' module widths
SHAPES = {
    "SEMobileNet": (64, 128, 256, 512, 1024),
    "SEMobileNetV2": (16, 24, 32, 96, 1280),
    "SEDenseNet121": (64, 256, 512, 1024, 1024),
    "SEInceptionV3": (64, 192, 288, 768, 2048),
}


@pytest.mark.structure
@pytest.mark.parametrize("name", list(SHAPES))
def test_families_without_timm_reference_give_each_stride(name):
    extractor = keras_senet.feature_extractor(name, input_shape=(160, 160, 3))
    shapes = {level: tuple(t.shape) for level, t in zip(extractor.output, extractor.outputs)}
    assert [s[-1] for s in shapes.values()] == list(SHAPES[name])
    sizes = [s[1] for s in shapes.values()]
    if name == "SEInceptionV3":  # unpadded convs: each level a little under size / stride
        assert all(160 / 2**k - 6 <= size <= 160 / 2**k for k, size in enumerate(sizes, start=1)), sizes
    else:
        assert sizes == [160 // 2**k for k in range(1, 6)]


def conv_size(n, kernel, stride, pad, ceil=False):
    """PyTorch's output size of a conv or pool."""
    return -(-(n + 2 * pad - kernel) // stride) + 1 if ceil else (n + 2 * pad - kernel) // stride + 1


@pytest.mark.structure
def test_any_input_size_and_chosen_levels():
    # SE-ResNet-18's default (Caffe-style) weights: 7x7/2 conv, 3x3/2 ceil-mode
    # max-pool, then a 3x3/2 conv pad 1 starting each later stage
    def p5(n):
        n = conv_size(conv_size(n, 7, 2, 3), 3, 2, 0, ceil=True)
        p3 = conv_size(n, 3, 2, 1)
        return p3, conv_size(conv_size(p3, 3, 2, 1), 3, 2, 1)

    extractor = keras_senet.feature_extractor("SEResNet18", levels=("P3", "P5"))
    out = extractor(np.zeros((1, 64, 97, 3), "float32"))
    (h3, h5), (w3, w5) = p5(64), p5(97)
    assert {k: tuple(v.shape) for k, v in out.items()} == {"P3": (1, h3, w3, 128), "P5": (1, h5, w5, 512)}
    assert (h3, w3, h5, w5) == (8, 12, 2, 3)


def test_shares_the_models_weights():
    model = keras_senet.SEResNet18(weights=None, include_top=False, input_shape=(64, 64, 3))
    extractor = keras_senet.feature_extractor(model)
    x = np.random.default_rng(1).normal(size=(1, 64, 64, 3)).astype("float32")
    np.testing.assert_array_equal(extractor.predict(x, verbose=0)["P5"], model.predict(x, verbose=0))
    assert pyramid_layers(model)["P2"] == "conv2_block2_out"


@pytest.mark.parametrize("args, kwargs, match", [
    (("SEResNet18",), {"levels": ("P6",)}, r"has no level P6; it has P1, P2, P3, P4, P5"),
    (("SEResNet19",), {}, "Unknown model name 'SEResNet19'"),
    ((keras.Sequential([keras.layers.Dense(2)]),), {"weights": None}, "Constructor arguments go with a model name"),
])
def test_errors_name_the_argument(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_senet.feature_extractor(*args, **kwargs)
