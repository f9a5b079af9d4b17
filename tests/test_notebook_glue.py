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


@pytest.mark.parametrize(
    ("value", "expected"),
    [(np.float32(0.5), 0.5), (np.int64(3), 3), (torch.tensor(2.5), 2.5), (True, True),
     ("cpu", "cpu"), (None, None)],
)
def test_glue_stores_plain_python_values(value, expected, monkeypatch):
    recorded = {}
    import myst_nb

    monkeypatch.setattr(myst_nb, "glue", lambda name, v, display: recorded.update({name: v}))
    assert notebook.glue("x", value) == expected
    assert recorded["x"] == expected and type(recorded["x"]) is type(expected)


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
