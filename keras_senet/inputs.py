"""What a model takes and what its outputs mean: input transforms and class
names, as plain data plus small functions.

Every model built by this package carries an `InputTransform`
(`model.input_transform`): how RGB images in [0, 255] become its input
(`mode`, as keras.applications' `preprocess_input(mode=...)` names it:
"torch" scales to [0, 1] and normalizes by `mean`/`std`, "tf" scales to
[-1, 1], "raw" passes [0, 255] on because the model normalizes inside, as
SE-MobileNetV3 does), and how an image is resized and cropped for
evaluation (timm's eval transform: shorter side to `size / crop_pct`,
center crop `size`). A preset's transform is the one its reference accuracy
was measured with. The command line, export calibration, `predict`, training
and the notebooks read it from the model; nothing guesses it from a name.

`save_model` / `load_model` keep the transform and the class names (for
models trained on other data) in the `.keras` file, as a member
`keras_senet.json` beside Keras' own; `keras.saving.load_model` ignores it.

This module is a leaf: every floor of the package may import it, and it
imports nothing of the package.
"""

import dataclasses
import json
import math
import os
import zipfile

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MODES = ("torch", "tf", "raw")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "area")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
CLASS_INDEX_PATH = os.path.join(os.path.dirname(__file__), "models", "imagenet_class_index.json")
METADATA_MEMBER = "keras_senet.json"
_CLASS_INDEX = None


@dataclasses.dataclass(frozen=True)
class InputTransform:
    """How RGB images in [0, 255] become a model's input.

    Attributes:
        mode: "torch" (x / 255, minus `mean`, over `std`), "tf" (x / 127.5 - 1)
            or "raw" (x as float32: the model normalizes inside).
        mean, std: per-channel statistics in [0, 1] units ("torch" mode).
        size: evaluation input side in pixels; None: the model's input size.
        crop_pct: evaluation center-crop fraction (1.0: resize only).
        interpolation: "bilinear", "bicubic", "nearest" or "area".
        channels: image channels the model takes (1 or 3).
    """

    mode: str = "torch"
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    size: int = None
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    channels: int = 3

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"`mode` must be one of {MODES}. Received: mode={self.mode!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"`interpolation` must be one of {INTERPOLATIONS}. Received: interpolation={self.interpolation!r}"
            )
        if not 0 < self.crop_pct <= 1:
            raise ValueError(f"`crop_pct` must be in (0, 1]. Received: crop_pct={self.crop_pct!r}")
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))

    def replace(self, **changes):
        """A copy with `changes` applied (e.g. `size=`, `channels=`)."""
        return dataclasses.replace(self, **changes)

    def normalize(self, x, data_format=None):
        """[0, 255] images -> the model's input, any batch shape.

        Args:
            x: numpy array, list or tensor (any Keras backend); channels last
                unless `data_format` (or Keras' global setting) says first.

        Returns:
            A float32 array (for numpy input) or tensor of the same shape.
        """
        import keras

        tensor = not (isinstance(x, (np.ndarray, list, tuple)) or np.isscalar(x))
        x = keras.ops.cast(x, "float32") if tensor else np.asarray(x, "float32")
        if self.mode == "raw":
            return x
        if self.mode == "tf":
            return x / 127.5 - 1.0
        data_format = data_format or keras.config.image_data_format()
        shape = (-1, 1, 1) if data_format == "channels_first" else (-1,)
        mean = np.reshape(np.asarray(self.mean[: self.channels], "float32"), shape)
        std = np.reshape(np.asarray(self.std[: self.channels], "float32"), shape)
        if tensor:  # tensor statistics: numpy operands would go through numpy's
            # deprecated __array_wrap__ on torch tensors
            mean, std = keras.ops.convert_to_tensor(mean), keras.ops.convert_to_tensor(std)
        return (x / 255.0 - mean) / std

    def eval_image(self, image, size=None):
        """One (H, W, C) image in [0, 255] -> the evaluation input (a tf
        tensor): channels matched, the shorter side resized to
        `size / crop_pct` and a `size` square center-cropped (inputs under
        64 px are only resized), rounded to uint8 levels, normalized.
        Usable in `tf.data.Dataset.map`.

        Args:
            size: output side (default `self.size`); required if that is None.
        """
        import tensorflow as tf

        size = size or self.size
        if not size:
            raise ValueError("`size` is needed: this transform has no evaluation size of its own.")
        image = match_channels(image, self.channels)
        if self.crop_pct < 1.0 and size >= 64:  # small (CIFAR-like) images are only resized
            image = resize_center_crop(image, size, self.crop_pct, self.interpolation)
        else:
            image = tf.image.resize(tf.cast(image, tf.float32), (size, size), method=self.interpolation,
                                    antialias=True)
        image = tf.round(tf.clip_by_value(image, 0.0, 255.0))  # as PIL: uint8 pixels
        image = tf.ensure_shape(image, (size, size, self.channels))
        return self.normalize(image, "channels_last")

    def to_config(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def default_transform(channels=3, size=224):
    """The input of this package's constructors built without a preset:
    ImageNet mean/std for RGB (as the presets were trained), [-1, 1] for
    other channel counts; 0.875 center crop for evaluation."""
    return InputTransform("torch" if channels == 3 else "tf", channels=channels, size=size)


def fit_to_input(transform, input_shape, data_format="channels_last"):
    """`transform` for a model with `input_shape` (no batch): its channel
    count, and its size where the input size is fixed (a model of fixed
    size cannot take the preset's evaluation size)."""
    spatial = input_shape[:2] if data_format == "channels_last" else input_shape[1:]
    channels = input_shape[-1] if data_format == "channels_last" else input_shape[0]
    size = spatial[0] if spatial[0] is not None and spatial[0] == spatial[1] else transform.size
    if transform.mode == "torch" and channels != 3:
        transform = transform.replace(mode="tf")  # ImageNet statistics are for RGB
    return transform.replace(channels=channels, size=size)


def match_channels(image, channels):
    """A (H, W, C) tf image with `channels` channels (gray <-> RGB)."""
    import tensorflow as tf

    have = image.shape[-1]
    if channels is None or have == channels:
        return image
    if have == 1 and channels == 3:
        return tf.image.grayscale_to_rgb(image)
    if have == 3 and channels == 1:
        return tf.image.rgb_to_grayscale(image)
    if have == 4:  # RGBA: drop alpha
        return match_channels(image[..., :3], channels)
    raise ValueError(f"Cannot turn {have}-channel images into {channels} channels")


def resize_center_crop(image, input_size, crop_pct=0.875, interpolation="bilinear"):
    """Resize the shorter side to `floor(input_size / crop_pct)` (antialiased)
    and center-crop `input_size` square, as torchvision's Resize + CenterCrop.

    Args:
        image: a (H, W, C) tensor.

    Returns:
        A float32 (input_size, input_size, C) tensor.
    """
    import tensorflow as tf

    scale_size = math.floor(input_size / crop_pct)
    image = tf.cast(image, tf.float32)
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    short = tf.minimum(h, w)
    # torchvision's Resize(int): the longer side is truncated, not rounded
    new_h = tf.where(h == short, scale_size, (scale_size * h) // short)
    new_w = tf.where(w == short, scale_size, (scale_size * w) // short)
    image = tf.image.resize(image, tf.stack([new_h, new_w]), method=interpolation, antialias=True)
    top = tf.cast(tf.round(tf.cast(new_h - input_size, tf.float32) / 2), tf.int32)
    left = tf.cast(tf.round(tf.cast(new_w - input_size, tf.float32) / 2), tf.int32)
    return image[top:top + input_size, left:left + input_size]


def image_files(paths):
    """Image files named by `paths` (files or folders, walked in sorted
    order).

    Raises:
        ValueError: naming a path that does not exist, or when no image
            (.jpg, .jpeg, .png, .bmp, .gif) is found.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = []
    for path in map(os.fspath, paths):
        if os.path.isdir(path):
            for folder, dirs, names in os.walk(path):
                dirs.sort()
                files += [os.path.join(folder, n) for n in sorted(names) if n.lower().endswith(IMAGE_EXTENSIONS)]
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise ValueError(f"Image file or folder not found: {path}")
    if not files:
        raise ValueError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) in {', '.join(map(os.fspath, paths))}")
    return files


def decode_image(contents, channels=0):
    """Decode an encoded JPEG, PNG, BMP or GIF (first frame) to (H, W, C)
    uint8, JPEGs with the accurate integer DCT: bit-identical to PIL (what
    timm and torchvision read images with), where TensorFlow's default fast
    DCT differs by 1 level on average and up to 3 (measured on a q95 JPEG).
    Usable in `tf.data.Dataset.map`.

    Args:
        contents: a scalar string tensor, the file's bytes.
        channels: 0 (as stored), 1, 3 or 4.
    """
    import tensorflow as tf

    return tf.cond(
        tf.io.is_jpeg(contents),
        lambda: tf.io.decode_jpeg(contents, channels=channels, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(contents, channels=channels, expand_animations=False),
    )


def load_images(files, transform, size=None):
    """Decode image files and apply `transform`'s evaluation transform.

    Args:
        files: image file paths (JPEG, PNG, BMP, GIF; any size).
        transform: an `InputTransform`.
        size: output side (default `transform.size`).

    Returns:
        A float32 array (N, size, size, transform.channels), the model's input.

    Raises:
        ValueError: naming a file that is not a readable image.
    """
    import tensorflow as tf

    images = []
    for path in files:
        try:
            image = decode_image(tf.io.read_file(path))
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as e:
            raise ValueError(f"{path} is not a readable image: its content is not JPEG, PNG, BMP or GIF") from None
        images.append(np.asarray(transform.eval_image(image, size)))
    return np.stack(images).astype("float32")


# Class names -------------------------------------------------------------

def imagenet_class_index():
    """{"0": [wnid, name], ...}: the ImageNet-1k classes in their standard
    sorted order, with their first WordNet lemma (shipped in the package)."""
    global _CLASS_INDEX
    if _CLASS_INDEX is None:
        with open(CLASS_INDEX_PATH) as f:
            _CLASS_INDEX = json.load(f)
    return _CLASS_INDEX


# Label sets by head width, as timm infers them (no other ImageNet subset has
# these widths): name and file (WordNet id <TAB> first lemma per line, in
# class-index order; the files say where their lists come from).
IMAGENET_LABEL_SETS = {
    1000: ("ImageNet-1k", None),
    11821: ("ImageNet-12k", "imagenet12k_classes.txt"),
    11221: ("ImageNet-21K-P", "imagenet21k_miil_classes.txt"),
}
_LABELS = {}


def imagenet_labels(classes):
    """The (WordNet id, name) of each class of an ImageNet head.

    Args:
        classes: the head's width: 1000 (ImageNet-1k), 11821 (ImageNet-12k,
            timm's `*.sw_in12k` presets) or 11221 (ImageNet-21K-P, timm's
            `*.miil_in21k` presets).

    Returns:
        A tuple of `classes` (wnid, name) pairs, by class index; names are the
        first WordNet lemma with spaces as underscores (Keras' ImageNet-1k
        names follow the same rule).

    Raises:
        ValueError: for any other width.
    """
    if classes not in IMAGENET_LABEL_SETS:
        raise ValueError(
            f"No ImageNet class names for {classes} classes: they exist for "
            + ", ".join(f"{n} ({name})" for n, (name, _) in IMAGENET_LABEL_SETS.items())
            + ". Pass the model's own class names instead."
        )
    if classes not in _LABELS:
        file = IMAGENET_LABEL_SETS[classes][1]
        if file is None:
            index = imagenet_class_index()
            labels = [tuple(index[str(i)]) for i in range(classes)]
        else:
            with open(os.path.join(os.path.dirname(CLASS_INDEX_PATH), file)) as f:
                labels = [tuple(line.rstrip("\n").split("\t")) for line in f if not line.startswith("#")]
        if len(labels) != classes:  # a damaged installation, not a user error
            raise RuntimeError(f"{file} lists {len(labels)} classes, not {classes}; reinstall keras-senet")
        _LABELS[classes] = tuple(labels)
    return _LABELS[classes]


def top_k(scores, class_names=None, k=5):
    """The `k` best classes of each row of `scores`.

    Args:
        scores: (batch, classes) probabilities or logits.
        class_names: names by index; None: ImageNet's, chosen by the
            number of classes (see `imagenet_labels`).
        k: classes per example.

    Returns:
        A list (one per example) of lists of (index, class id, name, score),
        best first; the class id is the WordNet id for ImageNet, else the name.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"Expected scores of shape (batch, classes). Received shape: {scores.shape}")
    if class_names is None:
        if scores.shape[1] not in IMAGENET_LABEL_SETS:
            raise ValueError(
                f"The model has {scores.shape[1]} classes and no class names; ImageNet names exist for "
                f"{', '.join(map(str, IMAGENET_LABEL_SETS))} classes."
            )
        labels = imagenet_labels(scores.shape[1])
    else:
        if len(class_names) != scores.shape[1]:
            raise ValueError(f"{len(class_names)} class names for {scores.shape[1]} model outputs")
        labels = [(str(n), str(n)) for n in class_names]
    results = []
    for row in scores:
        order = np.argsort(row, kind="stable")[::-1][:k]
        results.append([(int(i), *labels[i], float(row[i])) for i in order])
    return results


# Models carry their transform and class names --------------------------

def attach(model, transform=None, class_names=None):
    """Set `model.input_transform` and `model.class_names` (None: keep)."""
    if transform is not None:
        object.__setattr__(model, "input_transform", transform)
    if class_names is not None:
        object.__setattr__(model, "class_names", tuple(str(n) for n in class_names))
    return model


def input_transform(model):
    """The `InputTransform` a model carries, or None."""
    return getattr(model, "input_transform", None)


def class_names(model):
    """The class names a model carries, or None (ImageNet-1k for 1000)."""
    return getattr(model, "class_names", None)


def metadata_json(model, **changes):
    """The model's input transform (with `changes`, e.g. `mode="raw"`) and
    class names as JSON: what every file this package writes carries."""
    data = {"format": 1}
    if input_transform(model) is not None:
        data["input_transform"] = input_transform(model).replace(**changes).to_config()
    if class_names(model) is not None:
        data["class_names"] = list(class_names(model))
    return json.dumps(data, indent=1)


def parse_metadata(text):
    """(InputTransform or None, class names or None) from `metadata_json`'s
    text (None or "" for a file that carries none)."""
    data = json.loads(text) if text else {}
    transform = data.get("input_transform")
    return (InputTransform.from_config(transform) if transform else None), data.get("class_names")


def write_metadata(path, model):
    """Add the model's transform and class names to a saved `.keras` file."""
    with zipfile.ZipFile(path) as archive:
        present = METADATA_MEMBER in archive.namelist()
    if present:  # written before (a resumed run): rewrite the archive without it
        tmp = f"{path}.partial{os.getpid()}"
        with zipfile.ZipFile(path) as old, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as new:
            for item in old.infolist():
                if item.filename != METADATA_MEMBER:
                    new.writestr(item, old.read(item.filename))
        os.replace(tmp, path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(METADATA_MEMBER, metadata_json(model))


def save_model(model, path):
    """`model.save(path)` plus the model's transform and class names, or
    `model.save_weights(path)` for a `.weights.h5` name; written atomically
    (an interrupted save leaves no file).

    Raises:
        ValueError: for a name ending in neither .keras nor .weights.h5.
    """
    path = os.fspath(path)
    suffix = next((s for s in (".keras", ".weights.h5") if path.endswith(s)), None)
    if suffix is None:
        raise ValueError(f"A model file name must end in .keras or .weights.h5. Received: path={path!r}")
    tmp = f"{path}.partial{os.getpid()}{suffix}"
    try:
        if suffix == ".keras":
            model.save(tmp)
            write_metadata(tmp, model)
        else:
            model.save_weights(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_model(path, compile=True):
    """`keras.saving.load_model(path)` with the transform and class names
    that `save_model` stored set on the model (absent for other files).

    Raises:
        ValueError: naming the file when it does not exist or is not a
            .keras archive.
    """
    import keras

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"Model file not found: {path}")
    transform, names = read_metadata(path)
    return attach(keras.saving.load_model(path, compile=compile), transform, names)


def read_metadata(path):
    """(InputTransform or None, class names or None) of a `.keras` file."""
    try:
        with zipfile.ZipFile(path) as archive:
            if METADATA_MEMBER not in archive.namelist():
                return None, None
            return parse_metadata(archive.read(METADATA_MEMBER))
    except zipfile.BadZipFile:
        raise ValueError(f"{path} is not a .keras file (not a zip archive)") from None
