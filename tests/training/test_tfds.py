"""tfds datasets through the real `download_and_prepare` path, offline.

tf_flowers is served from a small archive in the real one's layout
(`flower_photos/<class>/*.jpg` plus `LICENSE.txt`) by an HTTP server on
127.0.0.1; the builder's URL constant and its registered checksum (tfds checks
size and sha256 of every download) point at it for the test's duration.
"""

import hashlib
import http.server
import io
import os
import socket
import tarfile
import threading

import numpy as np
import pytest
from PIL import Image

from keras_senet import cli
from keras_senet.training import data
from keras_senet.training.data import DatasetUnavailableError, load_source

# tf_flowers' classes in its label order (tfds catalog), and its archive's folders.
FLOWERS = ("dandelion", "daisy", "tulips", "sunflowers", "roses")
PER_CLASS = 4


def _flowers_archive():
    """(tar.gz bytes, {class: [decoded (H, W, 3) uint8 image, ...]}) for a
    tf_flowers archive of PER_CLASS small JPEGs per class."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images, buffer = {}, io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        def add(path, content):
            member = tarfile.TarInfo(path)
            member.size = len(content)
            tar.addfile(member, io.BytesIO(content))

        add("flower_photos/LICENSE.txt", b"All images in this archive are licensed under CC-BY.\n")
        for index, name in enumerate(FLOWERS):
            for i in range(PER_CLASS):
                # smooth colour fields plus noise: a JPEG that tells classes and images apart
                size = (24 + 4 * i, 40 - 2 * index)
                base = rng.integers(0, 256, (1, 1, 3))
                pixels = np.clip(base + rng.normal(0, 40, (*size, 3)), 0, 255).astype("uint8")
                jpeg = io.BytesIO()
                Image.fromarray(pixels).save(jpeg, format="JPEG", quality=90)
                add(f"flower_photos/{name}/{1000 * index + i}_photo.jpg", jpeg.getvalue())
                # TF's JPEG decoder, as tfds keeps the file's bytes and decodes them with it (its
                # default IDCT differs from PIL's by up to 4 levels)
                images.setdefault(name, []).append(tf.io.decode_jpeg(jpeg.getvalue(), channels=3).numpy())
    return buffer.getvalue(), images


class _Server:
    """Serves `files` ({url path: bytes}) on 127.0.0.1 until closed, at most
    `seconds`; `truncate` sends half of each file under its full
    Content-Length, then drops the connection."""

    def __init__(self, files, truncate=False, seconds=120):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                data = files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2] if truncate else data)
                if truncate:
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.timer = threading.Timer(seconds, self.httpd.shutdown)
        self.timer.daemon = True
        self.timer.start()

    def close(self):
        self.timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()


def _dead_url():
    """An http URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/flower_photos.tgz"


def _point_tf_flowers_at(monkeypatch, url, archive):
    """Make tfds' tf_flowers builder download `url` (None: its own URL),
    registered with `archive`'s size and sha256 (as its checksums.tsv
    registers the real archive). Returns the URL."""
    import sys

    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.download.checksums import UrlInfo
    from tensorflow_datasets.core.utils import Size

    builder_cls = tfds.builder_cls("tf_flowers")
    module = sys.modules[builder_cls.__module__]
    assert list(builder_cls.url_infos) == [module._URL]  # one archive, the one patched here
    url = url or module._URL
    monkeypatch.setattr(module, "_URL", url)
    info = UrlInfo(size=Size(len(archive)), checksum=hashlib.sha256(archive).hexdigest(), filename="flower_photos.tgz")
    monkeypatch.setattr(builder_cls, "url_infos", {url: info})
    return url


def _no_network(monkeypatch):
    """Make every socket connect and name lookup fail; returns the list of attempts."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return calls


def _listing(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, dirs, files in os.walk(root) for f in dirs + files)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """tf_flowers prepared from the local archive by `keras-senet train`:
    (data dir, run dir, {class: [image, ...]} put in the archive)."""
    archive, images = _flowers_archive()
    data_dir, run = tmp_path_factory.mktemp("tfds"), tmp_path_factory.mktemp("run") / "run"
    server = _Server({"/flower_photos.tgz": archive})
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            _point_tf_flowers_at(monkeypatch, server.url + "/flower_photos.tgz", archive)
            code = cli.main([
                "train", "--model", "SEResNetCIFAR", "--depth", "8", "--dataset", "tf_flowers",
                "--data-dir", str(data_dir), "--val-split", "train[80%:]", "--image-size", "32",
                "--epochs", "1", "--batch-size", "8", "--output", str(run), "--seed", "0",
            ])
    finally:
        server.close()
    assert code == 0
    return data_dir, run, images


def test_train_prepares_tf_flowers_from_its_archive(prepared):
    import keras

    data_dir, run, images = prepared
    source, info = load_source("tf_flowers", "train", str(data_dir))
    assert info.class_names == FLOWERS and info.num_examples == len(FLOWERS) * PER_CLASS and info.channels == 3
    loaded = {}
    for image, label in source.as_numpy_iterator():
        loaded.setdefault(FLOWERS[label], []).append(image)

    def key(image):
        return image.shape, image.tobytes()

    for name in FLOWERS:  # the same decoded pixels per class, whatever the order
        assert sorted(map(key, loaded[name])) == sorted(map(key, images[name])), name
    model = keras.saving.load_model(run / "model.keras")
    assert model.output_shape == (None, len(FLOWERS))


def test_prepared_dataset_loads_without_network(prepared, monkeypatch):
    data_dir, _, _ = prepared
    calls = _no_network(monkeypatch)
    source, info = load_source("tf_flowers", "train[:50%]", str(data_dir))
    assert info.num_examples == len(FLOWERS) * PER_CLASS // 2
    assert len(list(source.as_numpy_iterator())) == info.num_examples
    assert calls == []


def test_offline_fails_at_once_naming_local_data_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    archive, _ = _flowers_archive()
    url = _dead_url()
    _point_tf_flowers_at(monkeypatch, url, archive)
    empty = tmp_path / "tfds"
    empty.mkdir()
    with pytest.raises(DatasetUnavailableError) as raised:
        load_source("tf_flowers", "train", data_dir=str(empty))
    message = str(raised.value)
    assert "'tf_flowers' is not prepared in " + str(empty) in message
    assert "no download host answers: 127.0.0.1:" in message
    assert "--dataset FOLDER" in message and "--data-dir" in message
    assert f"flower_photos.tgz (from {url})" in message
    assert f"manual download dir {empty / 'downloads' / 'manual'}" in message
    assert _listing(empty) == []
    # the CLI shows it as one line and exits 2
    code = cli.main(["train", "--model", "SEResNetCIFAR", "--dataset", "tf_flowers", "--data-dir", str(empty),
                     "--output", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("keras-senet train: tfds dataset 'tf_flowers' is not prepared")
    assert _listing(empty) == [] and not (tmp_path / "run").exists()


def test_a_failed_download_removes_what_it_made_and_only_that(tmp_path, monkeypatch):
    archive, _ = _flowers_archive()
    server = _Server({"/flower_photos.tgz": archive}, truncate=True)
    data_dir = tmp_path / "tfds"
    before = ["downloads/other/file.bin", "other_dataset/1.0.0/dataset_info.json"]
    for path in before:
        (data_dir / path).parent.mkdir(parents=True, exist_ok=True)
        (data_dir / path).write_text("kept")
    made = []  # what the data dir holds when the failed call cleans up

    def remove_new(root, before):
        made.extend(_listing(root))
        remove(root, before)

    remove = data._remove_new
    monkeypatch.setattr(data, "_remove_new", remove_new)
    try:
        _point_tf_flowers_at(monkeypatch, server.url + "/flower_photos.tgz", archive)
        with pytest.raises(DatasetUnavailableError, match="'tf_flowers' is not prepared .* its download failed"):
            load_source("tf_flowers", "train", data_dir=str(data_dir))
    finally:
        server.close()
    assert "tf_flowers" in made and any(p.startswith("downloads/tf_flowers/") and ".tmp." in p for p in made), made
    folders = ["downloads", "downloads/other", "other_dataset", "other_dataset/1.0.0"]
    assert _listing(data_dir) == sorted(folders + before)
    assert all((data_dir / path).read_text() == "kept" for path in before)


def test_the_manual_download_dir_the_error_names_prepares_offline(tmp_path, monkeypatch):
    archive, images = _flowers_archive()
    _point_tf_flowers_at(monkeypatch, None, archive)  # tf_flowers' own URL, unreachable here
    data_dir = tmp_path / "tfds"
    (data_dir / "downloads" / "manual").mkdir(parents=True)
    (data_dir / "downloads" / "manual" / "flower_photos.tgz").write_bytes(archive)
    calls = _no_network(monkeypatch)
    source, info = load_source("tf_flowers", "train", str(data_dir))
    assert calls == [] and info.class_names == FLOWERS
    labels = [int(label) for _, label in source.as_numpy_iterator()]
    assert sorted(labels) == sorted(FLOWERS.index(name) for name in images for _ in images[name])


def test_a_train_only_dataset_asks_for_a_validation_slice(prepared, tmp_path, capsys):
    data_dir, _, _ = prepared
    code = cli.main(["train", "--model", "SEResNetCIFAR", "--dataset", "tf_flowers", "--data-dir", str(data_dir),
                     "--output", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and "'tf_flowers' has no 'validation' or 'test' split (its splits: train)" in err
    assert "--val-split 'train[85%:]'" in err and not (tmp_path / "run").exists()
