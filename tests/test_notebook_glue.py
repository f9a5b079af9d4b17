import json

import numpy as np
import pytest
import torch

from helpers import notebook


def _fake_executed(tmp_path, outputs):
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "outputs": outputs}],
                                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def _glued(name, text):
    return {"output_type": "display_data", "metadata": {"scrapbook": {"name": name}},
            "data": {"application/papermill.record/text/plain": text}}


def test_read_glued_parses_values_and_skips_other_outputs(tmp_path):
    path = _fake_executed(tmp_path, [
        _glued("acc", "0.91"), _glued("device", "'cpu'"), _glued("odd", "np.float64(1.0)"),
        {"output_type": "stream", "name": "stdout", "text": "hi"},
        {"output_type": "display_data", "metadata": {"scrapbook": {"name": "img"}},
         "data": {"image/png": "..."}},
    ])
    assert notebook.read_glued(path) == {"acc": 0.91, "device": "cpu", "odd": "np.float64(1.0)"}


def test_read_glued_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="was it executed"):
        notebook.read_glued(tmp_path / "missing.ipynb")


@pytest.fixture
def published(monkeypatch):
    """What report/record/glue hand to IPython's display: (markdown, values) per call."""
    calls = []
    monkeypatch.setattr(notebook, "_publish", lambda markdown, values: calls.append((markdown, values)))
    return calls


@pytest.mark.parametrize(
    ("value", "expected"),
    [(np.float32(0.5), 0.5), (np.int64(3), 3), (torch.tensor(2.5), 2.5), (True, True),
     ("cpu", "cpu"), (None, None)],
)
def test_glue_stores_plain_python_values(value, expected, published):
    assert notebook.glue("x", value) == expected
    assert published[0][1]["x"] == expected and type(published[0][1]["x"]) is type(expected)
    assert published[0][0] == ""  # recorded, not shown


def test_report_renders_the_sentence_and_records_every_value(published):
    notebook.report("Accuracy **{acc:.3f}**: {verdict}.", acc=np.float64(0.81234), verdict="better",
                    n=np.int64(3))
    assert published == [("Accuracy **0.812**: better.", {"acc": 0.81234, "verdict": "better", "n": 3})]


def test_report_names_a_missing_value_and_refuses_an_array(published):
    with pytest.raises(KeyError, match="asks for 'acc'.*\\['verdict'\\]"):
        notebook.report("Accuracy {acc:.3f}: {verdict}", verdict="better")
    with pytest.raises(TypeError, match="scores=.* is a ndarray: record numbers"):
        notebook.record(scores=np.arange(3))
    assert published == []


def test_report_output_reads_back_from_an_executed_notebook(tmp_path):
    out = {"output_type": "display_data", "data": {"text/markdown": "Accuracy 0.812."},
           "metadata": {notebook.RESULTS_KEY: {"acc": 0.81234, "verdict": "better"}}}
    path = _fake_executed(tmp_path, [out, _glued("old", "1")])
    assert notebook.read_glued(path) == {"acc": 0.81234, "verdict": "better", "old": 1}


def test_every_glue_role_in_the_notebooks_has_a_valid_format():
    # `{glue:text}`key:.3f`` renders with Python's format spec; a typo such as `.3f}` only
    # surfaces as a warning in the book build, minutes later. Catch it here, statically.
    import re
    from pathlib import Path

    spec = re.compile(r"^[<>^=]?[+\- ]?#?0?\d*[,_]?(\.\d+)?[bcdeEfFgGnosxX%]?$")
    bad = []
    for path in sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            for role in re.findall(r"\{glue(?::\w+)?\}`([^`]*)`", "".join(cell["source"])):
                key, _, fmt = role.partition(":")
                if not re.fullmatch(r"\w+", key) or (fmt and not spec.match(fmt)):
                    bad.append(f"{path.name}: {role}")
    assert not bad, bad
