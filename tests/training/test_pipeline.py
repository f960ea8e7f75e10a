import numpy as np
import pytest
import tensorflow as tf

from keras_senet.inputs import InputTransform
from keras_senet.models.imagenet_utils import preprocess_input
from keras_senet.training.pipeline import make_dataset, pad_crop, random_resized_crop, steps_per_epoch


def _source(n=40, size=(48, 64), channels=3):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, *size, channels)).astype("uint8")
    return tf.data.Dataset.from_tensor_slices((images, np.arange(n) % 5)), images


def _batches(dataset):
    return [(x.numpy(), y.numpy()) for x, y in dataset]


def test_training_batches_are_augmented_and_reproducible():
    source, _ = _source()
    make = lambda: make_dataset(source, training=True, image_size=32, batch_size=8, seed=3,  # noqa: E731
                                deterministic=True, augment="imagenet")
    first, second = _batches(make()), _batches(make())
    assert len(first) == 5 and first[0][0].shape == (8, 32, 32, 3) and first[0][0].dtype == np.float32
    for (xa, ya), (xb, yb) in zip(first, second):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    labels = np.concatenate([y for _, y in first])
    assert sorted(labels.tolist()) == sorted((np.arange(40) % 5).tolist())  # shuffled, all there
    assert labels.tolist() != (np.arange(40) % 5).tolist()
    epochs = make()
    assert not np.array_equal(_batches(epochs)[0][0], _batches(epochs)[0][0])  # new draws per epoch
    other = _batches(make_dataset(source, training=True, image_size=32, batch_size=8, seed=4, deterministic=True))
    assert not np.array_equal(other[0][0], first[0][0])


def test_repeat_stream_depends_on_position_only():
    """`repeat=True`: every iterator reads the same batches whatever was read
    before (a plain `.repeat()` does not: its shuffle generator moves on with
    each pass), skipping lands where an uninterrupted read is, and each epoch
    is a new order holding every example once."""
    labels = np.arange(40)  # example ids as labels
    images = np.random.default_rng(0).integers(0, 256, (40, 8, 8, 3)).astype("uint8")
    source = tf.data.Dataset.from_tensor_slices((images, labels))
    common = dict(training=True, image_size=8, batch_size=8, seed=3, deterministic=True, augment="cifar")

    def read(dataset, count, consumed_before=0):
        if consumed_before:  # an earlier iterator (an earlier fit, Keras' build pass) reads some batches
            earlier = iter(dataset)
            for _ in range(consumed_before):
                next(earlier)
        it = iter(dataset)
        return [tuple(t.numpy() for t in next(it)) for _ in range(count)]

    stream = make_dataset(source, repeat=True, **common)
    assert int(stream.cardinality()) == int(tf.data.INFINITE_CARDINALITY)
    fresh, after = read(stream, 15), read(stream, 15, consumed_before=7)
    for (xa, ya), (xb, yb) in zip(fresh, after):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    for (xa, ya), (xb, yb) in zip(fresh[5:], read(stream.skip(5), 10)):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    epochs = [np.concatenate([y for _, y in fresh[i:i + 5]]) for i in (0, 5, 10)]
    assert all(sorted(e.tolist()) == list(range(40)) for e in epochs)  # every example once per epoch
    assert epochs[0].tolist() != epochs[1].tolist() != epochs[2].tolist()

    # the finite dataset repeated by hand: an earlier iterator changes what the next one reads
    plain = make_dataset(source, **common).repeat()
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(read(plain, 10), read(plain, 10, consumed_before=7)))


def test_evaluation_is_the_reference_transform():
    source, images = _source(n=6)
    (x, y), = _batches(make_dataset(source, training=False, image_size=32, batch_size=8,
                                    transform=InputTransform(crop_pct=1.0)))
    assert x.shape == (6, 32, 32, 3) and y.tolist() == [0, 1, 2, 3, 4, 0]  # order kept, last batch kept
    expected = tf.image.resize(tf.cast(images[0], tf.float32), (32, 32), antialias=True)
    expected = np.round(np.clip(expected.numpy(), 0, 255))  # as PIL: uint8 pixels
    np.testing.assert_allclose(x[0], preprocess_input(expected), atol=1e-5)
    big, _ = _source(n=2, size=(80, 100))
    (x, _), = _batches(make_dataset(big, training=False, image_size=64, batch_size=2))
    assert x.shape == (2, 64, 64, 3)


def test_grayscale_channels_and_scaling():
    source, _ = _source(n=4, size=(28, 28), channels=1)
    (x, _), = _batches(make_dataset(source, training=False, image_size=28, batch_size=4))
    assert x.shape == (4, 28, 28, 1) and x.min() >= -1 and x.max() <= 1  # [-1, 1] for non-RGB
    (x, _), = _batches(make_dataset(source, training=True, image_size=28, batch_size=4, channels=3, seed=0))
    assert x.shape == (4, 28, 28, 3)
    pixels = x * np.array([0.229, 0.224, 0.225]) + np.array([0.485, 0.456, 0.406])  # undo ImageNet scaling
    np.testing.assert_allclose(pixels[..., 0], pixels[..., 2], atol=1e-5)  # gray copied to RGB
    (x, _), = _batches(make_dataset(source, training=False, image_size=28, batch_size=4,
                                    transform=InputTransform("raw", channels=1)))
    assert x.max() > 1  # raw [0, 255] for models with built-in preprocessing


def test_augmentations():
    image = tf.constant(np.arange(48 * 64 * 3).reshape(48, 64, 3) % 256, tf.uint8)
    crop = random_resized_crop(image, 24, tf.constant([1, 2]))
    assert crop.shape == (24, 24, 3)
    assert not np.array_equal(crop, random_resized_crop(image, 24, tf.constant([5, 6])))
    padded = pad_crop(image[:32, :32], 32, tf.constant([1, 2]))
    assert padded.shape == (32, 32, 3)


def test_steps_and_errors():
    assert steps_per_epoch(1000, 64) == 15 and steps_per_epoch(1000, 64, training=False) == 16
    source, _ = _source(n=4)
    with pytest.raises(ValueError, match="augment"):
        make_dataset(source, training=True, image_size=32, batch_size=2, augment="mixup")
    with pytest.raises(ValueError, match="batch_size"):
        make_dataset(source, training=True, image_size=32, batch_size=0)
