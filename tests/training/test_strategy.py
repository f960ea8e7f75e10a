import json
import os

import pytest
import tensorflow as tf

from keras_senet.training import get_strategy, is_chief
from keras_senet.training.multi_worker import keras_faults, patch_keras_for_multi_worker


def test_auto_is_the_default_strategy_on_one_device(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert get_strategy("auto") is tf.distribute.get_strategy()
    assert get_strategy("default").num_replicas_in_sync == 1


def test_strategy_errors(monkeypatch):
    with pytest.raises(ValueError, match="strategy"):
        get_strategy("horovod")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        get_strategy("multi_worker")


@pytest.mark.parametrize("config, chief", [
    (None, True),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}, True),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}, False),
    ({"cluster": {"chief": ["a:1"], "worker": ["b:2"]}, "task": {"type": "worker", "index": 0}}, False),
    ({"cluster": {"chief": ["a:1"], "worker": ["b:2"]}, "task": {"type": "chief", "index": 0}}, True),
])
def test_is_chief(monkeypatch, config, chief):
    if config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    assert is_chief() is chief


# Stand-ins for Keras' two private functions (keras-team/keras#20585), faulty
# as in Keras 3.6 to 3.15.1 or fixed, with the same signatures.
def _build_from(batch_for_build, keras_3_6=False):
    """`_maybe_symbolic_build` building from `batch_for_build(strategy, batch)`,
    reading the epoch iterator as Keras 3.15 does, or as Keras 3.6 did."""

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None:
            for *_, batches in (iterator.enumerate_epoch() if keras_3_6 else iterator):
                data_batch = batch_for_build(self.distribute_strategy, next(batches))
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    return _maybe_symbolic_build


_build_reducing_the_batch = _build_from(lambda s, batch: s.reduce("MEAN", batch, axis=None))  # 3.15.1's fault
_build_reducing_the_batch_3_6 = _build_from(lambda s, batch: s.reduce("MEAN", batch, axis=None), keras_3_6=True)
_build_from_one_replica = _build_from(lambda s, batch: tuple(s.experimental_local_results(v)[0] for v in batch))
# fixed, though it still calls strategy.reduce with the batch's parts (a source-text check would flag it)
_build_reducing_each_part = _build_from(lambda s, batch: tuple(s.reduce("MEAN", v, axis=None) for v in batch))


def _reduce_over_axis_0(values, strategy, reduction):  # 3.15.1's fault, in other words
    return {key: strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=0) for key, value in values.items()}


def _reduce_over_replicas(values, strategy, reduction):  # fixed
    return {key: strategy.reduce("MEAN", value, axis=None) for key, value in values.items()}


@pytest.mark.parametrize("build, reduce, faults", [
    (_build_reducing_the_batch, _reduce_over_axis_0, ["symbolic_build", "reduce_per_replica"]),
    (_build_reducing_the_batch_3_6, _reduce_over_replicas, ["symbolic_build"]),
    (_build_from_one_replica, _reduce_over_axis_0, ["reduce_per_replica"]),
    (_build_reducing_each_part, _reduce_over_replicas, []),
], ids=["both faulty", "build faulty as in 3.6", "build fixed", "both fixed"])
def test_multi_worker_fixes_follow_what_keras_does(monkeypatch, build, reduce, faults):
    """The fixes go where the Keras functions fail under a multi-worker
    strategy, whatever their source says, and only there; installed, they
    pass the same probe; a second call changes nothing."""
    from keras.src.backend.tensorflow import trainer

    monkeypatch.setattr(trainer.TensorFlowTrainer, "_maybe_symbolic_build", build)
    monkeypatch.setattr(trainer, "reduce_per_replica", reduce)
    assert keras_faults() == faults
    assert patch_keras_for_multi_worker() == faults
    assert (trainer.TensorFlowTrainer._maybe_symbolic_build is build) == ("symbolic_build" not in faults)
    assert (trainer.reduce_per_replica is reduce) == ("reduce_per_replica" not in faults)
    assert keras_faults() == []
    patched = trainer.TensorFlowTrainer._maybe_symbolic_build, trainer.reduce_per_replica
    assert patch_keras_for_multi_worker() == faults
    assert (trainer.TensorFlowTrainer._maybe_symbolic_build, trainer.reduce_per_replica) == patched


def test_multi_worker_fixes_on_the_installed_keras(monkeypatch):
    """Whatever this Keras is: the fixes cover exactly what fails, and leave
    nothing failing. Where its source still holds the calls that Keras 3.15.1
    fails on (keras-team/keras#20585), the probe must find them."""
    import inspect

    from keras.src.backend.tensorflow import trainer

    build = inspect.unwrap(trainer.TensorFlowTrainer._maybe_symbolic_build)  # as Keras has it
    reduce = inspect.unwrap(trainer.reduce_per_replica)
    monkeypatch.setattr(trainer.TensorFlowTrainer, "_maybe_symbolic_build", build)
    monkeypatch.setattr(trainer, "reduce_per_replica", reduce)
    faults = keras_faults()
    assert patch_keras_for_multi_worker() == faults and keras_faults() == []
    text = {name: "".join(inspect.getsource(f).split()) for name, f in
            (("symbolic_build", build), ("reduce_per_replica", reduce))}
    if "distribute_strategy.reduce(\"MEAN\",maybe_distributed_data_batch," in text["symbolic_build"]:
        assert "symbolic_build" in faults
    if 'strategy.reduce("MEAN",v,axis=0)' in text["reduce_per_replica"]:
        assert "reduce_per_replica" in faults


def test_multi_worker_probe_runs_no_tensorflow_op():
    """MultiWorkerMirroredStrategy must configure its collectives before
    TensorFlow's first op, and the fixes are installed just before it is made:
    a one-worker cluster still starts after them (and would not after an op)."""
    import socket
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = (
        "import sys, tensorflow as tf\n"
        "from keras_senet.training.multi_worker import patch_keras_for_multi_worker\n"
        "print(patch_keras_for_multi_worker())\n"
        "if sys.argv[1] == 'op':\n"
        "    tf.constant(1.0) + 1\n"
        "tf.distribute.MultiWorkerMirroredStrategy()\n"
        "print('created')\n"
    )
    runs = {}
    for case in ("no op", "op"):  # at once, each its own one-worker cluster
        with socket.socket() as s:
            s.bind(("localhost", 0))
            port = s.getsockname()[1]
        config = {"cluster": {"worker": [f"localhost:{port}"]}, "task": {"type": "worker", "index": 0}}
        env = {**os.environ, "TF_CONFIG": json.dumps(config),
               "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
        runs[case] = subprocess.Popen([sys.executable, "-c", code, case], cwd=root, env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    (out, err), (_, op_err) = (runs[case].communicate(timeout=300) for case in ("no op", "op"))
    assert runs["no op"].returncode == 0 and out.split()[-1] == "created", err[-3000:]
    assert "Collective ops must be configured at program startup" in op_err  # the check can fail
