"""Where the course keeps data, caches and checkpoints.

Introduced in ``notebooks/00_setup.ipynb``.

Everything lives under one root folder, ``~/.cache/dl-handbook`` by default. Set the
environment variable ``DL_HANDBOOK_HOME`` to move it (a bigger disk, a shared drive, a
Colab-mounted Google Drive). Folders are created the first time they are asked for.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

__all__ = ["HOME_ENV_VAR", "REPO_ROOT", "root", "data_dir", "cache_dir", "checkpoint_dir",
           "scratch_dir", "sha256_file"]

HOME_ENV_VAR = "DL_HANDBOOK_HOME"
# The checkout this package was imported from (a clone's notebooks/ and book/ sit here). In an
# installed wheel (Colab) it is site-packages' parent folder, and holds no notebooks.
REPO_ROOT = Path(__file__).resolve().parent.parent


def root() -> Path:
    """The course root folder: ``$DL_HANDBOOK_HOME``, else ``~/.cache/dl-handbook``."""
    value = os.environ.get(HOME_ENV_VAR, "").strip()
    base = Path(value).expanduser() if value else Path.home() / ".cache" / "dl-handbook"
    base.mkdir(parents=True, exist_ok=True)
    return base


def _sub(kind: str, parts: tuple[str, ...]) -> Path:
    path = root().joinpath(kind, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir(*parts: str) -> Path:
    """Datasets, e.g. ``data_dir("fashion-mnist")``."""
    return _sub("data", parts)


def cache_dir(*parts: str) -> Path:
    """Downloads and other re-creatable files."""
    return _sub("cache", parts)


def checkpoint_dir(*parts: str) -> Path:
    """Training checkpoints, so that a finished run is not trained again."""
    return _sub("checkpoints", parts)


def scratch_dir(chapter: str) -> Path:
    """A chapter's scratch folder (exported files, logs, keys of a demonstration), emptied first.

    It lives under the course root, not in the system's temporary folder: a rerun replaces
    the last run's files instead of adding another copy, and nothing is left in ``/tmp``.
    ``shutil.rmtree(scratch_dir(...))`` at the end of a chapter removes it altogether.
    """
    path = root() / "scratch" / chapter
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file's bytes (hex), read in chunks: what a download, a crawled file or a
    model bundle is checked and named by."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
