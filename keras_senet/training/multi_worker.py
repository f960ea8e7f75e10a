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

Both wrappers act only when Keras' own test `_collective_all_reduce_multi_worker`
says the strategy spans several workers; otherwise they call Keras' code
with the same arguments. Each is installed only when the installed source
still contains the faulty call (so a fixed Keras is left alone), and at
most once. They touch private Keras functions: a Keras release that renames
them turns the patch off, and tests/training/test_multi_worker.py fails.
"""

import inspect

_MARK = "_keras_senet_issue_20585"


def _source_contains(function, text):
    try:
        return "".join(text.split()) in "".join(inspect.getsource(function).split())
    except (OSError, TypeError):
        return False


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
    active = []

    build = trainer.TensorFlowTrainer._maybe_symbolic_build
    if getattr(build, _MARK, False):
        active.append("symbolic_build")
    elif _source_contains(build, "distribute_strategy.reduce("):

        def _maybe_symbolic_build(self, iterator=None, data_batch=None):
            strategy = self._distribute_strategy
            if iterator is not None and data_batch is None and strategy is not None and multi_worker(strategy):
                for _, _, batches in iterator:  # the batch Keras would peek at
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
        trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build
        active.append("symbolic_build")

    reduce = trainer.reduce_per_replica
    if getattr(reduce, _MARK, False):
        active.append("reduce_per_replica")
    elif _source_contains(reduce, 'strategy.reduce("MEAN", v, axis=0)'):

        def reduce_per_replica(values, strategy, reduction):
            if reduction in ("auto", "mean") and multi_worker(strategy):
                return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
            return reduce(values, strategy, reduction)

        setattr(reduce_per_replica, _MARK, True)
        trainer.reduce_per_replica = reduce_per_replica  # looked up at trace time
        active.append("reduce_per_replica")
    return active
