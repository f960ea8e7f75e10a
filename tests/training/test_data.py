import gzip
import os

import numpy as np
import pytest

from keras_senet.training.data import FASHION_MNIST_CLASSES, load_fashion_mnist, load_source, read_idx


def test_fashion_mnist_from_debian_package():
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and set(np.unique(y_test)) == set(range(len(FASHION_MNIST_CLASSES)))
    assert y_train[:5].tolist() == [9, 0, 0, 3, 0]  # the published first labels


def write_idx(path, array, code=0x08):
    header = bytes([0, 0, code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(">u1" if code == 0x08 else ">i4").tobytes()
    with (gzip.open(path, "wb") if str(path).endswith(".gz") else open(path, "wb")) as f:
        f.write(data)


def test_read_idx_round_trip(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", a)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), a)
    b = np.arange(6, dtype=np.int32).reshape(2, 3)
    write_idx(tmp_path / "b", b, code=0x0C)
    np.testing.assert_array_equal(read_idx(tmp_path / "b"), b)


def test_read_idx_errors_name_the_file(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="bad is not an idx file"):
        read_idx(tmp_path / "bad")
    write_idx(tmp_path / "short", np.zeros((2, 3), np.uint8))
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"short: header says \(2, 3\)"):
        read_idx(tmp_path / "short")
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(root=str(tmp_path))


def _image_folder(root, classes=("cat", "dog"), per_class=3, size=(20, 30)):
    import keras

    rng = np.random.default_rng(0)
    for name in classes:
        os.makedirs(root / name, exist_ok=True)
        for i in range(per_class):
            image = rng.integers(0, 256, (*size, 3)).astype("uint8")
            keras.utils.save_img(root / name / f"{i}.png", image)
    return root


def test_image_folder_source(tmp_path):
    _image_folder(tmp_path / "train")
    _image_folder(tmp_path / "validation", per_class=1)
    source, info = load_source(str(tmp_path), "train")
    assert info.class_names == ("cat", "dog") and info.num_examples == 6 and info.channels == 3
    examples = list(source.as_numpy_iterator())
    assert [int(label) for _, label in examples] == [0, 0, 0, 1, 1, 1]
    assert examples[0][0].shape == (20, 30, 3) and examples[0][0].dtype == np.uint8
    _, val_info = load_source(str(tmp_path), "validation")
    assert val_info.num_examples == 2
    with pytest.raises(ValueError, match=r"has no test/ folder \(it has train/, validation/\)"):
        load_source(str(tmp_path), "test")


def test_image_folder_slices_are_disjoint_and_stratified(tmp_path):
    _image_folder(tmp_path, per_class=10)  # class folders only: one split
    with pytest.raises(ValueError, match=r"one split: there is no 'validation' split.*--val-split 'train\[85%:\]'"):
        load_source(str(tmp_path), "validation")
    train, info = load_source(str(tmp_path), "train[:80%]")
    val, val_info = load_source(str(tmp_path), "train[80%:]")
    assert info.num_examples == 16 and val_info.num_examples == 4
    images = lambda source: {image.tobytes(): int(label) for image, label in source.as_numpy_iterator()}  # noqa: E731
    train_images, val_images = images(train), images(val)
    assert not set(train_images) & set(val_images) and len(train_images) + len(val_images) == 20
    assert sorted(val_images.values()) == [0, 0, 1, 1]  # 20% of each class


def test_fashion_mnist_source_by_name_uses_debian_files():
    source, info = load_source("fashion_mnist", "test")
    assert info.num_examples == 10000 and info.channels == 1 and info.class_names == FASHION_MNIST_CLASSES
    image, label = next(iter(source))
    assert image.shape == (28, 28, 1) and int(label) == 9


def test_bad_folders_are_named(tmp_path):
    with pytest.raises(ValueError, match="Dataset folder not found: .*missing_dir"):
        load_source(str(tmp_path / "missing_dir"))
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(ValueError, match="holds no images"):
        load_source(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="holds no class folders"):
        load_source(str(tmp_path / "empty" / "cat"))
