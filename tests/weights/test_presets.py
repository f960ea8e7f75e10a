"""Preset loading through the public path: registry -> download (from a
local HTTP server on 127.0.0.1 standing in for the hosts) -> hash check ->
conversion -> cache -> model. Checkpoints are made here in the reference
format: torch.save'd state dicts (.pth) and safetensors, timm key names."""

import json
import os
import sys

import keras
import numpy as np
import pytest
import torch
from hosting import cached_files, host_pth, host_safetensors
from safetensors.numpy import save_file
from timm_reference import random_timm_model, state_dict_arrays, timm_logits

import keras_senet
from keras_senet import weights as weights_module
from keras_senet.inputs import fit_to_input
from keras_senet.models import se_resnet
from keras_senet.weights.convert import read_checkpoint
from keras_senet.weights.presets import DEFAULT_PRESETS, PRESETS

X97 = np.random.default_rng(0).normal(size=(2, 97, 97, 3)).astype("float32")


def test_imagenet_downloads_converts_caches_and_matches_reference(server, cache, monkeypatch):
    reference = random_timm_model("legacy_seresnet18")
    name = host_pth(server, reference, "seresnet18")
    monkeypatch.setitem(PRESETS["legacy_seresnet18.in1k"], "urls", (f"{server.url}/{name}",))

    model = keras_senet.SEResNet18(weights="imagenet", input_shape=(97, 97, 3), classifier_activation=None)
    assert np.abs(model.predict(X97, verbose=0) - timm_logits(reference, X97)).max() <= 1e-4
    assert cached_files(cache) == ["legacy_seresnet18.in1k.keras.safetensors"]

    server.close()  # offline from now on: the cache serves
    again = keras_senet.SEResNet18(weights="legacy_seresnet18.in1k", input_shape=(97, 97, 3), classifier_activation=None)
    np.testing.assert_array_equal(again.predict(X97, verbose=0), model.predict(X97, verbose=0))
    backbone = keras_senet.SEResNet18(weights="imagenet", include_top=False, input_shape=(97, 97, 3))
    features = keras.Model(model.input, model.get_layer("conv5_block2_out").output)
    np.testing.assert_array_equal(np.asarray(backbone(X97)), np.asarray(features(X97)))


def test_safetensors_preset_after_a_failing_mirror(server, cache, monkeypatch):
    reference = random_timm_model("seresnet50")
    name = host_safetensors(server, reference, "seresnet50.a3_in1k")
    server.broken["/down/model.safetensors"] = "503"
    urls = (f"{server.url}/down/model.safetensors", f"{server.url}/{name}")
    monkeypatch.setitem(PRESETS["seresnet50.a3_in1k"], "urls", urls)
    model = keras_senet.SEResNet50(weights="seresnet50.a3_in1k", input_shape=(97, 97, 3), classifier_activation=None)
    assert model.get_layer("conv3_block1_2_conv").strides == (2, 2)  # the preset chose variant="torch"
    assert np.abs(model.predict(X97, verbose=0) - timm_logits(reference, X97)).max() <= 1e-4
    assert server.requests == ["/down/model.safetensors", f"/{name}"]


def test_tampered_file_fails_hash_and_leaves_cache_clean(server, cache, monkeypatch):
    name = host_pth(server, random_timm_model("legacy_seresnet18"), "seresnet18")
    path = os.path.join(server.root, name)
    data = bytearray(open(path, "rb").read())
    data[-100] ^= 0xFF
    open(path, "wb").write(bytes(data))
    monkeypatch.setitem(PRESETS["legacy_seresnet18.in1k"], "urls", (f"{server.url}/{name}",))
    with pytest.raises(ValueError, match=r"failed its hash check.*nothing was cached|nothing was cached(.|\n)*failed its hash check"):
        keras_senet.SEResNet18(weights="imagenet")
    assert cached_files(cache) == []


def test_interrupted_download_leaves_cache_clean(server, cache, monkeypatch):
    name = host_pth(server, random_timm_model("legacy_seresnet18"), "seresnet18")
    server.broken[f"/{name}"] = "cut"
    monkeypatch.setitem(PRESETS["legacy_seresnet18.in1k"], "urls", (f"{server.url}/{name}",))
    with pytest.raises(ValueError, match="Could not load the weights of preset 'legacy_seresnet18.in1k'; nothing was cached"):
        keras_senet.SEResNet18(weights="imagenet")
    assert cached_files(cache) == []


def test_truncated_safetensors_preset_is_named(server, cache, monkeypatch):
    name = host_safetensors(server, random_timm_model("seresnet50"), "seresnet50.a3_in1k")
    path = os.path.join(server.root, name)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 3])
    monkeypatch.setitem(PRESETS["seresnet50.a3_in1k"], "urls", (f"{server.url}/{name}",))
    with pytest.raises(ValueError, match=r"not a readable safetensors file"):
        keras_senet.SEResNet50(weights="seresnet50.a3_in1k")
    assert cached_files(cache) == []


def test_wrong_architecture_preset_file_is_refused(server, cache, monkeypatch):
    name = host_pth(server, random_timm_model("legacy_seresnet34"), "seresnet18")
    monkeypatch.setitem(PRESETS["legacy_seresnet18.in1k"], "urls", (f"{server.url}/{name}",))
    with pytest.raises(ValueError, match=r"does not match model(.|\n)*unexpected tensors: layer1.2"):
        keras_senet.SEResNet18(weights="imagenet")
    assert cached_files(cache) == []


def test_pickle_refused_without_torch(tmp_path, monkeypatch):
    path = tmp_path / "model.pth"
    torch.save(random_timm_model("legacy_seresnet18").state_dict(), path)
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now fails
    with pytest.raises(ValueError, match=r"model.pth is a PyTorch pickle checkpoint; reading it needs torch"):
        read_checkpoint(path)


def test_pickle_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"x": torch.zeros(1), "f": os.system}, path)
    with pytest.raises(ValueError, match="evil.pth is not a readable PyTorch checkpoint"):
        read_checkpoint(path)


def test_checkpoint_path_as_weights(tmp_path):
    reference = random_timm_model("legacy_seresnet50")
    path = tmp_path / "se_resnet50.safetensors"
    save_file({k: np.ascontiguousarray(v) for k, v in state_dict_arrays(reference).items()}, str(path))
    # no variant given: the file's legacy keys choose "caffe" (SE-ResNet-50's default is "torch")
    model = keras_senet.SEResNet50(weights=str(path), input_shape=(97, 97, 3), classifier_activation=None)
    assert np.abs(model.predict(X97, verbose=0) - timm_logits(reference, X97)).max() <= 1e-4
    with pytest.raises(ValueError, match=r"legacy timm checkpoint, which needs variant='caffe'. Received: variant='torch'"):
        keras_senet.SEResNet50(weights=str(path), variant="torch")


def test_registry_is_consistent():
    for name, preset in PRESETS.items():
        model_name = name.split(".")[0]
        assert preset["timm_model"] == model_name
        assert preset["urls"] and all(u.startswith("https://") for u in preset["urls"])
        if preset["classes"] == 1000:
            assert 50 < preset["top1"] < 90 and preset["top1"] < preset["top5"]
            assert preset["results"].startswith("results/results-imagenet.csv at ")
        else:  # an ImageNet-12k head has no ImageNet-1k accuracy
            assert np.isnan(preset["top1"]) and np.isnan(preset["top5"]) and preset["results"] is None
    for arch, name in DEFAULT_PRESETS.items():
        assert PRESETS[name]["arch"] == arch and PRESETS[name]["classes"] == 1000


def test_presets_agree_with_timm_pretrained_configs():
    """Sources, class count, sizes and transform against timm's own
    pretrained configs (timm.models.get_pretrained_cfg), an independent copy
    of what the hosts publish."""
    import timm

    for name, preset in PRESETS.items():
        cfg = timm.models.get_pretrained_cfg(name).to_dict()
        hf = [u for u in preset["urls"] if "huggingface.co" in u]
        if cfg.get("hf_hub_id") and hf:
            assert hf == [f"https://huggingface.co/{cfg['hf_hub_id']}/resolve/main/model.safetensors"], name
        original = [u for u in preset["urls"] if "huggingface.co" not in u]
        assert original == ([cfg["url"]] if cfg.get("url") else []), name
        assert preset["classes"] == cfg["num_classes"], name
        assert preset["train_size"] == cfg["input_size"][1], name
        assert preset["test_size"] == (cfg.get("test_input_size") or cfg["input_size"])[1], name
        t = preset["transform"]
        assert (t.mean, t.std, t.interpolation) == (cfg["mean"], cfg["std"], cfg["interpolation"]), name
        # the evaluation timm's results list: at the train size with crop_pct
        # or at the test size with test_crop_pct
        evals = {(cfg["input_size"][1], cfg["crop_pct"])}
        if cfg.get("test_input_size"):
            evals.add((cfg["test_input_size"][1], cfg.get("test_crop_pct") or cfg["crop_pct"]))
        assert (t.size, t.crop_pct) in evals, name


def test_imagenet_12k_preset_downloads_with_its_head(server, cache, monkeypatch):
    """An ImageNet-12k preset: the default classes=1000 builds its
    11,821-class head, and the hosted safetensors (timm's format) load with
    logits equal to timm's. One block per stage (timm: layers=(1, 1, 1, 1),
    ours: the row's depths) keeps it fast; the layers are those of the full
    network, whose parity tests/weights/test_convert.py checks."""
    import timm.models

    name = "seresnextaa101d_32x8d.sw_in12k"
    reference = random_timm_model("seresnextaa101d_32x8d", layers=(1, 1, 1, 1), num_classes=11821)
    monkeypatch.setitem(se_resnet.ARCHS["se_resnextaa101d_32x8d"], "depths", (1, 1, 1, 1))
    hosted = host_safetensors(server, reference, name)
    monkeypatch.setitem(PRESETS[name], "urls", (f"{server.url}/{hosted}",))
    assert timm.models.get_pretrained_cfg(name).num_classes == 11821

    model = keras_senet.SEResNeXtAA101D_32x8d(weights=name, input_shape=(97, 97, 3), classifier_activation=None)
    assert model.output_shape == (None, 11821)
    assert np.abs(model.predict(X97, verbose=0) - timm_logits(reference, X97)).max() <= 1e-4
    assert cached_files(cache) == [f"{name}.keras.safetensors"]
    with pytest.raises(ValueError, match=rf"`weights='{name}'` with `include_top=True`, `classes` should be 11821. "
                                         r"Received: classes=10"):
        keras_senet.SEResNeXtAA101D_32x8d(weights=name, classes=10)
    backbone = keras_senet.SEResNeXtAA101D_32x8d(weights=name, include_top=False, input_shape=(97, 97, 3))
    features = keras.Model(model.input, model.get_layer("conv5_block1_out").output)
    np.testing.assert_array_equal(np.asarray(backbone(X97)), np.asarray(features(X97)))


def test_byobnet_preset_downloads_and_matches_timm(server, cache, monkeypatch):
    """timm's ByobNet SE-ResNeXt (seresnext26ts: SiLU, strided tiered stem,
    SE after the 3x3) through the public path: its hub safetensors (timm's
    ByobNet key names) -> conversion -> cache -> logits equal to timm's, and
    the preset's own eval transform (trained at 256, tested at 288)."""
    name = "seresnext26ts.ch_in1k"
    reference = random_timm_model("seresnext26ts")
    hosted = host_safetensors(server, reference, name)
    monkeypatch.setitem(PRESETS[name], "urls", (f"{server.url}/{hosted}",))
    model = keras_senet.SEResNeXt26TS(weights="imagenet", input_shape=(97, 97, 3), classifier_activation=None)
    assert np.abs(model.predict(X97, verbose=0) - timm_logits(reference, X97)).max() <= 1e-4
    assert cached_files(cache) == [f"{name}.keras.safetensors"]
    # the preset's transform (crop 1.0, bicubic), not the family default (0.875, bilinear)
    assert model.input_transform == fit_to_input(PRESETS[name]["transform"], (97, 97, 3))
    assert (model.input_transform.crop_pct, model.input_transform.interpolation) == (1.0, "bicubic")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(weights="senet154.gluon_in1k"), r"Preset 'senet154.gluon_in1k' does not fit `se_resnet18`; compatible presets: \['legacy_seresnet18.in1k'\]"),
        (dict(weights="legacy_seresnet18.in1k", variant="torch"), r"needs variant='caffe'. Received: variant='torch'"),
        (dict(weights="legacy_seresnet18.in1k", classes=10), r"`classes` should be 1000. Received: classes=10"),
    ],
)
def test_preset_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_senet.SEResNet18(**kwargs)


def test_preset_transform_matches_timm_eval_pipeline():
    """Our tf eval transform against timm's PIL pipeline on a real-looking image."""
    import timm.data
    from PIL import Image

    rng = np.random.default_rng(0)
    # smooth content (resampling differs most on noise): gradients plus blobs
    yy, xx = np.mgrid[0:300, 0:400]
    image = np.stack([xx * 255 / 400, yy * 255 / 300, 128 + 100 * np.sin(xx / 20) * np.cos(yy / 30)], -1)
    image = np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype("uint8")
    for name in ("legacy_seresnet50.in1k", "seresnet50.ra2_in1k"):
        t = PRESETS[name]["transform"]
        ours = np.asarray(weights_module.preset_transform(name)(image))
        theirs = timm.data.create_transform(
            input_size=(3, t.size, t.size), crop_pct=t.crop_pct,
            interpolation=t.interpolation, mean=t.mean, std=t.std,
        )(Image.fromarray(image)).numpy().transpose(1, 2, 0)
        assert ours.shape == theirs.shape == (t.size, t.size, 3)
        assert np.abs(ours - theirs).mean() < 0.02  # normalized units; 1/255/0.226 = 0.017 per grey level


@pytest.mark.tensorflow_only
def test_predict_command_on_a_photo_matches_timm(server, cache, monkeypatch, tmp_path, capsys):
    """`keras-senet predict photo.jpg --model SEResNet18` (the default preset,
    from the local host) against timm's own pipeline: PIL decoding, timm's
    eval transform from its pretrained config (bicubic, crop 0.875), timm's
    model; on all 1000 log-probabilities and on the input itself."""
    import timm.data
    from PIL import Image

    from keras_senet.cli import main

    reference = random_timm_model("legacy_seresnet18")
    name = host_pth(server, reference, "seresnet18")
    monkeypatch.setitem(PRESETS["legacy_seresnet18.in1k"], "urls", (f"{server.url}/{name}",))
    yy, xx = np.mgrid[0:300, 0:400]  # smooth content: decoders and resamplers agree on it
    image = np.stack([xx * 255 / 400, yy * 255 / 300, 128 + 100 * np.sin(xx / 20) * np.cos(yy / 30)], -1)
    photo = str(tmp_path / "photo.jpg")
    Image.fromarray(image.astype("uint8")).save(photo, quality=95)

    assert main(["predict", photo, "--model", "SEResNet18", "--top", "1000", "--json"]) == 0
    ours = {entry["index"]: entry["probability"] for entry in json.loads(capsys.readouterr().out)[0]["top"]}
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=reference))
    with torch.no_grad():
        theirs = torch.log_softmax(reference(transform(Image.open(photo).convert("RGB"))[None]), -1).numpy()[0]
    assert list(ours)[:5] == list(np.argsort(-theirs)[:5])
    # measured: 0.045 (the resamplers' rounding: pixels within 1 level, 12% of
    # them 1 level apart); TensorFlow's default (fast) JPEG DCT: 0.39
    assert max(abs(np.log(p) - theirs[i]) for i, p in ours.items()) < 0.1
    # the input itself: decoded as PIL decodes (identical), resized, cropped
    # and normalized as timm does, to within one uint8 level
    from keras_senet import inputs

    image = inputs.load_images([photo], PRESETS["legacy_seresnet18.in1k"]["transform"])[0]
    levels = np.abs(image - transform(Image.open(photo).convert("RGB")).numpy().transpose(1, 2, 0))
    assert (levels * np.array([0.229, 0.224, 0.225]) * 255).max() < 1.01


def test_imagenet_21k_mobilenet_preset_downloads_normalizes_and_decodes(server, cache, monkeypatch):
    """mobilenetv3_large_100.miil_in21k (timm's safetensors, from the local
    host): the default classes=1000 builds its 11,221-class head; the
    built-in normalization is timm's config's (mean 0, std 1: raw [0, 255]
    images give timm's logits on x / 255, where ImageNet mean/std would be
    far off); decode_predictions names timm's top classes as timm's own
    ImageNet-21K-P lists do."""
    from timm.data import ImageNetInfo, infer_imagenet_subset

    name = "mobilenetv3_large_100.miil_in21k"
    reference = random_timm_model("mobilenetv3_large_100", num_classes=11221)
    hosted = host_safetensors(server, reference, name)
    monkeypatch.setitem(PRESETS[name], "urls", (f"{server.url}/{hosted}",))

    model = keras_senet.SEMobileNetV3Large(weights=name, input_shape=(97, 97, 3), classifier_activation=None)
    assert model.output_shape == (None, 11221)
    assert cached_files(cache) == [f"{name}.keras.safetensors"]
    images = np.random.default_rng(0).uniform(0, 255, (2, 97, 97, 3)).astype("float32")
    logits = model.predict(images, verbose=0)
    expected = timm_logits(reference, images / 255)
    assert np.abs(expected[0] - expected[1]).max() > 0.1  # the logits depend on the image (measured 0.27)
    assert np.abs(logits - expected).max() <= 1e-4

    info = ImageNetInfo(infer_imagenet_subset(reference))  # "imagenet-21k-miil", from the head's width
    for decoded, row in zip(keras_senet.se_mobilenet.decode_predictions(logits, top=3), expected):
        chosen = np.argsort(-row)[:3]  # timm's top classes, in order
        assert [wnid for wnid, _, _ in decoded] == [info.label_names()[i] for i in chosen]
        names = [info.label_descriptions()[i].split(",")[0].replace(" ", "_") for i in chosen]
        assert [label for _, label, _ in decoded] == names


def test_jpeg_decoding_is_pils(tmp_path):
    """inputs.decode_image reads JPEGs as PIL (timm's reader) does, bit for
    bit; TensorFlow's default DCT is 1 level off on average (asserted, so this
    test would notice a default that changed)."""
    import tensorflow as tf
    from PIL import Image

    from keras_senet import inputs

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:120, 0:160]
    image = np.stack([xx * 1.5, yy * 2.0, 128 + 60 * np.sin(xx / 7)], -1) + rng.normal(0, 8, (120, 160, 3))
    path = tmp_path / "noisy.jpg"
    Image.fromarray(np.clip(image, 0, 255).astype("uint8")).save(path, quality=90)
    pil = np.asarray(Image.open(path).convert("RGB"))
    contents = tf.io.read_file(str(path))
    np.testing.assert_array_equal(inputs.decode_image(contents).numpy(), pil)
    fast = tf.io.decode_jpeg(contents).numpy().astype(int)
    assert np.abs(fast - pil).mean() > 0.2
