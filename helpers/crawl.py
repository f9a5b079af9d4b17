"""Collect data from a web source politely: robots.txt, a rate limit, retries, checksums.

Introduced in ``notebooks/01_data_collection.ipynb`` ("Collecting from a web source").

``serve_folder`` starts a small HTTP server on 127.0.0.1 (the notebook crawls that, so the
chapter runs offline); ``PoliteSession`` is the client; ``crawl_catalog`` fetches every item a
site's ``catalog.json`` lists and returns a manifest plus a log of what it skipped and why.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import threading
import time
import urllib.robotparser
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urljoin

import pandas as pd
import requests
from tqdm.auto import tqdm

__all__ = ["serve_folder", "PoliteSession", "CrawlResult", "crawl_catalog"]


@contextlib.contextmanager
def serve_folder(folder: Path, fail_first: dict[str, int] | None = None) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1 while the ``with`` block runs; yields the URL.

    ``fail_first={"/img/3.png": 2}`` answers the first two requests for that path with a
    500 error, to show what retries are for.
    """
    failures = dict(fail_first or {})
    requests_seen: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, *args):  # quiet: the notebook prints its own log
            pass

        def do_GET(self):
            requests_seen.append(self.path)
            if failures.get(self.path, 0) > 0:
                failures[self.path] -= 1
                self.send_error(500, "temporarily unavailable")
                return
            super().do_GET()

    handler = functools.partial(Handler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.requests_seen = requests_seen  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class PoliteSession:
    """An HTTP client that obeys robots.txt, waits between requests and retries failures.

    The wait is the larger of ``min_interval_s`` and the site's ``Crawl-delay``. Server
    errors (5xx) and dropped connections are retried up to ``retries`` times with a growing
    pause; a 4xx answer is final.
    """

    base_url: str
    user_agent: str = "dl-handbook-crawler/0.1 (+https://github.com/dl-handbook/dl-handbook)"
    min_interval_s: float = 0.1
    retries: int = 2
    timeout_s: float = 10.0
    requests_made: int = 0
    _last: float = field(default=0.0, repr=False)
    _robots: urllib.robotparser.RobotFileParser | None = field(default=None, repr=False)
    _crawl_delay: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._http = requests.Session()
        self._http.headers["User-Agent"] = self.user_agent
        robots = urllib.robotparser.RobotFileParser()
        answer = self._request(urljoin(self.base_url, "robots.txt"))
        # No robots.txt (404) means everything is allowed; a 5xx after retries raised already.
        text = answer.text if answer.ok else ""
        robots.parse(text.splitlines())
        self._robots = robots
        delay = robots.crawl_delay(self.user_agent)
        if delay is None:
            # The standard library reads whole seconds only and ignores "Crawl-delay: 0.5";
            # take the largest delay in the file then: erring on the polite side is safe.
            found = re.findall(r"(?im)^\s*crawl-delay\s*:\s*([0-9]*\.?[0-9]+)", text)
            delay = max(map(float, found), default=0.0)
        self._crawl_delay = float(delay)

    @property
    def interval_s(self) -> float:
        """Seconds kept between two requests."""
        return max(self.min_interval_s, self._crawl_delay)

    def allowed(self, url: str) -> bool:
        """Whether robots.txt lets this user agent fetch ``url``."""
        return self._robots is None or self._robots.can_fetch(self.user_agent, url)

    def _request(self, url: str) -> requests.Response:
        for attempt in range(self.retries + 1):
            wait = self._last + self.interval_s
            time.sleep(max(0.0, wait - time.monotonic()))
            self._last = time.monotonic()
            self.requests_made += 1
            try:
                answer = self._http.get(url, timeout=self.timeout_s)
            except requests.ConnectionError:
                if attempt == self.retries:
                    raise
            else:
                if answer.status_code < 500 or attempt == self.retries:
                    return answer
            time.sleep(0.2 * (attempt + 1))  # back off a little more each time
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, url: str) -> requests.Response:
        """GET ``url`` (relative to ``base_url``) politely; raises for disallowed or failed."""
        url = urljoin(self.base_url, url)
        if not self.allowed(url):
            raise PermissionError(f"robots.txt disallows {url} for {self.user_agent!r}")
        answer = self._request(url)
        answer.raise_for_status()
        return answer


@dataclass
class CrawlResult:
    """What a crawl kept (``manifest``, one row per saved file) and skipped (``skipped``)."""

    manifest: pd.DataFrame
    skipped: pd.DataFrame


def crawl_catalog(session: PoliteSession, out_dir: Path, catalog: str = "catalog.json",
                  progress: bool = True) -> CrawlResult:
    """Download every item of a site's catalog and verify each against its published sha256.

    The catalog is JSON: ``{"license": ..., "items": [{"url", "sha256", "label", ...}]}``.
    Each saved file gets a manifest row (source URL, local file, sha256, size, label, time);
    each item not saved gets a ``skipped`` row with the reason: disallowed by robots.txt,
    an HTTP error after retries, or a checksum mismatch. Nothing is dropped silently, and
    ``manifest.csv`` is written beside the files.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    listing = session.get(catalog).json()
    kept, skipped = [], []
    for item in tqdm(listing["items"], desc="crawling", disable=not progress):
        url = urljoin(session.base_url, item["url"])
        extra = {k: v for k, v in item.items() if k not in ("url", "sha256")}
        try:
            body = session.get(url).content
        except PermissionError:
            skipped.append({"url": url, "reason": "disallowed by robots.txt"})
            continue
        except requests.RequestException as err:
            skipped.append({"url": url, "reason": f"HTTP error after retries: {err}"})
            continue
        digest = hashlib.sha256(body).hexdigest()
        if digest != item["sha256"]:
            skipped.append({"url": url, "reason": f"checksum mismatch: got {digest[:12]}..., "
                                                  f"catalog says {item['sha256'][:12]}..."})
            continue
        path = out_dir / Path(item["url"]).name
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(body)
        tmp.replace(path)  # atomic: no half-written file under the final name
        kept.append({"url": url, "file": path.name, "sha256": digest, "bytes": len(body),
                     **extra, "fetched_at": pd.Timestamp.now(tz="UTC").isoformat()})
    manifest = pd.DataFrame(kept)
    manifest.to_csv(out_dir / "manifest.csv", index=False)
    return CrawlResult(manifest, pd.DataFrame(skipped, columns=["url", "reason"]))
