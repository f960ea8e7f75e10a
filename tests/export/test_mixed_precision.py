"""Export of a mixed-precision model (keras-team's `mixed_float16`, what
`keras-senet train --mixed-precision` sets on a GPU with tensor cores).

TFLite has no float16 Conv2D, so every exporter writes a float32 copy (same
architecture and weights) and compares it with the mixed model. On a CPU
Keras runs mixed_float16 too (slowly), so these tests set that policy.

Two references, both independent of the export code: the mixed model itself,
and the same constructor called again under float32 with the mixed model's
weights. The file must match the float32 one as closely as any float32
export (1e-4 of the logit range) and the mixed one within what float16
arithmetic allows: float16 has an 11-bit significand (relative rounding
4.9e-4 per operation). Measured here, as a fraction of the logit range:
SE-ResNet-8 7e-4, SE-MobileNetV3-Small 3.4e-2 (hard-swish, hard-sigmoid SE
gates and BatchNorm on small variances, all in float16); the bound is 5e-2.
A wrong or missing weight in the copy would be off by the order of the range.
"""

import contextlib

import keras
import numpy as np
import pytest

import keras_senet
from keras_senet import cli, export, inputs

pytestmark = pytest.mark.tensorflow_only

X32 = np.random.default_rng(0).uniform(-2, 2, (8, 32, 32, 3)).astype("float32")
X64 = np.random.default_rng(1).uniform(0, 255, (8, 64, 64, 3)).astype("float32")
CLASSES = tuple(f"class {i}" for i in range(10))


@contextlib.contextmanager
def global_policy(name):
    previous = keras.config.dtype_policy().name
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def calibrate_batchnorm(model, x):
    """BatchNorm moving statistics from `x`, as training would leave them: at
    random initialization (mean 0, variance 1) SE-MobileNetV3's activations
    shrink layer by layer to logits of 1e-10, below float16's smallest
    number."""
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    model(x, training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum


def mixed_and_float32(constructor, x):
    """The model built under mixed_float16, and the same constructor's model
    under float32, holding the same weights (BatchNorm calibrated on `x`)."""
    keras.utils.set_random_seed(0)
    with global_policy("mixed_float16"):
        mixed = constructor()
    reference = constructor()
    reference.set_weights(mixed.get_weights())
    calibrate_batchnorm(reference, x)
    mixed.set_weights(reference.get_weights())
    return mixed, reference


@pytest.fixture(scope="module")
def resnet():
    mixed, reference = mixed_and_float32(
        lambda: keras_senet.SEResNetCIFAR(8, input_shape=(32, 32, 3), classes=10, classifier_activation=None), X32)
    inputs.attach(mixed, inputs.InputTransform(mode="torch", size=32), CLASSES)
    return mixed, reference


@pytest.fixture(scope="module")
def mobilenet():
    return mixed_and_float32(lambda: keras_senet.SEMobileNetV3Small(
        weights=None, input_shape=(64, 64, 3), classes=10, classifier_activation=None), X64)


def logit_range(outputs):
    return max(1.0, float(np.abs(outputs).max()))


def float16_parts(path):
    """Names of the float16 tensors / nodes in an exported file."""
    kind = export.model_format(path)
    if kind == "tflite":
        from ai_edge_litert.interpreter import Interpreter

        return [t["name"] for t in Interpreter(model_path=str(path)).get_tensor_details() if t["dtype"] == np.float16]
    if kind == "onnx":
        import onnx

        model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
        half = onnx.TensorProto.FLOAT16
        graph = model.graph
        values = [*graph.input, *graph.output, *graph.value_info]
        return ([v.name for v in values if v.type.tensor_type.elem_type == half]
                + [t.name for t in graph.initializer if t.data_type == half]
                + [n.name for n in graph.node for a in n.attribute if a.name == "to" and a.i == half])
    from tensorflow.core.framework import types_pb2
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((path / "saved_model.pb").read_bytes())
    graph = saved.meta_graphs[0].graph_def
    nodes = [*graph.node, *(n for f in graph.library.function for n in f.node_def)]
    return [n.name for n in nodes for a in n.attr.values()
            if a.type == types_pb2.DT_HALF or types_pb2.DT_HALF in a.list.type]


def run_file(path, x):
    return export.load_predictor(str(path)).predict(x)


def check_file(path, mixed, reference, x, report=None):
    """The file holds no float16, matches the float32 model like any float32
    export, and the mixed one within the float16 bound; the report states
    its difference from the mixed model (when it was made on `x`)."""
    assert float16_parts(path) == []
    out = run_file(path, x)
    want32, want16 = reference.predict(x, verbose=0), mixed.predict(x, verbose=0).astype("float32")
    scale = logit_range(want32)
    float32_diff, mixed_diff = np.abs(out - want32).max(), np.abs(out - want16).max()
    assert float32_diff <= 1e-4 * scale, float32_diff
    assert 0 < mixed_diff <= 5e-2 * scale, mixed_diff  # 0: the mixed model really computed in float16
    if report is not None:
        assert report.float32_copy_of == "mixed_float16"
        assert report.max_abs_diff == pytest.approx(mixed_diff, rel=1e-3, abs=1e-6)
        assert "a float32 copy, compared with the mixed_float16 model" in str(report)
    print(f"{path.name}: max abs diff / logit range: {float32_diff / scale:.1e} from float32, "
          f"{mixed_diff / scale:.1e} from mixed_float16")


EXPORTS = {
    "tflite": lambda model, path, x: export.to_tflite(model, path, sample=x),
    "onnx": lambda model, path, x: export.to_onnx(model, path, sample=x),
    "saved_model": lambda model, path, x: export.to_saved_model(model, path, sample=x),
}
SUFFIX = {"tflite": ".tflite", "onnx": ".onnx", "saved_model": ""}


@pytest.mark.parametrize("fmt, policy_while_exporting", [
    ("tflite", "float32"), ("onnx", "float32"), ("saved_model", "float32"), ("tflite", "mixed_float16"),
])
def test_mixed_model_exports_a_float32_copy(resnet, fmt, policy_while_exporting, tmp_path):
    """Whatever the global policy (train leaves it mixed; a fresh process
    loading a .keras file has float32), the export works and leaves the
    policy and the model as they were."""
    mixed, reference = resnet
    path = tmp_path / f"m{SUFFIX[fmt]}"
    with global_policy(policy_while_exporting):
        report = EXPORTS[fmt](mixed, path, X32)
        assert keras.config.dtype_policy().name == policy_while_exporting
    check_file(path, mixed, reference, X32, report)
    assert mixed.dtype_policy.name == "mixed_float16" and mixed.layers[1].compute_dtype == "float16"
    transform, names = export.read_metadata(path)
    assert transform == inputs.input_transform(mixed) and tuple(names) == CLASSES


def test_float32_copy_keeps_what_the_model_carries(resnet):
    mixed, _ = resnet
    copy, policy = export._float32(mixed)
    assert policy == "mixed_float16"
    assert {layer.compute_dtype for layer in copy.layers} == {"float32"}
    assert copy.input_transform == mixed.input_transform and copy.class_names == CLASSES
    assert [w.dtype for w in copy.weights] == ["float32"] * len(mixed.weights)
    assert all(np.array_equal(a, b) for a, b in zip(copy.get_weights(), mixed.get_weights()))
    assert export._float32(copy) == (copy, None)  # a float32 model is exported as it is


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_mixed_mobilenet_v3(mobilenet, fmt, tmp_path):
    """Hard-sigmoid SE gates, hard-swish, depthwise convs and the built-in
    preprocessing, in float16."""
    mixed, reference = mobilenet
    path = tmp_path / f"m{SUFFIX[fmt]}"
    check_file(path, mixed, reference, X64, EXPORTS[fmt](mixed, path, X64))


@pytest.mark.parametrize("fmt", sorted(EXPORTS))
def test_cli_exports_a_saved_mixed_model(resnet, fmt, tmp_path, capsys):
    """`keras-senet export model.keras`: the file keeps its layers' mixed
    policy when loaded under the float32 default."""
    mixed, reference = resnet
    inputs.save_model(mixed, tmp_path / "m.keras")
    output = tmp_path / f"out{SUFFIX[fmt]}"
    assert cli.main(["export", str(tmp_path / "m.keras"), "--format", fmt, "--output", str(output)]) == 0
    assert "a float32 copy, compared with the mixed_float16 model" in capsys.readouterr().out
    assert keras.config.dtype_policy().name == "float32"
    assert float16_parts(output) == []
    out, want = run_file(output, X32), reference.predict(X32, verbose=0)
    assert np.abs(out - want).max() <= 1e-4 * logit_range(want)


def test_train_mixed_precision_then_export_tflite(tmp_path, monkeypatch, capsys):
    """`train --mixed-precision --export-tflite` end to end, with the policy
    a GPU with tensor cores gets (`mixed_precision_policy` reports one)."""
    from PIL import Image

    from keras_senet.training import recipes

    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("validation", 4)):
        for label in ("a", "b"):
            (tmp_path / "data" / split / label).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
                    tmp_path / "data" / split / label / f"{i}.png")
    asked = []
    monkeypatch.setattr(recipes, "mixed_precision_policy", lambda: asked.append(1) or "mixed_float16")
    run = tmp_path / "run"
    with global_policy("float32"):
        code = cli.main(["train", "--model", "SEResNetCIFAR", "--depth", "8", "--dataset", str(tmp_path / "data"),
                         "--image-size", "16", "--batch-size", "8", "--epochs", "1", "--seed", "0",
                         "--progress", "none", "--mixed-precision", "--export-tflite", "--output", str(run)])
        assert keras.config.dtype_policy().name == "float32"  # train put back the policy it set
    out = capsys.readouterr().out
    assert code == 0 and asked, out
    assert "a float32 copy, compared with the mixed_float16 model" in out
    trained = inputs.load_model(run / "model.keras")
    convs = [layer for layer in trained.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs and {layer.compute_dtype for layer in convs} == {"float16"}  # it trained in float16
    assert trained.optimizer.__class__.__name__ == "LossScaleOptimizer"
    reference = keras_senet.SEResNetCIFAR(8, input_shape=(16, 16, 3), classes=2)
    reference.set_weights(trained.get_weights())
    x = rng.uniform(-2, 2, (8, 16, 16, 3)).astype("float32")
    check_file(run / "model.tflite", trained, reference, x)
