"""Image classification datasets as (image, label) sources.

- tfds datasets by name (`imagenette`, `imagenet2012`, `cifar10`,
  `tf_flowers`...), through `tensorflow_datasets`.
- An image folder: `root/<class>/*.jpg`, or `root/train/<class>/...` and
  `root/validation/<class>/...` (`val` and `test` also work) for splits.
- Fashion-MNIST (Xiao et al. 2017) in its original idx format, as Debian's
  `dataset-fashion-mnist` package installs it (`apt-get install
  dataset-fashion-mnist` -> /usr/share/datasets/fashion-mnist); any folder
  holding those idx files works, and the name `fashion_mnist` uses the
  Debian files when they are installed (offline), else tfds.

`load_source` returns unbatched uint8 (H, W, C) images with int labels and a
`SourceInfo`; `keras_senet.training.pipeline` makes them into batches.
"""

import dataclasses
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


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
SPLIT_DIRS = {"train": ("train",), "validation": ("validation", "val"), "test": ("test",)}


@dataclasses.dataclass
class SourceInfo:
    """What a source holds: class names, example count, image channels."""

    name: str
    split: str
    class_names: tuple
    num_examples: int
    channels: int
    in_memory: bool  # one tensor in memory: shard by DATA across workers

    @property
    def num_classes(self):
        return len(self.class_names)


def _has_fashion_mnist(root):
    return os.path.exists(os.path.join(root, "train-labels-idx1-ubyte.gz")) or os.path.exists(
        os.path.join(root, "train-labels-idx1-ubyte")
    )


def fashion_mnist_source(split="train", root=FASHION_MNIST_DIR):
    """Fashion-MNIST from idx files: ((28, 28, 1) uint8, int64) pairs."""
    import tensorflow as tf

    if split not in ("train", "test", "validation"):
        raise ValueError(f"Fashion-MNIST has splits 'train' and 'test'. Received: split={split!r}")
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(root)
    x, y = (x_train, y_train) if split == "train" else (x_test, y_test)
    dataset = tf.data.Dataset.from_tensor_slices((x[..., None], y.astype("int64")))
    info = SourceInfo(root, split, FASHION_MNIST_CLASSES, len(y), 1, True)
    return dataset, info


def image_folder_source(root, split="train"):
    """Images in `root/<class>/` (or `root/<split>/<class>/`), decoded as RGB.

    Class names are the sorted sub-folder names.

    Raises:
        FileNotFoundError / ValueError: naming the folder, when it holds no
            class folders or no images.
    """
    import tensorflow as tf

    if not os.path.isdir(root):
        raise FileNotFoundError(f"Dataset folder {root} does not exist")
    for candidate in SPLIT_DIRS.get(split, (split,)):
        if os.path.isdir(os.path.join(root, candidate)):
            root = os.path.join(root, candidate)
            break
    class_names = tuple(sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))))
    if not class_names:
        raise ValueError(f"{root} holds no class folders (expected {root}/<class>/<image>.jpg)")
    paths, labels = [], []
    for label, name in enumerate(class_names):
        for dirpath, _, files in sorted(os.walk(os.path.join(root, name))):
            for f in sorted(files):
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    paths.append(os.path.join(dirpath, f))
                    labels.append(label)
    if not paths:
        raise ValueError(f"{root} holds no images ({', '.join(IMAGE_EXTENSIONS)}) in its class folders")

    def decode(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return image, label

    dataset = tf.data.Dataset.from_tensor_slices((paths, np.array(labels, "int64")))
    dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset, SourceInfo(root, split, class_names, len(paths), 3, False)


def tfds_source(name, split="train", data_dir=None, download=True):
    """A tfds dataset by name, as (image, label) pairs."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise ImportError("tfds datasets need `pip install tensorflow-datasets`") from e
    if split == "validation":
        builder = tfds.builder(name, data_dir=data_dir)
        if "validation" not in builder.info.splits:
            split = "test"
    dataset, meta = tfds.load(
        name, split=split, as_supervised=True, with_info=True, data_dir=data_dir, download=download
    )
    label = meta.features["label"]
    channels = meta.features["image"].shape[-1] or 3
    info = SourceInfo(name, split, tuple(label.names), meta.splits[split].num_examples, channels, False)
    return dataset, info


def load_source(dataset, split="train", data_dir=None):
    """(tf.data.Dataset of (uint8 image, int64 label), SourceInfo).

    Args:
        dataset: a tfds name, an image folder, or a folder of Fashion-MNIST idx
            files; "fashion_mnist" prefers the Debian files when installed.
        split: "train", "validation" or "test" (tfds also takes its own split
            syntax, e.g. "train[:10%]").
        data_dir: tfds data directory.
    """
    if dataset == "fashion_mnist" and _has_fashion_mnist(FASHION_MNIST_DIR):
        return fashion_mnist_source(split)
    if os.path.sep in dataset or os.path.exists(dataset):
        if _has_fashion_mnist(dataset):
            return fashion_mnist_source(split, dataset)
        return image_folder_source(dataset, split)
    return tfds_source(dataset, split, data_dir)
