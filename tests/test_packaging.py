"""The package as users get it: an sdist and a wheel built from the repository,
installed outside it.

The file lists are checked against git's list of the package's files (what a
clone has), not against what setuptools chose to include; the wheel is built
from the unpacked sdist, as `python -m build` does, so a file the sdist leaves
out is missing from the wheel too. Builds call setuptools' PEP 517 backend in
this venv (offline, no build isolation) on a copy of the tree, so nothing is
written into the checkout that other tests read.
"""

import email
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKEND = "from setuptools import build_meta; print(build_meta.{}({!r}))"


def _repository_files():
    """Files a commit of the working tree would hold (tracked and new, minus ignored)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    return sorted(f for f in out.split("\0") if f and os.path.isfile(os.path.join(ROOT, f)))


def _build(hook, source, dist):
    """Runs setuptools' `hook` (build_sdist / build_wheel) in `source`; returns the file it made."""
    result = subprocess.run([sys.executable, "-c", BACKEND.format(hook, str(dist))], cwd=source,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return dist / result.stdout.split()[-1]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(sdist, wheel, package files) built from a copy of the repository."""
    tmp = tmp_path_factory.mktemp("packaging")
    files = _repository_files()
    for name in files:
        os.makedirs(tmp / "src" / os.path.dirname(name), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, name), tmp / "src" / name)
    sdist = _build("build_sdist", tmp / "src", tmp / "dist")
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp / "unpacked", filter="data")
    (unpacked,) = (tmp / "unpacked").iterdir()
    wheel = _build("build_wheel", unpacked, tmp / "dist")
    package = [f for f in files if f.startswith("keras_senet/")]
    return sdist, wheel, package


def test_sdist_and_wheel_hold_the_package_and_its_data(built):
    sdist, wheel, package = built
    data = [f for f in package if not f.endswith(".py")]
    for labels in ("imagenet_class_index.json", "imagenet12k_classes.txt", "imagenet21k_miil_classes.txt"):
        assert "keras_senet/models/" + labels in data  # read by decode_predictions / top_k

    with tarfile.open(sdist) as tar:
        in_sdist = {name.partition("/")[2] for name in tar.getnames()}
    assert set(package) | {"pyproject.toml", "README.md"} <= in_sdist, \
        sorted(set(package) - in_sdist)

    with zipfile.ZipFile(wheel) as whl:
        in_wheel = set(whl.namelist())
        dist_info = next(n.partition("/")[0] for n in in_wheel if n.endswith(".dist-info/METADATA"))
        entry_points = whl.read(f"{dist_info}/entry_points.txt").decode()
    assert set(package) <= in_wheel, sorted(set(package) - in_wheel)
    # Nothing but the package and its metadata (no tests/, examples/ or a stray top-level module).
    assert {n.partition("/")[0] for n in in_wheel} == {"keras_senet", dist_info}
    assert "keras-senet = keras_senet.cli:main" in entry_points


def _wheel_metadata(wheel):
    with zipfile.ZipFile(wheel) as whl:
        name = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(whl.read(name))


def test_every_extra_is_satisfied_by_what_ci_installs(built):
    """Each requirement of the core and of every extra names a distribution
    installed here (CI installs `.[test]`) at a version its range admits, the
    Keras and TensorFlow ranges have upper bounds, and `test` pulls in every
    other extra. This proves the extras and ranges fit the tested set; it does
    not resolve them against PyPI (offline)."""
    meta = _wheel_metadata(built[1])
    extras = meta.get_all("Provides-Extra")
    requirements = [Requirement(r) for r in meta.get_all("Requires-Dist")]
    assert {"export", "convert", "jax", "torch", "plot", "notebook", "test"} <= set(extras)

    checked = set()
    for extra in [None, *extras]:
        environment = {"extra": extra or ""}
        wanted = [r for r in requirements if (r.marker is None) == (extra is None)
                  and (r.marker is None or r.marker.evaluate(environment))]
        assert wanted, f"extra {extra!r} adds nothing"
        for r in wanted:
            if canonicalize_name(r.name) == "keras-senet":  # test = the other extras
                assert r.extras == set(extras) - {"test"}, f"{extra}: {r}"
                continue
            try:
                version = metadata.version(r.name)
            except metadata.PackageNotFoundError:
                pytest.fail(f"extra {extra!r}: {r.name} is not installed in the test venv")
            assert r.specifier.contains(version, prereleases=True), f"extra {extra!r}: {r} but {version} installed"
            checked.add(canonicalize_name(r.name))
    for name in ("keras", "tensorflow"):
        (spec,) = [r.specifier for r in requirements if canonicalize_name(r.name) == name]
        assert {s.operator for s in spec} == {">=", "<"}, f"{name}{spec}: a tested lower and upper bound"
    assert {"keras", "tensorflow", "ai-edge-litert", "matplotlib", "torch", "timm", "jax"} <= checked


def test_wheel_installs_and_runs_outside_the_repository(built, tmp_path):
    """The wheel, installed with --no-deps into a new venv that borrows this
    venv's packages (a .pth line: no downloads, and no .pth hooks of this venv,
    so the editable checkout is not importable), imports from its own
    site-packages, builds a model, reads its class index and runs the CLI."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          check=True, capture_output=True, text=True).stdout.strip()
    with open(os.path.join(site, "borrowed.pth"), "w") as f:
        f.write(sysconfig.get_path("purelib") + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    "--disable-pip-version-check", "-q", str(built[1])], check=True)

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    code = (
        "import importlib.metadata, numpy as np, keras_senet\n"
        "from keras_senet.models import se_resnet\n"
        "model = keras_senet.SEResNet18(weights=None)\n"
        "onehot = np.eye(1000, dtype='float32')[[0, 999]]\n"
        "print(keras_senet.__file__, importlib.metadata.version('keras-senet'), keras_senet.__version__,"
        " model.output_shape, se_resnet.decode_predictions(onehot, top=1))\n"
    )
    result = subprocess.run([python, "-c", code], cwd=outside, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    where, installed, version, *rest = result.stdout.split(" ", 3)
    assert where.startswith(site + os.sep), where  # not /work/main/keras_senet
    assert installed == version  # metadata and __version__: one source
    # ILSVRC-2012's first and last classes (the synsets in sorted order)
    assert "(None, 1000)" in rest[0] and "'n01440764', 'tench'" in rest[0] and "'n15075141', 'toilet_tissue'" in rest[0]

    cli = subprocess.run([venv / "bin" / "keras-senet", "--help"], cwd=outside, env=env, capture_output=True,
                         text=True)
    assert cli.returncode == 0, cli.stderr
    assert {"predict", "train", "export", "convert"} <= set(cli.stdout.split("{")[1].split("}")[0].split(","))
