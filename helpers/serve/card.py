"""The served model's card (Mitchell et al. 2019), rendered from measured figures only.

Taught in ``notebooks/13_serving.ipynb`` ("The model card"): every figure comes from a chapter's
recorded results (04, 07, 08, by ``chapter_figures``) or from chapter 13's own measurements;
one that is absent reads "not measured".
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import notebook

__all__ = ["chapter_figures", "model_card"]


def chapter_figures(stem: str, executed_dir: str | Path | None = None) -> dict[str, Any]:
    """``notebook.chapter_figures``, its home since chapter 14 (kept here: the name is stable)."""
    return notebook.chapter_figures(stem, executed_dir)


def _fmt(value: Any, spec: str) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, bool | str):
        return str(value)
    return format(value, spec)


def model_card(meta: Mapping[str, Any], figures: Mapping[str, Mapping[str, Any]],
               served: Mapping[str, Any]) -> str:
    """A model card (Mitchell et al. 2019) in markdown. Every figure in it comes from
    ``figures`` (``chapter_figures`` of 04, 07 and 08, by stem) or ``served`` (measured in
    chapter 13): none is typed by hand. A figure that is absent reads "not measured"."""

    def get(stem: str, key: str, spec: str = ".3f") -> str:
        return _fmt(figures.get(stem, {}).get("values", {}).get(key), spec)

    def here(key: str, spec: str = ".3f") -> str:
        return _fmt(served.get(key), spec)

    sources = "\n".join(f"- chapter {stem[:2]}: `{Path(f['source']).name}` ({f['profile']} profile)"
                        if f.get("source") else f"- chapter {stem[:2]}: not executed"
                        for stem, f in figures.items())
    return f"""# Model card: {meta['name']}

Version `{meta['version']}`, {meta['format']}, labels {', '.join(meta['labels'])}.

## Model
A BERT-family encoder fine-tuned for sentence sentiment (chapter 04), exported to ONNX and
quantized to int8 (chapter 08), served by FastAPI and ONNX Runtime (chapter 13).
Input: English text, truncated to {meta['max_length']} word pieces.

## Intended use
Sorting short English movie-review sentences by sentiment, as a teaching example.
Not for decisions about people, nor for text unlike movie reviews (the drift check watches
for that).

## Evaluation
| figure | value | from |
|---|---|---|
| test accuracy, fp32 | {get('04_bert_finetuning', 'bert_test_acc')} | chapter 04 |
| test F1 | {get('04_bert_finetuning', 'bert_test_f1')} | chapter 04 |
| ROC AUC (95% CI) | {get('07_evaluation_fairness', 'eval_auc')} ({get('07_evaluation_fairness', 'eval_auc_ci_low')} to {get('07_evaluation_fairness', 'eval_auc_ci_high')}) | chapter 07 |
| worst slice | {get('07_evaluation_fairness', 'eval_worst_slice', 's')}: accuracy {get('07_evaluation_fairness', 'eval_worst_slice_acc')} on {get('07_evaluation_fairness', 'eval_worst_slice_n', 'd')} sentences | chapter 07 |
| calibration error (ECE) before / after temperature scaling | {get('07_evaluation_fairness', 'eval_ece_text_before')} / {get('07_evaluation_fairness', 'eval_ece_text_after')} | chapter 07 |
| int8: times smaller, times faster at batch 32 | {get('08_compression', 'compress_int8_size_ratio', '.2f')}, {get('08_compression', 'compress_int8_speedup', '.2f')} | chapter 08 |
| int8: accuracy drop (95% CI) | {get('08_compression', 'compress_int8_acc_drop')} ({get('08_compression', 'compress_int8_acc_drop_low')} to {get('08_compression', 'compress_int8_acc_drop_high')}) | chapter 08 |
| served model: test accuracy | {here('test_acc')} on {here('n_test', 'd')} sentences | chapter 13 |
| served: p50 / p95 latency at concurrency 8 (ms) | {here('p50_ms_c8', '.1f')} / {here('p95_ms_c8', '.1f')} | chapter 13 |
| served: throughput at concurrency 8 (requests/s) | {here('rps_c8', '.1f')} | chapter 13 |

## Limitations
Trained on a few thousand movie-review sentences; accuracy is lowest on the worst slice
above. Probabilities are not calibrated by the service. Measured on {here('machine', 's')}.

## Sources
{sources}
"""
