"""The code's shape: two packages with one direction, no import cycle, imports at the top,
small functions and modules, every learner module taught by a chapter that imports it, and a
wheel that holds the learners' package only."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("helpers", "tools")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(path: Path, name: str) -> list[tuple[str, bool]]:
    """(imported course module, at module level?) for every import of ``path``."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    lines = source.splitlines()
    # An import inside a function counts as at the top only where its line says which heavy
    # library it keeps out of a light process ("# heavy: torch; ..."), as the README allows.
    top = set(map(id, tree.body)) | {id(node) for node in ast.walk(tree)
                                     if isinstance(node, ast.Import | ast.ImportFrom)
                                     and "# heavy:" in lines[node.lineno - 1]}
    found = []
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.append((target, id(node) in top))
    return found


GRAPH = {name: _imports(path, name) for name, path in MODULES.items()}


def test_helpers_never_imports_tools():
    bad = [f"{m} imports {t}" for m, deps in GRAPH.items() if m.startswith("helpers")
           for t, _ in deps if t.startswith("tools")]
    assert bad == []


def test_imports_between_course_modules_stand_at_the_top_of_the_file():
    inner = [f"{m} imports {t} inside a function" for m, deps in GRAPH.items()
             for t, at_top in deps if not at_top]
    assert inner == []


def test_no_import_cycle():
    edges = {m: {t for t, _ in deps if not t.startswith(m + ".")} for m, deps in GRAPH.items()}
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return path + [node, nxt]
            if nxt not in state and (cycle := visit(nxt, path + [node])):
                return cycle
        state[node] = "done"
        return None

    for module in sorted(edges):
        if module not in state and (cycle := visit(module, [])):
            pytest.fail("import cycle: " + " -> ".join(cycle[cycle.index(cycle[-1]):]))


def _long_functions(path: Path) -> list[str]:
    """Functions whose body (docstring left out) is over MAX_FUNCTION_LINES lines."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body[1:] if ast.get_docstring(node) else node.body
            if body and body[-1].end_lineno - body[0].lineno + 1 > MAX_FUNCTION_LINES:
                found.append(node.name)
    return found


def _exceptions(path: Path) -> set[str]:
    """Functions a module's docstring names as shown whole on purpose ("Long on purpose: f")."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    match = re.search(r"Long on purpose:\s*([^\n.]+)", doc)
    return {n.strip(" `") for n in match.group(1).split(",")} if match else set()


@pytest.mark.parametrize("name", [m for m in MODULES if m.startswith("helpers")])
def test_learner_modules_are_short_with_short_functions(name):
    path = MODULES[name]
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines"
    assert set(_long_functions(path)) - _exceptions(path) == set()


def _chapters_importing(module: str) -> list[str]:
    short = module.split(".")[1]
    found = []
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        code = "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"]
                         if c["cell_type"] == "code")
        # an import, or a run of the module as a script (python -m helpers.ddp, torchrun -m ...)
        if re.search(rf"from helpers import [^\n]*\b{short}\b|import helpers\.{short}\b|"
                     rf"from helpers\.{short} import|[\"' ]helpers\.{short}[\"' ]", code):
            found.append(nb.stem)
    return found


@pytest.mark.parametrize("name", [m for m in MODULES if m.startswith("helpers.") and
                                  m.count(".") == 1 and not m.startswith("helpers.chapters")])
def test_each_learner_module_names_the_chapter_that_teaches_it_and_that_chapter_imports_it(name):
    doc = ast.get_docstring(ast.parse(MODULES[name].read_text(encoding="utf-8"))) or ""
    taught = re.findall(r"notebooks/(\w+)\.ipynb", doc)
    assert taught, f"{name}'s docstring names no chapter (notebooks/NN_name.ipynb)"
    importing = _chapters_importing(name)
    assert importing, f"no chapter imports {name}"
    assert set(taught) & set(importing), f"{name} names {taught}; imported by {importing}"


def test_the_wheel_holds_every_helpers_subpackage_and_nothing_of_tools(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    wheel = next(tmp_path.glob("dl_handbook-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.startswith(("tools/", "tests/", "notebooks/"))]
    packages = {str(p.relative_to(ROOT).parent) for p in (ROOT / "helpers").rglob("__init__.py")}
    for package in packages:
        assert f"{package}/__init__.py" in names, f"{package} is missing from the wheel"
    for path in (ROOT / "helpers").rglob("*.py"):
        assert str(path.relative_to(ROOT)) in names, f"{path.relative_to(ROOT)} is not in the wheel"
    assert any(n.startswith("helpers/") and n.endswith(".html") for n in names)  # package data
