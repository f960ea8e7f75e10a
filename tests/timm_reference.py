"""Reference models for parity tests: timm on PyTorch CPU, random weights
and BatchNorm statistics of a random batch (identity BN would hide bugs)."""

import numpy as np

def random_timm_model(name, seed=0, statistics_size=97, **kwargs):
    """A timm model in eval mode with random weights and BN statistics.

    BN scales in [0.2, 0.6] keep a 150-layer net's activations bounded (with
    scales around 1 they grow to ~1e6 and float32 itself drifts: PyTorch
    float32 vs float64 then differ by 1e6); the classifier is scaled up so
    logits span several units and 1e-4 stays a tight tolerance. The running
    statistics are those of the network's own activations on a random batch
    of `statistics_size` images (`with_batch_statistics`): statistics drawn at
    random let the input fade block after block, so that two inputs' logits
    differed by 5e-7 (MobileNetV3) to 6e-3 (SE-ResNet-50) and a parity test
    compared little more than the biases. None keeps the random ones.
    """
    import timm
    import torch

    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False, **kwargs).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.2, 0.6)
                module.bias.uniform_(-0.2, 0.2)
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
        model.get_classifier().weight.mul_(20.0)
    if statistics_size:
        with_batch_statistics(model, statistics_size, seed=seed + 1)
    return model


def timm_logits(model, images_nhwc, float64=False):
    """The model's outputs on NHWC images; with `float64`, those of a float64
    copy (the reference's own float32 rounding error is their difference)."""
    import copy

    import torch

    x = torch.from_numpy(np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2)))
    if float64:
        model, x = copy.deepcopy(model).double(), x.double()
    with torch.no_grad():
        return model(x).numpy()


def state_dict_arrays(model):
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def shallow_twin(arch, **kwargs):
    """This package's SE-ResNet row `arch` (a key of se_resnet.ARCHS) one
    block per stage deep, the twin of timm's model built with
    layers=(1, 1, 1, 1): every kind of layer the row has, in a fraction of
    the time. `kwargs` go to the builder (input_shape, classes, ...)."""
    from keras_senet.models import se_resnet

    row = dict(se_resnet.ARCHS[arch], depths=(1, 1, 1, 1))
    row["default_variant"] = row.pop("variant")
    return se_resnet.SEResNet(**row, arch=arch, **kwargs)


def with_batch_statistics(model, size, seed=1):
    """`model` with each BatchNorm's running statistics re-estimated on a
    batch of 8 random images (size x size), in place; weights unchanged.

    For MobileNetV3: with the random statistics of `random_timm_model` the
    input's signal fades block after block (measured at 97x97: the logits of
    two different inputs differed by 5e-7, so a parity test saw the biases
    only). Statistics of the network's own activations keep every BN output
    near unit variance: the two inputs' logits then differ by 1-3.
    """
    import torch

    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a plain average over the batches seen (one)
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, size, size))
    return model.eval()
