"""Execute the course's notebooks with papermill and assemble the book from the results.

A maintainers' tool (``make book``, ``make test`` and ``make outputs`` drive it); chapter 00
explains what it does. From the command line::

    python -m tools.runner execute --profile quick   # run every notebook in book/_toc.yml
    python -m tools.runner check --profile quick     # fail unless every one was executed
    python -m tools.runner stage                     # book source from executed notebooks
    python -m tools.runner refresh                   # re-execute notebooks/ in place

The book's chapter pages are the notebooks in ``notebooks/`` themselves: ``stage`` puts the
*executed* copy of each beside the pages in ``book/`` and nothing else, so no copy is ever
edited by hand. A notebook that raises fails ``execute``; one that was not executed (or ran
with another profile, or is older than its source) fails ``check`` and ``stage``.

The time table also says, per notebook, whether its models were trained, resumed from a
checkpoint or reused (every ``helpers.train.fit`` call reports it). ``compare_outputs``
applies nbval's own output check to an executed copy, so a test run executes each notebook
once instead of once for papermill and again for ``pytest --nbval``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace

import yaml
from cryptography.fernet import Fernet
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir
from traitlets import default

from helpers import chapters
from helpers.notebook import EXECUTED_ENV
from helpers.paths import REPO_ROOT
from helpers.profiles import get_profile

from . import references
from .colab import DRIVE_MARK, INSTALL_MARK
from .toc import cell_source, toc_files, toc_notebooks
from .workshop import facilitator_page

__all__ = [
    "REPO_ROOT",
    "NotExecutedError",
    "NotebookRun",
    "toc_notebooks",
    "execute_notebook",
    "check_executed",
    "stage_book",
    "format_time_table",
    "training_summary",
    "compare_outputs",
    "refresh_outputs",
    "main",
]

TIMINGS_FILE = "timings.json"
OVER_BUDGET_FACTOR = 2.0  # `check` fails a notebook that took more than twice its budget


class NotExecutedError(RuntimeError):
    """A notebook listed in the table of contents has no valid executed copy."""


@dataclass
class NotebookRun:
    """One papermill execution: which notebook, how long, within which budget, and what its
    ``fit`` calls did (``training``: e.g. ``"trained x3"``, ``"reused x1"``, ``"-"``)."""

    notebook: str
    profile: str
    seconds: float
    time_limit_s: float | None
    ok: bool
    training: str = "-"
    machine: str = ""


def machine_summary() -> str:
    """What ran the notebook, for the time table and the chapters' "Time:" lines."""
    import torch

    where = f"{os.cpu_count()} CPU cores"
    if torch.cuda.is_available():
        where += f", {torch.cuda.get_device_name(0)}"
    return where


def training_summary(fit_log: Path) -> str:
    """What the ``fit`` calls recorded in ``fit_log`` did, e.g. ``"trained x2, resumed x1
    (from epoch 2)"``; ``"-"`` when nothing was fitted."""
    if not Path(fit_log).is_file():
        return "-"
    records = [json.loads(line) for line in Path(fit_log).read_text().splitlines() if line]
    counts = Counter(r["status"] for r in records)
    parts = []
    for status in ("trained", "resumed", "reused"):
        if counts[status]:
            part = f"{status} x{counts[status]}"
            if status == "resumed":
                epochs = sorted({r["resumed_from"] for r in records if r["status"] == status})
                part += f" (from epoch {', '.join(map(str, epochs))})"
            parts.append(part)
    return ", ".join(parts) or "-"


class LocalKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel talks over Unix sockets (IPC) instead of TCP on
    127.0.0.1: nothing listens on a port, and ipykernel has no reason to warn that the
    kernel "is running over TCP without encryption" in every run's log."""

    @default("transport")
    def _transport_default(self) -> str:
        return "ipc"

    @default("ip")
    def _ip_default(self) -> str:  # the sockets' path prefix: absolute, as the kernel's cwd differs
        Path(jupyter_runtime_dir()).mkdir(parents=True, exist_ok=True)
        return str(Path(jupyter_runtime_dir()) / f"kernel-{uuid.uuid4().hex[:12]}-ipc")


# Each fit of a chapter's kernel appends one JSON line here (trained, resumed or reused), for
# the time table: the kernel's IPython start-up file registers a train.FIT_HOOKS hook.
FIT_LOG_ENV = "DL_HANDBOOK_FIT_LOG"
FIT_LOG_STARTUP = """# Written by the course runner (tools/runner.py): log what every fit of this kernel did.
import json as _json
import os as _os

from helpers import train as _train


def _log_fit(history, checkpoint_dir, run_key):
    log = _os.environ.get("DL_HANDBOOK_FIT_LOG")
    if not log:
        return
    record = {"status": history.status, "resumed_from": history.resumed_from, "run_key": run_key,
              "checkpoint": checkpoint_dir.name if checkpoint_dir else None}
    with open(log, "a", encoding="utf-8") as handle:  # one short line: appends do not interleave
        handle.write(_json.dumps(record) + "\\n")


_train.FIT_HOOKS.append(_log_fit)
"""


def fit_log_profile(folder: Path) -> Path:
    """An IPython folder whose start-up file logs every ``fit`` (``IPYTHONDIR`` for a kernel)."""
    startup = Path(folder) / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-fit-log.py").write_text(FIT_LOG_STARTUP, encoding="utf-8")
    return Path(folder)


# What every kernel the runner starts inherits: no progress bars in saved outputs (tqdm reads
# TQDM_DISABLE; the helpers' own bars too, through helpers.env.progress; Hugging Face's bars,
# "Loading weights", read HF_HUB_DISABLE_PROGRESS_BARS), so a committed or book output never
# shows a bar frozen at its first state ("0%|"). Learners running a chapter see the bars.
# torch.compile's precompiled C++ headers go to the system's temporary folder whatever
# TORCHINDUCTOR_CACHE_DIR says (torch/_inductor/codecache.py, _HEADER_DIR), so batch runs, which
# must leave that folder as they found it, compile without them; learners keep torch's default.
BATCH_ENVIRONMENT = {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                     "TORCHINDUCTOR_CPP_CACHE_PRECOMPILE_HEADERS": "0"}


@contextmanager
def kernel_environment(extra: dict[str, str] | None = None) -> Iterator[None]:
    """Set ``BATCH_ENVIRONMENT`` and ``extra`` in ``os.environ`` (which a kernel started now
    inherits) for the ``with`` block, and restore the previous values after it. torch.compile's
    cache goes under the course folder (``paths.cache_dir``), not the system's temporary one."""
    values = {**BATCH_ENVIRONMENT, **(extra or {})}
    home = values.get("DL_HANDBOOK_HOME") or os.environ.get("DL_HANDBOOK_HOME")
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        root = Path(home).expanduser() if home else Path.home() / ".cache" / "dl-handbook"
        values["TORCHINDUCTOR_CACHE_DIR"] = str(root / "cache" / "torchinductor")
    previous = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _budget(notebook: Path, profile: str) -> float | None:
    """The chapter's declared time budget (``helpers/chapters``); a notebook that is not a
    course chapter (a test's fixture) may carry one in its metadata (``handbook.time_limit_s``)."""
    if notebook.stem in chapters.REGISTRY:
        return chapters.REGISTRY[notebook.stem].time_limit_s.get(profile)
    meta = json.loads(notebook.read_text(encoding="utf-8")).get("metadata", {})
    return meta.get("handbook", {}).get("time_limit_s", {}).get(profile)


def _record(out_dir: Path, run: NotebookRun) -> None:
    path = out_dir / TIMINGS_FILE
    runs = json.loads(path.read_text()) if path.is_file() else {}
    runs[run.notebook] = asdict(run)
    path.write_text(json.dumps(runs, indent=1))


def execute_notebook(
    notebook: Path, out_dir: Path, profile: str = "quick", timeout_s: int = 1800,
    kernel_name: str = "python3",
) -> NotebookRun:
    """Run one notebook with papermill, injecting ``profile``; record its wall time.

    ``kernel_name`` picks the Jupyter kernel (another virtual environment's, as
    ``make colab-check`` does); the default is this environment's ``python3``.

    The executed copy goes to ``out_dir/<name>.ipynb`` (also when it fails, so the error
    can be read there). Every ``fit`` in the notebook logs to ``out_dir/<name>.fits.jsonl``
    (through the kernel's environment), summarized in the run's ``training``; the kernel
    also gets ``DL_HANDBOOK_EXECUTED=out_dir``, where earlier chapters' copies lie. Raises
    papermill's ``PapermillExecutionError`` if a cell raises.
    """
    import papermill as pm

    notebook = Path(notebook).resolve()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dst = out_dir / notebook.name
    dst.unlink(missing_ok=True)
    fit_log = (out_dir / f"{notebook.stem}.fits.jsonl").resolve()
    fit_log.unlink(missing_ok=True)
    start = time.perf_counter()
    ok = False
    try:
        # the kernel inherits these; later chapters read earlier results from out_dir
        with kernel_environment({FIT_LOG_ENV: str(fit_log), EXECUTED_ENV: str(out_dir.resolve()),
                                 "IPYTHONDIR": str(fit_log_profile(out_dir / ".ipython").resolve())}):
            pm.execute_notebook(
                str(notebook), str(dst), parameters={"profile": profile},
                cwd=str(notebook.parent), kernel_name=kernel_name, progress_bar=False,
                execution_timeout=timeout_s, kernel_manager_class=LocalKernelManager,
            )
        ok = True
    finally:
        run = NotebookRun(notebook.stem, profile, time.perf_counter() - start,
                          _budget(notebook, profile), ok, training_summary(fit_log),
                          machine_summary())
        _record(out_dir, run)
    return run


# What nbval leaves out of its comparison in --nbval-lax mode without nbdime (nbval.plugin
# IPyNbFile.skip_compare): metadata, counters, random widget ids and pictures.
NBVAL_SKIP_COMPARE = ("metadata", "traceback", "prompt_number", "output_type", "name",
                      "execution_count", "application/vnd.jupyter.widget-view+json",
                      "image/png", "image/jpeg")


def compare_outputs(source: Path, executed: Path, sanitize_with: Path | None = None) -> list[str]:
    """nbval's output check (``pytest --nbval-lax``) applied to an already executed copy.

    The code cells of ``executed`` (papermill's run) are matched with those of ``source``
    (the committed notebook; papermill's injected-parameters cell is left out). Cells that
    nbval would check (``# NBVAL_CHECK_OUTPUT`` or the tag) are compared with nbval's own
    ``compare_outputs``, after the regexes of ``sanitize_with``. Returns one message per
    differing cell (``[]``: all agree), so the notebook need not run a second time.
    """
    import nbformat
    from nbval.plugin import (
        IPyNbCell,
        coalesce_streams,
        find_comment_markers,
        find_metadata_tags,
        get_sanitize_patterns,
        nocolors,
    )

    patterns = dict(get_sanitize_patterns(Path(sanitize_with).read_text())) if sanitize_with else {}

    class Cell:  # the parts of nbval's IPyNbCell that its comparison reads
        colors = nocolors
        config = None
        ihook = SimpleNamespace(pytest_assertrepr_compare=lambda **_: [])
        parent = SimpleNamespace(skip_compare=NBVAL_SKIP_COMPARE, sanitize_patterns=patterns)
        compare_outputs = IPyNbCell.compare_outputs
        format_output_compare = IPyNbCell.format_output_compare
        sanitize = IPyNbCell.sanitize

    def code_cells(path: Path) -> list:
        nb = nbformat.read(str(path), as_version=4)
        return [c for c in nb.cells if c.cell_type == "code"
                and INJECTED_TAG not in c.metadata.get("tags", [])]

    ref_cells, run_cells = code_cells(source), code_cells(executed)
    if [c.source for c in ref_cells] != [c.source for c in run_cells]:
        return [f"{Path(executed).name} was executed from other code than {Path(source).name}"]
    problems = []
    for number, (ref, run) in enumerate(zip(ref_cells, run_cells, strict=True)):
        options = dict(find_metadata_tags(ref.metadata))
        options.update(find_comment_markers(ref.source))
        if not options.get("check") or options.get("skip") or ref.execution_count is None:
            continue
        cell = Cell()
        if not cell.compare_outputs(coalesce_streams(run.outputs), coalesce_streams(ref.outputs)):
            problems.append(f"{Path(source).stem} cell {number}: outputs differ from the "
                            "committed ones\n" + "\n".join(map(str, cell.comparison_traceback)))
    return problems


def check_executed(notebooks: list[Path], out_dir: Path, profile: str) -> list[str]:
    """Problems that keep the executed notebooks from standing for the sources (``[]``: none).

    A notebook counts as executed when ``out_dir`` holds a copy that papermill ran with
    ``profile``, without an exception, after the source was last changed, and (if it has a
    budget) in at most ``OVER_BUDGET_FACTOR`` times that budget.
    """
    problems = []
    timings_path = Path(out_dir) / TIMINGS_FILE
    timings = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    for src in notebooks:
        dst = Path(out_dir) / src.name
        if not dst.is_file():
            problems.append(f"{src.stem}: not executed (no {dst})")
            continue
        pm_meta = json.loads(dst.read_text(encoding="utf-8")).get("metadata", {}).get(
            "papermill", {})
        ran_with = pm_meta.get("parameters", {}).get("profile")
        if pm_meta.get("exception"):
            problems.append(f"{src.stem}: raised during execution (see {dst})")
        elif ran_with != profile:
            problems.append(f"{src.stem}: executed with profile {ran_with!r}, not {profile!r}")
        elif dst.stat().st_mtime < src.stat().st_mtime:
            problems.append(f"{src.stem}: source changed after it was executed")
        run = timings.get(src.stem)
        if run and run["time_limit_s"] and run["seconds"] > OVER_BUDGET_FACTOR * run["time_limit_s"]:
            problems.append(
                f"{src.stem}: took {run['seconds']:.0f} s, over {OVER_BUDGET_FACTOR:g}x its "
                f"{run['time_limit_s']:.0f} s budget")
    return problems


TIME_LINE = "**Time:**"
FULL_TIMINGS = "timings-full.json"  # in book/: a recorded full-profile run, if one was made


def time_line(run: dict | None, full: dict | None,
              when: str = "measured when this book was built") -> str:
    """A chapter's "Time:" line from measured runs (``timings.json`` records); ``when`` says
    which run it was (the book's build, or the last ``make outputs``)."""
    def said(r: dict) -> str:
        return f"{r['seconds']:.0f} s in the `{r['profile']}` profile ({r.get('machine') or 'this machine'})"

    quick = said(run) if run else "not measured in this build"
    other = said(full) if full else "the `full` profile: not yet measured on a GPU"
    return f"{TIME_LINE} {quick}, {when}; {other}."


def _fill_time(nb: dict, run: dict | None, full: dict | None,
               when: str = "measured when this book was built") -> None:
    """Replace the paragraph starting with "**Time:**" in the first Markdown cell of ``nb``."""
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        paragraphs = cell_source(cell).split("\n\n")
        hits = [i for i, para in enumerate(paragraphs) if para.startswith(TIME_LINE)]
        if hits:
            paragraphs[hits[0]] = time_line(run, full, when)
            cell["source"] = "\n\n".join(paragraphs)
        return


# Cells the book's reader need not see: papermill's injected parameters (removed), and the
# Colab-only install and Drive cells (collapsed behind a "Show code" toggle).
INJECTED_TAG = "injected-parameters"
GUIDE_PAGE = "facilitator"  # the facilitator's guide, written at staging when the toc lists it


def _tidy_for_reading(nb: dict) -> None:
    """Tag ``nb``'s cells for Jupyter Book: ``remove-cell`` on papermill's injected
    parameters, ``hide-cell`` on the Colab-only set-up cells (``tools.colab``'s); point its
    Markdown links, and those of rendered Markdown outputs, at the book's layout (``references.for_book``)."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            cell["source"] = references.for_book(cell_source(cell))
        for output in cell.get("outputs", []):  # a report cell's rendered sentence links too
            data = output.get("data", {})
            if "text/markdown" in data:
                text = data["text/markdown"]
                data["text/markdown"] = references.for_book(
                    text if isinstance(text, str) else "".join(text), "output")
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if INJECTED_TAG in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
        elif cell["cell_type"] == "code" and cell_source(cell).startswith((INSTALL_MARK, DRIVE_MARK)) \
                and "hide-cell" not in tags:
            tags.append("hide-cell")


def _copy_mathjax(dst: Path) -> None:
    """A local MathJax (2.7, from the ``jupyter-server-mathjax`` package) for the book, so its
    formulas render opened from disk with no network (``mathjax_path`` in ``_config.yml``)."""
    spec = importlib.util.find_spec("jupyter_server_mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("jupyter-server-mathjax is not installed: it holds the book's "
                                  "local MathJax (make setup installs it)")
    shutil.copytree(Path(spec.submodule_search_locations[0]) / "static", dst, dirs_exist_ok=True)


def stage_book(book_dir: Path, notebooks: list[Path], out_dir: Path, src_dir: Path) -> Path:
    """Assemble the book source: the pages of ``book/`` plus the executed notebooks.

    The layout mirrors the repository (``notebooks/NAME.ipynb``), so Colab launch links
    point at the real files. Each chapter's "**Time:**" line is written from the measured
    run (``timings.json``; a full-profile run from ``book/timings-full.json`` if present).
    Papermill's injected-parameters cell is removed from the pages, and the Colab-only cells
    are collapsed (``_tidy_for_reading``). When the toc lists ``facilitator``, the guide page
    is generated from the chapters and this build's timings (``workshop.facilitator_page``).
    Raises ``NotExecutedError`` naming every missing notebook.
    """
    missing = [nb.name for nb in notebooks if not (Path(out_dir) / nb.name).is_file()]
    if missing:
        raise NotExecutedError(f"not executed, so not in the book: {missing}; run "
                               "`python -m tools.runner execute` (or `make book`) first")
    src_dir = Path(src_dir)
    if src_dir.exists():
        shutil.rmtree(src_dir)
    shutil.copytree(book_dir, src_dir, ignore=shutil.ignore_patterns("_build"))
    for page in src_dir.glob("*.md"):  # the book's own pages link chapters as notebooks/...
        page.write_text(references.for_book(page.read_text(encoding="utf-8"), "book"), encoding="utf-8")
    _copy_mathjax(src_dir / "_mathjax" / "mathjax")  # not under _static: every .js there becomes a <script>
    (src_dir / "notebooks").mkdir(exist_ok=True)
    timings_path = Path(out_dir) / TIMINGS_FILE
    timings = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    full_path = Path(book_dir) / FULL_TIMINGS
    full = json.loads(full_path.read_text()) if full_path.is_file() else {}
    for nb in notebooks:
        staged = src_dir / "notebooks" / nb.name
        page = json.loads((Path(out_dir) / nb.name).read_text(encoding="utf-8"))
        _fill_time(page, timings.get(nb.stem), full.get(nb.stem))
        _tidy_for_reading(page)
        staged.write_text(json.dumps(page, indent=1, ensure_ascii=False), encoding="utf-8")
    (src_dir / FULL_TIMINGS).unlink(missing_ok=True)
    toc = yaml.safe_load((src_dir / "_toc.yml").read_text(encoding="utf-8")) or {}
    if GUIDE_PAGE in toc_files(toc.get("chapters", []) + toc.get("parts", [])):
        page = facilitator_page(notebooks, timings, full, src_dir / f"{GUIDE_PAGE}-graph.png")
        page = references.for_book(page, "book")  # it quotes the chapters' text and links
        (src_dir / f"{GUIDE_PAGE}.md").write_text(page, encoding="utf-8")
    return src_dir


def refresh_outputs(notebook: Path, timeout_s: int = 1800, book_dir: Path | None = None) -> float:
    """Re-execute a notebook in place with its own defaults (the quick profile); returns the
    seconds it took.

    This is how the committed outputs are made; unlike ``execute_notebook`` it adds no
    papermill metadata, so the saved notebook stays clean for nbval and for readers. Its
    "**Time:**" line is rewritten from this run (and a full-profile run recorded in
    ``book_dir/timings-full.json``, if any), so a learner sees the last measured time.
    """
    import nbformat
    from nbclient import NotebookClient

    notebook = Path(notebook)
    nb = nbformat.read(notebook, as_version=4)
    start = time.perf_counter()
    with kernel_environment():
        NotebookClient(nb, timeout=timeout_s, kernel_name="python3",
                       kernel_manager_class=LocalKernelManager,
                       resources={"metadata": {"path": str(notebook.parent)}}).execute()
    seconds = time.perf_counter() - start
    full_path = Path(book_dir or REPO_ROOT / "book") / FULL_TIMINGS
    full = json.loads(full_path.read_text()).get(notebook.stem) if full_path.is_file() else None
    run = {"seconds": seconds, "profile": "quick", "machine": machine_summary()}
    _fill_time(nb, run, full, when=f"last measured on {time.strftime('%Y-%m-%d')}")
    nbformat.write(nb, notebook)
    return seconds


def format_time_table(out_dir: Path) -> str:
    """The per-notebook wall-time table recorded by ``execute_notebook``."""
    path = Path(out_dir) / TIMINGS_FILE
    runs = json.loads(path.read_text()) if path.is_file() else {}
    lines = [f"{'notebook':<28} {'profile':<8} {'seconds':>8} {'budget':>7}  {'status':<11}  "
             "training", "-" * 90]
    for name in sorted(runs):
        r = runs[name]
        budget = r["time_limit_s"]
        status = "FAILED" if not r["ok"] else (
            "OVER BUDGET" if budget and r["seconds"] > budget else "ok")
        budget_txt = f"{budget:.0f}" if budget else "-"
        lines.append(f"{name:<28} {r['profile']:<8} {r['seconds']:>8.1f} {budget_txt:>7}  "
                     f"{status:<11}  {r.get('training', '-')}")
    total = sum(r["seconds"] for r in runs.values())
    lines.append(f"{'total':<28} {'':<8} {total:>8.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m tools.runner")
    parser.add_argument("command", choices=["execute", "check", "stage", "table", "refresh"])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--toc", type=Path, default=REPO_ROOT / "book" / "_toc.yml")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="where notebooks/ is")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "_build" / "executed")
    parser.add_argument("--book-src", type=Path, default=REPO_ROOT / "_build" / "book-src")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel for `execute`")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="execute only these toc notebooks (e.g. 00_setup)")
    parser.add_argument("--home", type=Path, default=Path.home() / ".cache" / "dl-handbook" / "outputs-home",
                        help="`refresh`: the course folder its kernels use (emptied first unless --only)")
    args = parser.parse_args(argv)

    get_profile(args.profile)
    notebooks = toc_notebooks(args.toc, args.root)
    if args.only:
        unknown = sorted(set(args.only) - {nb.stem for nb in notebooks})
        if unknown:
            raise SystemExit(f"--only: {unknown} not in {args.toc}")
        notebooks = [nb for nb in notebooks if nb.stem in args.only]
    if args.command == "execute":
        failed = []
        for nb in notebooks:
            print(f"executing {nb.name} ({args.profile}) ...", flush=True)
            try:
                execute_notebook(nb, args.out, args.profile, kernel_name=args.kernel)
            except Exception as exc:  # report every failure, then fail
                failed.append(nb.name)
                print(f"  FAILED: {type(exc).__name__}: {str(exc)[:2000]}", file=sys.stderr)
        print(format_time_table(args.out))
        return 1 if failed else 0
    if args.command == "refresh":
        # One empty course folder for this refresh, as `make test` has: every model trains
        # from scratch once (a later chapter reuses an earlier one's), so each Time line is
        # what a learner going through the chapters in order waits.
        # Outside the checkout: chapter 11b refuses to keep a key inside a git repository.
        # With --only, the folder of the last full refresh is kept, so later chapters reuse
        # the earlier chapters' models.
        home = args.home
        if not args.only:
            shutil.rmtree(home, ignore_errors=True)
        # A fresh key in the environment, as tests/test_notebooks.py gives chapter 11b.
        key = Fernet.generate_key().decode()
        with kernel_environment({"DL_HANDBOOK_HOME": str(home), "DL_HANDBOOK_KEY": key}):
            for nb in notebooks:
                print(f"refreshing the outputs of {nb.name} ...", flush=True)
                print(f"  {refresh_outputs(nb):.0f} s", flush=True)
        return 0
    if args.command == "table":
        print(format_time_table(args.out))
        return 0
    if args.command == "check":
        print(format_time_table(args.out))
        problems = check_executed(notebooks, args.out, args.profile)
        for p in problems:
            print(f"ERROR: {p}", file=sys.stderr)
        if not problems:
            print(f"all {len(notebooks)} toc notebooks executed with profile {args.profile!r}")
        return 1 if problems else 0
    src = stage_book(args.toc.parent, notebooks, args.out, args.book_src)
    print(f"book source staged in {src}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
