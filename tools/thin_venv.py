"""A thin per-clone virtual environment over the shared, cached one.

``make setup`` installs the heavy environment (torch, transformers, JupyterLab...) once per
requirements hash in ``~/.cache/dl-handbook/venvs/<hash>`` and shares it between clones. What
must *not* be shared is the course's own code: each clone's notebooks, tests and kernels have to
import that clone's ``helpers``. So every clone gets its own small ``.venv``:

* a ``venv`` of the same Python, without packages of its own;
* a ``.pth`` file that adds the shared environment's site-packages *after* its own, so the
  clone's editable install of ``helpers`` (``pip install -e .`` into ``.venv``) comes first;
* the shared environment's console scripts (``jupyter``, ``jupyter-book``, ``pytest``...),
  copied with their ``#!`` line pointing at ``.venv/bin/python``, so a JupyterLab started from
  ``.venv/bin/jupyter lab`` runs this clone's interpreter;
* ``share/jupyter`` and ``etc/jupyter`` linked to the shared ones (JupyterLab's assets, server
  extensions), except a kernel spec of its own, ``python3``, whose kernel runs
  ``.venv/bin/python``.

Only the standard library is used: ``make setup`` runs it with any Python 3.11.

Usage::

    python tools/thin_venv.py --shared ~/.cache/dl-handbook/venvs/HASH --venv .venv
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

MARKER = ".shared-env"  # in the thin venv: the shared environment it stands on
PTH_NAME = "_dl_handbook_shared.pth"  # sorts after pip's __editable__ files: clone code first


def _purelib(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                         check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())


def _copy_scripts(shared: Path, venv: Path) -> int:
    """Console scripts of ``shared/bin``, re-pointed at ``venv``'s Python; binaries linked."""
    shared_python = str(shared / "bin" / "python")
    own_python = str((venv / "bin" / "python").absolute())
    copied = 0
    for script in sorted((shared / "bin").iterdir()):
        dst = venv / "bin" / script.name
        if script.name.startswith(("python", "activate", "Activate")) or dst.exists():
            continue
        head = script.read_bytes()[:256]
        if head.startswith(b"#!") and shared_python.encode() in head.split(b"\n", 1)[0]:
            text = script.read_text(encoding="utf-8")
            first, _, rest = text.partition("\n")
            dst.write_text(first.replace(shared_python, own_python) + "\n" + rest, encoding="utf-8")
            dst.chmod(0o755)
        else:
            dst.symlink_to(script.resolve())
        copied += 1
    return copied


def _kernel_spec(venv: Path, name: str) -> Path:
    """``venv/share/jupyter/kernels/python3``: a kernel that runs this clone's interpreter."""
    folder = venv / "share" / "jupyter" / "kernels" / "python3"
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [str((venv / "bin" / "python").absolute()), "-m", "ipykernel_launcher", "-f",
                     "{connection_file}"],
            "display_name": f"Python 3 ({name})", "language": "python",
            "metadata": {"debugger": True}}
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return folder


def _link_jupyter_data(shared: Path, venv: Path) -> None:
    """JupyterLab's assets and server configuration from the shared environment."""
    for sub in ("share/jupyter", "etc/jupyter"):
        src, dst = shared / sub, venv / sub
        if not src.is_dir():
            continue
        dst.mkdir(parents=True, exist_ok=True)
        for entry in src.iterdir():
            if sub == "share/jupyter" and entry.name == "kernels":
                continue  # the kernel spec is this clone's own
            link = dst / entry.name
            if not link.exists() and not link.is_symlink():
                link.symlink_to(entry.resolve())


def make_thin_venv(shared: Path, venv: Path, name: str = "dl-handbook") -> Path:
    """Create (or refresh) ``venv`` standing on ``shared``; returns ``venv``.

    Raises:
        FileNotFoundError: ``shared`` has no ``bin/python`` (install the shared environment
            first: ``make setup`` does it).
    """
    shared, venv = Path(shared).absolute(), Path(venv).absolute()
    if not (shared / "bin" / "python").exists():
        raise FileNotFoundError(f"no Python environment at {shared} (no bin/python): install it "
                                "first (make setup does)")
    if venv.is_symlink():  # the old layout: .venv was a link to the shared environment itself
        venv.unlink()
    marker = venv / MARKER
    if venv.exists() and (not marker.is_file() or marker.read_text().strip() != str(shared)):
        shutil.rmtree(venv)  # another shared environment (new requirements): start again
    if not venv.exists():
        subprocess.run([str(shared / "bin" / "python"), "-m", "venv", "--without-pip", str(venv)],
                       check=True)
    own_site = _purelib(venv / "bin" / "python")
    own_site.mkdir(parents=True, exist_ok=True)
    (own_site / PTH_NAME).write_text(
        f"import site; site.addsitedir({str(_purelib(shared / 'bin' / 'python'))!r})\n",
        encoding="utf-8")
    _copy_scripts(shared, venv)
    _link_jupyter_data(shared, venv)
    _kernel_spec(venv, name)
    marker.write_text(str(shared) + "\n", encoding="utf-8")
    return venv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/thin_venv.py", description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, required=True, help="the cached environment")
    parser.add_argument("--venv", type=Path, default=Path(".venv"), help="the clone's own (.venv)")
    parser.add_argument("--name", default=None, help="the kernel's display name (default: the clone)")
    args = parser.parse_args(argv)
    name = args.name or f"dl-handbook: {Path.cwd().name}"
    venv = make_thin_venv(args.shared, args.venv, name)
    print(f">> {args.venv}: this clone's environment, on the shared one in {args.shared}")
    return 0 if venv.exists() else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
