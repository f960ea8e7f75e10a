import re

import keras
import numpy as np
import pytest

from harness import assert_keras_round_trip, forward
from timm_reference import shallow_twin

import keras_senet
from keras_senet import SEResNet50, model_info

# Learned parameters of the reference implementation for the same
# configuration: sum(p.numel() for p in timm.create_model(name).parameters())
# with timm 1.0.31 (timm name in the comment). BN statistics are not counted.
REFERENCE_PARAMS = {
    ("SEResNet18", "caffe"): 11_778_592,  # legacy_seresnet18
    ("SEResNet18", "torch"): 11_779_624,  # seresnet18 (SE width 8, not 4, at 64 channels)
    ("SEResNet34", "caffe"): 21_958_868,  # legacy_seresnet34
    ("SEResNet34", "torch"): 21_960_416,  # seresnet34
    ("SEResNet50", "caffe"): 28_088_024,  # legacy_seresnet50
    ("SEResNet50", "torch"): 28_088_024,  # seresnet50
    ("SEResNet101", "caffe"): 49_326_872,  # legacy_seresnet101
    ("SEResNet101", "torch"): 49_326_872,  # seresnet101
    ("SEResNet152", "caffe"): 66_821_848,  # legacy_seresnet152
    ("SEResNet152", "torch"): 66_821_848,  # seresnet152
    ("SEResNeXt26", "caffe"): 16_790_280,  # legacy_seresnext26_32x4d
    ("SEResNeXt50", "caffe"): 27_559_896,  # legacy_seresnext50_32x4d
    ("SEResNeXt50", "torch"): 27_559_896,  # seresnext50_32x4d
    ("SEResNeXt101", "caffe"): 48_955_416,  # legacy_seresnext101_32x4d
    ("SEResNeXt101", "torch"): 48_955_416,  # seresnext101_32x4d
    ("SENet154", "caffe"): 115_088_984,  # legacy_senet154
    ("SENet154", "torch"): 115_088_984,  # senet154
    ("SEResNet152D", "torch"): 66_841_080,  # seresnet152d
    ("SEResNeXt26D", "torch"): 16_809_512,  # seresnext26d_32x4d
    ("SEResNeXt26T", "torch"): 16_806_976,  # seresnext26t_32x4d
    ("SEResNeXt101_32x8d", "torch"): 93_569_048,  # seresnext101_32x8d
    ("SEResNeXt101_64x4d", "torch"): 88_232_984,  # seresnext101_64x4d
    ("SEResNeXt101D_32x8d", "torch"): 93_588_280,  # seresnext101d_32x8d
    ("SEResNeXtAA101D_32x8d", "torch"): 93_588_280,  # seresnextaa101d_32x8d (the pools learn nothing)
    ("SEResNeXtAA201D_32x8d", "torch"): 149_394_904,  # seresnextaa201d_32x8d
    ("SEResNet33TS", "torch"): 19_779_200,  # seresnet33ts
    ("SEResNeXt26TS", "torch"): 10_388_064,  # seresnext26ts
}


@pytest.mark.structure
@pytest.mark.parametrize("name, variant", list(REFERENCE_PARAMS), ids=lambda v: str(v))
def test_parameter_count_equals_reference(name, variant):
    model = keras_senet.MODELS[name](weights=None, variant=variant)
    assert model_info(model).params == REFERENCE_PARAMS[name, variant]


# Paper, Table 2 (GFLOPs = multiply-accumulates at 224, Caffe-style stride).
@pytest.mark.structure
@pytest.mark.parametrize(
    "name, paper, tolerance",
    [
        ("SEResNet50", 3.87, 0.01),
        ("SEResNet101", 7.60, 0.015),
        ("SEResNet152", 11.32, 0.015),
        ("SEResNeXt50", 4.25, 0.015),
        ("SEResNeXt101", 8.00, 0.015),
    ],
)
def test_macs_match_paper(name, paper, tolerance):
    macs = model_info(keras_senet.MODELS[name](weights=None, variant="caffe")).macs / 1e9
    assert abs(macs - paper) / paper <= tolerance, macs


@pytest.mark.structure
def test_se_costs_almost_nothing():
    with_se = model_info(SEResNet50(weights=None, variant="caffe")).macs
    without = model_info(SEResNet50(weights=None, variant="caffe", se_stages=())).macs
    assert abs(without / 1e9 - 3.86) / 3.86 <= 0.01  # paper: ResNet-50 3.86 GFLOPs
    assert 0 < with_se - without < 0.003 * without  # paper: +0.26%
    # stride on the 3x3 (torchvision) costs more: 4.09 G as measured on timm's resnet50
    torch_style = model_info(SEResNet50(weights=None, variant="torch", se_stages=())).macs / 1e9
    assert abs(torch_style - 4.089) < 0.002


# TPAMI version, Tables 5 and 7 (SE-ResNet-50, reduced width C // r).
# Two independent references for each count:
# - exact: ResNet-50's learned parameters as torchvision counts them
#   (resnet50: 25,557,032; timm's seresnet50, r = 16: 28,088,024, above) plus
#   the SE blocks' own count, the paper's Eq. 5 (2 / r * sum_s N_s C_s^2 for
#   the two FC kernels) and the FC biases (C_s / r + C_s per block), with
#   N_s = 3, 4, 6, 3 blocks of C_s = 256, 512, 1024, 2048 output channels.
# - the paper's tables, at their printed precision. The paper rounds up to
#   0.1M: every row matches the ceiling, while round-to-nearest misses four
#   of the nine (r = 4: 35.64M printed 35.7M, r = 8: 30.60M / 30.7M,
#   r = 32: 26.83M / 26.9M, stage 4 only: 26.35M / 26.4M). Counting the BN
#   moving statistics too (+0.053M) would explain those four but not r = 2
#   (45.75M, printed 45.7M).
RESNET50_PARAMS = 25_557_032
STAGES = ((3, 256), (4, 512), (6, 1024), (3, 2048))  # (N_s, C_s) for stages 2..5


def se_resnet50_params(ratio=16, stages=(2, 3, 4, 5)):
    se = sum(n * (2 * c * c // ratio + c // ratio + c) for s, (n, c) in enumerate(STAGES, 2) if s in stages)
    return RESNET50_PARAMS + se


@pytest.mark.structure
@pytest.mark.parametrize(
    "kwargs, expected, paper",
    [
        (dict(se_ratio=2), se_resnet50_params(2), 45.7),
        (dict(se_ratio=4), se_resnet50_params(4), 35.7),
        (dict(se_ratio=8), se_resnet50_params(8), 30.7),
        (dict(se_ratio=16), REFERENCE_PARAMS["SEResNet50", "caffe"], 28.1),
        (dict(se_ratio=32), se_resnet50_params(32), 26.9),
        (dict(se_stages=(2,)), se_resnet50_params(stages=(2,)), 25.6),
        (dict(se_stages=(3,)), se_resnet50_params(stages=(3,)), 25.7),
        (dict(se_stages=(4,)), se_resnet50_params(stages=(4,)), 26.4),
        (dict(se_stages=()), RESNET50_PARAMS, 25.6),  # the paper's ResNet-50 row
        (dict(se_layer=None), RESNET50_PARAMS, 25.6),
    ],
)
def test_paper_ablation_counts(kwargs, expected, paper):
    params = model_info(SEResNet50(weights=None, variant="caffe", **kwargs)).params
    assert params == expected
    assert -(-params // 100_000) / 10 == paper  # rounded up to 0.1M, as the paper prints


def test_placements_differ_and_count_as_expected():
    x = np.random.default_rng(0).normal(size=(1, 64, 64, 3)).astype("float32")
    outputs, counts = {}, {}
    for placement in ("standard", "pre", "post", "identity"):
        keras.utils.set_random_seed(0)
        model = keras_senet.SEResNet18(
            weights=None, input_shape=(64, 64, 3), se_placement=placement, classifier_activation=None
        )
        outputs[placement] = forward(model, x)
        counts[placement] = model_info(model).params
    # SE-PRE sits on each block's input: in the first block of a stage that is
    # the previous stage's width (64, 64, 128, 256), so fewer parameters.
    assert counts["standard"] == counts["post"] == counts["identity"]
    assert counts["pre"] < counts["standard"]
    for a in outputs:
        for b in outputs:
            if a < b:
                assert not np.allclose(outputs[a], outputs[b]), (a, b)


@pytest.mark.structure
def test_layer_names_are_stable():
    """Weights files depend on these names; change them only with a converter update."""
    names = {layer.name for layer in SEResNet50(weights=None, variant="caffe").layers}
    for expected in [
        "conv1_pad", "conv1_conv", "conv1_bn", "conv1_relu", "pool1_pad", "pool1_pool",
        "conv2_block1_0_conv", "conv2_block1_0_bn", "conv2_block1_1_conv", "conv2_block1_2_conv",
        "conv2_block1_3_bn", "conv2_block1_se", "conv2_block1_add", "conv2_block1_out",
        "conv5_block3_se", "avg_pool", "predictions",
    ]:
        assert expected in names
    deep = {layer.name for layer in keras_senet.SENet154(weights=None).layers}
    assert {"conv1_1_conv", "conv1_2_conv", "conv1_3_bn", "top_dropout", "conv3_block1_0_pad"} <= deep


@pytest.mark.structure
def test_grouped_convs_use_standard_layout():
    model = keras_senet.SEResNeXt50(weights=None)
    conv = model.get_layer("conv2_block1_2_conv")
    assert conv.groups == 32 and tuple(conv.kernel.shape) == (3, 3, 4, 128)
    stem = keras_senet.SENet154(weights=None).get_layer("conv3_block1_2_conv")
    assert stem.groups == 64 and tuple(stem.kernel.shape) == (3, 3, 4, 512)  # 256 in / 64 groups


def test_caffe_variant_strides_1x1_and_rounds_pool_up():
    caffe = SEResNet50(weights=None, variant="caffe", include_top=False, input_shape=(97, 97, 3))
    torch_style = SEResNet50(weights=None, variant="torch", include_top=False, input_shape=(97, 97, 3))
    assert caffe.get_layer("conv3_block1_1_conv").strides == (2, 2)
    assert caffe.get_layer("conv3_block1_2_conv").strides == (1, 1)
    assert torch_style.get_layer("conv3_block1_1_conv").strides == (1, 1)
    assert torch_style.get_layer("conv3_block1_2_conv").strides == (2, 2)
    # 97 -> 49 after the stem conv; ceil-mode pool: 24; padded pool: 25
    assert caffe.get_layer("pool1_pool").output.shape[1] == 24
    assert torch_style.get_layer("pool1_pool").output.shape[1] == 25


def test_other_se_layers_plug_in():
    sse = keras_senet.SEResNet18(weights=None, se_layer="sse", input_shape=(64, 64, 3))
    scse = keras_senet.SEResNet18(weights=None, se_layer="scse", input_shape=(64, 64, 3))
    assert isinstance(sse.get_layer("conv2_block1_se"), keras_senet.SpatialSqueezeExcite)
    assert isinstance(scse.get_layer("conv2_block1_se"), keras_senet.ChannelSpatialSqueezeExcite)
    gated = SEResNet50(weights=None, se_options=dict(gate="hard_sigmoid", squeeze="max"))
    layer = gated.get_layer("conv4_block2_se")
    assert (layer.gate, layer.squeeze, layer.divisor) == ("hard_sigmoid", "max", 8)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(variant="keras"), r"`variant`.*Received: variant='keras'"),
        (dict(se_placement="after"), r"`se_placement`.*Received: se_placement='after'"),
        (dict(se_stages=(1, 2)), r"`se_stages`.*Received: se_stages=\(1, 2\)"),
        (dict(se_layer="cbam"), r"`se_layer`.*Received: se_layer='cbam'"),
        (dict(dropout_rate=1.5), r"`dropout_rate`.*Received: dropout_rate=1.5"),
        (dict(se_options=dict(gate="swish")), r"`gate`.*Received: gate='swish'"),
    ],
)
def test_se_option_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SEResNet50(weights=None, **kwargs)


# timm has these only in its torchvision-style layout (timm/models/resnet.py:
# seresnet152d, seresnext26d_32x4d, ...; no legacy_* twin in senet.py).
TORCH_ONLY = (
    "SEResNet152D", "SEResNeXt26D", "SEResNeXt26T", "SEResNeXt101_32x8d", "SEResNeXt101_64x4d",
    "SEResNeXt101D_32x8d", "SEResNeXtAA101D_32x8d", "SEResNeXtAA201D_32x8d",
)


def test_variants_are_data_that_fits_the_references():
    """Each row's `variants` holds its default variant and every variant a
    timm model converts into (weights.presets.TIMM_ARCHS); a row whose timm
    models have no legacy (Caffe-layout) twin in timm has "torch" only."""
    import inspect

    import timm

    from keras_senet.models.se_resnet import ARCHS, VARIANTS
    from keras_senet.weights.presets import TIMM_ARCHS

    timm_names = {}  # constructor name -> the timm models that convert into it
    for timm_name, (constructor, _) in TIMM_ARCHS.items():
        timm_names.setdefault(constructor, set()).add(timm_name)
    legacy = set(timm.list_models("legacy_*"))
    assert "legacy_seresnext26_32x4d" in legacy  # timm's legacy names, as TIMM_ARCHS spells them
    # constructor name -> ARCHS key (the default of its `name` argument)
    constructors = {n: inspect.signature(f).parameters["name"].default for n, f in keras_senet.MODELS.items()
                    if f.__module__ == "keras_senet.models.se_resnet"}
    assert set(TORCH_ONLY) <= set(constructors)
    for name, arch in constructors.items():
        row = ARCHS[arch]
        assert row["variant"] in row["variants"] and set(row["variants"]) <= set(VARIANTS), name
        assert keras_senet.MODELS[name].variants == row["variants"], name
        converted = {TIMM_ARCHS[t][1]["variant"] for t in timm_names[name]}
        assert converted <= set(row["variants"]), name
        has_legacy = any(t.startswith("legacy_") or f"legacy_{t}" in legacy for t in timm_names[name])
        assert (row["variants"] == ("torch",)) == (not has_legacy), name


@pytest.mark.parametrize("name", TORCH_ONLY)
def test_torch_only_rows_refuse_caffe(name):
    constructor = keras_senet.MODELS[name]
    assert constructor.variants == ("torch",)
    with pytest.raises(ValueError, match=rf"`variant` must be one of \('torch',\) for {name}: its reference \(timm\) "
                                         r"exists only in that layout.*Leave `variant` unset \(default 'torch'\)\. "
                                         r"Received: variant='caffe'"):
        constructor(weights=None, variant="caffe")


def test_torch_only_row_refuses_a_legacy_checkpoint(tmp_path):
    """A legacy (Caffe-layout) checkpoint would make the model caffe: refused
    before anything is built, naming the file."""
    from safetensors.numpy import save_file

    path = tmp_path / "legacy.safetensors"
    save_file({"layer0.conv1.weight": np.zeros((64, 3, 7, 7), "float32")}, str(path))
    match = rf"`weights` file {re.escape(str(path))} holds a timm checkpoint of the 'caffe' layout"
    with pytest.raises(ValueError, match=match + r".*SEResNeXt26D does not have \(variants \('torch',\)\)"):
        keras_senet.SEResNeXt26D(weights=str(path))


@pytest.mark.structure
def test_resnet_d_stems_and_anti_aliasing():
    """Stem widths as timm builds them (deep: 32-32-64, tiered: 24-32-64,
    the 201-layer one 64-64-128) and timm's AvgPool2d anti-aliasing: the
    stem pools by 2x2/2 average instead of the 3x3 max, strided 3x3 convs
    run at stride 1 and a 2x2/2 average pool follows them."""
    def widths(model):
        return [model.get_layer(f"conv1_{i}_conv").filters for i in (1, 2, 3)]

    assert widths(keras_senet.SEResNeXt26D(weights=None)) == [32, 32, 64]
    assert widths(keras_senet.SEResNeXt26T(weights=None)) == [24, 32, 64]
    plain = keras_senet.SEResNeXt26D(weights=None, include_top=False, input_shape=(97, 97, 3))
    assert isinstance(plain.get_layer("pool1_pool"), keras.layers.MaxPooling2D)
    assert plain.get_layer("conv3_block1_2_conv").strides == (2, 2)
    assert isinstance(plain.get_layer("conv3_block1_0_pool"), keras.layers.AveragePooling2D)  # avg_down
    aa = shallow_twin("se_resnextaa201d_32x8d", include_top=False, input_shape=(97, 97, 3))
    assert widths(aa) == [64, 64, 128]
    pool = aa.get_layer("pool1_pool")
    assert isinstance(pool, keras.layers.AveragePooling2D) and pool.pool_size == pool.strides == (2, 2)
    assert pool.output.shape[1] == 24  # 97 -> 49 (stem conv) -> 24 (floor, as timm's AvgPool2d(2))
    assert aa.get_layer("conv3_block1_2_conv").strides == (1, 1)
    assert aa.get_layer("conv3_block1_2_aa").output.shape[1] == 12
    assert aa.get_layer("conv3_block1_2_conv").groups == 32
    assert tuple(aa.get_layer("conv3_block1_2_conv").kernel.shape) == (3, 3, 16, 512)  # 32x8d at 128: 32 x 16
    assert "conv2_block1_2_aa" not in {layer.name for layer in aa.layers}  # stride 1: no pool


def test_anti_aliased_rows_refuse_odd_stage_sides():
    # 100 -> 50 -> 25 at conv3: timm's model fails there too (12 vs 13 wide)
    with pytest.raises(ValueError, match=r"`input_shape` \(100, 100, 3\) does not fit an anti-aliased.*25 \(odd\) "
                                         r"at the input of stage conv3.*Received: input_shape=\(100, 100, 3\)"):
        keras_senet.SEResNeXtAA101D_32x8d(weights=None, input_shape=(100, 100, 3))


@pytest.mark.sibling  # the layers are standard Keras ones; JAX compiles this in 14 s
def test_anti_aliased_keras_round_trip(tmp_path):
    model = shallow_twin("se_resnextaa101d_32x8d", input_shape=(64, 64, 3), classes=10)
    x = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype("float32")
    assert_keras_round_trip(model, x, tmp_path)


@pytest.mark.structure
def test_byobnet_rows_as_timm_builds_them():
    """timm's ByobNet SE-ResNets (byobnet.py): tiered stem 24-32-64 with SiLU;
    seresnet33ts strides its last stem conv (no pool) and ends in a 1x1 conv
    to 1280; seresnext26ts has 32 channels per group; SE sits after the 3x3
    conv, on its width."""
    r33 = keras_senet.SEResNet33TS(weights=None, include_top=False)
    x26 = keras_senet.SEResNeXt26TS(weights=None, include_top=False)
    for model in (r33, x26):
        assert [model.get_layer(f"conv1_{i}_conv").filters for i in (1, 2, 3)] == [24, 32, 64]
        names = {layer.name for layer in model.layers}
        assert {"conv1_1_silu", "conv2_block1_2_silu", "conv2_block1_out"} <= names and "conv1_1_relu" not in names
        se = model.get_layer("conv2_block1_se")
        assert se.output.shape[-1] == 64 and model.get_layer("conv2_block1_3_conv").input is se.output
    assert r33.get_layer("conv1_3_conv").strides == (2, 2) and "pool1_pool" not in {layer.name for layer in r33.layers}
    assert r33.get_layer("final_conv").filters == 1280 and r33.output_shape == (None, 7, 7, 1280)
    assert [x26.get_layer(f"conv{s}_block1_2_conv").groups for s in (2, 3, 4, 5)] == [2, 4, 8, 16]
    assert x26.output_shape == (None, 7, 7, 2048)


def test_stem_max_pool_after_silu_pads_like_pytorch():
    """SiLU outputs go below 0, where zero padding would win the max at the
    borders: the stem's 3x3/2 pool must equal PyTorch's (-inf padding)."""
    import torch

    model = keras_senet.SEResNeXt26TS(weights=None, include_top=False, input_shape=(None, None, 3))
    for shape in [(2, 13, 14, 8), (1, 16, 17, 3)]:
        x = np.random.default_rng(0).normal(-1.0, 0.5, shape).astype("float32")
        pooled = np.asarray(model.get_layer("pool1_pool")(model.get_layer("pool1_max")(x)))
        expected = torch.nn.functional.max_pool2d(torch.from_numpy(x).permute(0, 3, 1, 2), 3, 2, 1)
        np.testing.assert_array_equal(pooled, expected.permute(0, 2, 3, 1).numpy())


def test_se_after_3x3_needs_bottlenecks():
    with pytest.raises(ValueError, match=r"`se_placement` \"3x3\".*bottleneck.*Received: se_placement='3x3'"):
        keras_senet.SEResNet18(weights=None, se_placement="3x3")
