"""Data cleaning that accounts for every record it removes or changes.

Introduced in ``notebooks/02_data_cleaning.ipynb``.

Each detector returns a boolean mask (or per-record reasons) and never edits data itself;
the caller decides, and writes the decision to a ``CleaningLog``. So the before/after row
counts always reconcile with the log, and each detector can be scored against known errors.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .data import DataFormatError

__all__ = [
    "CleaningLog",
    "content_hash",
    "exact_duplicates",
    "phash",
    "near_duplicates",
    "normalize_text",
    "text_problems",
    "repair_mojibake",
    "read_image_file",
    "read_labelled_csv",
    "out_of_fold_probs",
    "find_label_issues",
    "flip_labels",
    "flip_and_detect",
    "imbalance_report",
    "cross_split_matches",
    "stratified_split",
    "detector_scores",
    "token_augment",
]


class CleaningLog:
    """One row per record removed or changed: its id, the action, the reason, a detail."""

    def __init__(self) -> None:
        self._rows: list[dict[str, object]] = []

    def add(self, ids: Sequence[object], action: str, reason: str, detail: str = "") -> None:
        """Record ``action`` (``"removed"`` or ``"changed"``) for each id, with the reason."""
        if action not in ("removed", "changed"):
            raise ValueError(f"action must be 'removed' or 'changed', got {action!r}")
        self._rows += [{"id": i, "action": action, "reason": reason, "detail": detail}
                       for i in ids]

    def frame(self) -> pd.DataFrame:
        """The whole log as a table."""
        return pd.DataFrame(self._rows, columns=["id", "action", "reason", "detail"])

    def summary(self) -> pd.DataFrame:
        """Counts per action and reason."""
        f = self.frame()
        return f.groupby(["action", "reason"]).size().rename("records").reset_index()

    def removed_ids(self) -> set[object]:
        """Ids of every removed record."""
        return {r["id"] for r in self._rows if r["action"] == "removed"}


def content_hash(item: bytes | str | np.ndarray) -> str:
    """sha256 of the bytes (arrays: of their raw buffer, with shape and dtype)."""
    if isinstance(item, np.ndarray):
        data = f"{item.shape}{item.dtype}".encode() + np.ascontiguousarray(item).tobytes()
    elif isinstance(item, str):
        data = item.encode("utf-8")
    else:
        data = item
    return hashlib.sha256(data).hexdigest()


def exact_duplicates(keys: Sequence[str]) -> np.ndarray:
    """True for every record whose key was seen before (the first copy is kept)."""
    return pd.Series(list(keys)).duplicated(keep="first").to_numpy()


def phash(image: np.ndarray, hash_size: int = 8) -> np.ndarray:
    """Perceptual hash: the signs of an image's lowest DCT frequencies around their median.

    Shrinks the image to ``4 * hash_size`` pixels a side, takes the 2-D DCT, keeps the
    ``hash_size x hash_size`` lowest frequencies (less the constant term) and returns one
    bit each: above the median or not. Brightness, contrast and pixel noise barely move it.
    """
    from PIL import Image
    from scipy.fft import dctn

    side = 4 * hash_size
    img = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("L")
    pixels = np.asarray(img.resize((side, side), Image.Resampling.BILINEAR), dtype=np.float64)
    coeffs = dctn(pixels, norm="ortho")[:hash_size, :hash_size].ravel()[1:]
    return coeffs > np.median(coeffs)


def near_duplicates(images: np.ndarray, max_bits: int = 6, min_correlation: float = 0.98,
                    chunk: int = 512) -> np.ndarray:
    """For each image, the index of an EARLIER image it nearly duplicates, else -1.

    Two stages: perceptual hashes within ``max_bits`` of each other propose candidate
    pairs (cheap, but similar-looking distinct items also match), then the pixel
    correlation of the full images must reach ``min_correlation`` to confirm.
    """
    images = np.asarray(images)
    n = len(images)
    packed = np.packbits(np.stack([phash(im) for im in images]), axis=1)
    flat = images.reshape(n, -1).astype(np.float64)
    flat -= flat.mean(axis=1, keepdims=True)
    flat /= np.linalg.norm(flat, axis=1, keepdims=True) + 1e-12
    match = np.full(n, -1, dtype=np.int64)
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))
        bits = np.bitwise_count(packed[rows, None, :] ^ packed[None, :, :]).sum(-1)
        candidate = (bits <= max_bits) & (np.arange(n)[None, :] < rows[:, None])
        for r, cols in zip(rows, candidate, strict=True):
            cols = np.flatnonzero(cols)
            if len(cols):
                corr = flat[cols] @ flat[r]
                if corr.max() >= min_correlation:
                    match[r] = cols[np.argmax(corr)]
    return match


_MOJIBAKE = re.compile("\ufffd|â€|Ã[\x80-\xbf]|Â[\x80-\xbf\xa0]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def normalize_text(text: str) -> str:
    """Lower-case, NFKC, no punctuation, single spaces: the key for near-duplicate texts."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


def repair_mojibake(text: str) -> str | None:
    """Undo UTF-8 read as cp1252 (``Itâ€™s`` -> ``It's``); ``None`` if it cannot be undone."""
    try:
        fixed = text.encode("cp1252").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None
    return None if _MOJIBAKE.search(fixed) else fixed


def text_problems(texts: Sequence[object], max_chars: int) -> pd.Series:
    """Per text, the first problem found ('' if none): empty, too long, or encoding junk.

    ``None`` and NaN (what pandas reads from an empty CSV cell) count as empty; any other
    non-string value is checked as its ``str``.
    """
    reasons = []
    for t in texts:
        if t is None or (isinstance(t, float) and t != t):  # None, or NaN
            reasons.append("empty")
            continue
        t = str(t)
        if not t.strip():
            reasons.append("empty")
        elif len(t) > max_chars:
            reasons.append(f"longer than {max_chars} characters")
        elif _MOJIBAKE.search(t) or _CONTROL.search(t):
            reasons.append("encoding junk")
        else:
            reasons.append("")
    return pd.Series(reasons, dtype=object)


def read_image_file(path: Path, shape: tuple[int, int], mode: str = "L") -> tuple[np.ndarray, str]:
    """Read one image and check its size; returns ``(array, note)``.

    A readable image in another mode is converted to ``mode`` (``note`` says so). Raises
    ``DataFormatError`` for a missing file, a file that is not an image or is truncated, an
    image too large to decode safely (Pillow's decompression-bomb guard), or the wrong size.
    """
    from PIL import Image, UnidentifiedImageError

    name = Path(path).name
    if not Path(path).is_file():
        raise DataFormatError(f"{name}: missing (no such file: {Path(path).parent.name}/{name})")
    try:
        with Image.open(path) as img:
            img.load()  # decode fully: catches truncated files that .open() accepts
            note = "" if img.mode == mode else f"converted {img.mode} to {mode}"
            arr = np.asarray(img.convert(mode))
    except Image.DecompressionBombError as err:
        raise DataFormatError(f"{name}: too large to decode safely, a possible decompression "
                              f"bomb ({err})") from err
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise DataFormatError(f"{name}: unreadable image ({err})") from err
    if arr.shape[:2] != tuple(shape):
        raise DataFormatError(f"{Path(path).name}: size {arr.shape[:2]}, expected {tuple(shape)}")
    return arr, note


def _bad_labels(labels: pd.Series, classes: Sequence[object] | None) -> list[str]:
    """'line N: value' for each label that is missing, or not a class (header = line 1)."""
    bad = []
    for row, value in enumerate(labels):
        if pd.isna(value):
            bad.append(f"line {row + 2}: missing")
            continue
        if classes is not None:
            ok = value in classes
        else:  # integer class indices: 3 and 3.0 (NaN elsewhere makes the column float) pass
            number = pd.to_numeric(value, errors="coerce")
            ok = not pd.isna(number) and float(number).is_integer() and number >= 0
        if not ok:
            bad.append(f"line {row + 2}: {value!r}")
    return bad


def read_labelled_csv(path: Path, text_column: str = "text", label_column: str = "label",
                      classes: Sequence[object] | None = None) -> pd.DataFrame:
    """Read a CSV of labelled texts; clear errors for an empty file, a missing column or
    bad labels.

    Labels must be non-negative integer class indices, or, when ``classes`` is given, one
    of ``classes``. Every missing or invalid label is named by its line in the file.
    """
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError as err:
        raise DataFormatError(f"{Path(path).name} is empty: no header, no rows") from err
    missing = [c for c in (text_column, label_column) if c not in df.columns]
    if missing:
        raise DataFormatError(f"{Path(path).name} has no column(s) {missing}; its columns are "
                              f"{list(df.columns)}. Pass text_column=/label_column= to choose.")
    if df.empty:
        raise DataFormatError(f"{Path(path).name} has a header but no rows")
    bad = _bad_labels(df[label_column], classes)
    if bad:
        shown = "; ".join(bad[:20]) + (f"; ... ({len(bad) - 20} more)" if len(bad) > 20 else "")
        expected = (f"expected one of {list(classes)}" if classes is not None
                    else "expected integer class indices (0, 1, 2, ...)")
        raise DataFormatError(
            f"{Path(path).name}: {len(bad)} row{'s' if len(bad) > 1 else ''} of column "
            f"{label_column!r} hold{'' if len(bad) > 1 else 's'} no valid class label: {shown}; "
            f"{expected}. Fix or drop those lines, or pass classes=[...] for named labels.")
    if classes is None:
        df[label_column] = df[label_column].astype(np.int64)
    return df


def out_of_fold_probs(features: np.ndarray, labels: np.ndarray, model, folds: int = 5,
                      seed: int = 0) -> np.ndarray:
    """Predicted class probabilities where each record's come from a model that never saw it."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return cross_val_predict(model, features, labels, cv=cv, method="predict_proba")


def find_label_issues(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """cleanlab's confident-learning filter: True where the given label is likely wrong."""
    from cleanlab.filter import find_label_issues as _find

    return _find(labels=np.asarray(labels), pred_probs=pred_probs, filter_by="both")


def flip_labels(labels: np.ndarray, fraction: float, rng: np.random.Generator,
                classes: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A copy of ``labels`` with ``int(fraction * len(labels))`` of them, drawn by ``rng``,
    changed to another of ``classes`` (default: the classes present), drawn uniformly; and the
    boolean mask of the flipped records."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    labels = np.asarray(labels)
    classes = np.unique(labels) if classes is None else np.asarray(classes)
    flipped = np.zeros(len(labels), bool)
    flipped[rng.choice(len(labels), int(fraction * len(labels)), replace=False)] = True
    out = labels.copy()
    for i in np.flatnonzero(flipped):
        out[i] = rng.choice(classes[classes != labels[i]])
    return out, flipped


def flip_and_detect(images: np.ndarray, labels: np.ndarray, classes: Sequence[int], n: int,
                    fraction: float, model, seed: int, folds: int = 5) -> dict[str, float]:
    """The label-error detector on a sample whose errors we know: draw ``n`` of the ``images``
    whose label is in ``classes`` (by ``seed``), flip ``fraction`` of their labels
    (``flip_labels``), find label issues from ``model``'s out-of-fold probabilities on the
    flattened pixels scaled to [0, 1], and score them against the flips (``detector_scores``,
    plus ``oof_acc``, the model's out-of-fold accuracy against the given labels)."""
    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(np.isin(labels, classes))
    pick = rng.choice(pool, n, replace=False)
    given, flipped = flip_labels(labels[pick], fraction, rng, classes)
    classes_, codes = np.unique(given, return_inverse=True)
    x = images[pick].reshape(n, -1) / 255.0
    probs = out_of_fold_probs(x, codes, model, folds=folds, seed=seed)
    scores = detector_scores(find_label_issues(codes, probs), flipped)
    return {**scores, "oof_acc": float((probs.argmax(1) == codes).mean())}


def imbalance_report(labels: Sequence[int], names: Sequence[str] | None = None) -> pd.DataFrame:
    """Count and share per class, and each class's size relative to the largest."""
    counts = pd.Series(labels).value_counts().sort_index()
    report = pd.DataFrame({"count": counts, "share": counts / counts.sum(),
                           "vs largest": counts / counts.max()})
    if names is not None:
        report.index = [names[i] for i in report.index]
    return report


def cross_split_matches(train_keys: Sequence[str], test_keys: Sequence[str]) -> np.ndarray:
    """True for each TRAIN record whose key also occurs in the test split (leakage)."""
    return pd.Series(list(train_keys)).isin(set(test_keys)).to_numpy()


def stratified_split(labels: np.ndarray, val_fraction: float, test_fraction: float,
                     seed: int = 0) -> dict[str, np.ndarray]:
    """Indices of a train/val/test split that keeps each class's share in every part."""
    from sklearn.model_selection import train_test_split

    if not 0 < val_fraction + test_fraction < 1:
        raise ValueError(f"val + test fractions must be in (0, 1), got "
                         f"{val_fraction} + {test_fraction}")
    idx = np.arange(len(labels))
    rest, test = train_test_split(idx, test_size=test_fraction, stratify=labels,
                                  random_state=seed)
    train, val = train_test_split(rest, test_size=val_fraction / (1 - test_fraction),
                                  stratify=np.asarray(labels)[rest], random_state=seed)
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def detector_scores(flagged: np.ndarray, injected: np.ndarray) -> dict[str, float]:
    """Precision and recall of a detector against the errors we injected ourselves."""
    flagged, injected = np.asarray(flagged, bool), np.asarray(injected, bool)
    hits = int((flagged & injected).sum())
    return {"injected": int(injected.sum()), "flagged": int(flagged.sum()), "found": hits,
            "precision": hits / flagged.sum() if flagged.any() else float("nan"),
            "recall": hits / injected.sum() if injected.any() else float("nan")}


def token_augment(text: str, rng: np.random.Generator, p_delete: float = 0.1,
                  n_swaps: int = 1) -> str:
    """A token-level text augmentation: drop each word with ``p_delete``, then swap pairs."""
    words = text.split()
    kept = [w for w in words if rng.random() >= p_delete] or words[:1]
    for _ in range(n_swaps if len(kept) > 1 else 0):
        i, j = rng.choice(len(kept), 2, replace=False)
        kept[i], kept[j] = kept[j], kept[i]
    return " ".join(kept)
