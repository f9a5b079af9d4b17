"""The model bundle a service loads: ONNX weights, the tokenizer, metadata and a drift reference.

Taught in ``notebooks/13_serving.ipynb`` ("A bundle, versioned by its hash"). ``export_bundle``
writes the folder (torch is needed there, and only there); ``load_bundle`` reads it back with ONNX
Runtime and ``tokenizers`` alone, which is all the service needs. ``psi`` and ``drift_verdict``
compare live scores with the test set's; ``occlusion_scores`` explains one prediction.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import paths

__all__ = ["Limits", "DEFAULT_LIMITS", "BUNDLE_FILE", "CARD_FILE", "export_bundle", "Bundle", "load_bundle", "psi",
           "drift_verdict", "occlusion_scores"]

BUNDLE_FILE = "bundle.json"
CARD_FILE = "model-card.md"


@dataclass(frozen=True)
class Limits:
    """What one request may carry. A body over ``max_body_bytes`` gets a 413 before it is
    parsed; more than ``max_texts`` texts, or a text over ``max_chars`` characters, a 422."""

    max_texts: int = 64
    max_chars: int = 1000
    max_body_bytes: int = 1_000_000

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"Limits.{name} must be a positive integer, got {value!r}")




DEFAULT_LIMITS = Limits()


def export_bundle(classifier: Any, tokenizer: Any, folder: str | Path, *, name: str,
                  max_length: int, reference_texts: Sequence[str],
                  labels: Sequence[str] = ("negative", "positive"), int8: bool = True,
                  card: str = "") -> dict[str, Any]:
    """Write what the service loads into ``folder``: ``model.onnx`` (exported with dynamic
    batch and length through ``compress.export_onnx``, then int8 dynamic per-channel with ONNX
    Runtime when ``int8``: chapter 08's choice), the tokenizer (``tokenizer.json``),
    ``bundle.json`` (name, version, labels, max_length, and the reference scores for the
    drift check: the exported model's last-class probability on ``reference_texts``, the
    test set) and ``model-card.md``. The version is the model file's SHA-256, shortened: a
    new model is a new version. Returns the bundle's metadata."""
    from .. import compress, text  # heavy: torch; the exporter needs it, the service does not

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    reference_texts = [str(t) for t in reference_texts]
    if len(reference_texts) < 10:
        raise ValueError(f"reference_texts has {len(reference_texts)} texts: give the test set "
                         "(at least 10), whose scores the drift check compares live ones with")
    net = classifier.model if isinstance(classifier, text.HFClassifier) else classifier
    wrapped = text.TensorClassifier(net).eval().cpu()
    example = tokenizer(["an example sentence to trace the graph"] * 2, truncation=True,
                        max_length=max_length, padding="max_length", return_tensors="pt")
    names = ["input_ids", "attention_mask"]
    dynamic = {n: {0: "batch", 1: "length"} for n in names}
    args = (example["input_ids"], example["attention_mask"])
    program = compress.export_program(wrapped, args, names, dynamic)
    fp32 = compress.export_onnx(program, args, folder / "model-fp32.onnx", names, ["logits"])
    model_path = folder / "model.onnx"
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(fp32, model_path, weight_type=QuantType.QInt8, per_channel=True)
        fp32.unlink()
    else:
        fp32.replace(model_path)
    for leftover in folder.glob("model-fp32.onnx*"):  # external-data files, if any
        leftover.unlink()
    tokenizer.save_pretrained(folder)
    meta = {"name": name, "version": f"{name}-{paths.sha256_file(model_path)[:12]}",
            "labels": list(labels),
            "max_length": int(max_length), "format": "onnx int8 dynamic" if int8 else "onnx fp32",
            "reference_scores": []}
    (folder / BUNDLE_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    loaded = load_bundle(folder)
    scores = np.concatenate([loaded.probabilities(*loaded.encode(reference_texts[i:i + 64])[:2])[:, -1]
                             for i in range(0, len(reference_texts), 64)])
    meta["reference_scores"] = [float(v) for v in scores]
    (folder / BUNDLE_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    (folder / CARD_FILE).write_text(card or f"# {name}\n\nNo model card was written.\n",
                                    encoding="utf-8")
    return meta


@dataclass
class Bundle:
    """A loaded bundle: the ONNX Runtime session, the tokenizer and the metadata."""

    folder: Path
    session: Any
    tokenizer: Any
    meta: dict[str, Any]
    threads: int

    @property
    def version(self) -> str:
        return self.meta["version"]

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[Any]]:
        encodings = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return ids, mask, encodings

    def probabilities(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        logits = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)


def load_bundle(folder: str | Path, threads: int | None = None) -> Bundle:
    """Load ``export_bundle``'s folder: an ONNX Runtime session with ``intra_op_num_threads``
    fixed (all cores by default), and the fast tokenizer from ``tokenizer.json`` (padding to
    the batch's longest text, truncation at the bundle's ``max_length``).

    Raises:
        FileNotFoundError: the folder, or a file in it, is missing (the message names it).
    """
    import onnxruntime as ort
    from tokenizers import Tokenizer

    folder = Path(folder)
    for needed in (BUNDLE_FILE, "model.onnx", "tokenizer.json"):
        if not (folder / needed).is_file():
            raise FileNotFoundError(f"no {needed} in {folder}: is it a bundle written by "
                                    "serve.export_bundle?")
    meta = json.loads((folder / BUNDLE_FILE).read_text(encoding="utf-8"))
    threads = threads or os.cpu_count() or 1
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(folder / "model.onnx"), options,
                                   providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(meta["max_length"])
    pad_id = tokenizer.token_to_id("[PAD]") or 0
    tokenizer.enable_padding(pad_id=pad_id, pad_token="[PAD]")
    return Bundle(folder, session, tokenizer, meta, threads)



def psi(reference: Sequence[float], live: Sequence[float], bins: int = 10,
        eps: float = 1e-4) -> float:
    """Population stability index of ``live`` scores against ``reference`` ones:
    ``sum((p_live - p_ref) * ln(p_live / p_ref))`` over ``bins`` bins cut at the reference's
    quantiles (each holds a tenth of the reference), empty bins floored at ``eps``. It is
    the symmetric KL divergence of the two binned distributions (the notebook checks this
    against ``scipy.special.rel_entr``). Rule of thumb (Siddiqi 2006): below 0.1 stable,
    0.1 to 0.25 a moderate shift, above 0.25 a major one.

    Raises:
        ValueError: either sample is empty or holds a NaN.
    """
    ref, cur = np.asarray(reference, dtype=float), np.asarray(live, dtype=float)
    for name, x in (("reference", ref), ("live", cur)):
        if x.size == 0 or not np.isfinite(x).all():
            raise ValueError(f"psi needs non-empty, finite {name} scores (got {x.size} values, "
                             f"{int((~np.isfinite(x)).sum())} not finite)")
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    p = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1) / ref.size
    q = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1) / cur.size
    p, q = np.maximum(p, eps), np.maximum(q, eps)
    return float(np.sum((q - p) * np.log(q / p)))


def drift_verdict(value: float | None) -> str:
    """The rule of thumb's word for a PSI value (``None``: too few live scores yet)."""
    if value is None:
        return "too few live scores"
    return "stable" if value < 0.1 else "moderate shift" if value < 0.25 else "major shift"


def occlusion_scores(bundle: Bundle, text: str) -> dict[str, Any]:
    """Leave-one-token-out attributions: for each word piece, how much the predicted class's
    probability falls when that token is removed (its id set to [PAD], its attention mask to
    0). One batched call: the text and its n ablated copies. The notebook shows Captum's
    ``FeatureAblation`` giving the same numbers."""
    ids, mask, encodings = bundle.encode([text])
    n = ids.shape[1]
    special = np.array(encodings[0].special_tokens_mask, dtype=bool)
    pad_id = bundle.tokenizer.token_to_id("[PAD]") or 0
    rows = np.repeat(ids, n + 1, axis=0)
    masks = np.repeat(mask, n + 1, axis=0)
    rows[np.arange(1, n + 1), np.arange(n)] = pad_id
    masks[np.arange(1, n + 1), np.arange(n)] = 0
    probs = bundle.probabilities(rows, masks)
    label = int(probs[0].argmax())
    scores = probs[0, label] - probs[1:, label]
    keep = ~special
    return {"tokens": [t for t, k in zip(encodings[0].tokens, keep, strict=True) if k],
            "scores": [round(float(s), 5) for s in scores[keep]],
            "label": bundle.meta["labels"][label], "probability": float(probs[0, label])}
