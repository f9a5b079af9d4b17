"""Chapters opened in a real JupyterLab, in headless Chromium, as a learner opens them.

A JupyterLab server is started on 127.0.0.1 with a token (``helpers.process.LocalProcess``),
each notebook is opened in Debian's chromium through Playwright (no browser download, nothing
leaves the machine), and the page is read: the results paragraphs (Markdown outputs) it shows,
and any raw MyST role left in what a learner sees. A screenshot of each lands in ``shots``.
``tests/test_labcheck.py`` runs it on chapters 03 and 07 in ``make test``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from helpers.process import LocalProcess, free_port, url_ok
from helpers.serve import off_the_loop, require_chromium

__all__ = ["LabPage", "RAW_ROLE", "check_in_jupyterlab"]

RAW_ROLE = re.compile(r"\{[a-z][\w:-]*\}`[^`]*`")
# Render every cell (no windowing), no news pop-up: JupyterLab's user settings for the check.
SETTINGS = {"@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
            "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
                {"fetchNews": "false", "checkForUpdates": False}}
_OUTPUTS = """() => [...document.querySelectorAll(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output[data-mime-type="text/markdown"]')]
    .map(e => e.textContent.trim()).filter(t => t)"""
_SHOWN = """() => document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook')
    .textContent"""


@dataclass
class LabPage:
    """What JupyterLab showed of one notebook."""

    notebook: str
    results: list[str] = field(default_factory=list)  # the rendered Markdown outputs' text
    raw_roles: list[str] = field(default_factory=list)
    screenshot: str = ""

    def problems(self) -> list[str]:
        found = [f"{self.notebook}: a raw MyST role is visible: {r!r}" for r in self.raw_roles]
        if not any(re.search(r"\d", r) for r in self.results):
            found.append(f"{self.notebook}: no results paragraph with a number is shown")
        return found


def _settings(folder: Path) -> Path:
    for name, values in SETTINGS.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    return folder


def _read_pages(url: str, token: str, notebooks: list[str], shots: Path,
                timeout_s: float) -> list[LabPage]:
    from playwright.sync_api import sync_playwright

    pages = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=require_chromium(), args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.set_default_timeout(timeout_s * 1000)
            context.route("**/*", lambda route: route.continue_()
                          if route.request.url.startswith(url) else route.abort())
            page = context.new_page()
            for notebook in notebooks:
                # reset: a fresh workspace, so the notebooks opened before are not restored beside it
                page.goto(f"{url}lab/tree/{notebook}?reset&token={token}", wait_until="load")
                page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")
                page.wait_for_function(f"() => ({_OUTPUTS})().length > 0")
                result = LabPage(notebook, page.evaluate(_OUTPUTS))
                result.raw_roles = RAW_ROLE.findall(page.evaluate(_SHOWN))
                # the open notebook's first results paragraph with text (record() shows an empty one)
                first = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) '
                                     '.jp-OutputArea-output[data-mime-type="text/markdown"]'
                                     ).filter(has_text=re.compile(r"\S")).first
                first.scroll_into_view_if_needed()
                result.screenshot = str(shots / (Path(notebook).stem + ".png"))
                page.screenshot(path=result.screenshot)
                pages.append(result)
        finally:
            browser.close()
    return pages


def check_in_jupyterlab(root: str | Path, notebooks: list[str], shots: str | Path,
                        work: str | Path, timeout_s: float = 60.0) -> list[LabPage]:
    """Open ``notebooks`` (paths relative to ``root``) in a JupyterLab serving ``root``.

    ``work`` holds the server's settings, workspaces, runtime files and log. Raises
    ``helpers.process.ProcessError`` if JupyterLab does not start, and FileNotFoundError
    without Chromium.
    """
    work, shots = Path(work), Path(shots)
    shots.mkdir(parents=True, exist_ok=True)
    port, token = free_port(), secrets.token_hex(16)
    env = {"JUPYTERLAB_SETTINGS_DIR": str(_settings(work / "settings")),
           "JUPYTERLAB_WORKSPACES_DIR": str(work / "workspaces"),
           "JUPYTER_RUNTIME_DIR": str(work / "runtime")}
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={Path(root).resolve()}", "--LabApp.news_url=",
               "--ServerApp.disable_check_xsrf=False"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root; the server refuses without it
        command.append("--ServerApp.allow_root=True")
    url = f"http://127.0.0.1:{port}/"
    lab = LocalProcess(command, work / "jupyterlab.log", env=env, name="JupyterLab",
                       ready=lambda: url_ok(f"{url}api/status?token={token}"))
    with lab.start(timeout_s=timeout_s):
        return off_the_loop(lambda: _read_pages(url, token, notebooks, shots, timeout_s))
