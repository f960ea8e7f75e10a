"""Make Keras 3 `model.fit` work under MultiWorkerMirroredStrategy.

Upstream: keras-team/keras#20585 (open; also tensorflow/tensorflow#72388).
Two defects in keras/src/backend/tensorflow/trainer.py stop fit, evaluate
and predict under a multi-worker MWMS before the first step (measured with
Keras 3.15.1, TF 2.21):

1. `TensorFlowTrainer._maybe_symbolic_build` builds the model from one
   batch reduced with `strategy.reduce("MEAN", batch, axis=None)`; MWMS's
   collective reduce takes one tensor, not an (x, y) structure:
   "Attempt to convert a value (PerReplica:{...}) ... to a Tensor".
   Fix: build from the first local replica's part of the batch (only its
   shapes and dtypes matter), with no collective at all.
2. `reduce_per_replica` reduces the scalar step logs with
   `strategy.reduce("MEAN", v, axis=0)`: "Invalid reduction dimension 0 for
   input with 0 dimensions". Fix: `axis=None`, the mean over replicas that
   the single-worker path computes.

Whether the installed Keras has each fault is decided by behaviour, not by
its version: `keras_faults` calls Keras' function with a stand-in for one
worker of a two-worker MWMS that reduces as MWMS's collective ops do (one
tensor at a time, over an axis the tensor has). It runs no TensorFlow op:
MWMS must configure its collectives before TensorFlow's first op, and the
fixes are installed just before MWMS is created. A fix is installed only for
a function that fails the probe (a Keras that fixed it is left alone), at
most once, and each wrapper acts only when Keras' own test
`_collective_all_reduce_multi_worker` says the strategy spans several
workers; otherwise it calls Keras' code with the same arguments. They touch
private Keras functions: a Keras release that renames them turns the fixes
off. Tests: tests/training/test_strategy.py (the probe on this Keras and on
simulated fixed ones), tests/training/test_distributed.py (two workers on
loopback).
"""

import contextlib
import types

import numpy as np

_MARK = "_keras_senet_issue_20585"


class _CollectiveError(Exception):
    """What MWMS's collective reduce would raise, in the probe."""


def _probe_strategy():
    """A stand-in for worker 0 of a two-worker MultiWorkerMirroredStrategy
    with one local replica, and the class of its distributed values. Its
    tensors are numpy arrays: it runs no TensorFlow op."""
    import tensorflow as tf

    class LocalValues(tf.distribute.DistributedValues):
        def __init__(self, value):
            self.values = (value,)

    class OneOfTwoWorkers(tf.distribute.MultiWorkerMirroredStrategy):
        num_replicas_in_sync = 2
        extended = types.SimpleNamespace(_in_multi_worker_mode=lambda: True,
                                         worker_devices=("/job:worker/replica:0/task:0/device:CPU:0",))

        def __init__(self):  # no cluster, no collectives
            pass

        def scope(self):
            return contextlib.nullcontext()

        def experimental_local_results(self, value):
            return value.values if isinstance(value, LocalValues) else (value,)

        def reduce(self, reduce_op, value, axis=None):
            if isinstance(value, (tuple, list, dict)):
                raise _CollectiveError("a collective reduce takes one tensor, not a structure")
            (tensor,) = self.experimental_local_results(value)
            if axis is not None and not -np.ndim(tensor) <= axis < np.ndim(tensor):
                raise _CollectiveError(f"Invalid reduction dimension {axis} for a {np.ndim(tensor)}-d input")
            return tensor  # every worker holds the same value in the probe: the mean is itself

    return OneOfTwoWorkers(), LocalValues


class _EpochIterator:
    """Keras' TensorFlow epoch iterator over `batches`, both ways Keras reads
    it: iterated, (begin, end, batches) (Keras 3.15), and `enumerate_epoch()`,
    (step, batches) (Keras 3.6)."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        yield 0, 0, iter(self.batches)

    def enumerate_epoch(self):
        yield 0, iter(self.batches)


def _fails(probe):
    """Whether `probe()` shows the fault: it raises (the probe's collective
    error, or anything else: Keras' code does not run under multi-worker
    conditions) or returns False."""
    try:
        return not probe()
    except Exception:
        return True


def keras_faults(trainer=None):
    """Names of the Keras functions that fail under a multi-worker strategy:
    "symbolic_build", "reduce_per_replica", both, or neither.

    Args:
        trainer: the module `keras.src.backend.tensorflow.trainer` (default:
            imported); its functions as they are now are probed.
    """
    if trainer is None:
        from keras.src.backend.tensorflow import trainer
    strategy, local = _probe_strategy()
    x, y = np.zeros((2, 3), "float32"), np.zeros((2,), "int64")

    def symbolic_build():
        built = []
        model = types.SimpleNamespace(
            _distribute_strategy=strategy, distribute_strategy=strategy,
            _symbolic_build=lambda data_batch=None: built.append(data_batch),
        )
        trainer.TensorFlowTrainer._maybe_symbolic_build(model, iterator=_EpochIterator([(local(x), local(y))]))
        return len(built) == 1 and all(isinstance(v, np.ndarray) for v in built[0])  # built from one replica's batch

    def reduce_per_replica():
        logs = trainer.reduce_per_replica({"loss": np.float32(0.5)}, strategy, "auto")
        return float(logs["loss"]) == 0.5

    return [name for name, probe in (("symbolic_build", symbolic_build), ("reduce_per_replica", reduce_per_replica))
            if _fails(probe)]


def patch_keras_for_multi_worker():
    """Install the fixes where needed; returns the names of active ones."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return []
    import tensorflow as tf
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    multi_worker = getattr(trainer, "_collective_all_reduce_multi_worker", None)
    if multi_worker is None:
        return []
    build, reduce = trainer.TensorFlowTrainer._maybe_symbolic_build, trainer.reduce_per_replica
    patched = {"symbolic_build": getattr(build, _MARK, False), "reduce_per_replica": getattr(reduce, _MARK, False)}
    faults = set(keras_faults(trainer)) - {name for name, done in patched.items() if done}

    if "symbolic_build" in faults:

        def _maybe_symbolic_build(self, iterator=None, data_batch=None):
            strategy = self._distribute_strategy
            if iterator is not None and data_batch is None and strategy is not None and multi_worker(strategy):
                # The batch Keras peeks at: TensorFlow's epoch iterators yield
                # (step, batches) (Keras 3.6) or (begin, end, batches) (3.15).
                for *_, batches in iterator.enumerate_epoch():
                    data_batch = next(batches)
                    break
                data_batch = tree.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues) else v,
                    data_batch,
                )
                iterator = None
            return build(self, iterator=iterator, data_batch=data_batch)

        setattr(_maybe_symbolic_build, _MARK, True)
        _maybe_symbolic_build.__wrapped__ = build
        trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build
        patched["symbolic_build"] = True

    if "reduce_per_replica" in faults:

        def reduce_per_replica(values, strategy, reduction):
            if reduction in ("auto", "mean") and multi_worker(strategy):
                return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
            return reduce(values, strategy, reduction)

        setattr(reduce_per_replica, _MARK, True)
        reduce_per_replica.__wrapped__ = reduce
        trainer.reduce_per_replica = reduce_per_replica  # looked up at trace time
        patched["reduce_per_replica"] = True
    return [name for name, done in patched.items() if done]
