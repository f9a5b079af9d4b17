"""Chapter 13's service: contract tests (TestClient, lifespan included), a real uvicorn
process with a bounded load test and a bad-input suite, the page in a real headless
Chromium, safe loading, the drift check and the model card."""

import ast
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from helpers import serve, text

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = ["A warm, funny and moving film.", "Dull, slow and far too long.",
             "The cast is fine but the script is not.", "I would watch it again tomorrow."]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A real bundle: the packaged MiniLM with a fresh 2-class head (seeded), exported to ONNX
    and quantized to int8, as the notebook does with the fine-tuned one."""
    torch.manual_seed(0)
    tokenizer, clf = text.load_classifier(text.quick_model_path(), num_labels=2)
    folder = tmp_path_factory.mktemp("bundle")
    serve.export_bundle(clf, tokenizer, folder, name="test-model", max_length=32,
                        reference_texts=SENTENCES * 10, card="# test card\n")
    return folder


@pytest.fixture(scope="module")
def client(bundle):
    from fastapi.testclient import TestClient

    app = serve.create_app(bundle, threads=1, limits=serve.Limits(max_texts=8, max_chars=200,
                                                                   max_body_bytes=20_000),
                           min_live=20)
    with TestClient(app) as c:  # the context manager runs the lifespan (the model is loaded)
        yield c


@pytest.fixture(scope="module")
def service(bundle, tmp_path_factory):
    """The service as a real uvicorn process on 127.0.0.1, torn down after the module."""
    log = tmp_path_factory.mktemp("service") / "service.log"
    with serve.Service(bundle, log, threads=1,
                       limits=serve.Limits(max_texts=8, max_chars=200, max_body_bytes=20_000)) as s:
        yield s
    assert s.process.poll() is not None, "the service outlived its fixture"


# --- contract -----------------------------------------------------------------------------------
def test_predict_returns_labels_probabilities_and_version_matching_the_model(client, bundle):
    r = client.post("/predict", json={"texts": SENTENCES})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"labels", "probabilities", "model_version"}
    loaded = serve.load_bundle(bundle, threads=1)
    ids, mask, _ = loaded.encode(SENTENCES)
    probs = loaded.probabilities(ids, mask)
    assert body["labels"] == [["negative", "positive"][i] for i in probs.argmax(1)]
    np.testing.assert_allclose(body["probabilities"], probs.max(1), atol=1e-5)
    assert body["model_version"] == loaded.version
    assert re.fullmatch(r"test-model-[0-9a-f]{12}", loaded.version)


def test_the_served_model_agrees_with_pytorch(bundle):
    """The int8 ONNX model in the bundle against the fp32 PyTorch model it came from."""
    torch.manual_seed(0)
    tokenizer, clf = text.load_classifier(text.quick_model_path(), num_labels=2)
    ref = text.predict_texts(clf.eval(), tokenizer, SENTENCES, max_length=32)
    loaded = serve.load_bundle(bundle, threads=1)
    probs = loaded.probabilities(*loaded.encode(SENTENCES)[:2])
    assert np.abs(probs - np.asarray(ref)).max() < 0.05  # int8: close, not equal


def test_health_card_page_and_static_files(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["limits"]["max_texts"] == 8
    card = client.get("/model-card")
    assert card.status_code == 200 and card.text.startswith("# test card")
    assert card.headers["content-type"].startswith("text/markdown")
    page = client.get("/")
    assert page.status_code == 200 and 'id="text"' in page.text
    assert client.get("/static/app.js").status_code == 200


def test_explain_gives_one_score_per_word_piece(client):
    body = client.post("/explain", json={"text": "a warm film"}).json()
    assert body["tokens"] == ["a", "warm", "film"]
    assert len(body["scores"]) == 3 and body["label"] in ("negative", "positive")


def test_occlusion_scores_equal_captums_feature_ablation(tmp_path):
    """The service's leave-one-out attributions are Captum's FeatureAblation, computed on
    the same ONNX session (each token and its mask ablated together). On an fp32 export:
    int8 dynamic quantization scales activations per batch, so there a row's output moves
    slightly with the rest of its batch (Captum evaluates one ablation at a time)."""
    from captum.attr import FeatureAblation

    torch.manual_seed(0)
    tokenizer, clf = text.load_classifier(text.quick_model_path(), num_labels=2)
    serve.export_bundle(clf, tokenizer, tmp_path, name="fp32", max_length=32, int8=False,
                        reference_texts=SENTENCES * 3)
    loaded = serve.load_bundle(tmp_path, threads=1)
    sentence = "a warm, funny film"
    ours = serve.occlusion_scores(loaded, sentence)
    ids, mask, enc = loaded.encode([sentence])
    label = ["negative", "positive"].index(ours["label"])

    def forward(i: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(loaded.probabilities(i.numpy(), m.numpy()))

    n = ids.shape[1]
    positions = torch.arange(n)[None]
    attr = FeatureAblation(forward).attribute(
        (torch.from_numpy(ids), torch.from_numpy(mask)), baselines=(0, 0), target=label,
        feature_mask=(positions, positions))[0][0].numpy()
    keep = ~np.array(enc[0].special_tokens_mask, dtype=bool)
    np.testing.assert_allclose(ours["scores"], attr[keep], atol=1e-4)


def test_endpoints_are_plain_functions_run_in_the_threadpool(bundle):
    """Inference must not block the event loop: every route is a plain def, which FastAPI
    runs in its threadpool."""
    app = serve.create_app(bundle)
    routes = {r.path: r.endpoint for r in app.routes if hasattr(r, "endpoint")}
    for path in ("/predict", "/explain", "/health", "/drift", "/model-card"):
        assert not inspect.iscoroutinefunction(routes[path]), path


def test_drift_waits_for_enough_live_scores_then_reports_psi(bundle):
    from fastapi.testclient import TestClient

    app = serve.create_app(bundle, threads=1, min_live=20)
    with TestClient(app) as c:
        assert c.get("/drift").json()["verdict"] == "too few live scores"
        for _ in range(5):
            c.post("/predict", json={"texts": SENTENCES})
        drift = c.get("/drift").json()
        same = c.get("/drift", params={"last": 4}).json()
    assert drift["live_scores"] == 20 and drift["psi"] is not None
    assert drift["verdict"] == serve.drift_verdict(drift["psi"])
    assert drift["psi"] == pytest.approx(0.0, abs=1e-9)  # the reference is these very sentences
    assert same["live_scores"] == 4 and same["verdict"] == "too few live scores"


@pytest.mark.parametrize("body, status, words", [
    ({"texts": []}, 422, "empty"),
    ({"texts": [1, 2]}, 422, "valid string"),
    ({"texts": "one text"}, 422, "valid list"),
    ({"text": ["wrong field"]}, 422, "Field required"),
    ({"texts": ["x"] * 9}, 422, "limit of 8"),
    ({"texts": ["x" * 201]}, 422, "limit of 200"),
    ({"texts": ["   "]}, 422, "blank"),
])
def test_bad_requests_get_a_4xx_naming_the_problem(client, body, status, words):
    r = client.post("/predict", json=body)
    assert r.status_code == status
    assert words in r.text
    assert client.get("/health").status_code == 200


def test_limits_refuse_nonsense():
    with pytest.raises(ValueError, match="max_texts"):
        serve.Limits(max_texts=0)


def test_a_missing_bundle_stops_the_start_up_with_its_name(tmp_path):
    from fastapi.testclient import TestClient

    with pytest.raises(FileNotFoundError, match="bundle.json"), TestClient(serve.create_app(tmp_path)):
        pass
    out = subprocess.run([sys.executable, "-m", "helpers.serve", "--model", str(tmp_path / "nope")],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and "no such folder" in out.stderr


def test_service_reports_a_failed_start_with_its_log(tmp_path):
    with pytest.raises(serve.ServiceError, match="bundle.json"):
        serve.Service(tmp_path, tmp_path / "log.txt").start()


# --- a real uvicorn process ---------------------------------------------------------------------
def _bad_inputs() -> dict[str, dict]:
    json_type = {"content-type": "application/json"}
    return {
        "empty list": {"json": {"texts": []}},
        "wrong types": {"json": {"texts": [1, None, {"a": 1}]}},
        "oversized body": {"content": json.dumps({"texts": ["x" * 150] * 200}), "headers": json_type},
        "oversized, no length declared": {"content": iter([b'{"texts": ["' + b"x" * 30_000 + b'"]}']),
                                          "headers": json_type},
        "invalid UTF-8": {"content": b'{"texts": ["caf\xe9 \xff"]}', "headers": json_type},
        "10,000 tiny texts": {"json": {"texts": ["a"] * 10_000}},
        "not JSON": {"content": b"texts=hello", "headers": json_type},
    }


@pytest.mark.parametrize("name", list(_bad_inputs()))
def test_bad_inputs_get_a_4xx_and_the_server_keeps_serving(service, name):
    import httpx

    r = httpx.post(service.url + "/predict", timeout=30, **_bad_inputs()[name])
    assert 400 <= r.status_code < 500, (name, r.status_code, r.text[:200])
    assert "detail" in r.json()
    assert httpx.get(service.url + "/health", timeout=5).json()["status"] == "ok"


def test_bounded_load_test_at_1_8_and_32_has_no_5xx(service):
    """A fixed request count at each concurrency, 30 s at most in all; zero 5xx; the
    percentiles are ordered; every request is in the structured log with its latency."""
    import httpx

    payloads = [{"texts": [s]} for s in SENTENCES]
    results = [serve.run_load_test(service.url, payloads, requests=60, concurrency=c,
                                   time_limit_s=10) for c in (1, 8, 32)]
    for res in results:
        assert res["errors_5xx"] == 0 and res["transport_errors"] == 0
        assert res["completed"] == 60 and res["statuses"] == {200: 60}
        assert res["p50_ms"] <= res["p95_ms"] <= res["p99_ms"]
    assert httpx.get(service.url + "/health").json()["status"] == "ok"
    logged = [row for row in service.requests_logged() if row["path"] == "/predict"
              and row["status"] == 200]
    assert len(logged) >= 180 and all(row["latency_ms"] > 0 for row in logged)


def test_load_test_stops_at_its_time_limit(service):
    res = serve.run_load_test(service.url, [{"texts": SENTENCES}], requests=100_000,
                              concurrency=4, time_limit_s=1.0)
    assert res["seconds"] < 5 and res["completed"] < 100_000


# --- the page in a real browser -----------------------------------------------------------------
@pytest.mark.skipif(serve.chromium_path() is None, reason="no chromium: `make setup` installs Debian's "
                    "chromium where apt and root are available")
def test_the_page_in_headless_chromium_shows_a_prediction_without_console_errors(service):
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=serve.chromium_path(), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(service.url + "/")
            page.fill("#text", "A warm, funny and moving film.")
            page.click("#go")
            page.wait_for_function("document.querySelectorAll('#tokens span').length > 0",
                                   timeout=20_000)
            label = page.inner_text("#label")
            probability = float(page.inner_text("#probability"))
            tokens = page.locator("#tokens span").all_inner_texts()
            version = page.inner_text("#version")
        finally:
            browser.close()
    assert label in ("negative", "positive") and 0.5 <= probability <= 1.0
    assert tokens[:2] == ["a", "warm"]
    assert "test-model-" in version
    assert problems == []


# --- safe loading -------------------------------------------------------------------------------
def test_formats_table_saves_four_formats_that_load_to_the_same_outputs(tmp_path):
    torch.manual_seed(0)

    def make():
        return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))

    model = make()
    table = serve.formats_table(model, make, (torch.randn(3, 6),), ["x"], {"x": {0: "batch"}},
                                tmp_path, repeats=1)
    assert list(table.index) == ["state_dict (.pt)", "safetensors", "torch.export (.pt2)", "ONNX"]
    assert (table["max |diff|"] < 1e-5).all() and (table["size MB"] > 0).all()


def test_a_malicious_checkpoint_is_refused_by_the_safe_loaders(tmp_path):
    import pickle

    import safetensors.torch

    marker = tmp_path / "payload-ran"
    path = serve.malicious_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        torch.load(path, weights_only=True)
    with pytest.raises(Exception, match="(?i)header|invalid|safetensor"):
        safetensors.torch.load_file(path)
    assert not marker.exists()
    # the payload is real: the pickle in the file names the function it would call
    assert b"touch" in path.read_bytes()


def _unsafe_calls(source: str) -> list[str]:
    """Calls that unpickle: torch.load without weights_only=True, pickle.load(s), pandas'
    read_pickle, numpy's load with allow_pickle=True, joblib.load."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        kw = {k.arg: k.value for k in node.keywords}
        safe_torch = isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True
        if name == "torch.load" and not safe_torch:
            found.append(ast.unparse(node))
        elif name in ("pickle.load", "pickle.loads", "pd.read_pickle", "pandas.read_pickle",
                      "joblib.load", "cloudpickle.load", "dill.load"):
            found.append(ast.unparse(node))
        elif name in ("np.load", "numpy.load") and isinstance(kw.get("allow_pickle"), ast.Constant) \
                and kw["allow_pickle"].value is True:
            found.append(ast.unparse(node))
    return found


def test_the_unsafe_call_finder_finds_them():
    bad = ("torch.load(p)\ntorch.load(p, weights_only=False)\npickle.load(f)\n"
           "np.load(p, allow_pickle=True)\n")
    assert len(_unsafe_calls(bad)) == 4
    assert _unsafe_calls("torch.load(p, weights_only=True)\nnp.load(p)\n") == []


def test_no_unsafe_deserialization_anywhere_in_the_project():
    sources = {}
    for folder in ("helpers", "tests", "benchmarks", "notebooks", "book"):
        for path in (ROOT / folder).rglob("*.py"):
            sources[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
        for path in (ROOT / folder).rglob("*.ipynb"):
            if ".ipynb_checkpoints" in path.parts:
                continue
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            code = "\n".join("\n".join(line for line in "".join(c["source"]).splitlines()
                                       if not line.lstrip().startswith(("%", "!")))
                             for c in cells if c["cell_type"] == "code")
            sources[str(path.relative_to(ROOT))] = code
    assert len(sources) > 30
    offenders = {name: calls for name, src in sources.items() if (calls := _unsafe_calls(src))}
    assert offenders == {}


# --- the model card -----------------------------------------------------------------------------
def test_chapter_figures_prefer_this_runs_copy_and_fall_back_to_the_committed_one(tmp_path):
    committed = serve.chapter_figures("04_bert_finetuning", executed_dir=tmp_path)
    assert committed["source"].endswith("notebooks/04_bert_finetuning.ipynb")
    assert "bert_test_acc" in committed["values"]
    nb = json.loads((ROOT / "notebooks/04_bert_finetuning.ipynb").read_text())
    nb["metadata"].setdefault("papermill", {})["parameters"] = {"profile": "full"}
    (tmp_path / "04_bert_finetuning.ipynb").write_text(json.dumps(nb))
    executed = serve.chapter_figures("04_bert_finetuning", executed_dir=tmp_path)
    assert executed["source"] == str(tmp_path / "04_bert_finetuning.ipynb")
    assert executed["profile"] == "full"
    assert serve.chapter_figures("99_nothing", executed_dir=tmp_path)["source"] is None


def test_model_card_is_rendered_from_figures_and_says_what_is_missing():
    meta = {"name": "m", "version": "m-123", "format": "onnx int8 dynamic",
            "labels": ["negative", "positive"], "max_length": 64}
    figures = {"04_bert_finetuning": {"values": {"bert_test_acc": 0.8123, "bert_test_f1": 0.8},
                                      "source": "/x/04_bert_finetuning.ipynb", "profile": "quick"},
               "07_evaluation_fairness": {"values": {}, "source": None, "profile": None}}
    card = serve.model_card(meta, figures, {"test_acc": 0.8011, "n_test": 1000})
    assert "| test accuracy, fp32 | 0.812 | chapter 04 |" in card
    assert "0.801 on 1000 sentences" in card
    assert "not measured" in card and "chapter 07: not executed" in card
    assert "None" not in card


def test_psi_is_zero_for_the_same_scores_and_matches_symmetric_kl():
    from scipy.special import rel_entr

    rng = np.random.default_rng(0)
    ref = rng.beta(2, 2, 5000)
    assert serve.psi(ref, ref) == pytest.approx(0.0, abs=1e-12)
    live = rng.beta(5, 2, 2000)
    edges = np.quantile(ref, np.linspace(0, 1, 11)[1:-1])
    p = np.histogram(ref, np.r_[-np.inf, edges, np.inf])[0] / ref.size
    q = np.histogram(live, np.r_[-np.inf, edges, np.inf])[0] / live.size
    assert serve.psi(ref, live) == pytest.approx(rel_entr(q, p).sum() + rel_entr(p, q).sum(),
                                                 rel=1e-6)
    assert serve.drift_verdict(serve.psi(ref, rng.beta(2, 2, 2000))) == "stable"
    assert serve.drift_verdict(serve.psi(ref, live)) == "major shift"
    with pytest.raises(ValueError, match="finite live"):
        serve.psi(ref, [0.5, np.nan])
    with pytest.raises(ValueError, match="reference"):
        serve.psi([], [0.5])

