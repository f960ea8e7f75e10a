"""Parity with the reference implementation (timm, PyTorch CPU) through our
converter: random weights, BatchNorm statistics re-estimated on a random
batch (random ones let the input fade before the logits: see
timm_reference.random_timm_model), fixed input. And the input transform a
converted model carries: that of the checkpoint's timm tag."""

import sys

import numpy as np
import pytest
from safetensors.numpy import save_file
from harness import forward
from timm_reference import random_timm_model, shallow_twin, state_dict_arrays, timm_logits

import keras_senet
from keras_senet import inputs
from keras_senet.cli import main
from keras_senet.models import se_resnet
from keras_senet.models.from_timm import convert_timm_checkpoint, timm_transform
from keras_senet.weights.convert import load_timm_state_dict, read_checkpoint
from keras_senet.weights.presets import PRESETS, TIMM_ARCHS

TOLERANCE = 1e-4  # max abs logit difference, fp32


def save_reference(model, path):
    """The reference file format: a flat safetensors state dict, timm's key names."""
    save_file({k: np.ascontiguousarray(v) for k, v in state_dict_arrays(model).items()}, str(path))
    return path


def assert_logits_match(actual, reference, x):
    """`actual` equals the reference's logits on `x` within TOLERANCE, or,
    where float32 itself is less exact than that (100- to 150-layer networks
    whose activations stay near unit variance), is no further from the exact
    logits (the reference run in float64) than twice the reference's own
    float32 error."""
    expected = timm_logits(reference, x)
    # the logits depend on the input, not on the biases alone
    assert np.abs(expected[0] - expected[1]).max() > 0.5, "the input does not reach the logits"
    error = np.abs(actual - expected).max()
    if error > TOLERANCE:
        exact = timm_logits(reference, x, float64=True)
        reference_error = np.abs(expected - exact).max()
        assert np.abs(actual - exact).max() <= 2 * reference_error, (error, reference_error)


def check_parity(timm_name, size, tmp_path):
    reference = random_timm_model(timm_name, statistics_size=size)
    path = save_reference(reference, tmp_path / f"{timm_name}.safetensors")
    model = convert_timm_checkpoint(
        timm_name, path, input_shape=(size, size, 3), classifier_activation=None
    )
    x = np.random.default_rng(0).normal(size=(2, size, size, 3)).astype("float32")
    assert_logits_match(forward(model, x), reference, x)


# The 101- to 201-layer rows (their SE-ResNet row has more blocks than the
# 50-layer ones), 10-40 s each at full depth: checked one block per stage
# deep (timm: layers=(1, 1, 1, 1)), which has every kind of layer of the row
# (the 50-layer rows run at full depth), and their depths by the parameter
# counts (tests/models/test_se_resnet.py). Value: the twin's ARCHS key. At
# full depth (measured once here, 97x97) they differ from timm by 1.6e-4
# (seresnext101_32x8d) to 3.9e-3 (seresnextaa201d_32x8d) with logits of
# 12-18: float32 rounding, the size of timm's own float32-vs-float64
# difference (1.9e-4 and 2.6e-3), which assert_logits_match allows.
_ARCH = {p["constructor"]: p["arch"] for p in PRESETS.values()}
DEEP = {
    name: _ARCH[constructor] for name, (constructor, _) in TIMM_ARCHS.items()
    if sum(se_resnet.ARCHS.get(_ARCH[constructor], {}).get("depths", ())) > 16
}


# Other widths and depths of a MobileNetV3 row (the same blocks as
# mobilenetv3_small_100 / large_100): repeats.
MOBILENET_WIDTHS = {"mobilenetv3_small_050", "mobilenetv3_small_075", "mobilenetv3_large_150d"}
# timm's ByobNet SE-ResNets: seresnet33ts runs always (SiLU, SE after the
# 3x3, strided stem without pool, final 1x1 conv); seresnext26ts adds 32
# channels per group and the stem's max-pool after SiLU (-inf padding).
BYOBNET_SIBLINGS = {"seresnext26ts"}


# An odd size exercises padding and ceil-mode pooling at every stride.
@pytest.mark.parametrize("timm_name", [
    pytest.param(name, marks=pytest.mark.sibling) if name in MOBILENET_WIDTHS | BYOBNET_SIBLINGS else name
    for name in TIMM_ARCHS if name not in DEEP
])
def test_parity_odd_size(timm_name, tmp_path):
    check_parity(timm_name, 97, tmp_path)


@pytest.mark.parametrize("timm_name", list(DEEP))
def test_deep_row_parity(timm_name, tmp_path):
    """At 97x97 (odd sides at every stride), one block per stage deep (see
    DEEP), through the converter's file path."""
    reference = random_timm_model(timm_name, layers=(1, 1, 1, 1))
    path = save_reference(reference, tmp_path / f"{timm_name}.safetensors")
    variant = TIMM_ARCHS[timm_name][1]["variant"]  # legacy_*: caffe
    model = shallow_twin(DEEP[timm_name], variant=variant, input_shape=(97, 97, 3), classifier_activation=None)
    load_timm_state_dict(model, read_checkpoint(path), source=str(path))
    x = np.random.default_rng(0).normal(size=(2, 97, 97, 3)).astype("float32")
    assert_logits_match(forward(model, x), reference, x)


@pytest.mark.parametrize("timm_name", ["legacy_seresnet50", "seresnet50", "mobilenetv3_large_100"])
def test_parity_224(timm_name, tmp_path):
    check_parity(timm_name, 224, tmp_path)


def test_no_top_ignores_classifier(tmp_path):
    reference = random_timm_model("legacy_seresnet18")
    path = save_reference(reference, tmp_path / "r18.safetensors")
    model = convert_timm_checkpoint("legacy_seresnet18", path, include_top=False, input_shape=(64, 64, 3))
    assert model.output_shape == (None, 2, 2, 512)


def test_wrong_architecture_is_named(tmp_path):
    path = save_reference(random_timm_model("seresnet18"), tmp_path / "r18.safetensors")
    with pytest.raises(ValueError) as error:
        convert_timm_checkpoint("seresnet34", path)
    message = str(error.value)
    assert "r18.safetensors does not match model 'se_resnet34'" in message
    assert "missing tensors: layer1.2.conv1.weight" in message


def test_misshaped_tensor_is_named_and_model_unchanged(tmp_path):
    tensors = state_dict_arrays(random_timm_model("seresnet18"))
    tensors["fc.weight"] = tensors["fc.weight"][:10]
    model = keras_senet.SEResNet18(weights=None, variant="torch")
    before = [np.asarray(w).copy() for w in model.weights]
    with pytest.raises(ValueError, match=r"mis-shaped tensors: fc.weight: \(10, 512\) in the file"):
        load_timm_state_dict(model, tensors, source="bad.safetensors")
    assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(before, model.weights))


def test_unexpected_tensor_is_named(tmp_path):
    tensors = state_dict_arrays(random_timm_model("seresnet18"))
    tensors["head.extra.weight"] = np.zeros(3, "float32")
    with pytest.raises(ValueError, match="unexpected tensors: head.extra.weight"):
        load_timm_state_dict(keras_senet.SEResNet18(weights=None, variant="torch"), tensors)


def test_truncated_safetensors(tmp_path):
    path = save_reference(random_timm_model("legacy_seresnet18"), tmp_path / "r18.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="r18.safetensors is not a readable safetensors file"):
        read_checkpoint(path)


def test_output_written_atomically(tmp_path):
    path = save_reference(random_timm_model("legacy_seresnet18"), tmp_path / "r18.safetensors")
    out = tmp_path / "r18.keras"
    convert_timm_checkpoint("legacy_seresnet18", path, output=out)
    assert out.exists() and [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []
    with pytest.raises(ValueError, match="missing tensors"):
        convert_timm_checkpoint("legacy_seresnet34", path, output=tmp_path / "r34.keras")
    assert not (tmp_path / "r34.keras").exists()


# -- the input transform of the converted model ------------------------------

@pytest.fixture(scope="module")
def mobilenet_checkpoint(tmp_path_factory):
    """A random mobilenetv3_large_100 state dict: all its tags share it."""
    path = tmp_path_factory.mktemp("mobilenetv3") / "mobilenetv3_large_100.safetensors"
    return save_reference(random_timm_model("mobilenetv3_large_100", statistics_size=None), path)


# timm 1.0.31's pretrained_cfg of each tag (mean, std, test size or size,
# test crop or crop, interpolation): MIIL's ImageNet-21K-P models take [0, 1]
# images, ra4 is evaluated at its test size 256 without a crop.
MOBILENET_TAGS = {
    "miil_in21k_ft_in1k": ((0.0,) * 3, (1.0,) * 3, 224, 0.875, "bilinear"),
    "ra4_e3600_r224_in1k": ((0.5,) * 3, (0.5,) * 3, 256, 1.0, "bicubic"),
}


@pytest.mark.parametrize("tag", list(MOBILENET_TAGS))
def test_convert_takes_the_transform_of_the_tag(tag, mobilenet_checkpoint, tmp_path, capsys):
    """`keras-senet convert --timm-model NAME.TAG`: the .keras file carries
    the preset's transform for that tag (not the first preset's, ra_in1k:
    ImageNet statistics at 224), and the command says where it is from."""
    name = f"mobilenetv3_large_100.{tag}"
    out = tmp_path / "model.keras"
    assert main(["convert", "--timm-model", name, "--checkpoint", str(mobilenet_checkpoint), "--output", str(out)]) == 0
    assert f"input transform from preset {name}: mode torch" in capsys.readouterr().out
    t = inputs.load_model(out, compile=False).input_transform
    preset = PRESETS[name]["transform"]
    assert (t.mean, t.std, t.size, t.crop_pct, t.interpolation) == MOBILENET_TAGS[tag]
    assert (t.mean, t.std, t.size, t.crop_pct, t.interpolation) == (
        preset.mean, preset.std, preset.size, preset.crop_pct, preset.interpolation)
    first = PRESETS["mobilenetv3_large_100.ra_in1k"]["transform"]  # what every tag got before
    assert (t.mean, t.size) != (first.mean, first.size)


def test_transform_without_a_matching_preset(monkeypatch):
    """A name without a tag: timm's default tag (its preset where there is
    one, else timm's pretrained_cfg); without timm, the default preset."""
    transform, source = timm_transform("mobilenetv3_large_100")
    assert transform == PRESETS["mobilenetv3_large_100.ra_in1k"]["transform"]
    assert source == "preset mobilenetv3_large_100.ra_in1k (timm's default tag for mobilenetv3_large_100)"
    # no preset: timm 1.0.31's cfg of seresnet18.untrained (test size 288, test crop 0.95, bicubic)
    transform, source = timm_transform("seresnet18")
    assert (transform.size, transform.crop_pct, transform.interpolation) == (288, 0.95, "bicubic")
    assert source == "timm's pretrained_cfg of seresnet18.untrained"
    with pytest.raises(ValueError, match=r"`timm_model` 'mobilenetv3_large_100.foo': Invalid pretrained tag \(foo\).*"
                                         r"'miil_in21k'.*Received: timm_model='mobilenetv3_large_100.foo'"):
        timm_transform("mobilenetv3_large_100.foo")

    monkeypatch.setitem(sys.modules, "timm", None)  # import timm now fails
    monkeypatch.setitem(sys.modules, "timm.models", None)
    transform, source = timm_transform("mobilenetv3_large_100.foo")
    assert transform == PRESETS["mobilenetv3_large_100.miil_in21k_ft_in1k"]["transform"]  # weights="imagenet"
    assert source.startswith("default preset mobilenetv3_large_100.miil_in21k_ft_in1k (tag 'foo', which no preset "
                             "has, and timm is not installed")
    assert timm_transform("seresnet18") == (
        None, "the constructor's default (a tagless name and timm is not installed to read its pretrained_cfg)")
    assert timm_transform("mobilenetv3_large_100.ra4_e3600_r224_in1k")[1] == (
        "preset mobilenetv3_large_100.ra4_e3600_r224_in1k")
