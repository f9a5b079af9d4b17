"""A decoder-only transformer (GPT) in plain PyTorch, with a key-value cache.

Taught in ``notebooks/15a_small_gpt.ipynb``; ``notebooks/15b_pretrained_llm.ipynb`` loads a
real pretrained model (SmolLM2, a Llama-style network) into the same class.

* ``GPTConfig``: the network's shape, and four switches that turn the 2019 GPT-2 block into
  the 2024 Llama block: ``norm`` (LayerNorm or RMSNorm), ``mlp`` (GELU or SwiGLU),
  ``position`` (learned embeddings or rotary, RoPE) and ``n_kv_head`` (grouped-query
  attention when fewer than ``n_head``).
* ``CausalSelfAttention``: the attention written out (``attention="manual"``: scores, mask,
  softmax, mix) or through ``F.scaled_dot_product_attention`` (``"sdpa"``), the same numbers.
* ``GPT``: token (and position) embeddings, pre-norm blocks, a final norm and a head tied to
  the token embedding. ``forward(idx, cache=...)`` takes and extends a ``KVCache``, so that
  generation computes each new token from the cached keys and values of the earlier ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GPTConfig", "KVCache", "RMSNorm", "CausalSelfAttention", "Block", "GPT",
           "count_parameters"]


@dataclass(frozen=True)
class GPTConfig:
    """The shape of a ``GPT``.

    Attributes:
        vocab_size, block_size: tokens in the vocabulary; the longest context (positions).
        n_layer, n_head, d_model: blocks, attention heads, width.
        n_kv_head: key/value heads (None: ``n_head``; fewer: grouped-query attention).
        d_ff: the feed-forward width (None: 4 x ``d_model``).
        norm: ``"layer"`` (LayerNorm) or ``"rms"`` (RMSNorm).
        mlp: ``"gelu"`` (GPT-2) or ``"swiglu"`` (Llama).
        position: ``"learned"`` (a position embedding) or ``"rope"`` (rotary).
        attention: ``"manual"`` (written out) or ``"sdpa"`` (``F.scaled_dot_product_attention``).
        tie: the output head reuses the token embedding (weight tying).
    """

    vocab_size: int
    block_size: int
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    n_kv_head: int | None = None
    d_ff: int | None = None
    norm: str = "layer"
    mlp: str = "gelu"
    position: str = "learned"
    attention: str = "sdpa"
    rope_theta: float = 10000.0
    eps: float = 1e-5
    bias: bool = False
    tie: bool = True

    def __post_init__(self) -> None:
        choices = {"norm": ("layer", "rms"), "mlp": ("gelu", "swiglu"),
                   "position": ("learned", "rope"), "attention": ("manual", "sdpa")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r}; choose one of {allowed}")
        if self.d_model % self.n_head or self.n_head % self.kv_heads:
            raise ValueError(f"d_model {self.d_model} must divide into n_head {self.n_head} "
                             f"heads, and those into n_kv_head {self.kv_heads} groups")

    @property
    def kv_heads(self) -> int:
        return self.n_kv_head or self.n_head

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @property
    def ff(self) -> int:
        return self.d_ff or 4 * self.d_model


@dataclass
class KVCache:
    """The keys and values of every token seen so far, one ``(k, v)`` pair per layer, each
    ``[batch, kv_heads, tokens, head_dim]``. ``GPT.forward`` appends to it."""

    layers: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)

    def __len__(self) -> int:
        """Tokens cached (0 when empty)."""
        return self.layers[0][0].shape[2] if self.layers else 0

    def expand(self, batch: int) -> KVCache:
        """The same cache (a shared prompt prefix, computed once) for ``batch`` rows."""
        return KVCache([(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1))
                        for k, v in self.layers])


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight: LayerNorm without the mean and the bias (Llama)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def _norm(cfg: GPTConfig) -> nn.Module:
    if cfg.norm == "rms":
        return RMSNorm(cfg.d_model, cfg.eps)
    return nn.LayerNorm(cfg.d_model, eps=cfg.eps, bias=cfg.bias)


def rope_tables(head_dim: int, positions: torch.Tensor, theta: float
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of each position's rotation angles, ``[tokens, head_dim]``: pair ``i`` (the
    coordinates ``i`` and ``i + head_dim/2``) turns by ``position * theta^(-2i/head_dim)``."""
    inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = positions.float()[:, None] * inv_freq.to(positions.device)[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each pair of coordinates of ``x`` ``[..., tokens, head_dim]`` by its angle."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return (x * cos + rotated * sin).to(x.dtype)


class CausalSelfAttention(nn.Module):
    """Each token attends to itself and the tokens before it, never to later ones."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        kv_width = cfg.kv_heads * cfg.head_dim
        self.q_proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.k_proj = nn.Linear(cfg.d_model, kv_width, bias=cfg.bias)
        self.v_proj = nn.Linear(cfg.d_model, kv_width, bias=cfg.bias)
        self.o_proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)

    def _heads(self, x: torch.Tensor, n: int) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, n, self.cfg.head_dim).transpose(1, 2)  # [b, heads, t, head_dim]

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None,
                past: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``x`` ``[batch, new tokens, d_model]``; ``past``: the cached keys and values of the
        tokens before them. Returns the output and the keys and values of all tokens so far."""
        cfg = self.cfg
        q = self._heads(self.q_proj(x), cfg.n_head)
        k = self._heads(self.k_proj(x), cfg.kv_heads)
        v = self._heads(self.v_proj(x), cfg.kv_heads)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        repeat = cfg.n_head // cfg.kv_heads  # grouped-query attention: heads share k and v
        k_all, v_all = (k.repeat_interleave(repeat, dim=1), v.repeat_interleave(repeat, dim=1)) \
            if repeat > 1 else (k, v)
        mix = (self._manual if cfg.attention == "manual" else self._sdpa)(q, k_all, v_all)
        b, _, t, _ = q.shape
        return self.o_proj(mix.transpose(1, 2).reshape(b, t, cfg.d_model)), (k, v)

    @staticmethod
    def _mask(t_new: int, t_all: int, device: torch.device) -> torch.Tensor:
        """True where query ``i`` (the ``i``-th new token) may see key ``j``: ``j`` is not later."""
        offset = t_all - t_new
        rows = torch.arange(t_new, device=device)[:, None] + offset
        return torch.arange(t_all, device=device)[None, :] <= rows

    def _manual(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # [b, heads, new, all]
        scores = scores.masked_fill(~self._mask(q.shape[2], k.shape[2], q.device), float("-inf"))
        return scores.softmax(dim=-1) @ v

    def _sdpa(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        t_new, t_all = q.shape[2], k.shape[2]
        if t_new == t_all:  # no cache: the usual causal mask
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        if t_new == 1:  # one new token sees everything cached
            return F.scaled_dot_product_attention(q, k, v)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=self._mask(t_new, t_all, q.device))


class MLP(nn.Module):
    """The feed-forward layer: GELU (``fc``, ``proj``) or SwiGLU (``gate``, ``up``, ``down``)."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.swiglu = cfg.mlp == "swiglu"
        if self.swiglu:
            self.gate_proj = nn.Linear(cfg.d_model, cfg.ff, bias=cfg.bias)
            self.up_proj = nn.Linear(cfg.d_model, cfg.ff, bias=cfg.bias)
            self.down_proj = nn.Linear(cfg.ff, cfg.d_model, bias=cfg.bias)
        else:
            self.fc = nn.Linear(cfg.d_model, cfg.ff, bias=cfg.bias)
            self.proj = nn.Linear(cfg.ff, cfg.d_model, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.swiglu:
            return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    """Pre-norm: ``x + attention(norm(x))``, then ``x + mlp(norm(x))``."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.norm1, self.attn = _norm(cfg), CausalSelfAttention(cfg)
        self.norm2, self.mlp = _norm(cfg), MLP(cfg)

    def forward(self, x: torch.Tensor, rope: Any = None, past: Any = None) -> tuple[torch.Tensor, Any]:
        a, kv = self.attn(self.norm1(x), rope, past)
        x = x + a
        return x + self.mlp(self.norm2(x)), kv


class GPT(nn.Module):
    """A decoder-only language model: ``forward(idx)`` gives the logits of the next token at
    every position, ``[batch, tokens, vocab_size]``."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.block_size, cfg.d_model) if cfg.position == "learned" else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm_f = _norm(cfg)
        self.lm_head = None if cfg.tie else nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: residual outputs scaled by depth
            if name.endswith(("o_proj.weight", "proj.weight", "down_proj.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def with_attention(self, attention: str) -> GPT:
        """This model (same weights) computing attention the other way (``"manual"``/``"sdpa"``)."""
        cfg = replace(self.cfg, attention=attention)
        for block in self.blocks:
            block.attn.cfg = cfg
        self.cfg = cfg
        return self

    def hidden(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """The final normalized hidden state of every position ``[batch, tokens, d_model]``.
        With ``cache``, ``idx`` continues the cached tokens, and the cache is extended."""
        start = len(cache) if cache is not None else 0
        if start + idx.shape[1] > self.cfg.block_size:
            raise ValueError(f"{start + idx.shape[1]} tokens exceed the context of "
                             f"{self.cfg.block_size} (block_size)")
        positions = torch.arange(start, start + idx.shape[1], device=idx.device)
        x = self.tok_emb(idx)
        rope = None
        if self.pos_emb is not None:
            x = x + self.pos_emb(positions)
        else:
            rope = rope_tables(self.cfg.head_dim, positions, self.cfg.rope_theta)
        for i, block in enumerate(self.blocks):
            past = cache.layers[i] if cache is not None and i < len(cache.layers) else None
            x, kv = block(x, rope, past)
            if cache is not None:
                if i < len(cache.layers):
                    cache.layers[i] = kv
                else:
                    cache.layers.append(kv)
        return self.norm_f(x)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """The output head: next-token logits from hidden states."""
        return self.lm_head(h) if self.lm_head is not None else F.linear(h, self.tok_emb.weight)

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        return self.logits(self.hidden(idx, cache))


def count_parameters(model: nn.Module, embeddings: bool = True) -> int:
    """Parameters of ``model``; ``embeddings=False`` leaves out the token and position
    embeddings (Kaplan et al. count a model's size without them)."""
    skip = {"tok_emb.weight", "pos_emb.weight"} if not embeddings else set()
    return sum(p.numel() for n, p in model.named_parameters() if n not in skip)
