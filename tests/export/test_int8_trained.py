"""Full-int8 TFLite on a model trained on real data (Fashion-MNIST from
Debian's dataset-fashion-mnist): int8 must agree with Keras on the top-1
class of >= 95% of held-out test images. Random weights would not do:
their logits are near-ties that no quantization keeps."""

import keras
import numpy as np
import pytest

import keras_senet
from keras_senet import export
from keras_senet.training.data import load_fashion_mnist


def prepare(images):
    """28x28 uint8 -> 28x28x1 float, normalized."""
    return keras_senet.se_resnet.preprocess_input(images[..., None].astype("float32"), mean=(0.286,), std=(0.353,))


@pytest.fixture(scope="module")
def trained():
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    keras.utils.set_random_seed(0)
    # The paper's CIFAR SE-ResNet, 8 layers: one SE block per stage.
    model = keras_senet.SEResNetCIFAR(8, input_shape=(28, 28, 1), classes=10)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    # 8,000 images, one epoch: 65% accurate (measured), far from the near-ties
    # of random weights, and a third of the time 24,000 took
    model.fit(prepare(x_train[:8000]), y_train[:8000], batch_size=128, epochs=1, verbose=0)
    calibration = prepare(x_train[24000:24200])  # training images, not the held-out ones
    return model, calibration, prepare(x_test[:1000]), y_test[:1000]


def test_int8_agrees_with_keras_on_held_out_images(trained, tmp_path):
    model, calibration, x_test, y_test = trained
    accuracy = float(np.mean(model.predict(x_test, verbose=0).argmax(1) == y_test))
    assert accuracy > 0.55, "the fixture model must have learned something"
    report = export.to_tflite(model, tmp_path / "fmnist_int8.tflite", quantize="int8",
                              representative_data=[calibration], int8_io=True, sample=x_test)
    assert report.top1_agreement >= 0.95, report
