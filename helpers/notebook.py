"""Glue: record a notebook's key results so the book's prose and the tests read them.

Introduced in ``notebooks/00_setup.ipynb`` ("Key results").

``glue("cnn_test_acc", acc)`` stores a value in the executed notebook (through myst-nb's
``glue``, the scrapbook format). The book prints it inline with
``{glue:text}`cnn_test_acc:.3f` ``; ``read_glued(path)`` gives a test every glued value of an
executed notebook, so a claim in the prose is the same number a test checks.
"""

from __future__ import annotations

import ast
import json
import numbers
from pathlib import Path
from typing import Any

__all__ = ["glue", "read_glued"]

_MIME_PREFIX = "application/papermill.record/"


def _plain(value: Any) -> Any:
    """NumPy/torch scalars become Python ones, so their text form reads back with literal_eval."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def glue(name: str, value: Any) -> Any:
    """Record ``value`` under ``name`` in this notebook's outputs (hidden) and return it."""
    from myst_nb import glue as _myst_glue

    value = _plain(value)
    _myst_glue(name, value, display=False)
    return value


def read_glued(path: str | Path) -> dict[str, Any]:
    """Every value glued in an executed notebook, by name.

    Raises:
        FileNotFoundError: the notebook does not exist (was it executed?).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no executed notebook at {path}: was it executed?")
    nb = json.loads(path.read_text(encoding="utf-8"))
    found: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get("scrapbook")
            if not meta:
                continue
            text = out.get("data", {}).get(_MIME_PREFIX + "text/plain")
            if text is None:
                continue
            text = "".join(text) if isinstance(text, list) else text
            try:
                found[meta["name"]] = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                found[meta["name"]] = text
    return found
