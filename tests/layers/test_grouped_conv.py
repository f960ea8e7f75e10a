import keras
import numpy as np
import pytest
from harness import assert_keras_round_trip

from keras_senet.layers import GroupedConv2D

X = np.random.default_rng(0).normal(size=(2, 9, 11, 64)).astype("float32")


@pytest.mark.parametrize("strides, padding, groups", [(1, "same", 32), (2, "valid", 8), (1, "valid", 1)])
def test_equals_keras_grouped_conv(strides, padding, groups):
    reference = keras.layers.Conv2D(32, 3, strides=strides, padding=padding, groups=groups)
    ours = GroupedConv2D(32, 3, strides=strides, padding=padding, groups=groups)
    reference.build(X.shape)
    ours.build(X.shape)
    assert [w.shape for w in ours.weights] == [w.shape for w in reference.weights]
    ours.set_weights(reference.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(X)), keras.ops.convert_to_numpy(reference(X)), rtol=1e-5, atol=1e-5)


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
