"""tf.data input pipelines: augmentation, normalization, batching.

Training: ImageNet-style random resized crop (area 8%-100%, aspect 3/4-4/3)
and horizontal flip, or for small images (under 64 px) the CIFAR recipe (pad
4, random crop, flip). Evaluation: resize the shorter side to size / crop_pct
and center-crop, as the presets' reference transform does. Random ops are
stateless with per-example seeds.

`repeat=True` gives an endless stream whose every batch is a function of
its position alone: epoch e is shuffled with a seed made from (`seed`, e)
and example i of it is augmented with the seed pair (`seed` + e, i). Every
iterator made from it reads the same batches (with `deterministic=True`),
however many iterators were made before, so a restarted run skipped to a
position reads what an uninterrupted run read there. (`.repeat()` on the
finite dataset instead reshuffles per pass through shared generators:
a second iterator's batches depend on how far the first one read.)
"""

import math

import numpy as np

from keras_senet.inputs import default_transform, match_channels

AUGMENTS = ("auto", "imagenet", "cifar", None)


def random_resized_crop(image, size, seed, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                        interpolation="bilinear"):
    """A random crop of `scale` area and `ratio` aspect, resized to `size`."""
    import tensorflow as tf

    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seed,
        min_object_covered=0.0, aspect_ratio_range=ratio, area_range=scale, max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    image = tf.slice(image, begin, crop_size)
    return tf.image.resize(tf.cast(image, tf.float32), (size, size), method=interpolation, antialias=True)


def pad_crop(image, size, seed, padding=4):
    """The CIFAR augmentation: zero-pad by `padding`, crop `size` at random."""
    import tensorflow as tf

    image = tf.cast(image, tf.float32)
    if image.shape[0] != size or image.shape[1] != size:
        image = tf.image.resize(image, (size, size), antialias=True)
    image = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]])
    return tf.image.stateless_random_crop(image, (size, size, image.shape[-1]), seed=seed)


def make_dataset(
    source,
    *,
    training,
    image_size,
    batch_size,
    transform=None,
    channels=None,
    augment="auto",
    shuffle_buffer=10_000,
    limit=None,
    seed=None,
    deterministic=False,
    drop_remainder=None,
    repeat=False,
):
    """Batches of (preprocessed float32 image, int64 label) from a source.

    Args:
        source: a tf.data.Dataset of (uint8 HWC image, label), e.g. from
            `keras_senet.training.data.load_source`.
        training: shuffle and augment (else the evaluation transform).
        image_size: output side in pixels.
        batch_size: the *global* batch (per replica x replicas).
        transform: the model's `InputTransform` (`model.input_transform`):
            its normalization, its channel count and, for evaluation, its
            crop fraction and interpolation. None: `default_transform` for
            `channels` (or the source's channels).
        channels: convert images to 1 or 3 channels (default: the
            transform's, else the source's).
        augment: "imagenet", "cifar", None, or "auto" (cifar under 64 px).
        limit: use only the first `limit` examples.
        seed: shuffle and augmentation seed (None: random).
        deterministic: keep element order fixed in parallel maps.
        drop_remainder: default True for training (equal replica batches).
        repeat: an endless stream of epochs whose batches depend only on
            their position (see the module docstring); what `training.train`
            needs to resume a run exactly. Batches never straddle epochs.

    Returns:
        A batched, prefetched tf.data.Dataset.
    """
    import tensorflow as tf

    if augment not in AUGMENTS:
        raise ValueError(f"`augment` must be one of {AUGMENTS}. Received: augment={augment!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
    if augment == "auto":
        augment = "cifar" if image_size < 64 else "imagenet"
    channels = channels or (transform.channels if transform else source.element_spec[0].shape[-1])
    transform = (transform or default_transform(channels)).replace(channels=channels)
    examples = source.take(limit) if limit else source

    def prepare(example, pair):
        image, label = example
        if not training or augment is None:  # the model's evaluation transform
            return transform.eval_image(image, image_size), tf.cast(label, tf.int64)
        image = match_channels(image, transform.channels)
        if augment == "imagenet":
            image = random_resized_crop(image, image_size, pair, interpolation=transform.interpolation)
        else:
            image = pad_crop(image, image_size, pair)
        image = tf.image.stateless_random_flip_left_right(image, pair + 1)
        image = tf.ensure_shape(image, (image_size, image_size, transform.channels))
        return transform.normalize(image, "channels_last"), tf.cast(label, tf.int64)

    drop_remainder = training if drop_remainder is None else drop_remainder

    def batches(dataset, seeds):
        dataset = tf.data.Dataset.zip((dataset, seeds))
        dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
        return dataset.batch(batch_size, drop_remainder=drop_remainder)

    if repeat:
        base = int(np.random.default_rng().integers(2**31)) if seed is None else seed

        def epoch_batches(epoch):
            shuffled = examples
            if training:  # one order per epoch, from (seed, epoch) alone
                # This traced function's graph only: with a global seed of 0 set,
                # TensorFlow compares it with the tensor seed in Python and fails.
                tf.random.set_seed(None)
                shuffled = examples.shuffle(shuffle_buffer, seed=base * 1_000_003 + epoch,
                                            reshuffle_each_iteration=False)
            seeds = tf.data.Dataset.counter().map(lambda i: tf.stack([base + epoch, i]))
            return batches(shuffled, seeds)

        dataset = tf.data.Dataset.counter().flat_map(epoch_batches).apply(
            tf.data.experimental.assert_cardinality(tf.data.INFINITE_CARDINALITY))
    else:
        if training:
            examples = examples.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        # One stateless seed pair per example; a fresh stream every pass.
        dataset = batches(examples, tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2))
    options = tf.data.Options()
    options.deterministic = deterministic
    # Sources are in memory or lists of files: workers split the examples.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(num_examples, batch_size, training=True):
    """Batches per epoch: full batches for training, all for evaluation."""
    return num_examples // batch_size if training else math.ceil(num_examples / batch_size)


def take_arrays(dataset, count):
    """The first `count` images and labels of a batched dataset, as numpy."""
    images, labels = [], []
    for x, y in dataset:
        images.append(x.numpy())
        labels.append(y.numpy())
        if sum(len(b) for b in labels) >= count:
            break
    return np.concatenate(images)[:count], np.concatenate(labels)[:count]
