"""Workshop mode: learner notebooks generated from the chapters, never maintained by hand.

Used by ``make workshop``; the facilitator's guide page of the book (``facilitator_page``,
written by ``make book``) is generated from the same sources: each chapter's header (title,
objectives, prerequisites), its exercises, the measured run times, and the course's own
exception classes.

A chapter marks its solutions in one of two ways:

* a whole cell tagged ``solution`` (the collapsed "Solutions" dropdown after the exercises);
* inside a code cell, the lines between ``# BEGIN SOLUTION`` and ``# END SOLUTION``.

``student_notebook`` replaces each with an exercise stub: a tagged solution cell becomes a
code cell holding ``...`` under a comment that points back at the exercises; the marked lines
of a code cell become ``...``, keeping the lines around them (the instructions). Outputs and
execution counts are cleared (nbconvert's ``ClearOutputPreprocessor``), the set-up cells stay.
``find_leaks`` names any solution text left in a notebook, tagged or not, so that a solution
someone forgot to tag fails the build instead of reaching the learners.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers import chapters
from helpers.paths import REPO_ROOT

from .toc import toc_notebooks

__all__ = ["SOLUTION_TAG", "EXERCISE_TAG", "student_notebook", "find_leaks", "write_workshop",
           "Outline", "outline", "prerequisite_edges", "schedule", "failure_modes",
           "facilitator_page"]

SOLUTION_TAG = "solution"
EXERCISE_TAG = "exercise"
_BEGIN, _END = "# BEGIN SOLUTION", "# END SOLUTION"
# Text that only a solution carries: the dropdown of the chapters, or the in-cell markers.
_LEAK_PATTERNS = (re.compile(r"<summary>\s*Solutions?\b", re.IGNORECASE),
                  re.compile(r"^\s*# (BEGIN|END) SOLUTION", re.MULTILINE))
_LINK = re.compile(r"\]\(([\w-]+)\.ipynb(?:#[^)]*)?\)")  # a Markdown link to a chapter notebook
_STUB = ("# Your work on the exercises above goes here. The solutions are in the\n"
         "# facilitator's copy of this chapter (the course's notebooks/ folder).\n...")


def _strip_marked(source: str) -> str:
    """The lines between the solution markers become one ``...`` line, indented like them."""
    out, inside = [], False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == _BEGIN:
            inside = True
            out.append(line[: len(line) - len(line.lstrip())] + "...")
            continue
        if stripped == _END:
            if not inside:
                raise ValueError(f"{_END!r} without {_BEGIN!r} in a cell starting {source[:60]!r}")
            inside = False
            continue
        if not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{_BEGIN!r} without {_END!r} in a cell starting {source[:60]!r}")
    return "\n".join(out)


def student_notebook(nb: Any) -> Any:
    """A learner's copy of ``nb`` (an ``nbformat`` notebook; the input is not changed):
    solutions replaced by exercise stubs tagged ``exercise``, outputs cleared, papermill's
    metadata dropped.

    Raises:
        ValueError: unbalanced ``# BEGIN SOLUTION`` / ``# END SOLUTION`` markers.
    """
    import copy

    import nbformat
    from nbconvert.preprocessors import ClearOutputPreprocessor

    nb = copy.deepcopy(nb)
    cells = []
    for cell in nb.cells:
        tags = list(cell.get("metadata", {}).get("tags", []))
        if SOLUTION_TAG in tags:
            cells.append(nbformat.v4.new_code_cell(_STUB, metadata={"tags": [EXERCISE_TAG]}))
            continue
        if cell.cell_type == "code" and _BEGIN in cell.source:
            cell.source = _strip_marked(cell.source)
            cell.metadata["tags"] = sorted({*tags, EXERCISE_TAG})
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        cells.append(cell)
    nb.cells = cells
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    nb, _ = ClearOutputPreprocessor().preprocess(nb, {})
    return nb


def find_leaks(nb: Any) -> list[str]:
    """Where solution text remains in ``nb``: "cell N: ..." for each cell tagged ``solution``
    and each cell whose text looks like a solution (the "Solutions" dropdown, the in-cell
    markers) whatever its tags. Empty for a clean learner notebook."""
    leaks = []
    for i, cell in enumerate(nb.cells):
        tags = cell.get("metadata", {}).get("tags", [])
        if SOLUTION_TAG in tags:
            leaks.append(f"cell {i}: tagged {SOLUTION_TAG!r}")
            continue
        for pattern in _LEAK_PATTERNS:
            match = pattern.search(cell.source)
            if match:
                leaks.append(f"cell {i}: solution text {match.group(0).strip()!r} in an untagged "
                             f"{cell.cell_type} cell (tag it {SOLUTION_TAG!r})")
                break
    return leaks


def write_workshop(notebooks: list[Path], out_dir: Path) -> Path:
    """Write the learner copy of each chapter to ``out_dir`` and zip them beside it; return the
    zip's path.

    Raises:
        ValueError: a chapter whose learner copy would still hold solution text (each leak
            named), or an invalid notebook.
    """
    import nbformat

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        student = student_notebook(nbformat.read(path, as_version=4))
        leaks = find_leaks(student)
        if leaks:
            raise ValueError(f"{path.name}: solution text would reach the learners: "
                             + "; ".join(leaks))
        nbformat.validate(student)
        target = out_dir / path.name
        nbformat.write(student, target)
        written.append(target)
    archive = out_dir.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for target in written:
            zf.write(target, f"{out_dir.name}/{target.name}")
    return archive


# --- the facilitator's guide ------------------------------------------------------------------
@dataclass(frozen=True)
class Outline:
    """What a chapter's header and exercises say: read from the notebook, never retyped."""

    stem: str
    number: str
    title: str
    objectives: tuple[str, ...]
    prerequisites: str
    questions: tuple[str, ...]
    words: int
    full_time_limit_s: float | None = None  # the notebook's declared full-profile budget


def _number(stem: str) -> str:
    return stem.split("_", 1)[0]


def outline(path: Path) -> Outline:
    """The outline of the chapter notebook at ``path``: the first heading, the bullets under
    "What you will learn", the "Prerequisites:" sentence, the exercises (numbered items under
    "## Exercises") and the number of words of prose (for reading time)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"
                and SOLUTION_TAG not in c.metadata.get("tags", [])]
    header = markdown[0] if markdown else ""
    title = next((ln.lstrip("# ").strip() for ln in header.splitlines() if ln.startswith("# ")),
                 path.stem)
    learn = header.split("**What you will learn**", 1)[-1] if "**What you will learn**" in header else ""
    objectives, current = [], None
    for line in learn.splitlines():
        if line.startswith("- "):
            current = line[2:].strip()
            objectives.append(current)
        elif line.startswith("  ") and objectives:
            objectives[-1] += " " + line.strip()
        elif line.strip() == "" and objectives:
            break
    prereq = re.search(r"\*\*Prerequisites:\*\*\s*(.+?)(?:\n\n|$)", header, re.DOTALL)
    text = "\n".join(markdown)
    exercises = text.split("## Exercises", 1)[1] if "## Exercises" in text else ""
    exercises = exercises.split("\n## ", 1)[0]
    questions = tuple(re.sub(r"\s+", " ", q).strip()
                      for q in re.findall(r"^\d+\.\s+(.+?)(?=^\d+\.\s|\Z)", exercises,
                                          re.MULTILINE | re.DOTALL))
    budget = chapters.REGISTRY[path.stem].time_limit_s.get("full") if path.stem in chapters.REGISTRY \
        else nb.metadata.get("handbook", {}).get("time_limit_s", {}).get("full")
    return Outline(path.stem, _number(path.stem), title, tuple(objectives),
                   re.sub(r"\s+", " ", prereq.group(1)).strip() if prereq else "none",
                   questions, len(re.findall(r"[A-Za-z]+", text)), budget)


def prerequisite_edges(outlines: list[Outline]) -> list[tuple[str, str]]:
    """(prerequisite, chapter) pairs from the chapters' "Prerequisites:" sentences, which link
    the earlier chapters they build on (``[chapter 4](04_bert_finetuning.ipynb)``).

    Raises:
        ValueError: a prerequisite links a notebook that is not one of ``outlines``.
    """
    numbers = {o.stem: o.number for o in outlines}
    edges = []
    for o in outlines:
        for stem in _LINK.findall(o.prerequisites):
            if stem not in numbers:
                raise ValueError(f"{o.stem}: its prerequisites link {stem}.ipynb, which is not a "
                                 f"chapter of the course ({sorted(numbers)})")
            if numbers[stem] != o.number:
                edges.append((numbers[stem], o.number))
    return sorted(set(edges))


def schedule(outlines: list[Outline], timings: dict[str, Any], days: int = 2,
             sessions_per_day: int = 4, session_minutes: int = 90,
             words_per_minute: int = 120, exercise_minutes: int = 20) -> Any:
    """Chapters packed in order into ``days`` x ``sessions_per_day`` sessions. A chapter's slot
    is its reading time (its words at ``words_per_minute``), its measured quick run time (the
    runner's ``timings.json``) and ``exercise_minutes``; a chapter that does not fit the
    remaining sessions is listed as self-study. Returns a DataFrame, one row per chapter, whose
    ``attrs`` hold the settings it was packed with."""
    import math

    import pandas as pd

    rows, day, session, used = [], 1, 1, 0.0
    capacity = float(session_minutes)
    for o in outlines:
        run = timings.get(o.stem, {}).get("seconds")
        minutes = o.words / words_per_minute + (run or 0) / 60 + exercise_minutes
        if used and used + minutes > capacity:
            session, used = session + 1, 0.0
            if session > sessions_per_day:
                day, session = day + 1, 1
        slot = "self-study" if day > days else f"day {day}, session {session}"
        rows.append({"chapter": o.title, "slot": slot,
                     "minutes": math.ceil(minutes), "quick run (s)": run})
        if day <= days:
            used += minutes
    plan = pd.DataFrame(rows)
    plan.attrs.update(days=days, sessions_per_day=sessions_per_day, session_minutes=session_minutes,
                      words_per_minute=words_per_minute, exercise_minutes=exercise_minutes)
    return plan


def failure_modes(package: str = "helpers") -> list[tuple[str, str]]:
    """The course's own exception classes and what each means (the first line of its
    docstring): the errors learners meet, with the fix the message carries."""
    import importlib
    import inspect
    import pkgutil

    root = importlib.import_module(package)
    found = {}
    for info in pkgutil.iter_modules(root.__path__):
        if info.name in ("flower_app",):  # a Flower app module, imported by Flower itself
            continue
        try:
            module = importlib.import_module(f"{package}.{info.name}")
        except Exception:  # an optional dependency missing: skip that module's errors
            continue
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, Exception) and obj.__module__ == module.__name__
                    and obj.__doc__):
                found[name] = (f"{info.name}.{name}", obj.__doc__.strip().splitlines()[0])
    return sorted(found.values())


def facilitator_page(notebooks: list[Path], timings: dict[str, Any], full: dict[str, Any],
                     figure: Path) -> str:
    """The facilitator's guide in MyST Markdown, with the dependency graph drawn to ``figure``
    (a PNG beside the page)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outlines = [outline(p) for p in notebooks]
    edges = prerequisite_edges(outlines)
    fig, ax = plt.subplots(figsize=(9, 3.2))
    xs = {o.number: i for i, o in enumerate(outlines)}
    for a, b in edges:
        ax.annotate("", xy=(xs[b], 0), xytext=(xs[a], 0),
                    arrowprops={"arrowstyle": "->", "connectionstyle": "arc3,rad=-0.45",
                                "color": "0.45", "lw": 0.8})
    ax.scatter(list(xs.values()), [0] * len(xs), s=420, color="C0", zorder=3)
    for number, x in xs.items():
        ax.text(x, 0, number, ha="center", va="center", color="white", fontsize=8, zorder=4)
    ax.set_xlim(-0.7, len(xs) - 0.3)
    ax.set_ylim(-0.2, 2.2)
    ax.axis("off")
    ax.set_title("chapters (left to right) and the earlier chapters each one builds on", fontsize=9)
    fig.tight_layout()
    fig.savefig(figure, dpi=110)
    plt.close(fig)

    plan = schedule(outlines, timings)
    lines = ["# Facilitator's guide", "",
             "This page is generated by `make book` from the chapters themselves (their headers, "
             "exercises and measured run times) and from the course's own error classes. "
             "Learner copies of the chapters, with the solutions replaced by exercise stubs, come "
             "from `make workshop` (`_build/workshop.zip`).", "",
             "## A two-day schedule", "",
             f"Each chapter's slot is its reading time (its words at {plan.attrs['words_per_minute']} "
             "per minute), the run time measured in this build's quick profile, and "
             f"{plan.attrs['exercise_minutes']} minutes of exercises, packed in order into "
             f"{plan.attrs['sessions_per_day']} sessions of {plan.attrs['session_minutes']} minutes a "
             f"day for {plan.attrs['days']} days. Chapters that do not fit are self-study. The full "
             "profile's times are measured on a GPU (`book/timings-full.json`); until then the "
             "table shows each chapter's declared budget.", "",
             "| chapter | slot | minutes | quick run (s) | full run |", "|---|---|---|---|---|"]
    for row, o in zip(plan.itertuples(index=False), outlines, strict=True):
        run = "not measured" if row[3] is None else f"{row[3]:.0f}"
        full_run = full.get(o.stem, {}).get("seconds")
        full_text = (f"{full_run / 60:.0f} min" if full_run else "not measured yet" + (
            f" (budget {o.full_time_limit_s / 60:.0f} min)" if o.full_time_limit_s else ""))
        lines.append(f"| [{row[0]}](notebooks/{o.stem}.ipynb) | {row[1]} | {row[2]} | {run} | {full_text} |")
    lines += ["", "## How the chapters depend on each other", "",
              f"![chapter dependencies]({figure.name})", "",
              "## Objectives, prerequisites and discussion questions", ""]
    for o in outlines:
        lines += [f"### {o.title}", "", f"**Prerequisites:** {o.prerequisites}", ""]
        lines += [f"- {obj}" for obj in o.objectives] + [""]
        if o.questions:
            lines += ["Questions for discussion:", ""]
            lines += [f"{k}. {q}" for k, q in enumerate(o.questions, 1)] + [""]
    lines += ["## Errors learners meet, and what they mean", "",
              "Each is raised by the course's helpers with a message that names the bad value and "
              "the fix.", "", "| error | meaning |", "|---|---|"]
    lines += [f"| `{name}` | {doc} |" for name, doc in failure_modes()]
    # the chapters' own links point beside them (notebooks/); this page sits one folder up
    return _LINK.sub(lambda m: m.group(0).replace("](", "](notebooks/", 1), "\n".join(lines)) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m tools.workshop [--out DIR]``: the learner copies of every toc chapter."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tools.workshop")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "_build" / "workshop")
    parser.add_argument("--toc", type=Path, default=REPO_ROOT / "book" / "_toc.yml")
    args = parser.parse_args(argv)
    notebooks = toc_notebooks(args.toc)
    archive = write_workshop(notebooks, args.out)
    print(f"{len(notebooks)} learner notebooks in {args.out}, zipped to {archive}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
