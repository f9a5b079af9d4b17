"""The chapters of the course: the notebooks ``book/_toc.yml`` lists, in order.

``runner``, ``colab`` and ``workshop`` read the table of contents through here.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from helpers.paths import REPO_ROOT

__all__ = ["TOC", "toc_files", "toc_notebooks", "cell_source"]

TOC = REPO_ROOT / "book" / "_toc.yml"


def toc_files(entries: list[dict]) -> list[str]:
    files = []
    for entry in entries:
        if "file" in entry:
            files.append(entry["file"])
        for key in ("chapters", "sections", "parts"):
            files.extend(toc_files(entry.get(key, [])))
    return files


def toc_notebooks(toc: Path, root: Path = REPO_ROOT) -> list[Path]:
    """The notebooks listed in a Jupyter Book ``_toc.yml``, in order, as paths under ``root``.

    Entries are relative to the book source; those under ``notebooks/`` are the chapters.
    """
    data = yaml.safe_load(Path(toc).read_text(encoding="utf-8")) or {}
    files = [data["root"]] if "root" in data else []
    files += toc_files(data.get("chapters", []) + data.get("parts", []))
    found = []
    for entry in files:
        path = root / f"{entry.removesuffix('.ipynb')}.ipynb"
        if entry.startswith("notebooks/"):
            if not path.is_file():
                raise FileNotFoundError(f"_toc.yml lists {entry!r} but {path} does not exist")
            found.append(path)
    return found


def cell_source(cell: dict) -> str:
    """A notebook cell's source as one string (nbformat stores it as a list of lines or a string)."""
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
