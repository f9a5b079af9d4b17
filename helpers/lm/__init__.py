"""Generative language models: a small GPT from scratch, and a real pretrained one.

Taught in ``notebooks/15a_small_gpt.ipynb`` (``tokens``: the BPE tokenizer; ``model``: the GPT
and its KV cache; ``fit``: training; ``generate``: decoding; ``metrics``: perplexity, the bigram
baseline, scaling) and ``notebooks/15b_pretrained_llm.ipynb`` (``pretrained``: SmolLM2 from a
GGUF file or the hub, in the same ``GPT`` class; ``prompting``: classifying with label words).
"""

from . import fit, generate, metrics, model, pretrained, prompting, tokens
from .model import GPT, GPTConfig, KVCache, count_parameters

__all__ = ["fit", "generate", "metrics", "model", "pretrained", "prompting", "tokens", "GPT",
           "GPTConfig", "KVCache", "count_parameters"]
