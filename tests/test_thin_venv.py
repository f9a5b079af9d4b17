"""Each clone imports its own code: two clones on one shared environment (tools/thin_venv.py).

The heavy environment is shared (the one these tests run in); each clone's thin ``.venv`` has
its own editable install and kernel spec. Two fixture clones, each with a ``helpers`` package
that says which clone it is, are set up one after the other (the second must not re-point the
first), then each runs a notebook with papermill from its own ``notebooks/`` folder, through
the kernel spec its own set-up wrote.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tools import thin_venv

SHARED = Path(sys.prefix)
if (SHARED / thin_venv.MARKER).is_file():  # these tests run in a thin venv: stand on its base
    SHARED = Path((SHARED / thin_venv.MARKER).read_text().strip())


def _clone(root: Path, who: str) -> Path:
    (root / "helpers").mkdir(parents=True)
    (root / "helpers" / "__init__.py").write_text(f"WHO = {who!r}\n")
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "fixture-course-{who.lower()}"\nversion = "0.1"\n'
        '[tool.setuptools]\npackages = ["helpers"]\n')
    nb = new_notebook(cells=[new_code_cell("import helpers\nprint(helpers.WHO, helpers.__file__)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (root / "notebooks").mkdir()
    nbformat.write(nb, root / "notebooks" / "which.ipynb")
    return root


def _set_up(clone: Path) -> Path:
    """What ``make setup`` does for a clone: the thin venv, then the editable install in it."""
    venv = thin_venv.make_thin_venv(SHARED, clone / ".venv", f"fixture {clone.name}")
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "-e", str(clone)], check=True, capture_output=True)
    return venv


def _kernel_says(clone: Path) -> str:
    """Run the clone's notebook with papermill from its own notebooks/ folder; what it printed."""
    out = clone / "ran.ipynb"
    subprocess.run([str(clone / ".venv" / "bin" / "papermill"), "-k", "python3", "--cwd",
                    str(clone / "notebooks"), str(clone / "notebooks" / "which.ipynb"), str(out)],
                   check=True, capture_output=True, cwd=clone / "notebooks")
    cell = json.loads(out.read_text())["cells"][0]
    return "".join(cell["outputs"][0]["text"])


@pytest.mark.skipif(not (SHARED / "bin" / "papermill").exists(), reason="needs papermill in the env")
def test_two_clones_on_one_shared_environment_each_import_their_own_helpers(tmp_path):
    a, b = _clone(tmp_path / "clone-a", "A"), _clone(tmp_path / "clone-b", "B")
    _set_up(a)
    _set_up(b)  # the last set-up used to win for every clone
    assert _kernel_says(a).split() == ["A", str(a / "helpers" / "__init__.py")]
    assert _kernel_says(b).split() == ["B", str(b / "helpers" / "__init__.py")]
    spec = json.loads((a / ".venv/share/jupyter/kernels/python3/kernel.json").read_text())
    assert spec["argv"][0] == str(a / ".venv" / "bin" / "python")  # a kernel spec of its own
    # the shared environment gained no editable install of either clone
    shared_site = next((SHARED / "lib").glob("python3*/site-packages"))
    assert not list(shared_site.glob("__editable__*fixture_course*"))


def test_a_thin_venv_replaces_the_old_link_into_the_cache(tmp_path):
    old = tmp_path / "clone" / ".venv"
    old.parent.mkdir()
    old.symlink_to(SHARED)  # the layout make setup used to leave
    venv = thin_venv.make_thin_venv(SHARED, old)
    assert venv.is_dir() and not venv.is_symlink()
    assert (venv / thin_venv.MARKER).read_text().strip() == str(SHARED)
    assert (venv / "bin" / "jupyter").read_text().startswith(f"#!{venv / 'bin' / 'python'}\n")


def test_a_missing_shared_environment_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Python environment at .*make setup"):
        thin_venv.make_thin_venv(tmp_path / "nowhere", tmp_path / ".venv")
