"""Image classification datasets as (image, label) sources.

- tfds datasets by name (`imagenette`, `imagenet2012`, `cifar10`,
  `tf_flowers`...), through `tensorflow_datasets`: prepared data loads
  offline; preparing one offline fails within seconds with a
  `DatasetUnavailableError` that names the ways to local data, and leaves
  nothing half-made in the data dir.
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
import re

import numpy as np

from keras_senet.inputs import IMAGE_EXTENSIONS, decode_image

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


SPLIT_SLICE = re.compile(r"(\w+)(?:\[(\d+)?%?:(\d+)?%?\])?")


def image_folder_source(root, split="train"):
    """Images in `root/<class>/` (or `root/<split>/<class>/`), decoded as RGB.

    Class names are the sorted sub-folder names. `split` names a split
    folder (`train`, `validation` or `val`, `test`), or "train" for a folder
    of class folders; a percent slice of it, as tfds writes them
    (`train[:85%]`, `train[85%:]`), takes that share of every class, from a
    fixed shuffle of its sorted files, so complementary slices never overlap.

    Raises:
        ValueError: naming the folder, when it does not exist, holds no
            class folders or no images, or has no folder for `split`.
    """
    import tensorflow as tf

    if not os.path.isdir(root):
        raise ValueError(f"Dataset folder not found: {root}")
    match = SPLIT_SLICE.fullmatch(split)
    if not match:
        raise ValueError(f"`split` must be a name or a percent slice such as 'train[:85%]'. Received: split={split!r}")
    name, start, stop = match[1], int(match[2] or 0), int(match[3] or 100)
    split_dirs = [d for names in SPLIT_DIRS.values() for d in names if os.path.isdir(os.path.join(root, d))]
    folder = next((d for d in SPLIT_DIRS.get(name, (name,)) if os.path.isdir(os.path.join(root, d))), None)
    if folder:
        root = os.path.join(root, folder)
    elif split_dirs:
        raise ValueError(f"{root} has no {name}/ folder (it has {', '.join(d + '/' for d in split_dirs)}); "
                         f"choose one of those, or a slice such as '{split_dirs[0]}[85%:]'")
    elif name != "train":
        raise ValueError(f"{root} holds class folders, one split: there is no {name!r} split; evaluate on a "
                         "slice of it, e.g. --train-split 'train[:85%]' --val-split 'train[85%:]'")
    class_names = tuple(sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))))
    if not class_names:
        raise ValueError(f"{root} holds no class folders (expected {root}/<class>/<image>.jpg)")
    paths, labels = [], []
    for label, class_name in enumerate(class_names):
        files = sorted(os.path.join(d, f) for d, _, names in os.walk(os.path.join(root, class_name))
                       for f in names if f.lower().endswith(IMAGE_EXTENSIONS))
        if start > 0 or stop < 100:
            files = [files[i] for i in np.random.default_rng(0).permutation(len(files))]
            files = files[len(files) * start // 100:len(files) * stop // 100]
        paths += files
        labels += [label] * len(files)
    if not paths:
        raise ValueError(f"{root} holds no images ({', '.join(IMAGE_EXTENSIONS)}) in its class folders"
                         + (f" for {split!r}" if start > 0 or stop < 100 else ""))

    def decode(path, label):
        image = decode_image(tf.io.read_file(path), channels=3)
        return image, label

    dataset = tf.data.Dataset.from_tensor_slices((paths, np.array(labels, "int64")))
    dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset, SourceInfo(root, split, class_names, len(paths), 3, False)


class DatasetUnavailableError(ValueError):
    """A tfds dataset that is not prepared and cannot be downloaded now.

    The message names the dataset and the ways to use local data instead.
    """


# A TCP connect to a download host (or its proxy) must answer within this many
# seconds, else the dataset counts as offline; tfds' own downloader retries a
# failed connection 10 times with backoff (about 200 s) before it gives up.
HOST_TIMEOUT = 3.0


def _download_targets(urls):
    """(host, port) pairs a download of `urls` connects to: the server, or the
    proxy that `requests` (tfds' downloader) would use for it."""
    from urllib.parse import urlsplit

    import requests

    default_ports = {"http": 80, "https": 443, "ftp": 21}
    targets = []
    for url in urls:
        scheme = urlsplit(url).scheme
        if scheme not in default_ports:
            continue  # gs://, local paths: tfds copies them with tf.io.gfile
        proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
        if proxy:
            url = proxy if "://" in proxy else "http://" + proxy
        parts = urlsplit(url)
        if parts.hostname:
            target = (parts.hostname, parts.port or default_ports.get(parts.scheme, 80))
            if target not in targets:
                targets.append(target)
    return targets


def _connect_errors(targets, timeout=HOST_TIMEOUT):
    """{"host:port": error} for the `targets` ((host, port) pairs) that do not
    accept a TCP connection within `timeout` seconds."""
    import socket

    errors = {}
    for host, port in targets:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as e:  # name resolution, refused, unreachable, timed out
            errors[f"{host}:{port}"] = str(e) or type(e).__name__
    return errors


def _manual_dir(builder):
    """tfds' manual download dir for `builder`'s data dir (tfds' default)."""
    return os.path.join(os.fspath(builder.data_dir_root), "downloads", "manual")


def _has_manual_files(builder):
    """Whether tfds' manual download dir holds a file `builder` would download
    (any file, for a dataset that is only prepared from manual files)."""
    manual = _manual_dir(builder)
    names = [info.filename for info in (builder.url_infos or {}).values() if info.filename]
    if builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
        return os.path.isdir(manual) and bool(os.listdir(manual))
    return any(os.path.exists(os.path.join(manual, name)) for name in names)


def _unavailable(builder, reason):
    """DatasetUnavailableError for `builder`: why, and the ways to local data."""
    name, root, manual = builder.name, os.fspath(builder.data_dir_root), _manual_dir(builder)
    if builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
        files = "the files tfds' instructions name (" + " ".join(builder.MANUAL_DOWNLOAD_INSTRUCTIONS.split()) + ")"
    else:
        infos = {url: info.filename for url, info in (builder.url_infos or {}).items() if info.filename}
        if len(infos) == 1:
            files = "{1} (from {0})".format(*next(iter(infos.items())))
        elif infos:  # one file per config; tfds does not say which is whose before it runs
            config = f"{name}/{builder.builder_config.name}" if builder.builder_config else name
            files = f"the file of {config} among {', '.join(infos.values())}"
            folders = {url.rsplit("/", 1)[0] for url in infos}
            if len(folders) == 1:
                files += f" (from {folders.pop()}/)"
        else:
            files = "its source files"
    return DatasetUnavailableError(
        f"tfds dataset {name!r} is not prepared in {root} and {reason}. To use local data instead: "
        f"an image folder (--dataset FOLDER, with FOLDER/<class>/*.jpg), a --data-dir where {name} is "
        f"already prepared, or {files} placed in tfds' manual download dir {manual}"
    )


def _tree(root, depth=3):
    """Paths under `root`, at most `depth` levels down.

    tfds creates everything a prepare makes within three levels (`name/version`,
    `name/config/version`, `downloads/name/<file or tmp dir>`,
    `downloads/extracted/<archive>`), so new paths show there, while the
    contents of extracted archives (ImageNet: over a million files) are not walked.
    """
    found, stack = set(), [(root, 0)]
    while stack:
        path, level = stack.pop()
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    found.add(entry.path)
                    if level + 1 < depth and entry.is_dir(follow_symlinks=False):
                        stack.append((entry.path, level + 1))
        except (FileNotFoundError, NotADirectoryError):
            pass
    return found


def _remove_new(root, before):
    """Remove what appeared under `root` since `before` (a `_tree`, or None if
    `root` did not exist); what was there stays."""
    import shutil

    if before is None:
        shutil.rmtree(root, ignore_errors=True)
        return
    removed = []
    for path in sorted(_tree(root) - before, key=len):  # parents before children
        if any(path.startswith(parent + os.sep) for parent in removed):
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.remove(path)
        removed.append(path)


def _network_errors():
    """Exceptions that mean a download could not be made (not a bad file or disk)."""
    import urllib.error

    import requests
    from tensorflow_datasets.core.download.util import DownloadError

    return (requests.exceptions.RequestException, DownloadError, urllib.error.URLError, ConnectionError, TimeoutError)


def _prepare(builder):
    """Download and prepare `builder`'s data, failing fast when offline.

    The hosts of the builder's registered download URLs (tfds' checksums
    file) are checked first with a short TCP connect, unless the files are in
    tfds' manual download dir; a failure removes what this call created in
    the data dir.

    Raises:
        DatasetUnavailableError: when the hosts do not answer, the manual
            files a dataset needs are missing, or the download fails.
    """
    manual = _has_manual_files(builder)
    if builder.MANUAL_DOWNLOAD_INSTRUCTIONS and not manual:
        raise _unavailable(builder, "it can only be prepared from manually downloaded files")
    targets = [] if manual else _download_targets(builder.url_infos or {})
    errors = _connect_errors(targets)
    if targets and len(errors) == len(targets):  # one host that answers may be all it needs
        hosts = "; ".join(f"{host} ({error})" for host, error in errors.items())
        raise _unavailable(builder, f"cannot be downloaded, no download host answers: {hosts}")
    root = os.fspath(builder.data_dir_root)
    local = "://" not in root  # cleanup of gs:// and other remote data dirs is left to tfds
    before = _tree(root) if os.path.isdir(root) else None
    try:
        builder.download_and_prepare()
    except BaseException as e:
        if local:
            _remove_new(root, before)
        if isinstance(e, _network_errors()):
            detail = " ".join(f"{type(e).__name__}: {e}".split())
            raise _unavailable(builder, f"its download failed ({detail[:300]})") from e
        raise


TFDS_NAME = re.compile(r"[a-z0-9_]+(/[\w.-]+)?(:[\w.*]+)?")


def _tfds_builder(name, data_dir):
    """tfds' builder for `name`, with a short error for a name tfds does not know."""
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
        import difflib

        close = difflib.get_close_matches(name, sorted(set(tfds.list_builders(with_community_datasets=False))), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"`dataset` {name!r} is neither a folder (there is no {os.path.abspath(name)}) nor a tfds "
            f"dataset name (`tfds.list_builders()` lists them).{hint}"
        ) from e


def tfds_source(name, split="train", data_dir=None, download=True):
    """A tfds dataset by name, as (image, label) pairs.

    A dataset that is already prepared in `data_dir` loads without any
    network access; otherwise it is downloaded and prepared there first.

    Args:
        name: tfds dataset name, e.g. "tf_flowers" or "imagenette/320px-v2".
        split: tfds split (its slicing syntax works, e.g. "train[85%:]");
            "validation" falls back to "test" when the dataset has none.
        data_dir: tfds data directory (tfds' default when None).
        download: prepare the dataset when it is not prepared yet.

    Returns:
        (tf.data.Dataset of (uint8 image, int64 label), SourceInfo).

    Raises:
        DatasetUnavailableError: when the dataset is not prepared and cannot be
            downloaded now (offline, or `download=False`); the message names
            the ways to use local data.
        ValueError: for an unknown dataset name, or "validation" on a dataset
            that has neither a validation nor a test split.
    """
    try:
        import tensorflow_datasets  # noqa: F401
    except ImportError as e:
        raise ImportError("tfds datasets need `pip install tensorflow-datasets`") from e
    builder = _tfds_builder(name, data_dir)
    if not builder.is_prepared():
        if not download:
            raise _unavailable(builder, "downloading is off (download=False)")
        _prepare(builder)
    splits = builder.info.splits
    if split == "validation" and "validation" not in splits:
        if "test" not in splits:
            raise ValueError(
                f"tfds dataset {name!r} has no 'validation' or 'test' split (its splits: {', '.join(splits)}); "
                "evaluate on a slice of one instead, e.g. `--val-split 'train[85%:]'`"
            )
        split = "test"
    dataset = builder.as_dataset(split=split, as_supervised=True)
    features = builder.info.features
    channels = features["image"].shape[-1] or 3
    info = SourceInfo(name, split, tuple(features["label"].names), splits[split].num_examples, channels, False)
    return dataset, info


def load_source(dataset, split="train", data_dir=None):
    """(tf.data.Dataset of (uint8 image, int64 label), SourceInfo).

    Args:
        dataset: a tfds name, an image folder, or a folder of Fashion-MNIST idx
            files; "fashion_mnist" prefers the Debian files when installed.
        split: "train", "validation" or "test" (tfds also takes its own split
            syntax, e.g. "train[:10%]").
        data_dir: tfds data directory.

    Raises:
        DatasetUnavailableError: a tfds dataset that is not prepared and
            cannot be downloaded now (see `tfds_source`).
        ValueError: for a name that is neither a folder nor a tfds dataset.
    """
    if dataset == "fashion_mnist" and _has_fashion_mnist(FASHION_MNIST_DIR):
        return fashion_mnist_source(split)
    if os.path.exists(dataset):
        if _has_fashion_mnist(dataset):
            return fashion_mnist_source(split, dataset)
        return image_folder_source(dataset, split)
    if TFDS_NAME.fullmatch(dataset):  # "name", "name/config", "name:version", "name/config:version"
        return tfds_source(dataset, split, data_dir)
    return image_folder_source(dataset, split)  # names the missing folder
