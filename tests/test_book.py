"""The book: one bibliography, a glossary, linked prerequisites, and every built page opened in a
real browser (helpers.booksite; `make book-check` runs the last test after the build)."""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path

import pytest

from helpers import serve
from helpers.notebook import RESULTS_KEY
from tools import booksite, references, runner

NOTEBOOKS = runner.toc_notebooks(runner.REPO_ROOT / "book" / "_toc.yml")
BOOK = runner.REPO_ROOT / "book"
needs_chromium = pytest.mark.skipif(serve.chromium_path() is None,
                                    reason="no chromium (apt-get install chromium; make setup does "
                                           "it as root)")


def _markdown(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]


def test_every_chapter_cites_the_one_bibliography_and_every_entry_is_cited():
    works = references.load_bib()  # every entry has a url: a chapter cites it by linking it
    assert len({w.url for w in works.values()}) == len(works), "two entries share a url"
    cited = set()
    for nb in NOTEBOOKS:
        text = "\n".join(_markdown(nb))
        refs = text.split("## References", 1)
        assert len(refs) == 2, f"{nb.stem} has no References section"
        listed = re.findall(r"^- .+$", refs[1].split("\n## ", 1)[0], re.M)
        keys = references.cited_keys("\n".join(listed), works)
        assert keys, f"{nb.stem} lists no work of book/references.bib"
        unknown = [line for line in listed if not references.cited_keys(line, works)]
        assert not unknown, f"{nb.stem} lists works not in references.bib: {unknown}"
        for key in keys:  # each listed line is the entry's own rendering, note aside
            line = next(line for line in listed if works[key].url in line)
            assert line.startswith(references.reference_line(works[key]).rstrip(".")), line
        cited |= references.cited_keys(text, works)
    assert set(works) - cited == set(), f"in references.bib but cited by no chapter: {sorted(set(works) - cited)}"


def test_glossary_terms_are_defined_and_each_is_linked_from_a_chapter():
    terms = references.glossary_terms()
    assert terms, "book/glossary.md defines no term (## headings)"
    linked = set()
    for nb in NOTEBOOKS:
        linked |= references.linked_terms("\n".join(_markdown(nb)))
    assert linked - set(terms) == set(), f"linked but not in the glossary: {sorted(linked - set(terms))}"
    assert set(terms) - linked == set(), f"in the glossary but linked from no chapter: {sorted(terms[k] for k in set(terms) - linked)}"


def test_links_become_the_books_layout_when_staged():
    text = "[mixed precision](../book/glossary.md#mixed-precision) and [chapter 3](03_cnn_training.ipynb)"
    assert references.for_book(text) == ("[mixed precision](../glossary.md#mixed-precision) and "
                                         "[chapter 3](03_cnn_training.ipynb)")
    assert references.for_book("[12](../notebooks/12_scaling_out.ipynb)", "book") == \
        "[12](notebooks/12_scaling_out.ipynb)"
    # a root page quoting a chapter (the facilitator's guide)
    assert references.for_book("[profile](../book/glossary.md#profile)", "book") == \
        "[profile](glossary.md#profile)"
    # a rendered output's links are left as written by MyST-NB, so they name the built pages
    assert references.for_book("[law](../book/glossary.md#littles-law), [3](03_cnn_training.ipynb), "
                               "[web](https://example.org/a.md)", "output") == \
        "[law](../glossary.html#little-s-law), [3](03_cnn_training.html), [web](https://example.org/a.md)"


def test_prerequisites_link_the_chapters_they_name():
    stems = {nb.stem for nb in NOTEBOOKS}
    for nb in NOTEBOOKS:
        header = _markdown(nb)[0]
        prereq = re.search(r"\*\*Prerequisites:\*\*(.+?)(?:\n\n|$)", header, re.S).group(1)
        unlinked = re.sub(r"\[[^\]]*\]\([^)]*\)", "", prereq)
        assert not re.search(r"\bchapters? \d", unlinked), f"{nb.stem}: {prereq.strip()!r}"
        for target in re.findall(r"\]\(([\w-]+)\.ipynb\)", prereq):
            assert target in stems, f"{nb.stem} links {target}.ipynb, not a toc chapter"


# --- the browser check, on a small site with one of each fault --------------------------------
def _report_source(*sentences: str) -> str:
    """A tiny executed notebook whose report outputs are ``sentences``."""
    outputs = [{"output_type": "display_data", "data": {"text/markdown": t},
                "metadata": {RESULTS_KEY: {"x": 1}}} for t in sentences]
    return json.dumps({"cells": [{"cell_type": "code", "source": "", "outputs": outputs}]})


def _site(root: Path) -> Path:
    (root / "_sources").mkdir(parents=True)
    (root / "_static").mkdir()
    (root / "_static" / "ok.png").write_bytes(
        bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                      "1f15c4890000000d49444154789c6360f8cfc000000301010018dd8db0000000"
                      "0049454e44ae426082"))  # a 1x1 PNG
    (root / "index.html").write_text('<meta http-equiv="refresh" content="0; url=good.html">')
    (root / "good.html").write_text(
        '<h1 id="top">Good</h1><img src="_static/ok.png"><a href="bad.html#here">on</a>'
        '<a href="#top">top</a><img src="https://example.org/badge.svg">'  # external: not fetched
        '<p>Test accuracy: <strong>0.912</strong> on 10,000 images.</p>'
        # Sphinx's curly quote, a code span, and a formula as MathJax writes it
        '<p><span class="math"><span class="MathJax">T</span><span class="MJX_Assistive_MathML">T'
        '</span></span> is 1.5; seeded by <code>seed_everything(0)</code>, Python’s draws repeat.</p>')
    (root / "_sources" / "good.ipynb").write_text(_report_source(
        "Test accuracy: **0.912** on 10,000 images.", "",  # an empty one: record()
        "$T$ is **1.5**; seeded by `seed_everything(0)`, Python's draws repeat."))
    (root / "bad.html").write_text(
        '<h1 id="here">Bad</h1><img src="_images/missing.png"><a href="nowhere.html">x</a>'
        '<a href="good.html#gone">y</a><script>undefinedFunction()</script>'
        '<p>The verdict: {glue:text}`verdict`.</p><span class="math notranslate">\\(T\\)</span>'
        '<div class="cell tag_injected-parameters"></div>')
    (root / "_sources" / "bad.ipynb").write_text(_report_source("A [linked](x.html) sentence that never made it."))
    (root / "search.html").write_text('<div id="search-results"><p>Search finished</p><ul class="search">'
                                      '<li><a href="good.html?highlight=x">Good</a></li></ul></div>')
    return root


def test_links_and_report_sentences_are_read_from_disk(tmp_path):
    site = _site(tmp_path / "html")
    assert booksite.pages(site) == ["bad.html", "good.html", "search.html"]
    assert booksite.expected_reports(site, "good.html") == [
        "Test accuracy: 0.912 on 10,000 images.", "$T$ is 1.5 ; seeded by seed everything(0)"]
    assert booksite.expected_reports(site, "bad.html") == ["A linked sentence that never made it."]
    assert booksite.link_problems(site) == [
        "bad.html: -> _images/missing.png (no such file)",
        "bad.html: -> good.html#gone (no #gone in good.html)",
        "bad.html: -> nowhere.html (no such file)",
    ]
    (site / "index.html").write_text('<meta http-equiv="refresh" content="0; url=gone.html">')
    assert "index.html: -> gone.html (no such file)" in booksite.link_problems(site)


@needs_chromium
def test_the_browser_check_fails_on_a_missing_image_and_the_other_faults(tmp_path):
    site = _site(tmp_path / "html")
    report = booksite.check_site(site, tmp_path / "shots", search_term="value",
                                 search_expected="good.html")
    by_page = {p.page: p for p in report.pages}
    good, bad = by_page["good.html"], by_page["bad.html"]
    assert good.problems() == [], good.problems()  # the external badge is not counted
    assert bad.broken_images == ["_images/missing.png"]
    assert any("undefinedFunction" in e for e in bad.console_errors)
    assert bad.reports_missing == ["A linked sentence that never made it."]
    assert bad.raw_roles == ["{glue:text}`verdict`"]
    assert (bad.math_total, bad.math_untypeset, bad.injected_cells) == (1, 1, 1)  # no MathJax here
    problems = report.problems()
    assert "bad.html: image did not load: _images/missing.png" in problems
    assert "bad.html: a raw MyST role is visible: '{glue:text}`verdict`'" in problems
    assert any("1 of 1 formulas were not typeset" in p for p in problems)
    assert report.search_hits == ["good.html"]
    assert (tmp_path / "shots" / "bad.png").stat().st_size > 1000
    with pytest.raises(FileNotFoundError, match="build the book first"):
        booksite.check_site(tmp_path / "nothing-built")


def _distinctive_word(html: Path, page: str) -> str:
    """The commonest long word of ``page``'s prose that no other page's source contains."""
    def words(path: Path) -> list[str]:
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".ipynb":
            text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"]
                             if c["cell_type"] == "markdown")
        return re.findall(r"\b[A-Za-z]{7,}\b", re.sub(r"`[^`]*`|\([^)]*\)", " ", text))

    sources = html / "_sources"
    mine = sources / page.replace(".html", ".ipynb")
    others = set()
    for path in sources.rglob("*"):
        if path.is_file() and path != mine:
            others.update(w.lower() for w in words(path))
    counts = collections.Counter(w for w in words(mine) if w.lower() not in others)
    return counts.most_common(1)[0][0]


@pytest.mark.book
def test_every_page_of_the_built_book_works_in_a_browser(request):
    html = Path(request.config.getoption("--book-html")).resolve()
    if not (html / "index.html").is_file():
        pytest.fail(f"no built book in {html}: `make book-html` (or `make book`) builds it first")
    if serve.chromium_path() is None:
        pytest.skip("no chromium (apt-get install chromium; make setup does it as root)")
    last = f"notebooks/{NOTEBOOKS[-1].stem}.html"
    term = _distinctive_word(html, last)
    report = booksite.check_site(html, request.config.getoption("--screenshots"),
                                 search_term=term, search_expected=last)
    expected = {f"notebooks/{nb.stem}.html" for nb in NOTEBOOKS} | {"intro.html", "search.html"}
    assert expected <= {p.page for p in report.pages}
    assert not report.problems(), "\n".join(report.problems())
    print(f"{len(report.pages)} pages opened in Chromium; the search for {term!r} listed {last}; "
          f"screenshots in {request.config.getoption('--screenshots')}")
