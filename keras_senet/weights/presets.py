"""Plain data: reference architectures and ImageNet presets.

`TIMM_ARCHS` maps a timm model name to this package's constructor and the
variant that loads its checkpoints with no architectural change.
"""

TIMM_ARCHS = {
    "legacy_seresnet18": ("SEResNet18", "caffe"),
    "legacy_seresnet34": ("SEResNet34", "caffe"),
    "legacy_seresnet50": ("SEResNet50", "caffe"),
    "legacy_seresnet101": ("SEResNet101", "caffe"),
    "legacy_seresnet152": ("SEResNet152", "caffe"),
    "legacy_seresnext26_32x4d": ("SEResNeXt26", "caffe"),
    "legacy_seresnext50_32x4d": ("SEResNeXt50", "caffe"),
    "legacy_seresnext101_32x4d": ("SEResNeXt101", "caffe"),
    "legacy_senet154": ("SENet154", "caffe"),
    "seresnet18": ("SEResNet18", "torch"),
    "seresnet34": ("SEResNet34", "torch"),
    "seresnet50": ("SEResNet50", "torch"),
    "seresnet101": ("SEResNet101", "torch"),
    "seresnet152": ("SEResNet152", "torch"),
    "seresnext50_32x4d": ("SEResNeXt50", "torch"),
    "seresnext101_32x4d": ("SEResNeXt101", "torch"),
    "senet154": ("SENet154", "torch"),
}
