"""Shared fixtures: tiny notebooks for the runner, an isolated course root, a scripted server."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` need a CUDA GPU: without one they are skipped, with the reason."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (on a GPU machine: pytest -m cuda)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def pytest_addoption(parser):
    parser.addoption("--executed-dir", default="_build/executed",
                     help="where tests/test_notebooks.py writes the executed notebooks")
    parser.addoption("--book-html", default="_build/book/_build/html",
                     help="the built book that tests/test_book.py opens in a browser")
    parser.addoption("--screenshots", default="_build/book-check",
                     help="where tests/test_book.py saves a screenshot of each page")


@pytest.fixture
def executed_dir(request) -> Path:
    return Path(request.config.getoption("--executed-dir")).resolve()


@pytest.fixture(autouse=True)
def course_home(tmp_path, monkeypatch) -> Path:
    """Every test gets its own DL_HANDBOOK_HOME, so none writes to the user's cache."""
    home = tmp_path / "course-home"
    monkeypatch.setenv("DL_HANDBOOK_HOME", str(home))
    return home


def write_notebook(path: Path, *sources: str, budget: dict | None = None,
                   parameters: str = 'profile = "quick"') -> Path:
    """A notebook with a `parameters` cell (``parameters``) followed by ``sources``."""
    nb = new_notebook()
    params = new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    if budget:
        nb.metadata["handbook"] = {"time_limit_s": budget}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def tiny_course(tmp_path) -> Path:
    """A two-notebook course: book/_toc.yml + notebooks/, the same layout as the repository."""
    root = tmp_path / "course"
    write_notebook(root / "notebooks" / "a_ok.ipynb",
                   "from helpers.notebook import glue\n"
                   "glue('answer', 42)\nglue('ratio', 0.25)\nglue('name', profile)",
                   budget={"quick": 60})
    write_notebook(root / "notebooks" / "b_ok.ipynb", "print('hello')")
    (root / "book").mkdir(parents=True)
    (root / "book" / "intro.md").write_text("# Intro\n")
    (root / "book" / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n"
        "  - file: notebooks/a_ok\n  - file: notebooks/b_ok\n")
    return root


def pytest_terminal_summary(terminalreporter, config):
    """After the notebook runs, print the per-notebook wall-time table."""
    from tools.runner import TIMINGS_FILE, format_time_table

    out = Path(config.getoption("--executed-dir"))
    if (out / TIMINGS_FILE).is_file() and config.getoption("-m") == "notebook":
        terminalreporter.write_sep("=", "notebook wall time (quick profile)")
        terminalreporter.write_line(format_time_table(out))


class ScriptedServer:
    """An HTTP server on 127.0.0.1 serving ``files`` (path -> bytes).

    ``plan[path]`` scripts the fate of each successive request for ``path``; once the list
    is used up, requests succeed. Fates: ``"ok"``, ``"404"``, ``"500"``, ``"503"``,
    ``"429:N"`` (Too Many Requests with ``Retry-After: N``), ``"slow:S"`` (answer after S
    seconds) and ``"cut"`` (the connection drops halfway through the body).
    """

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.plan: dict[str, list[str]] = {}
        self.requests: list[str] = []
        self.times: list[float] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                outer.requests.append(self.path)
                outer.times.append(time.monotonic())
                fate = outer.plan.get(self.path, []).pop(0) if outer.plan.get(self.path) else "ok"
                body = outer.files.get(self.path)
                if fate.startswith("slow:"):
                    time.sleep(float(fate.split(":")[1]))
                    fate = "ok"
                if fate.startswith("429:"):
                    self.send_response(429)
                    self.send_header("Retry-After", fate.split(":")[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif fate in ("500", "503"):
                    self.send_error(int(fate), "try again")
                elif body is None or fate == "404":
                    self.send_error(404)
                else:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    try:
                        # "cut": the connection drops halfway through the body
                        self.wfile.write(body[: len(body) // 2] if fate == "cut" else body)
                    except (BrokenPipeError, ConnectionResetError):  # the client gave up
                        return
                    if fate == "cut":
                        self.wfile.flush()
                        self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add(self, path: str, body: bytes | str) -> str:
        """Serve ``body`` at ``path``; returns the full URL."""
        self.files[path] = body.encode() if isinstance(body, str) else body
        return self.url + path


@pytest.fixture
def http_server():
    srv = ScriptedServer()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
