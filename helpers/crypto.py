"""Encryption at rest: checkpoints and datasets sealed with Fernet (authenticated encryption).

Taught in ``notebooks/11b_pii_encryption.ipynb``.

Fernet (from ``cryptography``) is AES-128-CBC plus an HMAC-SHA256 over the whole token: a
changed byte or a wrong key fails the HMAC check, so :func:`load_checkpoint` raises
:class:`DecryptionError` instead of returning garbage weights. The key comes from an
environment variable (``DL_HANDBOOK_KEY`` by default) or a key file outside any git checkout;
it is never written to a repository, and these functions never print it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd
import torch

__all__ = ["KEY_ENV", "DecryptionError", "KeyMissingError", "new_key_file", "load_key",
           "encrypt_bytes", "decrypt_bytes", "save_checkpoint", "load_checkpoint",
           "save_frame", "load_frame"]

KEY_ENV = "DL_HANDBOOK_KEY"


class DecryptionError(ValueError):
    """The file was changed after it was sealed, or the key is not the one that sealed it."""


class KeyMissingError(KeyError):
    """No key in the environment variable and no key file."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def _inside_git_checkout(path: Path) -> Path | None:
    for parent in [path.resolve().parent, *path.resolve().parents]:
        if (parent / ".git").exists():
            return parent
    return None


def new_key_file(path: str | Path) -> Path:
    """Write a fresh Fernet key to ``path`` (mode 0600), refusing a path inside a git checkout
    (where it could be committed) or an existing file (which would lose the old key)."""
    from cryptography.fernet import Fernet

    path = Path(path)
    repo = _inside_git_checkout(path)
    if repo is not None:
        raise ValueError(f"{path} is inside the git checkout {repo}: keep keys outside any "
                         "repository (e.g. ~/.config/dl-handbook/key)")
    if path.exists():
        raise FileExistsError(f"{path} exists: refusing to overwrite a key (data sealed with "
                              "it could no longer be opened)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(Fernet.generate_key())
    return path


def load_key(path: str | Path | None = None, env: str = KEY_ENV) -> bytes:
    """The key from the environment variable ``env`` or, if that is unset, from ``path``."""
    value = os.environ.get(env)
    if value:
        return value.strip().encode()
    if path is not None and Path(path).is_file():
        return Path(path).read_bytes().strip()
    raise KeyMissingError(f"no key: set the environment variable {env} or pass a key file "
                          f"(none at {path}); create one with helpers.crypto.new_key_file(path) "
                          "outside the repository")


def _fernet(key: bytes):  # noqa: ANN202
    from cryptography.fernet import Fernet

    try:
        return Fernet(key)
    except (ValueError, TypeError) as err:
        raise ValueError("not a Fernet key (32 url-safe base64-encoded bytes); make one with "
                         "helpers.crypto.new_key_file") from err


def encrypt_bytes(data: bytes, key: bytes) -> bytes:
    """A Fernet token for ``data`` (timestamped, encrypted, authenticated)."""
    return _fernet(key).encrypt(data)


def decrypt_bytes(token: bytes, key: bytes) -> bytes:
    """``data`` back, or :class:`DecryptionError` when the token was altered or the key is wrong."""
    from cryptography.fernet import InvalidToken

    try:
        return _fernet(key).decrypt(token)
    except InvalidToken as err:
        raise DecryptionError("the file failed its integrity check: it was modified after "
                              "encryption, or this is not the key that encrypted it") from err


def save_checkpoint(state_dict: dict[str, torch.Tensor], path: str | Path, key: bytes) -> Path:
    """A ``state_dict`` as safetensors bytes, sealed with ``key`` (no pickle anywhere)."""
    from safetensors.torch import save

    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    path.write_bytes(encrypt_bytes(save(tensors), key))
    return path


def load_checkpoint(path: str | Path, key: bytes) -> dict[str, torch.Tensor]:
    """The ``state_dict`` sealed by :func:`save_checkpoint`; :class:`DecryptionError` if the file
    was tampered with or the key is wrong."""
    from safetensors.torch import load

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no encrypted checkpoint at {path}")
    return load(decrypt_bytes(path.read_bytes(), key))


def save_frame(df: pd.DataFrame, path: str | Path, key: bytes) -> Path:
    """A table as CSV bytes, sealed with ``key``."""
    path = Path(path)
    path.write_bytes(encrypt_bytes(df.to_csv(index=False).encode(), key))
    return path


def load_frame(path: str | Path, key: bytes) -> pd.DataFrame:
    """The table sealed by :func:`save_frame`."""
    return pd.read_csv(io.BytesIO(decrypt_bytes(Path(path).read_bytes(), key)))
