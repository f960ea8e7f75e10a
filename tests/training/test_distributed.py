"""tf.distribute training against one device, each run in fresh processes:
MirroredStrategy over two logical CPUs and two MultiWorkerMirroredStrategy
workers on loopback, through `keras_senet.training.train`."""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np

SCRIPTS = os.path.join(os.path.dirname(__file__), "scripts")
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _end(processes):
    for p in processes:
        if p.poll() is None:
            p.kill()
        p.wait()


def _run_workers(runs, tmp_path, timeout=300):
    """Start (command, env) pairs together, wait with a hard deadline, end
    every process; returns (return codes, logs)."""
    logs = [open(tmp_path / f"worker{i}.log", "w") for i in range(len(runs))]
    workers = [subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
               for (command, env), log in zip(runs, logs)]
    try:
        deadline = time.monotonic() + timeout
        for w in workers:
            w.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        _end(workers)
        for f in logs:
            f.close()
    return [w.returncode for w in workers], [(tmp_path / f"worker{i}.log").read_text() for i in range(len(runs))]


# Two replicas against one device: the same gradients up to float summation
# order (all-reduce adds the replicas' partial sums), and synchronized
# BatchNorm computes Var = E[x^2] - E[x]^2 from all-reduced sums where one
# device's tf.nn.moments subtracts the mean first. Measured: 1.2e-7 on the
# weights, 1.8e-7 on the moving statistics after 8 steps.
TOLERANCE = 1e-5


def test_mirrored_two_replicas_match_one_device(tmp_path):
    out = subprocess.run([sys.executable, os.path.join(SCRIPTS, "replicas.py"), str(tmp_path)], env=ENV,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["replicas"] == [1, 2]
    loss = result["history_single"]["loss"]
    assert loss[1] < loss[0], loss  # it trained
    # train(..., sync_batchnorm=True) on two replicas is one-device training.
    synced = result["synced"]
    assert synced["weights"] < TOLERANCE, result
    assert synced["moving_statistics"] < TOLERANCE, result
    assert max(synced["metrics"].values()) < TOLERANCE, result
    assert result["spread_sync_batchnorm"] < TOLERANCE, result
    # Without it each replica normalizes with its half of the batch: the same
    # comparison is far outside the tolerance (measured 1.2e-2).
    unsynced = result["unsynced"]
    assert unsynced["weights"] > 10 * TOLERANCE, result
    assert unsynced["moving_statistics"] > 10 * TOLERANCE, result
    # Plain model.fit lets the replicas' BatchNorm moving statistics drift
    # apart; SyncReplicaStatistics makes them one again.
    assert result["bn_spread_unsynced"] > 1e-3, result
    assert result["bn_spread_synced"] == 0.0, result


def test_two_workers_on_loopback_match_one_process(tmp_path):
    """Two MultiWorkerMirroredStrategy workers with sync_batchnorm against
    one process with the default strategy, same global batches: equal within
    TOLERANCE, and the workers read disjoint halves of each global batch."""
    ports = _free_ports(2)
    script = os.path.join(SCRIPTS, "mwms_worker.py")
    runs = [([sys.executable, script, str(i), *map(str, ports), str(tmp_path)], ENV) for i in range(2)]
    runs.append(([sys.executable, script, "single", str(tmp_path)], ENV))
    codes, logs = _run_workers(runs, tmp_path)
    assert codes == [0, 0, 0], "\n".join(log[-3000:] for log in logs)
    single, *workers = (np.load(tmp_path / f"weights{i}.npz") for i in ("single", 0, 1))
    reports = [json.loads((tmp_path / f"history{i}.json").read_text()) for i in ("single", 0, 1)]
    assert [r["replicas"] for r in reports] == [1, 2, 2]
    assert len(single.files) > 0
    for weights in workers:
        assert weights.files == single.files
        for key in single.files:  # trainable weights and BN statistics alike
            np.testing.assert_allclose(weights[key], single[key], rtol=0, atol=TOLERANCE, err_msg=key)
    for report in reports[1:]:
        for metric, values in reports[0]["history"].items():
            np.testing.assert_allclose(report["history"][metric], values, rtol=0, atol=TOLERANCE, err_msg=metric)
    # Each worker reads its own shard: disjoint, together the global batch
    # (examples 64k .. 64k+63 at step k of the plain, unshuffled data).
    first, second = (r["examples"] for r in reports[1:])
    for step, (a, b) in enumerate(zip(first, second)):
        assert len(a) == len(b) == 32 and not set(a) & set(b), (step, a, b)
        assert sorted(a + b) == list(range(64 * step, 64 * step + 64)), (step, a, b)
    assert (tmp_path / "run" / "history.csv").exists()  # the chief's files
    assert (tmp_path / "run" / "workers" / "worker_1").is_dir()  # the other's backups


def test_train_command_runs_two_workers(tmp_path):
    """`keras-senet train` itself under TF_CONFIG: both workers finish, the
    chief writes the model."""
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    command = [
        sys.executable, "-m", "keras_senet.cli", "train", "--model", "SEResNetCIFAR", "--depth", "8",
        "--dataset", "fashion_mnist", "--image-size", "16", "--limit", "512", "--val-limit", "128",
        "--per-replica-batch", "32", "--epochs", "1", "--seed", "0", "--verbose", "0",
        "--output", str(tmp_path / "run"),
    ]
    runs = [(command, dict(ENV, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})))
            for i in range(2)]
    codes, texts = _run_workers(runs, tmp_path)
    assert codes == [0, 0], texts[0][-3000:] + texts[1][-3000:]
    for text in texts:
        assert "2 replica(s) (MultiWorkerMirroredStrategy)" in text and "global batch 64" in text
    assert (tmp_path / "run" / "model.keras").exists()
    assert not (tmp_path / "run" / "workers" / "worker_1" / "model.keras").exists()
