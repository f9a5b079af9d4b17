"""Collect data from a web source politely: robots.txt, a rate limit, retries, checksums.

Introduced in ``notebooks/01_data_collection.ipynb`` ("Collecting from a web source").

``serve_folder`` starts a small HTTP server on 127.0.0.1 (the notebook crawls that, so the
chapter runs offline); ``PoliteSession`` is the client; ``crawl_catalog`` fetches every item a
site's ``catalog.json`` lists and returns a manifest plus a log of what it skipped and why.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import hashlib
import re
import threading
import time
import urllib.robotparser
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from urllib.parse import urljoin, urlsplit

import pandas as pd
import requests

from . import REPOSITORY, env, paths

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
            try:
                super().do_GET()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client left mid-answer (a browser moving to the next page)

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


def _retry_after_s(answer: requests.Response) -> float | None:
    """Seconds a 429/503 answer asks us to wait (``Retry-After``: seconds or an HTTP date)."""
    value = answer.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class PoliteSession:
    """An HTTP client that obeys robots.txt, waits between requests and retries failures.

    The wait is the larger of ``min_interval_s`` and the site's ``Crawl-delay``. Server
    errors (5xx), 429 Too Many Requests, dropped connections and timeouts are retried up to
    ``retries`` times with a growing pause; a ``Retry-After`` header sets the pause (up to
    ``max_retry_after_s``; a server asking for longer gets its error back). Other 4xx
    answers are final.

    robots.txt follows RFC 9309: a 4xx answer (no robots.txt) allows everything; a server
    error or 429 that outlasts the retries disallows everything. ``robots_status`` says which.
    """

    base_url: str
    user_agent: str = f"dl-handbook-crawler/0.1 (+{REPOSITORY})"
    min_interval_s: float = 0.1
    retries: int = 2
    timeout_s: float = 10.0
    max_retry_after_s: float = 60.0
    requests_made: int = 0
    robots_status: str = ""
    _last: float = field(default=0.0, repr=False)
    _robots: urllib.robotparser.RobotFileParser | None = field(default=None, repr=False)
    _crawl_delay: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._http = requests.Session()
        self._http.headers["User-Agent"] = self.user_agent
        robots = urllib.robotparser.RobotFileParser()
        answer = self._request(urljoin(self.base_url, "robots.txt"))  # raises if unreachable
        text = ""
        if answer.ok:
            text = answer.text
            self.robots_status = f"robots.txt read ({len(text.splitlines())} lines)"
        elif answer.status_code >= 500 or answer.status_code == 429:
            robots.disallow_all = True
            self.robots_status = (f"robots.txt unreachable (HTTP {answer.status_code} after "
                                  f"{self.retries + 1} tries): everything disallowed (RFC 9309)")
        else:
            self.robots_status = f"no robots.txt (HTTP {answer.status_code}): everything allowed"
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
            pause = 0.2 * (attempt + 1)  # back off a little more each time
            try:
                answer = self._http.get(url, timeout=self.timeout_s)
            except (requests.ConnectionError, requests.Timeout):
                if attempt == self.retries:
                    raise
            else:
                retryable = answer.status_code >= 500 or answer.status_code == 429
                if not retryable or attempt == self.retries:
                    return answer
                asked = _retry_after_s(answer)
                if asked is not None:
                    if asked > self.max_retry_after_s:
                        return answer  # longer than we are willing to wait: the caller sees it
                    pause = asked
            time.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, url: str) -> requests.Response:
        """GET ``url`` (relative to ``base_url``) politely; raises for disallowed or failed."""
        url = urljoin(self.base_url, url)
        if not self.allowed(url):
            raise PermissionError(f"robots.txt disallows {url} for {self.user_agent!r} "
                                  f"({self.robots_status})")
        answer = self._request(url)
        answer.raise_for_status()
        return answer


@dataclass
class CrawlResult:
    """What a crawl kept (``manifest``, one row per saved file) and skipped (``skipped``)."""

    manifest: pd.DataFrame
    skipped: pd.DataFrame


def _local_names(urls: list[str]) -> list[str]:
    """A unique, flat file name per URL: its base name, made unique with a short hash of the
    URL where two URLs share one (``a/1.png`` and ``b/1.png``)."""
    bases = [PurePosixPath(urlsplit(u).path).name for u in urls]
    counts = Counter(bases)
    names = []
    for url, base in zip(urls, bases, strict=True):
        if base and counts[base] == 1:
            names.append(base)
        else:
            tag = hashlib.sha1(url.encode()).hexdigest()[:8]
            stem, suffix = PurePosixPath(base).stem, PurePosixPath(base).suffix
            names.append(f"{stem}-{tag}{suffix}" if stem else tag)
    return names



def _write_manifest(rows: list[dict], path: Path) -> None:
    tmp = path.with_suffix(".csv.part")
    pd.DataFrame(rows).to_csv(tmp, index=False)
    tmp.replace(path)  # atomic: an interrupted write leaves the previous manifest


def crawl_catalog(session: PoliteSession, out_dir: Path, catalog: str = "catalog.json",
                  progress: bool = True) -> CrawlResult:
    """Download every item of a site's catalog and verify each against its published sha256.

    The catalog is JSON: ``{"license": ..., "items": [{"url", "sha256", "label", ...}]}``.
    Each saved file gets a manifest row (source URL, local file, sha256, size, label, time,
    and ``reused``); each item not saved gets a ``skipped`` row with the reason: no URL or
    no checksum in the catalog, disallowed by robots.txt, an HTTP error after retries, or a
    checksum mismatch. Nothing is dropped silently.

    ``manifest.csv`` is rewritten after every saved file, so an interrupted crawl keeps what
    it fetched. A re-run does not fetch again a file already on disk whose sha256 still
    matches the catalog (``reused`` is True in its row); one that no longer matches is
    fetched again. Local names are the URLs' base names, made unique where two collide.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / "manifest.csv"
    previous = {}
    if manifest_path.is_file():
        try:
            rows = pd.read_csv(manifest_path).to_dict("records")
        except pd.errors.EmptyDataError:  # an earlier crawl that kept nothing
            rows = []
        previous = {row["file"]: row for row in rows if "file" in row}
    listing = session.get(catalog).json()
    items = listing.get("items", [])
    names = _local_names([urljoin(session.base_url, str(i.get("url", ""))) for i in items])
    kept, skipped = [], []
    for item, name in zip(env.progress(items, "crawling", progress), names,
                          strict=True):
        if not item.get("url"):
            skipped.append({"url": "", "reason": f"no url in the catalog item {item!r}"})
            continue
        url = urljoin(session.base_url, item["url"])
        expected = item.get("sha256")
        if not expected:
            skipped.append({"url": url, "reason": "no sha256 in the catalog: cannot be "
                                                  "verified, so not fetched"})
            continue
        extra = {k: v for k, v in item.items() if k not in ("url", "sha256")}
        path = out_dir / name
        if path.is_file() and paths.sha256_file(path) == expected:
            old = previous.get(name, {})
            kept.append({"url": url, "file": name, "sha256": expected,
                         "bytes": path.stat().st_size, **extra,
                         "fetched_at": old.get("fetched_at", ""), "reused": True})
            _write_manifest(kept, manifest_path)
            continue
        try:
            body = session.get(url).content
        except PermissionError:
            skipped.append({"url": url, "reason": "disallowed by robots.txt"})
            continue
        except requests.RequestException as err:
            skipped.append({"url": url, "reason": f"HTTP error after retries: {err}"})
            continue
        digest = hashlib.sha256(body).hexdigest()
        if digest != expected:
            skipped.append({"url": url, "reason": f"checksum mismatch: got {digest[:12]}..., "
                                                  f"catalog says {expected[:12]}..."})
            continue
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(body)
        tmp.replace(path)  # atomic: no half-written file under the final name
        kept.append({"url": url, "file": name, "sha256": digest, "bytes": len(body), **extra,
                     "fetched_at": pd.Timestamp.now(tz="UTC").isoformat(), "reused": False})
        _write_manifest(kept, manifest_path)
    _write_manifest(kept, manifest_path)
    return CrawlResult(pd.DataFrame(kept), pd.DataFrame(skipped, columns=["url", "reason"]))
