import gzip

import numpy as np
import pytest

from keras_senet.training.data import FASHION_MNIST_CLASSES, load_fashion_mnist, read_idx


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
