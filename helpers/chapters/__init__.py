"""Every chapter, declared once: its profile settings, time budgets, key results and workload.

Introduced in ``notebooks/00_setup.ipynb`` ("How to run the course").

Each chapter has one module here, ``chNN.py``, holding one ``Chapter``. Everything else reads
these declarations:

* ``profiles.chapter_config(profile, section)``: the chapter's ``quick`` and ``full`` settings;
* ``notebook.KEY_RESULTS`` and ``notebook.report_card``: its key results and their anchors;
* ``budget.course_workloads``: its headline training run, for the cost model;
* the course runner: its time ``time_limit_s`` per profile;
* ``tests/bands/<stem>.py``: the bands its recorded results must fall in (found by ``stem``).

A new chapter is a notebook, a ``helpers`` module if it needs one, a ``chNN.py`` here, and a line
in ``book/_toc.yml``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["KeyResult", "Workload", "ConfigOf", "Flops", "Chapter", "REGISTRY", "get", "by_section",
           "declared"]

# section -> that chapter's configuration in the profile being planned (profiles.chapter_config)
ConfigOf = Callable[[str], Any]


class Flops(Protocol):
    """Training FLOPs per example of the course's models (``budget.ModelFlops`` counts them)."""

    def cnn(self, model: str, dataset: str) -> float: ...

    def text(self, model: str, max_length: int) -> float: ...


@dataclass(frozen=True)
class KeyResult:
    """One line of the course report card: a recorded value, what it is, how to print it
    (a format spec), and the published figure it stands beside ("-" where none applies)."""

    key: str
    what: str
    fmt: str = ""
    anchor: str = "-"


@dataclass(frozen=True)
class Workload:
    """A chapter's headline training run, for the cost model (``budget.plan``): what it is,
    how many examples pass through training (examples x epochs x runs), and the training FLOPs
    per example (0: no GPU training worth counting)."""

    chapter: str
    what: str
    examples: float
    flops_per_example: float

    @property
    def flops(self) -> float:
        return self.examples * self.flops_per_example


@dataclass(frozen=True)
class Chapter:
    """One chapter's facts.

    Attributes:
        stem: the notebook's name, e.g. ``"03_cnn_training"``.
        section: its key in the profiles, e.g. ``"cnn"`` (``chapter_config(profile, "cnn")``).
        quick, full: its settings in each profile (the same names in both).
        time_limit_s: the seconds a run may take, per profile (the runner fails one over twice that).
        key_results: its rows in the course report card.
        workload: ``(cfg, flops) -> Workload``, the chapter's headline training run for the
            cost model, from the profile's configurations (``cfg(section)``) and the models'
            FLOPs per example (``flops``); None counts as no training.
    """

    stem: str
    section: str
    quick: Mapping[str, Any]
    full: Mapping[str, Any]
    time_limit_s: Mapping[str, float]
    key_results: tuple[KeyResult, ...] = ()
    workload: Callable[[ConfigOf, Flops], Workload] | None = field(default=None, compare=False)

    def settings(self, profile: str) -> Mapping[str, Any]:
        """The chapter's settings in ``profile`` (``"quick"`` or ``"full"``)."""
        if profile not in ("quick", "full"):
            raise ValueError(f"unknown profile {profile!r}; valid profiles are 'quick', 'full'")
        return self.quick if profile == "quick" else self.full


def _discover() -> dict[str, Chapter]:
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        chapter = importlib.import_module(f"{__name__}.{info.name}").CHAPTER
        found[chapter.stem] = chapter
    return found


# stem -> Chapter, in the course's order (the modules' names sort like the toc)
REGISTRY: dict[str, Chapter] = _discover()


def get(stem: str) -> Chapter:
    """The chapter called ``stem``.

    Raises:
        KeyError: no chapter has that stem (the message lists them).
    """
    if stem not in REGISTRY:
        raise KeyError(
            f"no chapter {stem!r} is declared in helpers/chapters; declared: {sorted(REGISTRY)}"
        )
    return REGISTRY[stem]


def by_section() -> dict[str, Chapter]:
    """Every chapter by its profile section (``"cnn"`` -> chapter 03)."""
    return {c.section: c for c in REGISTRY.values()}


@contextmanager
def declared(chapter: Chapter) -> Iterator[Chapter]:
    """Add ``chapter`` to the registry for the ``with`` block (a test's fixture chapter)."""
    if chapter.stem in REGISTRY:
        raise ValueError(f"chapter {chapter.stem!r} is already declared")
    REGISTRY[chapter.stem] = chapter
    try:
        yield chapter
    finally:
        REGISTRY.pop(chapter.stem, None)
