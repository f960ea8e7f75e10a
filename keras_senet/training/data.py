"""Local datasets for offline machines.

Fashion-MNIST (Xiao et al. 2017) in its original idx format, as Debian's
`dataset-fashion-mnist` package installs it (`apt-get install
dataset-fashion-mnist` -> /usr/share/datasets/fashion-mnist).
"""

import gzip
import os

import numpy as np

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """Read an idx file (optionally gzipped) into a numpy array.

    Raises:
        ValueError: naming the file, when its header or size is wrong.
    """
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise ValueError(f"{path} is not an idx file (bad magic number {data[:4].hex()})")
    dtype, ndim = np.dtype(_IDX_TYPES[data[2]]), data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - offset != expected:
        raise ValueError(
            f"{path}: header says {shape} ({expected} bytes of data) but the file holds {len(data) - offset}"
        )
    return np.frombuffer(data, dtype, offset=offset).reshape(shape)


def load_fashion_mnist(root=FASHION_MNIST_DIR):
    """((x_train, y_train), (x_test, y_test)) as keras.datasets returns them:
    uint8 images (N, 28, 28) and uint8 labels.

    Raises:
        FileNotFoundError: with the install command, when the files are missing.
    """
    def path(name):
        for candidate in (os.path.join(root, name + ".gz"), os.path.join(root, name)):
            if os.path.exists(candidate):
                return candidate
        raise FileNotFoundError(
            f"Fashion-MNIST file {name} not found in {root}; install it with "
            "`apt-get install dataset-fashion-mnist` or pass `root=`."
        )

    return (
        (read_idx(path("train-images-idx3-ubyte")), read_idx(path("train-labels-idx1-ubyte"))),
        (read_idx(path("t10k-images-idx3-ubyte")), read_idx(path("t10k-labels-idx1-ubyte"))),
    )
