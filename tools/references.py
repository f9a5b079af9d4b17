"""Citations and glossary terms as plain Markdown links, readable in every frontend.

The chapters are read in JupyterLab, Colab, VS Code and GitHub, none of which renders MyST, so
the notebooks hold ordinary links:

* a glossary term links its heading in ``book/glossary.md``:
  ``[mixed precision](../book/glossary.md#mixed-precision)``;
* a chapter's **References** list names each work with a link to it, rendered from the one
  bibliography, ``book/references.bib`` (``reference_line``):
  ``- Guo et al. (2017), [On Calibration of Modern Neural Networks](https://arxiv.org/abs/1706.04599): calibration.``
  A chapter cites an entry by linking its ``url``; ``cited_keys`` reads them back.

``for_book`` rewrites the repository-relative links for the book's layout when the book source
is staged (``tools.runner.stage_book``). ``tests/test_book.py`` checks that every linked term is
defined, every defined term is linked, every cited entry exists and every entry is cited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pybtex.backends.plaintext import Backend as PlainText
from pybtex.database import Entry, parse_file
from pybtex.richtext import Text

from helpers.paths import REPO_ROOT

__all__ = ["BIB", "GLOSSARY", "Work", "load_bib", "reference_line", "cited_keys", "slug",
           "glossary_terms", "linked_terms", "for_book"]

BIB = REPO_ROOT / "book" / "references.bib"
GLOSSARY = REPO_ROOT / "book" / "glossary.md"
# in a notebook under notebooks/: the glossary page, as the repository lays it out
GLOSSARY_LINK = "../book/glossary.md"
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


# render_as("text") looks its backend up among every installed package's entry points on each
# call: about 65 ms here, 40 s over the bibliography; one backend, made once, does the same.
_TEXT = PlainText()


def _plain(latex: str) -> str:
    return Text.from_latex(latex).render(_TEXT).strip()


@dataclass(frozen=True)
class Work:
    """One bibliography entry, as a chapter shows it."""

    key: str
    authors: str  # "Guo et al.", "Efron and Tibshirani", "PyTorch contributors"
    year: str
    title: str
    url: str

    @property
    def citation(self) -> str:
        return f"{self.authors} ({self.year})"


def _authors(entry: Entry) -> str:
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_plain(" ".join(p.last_names)) for p in people] or [_plain(entry.fields.get("title", "?"))]
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return f"{names[0]} and {names[1]}"
    return f"{names[0]} et al."


def load_bib(path: str | Path = BIB) -> dict[str, Work]:
    """Every entry of the bibliography, by key.

    Raises:
        ValueError: an entry without a ``url`` (a chapter cites an entry by linking it).
    """
    works = {}
    for key, entry in parse_file(str(path)).entries.items():
        url = entry.fields.get("url") or (f"https://doi.org/{entry.fields['doi']}"
                                          if "doi" in entry.fields else "")
        if not url:
            raise ValueError(f"{path}: entry {key!r} has no url (or doi): add the work's address")
        works[key] = Work(key, _authors(entry), entry.fields.get("year", "n.d."),
                          _plain(entry.fields.get("title", key)), url)
    return works


def reference_line(work: Work, note: str = "") -> str:
    """One item of a chapter's References list."""
    tail = f": {note.strip().rstrip('.')}." if note.strip() else "."
    return f"- {work.citation}, [{work.title}]({work.url}){tail}"


def cited_keys(markdown: str, works: dict[str, Work]) -> set[str]:
    """The entries a chapter's Markdown links (by their url)."""
    by_url = {w.url: k for k, w in works.items()}
    return {by_url[url] for _, url in _LINK.findall(markdown) if url in by_url}


def slug(heading: str) -> str:
    """The anchor GitHub and MyST give a heading: lower case, punctuation dropped, spaces as
    hyphens ("Mixed precision" -> "mixed-precision")."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def glossary_terms(path: str | Path = GLOSSARY) -> dict[str, str]:
    """The glossary's terms (its ``##`` headings), by anchor."""
    heads = re.findall(r"^## (.+)$", Path(path).read_text(encoding="utf-8"), re.M)
    return {slug(h): h for h in heads}


def linked_terms(markdown: str) -> set[str]:
    """The glossary anchors a chapter's Markdown links."""
    return {url.split("#", 1)[1] for _, url in _LINK.findall(markdown)
            if url.startswith(GLOSSARY_LINK + "#")}


_LOCAL_PAGE = re.compile(r"\]\((?!\w+:)([^)\s#]+)\.(?:md|ipynb)(?:#([^)\s]*))?\)")


def _built_link(match: re.Match) -> str:
    """A link to a ``.md``/``.ipynb`` page as the built site names it: the ``.html`` page, and
    for a glossary term the id Sphinx gave its heading ("Little's law": ``little-s-law``,
    where MyST's slug is ``littles-law``)."""
    from docutils.nodes import make_id

    path, anchor = match.group(1), match.group(2)
    if anchor and path.endswith("glossary"):
        anchor = make_id(glossary_terms().get(anchor, anchor))
    return f"]({path}.html" + (f"#{anchor})" if anchor else ")")


def for_book(markdown: str, page: str = "notebook") -> str:
    """Links as the book's source lays pages out: chapters in ``notebooks/``, the book's own
    pages (glossary, bibliography) at its root. ``page`` is ``"notebook"`` for a chapter's
    Markdown cells, ``"output"`` for the Markdown a chapter's code rendered (MyST-NB leaves an
    output's links as written, so they name the built ``.html`` pages), and ``"book"`` for a
    page of ``book/``."""
    if page == "output":
        return _LOCAL_PAGE.sub(_built_link, for_book(markdown))
    if page == "notebook":
        return markdown.replace("](../book/", "](../")
    # A page at the root; it may quote a chapter's text, whose links start from notebooks/.
    return markdown.replace("](../notebooks/", "](notebooks/").replace("](../book/", "](")
