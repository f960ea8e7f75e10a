"""Convert reference checkpoints (timm state dicts) into Keras weights.

Three key layouts are understood, all from timm (github.com/huggingface/
pytorch-image-models); MobileNetV3 (`conv_stem`, `blocks.S.I.conv_pw`,
`blocks.S.I.se.conv_reduce`, `conv_head`, `classifier`) and the ResNets:
- legacy (`timm/models/senet.py`, the authors' models as ported from Caffe):
  `layer0.conv1`, `layer1.0.conv1`, `layer1.0.se_module.fc1`, `last_linear`.
- new (`timm/models/resnet.py`): `conv1`, `bn1`, `layer1.0.conv1`,
  `layer1.0.se.fc1`, `layer1.0.downsample.0`, `fc`.
- ByobNet (`timm/models/byobnet.py`, the "TS" rows): `stem.conv1.conv`,
  `stages.0.0.conv1_1x1.bn`, `stages.0.0.attn.fc1`, `stages.0.0.shortcut.conv`,
  `final_conv.conv`, `head.fc`.

Ports: conv kernels (out, in/groups, kh, kw) -> (kh, kw, in/groups, out);
fully-connected and SE 1x1 weights (out, in[, 1, 1]) -> (in, out); BatchNorm
weight, bias, running_mean, running_var -> gamma, beta, moving mean/variance.
"""

import os
import re

import keras
import numpy as np

from keras_senet.layers.squeeze_excite import SqueezeExcite

_BLOCK = re.compile(r"conv(\d)_block(\d+)_(\d)_(conv|bn)")
_STEM = re.compile(r"conv1(?:_(\d))?_(conv|bn)")
_SE = re.compile(r"conv(\d)_block(\d+)_se")
# ByobNet's BottleneckBlock: our _1, _2, _3 convs; _0 is the shortcut
_BYOB_CONVS = {0: "shortcut", 1: "conv1_1x1", 2: "conv2_kxk", 3: "conv3_1x1"}


def port_conv(w):
    return np.transpose(w, (2, 3, 1, 0))


def port_dense(w):
    return np.transpose(w.reshape(w.shape[0], w.shape[1]))


def _stem_prefix(index, kind, legacy):
    if legacy:  # layer0.conv1 / bn1 ... conv3 / bn3
        return f"layer0.{kind}{index or 1}"
    if index is None:
        return "conv1" if kind == "conv" else "bn1"
    # deep stem: Sequential(conv, bn, act, conv, bn, act, conv), then bn1
    if index == 3 and kind == "bn":
        return "bn1"
    return f"conv1.{3 * (index - 1) + (0 if kind == 'conv' else 1)}"


def torch_prefix(layer_name, legacy, avg_down=False):
    """The reference module path of the Keras layer `layer_name`, or None."""
    if layer_name == "predictions":
        return "last_linear" if legacy else "fc"
    m = _STEM.fullmatch(layer_name)
    if m:
        return _stem_prefix(int(m[1]) if m[1] else None, m[2], legacy)
    m = _BLOCK.fullmatch(layer_name)
    if m:
        stage, block, conv, kind = int(m[1]), int(m[2]), int(m[3]), m[4]
        prefix = f"layer{stage - 1}.{block - 1}"
        if conv == 0:  # projection shortcut: Sequential([pool,] conv, bn)
            offset = 1 if avg_down else 0
            return f"{prefix}.downsample.{offset + (0 if kind == 'conv' else 1)}"
        return f"{prefix}.{kind}{conv}"
    m = _SE.fullmatch(layer_name)
    if m:
        return f"layer{int(m[1]) - 1}.{int(m[2]) - 1}." + ("se_module" if legacy else "se")
    return None


def byobnet_prefix(layer_name):
    """The timm ByobNet module path of the Keras layer `layer_name`, or None."""
    if layer_name == "predictions":
        return "head.fc"
    if layer_name in ("final_conv", "final_bn"):
        return "final_conv." + layer_name[len("final_"):]
    m = _STEM.fullmatch(layer_name)
    if m and m[1]:
        return f"stem.conv{m[1]}.{m[2]}"
    m = _BLOCK.fullmatch(layer_name)
    if m:
        return f"stages.{int(m[1]) - 2}.{int(m[2]) - 1}.{_BYOB_CONVS[int(m[3])]}.{m[4]}"
    m = _SE.fullmatch(layer_name)
    if m:
        return f"stages.{int(m[1]) - 2}.{int(m[2]) - 1}.attn"
    return None


def is_byobnet(tensors):
    """Whether a state dict uses timm's ByobNet key names."""
    return any(k.startswith("stages.") for k in tensors)


def is_legacy(tensors):
    """Whether a state dict uses timm's legacy (senet.py) key names."""
    return any(k.startswith("layer0.") for k in tensors)


def checkpoint_variant(path):
    """The variant a timm checkpoint file needs: "caffe" for legacy key names,
    else "torch" (read from the safetensors header alone where possible)."""
    if os.fspath(path).endswith(".safetensors"):
        from safetensors import safe_open

        try:
            with safe_open(os.fspath(path), "np") as f:
                return "caffe" if is_legacy(f.keys()) else "torch"
        except Exception:  # unreadable: read_checkpoint names the problem
            pass
    return "caffe" if is_legacy(read_checkpoint(path)) else "torch"


def check_variant(tensors, variant, *, source="checkpoint"):
    """Legacy checkpoints need variant="caffe", new ones "torch": the shapes
    agree either way, so a wrong variant would load and silently mispredict."""
    needed = "caffe" if is_legacy(tensors) else "torch"
    if "conv_stem.weight" in tensors:  # MobileNetV3: no variants
        return
    if variant is not None and variant != needed:
        raise ValueError(
            f"{source} holds a {'legacy' if needed == 'caffe' else 'torchvision-style'} "
            f"timm checkpoint, which needs variant={needed!r}. Received: variant={variant!r}"
        )


_MOBILE = re.compile(r"stage(\d+)_block(\d+)_(expand|dw|project)?_?(conv|bn|se)")
# MobileNetV3 block parts -> timm module names; "ds" blocks have no expand conv
_MOBILE_PARTS = {
    "ir": {("expand", "conv"): "conv_pw", ("expand", "bn"): "bn1", ("dw", "conv"): "conv_dw",
           ("dw", "bn"): "bn2", ("project", "conv"): "conv_pwl", ("project", "bn"): "bn3"},
    "ds": {("dw", "conv"): "conv_dw", ("dw", "bn"): "bn1", ("project", "conv"): "conv_pw",
           ("project", "bn"): "bn2"},
    "cn": {(None, "conv"): "conv", (None, "bn"): "bn1"},
}


def mobilenet_prefix(layer_name, layer_names):
    """The timm MobileNetV3 module path of a Keras layer, or None."""
    fixed = {"stem_conv": "conv_stem", "stem_bn": "bn1", "head_conv": "conv_head", "predictions": "classifier"}
    if layer_name in fixed:
        return fixed[layer_name]
    m = _MOBILE.fullmatch(layer_name)
    if not m:
        return None
    stage, block, part, kind = m[1], m[2], m[3], m[4]
    prefix = f"blocks.{stage}.{block}"
    if kind == "se":
        return f"{prefix}.se"
    block_name = f"stage{stage}_block{block}"
    block_kind = "ir" if f"{block_name}_expand_conv" in layer_names else (
        "ds" if f"{block_name}_dw_conv" in layer_names else "cn")
    return f"{prefix}.{_MOBILE_PARTS[block_kind][part, kind]}"


def _layer_arrays(layer, prefix, tensors):
    """(torch key, Keras array) pairs for `layer`, in get_weights() order."""
    if isinstance(layer, keras.layers.BatchNormalization):
        names = ("weight", "bias", "running_mean", "running_var")
        return [(f"{prefix}.{n}", tensors.get(f"{prefix}.{n}")) for n in names]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        key = f"{prefix}.weight"  # (C, 1, kh, kw) -> (kh, kw, C, 1)
        return [(key, _maybe(lambda w: np.transpose(w, (2, 3, 0, 1)), tensors.get(key)))]
    if isinstance(layer, keras.layers.Conv2D):
        key = f"{prefix}.weight"
        pairs = [(key, _maybe(port_conv, tensors.get(key)))]
        if layer.use_bias:
            pairs.append((f"{prefix}.bias", tensors.get(f"{prefix}.bias")))
        return pairs
    if isinstance(layer, keras.layers.Dense):
        return [
            (f"{prefix}.weight", _maybe(port_dense, tensors.get(f"{prefix}.weight"))),
            (f"{prefix}.bias", tensors.get(f"{prefix}.bias")),
        ]
    if isinstance(layer, SqueezeExcite):
        pairs = []
        # timm: SEModule (ResNets) names its 1x1 convs fc1/fc2; the
        # EfficientNet/MobileNet SqueezeExcite names them conv_reduce/conv_expand
        mobile = f"{prefix}.conv_reduce.weight" in tensors
        for fc in ("conv_reduce", "conv_expand") if mobile else ("fc1", "fc2"):
            pairs.append((f"{prefix}.{fc}.weight", _maybe(port_dense, tensors.get(f"{prefix}.{fc}.weight"))))
            if layer.use_bias:
                pairs.append((f"{prefix}.{fc}.bias", tensors.get(f"{prefix}.{fc}.bias")))
        return pairs
    raise ValueError(f"No conversion rule for layer {layer.name!r} ({type(layer).__name__}).")


def _reference_shape(key, keras_shape):
    """A Keras weight shape in the reference's layout, for messages."""
    if len(keras_shape) == 4:
        return tuple(keras_shape[i] for i in (3, 2, 0, 1))
    if len(keras_shape) == 2:
        return tuple(reversed(keras_shape)) + ((1, 1) if re.search(r"\.fc\d\.", key) else ())  # SE 1x1 convs
    return tuple(keras_shape)


def _maybe(fn, x):
    return None if x is None else fn(x)


def load_timm_state_dict(model, tensors, *, source="checkpoint", skip_top=None):
    """Copy a timm state dict (name -> numpy array) into `model`.

    Args:
        model: a model from this package's SE-ResNet family.
        tensors: mapping of reference key -> numpy array.
        source: file name used in error messages.
        skip_top: ignore the classifier (default: when the model has none).

    Raises:
        ValueError: naming `source` and listing missing, unexpected,
            mis-shaped and non-float tensors; the model is left unchanged.
    """
    tensors = {k: np.asarray(v) for k, v in tensors.items()}
    legacy = is_legacy(tensors)
    avg_down = any(re.search(r"downsample\.2\.", k) for k in tensors)
    mobile = "conv_stem.weight" in tensors
    byob = is_byobnet(tensors)
    names = {layer.name for layer in model.layers}
    has_top = "predictions" in {layer.name for layer in model.layers}
    skip_top = not has_top if skip_top is None else skip_top
    updates, used, missing, misshaped, mistyped = [], set(), [], [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        if mobile:
            prefix = mobilenet_prefix(layer.name, names)
        elif byob:
            prefix = byobnet_prefix(layer.name)
        else:
            prefix = torch_prefix(layer.name, legacy, avg_down)
        if prefix is None:
            raise ValueError(f"No reference key for layer {layer.name!r} of model {model.name!r}.")
        pairs = _layer_arrays(layer, prefix, tensors)
        arrays = []
        for (key, array), current in zip(pairs, layer.get_weights()):
            if array is None:
                missing.append(key)
            elif array.shape != current.shape:
                misshaped.append(
                    f"{key}: {tuple(tensors[key].shape)} in the file, "
                    f"{_reference_shape(key, current.shape)} expected"
                )
            elif not np.issubdtype(array.dtype, np.floating):  # weights and BN statistics are floats
                mistyped.append(f"{key}: {array.dtype}")
            else:
                arrays.append(array.astype(current.dtype))
            used.add(key)
        updates.append((layer, arrays))
    ignored = ("num_batches_tracked",)
    top_keys = ("last_linear.", "fc.", "classifier.", "conv_head.", "head.fc.")
    unexpected = sorted(
        k for k in tensors
        if k not in used and not k.endswith(ignored) and not (skip_top and k.startswith(top_keys))
    )
    if missing or unexpected or misshaped or mistyped:
        raise ValueError(_mismatch_message(source, model.name, missing, unexpected, misshaped, mistyped))
    for layer, arrays in updates:
        layer.set_weights(arrays)
    return model


def _mismatch_message(source, model_name, missing, unexpected, misshaped, mistyped):
    lines = [f"{source} does not match model {model_name!r}:"]
    groups = (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped), ("non-float", mistyped))
    for title, items in groups:
        if items:
            shown = ", ".join(items[:10]) + (f", ... ({len(items)} in all)" if len(items) > 10 else "")
            lines.append(f"  {title} tensors: {shown}")
    return "\n".join(lines)


def read_checkpoint(path):
    """Read a reference checkpoint into a dict of numpy arrays.

    `.safetensors` is read without torch. `.pth` / `.pt` / `.bin` (pickle)
    need torch and are read with `weights_only=True`, which refuses code.
    """
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            return load_file(path)
        except (SafetensorError, OSError, ValueError) as e:
            raise ValueError(f"{path} is not a readable safetensors file: {e}") from None
    if path.endswith((".pth", ".pt", ".bin")):
        try:
            import torch
        except ImportError:
            raise ValueError(
                f"{path} is a PyTorch pickle checkpoint; reading it needs torch "
                "(pip install 'keras-senet[convert]'), or convert it to .safetensors."
            ) from None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many types for bad files
            raise ValueError(f"{path} is not a readable PyTorch checkpoint: {e}") from None
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        return {k: v.float().numpy() if v.is_floating_point() else v.numpy() for k, v in state.items()}
    raise ValueError(
        f"{path}: unknown checkpoint format; expected .safetensors, .pth, .pt or .bin."
    )
