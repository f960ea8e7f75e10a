"""Plain data: reference architectures and ImageNet presets.

`TIMM_ARCHS` maps a timm model name to this package's constructor and the
options that load its checkpoints with no architectural change (MobileNets
without the built-in [0, 255] preprocessing: timm's input is normalized).

`PRESETS` maps a preset name (timm's `<model>.<tag>`) to: constructor and
variant, `arch` (the constructor's ARCHS key), source `urls` tried in order
(safetensors from the Hugging Face Hub first where it exists, then the
original PyTorch release, whose file name carries a SHA-256 prefix), the
evaluation that produced the reference ImageNet-1k validation accuracy
published by timm (`top1`, `top5`; `results`: which results/results-
imagenet.csv, commit 0173a139 unless a preset names a later one) as an
`InputTransform` (`transform`): size (the models are global-pooled, so they
run at any size; newer presets were evaluated at their test size), crop
fraction, interpolation, mean and std. `train_size` and `test_size` are
timm's pretrained config's `input_size` and `test_input_size` (its default).
`classes`: the head's width, 1000 (ImageNet-1k) or 11821 (ImageNet-12k, the
`*.sw_in12k` presets, which have no ImageNet-1k accuracy: `top1` and `top5`
are NaN).
"""

from keras_senet.inputs import IMAGENET_MEAN, IMAGENET_STD, InputTransform

TIMM_ARCHS = {
    "legacy_seresnet18": ("SEResNet18", dict(variant="caffe")),
    "legacy_seresnet34": ("SEResNet34", dict(variant="caffe")),
    "legacy_seresnet50": ("SEResNet50", dict(variant="caffe")),
    "legacy_seresnet101": ("SEResNet101", dict(variant="caffe")),
    "legacy_seresnet152": ("SEResNet152", dict(variant="caffe")),
    "legacy_seresnext26_32x4d": ("SEResNeXt26", dict(variant="caffe")),
    "legacy_seresnext50_32x4d": ("SEResNeXt50", dict(variant="caffe")),
    "legacy_seresnext101_32x4d": ("SEResNeXt101", dict(variant="caffe")),
    "legacy_senet154": ("SENet154", dict(variant="caffe")),
    "seresnet18": ("SEResNet18", dict(variant="torch")),
    "seresnet34": ("SEResNet34", dict(variant="torch")),
    "seresnet50": ("SEResNet50", dict(variant="torch")),
    "seresnet101": ("SEResNet101", dict(variant="torch")),
    "seresnet152": ("SEResNet152", dict(variant="torch")),
    "seresnext50_32x4d": ("SEResNeXt50", dict(variant="torch")),
    "seresnext101_32x4d": ("SEResNeXt101", dict(variant="torch")),
    "senet154": ("SENet154", dict(variant="torch")),
    "seresnet152d": ("SEResNet152D", dict(variant="torch")),
    "seresnext26d_32x4d": ("SEResNeXt26D", dict(variant="torch")),
    "seresnext26t_32x4d": ("SEResNeXt26T", dict(variant="torch")),
    "seresnext101_32x8d": ("SEResNeXt101_32x8d", dict(variant="torch")),
    "seresnext101_64x4d": ("SEResNeXt101_64x4d", dict(variant="torch")),
    "seresnext101d_32x8d": ("SEResNeXt101D_32x8d", dict(variant="torch")),
    "seresnextaa101d_32x8d": ("SEResNeXtAA101D_32x8d", dict(variant="torch")),
    "seresnextaa201d_32x8d": ("SEResNeXtAA201D_32x8d", dict(variant="torch")),
    "seresnet33ts": ("SEResNet33TS", dict(variant="torch")),
    "seresnext26ts": ("SEResNeXt26TS", dict(variant="torch")),
    "mobilenetv3_large_100": ("SEMobileNetV3Large", dict(include_preprocessing=False)),
    "mobilenetv3_small_100": ("SEMobileNetV3Small", dict(include_preprocessing=False)),
    "mobilenetv3_small_050": ("SEMobileNetV3Small", dict(include_preprocessing=False, alpha=0.5)),
    "mobilenetv3_small_075": ("SEMobileNetV3Small", dict(include_preprocessing=False, alpha=0.75)),
    "mobilenetv3_large_150d": (
        "SEMobileNetV3Large", dict(include_preprocessing=False, alpha=1.5, depth_coefficient=1.2)),
    "mobilenetv3_rw": ("SEMobileNetV3Large", dict(include_preprocessing=False, implementation="rw")),
}

_HF = "https://huggingface.co/timm/{}/resolve/main/model.safetensors"
_GH = "https://github.com/rwightman/pytorch-image-models/releases/download/"
_RSB = "https://github.com/huggingface/pytorch-image-models/releases/download/v0.1-rsb-weights/"
_GLUON = "https://github.com/rwightman/pytorch-pretrained-gluonresnet/releases/download/v0.1/"
_TPU = _GH + "v0.1-tpu-weights/"
_RESULTS = "results/results-imagenet.csv at 0173a139 (2023-06-06)"
# the first results file that has seresnextaa201d_32x8d
_RESULTS_2026 = "results/results-imagenet.csv at aa4b5850 (2026-08-08)"
IMAGENET_12K_CLASSES = 11821  # timm's ImageNet-12k subset of ImageNet-22k
NO_ACCURACY = float("nan")  # no ImageNet-1k head, no ImageNet-1k accuracy

# constructor -> its ARCHS key (models/ sits above weights/: named here)
_ARCH_OF = {
    "SEMobileNetV3Large": "se_mobilenet_v3_large", "SEMobileNetV3Small": "se_mobilenet_v3_small",
    "SEResNet18": "se_resnet18", "SEResNet34": "se_resnet34", "SEResNet50": "se_resnet50",
    "SEResNet101": "se_resnet101", "SEResNet152": "se_resnet152", "SEResNeXt26": "se_resnext26",
    "SEResNeXt50": "se_resnext50", "SEResNeXt101": "se_resnext101", "SENet154": "senet154",
    "SEResNet152D": "se_resnet152d", "SEResNeXt26D": "se_resnext26d", "SEResNeXt26T": "se_resnext26t",
    "SEResNeXt101_32x8d": "se_resnext101_32x8d", "SEResNeXt101_64x4d": "se_resnext101_64x4d",
    "SEResNeXt101D_32x8d": "se_resnext101d_32x8d", "SEResNeXtAA101D_32x8d": "se_resnextaa101d_32x8d",
    "SEResNeXtAA201D_32x8d": "se_resnextaa201d_32x8d", "SEResNet33TS": "se_resnet33ts",
    "SEResNeXt26TS": "se_resnext26ts",
}


def _preset(
    timm_model, urls, top1, top5, interpolation="bilinear", crop_pct=0.875, eval_size=224, *,
    train_size=224, test_size=None, classes=1000, results=_RESULTS,
):
    constructor, options = TIMM_ARCHS[timm_model]
    variant = options.get("variant")
    return dict(
        constructor=constructor, arch=_ARCH_OF[constructor], variant=variant, timm_model=timm_model,
        urls=tuple(urls), top1=top1, top5=top5, results=results, classes=classes,
        train_size=train_size, test_size=test_size or train_size,
        # the evaluation that gave top1/top5; a model built with the preset
        # carries it (SE-MobileNetV3 with built-in preprocessing in "raw" mode)
        transform=InputTransform("torch", IMAGENET_MEAN, IMAGENET_STD, eval_size, crop_pct, interpolation),
    )


def _normalized(preset, mean, std):
    """`preset` with inputs normalized by other statistics (timm's cfg mean/std)."""
    return dict(preset, transform=preset["transform"].replace(mean=mean, std=std))


_HALF, _ZERO, _ONE = (0.5, 0.5, 0.5), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)  # timm's inception / MIIL statistics
_TRESNET = _GH + "v0.1-tresnet/"
# the first results file that has the ra4 MobileNetV3 presets
_RESULTS_2025 = "results/results-imagenet.csv at 4e5207c7 (2025-10-30)"
IMAGENET_21K_P_CLASSES = 11221  # the MIIL ImageNet-21K-P (winter 2021) classes


def _hf(tag, *more):
    """The Hugging Face Hub safetensors of timm's `<model>.<tag>`, then `more`."""
    return [_HF.format(tag), *more]


PRESETS = {
    "legacy_seresnet18.in1k": _preset(
        "legacy_seresnet18", [_GH + "v0.1-weights/seresnet18-4bb0ce65.pth"], 71.766, 90.332, "bicubic"),
    "legacy_seresnet34.in1k": _preset(
        "legacy_seresnet34", [_GH + "v0.1-weights/seresnet34-a4004e63.pth"], 74.808, 92.126),
    "legacy_seresnet50.in1k": _preset(
        "legacy_seresnet50", [_GH + "v0.1-cadene/se_resnet50-ce0d4300.pth"], 77.644, 93.758),
    "legacy_seresnet101.in1k": _preset(
        "legacy_seresnet101", [_GH + "v0.1-cadene/se_resnet101-7e38fcc6.pth"], 78.386, 94.262),
    "legacy_seresnet152.in1k": _preset(
        "legacy_seresnet152", [_GH + "v0.1-cadene/se_resnet152-d17c99b7.pth"], 78.660, 94.370),
    "legacy_seresnext26_32x4d.in1k": _preset(
        "legacy_seresnext26_32x4d", [_GH + "v0.1-weights/seresnext26_32x4d-65ebdb501.pth"],
        77.108, 93.314, "bicubic"),
    "legacy_seresnext50_32x4d.in1k": _preset(
        "legacy_seresnext50_32x4d", [_GH + "v0.1-weights/legacy_se_resnext50_32x4d-f3651bad.pth"],
        79.076, 94.432),
    "legacy_seresnext101_32x4d.in1k": _preset(
        "legacy_seresnext101_32x4d", [_GH + "v0.1-weights/legacy_se_resnext101_32x4d-37725eac.pth"],
        80.230, 95.026),
    "legacy_senet154.in1k": _preset(
        "legacy_senet154", [_GH + "v0.1-weights/legacy_senet154-e9eb9fe6.pth"], 81.308, 95.492),
    "seresnet50.a1_in1k": _preset(
        "seresnet50", [_HF.format("seresnet50.a1_in1k"), _RSB + "seresnet50_a1_0-ffa00869.pth"],
        81.102, 95.120, "bicubic", 1.0, 288, test_size=288),
    "seresnet50.a2_in1k": _preset(
        "seresnet50", [_HF.format("seresnet50.a2_in1k"), _RSB + "seresnet50_a2_0-850de0d9.pth"],
        81.106, 95.222, "bicubic", 1.0, 288, test_size=288),
    "seresnet50.a3_in1k": _preset(
        "seresnet50", [_HF.format("seresnet50.a3_in1k"), _RSB + "seresnet50_a3_0-317ecd56.pth"],
        77.028, 93.074, "bicubic", 0.95, 224, train_size=160, test_size=224),
    "seresnet50.ra2_in1k": _preset(
        "seresnet50", [_HF.format("seresnet50.ra2_in1k"), _GH + "v0.1-weights/seresnet50_ra_224-8efdb4bb.pth"],
        81.284, 95.652, "bicubic", 0.95, 288, test_size=288),
    "seresnext50_32x4d.racm_in1k": _preset(
        "seresnext50_32x4d",
        [_HF.format("seresnext50_32x4d.racm_in1k"), _GH + "v0.1-weights/seresnext50_32x4d_racm-a304a460.pth"],
        82.196, 96.148, "bicubic", 0.95, 288, test_size=288),
    "seresnext50_32x4d.gluon_in1k": _preset(
        "seresnext50_32x4d",
        [_HF.format("seresnext50_32x4d.gluon_in1k"), _GLUON + "gluon_seresnext50_32x4d-90cf2d6e.pth"],
        79.910, 94.824, "bicubic"),
    "seresnext101_32x4d.gluon_in1k": _preset(
        "seresnext101_32x4d",
        [_HF.format("seresnext101_32x4d.gluon_in1k"), _GLUON + "gluon_seresnext101_32x4d-cf52900d.pth"],
        80.892, 95.296, "bicubic"),
    "senet154.gluon_in1k": _preset(
        "senet154", [_HF.format("senet154.gluon_in1k"), _GLUON + "gluon_senet154-70a1a3c0.pth"],
        81.226, 95.358, "bicubic"),
    "mobilenetv3_large_100.ra_in1k": _preset(
        "mobilenetv3_large_100",
        [_HF.format("mobilenetv3_large_100.ra_in1k"), _GH + "v0.1-weights/mobilenetv3_large_100_ra-f55367f5.pth"],
        75.766, 92.538, "bicubic"),
    "mobilenetv3_small_100.lamb_in1k": _preset(
        "mobilenetv3_small_100",
        [_HF.format("mobilenetv3_small_100.lamb_in1k"), _GH + "v0.1-weights/mobilenetv3_small_100_lamb-266a294c.pth"],
        67.656, 87.636, "bicubic"),
    # MobileNetV3 widths, depths and trainings (timm/models/mobilenetv3.py).
    # ra4: trained at 224 / 256, evaluated at the test size with crop 1.0,
    # inputs normalized with mean = std = 0.5; miil (Alibaba MIIL, ImageNet-
    # 21K-P pretraining, arXiv 2104.10972): inputs in [0, 1], mean 0, std 1.
    "mobilenetv3_small_050.lamb_in1k": _preset(
        "mobilenetv3_small_050",
        _hf("mobilenetv3_small_050.lamb_in1k", _GH + "v0.1-weights/mobilenetv3_small_050_lambc-4b7bbe87.pth"),
        57.910, 80.180, "bicubic"),
    "mobilenetv3_small_075.lamb_in1k": _preset(
        "mobilenetv3_small_075",
        _hf("mobilenetv3_small_075.lamb_in1k", _GH + "v0.1-weights/mobilenetv3_small_075_lambc-384766db.pth"),
        65.234, 85.446, "bicubic"),
    "mobilenetv3_large_100.ra4_e3600_r224_in1k": _normalized(_preset(
        "mobilenetv3_large_100", _hf("mobilenetv3_large_100.ra4_e3600_r224_in1k"),
        77.182, 93.328, "bicubic", 1.0, 256, test_size=256, results=_RESULTS_2025), _HALF, _HALF),
    "mobilenetv3_large_100.miil_in21k": _normalized(_preset(
        "mobilenetv3_large_100",
        _hf("mobilenetv3_large_100.miil_in21k", _TRESNET + "mobilenetv3_large_100_in21k_miil-d71cc17b.pth"),
        NO_ACCURACY, NO_ACCURACY, classes=IMAGENET_21K_P_CLASSES, results=None), _ZERO, _ONE),
    "mobilenetv3_large_100.miil_in21k_ft_in1k": _normalized(_preset(
        "mobilenetv3_large_100",
        _hf("mobilenetv3_large_100.miil_in21k_ft_in1k", _TRESNET + "mobilenetv3_large_100_1k_miil_78_0-66471c13.pth"),
        77.918, 92.914), _ZERO, _ONE),
    "mobilenetv3_large_150d.ra4_e3600_r256_in1k": _normalized(_preset(
        "mobilenetv3_large_150d", _hf("mobilenetv3_large_150d.ra4_e3600_r256_in1k"),
        81.832, 95.878, "bilinear", 1.0, 320, train_size=256, test_size=320, results=_RESULTS_2025), _HALF, _HALF),
    "mobilenetv3_rw.rmsp_in1k": _preset(
        "mobilenetv3_rw", _hf("mobilenetv3_rw.rmsp_in1k", _GH + "v0.1-weights/mobilenetv3_100-35495452.pth"),
        75.620, 92.704, "bicubic"),
    # ResNet-D and wide SE-ResNeXts (timm/models/resnet.py). Evaluated at the
    # test size, crop 1.0 / 0.95 as timm's results list them.
    "seresnet152d.ra2_in1k": _preset(
        "seresnet152d", _hf("seresnet152d.ra2_in1k", _GH + "v0.1-weights/seresnet152d_ra2-04464dd2.pth"),
        84.360, 97.040, "bicubic", 1.0, 320, train_size=256, test_size=320),
    "seresnext26d_32x4d.bt_in1k": _preset(
        "seresnext26d_32x4d", _hf("seresnext26d_32x4d.bt_in1k", _GH + "v0.1-weights/seresnext26d_32x4d-80fa48a3.pth"),
        78.814, 94.240, "bicubic", 0.95, 288, test_size=288),
    "seresnext26t_32x4d.bt_in1k": _preset(
        "seresnext26t_32x4d", _hf("seresnext26t_32x4d.bt_in1k", _GH + "v0.1-weights/seresnext26tn_32x4d-569cb627.pth"),
        78.744, 94.312, "bicubic", 0.95, 288, test_size=288),
    "seresnext101_32x8d.ah_in1k": _preset(
        "seresnext101_32x8d", _hf("seresnext101_32x8d.ah_in1k", _TPU + "seresnext101_32x8d_ah-e6bc4c0a.pth"),
        84.186, 96.874, "bicubic", 1.0, 288, test_size=288),
    "seresnext101_64x4d.gluon_in1k": _preset(
        "seresnext101_64x4d", _hf("seresnext101_64x4d.gluon_in1k", _GLUON + "gluon_seresnext101_64x4d-f9926f93.pth"),
        80.896, 95.296, "bicubic"),
    "seresnext101d_32x8d.ah_in1k": _preset(
        "seresnext101d_32x8d", _hf("seresnext101d_32x8d.ah_in1k", _TPU + "seresnext101d_32x8d_ah-191d7b94.pth"),
        84.358, 96.920, "bicubic", 1.0, 288, test_size=288),
    "seresnextaa101d_32x8d.ah_in1k": _preset(
        "seresnextaa101d_32x8d", _hf("seresnextaa101d_32x8d.ah_in1k", _TPU + "seresnextaa101d_32x8d_ah-83c8ae12.pth"),
        84.566, 97.076, "bicubic", 1.0, 288, test_size=288),
    # ImageNet-12k head; its transform is timm's config's (train size, crop 0.95)
    "seresnextaa101d_32x8d.sw_in12k": _preset(
        "seresnextaa101d_32x8d", _hf("seresnextaa101d_32x8d.sw_in12k"), NO_ACCURACY, NO_ACCURACY,
        "bicubic", 0.95, 224, test_size=288, classes=IMAGENET_12K_CLASSES, results=None),
    "seresnextaa101d_32x8d.sw_in12k_ft_in1k": _preset(
        "seresnextaa101d_32x8d", _hf("seresnextaa101d_32x8d.sw_in12k_ft_in1k"),
        86.484, 98.030, "bicubic", 1.0, 288, test_size=288),
    "seresnextaa101d_32x8d.sw_in12k_ft_in1k_288": _preset(
        "seresnextaa101d_32x8d", _hf("seresnextaa101d_32x8d.sw_in12k_ft_in1k_288"),
        86.724, 98.176, "bicubic", 1.0, 320, train_size=288, test_size=320),
    "seresnextaa201d_32x8d.sw_in12k": _preset(
        "seresnextaa201d_32x8d", _hf("seresnextaa201d_32x8d.sw_in12k"), NO_ACCURACY, NO_ACCURACY,
        "bicubic", 0.95, 320, train_size=320, test_size=384, classes=IMAGENET_12K_CLASSES, results=None),
    "seresnextaa201d_32x8d.sw_in12k_ft_in1k_384": _preset(
        "seresnextaa201d_32x8d", _hf("seresnextaa201d_32x8d.sw_in12k_ft_in1k_384"),
        87.304, 98.334, "bicubic", 1.0, 384, train_size=384, results=_RESULTS_2026),
    # timm's ByobNet SE-ResNets (timm/models/byobnet.py): trained at 256,
    # evaluated at the test size 288 with crop 1.0
    "seresnet33ts.ra2_in1k": _preset(
        "seresnet33ts", _hf("seresnet33ts.ra2_in1k", _GH + "v0.1-attn-weights/seresnet33ts_256-f8ad44d9.pth"),
        80.784, 95.362, "bicubic", 1.0, 288, train_size=256, test_size=288),
    "seresnext26ts.ch_in1k": _preset(
        "seresnext26ts", _hf("seresnext26ts.ch_in1k", _GH + "v0.1-attn-weights/seresnext26ts_256-6f0d74a3.pth"),
        78.272, 94.094, "bicubic", 1.0, 288, train_size=256, test_size=288),
}

# weights="imagenet": the most accurate preset of each architecture (its
# variant is the constructor's default variant, see models/se_resnet.py).
DEFAULT_PRESETS = {
    "se_resnet18": "legacy_seresnet18.in1k",
    "se_resnet34": "legacy_seresnet34.in1k",
    "se_resnet50": "seresnet50.ra2_in1k",
    "se_resnet101": "legacy_seresnet101.in1k",
    "se_resnet152": "legacy_seresnet152.in1k",
    "se_resnext26": "legacy_seresnext26_32x4d.in1k",
    "se_resnext50": "seresnext50_32x4d.racm_in1k",
    "se_resnext101": "seresnext101_32x4d.gluon_in1k",
    "senet154": "legacy_senet154.in1k",
    "se_resnet152d": "seresnet152d.ra2_in1k",
    "se_resnext26d": "seresnext26d_32x4d.bt_in1k",
    "se_resnext26t": "seresnext26t_32x4d.bt_in1k",
    "se_resnext101_32x8d": "seresnext101_32x8d.ah_in1k",
    "se_resnext101_64x4d": "seresnext101_64x4d.gluon_in1k",
    "se_resnext101d_32x8d": "seresnext101d_32x8d.ah_in1k",
    "se_resnextaa101d_32x8d": "seresnextaa101d_32x8d.sw_in12k_ft_in1k_288",
    "se_resnextaa201d_32x8d": "seresnextaa201d_32x8d.sw_in12k_ft_in1k_384",
    "se_resnet33ts": "seresnet33ts.ra2_in1k",
    "se_resnext26ts": "seresnext26ts.ch_in1k",
    "se_mobilenet_v3_large": "mobilenetv3_large_100.miil_in21k_ft_in1k",
    "se_mobilenet_v3_small": "mobilenetv3_small_100.lamb_in1k",
}
