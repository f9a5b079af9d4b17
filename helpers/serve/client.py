"""The service as a real process, a bounded load test, and its page in a real browser.

Taught in ``notebooks/13_serving.ipynb`` ("A real server", "Load", "The page"). ``Service``
starts ``python -m helpers.serve`` under uvicorn on 127.0.0.1 (a ``helpers.process``
``LocalProcess``: its own process group, its log, ready when ``/health`` answers) and stops it.
``load_test`` sends a fixed number of requests from a few concurrent workers, within a time
limit. ``page_check`` opens the service's page in Debian's chromium through Playwright.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..process import LocalProcess, ProcessError, free_port, url_ok
from .bundle import DEFAULT_LIMITS, Limits

__all__ = ["ServiceError", "Service", "load_test", "run_load_test", "off_the_loop",
           "chromium_path", "require_chromium", "page_check"]


class ServiceError(ProcessError):
    """The service process did not come up (the message holds the end of its log)."""


class Service:
    """``python -m helpers.serve`` as a real uvicorn process on 127.0.0.1 (a free port), used
    as a context manager: it waits for ``/health`` and is stopped (its whole process group:
    SIGTERM, then SIGKILL) on exit. Its log, one JSON line per request, is ``log_path``."""

    def __init__(self, bundle_dir: str | Path, log_path: str | Path, threads: int | None = None,
                 limits: Limits = DEFAULT_LIMITS, port: int | None = None,
                 start_timeout_s: float = 60.0) -> None:
        self.bundle_dir, self.log_path = Path(bundle_dir), Path(log_path)
        self.threads, self.limits, self.start_timeout_s = threads, limits, start_timeout_s
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = LocalProcess(self.command(), self.log_path, name="the service",
                                   ready=lambda: url_ok(self.url + "/health"))

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "helpers.serve", "--model", str(self.bundle_dir),
               "--port", str(self.port), "--max-texts", str(self.limits.max_texts),
               "--max-chars", str(self.limits.max_chars),
               "--max-body-bytes", str(self.limits.max_body_bytes)]
        return cmd + (["--threads", str(self.threads)] if self.threads else [])

    @property
    def process(self) -> subprocess.Popen | None:
        """The server's process (``process.poll()`` is None while it runs)."""
        return self.server.process

    def log_tail(self, lines: int = 20) -> str:
        return self.server.log_tail(lines)

    def start(self) -> Service:
        """Start it and wait for ``/health``.

        Raises:
            ServiceError: it exited while starting, or did not answer in time (with its log).
        """
        try:
            self.server.start(self.start_timeout_s)
        except ProcessError as err:
            raise ServiceError(str(err)) from None
        return self

    def stop(self) -> None:
        self.server.stop()

    def requests_logged(self) -> list[dict[str, Any]]:
        """The service's request log lines, parsed."""
        rows = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            start = line.find('{"event": "request"')
            if start >= 0:
                rows.append(json.loads(line[start:]))
        return rows

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


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


def chromium_path() -> str | None:
    """The system's Chromium (Debian's ``chromium`` package), or None."""
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
