import hashlib
import json
import time

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
