"""Serving a text classifier: a model bundle, a FastAPI service, a load test and a drift check.

Taught in ``notebooks/13_serving.ipynb``. The service is started with one command::

    python -m helpers.serve --model PATH/TO/BUNDLE --port 8000

* ``export_bundle``: a fine-tuned classifier as a folder the service loads (ONNX, int8 by
  default as chapter 08 chose, the tokenizer, the test set's scores for the drift check, a
  model card).
* ``create_app``: the FastAPI app. Its lifespan loads one ONNX Runtime session with fixed
  threads; ``POST /predict``, ``POST /explain``, ``GET /health``, ``GET /drift``,
  ``GET /model-card`` and a page at ``/``. Endpoints are plain ``def``: FastAPI runs them in
  its threadpool, so inference never blocks the event loop.
* ``Limits``: texts per request, characters per text, bytes per body (413 or 422, naming
  the limit).
* ``psi``: the population stability index of live scores against the test set's.
* ``Service``: the app as a real ``uvicorn`` process on 127.0.0.1, started and torn down.
* ``load_test``: a bounded load test (fixed request count, a time limit) with httpx.
* ``chapter_figures`` and ``model_card``: the card rendered from the glued results of
  chapters 04, 07, 08 and this one.

This module does not import torch at start-up: the service needs only onnxruntime,
tokenizers and FastAPI (``export_bundle`` and ``formats_table`` import torch when called).
"""

# No `from __future__ import annotations` here: FastAPI reads the request models' annotations
# of the endpoints defined inside create_app, which must be real classes, not strings.

import argparse
import asyncio
import atexit
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import paths

__all__ = ["Limits", "export_bundle", "load_bundle", "create_app", "psi", "drift_verdict",
           "occlusion_scores", "Service", "ServiceError", "load_test", "run_load_test",
           "formats_table", "malicious_checkpoint", "chapter_figures", "model_card",
           "chromium_path", "require_chromium", "off_the_loop", "page_check", "main"]

STATIC = Path(__file__).with_name("static")
BUNDLE_FILE = "bundle.json"
CARD_FILE = "model-card.md"
log = logging.getLogger("helpers.serve")


# --- limits and the bundle --------------------------------------------------------------------
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
    from helpers import compress, text

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

        quiet = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)  # its "consider pre-processing" notice
        try:
            quantize_dynamic(fp32, model_path, weight_type=QuantType.QInt8, per_channel=True)
        finally:
            logging.getLogger().setLevel(quiet)
        fp32.unlink()
    else:
        fp32.replace(model_path)
    for leftover in folder.glob("model-fp32.onnx*"):  # external-data files, if any
        leftover.unlink()
    tokenizer.save_pretrained(folder)
    meta = {"name": name, "version": f"{name}-{paths.sha256_file(model_path)[:12]}", "labels": list(labels),
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


# --- drift and attributions -------------------------------------------------------------------
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


# --- the app ----------------------------------------------------------------------------------
class _Guard:
    """Pure ASGI middleware in front of the app. It reads each request body (at most
    ``max_body_bytes``: a larger one gets a 413, by its declared Content-Length or as it
    streams in), refuses a body that is not UTF-8 with a 400 naming the first bad byte, then
    hands the body on. It writes one JSON log line per request: method, path, status,
    latency in ms, body bytes."""

    def __init__(self, app: Any, max_body_bytes: int) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state = {"status": 0, "bytes": 0}
        limit = self.max_body_bytes

        async def refuse(status: int, detail: str) -> None:
            body = json.dumps({"detail": detail}).encode()
            state["status"] = status
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        def too_large(size: str) -> str:
            return (f"request body of {size} bytes is over the limit of {limit} bytes "
                    "(Limits.max_body_bytes): send fewer or shorter texts per request")

        try:
            declared = dict(scope.get("headers") or []).get(b"content-length", b"")
            if declared.isdigit() and int(declared) > limit:
                await refuse(413, too_large(declared.decode()))
                return
            chunks, more = [], scope.get("method") in ("POST", "PUT", "PATCH")
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunks.append(message.get("body", b""))
                state["bytes"] += len(chunks[-1])
                if state["bytes"] > limit:
                    await refuse(413, too_large(f"more than {limit}"))
                    return
                more = message.get("more_body", False)
            body = b"".join(chunks)
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as err:
                await refuse(400, f"request body is not UTF-8 (byte {err.start}: "
                                  f"{body[err.start:err.start + 1]!r}): send JSON encoded as UTF-8")
                return
            sent = False

            async def replay() -> dict:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()  # after the body: wait for the client to disconnect

            async def recording_send(message: dict) -> None:
                if message["type"] == "http.response.start":
                    state["status"] = message["status"]
                await send(message)

            await self.app(scope, replay, recording_send)
        finally:
            self._log(scope, state, start)

    @staticmethod
    def _log(scope: dict, state: dict, start: float) -> None:
        log.info(json.dumps({"event": "request", "method": scope.get("method"),
                             "path": scope.get("path"), "status": state["status"],
                             "latency_ms": round((time.perf_counter() - start) * 1000, 2),
                             "body_bytes": state["bytes"]}))


def create_app(bundle_dir: str | Path, threads: int | None = None, limits: Limits = Limits(),
               live_window: int = 2000, min_live: int = 100) -> Any:
    """The prediction service for ``export_bundle``'s folder, as a FastAPI app.

    The bundle is loaded in the lifespan (once, when the server starts; a missing file
    stops the start-up with its name). ``POST /predict`` takes ``{"texts": [...]}`` and
    returns labels, probabilities and the model version; ``POST /explain`` takes
    ``{"text": ...}`` and returns per-token scores (``occlusion_scores``); ``GET /health``;
    ``GET /drift`` (PSI of the last ``live_window`` predicted last-class scores, or of the
    last ``?last=N``, against the test set's, once ``min_live`` have been seen); ``GET /model-card`` (the bundle's
    markdown, read at each request); ``/`` the page.
    """
    from fastapi import FastAPI, Query
    from fastapi.responses import FileResponse, PlainTextResponse
    from fastapi.staticfiles import StaticFiles
    from pydantic import BaseModel, ConfigDict, Field, field_validator

    class PredictRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        texts: list[str] = Field(description=f"1 to {limits.max_texts} texts, each at most "
                                             f"{limits.max_chars} characters")

        @field_validator("texts")
        @classmethod
        def _within_limits(cls, texts: list[str]) -> list[str]:
            if not texts:
                raise ValueError("texts is empty: send at least one text")
            if len(texts) > limits.max_texts:
                raise ValueError(f"{len(texts)} texts is over the limit of {limits.max_texts} "
                                 "per request (Limits.max_texts): split the batch")
            for i, t in enumerate(texts):
                if len(t) > limits.max_chars:
                    raise ValueError(f"text {i} has {len(t)} characters, over the limit of "
                                     f"{limits.max_chars} (Limits.max_chars)")
                if not t.strip():
                    raise ValueError(f"text {i} is blank")
            return texts

    class PredictResponse(BaseModel):
        labels: list[str]
        probabilities: list[float] = Field(description="probability of each returned label")
        model_version: str

    class ExplainRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        text: str = Field(min_length=1, max_length=limits.max_chars)

    class ExplainResponse(BaseModel):
        tokens: list[str]
        scores: list[float]
        label: str
        probability: float
        model_version: str

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        bundle = load_bundle(bundle_dir, threads)
        app.state.bundle = bundle
        app.state.reference = np.asarray(bundle.meta["reference_scores"], dtype=float)
        app.state.live = deque(maxlen=live_window)
        app.state.lock = threading.Lock()
        app.state.started = time.time()
        app.state.served = 0
        log.info(json.dumps({"event": "loaded", "version": bundle.version,
                             "threads": bundle.threads, "limits": asdict(limits)}))
        yield

    app = FastAPI(title="dl-handbook text classifier", lifespan=lifespan,
                  description="Chapter 13 of the deep-learning handbook.")

    @app.post("/predict", response_model=PredictResponse)
    def predict(request: PredictRequest) -> PredictResponse:  # def: runs in the threadpool
        bundle = app.state.bundle
        ids, mask, _ = bundle.encode(request.texts)
        probs = bundle.probabilities(ids, mask)
        best = probs.argmax(axis=1)
        with app.state.lock:
            app.state.live.extend(probs[:, -1].tolist())
            app.state.served += len(request.texts)
        return PredictResponse(labels=[bundle.meta["labels"][i] for i in best],
                               probabilities=probs[np.arange(len(best)), best].round(6).tolist(),
                               model_version=bundle.version)

    @app.post("/explain", response_model=ExplainResponse)
    def explain(request: ExplainRequest) -> ExplainResponse:
        out = occlusion_scores(app.state.bundle, request.text)
        return ExplainResponse(**out, model_version=app.state.bundle.version)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model_version": app.state.bundle.version,
                "threads": app.state.bundle.threads, "texts_served": app.state.served,
                "uptime_s": round(time.time() - app.state.started, 1), "limits": asdict(limits)}

    @app.get("/drift")
    def drift(last: int | None = Query(None, ge=1, description="only the last N live scores")
              ) -> dict[str, Any]:
        with app.state.lock:
            live = list(app.state.live)
        live = live[-last:] if last else live
        value = psi(app.state.reference, live) if len(live) >= min_live else None
        return {"psi": value, "verdict": drift_verdict(value), "live_scores": len(live),
                "min_live": min_live, "reference_scores": len(app.state.reference)}

    @app.get("/model-card", response_class=PlainTextResponse)
    def card() -> PlainTextResponse:
        text = (Path(bundle_dir) / CARD_FILE).read_text(encoding="utf-8")
        return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(_Guard, max_body_bytes=limits.max_body_bytes)
    return app


# --- a real server process --------------------------------------------------------------------
class ServiceError(RuntimeError):
    """The service process did not come up (the message holds the end of its log)."""


class Service:
    """``python -m helpers.serve`` as a real uvicorn process on 127.0.0.1 (a free port),
    used as a context manager: it waits for ``/health`` and is stopped (SIGTERM, then
    SIGKILL) on exit. Its log, one JSON line per request, is ``log_path``."""

    def __init__(self, bundle_dir: str | Path, log_path: str | Path, threads: int | None = None,
                 limits: Limits = Limits(), port: int | None = None,
                 start_timeout_s: float = 60.0) -> None:
        from helpers.federated import free_port

        self.bundle_dir, self.log_path = Path(bundle_dir), Path(log_path)
        self.threads, self.limits, self.start_timeout_s = threads, limits, start_timeout_s
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "helpers.serve", "--model", str(self.bundle_dir),
               "--host", "127.0.0.1", "--port", str(self.port),
               "--max-texts", str(self.limits.max_texts), "--max-chars", str(self.limits.max_chars),
               "--max-body-bytes", str(self.limits.max_body_bytes)]
        return cmd + (["--threads", str(self.threads)] if self.threads else [])

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.is_file():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def start(self) -> "Service":
        import httpx

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "w") as out:  # the child keeps its own handle
            self.process = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        atexit.register(self.stop)  # a kernel that exits (or restarts) takes its server along
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceError(f"the service exited with {self.process.returncode} while "
                                   f"starting:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise ServiceError(f"no answer from {self.url}/health within {self.start_timeout_s:.0f} s:"
                           f"\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def requests_logged(self) -> list[dict[str, Any]]:
        """The service's request log lines, parsed."""
        rows = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            start = line.find('{"event": "request"')
            if start >= 0:
                rows.append(json.loads(line[start:]))
        return rows

    def __enter__(self) -> "Service":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# --- load test --------------------------------------------------------------------------------
async def load_test(url: str, payloads: Sequence[dict[str, Any]], requests: int, concurrency: int,
                    time_limit_s: float = 30.0, path: str = "/predict") -> dict[str, Any]:
    """POST ``requests`` bodies (cycling through ``payloads``) to ``url + path`` from
    ``concurrency`` workers sharing one httpx.AsyncClient; stops sending at ``time_limit_s``.
    Returns p50/p95/p99/mean latency in ms, throughput (requests per second), the status
    counts, 5xx and transport errors, and the per-request latencies."""
    import httpx

    if requests < 1 or concurrency < 1:
        raise ValueError(f"requests and concurrency must be at least 1, got {requests}, "
                         f"{concurrency}")
    if not payloads:
        raise ValueError("payloads is empty: give at least one request body")
    counter = iter(range(requests))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    transport_errors = 0
    deadline = time.perf_counter() + time_limit_s
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=time_limit_s) as client:

        async def worker() -> None:
            nonlocal transport_errors
            for i in counter:
                if time.perf_counter() > deadline:
                    return
                start = time.perf_counter()
                try:
                    r = await client.post(path, json=payloads[i % len(payloads)])
                except httpx.HTTPError:
                    transport_errors += 1
                    continue
                latencies.append((time.perf_counter() - start) * 1000)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    lat = np.asarray(latencies) if latencies else np.asarray([np.nan])
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    return {"concurrency": concurrency, "requests": len(latencies) + transport_errors,
            "completed": len(latencies), "seconds": elapsed, "rps": len(latencies) / elapsed,
            "p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99),
            "mean_ms": float(np.nanmean(lat)),
            "errors_5xx": sum(n for s, n in statuses.items() if s >= 500),
            "transport_errors": transport_errors, "statuses": statuses,
            "latencies_ms": latencies}


def off_the_loop(fn: Callable[[], Any]) -> Any:
    """``fn()``, in a helper thread when this thread already runs an event loop (a notebook's
    kernel does): ``asyncio.run`` and Playwright's sync API refuse to run inside one."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["out"] = fn()
        except BaseException as err:  # handed back to the caller below
            box["err"] = err

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "err" in box:
        raise box["err"]
    return box["out"]


def run_load_test(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """``load_test`` from synchronous code, a notebook included."""
    return off_the_loop(lambda: asyncio.run(load_test(*args, **kwargs)))


# --- the page in a browser ---------------------------------------------------------------------
def chromium_path() -> str | None:
    """The system's Chromium (Debian's ``chromium`` package), or None."""
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


def require_chromium() -> str:
    """``chromium_path()``, or FileNotFoundError naming the fix (``make setup`` installs it)."""
    executable = chromium_path()
    if executable is None:
        raise FileNotFoundError("no chromium on this machine: `make setup` installs Debian's "
                                "chromium where apt and root are available")
    return executable


def page_check(url: str, sentence: str, screenshot: str | Path | None = None,
               timeout_s: float = 20.0) -> dict[str, Any]:
    """Open the service's page in headless Chromium (Playwright driving the system's browser
    through ``executable_path``), type ``sentence``, press the button and wait for the
    prediction and its token scores. Returns the label, probability and tokens shown, and every
    console error; saves a ``screenshot`` when given a path.

    Raises:
        FileNotFoundError: no Chromium on this machine (``make setup`` installs Debian's).
    """
    executable = require_chromium()

    def visit() -> dict[str, Any]:
        from playwright.sync_api import sync_playwright

        errors: list[str] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 900, "height": 560})
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(url.rstrip("/") + "/")
                page.fill("#text", sentence)
                page.click("#go")
                page.wait_for_function("document.querySelectorAll('#tokens span').length > 0",
                                       timeout=timeout_s * 1000)
                shown = {"label": page.inner_text("#label"),
                         "probability": float(page.inner_text("#probability")),
                         "tokens": page.locator("#tokens span").all_inner_texts(),
                         "console_errors": errors}
                if screenshot:
                    page.screenshot(path=str(screenshot), full_page=True)
                return shown
            finally:
                browser.close()

    return off_the_loop(visit)


# --- formats and safe loading -----------------------------------------------------------------
def formats_table(model: Any, make_model: Callable[[], Any], args: tuple[Any, ...],
                  input_names: Sequence[str], dynamic: Mapping[str, Mapping[int, str]],
                  folder: str | Path, repeats: int = 3) -> Any:
    """Save ``model`` four ways in ``folder`` and measure each: file size, median load time
    (into a fresh ``make_model()`` for the two weight formats), the largest output difference
    from ``model`` on ``args``, and what loading needs. Formats: ``torch.save`` of the
    state_dict read back with ``torch.load(weights_only=True)``; safetensors; a
    ``torch.export`` program (``.pt2``); ONNX (read by ONNX Runtime)."""
    import pandas as pd
    import safetensors.torch
    import torch

    from helpers import compress
    from helpers.hardware import time_op

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    with torch.inference_mode():
        reference = model(*args).numpy()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    paths = {"state_dict (.pt)": folder / "model.pt", "safetensors": folder / "model.safetensors",
             "torch.export (.pt2)": folder / "model.pt2", "ONNX": folder / "model.onnx"}
    torch.save(state, paths["state_dict (.pt)"])
    safetensors.torch.save_file(state, paths["safetensors"])
    program = compress.export_program(model, args, input_names, dynamic)
    torch.export.save(program, paths["torch.export (.pt2)"])
    compress.export_onnx(program, args, paths["ONNX"], input_names, ["logits"])

    def weights(loader: Callable[[], dict]) -> Callable[[], Any]:
        def load() -> Any:
            fresh = make_model().eval()
            fresh.load_state_dict(loader())
            return fresh
        return load

    loaders = {
        "state_dict (.pt)": weights(lambda: torch.load(paths["state_dict (.pt)"], weights_only=True)),
        "safetensors": weights(lambda: safetensors.torch.load_file(paths["safetensors"])),
        "torch.export (.pt2)": lambda: torch.export.load(paths["torch.export (.pt2)"]).module(),
        "ONNX": lambda: compress.OrtModel(paths["ONNX"], threads=1),
    }
    needs = {"state_dict (.pt)": "PyTorch and the model's Python class",
             "safetensors": "the model's code, in any language with a safetensors reader",
             "torch.export (.pt2)": "PyTorch only (the graph is in the file)",
             "ONNX": "any ONNX runtime (C, C++, C#, Java, JavaScript, mobile)"}
    rows = []
    for fmt, load in loaders.items():
        loaded = load()
        with torch.inference_mode():
            out = loaded(*args)
        out = out.numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
        rows.append({"format": fmt, "size MB": compress.size_mb(paths[fmt]),
                     "load ms": 1000 * time_op(load, torch.device("cpu"), repeats, warmup=0),
                     "max |diff|": float(np.abs(out - reference).max()),
                     "loading needs": needs[fmt]})
    return pd.DataFrame(rows).set_index("format")


class _Payload:
    """Unpickling this calls ``Path.touch(marker)``: harmless, but it proves code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (Path.touch, (self.marker,))


def malicious_checkpoint(path: str | Path, marker: str | Path) -> Path:
    """Write a checkpoint that looks ordinary (a dict with a weight tensor) but whose pickle
    also carries a payload: loading it with ``pickle`` or ``torch.load(weights_only=False)``
    would create ``marker``. The safe paths refuse it (the notebook shows this)."""
    import torch

    path = Path(path)
    torch.save({"weight": torch.zeros(2, 2), "extra": _Payload(Path(marker))}, path)
    return path


# --- the model card ---------------------------------------------------------------------------
def chapter_figures(stem: str, executed_dir: str | Path | None = None) -> dict[str, Any]:
    """``notebook.chapter_figures``, its home since chapter 14 (kept here: the name is stable)."""
    from helpers.notebook import chapter_figures as _figures

    return _figures(stem, executed_dir)


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


# --- command line -----------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> None:
    """``python -m helpers.serve --model BUNDLE [--host H] [--port P] [--threads N]``."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m helpers.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a folder written by serve.export_bundle")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=None,
                        help="ONNX Runtime intra-op threads (default: all cores)")
    defaults = Limits()
    parser.add_argument("--max-texts", type=int, default=defaults.max_texts)
    parser.add_argument("--max-chars", type=int, default=defaults.max_chars)
    parser.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes)
    args = parser.parse_args(argv)
    if not Path(args.model).is_dir():
        parser.error(f"--model {args.model}: no such folder (write one with serve.export_bundle)")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    app = create_app(args.model, args.threads,
                     Limits(args.max_texts, args.max_chars, args.max_body_bytes))
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
