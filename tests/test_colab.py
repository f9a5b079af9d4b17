"""Colab: badges and set-up cells come from one place; every import has a declared provider."""

import json
import shutil

import pytest

import helpers
from tests.conftest import write_notebook
from tools import colab, runner

NOTEBOOKS = runner.toc_notebooks(runner.REPO_ROOT / "book" / "_toc.yml")
HELPERS = sorted((runner.REPO_ROOT / "helpers").glob("*.py"))


def test_every_chapter_has_the_badge_install_and_drive_cells_of_the_one_place():
    assert colab.check(NOTEBOOKS) == []
    cell = colab.install_cell()
    assert f'"git+{helpers.REPOSITORY}@{helpers.REF}"' in cell
    assert 'dl-handbook[course] @ {source}' in cell
    for package in ("foolbox==3.3.4", "scattertext==0.2.2"):  # requirements-nodeps.txt
        assert f'"{package}"' in cell
    assert colab.badge("03_cnn_training").endswith(
        f"/github/dl-handbook/dl-handbook/blob/{helpers.REF}/notebooks/03_cnn_training.ipynb)")


def test_the_cells_do_nothing_outside_colab():
    namespace = {}
    exec(colab.install_cell() + "\n" + colab.DRIVE_CELL, namespace)  # no pip, no Drive here
    assert namespace["KEEP_ON_DRIVE"] is False


def test_sync_rewrites_old_cells_and_check_finds_drift(tmp_path):
    nb_path = tmp_path / "notebooks" / "03_cnn_training.ipynb"
    nb_path.parent.mkdir()
    shutil.copy(NOTEBOOKS[3], nb_path)
    nb = json.loads(nb_path.read_text())
    nb["cells"][0]["source"] = ["# 3. A title\n", "\n", "[![Open In Colab](https://colab."
                                "research.google.com/assets/colab-badge.svg)](https://old/url)\n"]
    nb["cells"][1]["source"] = ["# Colab only: install the course helpers\n", "pass\n"]
    del nb["cells"][2]  # the Drive cell
    nb_path.write_text(json.dumps(nb))
    (tmp_path / "book").mkdir()
    shutil.copy(runner.REPO_ROOT / "book" / "_config.yml", tmp_path / "book")
    shutil.copy(runner.REPO_ROOT / "requirements-nodeps.txt", tmp_path)
    problems = colab.check([nb_path], tmp_path)
    assert len(problems) == 3 and "badge" in problems[0]
    assert colab.sync([nb_path], tmp_path) == ["03_cnn_training"]
    assert colab.check([nb_path], tmp_path) == []
    assert colab.sync([nb_path], tmp_path) == []  # idempotent
    bare = write_notebook(tmp_path / "notebooks" / "bare.ipynb", "x = 1")
    nb = json.loads(bare.read_text())
    nb["cells"].insert(0, {"cell_type": "markdown", "id": "title", "metadata": {},
                           "source": "# Bare\ntext"})
    bare.write_text(json.dumps(nb))
    colab.sync([bare], tmp_path)
    assert colab.check([bare], tmp_path) == []
    (tmp_path / "book" / "_config.yml").write_text("repository:\n  url: https://elsewhere\n")
    assert "book/_config.yml" in colab.check([bare], tmp_path)[0]


def test_every_notebook_import_is_provided_by_a_declared_dependency():
    declared = colab.declared_distributions(("course",))
    assert colab.undeclared_imports(NOTEBOOKS, declared) == {}
    # the helpers the notebooks import, and the runner and tests' own tools
    assert colab.undeclared_imports(HELPERS, colab.declared_distributions(("course", "dev"))) == {}
    assert {"torch", "numpy", "scikit-learn", "transformers", "pillow"} <= declared


def test_the_import_check_fails_on_an_undeclared_import(tmp_path):
    nb = write_notebook(tmp_path / "extra.ipynb",
                        "%matplotlib inline\nimport numpy as np\nimport tensorboard",
                        "from seaborn import objects\nimport no_such_module_xyz\n"
                        "from google.colab import drive\nimport json, helpers.train")
    assert colab.imported_modules(nb) == {"numpy", "tensorboard", "seaborn",
                                          "no_such_module_xyz", "google"}
    found = colab.undeclared_imports([nb], colab.declared_distributions(("course",)))
    assert found == {"extra.ipynb": ["no_such_module_xyz (from not installed)",
                                     "seaborn (from seaborn)",
                                     "tensorboard (from tensorboard)"]}


def test_the_cli(capsys):
    assert colab.main(["check"]) == 0
    assert "match" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        colab.main(["nonsense"])


def test_floor_pins_pin_every_declared_floor(capsys):
    pins = colab.floor_pins()
    assert "numpy==2.0" in pins and "transformers==4.46.1" in pins and "torch==2.4" in pins
    names = [p.split("==")[0] for p in pins]
    assert len(names) == len(set(names)) and all("==" in p for p in pins)
    assert colab.main(["floors"]) == 0 and capsys.readouterr().out.split() == pins
