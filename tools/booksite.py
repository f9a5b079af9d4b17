"""The built book, opened page by page in a real browser (``make test`` runs it after the build).

Used by ``tests/test_book.py`` (``make book-check``) and by ``python -m tools.booksite HTML_DIR``. The HTML folder is served on
127.0.0.1 and every page is opened in headless Chromium (Debian's ``chromium``, driven by
Playwright through ``executable_path``: no browser download). For each page it records:

* console errors and uncaught exceptions raised by the page's own scripts;
* images that did not load (external ones, such as the Colab badge, are not fetched: every
  request that leaves 127.0.0.1 is blocked, so the check runs the same offline);
* the results paragraphs a chapter rendered from its run (``helpers.notebook.report``): each must
  show on the page, and no raw MyST role (``{name}`...` ``) may be visible;
* formulas: every ``math`` element must be typeset by the local MathJax (no network);
* papermill's injected-parameters cell, which must not reach the page;
* internal links (and image and script paths) whose file or ``#anchor`` does not exist, read
  from the HTML on disk.

It saves a screenshot of the top of each page, and runs the search page for a term.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from helpers.crawl import serve_folder  # chapter 01's local server: a folder on 127.0.0.1
from helpers.notebook import RESULTS_KEY
from helpers.serve import off_the_loop, require_chromium

__all__ = ["PageReport", "SiteReport", "pages", "expected_reports", "link_problems", "check_site",
           "main"]

SKIP_DIRS = ("_static", "_sources", "_images", "_sphinx_design_static")
RAW_ROLE = re.compile(r"\{[a-z][\w:-]*\}`[^`]*`")


@dataclass
class PageReport:
    """What one page showed in the browser."""

    page: str
    console_errors: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    reports_expected: list[str] = field(default_factory=list)  # each one's opening words
    reports_missing: list[str] = field(default_factory=list)
    raw_roles: list[str] = field(default_factory=list)
    math_total: int = 0
    math_untypeset: int = 0
    injected_cells: int = 0
    screenshot: str = ""

    def problems(self) -> list[str]:
        found = [f"{self.page}: console error: {e}" for e in self.console_errors]
        found += [f"{self.page}: image did not load: {src}" for src in self.broken_images]
        found += [f"{self.page}: results paragraph not shown: {r!r}" for r in self.reports_missing]
        found += [f"{self.page}: a raw MyST role is visible: {r!r}" for r in self.raw_roles]
        if self.math_untypeset:
            found.append(f"{self.page}: {self.math_untypeset} of {self.math_total} formulas were not "
                         "typeset (is the local MathJax in mathjax/ at the site root?)")
        if self.injected_cells:
            found.append(f"{self.page}: shows papermill's injected-parameters cell")
        return found


@dataclass
class SiteReport:
    """Every page's report, the broken internal links, and the search result."""

    pages: list[PageReport]
    broken_links: list[str]
    search_term: str | None = None
    search_hits: list[str] = field(default_factory=list)
    search_expected: str | None = None

    def problems(self) -> list[str]:
        found = [p for page in self.pages for p in page.problems()] + list(self.broken_links)
        if self.search_expected and self.search_expected not in self.search_hits:
            found.append(f"search for {self.search_term!r} did not list {self.search_expected} "
                         f"(it listed {self.search_hits})")
        return found


_REFRESH = re.compile(r"""<meta[^>]+http-equiv=["']?refresh["']?[^>]+url=([^"'>\s]+)""", re.I)


def pages(html_dir: str | Path, redirects: bool = False) -> list[str]:
    """The book's pages: every ``.html`` file outside the build's asset folders, relative.
    Pages that only redirect (``index.html`` points at the root page) are left out unless
    ``redirects``."""
    root = Path(html_dir)
    found = [p for p in root.rglob("*.html")
             if not any(part in SKIP_DIRS for part in p.relative_to(root).parts)]
    return sorted(str(p.relative_to(root)) for p in found
                  if redirects or not _REFRESH.search(p.read_text(encoding="utf-8", errors="replace")))


def _plain(markdown: str) -> str:
    """What a reader sees of a Markdown paragraph: links, emphasis and code marks dropped."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    text = re.sub(r"[*`_|]", " ", text)
    return " ".join(text.split())


def _key(text: str) -> str:
    """Letters and digits only, lower case: what a paragraph says, whatever the page did to
    its punctuation (Sphinx's curly quotes), code marks and spacing."""
    return re.sub(r"[^0-9a-z]", "", text.lower())


def is_shown(expected: str, shown: str) -> bool:
    """Whether the page text ``shown`` says the opening words ``expected`` (from
    ``expected_reports``). Formulas (``$...$``) are skipped: MathJax writes them as it likes."""
    page = _key(shown)
    return all(_key(part) in page for part in re.split(r"\$[^$]*(?:\$|$)", expected))


def expected_reports(html_dir: str | Path, page: str, words: int = 8) -> list[str]:
    """The opening words of each results paragraph the page's source notebook rendered from its
    run (non-empty Markdown outputs carrying recorded values), read from ``_sources/``."""
    source = Path(html_dir) / "_sources" / Path(page).with_suffix(".ipynb")
    if not source.is_file():
        return []
    found = []
    for cell in json.loads(source.read_text(encoding="utf-8"))["cells"]:
        for out in cell.get("outputs", []):
            text = out.get("data", {}).get("text/markdown", "")
            text = "".join(text) if isinstance(text, list) else text
            if RESULTS_KEY in out.get("metadata", {}) and text.strip():
                found.append(" ".join(_plain(text).split()[:words]))
    return found


class _Refs(HTMLParser):
    """The ids a page defines and the local targets it refers to."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        refresh = _REFRESH.search(self.get_starttag_text() or "") if tag == "meta" else None
        if refresh:  # a redirect page's target
            self.refs.append(refresh.group(1))
        for key in ("id", "name"):
            if values.get(key) and (key == "id" or tag == "a"):
                self.ids.add(values[key])
        target = values.get("href") if tag in ("a", "link") else values.get("src") \
            if tag in ("img", "script") else None
        if target:
            self.refs.append(target)


def link_problems(html_dir: str | Path) -> list[str]:
    """Internal links, image and script paths of every page whose file or ``#anchor`` does not
    exist ("page: -> target (why)"). External URLs, ``mailto:`` and ``javascript:`` are skipped."""
    root = Path(html_dir).resolve()
    parsed: dict[Path, _Refs] = {}

    def parse(path: Path) -> _Refs:
        if path not in parsed:
            refs = _Refs()
            refs.feed(path.read_text(encoding="utf-8", errors="replace"))
            parsed[path] = refs
        return parsed[path]

    problems = []
    for page in pages(root, redirects=True):
        path = root / page
        for ref in parse(path).refs:
            parts = urlsplit(ref)
            if parts.scheme or parts.netloc or ref.startswith(("mailto:", "javascript:", "data:")):
                continue
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            if not target.is_relative_to(root) or not target.exists():
                problems.append(f"{page}: -> {ref} (no such file)")
            elif parts.fragment and target.suffix == ".html" \
                    and unquote(parts.fragment) not in parse(target).ids:
                problems.append(f"{page}: -> {ref} (no #{parts.fragment} in "
                                f"{target.relative_to(root)})")
    return sorted(set(problems))


_SETTLE_IMAGES = """async () => {
  for (const img of document.images) img.loading = "eager";
  await Promise.all([...document.images].map(img => img.complete ? null :
    new Promise(done => { img.addEventListener("load", done); img.addEventListener("error", done);
                          setTimeout(done, 5000); })));
  return [...document.images].filter(img => new URL(img.src, location.href).origin === location.origin
                                        && !(img.complete && img.naturalWidth > 0))
                             .map(img => img.getAttribute("src"));
}"""
# Formulas typeset by MathJax 2 leave a .MathJax (or MathJax_Display) element in each math span.
_MATH = """async () => {
  const maths = [...document.querySelectorAll("span.math, div.math")];
  const done = () => maths.filter(m => !m.querySelector(".MathJax, .MathJax_Display, .MathJax_SVG,"
                                                       + " .MathJax_CHTML, mjx-container")).length;
  for (let i = 0; i < 100 && maths.length && done(); i++) await new Promise(r => setTimeout(r, 100));
  return [maths.length, done()];
}"""


# MathJax 2 probes how the browser answers a web font that cannot load by asking for one at
# about:blank, and Chromium logs the refusal; expected, says MathJax (mathjax/MathJax#926).
MATHJAX_FONT_PROBE = "Access to font at 'about:blank'"


def check_site(html_dir: str | Path, screenshots: str | Path | None = None,
               search_term: str | None = None, search_expected: str | None = None,
               viewport: tuple[int, int] = (1280, 900), timeout_s: float = 30.0) -> SiteReport:
    """Open every page of the built book in headless Chromium; see the module docstring.

    ``search_expected`` is the page (e.g. ``"notebooks/14_compute_and_cost.html"``) that the
    search page must list for ``search_term``. Screenshots go to ``screenshots/<page>.png``.

    Raises:
        FileNotFoundError: no Chromium on this machine (``make setup`` installs Debian's), or no
            ``index.html`` in ``html_dir`` (build the book first: ``make book``).
    """
    from playwright.sync_api import sync_playwright


    html_dir = Path(html_dir)
    if not (html_dir / "index.html").is_file():
        raise FileNotFoundError(f"no index.html in {html_dir}: build the book first (`make book`)")
    executable = require_chromium()
    shots = Path(screenshots) if screenshots else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)

    def visit(base: str) -> tuple[list[PageReport], list[str]]:
        reports, hits = [], []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            try:
                context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
                context.set_default_timeout(timeout_s * 1000)
                # nothing leaves the machine: external fonts, badges and scripts are refused
                context.route("**/*", lambda route: route.continue_()
                              if route.request.url.startswith(base) else route.abort())
                page = context.new_page()
                current: list[PageReport] = []  # the page being visited

                def on_console(msg) -> None:
                    where = (msg.location or {}).get("url", "")
                    if msg.type == "error" and current and (not where or where.startswith(base)) \
                            and not msg.text.startswith(MATHJAX_FONT_PROBE):
                        current[-1].console_errors.append(msg.text)

                page.on("console", on_console)
                page.on("pageerror", lambda e: current[-1].console_errors.append(str(e)))
                for name in pages(html_dir):
                    report = PageReport(name, reports_expected=expected_reports(html_dir, name))
                    current.append(report)
                    page.goto(base + name, wait_until="load")
                    report.broken_images = page.evaluate(_SETTLE_IMAGES)
                    report.math_total, report.math_untypeset = page.evaluate(_MATH)
                    shown = " ".join(page.inner_text("body").split())
                    report.reports_missing = [r for r in report.reports_expected
                                              if not is_shown(r, shown)]
                    report.raw_roles = RAW_ROLE.findall(shown)
                    report.injected_cells = page.locator(".tag_injected-parameters").count()
                    if shots:
                        target = shots / (name.replace("/", "__").removesuffix(".html") + ".png")
                        page.screenshot(path=str(target))
                        report.screenshot = str(target)
                    reports.append(report)
                if search_term:
                    page.goto(f"{base}search.html?q={search_term}", wait_until="load")
                    page.wait_for_function(
                        "() => { const s = document.querySelector('#search-results p');"
                        " return s && !/Preparing|Searching/.test(s.textContent); }")
                    hits = [h.split("?")[0].split("#")[0] for h in page.eval_on_selector_all(
                        "#search-results ul.search li a", "els => els.map(a => a.getAttribute('href'))")]
                    if shots:
                        page.screenshot(path=str(shots / "search.png"))
            finally:
                browser.close()
        return reports, sorted(set(hits))

    with serve_folder(html_dir) as base:
        reports, hits = off_the_loop(lambda: visit(base))
    return SiteReport(reports, link_problems(html_dir), search_term, hits, search_expected)


def main(argv: list[str] | None = None) -> int:
    """``python -m tools.booksite HTML_DIR [--screenshots DIR] [--search TERM --expect PAGE]``:
    print every problem; exit 1 if there is one."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tools.booksite")
    parser.add_argument("html_dir", type=Path)
    parser.add_argument("--screenshots", type=Path)
    parser.add_argument("--search")
    parser.add_argument("--expect", help="the page the search must list")
    args = parser.parse_args(argv)
    report = check_site(args.html_dir, args.screenshots, args.search, args.expect)
    problems = report.problems()
    print("\n".join(problems) or f"{len(report.pages)} pages checked in Chromium: no problems")
    return 1 if problems else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
