"""The book: one bibliography, a glossary, linked prerequisites, and every built page opened in a
real browser (helpers.booksite; `make book-check` runs the last test after the build)."""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path

import pytest

from helpers import serve
from tools import booksite, runner

NOTEBOOKS = runner.toc_notebooks(runner.REPO_ROOT / "book" / "_toc.yml")
BOOK = runner.REPO_ROOT / "book"
needs_chromium = pytest.mark.skipif(serve.chromium_path() is None,
                                    reason="no chromium (apt-get install chromium; make setup does "
                                           "it as root)")


def _markdown(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]


def test_every_chapter_cites_the_one_bibliography_and_every_entry_is_cited():
    entries = set(re.findall(r"^@\w+\{([^,\s]+),", (BOOK / "references.bib").read_text(), re.M))
    cited = collections.defaultdict(set)
    for nb in NOTEBOOKS:
        text = "\n".join(_markdown(nb))
        for keys in re.findall(r"\{footcite(?::[a-z]+)?\}`([^`]+)`", text):
            cited[nb.stem].update(k.strip() for k in keys.split(","))
        assert cited[nb.stem], f"{nb.stem} cites nothing from book/references.bib"
        assert "```{footbibliography}" in text, f"{nb.stem} does not list its references"
    used = set().union(*cited.values())
    assert used - entries == set(), f"cited but not in references.bib: {sorted(used - entries)}"
    assert entries - used == set(), f"in references.bib but cited by no chapter: {sorted(entries - used)}"


def test_glossary_terms_are_defined_and_each_is_linked_from_a_chapter():
    glossary = (BOOK / "glossary.md").read_text()
    block = glossary.split("```{glossary}", 1)[1].split("```", 1)[0]
    terms = {line.strip() for line in block.splitlines() if line and not line.startswith(" ")}
    linked = set()
    for nb in NOTEBOOKS:
        for role in re.findall(r"\{term\}`([^`]+)`", "\n".join(_markdown(nb))):
            linked.add(re.search(r"<([^>]+)>$", role).group(1) if role.endswith(">") else role)
    assert linked - terms == set(), f"linked but not in the glossary: {sorted(linked - terms)}"
    assert terms - linked == set(), f"in the glossary but linked from no chapter: {sorted(terms - linked)}"


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
        '<p>The value <span class="pasted-text">0.91</span>.</p>')
    (root / "_sources" / "good.md").write_text("The value {glue:text}`acc:.2f`, and `{glue:text}` in code.")
    (root / "bad.html").write_text(
        '<h1 id="here">Bad</h1><img src="_images/missing.png"><a href="nowhere.html">x</a>'
        '<a href="good.html#gone">y</a><script>undefinedFunction()</script>'
        '<p><span class="pasted-text">1</span> and <span class="pasted-text"></span></p>'
        '<div class="cell tag_injected-parameters"></div>')
    (root / "_sources" / "bad.md").write_text("{glue:text}`a` {glue:text}`b` {glue}`c`")
    (root / "search.html").write_text('<div id="search-results"><p>Search finished</p><ul class="search">'
                                      '<li><a href="good.html?highlight=x">Good</a></li></ul></div>')
    return root


def test_links_and_glue_counts_are_read_from_disk(tmp_path):
    site = _site(tmp_path / "html")
    assert booksite.pages(site) == ["bad.html", "good.html", "search.html"]
    assert booksite.expected_glue(site, "good.html") == 1  # the role in code does not count
    assert booksite.expected_glue(site, "bad.html") == 3
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
    assert (bad.glue_expected, bad.glue_rendered, bad.injected_cells) == (3, 1, 1)
    problems = report.problems()
    assert "bad.html: image did not load: _images/missing.png" in problems
    assert any("3 glued values in the source, 1 rendered" in p for p in problems)
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
