"""A chapter as the learners' frontends show it: plain Markdown, no MyST, clean outputs.

JupyterLab, Colab, VS Code and GitHub render a notebook's Markdown cells and its outputs, and
nothing of MyST: a ``{role}`...` `` or a ```` ```{directive} ```` fence shows as raw text. So a
chapter is checked the way those frontends read it: exported with nbconvert's plain Markdown
exporter, committed outputs included, then searched for what a learner must never see.

It also keeps the chapters' *report cells* tidy: a code cell whose first line is ``#@title``
renders a results paragraph (``helpers.notebook.report``); its source is collapsed in JupyterLab
(``jupyter.source_hidden``), shown as a form in Colab (``cellView: form``) and removed from the
book (the ``remove-input`` tag), so a learner reads the sentence, with its numbers, first.

``python -m tools.readable tidy notebooks/*.ipynb`` applies that metadata;
``python -m tools.readable check notebooks/*.ipynb`` lists every problem (``tests/test_readable.py``
runs it on the chapters and on the workshop copies).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import warnings
from pathlib import Path

import nbformat
from nbconvert import MarkdownExporter

from helpers.notebook import RESULTS_KEY

__all__ = ["TITLE", "RECORDING_CALLS", "MAX_RECORDING", "MIN_REPORTS", "FORBIDDEN",
           "plain_markdown", "text_problems", "recording_calls", "report_outputs", "tidy",
           "notebook_problems", "main"]

TITLE = "#@title"  # Colab's form syntax; the first line of a report cell
RECORDING_CALLS = ("report", "record", "glue")
MAX_RECORDING = 3  # recording calls in any one code cell: a teaching cell teaches
MIN_REPORTS = 3  # results paragraphs a chapter renders from its run
REPORT_METADATA = {"jupyter": {"source_hidden": True}, "cellView": "form"}

# What a learner must never see, and why.
FORBIDDEN = {
    r"\{[a-z][\w:-]*\}`[^`]*`": "a MyST role (raw in JupyterLab, Colab and GitHub)",
    r"```\{[a-z][\w:-]*\}": "a MyST directive fence",
    r"(?<![\d.])0%\|": "a progress bar saved at 0% (its text fallback)",
    r"\bnp\.(float|int|uint|bool|complex|str)\w*\(|\bnp\.(True|False)_": "a NumPy repr",
    r"filled in from this chapter's measured run time": "the Time placeholder",
    r"\bissues? \d+\b": "an issue number",
    r"shared/notes|environment notes|offline-sources note": "a note meant for maintainers",
    r"Please consider (to run )?pre-processing before quantization": "ONNX Runtime's warning",
}


def plain_markdown(path: str | Path) -> str:
    """The notebook as nbconvert's Markdown export writes it: Markdown cells, code, and the
    text of its saved outputs (Markdown outputs as Markdown, streams, plain-text results)."""
    nb = nbformat.read(str(path), as_version=4)
    with warnings.catch_warnings():  # nbconvert's template warns about an unused mime type
        warnings.simplefilter("ignore", UserWarning)
        body, _ = MarkdownExporter(exclude_raw=True).from_notebook_node(nb)
    return body


def text_problems(text: str, where: str = "") -> list[str]:
    """Each forbidden pattern found in ``text``, with the line it is on."""
    found = []
    for pattern, why in FORBIDDEN.items():
        for m in re.finditer(pattern, text):
            line = text[text.rfind("\n", 0, m.start()) + 1: text.find("\n", m.end())].strip()
            found.append(f"{where}: {why}: {line[:160]!r}")
    return found


def recording_calls(source: str) -> int:
    """How many ``report``/``record``/``glue`` calls a code cell makes."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython magics: count by name instead
        return len(re.findall(rf"\b(?:{'|'.join(RECORDING_CALLS)})\(", source))
    names = (getattr(n.func, "id", None) or getattr(n.func, "attr", None)
             for n in ast.walk(tree) if isinstance(n, ast.Call))
    return sum(name in RECORDING_CALLS for name in names)


def report_outputs(nb: nbformat.NotebookNode) -> list[str]:
    """The non-empty results paragraphs (Markdown outputs carrying recorded values)."""
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text = out.get("data", {}).get("text/markdown", "")
            if RESULTS_KEY in out.get("metadata", {}) and "".join(text).strip():
                found.append("".join(text))
    return found


def _is_report(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().startswith(TITLE)


def tidy(path: str | Path) -> bool:
    """Give every report cell of the notebook its collapsed-source metadata and the book's
    ``remove-input`` tag, and drop nbclient's per-cell timing metadata; True if it changed."""
    nb = nbformat.read(str(path), as_version=4)
    before = nbformat.writes(nb)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if not _is_report(cell):
            continue
        cell.metadata.update(REPORT_METADATA)
        tags = cell.metadata.setdefault("tags", [])
        if "remove-input" not in tags:
            tags.append("remove-input")
    changed = nbformat.writes(nb) != before
    if changed:
        nbformat.write(nb, str(path))
    return changed


def notebook_problems(path: str | Path, outputs: bool = True) -> list[str]:
    """Everything a learner's frontend would show wrongly in this notebook: forbidden text in
    its plain export, a code cell with more than ``MAX_RECORDING`` recording calls, a report
    cell without its metadata, and (``outputs``: a chapter with its committed outputs) fewer
    than ``MIN_REPORTS`` results paragraphs."""
    path = Path(path)
    nb = nbformat.read(str(path), as_version=4)
    found = text_problems(plain_markdown(path), path.name)
    for number, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if recording_calls(cell.source) > MAX_RECORDING:
            found.append(f"{path.name} cell {number}: {recording_calls(cell.source)} recording calls "
                         f"(at most {MAX_RECORDING}: record a section's results in its report cell)")
        if _is_report(cell) and (cell.metadata.get("jupyter", {}).get("source_hidden") is not True
                                 or "remove-input" not in cell.metadata.get("tags", [])):
            found.append(f"{path.name} cell {number}: a report cell without its collapsed-source "
                         "metadata (python -m tools.readable tidy)")
    if outputs and len(report_outputs(nb)) < MIN_REPORTS:
        found.append(f"{path.name}: {len(report_outputs(nb))} results paragraphs rendered from the "
                     f"run (at least {MIN_REPORTS})")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.readable")
    parser.add_argument("command", choices=["tidy", "check"])
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.command == "tidy":
        for path in args.notebooks:
            if tidy(path):
                print(f"tidied {path}")
        return 0
    problems = [p for path in args.notebooks for p in notebook_problems(path)]
    print("\n".join(problems) or f"{len(args.notebooks)} notebooks read cleanly")
    return 1 if problems else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
