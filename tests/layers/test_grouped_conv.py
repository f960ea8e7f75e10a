import collections
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from harness import assert_keras_round_trip

from keras_senet.layers import GroupedConv2D
from keras_senet.layers import grouped_conv

X = np.random.default_rng(0).normal(size=(2, 9, 11, 64)).astype("float32")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("strides, padding, groups", [(1, "same", 32), (2, "valid", 8), (1, "valid", 1)])
def test_equals_keras_grouped_conv(strides, padding, groups):
    reference = keras.layers.Conv2D(32, 3, strides=strides, padding=padding, groups=groups)
    ours = GroupedConv2D(32, 3, strides=strides, padding=padding, groups=groups)
    reference.build(X.shape)
    ours.build(X.shape)
    assert [w.shape for w in ours.weights] == [w.shape for w in reference.weights]
    ours.set_weights(reference.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(X)), keras.ops.convert_to_numpy(reference(X)), rtol=1e-5, atol=1e-5)


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("use_bias", [False, True])
def test_inference_graphs_with_and_without_bias(use_bias, fresh_probes):
    """Exports trace forward-only graphs (grouped_conv.inference_graphs), where
    TensorFlow fuses the convolution with Keras' bias add; the fused CPU kernel
    without oneDNN (AVX2-only CPUs) has no grouped form, so the probe must try
    the bias too. Checked against Keras' own grouped Conv2D."""
    import tensorflow as tf

    reference = keras.layers.Conv2D(32, 3, padding="same", groups=8, use_bias=use_bias,
                                    bias_initializer="random_normal")
    ours = GroupedConv2D(32, 3, padding="same", groups=8, use_bias=use_bias)
    reference.build(X.shape)
    ours.build(X.shape)
    ours.set_weights(reference.get_weights())
    with grouped_conv.inference_graphs():
        got = tf.function(lambda x: ours(x))(tf.constant(X))
    np.testing.assert_allclose(got.numpy(), keras.ops.convert_to_numpy(reference(X)), rtol=1e-5, atol=1e-5)


def test_round_trip(tmp_path):
    inputs = keras.Input((9, 11, 64))
    model = keras.Model(inputs, GroupedConv2D(32, 3, groups=16, name="g")(inputs))
    loaded = assert_keras_round_trip(model, X, tmp_path)
    assert isinstance(loaded.get_layer("g"), GroupedConv2D)


@pytest.mark.tensorflow_only
def test_exports_to_onnx():
    """Keras' own grouped conv becomes an XLA call tf2onnx cannot convert."""
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    inputs = keras.Input((9, 11, 64))
    model = keras.Model(inputs, GroupedConv2D(32, 3, groups=32, padding="same")(inputs))
    spec = (tf.TensorSpec((None, 9, 11, 64), tf.float32, name="x"),)
    onnx_model, _ = tf2onnx.convert.from_function(
        tf.function(lambda x: model(x, training=False)), input_signature=spec, opset=17
    )
    session = onnxruntime.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    out = session.run(None, {"x": X})[0]
    np.testing.assert_allclose(out, keras.ops.convert_to_numpy(model(X)), atol=1e-5)


# --- The kernel choice on TensorFlow: native tf.nn.convolution or the split ---


@pytest.fixture
def fresh_probes(monkeypatch):
    """An empty probe cache and no setting, restored afterwards."""
    monkeypatch.setattr(grouped_conv, "_probes", {})
    monkeypatch.setattr(grouped_conv, "_setting", None)
    monkeypatch.delenv(grouped_conv.ENV_VAR, raising=False)


def fake_probe(forward, gradient):
    return lambda *key: grouped_conv.Capability(forward, gradient, "simulated by the test")


def graph_ops(layer, x):
    """Op types of `layer` traced on `x`'s shape: what the setting put in a graph."""
    import tensorflow as tf

    graph = tf.function(layer).get_concrete_function(tf.TensorSpec(x.shape, "float32")).graph
    return collections.Counter(op.type for op in graph.get_operations())


def assert_kernel(layer, x, kernel):
    """`layer` traces to one grouped Conv2D ("native") or one per group ("split")."""
    ops = graph_ops(layer, x)
    if kernel == "native":
        assert ops["Conv2D"] == 1 and not ops["Split"] and not ops["ConcatV2"], ops
    else:
        assert ops["Conv2D"] == layer.groups and ops["ConcatV2"] == 1, ops


def output_and_gradients(layer, x, upstream):
    import tensorflow as tf

    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(layer(x) * upstream)
    return [t.numpy() for t in [layer(x), *tape.gradient(loss, [x, layer.kernel])]]


@pytest.mark.tensorflow_only
@pytest.mark.parametrize(
    "strides, padding, dilation, groups",
    [(1, "same", 1, 32), (2, "valid", 1, 8), (1, "same", 2, 4), (2, "same", 1, 16), (1, "valid", (2, 1), 2)],
)
def test_native_and_split_agree_with_gradients(strides, padding, dilation, groups, fresh_probes):
    """Both kernels give the same output and the same gradients with respect
    to the input and the kernel, and each setting really puts its kernel in
    the graph (else this would compare a kernel with itself)."""
    layer = GroupedConv2D(64, 3, strides=strides, padding=padding, dilation_rate=dilation, groups=groups)
    layer.build(X.shape)
    upstream = np.random.default_rng(1).normal(size=layer.compute_output_shape(X.shape)).astype("float32")
    results = {}
    for kernel in ("native", "split"):
        with grouped_conv.use_implementation(kernel):
            assert_kernel(layer, X, kernel)
            results[kernel] = output_and_gradients(layer, X, upstream)
    for native, split in zip(results["native"], results["split"]):
        np.testing.assert_allclose(native, split, rtol=1e-5, atol=1e-5)


@pytest.mark.tensorflow_only
def test_auto_follows_the_probe(monkeypatch, fresh_probes):
    layer = GroupedConv2D(32, 3, padding="same", groups=8)
    layer.build(X.shape)
    monkeypatch.setattr(grouped_conv, "_probe", fake_probe(True, True))
    assert_kernel(layer, X, "native")
    monkeypatch.setattr(grouped_conv, "_probes", {})
    monkeypatch.setattr(grouped_conv, "_probe", fake_probe(True, False))  # no gradient kernel
    assert_kernel(layer, X, "split")
    with grouped_conv.inference_graphs():  # exports: the forward is enough
        assert_kernel(layer, X, "native")
    assert_kernel(layer, X, "split")


@pytest.mark.tensorflow_only
def test_native_where_the_probe_fails_raises(monkeypatch, fresh_probes):
    layer = GroupedConv2D(32, 3, padding="same", groups=8, name="g")
    layer.build(X.shape)
    monkeypatch.setattr(grouped_conv, "_probe", fake_probe(True, False))
    grouped_conv.set_implementation("native")
    with pytest.raises(RuntimeError, match=r"GroupedConv2D 'g': set_implementation\('native'\).*forward and "
                                           r"gradient.*simulated by the test.*Use 'auto' or 'split'"):
        layer(X)
    with grouped_conv.inference_graphs():
        assert_kernel(layer, X, "native")
    monkeypatch.setattr(grouped_conv, "_probes", {})
    monkeypatch.setattr(grouped_conv, "_probe", fake_probe(False, False))
    with grouped_conv.inference_graphs(), pytest.raises(RuntimeError, match=r"grouped convolution forward does"):
        layer(X)
    grouped_conv.set_implementation("split")  # the override needs no probe
    assert_kernel(layer, X, "split")


def test_setting_and_environment_variable(monkeypatch, fresh_probes):
    assert grouped_conv.get_implementation() == "auto"
    monkeypatch.setenv(grouped_conv.ENV_VAR, "Split")
    assert grouped_conv.get_implementation() == "split"
    with grouped_conv.use_implementation("native"):  # the function wins over the variable
        assert grouped_conv.get_implementation() == "native"
    assert grouped_conv.get_implementation() == "split"
    monkeypatch.setenv(grouped_conv.ENV_VAR, "fast")
    with pytest.raises(ValueError, match=r"KERAS_SENET_GROUPED_CONV='fast' is not one of"):
        grouped_conv.get_implementation()
    with pytest.raises(ValueError, match=r"`name` must be one of .*Received: name='cudnn'"):
        grouped_conv.set_implementation("cudnn")


def test_setting_leaves_the_config_alone(fresh_probes):
    """What ran is no config key: `.keras` files are the same either way."""
    layer = GroupedConv2D(32, 3, groups=8, name="g")
    configs = []
    for kernel in ("native", "split"):
        with grouped_conv.use_implementation(kernel):
            layer(X)
            configs.append(layer.get_config())
    assert configs[0] == configs[1]
    assert set(configs[0]) == set(keras.layers.Conv2D(32, 3, groups=8).get_config())


@pytest.mark.tensorflow_only
def test_probe_finds_a_wrong_native_kernel(monkeypatch, fresh_probes):
    """The probe compares with the split: a native op that mixes up the
    groups (here: their outputs in reverse order) is not used."""
    import tensorflow as tf

    right = grouped_conv._native

    def groups_reversed(x, kernel, *args):
        y = right(x, kernel, *args)
        if x.shape[-1] == kernel.shape[-2]:  # a plain conv (the split's parts): correct
            return y
        return tf.concat(tf.split(y, x.shape[-1] // kernel.shape[-2], axis=-1)[::-1], axis=-1)

    monkeypatch.setattr(grouped_conv, "_native", groups_reversed)
    found = grouped_conv.capability("CPU", "float32", "channels_last", (1, 1), "same", (1, 1))
    assert not found.forward and not found.gradient and "forward differs" in found.reason


@pytest.mark.tensorflow_only
def test_probe_runs_outside_a_trace(fresh_probes):
    """The first call inside a tf.function probes eagerly (tf.init_scope) and
    the trace gets the probe's answer."""
    import tensorflow as tf

    layer = GroupedConv2D(32, 3, padding="same", groups=8)
    layer.build(X.shape)
    tf.function(layer).get_concrete_function(tf.TensorSpec(X.shape, "float32"))
    assert list(grouped_conv._probes) == [("CPU", "float32", "channels_last", (1, 1), "same", (1, 1), True)]


TRAIN = """
import json, sys
import numpy as np
import tensorflow as tf
if sys.argv[1] == "mirrored":
    from keras_senet.training.strategy import split_cpu
    split_cpu(2)
import keras
from keras_senet.layers import grouped_conv
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x, y = rng.normal(size=(8, 8, 8, 16)).astype("float32"), rng.normal(size=(8, 8, 8, 16)).astype("float32")
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]) if sys.argv[1] == "mirrored" else tf.distribute.get_strategy()
with strategy.scope():
    inputs = keras.Input((8, 8, 16))
    model = keras.Model(inputs, grouped_conv.GroupedConv2D(16, 3, padding="same", groups=4)(inputs))
    model.compile(keras.optimizers.SGD(0.1), "mse")
loss = model.fit(x, y, batch_size=8, epochs=3, verbose=0).history["loss"]  # traced: the probe runs in the trace
probes = [[list(map(str, key)), found.forward, found.gradient] for key, found in grouped_conv._probes.items()]
try:
    with grouped_conv.use_implementation("native"):
        model(x)
    native_error = None
except RuntimeError as error:
    native_error = str(error)
print(json.dumps(dict(loss=loss, probes=probes, replicas=strategy.num_replicas_in_sync, native_error=native_error)))
"""


def train_in_subprocess(mode, **env):
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3", **env)
    env.pop(grouped_conv.ENV_VAR, None)
    out = subprocess.run([sys.executable, "-c", TRAIN, mode], capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.tensorflow_only
def test_without_onednn_the_split_trains():
    """TensorFlow without oneDNN has no CPU kernel for a grouped conv's
    gradient, nor for one fused with its bias (the layer has a bias): the
    probe sees both, "auto" trains with the split, and "native" says why it
    cannot."""
    result = train_in_subprocess("default", TF_ENABLE_ONEDNN_OPTS="0")
    assert result["probes"] == [[["CPU", "float32", "channels_last", "(1, 1)", "same", "(1, 1)", "True"], False, False]]
    assert np.all(np.isfinite(result["loss"])) and result["loss"][-1] < result["loss"][0]
    assert "set_implementation('native')" in result["native_error"]
    assert "Gradients for grouped convolutions are not supported on CPU" in result["native_error"]


@pytest.mark.tensorflow_only
def test_mirrored_strategy_probes_in_replica_traces():
    """Two CPU replicas trace the step in their own threads; the probe runs
    once, eagerly, and the replicas train with the kernel it chose."""
    result = train_in_subprocess("mirrored")
    assert result["replicas"] == 2
    assert len(result["probes"]) == 1 and result["probes"][0][0][0] == "CPU"
    assert np.all(np.isfinite(result["loss"])) and result["loss"][-1] < result["loss"][0]
