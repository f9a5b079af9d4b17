"""Results: a chapter's measured sentences, rendered from its run, and recorded for the tests.

Introduced in ``notebooks/00_setup.ipynb`` ("Key results").

``report(text, **values)`` shows a Markdown paragraph whose figures and verdicts come from the
code that measured them, so it reads the same in JupyterLab, Colab, VS Code, GitHub and the
book, with the values of *your* run::

    report("Test accuracy: **{acc:.3f}** ({verdict} than the baseline).", acc=acc, verdict=v)

The same call records every value it was given (in the output's metadata), and
``read_glued(path)`` gives a test every recorded value of an executed notebook, so a sentence
and the number a test checks are one and the same. ``record(**values)`` records values that no
sentence shows; ``glue(name, value)`` records one (the older name).

``chapter_figures`` finds a chapter's recorded results (this run's executed copy, else the
committed one); ``report_card`` (``notebooks/14_compute_and_cost.ipynb``) sets every chapter's
key results beside its anchors, and fails when one is missing.
"""

from __future__ import annotations

import ast
import inspect
import json
import numbers
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from . import chapters
from .paths import REPO_ROOT

__all__ = ["report", "record", "show_source", "glue", "read_glued", "chapter_figures", "KEY_RESULTS",
           "MissingResultError", "report_card", "EXECUTED_ENV", "RESULTS_KEY"]

_MIME_PREFIX = "application/papermill.record/"  # myst-nb's glue, in notebooks run before 2026-12
RESULTS_KEY = "dl_handbook_results"  # where report() and record() keep values in an output
# Set by the course runner for the kernel: the folder of this run's executed chapters, where a
# later chapter (13's model card, 14's report card) reads earlier chapters' results.
EXECUTED_ENV = "DL_HANDBOOK_EXECUTED"


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


def _checked(values: dict[str, Any]) -> dict[str, Any]:
    plain = {name: _plain(value) for name, value in values.items()}
    for name, value in plain.items():
        if not isinstance(value, bool | int | float | str) and value is not None:
            raise TypeError(f"{name}={value!r} is a {type(value).__name__}: record numbers, "
                            "booleans and strings (e.g. float(x), str(verdict))")
    return plain


def _publish(markdown: str, values: dict[str, Any]) -> None:
    from IPython.display import display

    display({"text/markdown": markdown, "text/plain": markdown}, raw=True,
            metadata={RESULTS_KEY: values})


def report(text: str, /, **values: Any) -> None:
    """Show ``text`` (Markdown with ``str.format`` fields) filled in with ``values``, and record
    every value for the tests and for later chapters.

    Raises:
        KeyError: a field in ``text`` has no value (the message names it).
        TypeError: a value is not a number, a boolean, a string or None.
    """
    plain = _checked(values)
    try:
        markdown = text.format(**plain)
    except KeyError as err:
        raise KeyError(f"report(): the text asks for {err.args[0]!r}, which is not among the "
                       f"values given ({sorted(plain)})") from None
    _publish(markdown.strip(), plain)


def show_source(obj: Any) -> None:
    """Show the source of a function or class of the course's library as a highlighted code
    block, where a chapter teaches it (on Colab the file sits in site-packages)."""
    from IPython.display import Markdown, display

    display(Markdown(f"```python\n{inspect.getsource(obj).rstrip()}\n```"))


def record(**values: Any) -> None:
    """Record ``values`` (hidden) for the tests and later chapters, without a sentence."""
    _publish("", _checked(values))


def glue(name: str, value: Any) -> Any:
    """Record one ``value`` under ``name`` (hidden) and return it; ``record`` takes several."""
    record(**{name: value})
    return _plain(value)


def read_glued(path: str | Path) -> dict[str, Any]:
    """Every value an executed notebook recorded (``report``, ``record``, ``glue``), by name.

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
            found.update(out.get("metadata", {}).get(RESULTS_KEY) or {})
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


def chapter_figures(stem: str, executed_dir: str | Path | None = None) -> dict[str, Any]:
    """The glued results of chapter ``stem`` (e.g. ``"04_bert_finetuning"``), and where they
    came from: this run's executed copy (``executed_dir``, else the ``DL_HANDBOOK_EXECUTED``
    folder the runner sets) when there is one, else the quick-profile outputs committed in
    ``notebooks/``. Returns ``{"values": {...}, "source": path, "profile": ...}``; an absent
    chapter gives empty values and ``source`` None."""
    folders = [Path(p) for p in (executed_dir, os.environ.get(EXECUTED_ENV)) if p]
    for folder in [*folders, REPO_ROOT / "notebooks"]:
        path = folder / f"{stem}.ipynb"
        if not path.is_file():
            continue
        values = read_glued(path)
        if not values:
            continue
        nb = json.loads(path.read_text(encoding="utf-8"))
        params = nb.get("metadata", {}).get("papermill", {}).get("parameters", {})
        return {"values": values, "source": str(path), "profile": params.get("profile", "quick")}
    return {"values": {}, "source": None, "profile": None}


class _KeyResults(Mapping[str, tuple[tuple[str, str, str, str], ...]]):
    """Each chapter's key results, as (recorded key, what it is, format spec, anchor), read
    from the chapters' declarations (``helpers/chapters``), in the course's order."""

    def __getitem__(self, stem: str) -> tuple[tuple[str, str, str, str], ...]:
        if stem not in chapters.REGISTRY:
            raise KeyError(stem)
        return tuple((k.key, k.what, k.fmt, k.anchor) for k in chapters.REGISTRY[stem].key_results)

    def __iter__(self) -> Iterator[str]:
        return iter(chapters.REGISTRY)

    def __len__(self) -> int:
        return len(chapters.REGISTRY)


# The course report card: each chapter's key results and the published figures beside them.
KEY_RESULTS: Mapping[str, tuple[tuple[str, str, str, str], ...]] = _KeyResults()


class MissingResultError(RuntimeError):
    """A chapter's key result is not among its glued values: the report card cannot be made."""


def _show(value: Any, spec: str) -> str:
    if isinstance(value, bool | str) or not spec:
        return str(value)
    return format(value, spec)


def _origin(found: Mapping[str, Any], own: bool) -> str:
    """Where a chapter's values came from, in words."""
    if own:
        return "this notebook"
    if not found.get("source"):
        return "not found"
    committed = Path(found["source"]).resolve().parent == (REPO_ROOT / "notebooks").resolve()
    return "committed outputs" if committed else "this build"


def report_card(stems: Iterable[str], key_results: Mapping[str, Any] = KEY_RESULTS,
                executed_dir: str | Path | None = None,
                own: Mapping[str, Mapping[str, Any]] | None = None, strict: bool = True) -> Any:
    """The course report card: one row per key result of every chapter in ``stems`` (the toc's
    order), its value from ``chapter_figures`` (or ``own[stem]``, the running notebook's own
    values), the profile and the copy it came from ("this build", "committed outputs"), and
    its anchor. ``strict=False`` shows a missing result
    as "missing" instead of raising (a chapter run on its own, e.g. on Colab, where the other
    chapters' executed copies are not at hand); ``make book`` and ``make test`` are strict.

    Raises:
        MissingResultError: a chapter with no entry in ``key_results``, or a key result that
            chapter did not glue; every missing one is named.
    """
    import pandas as pd

    rows, missing = [], []
    for stem in stems:
        if stem not in key_results:
            missing.append(f"{stem}: no key results declared (add it to helpers/chapters)")
            continue
        found = ({"values": dict(own[stem]), "profile": "this run", "source": None}
                 if own and stem in own else chapter_figures(stem, executed_dir))
        origin = _origin(found, own is not None and stem in own)
        for key, what, spec, anchor in key_results[stem]:
            if key not in found["values"]:
                missing.append(f"{stem}: {key} not glued (executed copy: {found.get('source')})")
                rows.append({"chapter": stem, "result": what, "value": "missing",
                             "anchor": anchor, "profile": found["profile"], "from": origin})
                continue
            rows.append({"chapter": stem, "result": what,
                         "value": _show(found["values"][key], spec), "anchor": anchor,
                         "profile": found["profile"], "from": origin})
    if missing and strict:
        raise MissingResultError("the report card lacks " + "; ".join(missing))
    return pd.DataFrame(rows)
