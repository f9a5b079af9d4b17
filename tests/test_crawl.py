import hashlib
import json
import time

import pandas as pd
import pytest
import requests

from helpers import crawl


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    (root / "img").mkdir(parents=True)
    (root / "private").mkdir()
    items = []
    for k, where in enumerate(["img", "img", "private", "img"]):
        body = f"image {k}".encode()
        (root / where / f"{k}.bin").write_bytes(body)
        items.append({"url": f"{where}/{k}.bin", "label": k % 2,
                      "sha256": hashlib.sha256(body).hexdigest()})
    items[3]["sha256"] = "f" * 64
    (root / "catalog.json").write_text(json.dumps({"items": items}))
    (root / "robots.txt").write_text("User-agent: *\nDisallow: /private/\nCrawl-delay: 0.05\n")
    return root


def test_crawl_keeps_verified_files_and_logs_every_skip(site, tmp_path):
    out = tmp_path / "out"
    with crawl.serve_folder(site, fail_first={"/img/1.bin": 2}) as base:
        session = crawl.PoliteSession(base, min_interval_s=0.01, retries=2)
        result = crawl.crawl_catalog(session, out, progress=False)
    assert result.manifest["file"].tolist() == ["0.bin", "1.bin"]  # 1.bin after two 500s
    assert (out / "1.bin").read_bytes() == b"image 1"
    reasons = dict(zip(result.skipped["url"].str.rsplit("/", n=1).str[-1],
                       result.skipped["reason"], strict=True))
    assert reasons["2.bin"] == "disallowed by robots.txt"
    assert reasons["3.bin"].startswith("checksum mismatch")
    assert not (out / "3.bin").exists() and not list(out.glob("*.part"))
    assert len(result.manifest) + len(result.skipped) == 4  # every item accounted for
    assert (out / "manifest.csv").is_file()
    # robots.txt + catalog + 0 + (1 three times) + 3; the private file is never requested
    assert session.requests_made == 7


def test_rate_limit_uses_the_larger_of_ours_and_the_crawl_delay(site):
    with crawl.serve_folder(site) as base:
        session = crawl.PoliteSession(base, min_interval_s=0.0, retries=0)
        assert session.interval_s == pytest.approx(0.05)
        start = time.monotonic()
        for _ in range(4):
            session.get("img/0.bin")
        assert time.monotonic() - start >= 3 * 0.05


def test_errors_after_retries_and_disallowed_paths(site):
    with crawl.serve_folder(site, fail_first={"/img/0.bin": 5}) as base:
        session = crawl.PoliteSession(base, min_interval_s=0.0, retries=1)
        with pytest.raises(requests.HTTPError, match="500"):
            session.get("img/0.bin")
        with pytest.raises(PermissionError, match="robots.txt disallows"):
            session.get("private/2.bin")
        with pytest.raises(requests.HTTPError, match="404"):
            session.get("img/missing.bin")
        result = crawl.crawl_catalog(session, site / "copy", progress=False)
        assert "HTTP error after retries" in result.skipped["reason"].iloc[0]


def test_a_site_without_robots_txt_allows_everything(tmp_path):
    (tmp_path / "a.txt").write_text("hi")
    with crawl.serve_folder(tmp_path) as base:
        session = crawl.PoliteSession(base, min_interval_s=0.0)
        assert session.allowed(base + "anything") and session.get("a.txt").text == "hi"


def test_connection_errors_are_retried_then_raised(tmp_path):
    with crawl.serve_folder(tmp_path) as base:
        pass  # the server is shut down: nothing listens on that port any more
    start = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        crawl.PoliteSession(base, min_interval_s=0.0, retries=1, timeout_s=2)
    assert time.monotonic() - start >= 0.2  # it backed off once before giving up


def _catalog(server, bodies: dict[str, bytes], **extra_items) -> None:
    items = [{"url": path.lstrip("/"), "sha256": hashlib.sha256(body).hexdigest(), "label": 0}
             for path, body in bodies.items()]
    for path, body in bodies.items():
        server.add(path, body)
    server.add("/catalog.json", json.dumps({"items": items + list(extra_items.values())}))


def test_unreachable_robots_txt_disallows_everything(http_server):
    # RFC 9309 2.3.1: 4xx (e.g. no robots.txt) allows all; a 5xx after retries disallows all
    http_server.add("/a.txt", "hi")
    http_server.plan["/robots.txt"] = ["503"] * 3
    session = crawl.PoliteSession(http_server.url + "/", min_interval_s=0.0, retries=2)
    assert http_server.requests.count("/robots.txt") == 3
    assert not session.allowed(http_server.url + "/a.txt")
    assert "503" in session.robots_status and "disallow" in session.robots_status
    with pytest.raises(PermissionError, match="robots.txt"):
        session.get("a.txt")
    assert "/a.txt" not in http_server.requests
    http_server.plan["/robots.txt"] = ["503"]  # a transient 5xx that a retry gets past
    session = crawl.PoliteSession(http_server.url + "/", min_interval_s=0.0, retries=2)
    assert session.allowed(http_server.url + "/a.txt")  # 404 after the retry: allow all


def test_same_file_name_under_two_urls_keeps_both(http_server, tmp_path):
    _catalog(http_server, {"/a/1.png": b"one", "/b/1.png": b"two", "/c/2.png": b"three"})
    session = crawl.PoliteSession(http_server.url + "/", min_interval_s=0.0)
    result = crawl.crawl_catalog(session, tmp_path, progress=False)
    files = result.manifest["file"].tolist()
    assert len(set(files)) == 3 and "2.png" in files
    assert sorted((tmp_path / f).read_bytes() for f in files) == [b"one", b"three", b"two"]


def test_items_without_a_checksum_or_url_are_logged_skips(http_server, tmp_path):
    http_server.add("/x.bin", b"x")
    _catalog(http_server, {"/ok.bin": b"ok"}, nosum={"url": "x.bin", "label": 1},
             nourl={"sha256": "0" * 64})
    session = crawl.PoliteSession(http_server.url + "/", min_interval_s=0.0)
    result = crawl.crawl_catalog(session, tmp_path, progress=False)
    assert result.manifest["file"].tolist() == ["ok.bin"]
    reasons = result.skipped["reason"].tolist()
    assert any("no sha256" in r for r in reasons) and any("no url" in r for r in reasons)
    assert "/x.bin" not in http_server.requests  # nothing fetched that cannot be verified


def test_429_retry_after_is_honoured_and_timeouts_are_retried(http_server):
    http_server.add("/x.bin", b"x")
    http_server.plan["/x.bin"] = ["429:1"]
    session = crawl.PoliteSession(http_server.url + "/", min_interval_s=0.0, retries=2,
                                  timeout_s=0.5)
    assert session.get("x.bin").content == b"x"
    first, second = [t for p, t in zip(http_server.requests, http_server.times, strict=True)
                     if p == "/x.bin"]
    assert second - first >= 1.0  # waited as long as the server asked
    http_server.plan["/x.bin"] = ["slow:1.5"]  # the first answer comes after the timeout
    assert session.get("x.bin").content == b"x"
    http_server.plan["/x.bin"] = ["429:3600"]  # asks for more than we are willing to wait
    with pytest.raises(requests.HTTPError, match="429"):
        session.get("x.bin")


def test_interrupted_crawl_keeps_its_manifest_and_a_rerun_skips_verified_files(http_server,
                                                                               tmp_path):
    bodies = {f"/img/{k}.bin": f"image {k}".encode() for k in range(4)}
    _catalog(http_server, bodies)

    class Cut(crawl.PoliteSession):
        def get(self, url):
            if url.endswith("/img/2.bin"):
                raise KeyboardInterrupt  # the user pressed stop
            return super().get(url)

    with pytest.raises(KeyboardInterrupt):
        crawl.crawl_catalog(Cut(http_server.url + "/", min_interval_s=0.0), tmp_path,
                            progress=False)
    assert pd.read_csv(tmp_path / "manifest.csv")["file"].tolist() == ["0.bin", "1.bin"]
    (tmp_path / "1.bin").write_bytes(b"tampered")  # a local file that no longer verifies
    seen = len(http_server.requests)
    session = crawl.PoliteSession(http_server.url + "/", min_interval_s=0.0)
    result = crawl.crawl_catalog(session, tmp_path, progress=False)
    assert sorted(result.manifest["file"]) == ["0.bin", "1.bin", "2.bin", "3.bin"]
    fetched = http_server.requests[seen:]
    assert "/img/0.bin" not in fetched and "/img/1.bin" in fetched  # verified one reused
    assert (tmp_path / "1.bin").read_bytes() == b"image 1"
    assert result.manifest.set_index("file").loc["0.bin", "reused"]
    assert len(pd.read_csv(tmp_path / "manifest.csv")) == 4


def test_a_crawl_that_keeps_nothing_can_be_run_again(http_server, tmp_path):
    http_server.add("/catalog.json", json.dumps({"items": [{"url": "gone.bin",
                                                            "sha256": "0" * 64}]}))
    session = crawl.PoliteSession(http_server.url + "/", min_interval_s=0.0, retries=0)
    for _ in range(2):
        result = crawl.crawl_catalog(session, tmp_path, progress=False)
        assert result.manifest.empty and "404" in result.skipped["reason"].iloc[0]
