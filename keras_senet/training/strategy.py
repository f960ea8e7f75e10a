"""Choosing a `tf.distribute` strategy for `model.fit`.

TensorFlow's own engine does the distribution: TPUStrategy on a TPU,
MultiWorkerMirroredStrategy when TF_CONFIG describes a cluster,
MirroredStrategy on one machine with several GPUs (or several logical CPUs),
else the default strategy. Build and compile the model inside
`strategy.scope()` and pass the *global* batch to the input pipeline.
"""

import json
import os

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")


def split_cpu(num_devices):
    """Split the CPU into `num_devices` logical devices, so MirroredStrategy
    runs that many replicas on a machine without GPUs (for tests and demos;
    it does not make training faster). Call it before TensorFlow runs any op.

    Raises:
        RuntimeError: when TensorFlow has already initialized its devices.
    """
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current and len(current) == num_devices:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices
        )
    except RuntimeError as e:
        raise RuntimeError(
            f"split_cpu({num_devices}) must run before TensorFlow initializes its devices "
            "(call it first thing in the program)"
        ) from e


def _tf_config_workers():
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    cluster = config.get("cluster", {})
    return sum(len(cluster.get(job, [])) for job in ("chief", "worker"))


def _tpu_available():
    import tensorflow as tf

    return bool(
        os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR")
        or tf.config.list_physical_devices("TPU")
    )


def get_strategy(name="auto"):
    """A `tf.distribute.Strategy` by name.

    Args:
        name: "auto" picks TPU (when TPU_NAME / COLAB_TPU_ADDR is set or a
            TPU is attached), "multi_worker" (when TF_CONFIG names a cluster
            of more than one worker), "mirrored" (more than one GPU, or a CPU
            split with `split_cpu`), else "default". "mirrored" uses every GPU,
            or every logical CPU when there is no GPU.

    Returns:
        The strategy; `strategy.num_replicas_in_sync` gives the replicas.
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES}. Received: strategy={name!r}")
    if name == "auto":
        # Multi-worker collectives must be set up before TensorFlow starts its
        # devices, so TF_CONFIG is read before any logical device is listed.
        if _tpu_available():
            name = "tpu"
        elif _tf_config_workers() > 1:
            name = "multi_worker"
        else:
            gpus = tf.config.list_logical_devices("GPU")
            cpus = tf.config.list_logical_devices("CPU")
            name = "mirrored" if len(gpus) > 1 or (not gpus and len(cpus) > 1) else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        if _tf_config_workers() < 1:
            raise ValueError(
                "strategy='multi_worker' needs TF_CONFIG with a cluster "
                '(e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                '"task": {"type": "worker", "index": 0}}).'
            )
        from keras_senet.training.multi_worker import patch_keras_for_multi_worker

        patch_keras_for_multi_worker()
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def strategy_name(strategy):
    """"TPUStrategy", "MultiWorkerMirroredStrategy", "MirroredStrategy" or
    "default" (TF's class names differ from the public ones)."""
    import tensorflow as tf

    for name in ("TPUStrategy", "MultiWorkerMirroredStrategy", "MirroredStrategy"):
        if isinstance(strategy, getattr(tf.distribute, name)):
            return name
    return "default"


def is_chief(strategy=None):
    """True on the worker that should write logs, checkpoints and exports
    (always True outside multi-worker training)."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    if not task or _tf_config_workers() <= 1:
        return True
    if "chief" in config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and task.get("index", 0) == 0
