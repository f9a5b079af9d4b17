"""The prediction service: a FastAPI app around a loaded bundle.

Taught in ``notebooks/13_serving.ipynb`` ("The service"). ``create_app`` builds it: its lifespan
loads one ONNX Runtime session with fixed threads; ``POST /predict``, ``POST /explain``,
``GET /health``, ``GET /drift``, ``GET /model-card`` and a page at ``/``. The endpoints are plain
``def``: FastAPI runs them in its threadpool, so inference never blocks the event loop. The
request and response models are defined here, once; the limits of the app being built
(``Limits``: texts per request, characters per text) are checked in each endpoint and answered
with a 422 naming the limit, and a body over ``max_body_bytes`` gets a 413 from ``_Guard``
before it is parsed. No torch here: the service needs onnxruntime, tokenizers and FastAPI.
"""

# No `from __future__ import annotations` here: FastAPI reads the request models' annotations
# of the endpoints, which must be real classes, not strings.

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from .bundle import (
    CARD_FILE,
    DEFAULT_LIMITS,
    Limits,
    drift_verdict,
    load_bundle,
    occlusion_scores,
    psi,
)

__all__ = ["PredictRequest", "PredictResponse", "ExplainRequest", "ExplainResponse",
           "check_texts", "create_app", "STATIC"]

STATIC = Path(__file__).with_name("static")
log = logging.getLogger("helpers.serve")


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[str] = Field(description="1 to Limits.max_texts texts, each at most "
                                         "Limits.max_chars characters")


class PredictResponse(BaseModel):
    labels: list[str]
    probabilities: list[float] = Field(description="probability of each returned label")
    model_version: str


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, description="at most Limits.max_chars characters")


class ExplainResponse(BaseModel):
    tokens: list[str]
    scores: list[float]
    label: str
    probability: float
    model_version: str


def _problem(texts: Sequence[str], limits: Limits) -> tuple[int | None, str] | None:
    """The first text (its index, or None for the list) that breaks ``limits``, and why."""
    if not texts:
        return None, "texts is empty: send at least one text"
    if len(texts) > limits.max_texts:
        return None, (f"{len(texts)} texts is over the limit of {limits.max_texts} per request "
                      "(Limits.max_texts): split the batch")
    for i, t in enumerate(texts):
        if len(t) > limits.max_chars:
            return i, (f"text {i} has {len(t)} characters, over the limit of {limits.max_chars} "
                       "(Limits.max_chars)")
        if not t.strip():
            return i, f"text {i} is blank"
    return None


def check_texts(texts: Sequence[str], limits: Limits, field: str = "texts") -> None:
    """Refuse texts that break ``limits`` with a 422, in FastAPI's validation-error shape.

    Raises:
        RequestValidationError: naming the limit (and its ``Limits`` field) that was broken.
    """
    found = _problem(texts, limits)
    if found is None:
        return
    index, message = found
    loc = ("body", field) if index is None or field != "texts" else ("body", field, index)
    raise RequestValidationError([{"type": "value_error", "loc": loc, "input": None,
                                   "msg": f"Value error, {message}", "ctx": {"error": message}}])


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


def _lifespan(bundle_dir: str | Path, threads: int | None, limits: Limits,
              live_window: int) -> Callable[[FastAPI], Any]:
    """Load the bundle once, when the server starts (a missing file stops the start-up with its
    name), and set up the live scores the drift check reads."""
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

    return lifespan


def _model_routes(app: FastAPI, limits: Limits) -> None:
    """``POST /predict`` and ``POST /explain``: plain ``def``, so they run in the threadpool."""

    @app.post("/predict", response_model=PredictResponse)
    def predict(request: PredictRequest) -> PredictResponse:
        check_texts(request.texts, limits)
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
        check_texts([request.text], limits, field="text")
        out = occlusion_scores(app.state.bundle, request.text)
        return ExplainResponse(**out, model_version=app.state.bundle.version)


def _info_routes(app: FastAPI, bundle_dir: str | Path, limits: Limits, min_live: int) -> None:
    """``GET /health``, ``/drift``, ``/model-card``, and the page at ``/``."""

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


def create_app(bundle_dir: str | Path, threads: int | None = None, limits: Limits = DEFAULT_LIMITS,
               live_window: int = 2000, min_live: int = 100) -> FastAPI:
    """The prediction service for ``export_bundle``'s folder, as a FastAPI app.

    The bundle is loaded in the lifespan (once, when the server starts; a missing file
    stops the start-up with its name). ``POST /predict`` takes ``{"texts": [...]}`` and
    returns labels, probabilities and the model version; ``POST /explain`` takes
    ``{"text": ...}`` and returns per-token scores (``occlusion_scores``); ``GET /health``;
    ``GET /drift`` (PSI of the last ``live_window`` predicted last-class scores, or of the
    last ``?last=N``, against the test set's, once ``min_live`` have been seen);
    ``GET /model-card`` (the bundle's markdown, read at each request); ``/`` the page.
    """
    app = FastAPI(title="dl-handbook text classifier",
                  lifespan=_lifespan(bundle_dir, threads, limits, live_window),
                  description="Chapter 13 of the deep-learning handbook.")
    _model_routes(app, limits)
    _info_routes(app, bundle_dir, limits, min_live)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(_Guard, max_body_bytes=limits.max_body_bytes)
    return app
