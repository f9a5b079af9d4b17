"""Scaling out: a real PostgreSQL server for shared tuning, started and stopped on this machine.

Taught in ``notebooks/12_scaling_out.ipynb``. :class:`PostgresServer` runs Debian's PostgreSQL
on a temporary data directory and a free port on 127.0.0.1 (as the unprivileged ``postgres``
user when this process is root: the server refuses to run as root), for ``with`` blocks and
test fixtures; :func:`check_database` turns an unreachable database into an error naming host
and port within seconds, instead of a hang.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import process
from .hardware import time_op
from .process import free_port

__all__ = ["postgres_bin", "PostgresServer", "PostgresUnavailable", "check_database",
           "saved_activation_bytes"]


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's programs are not installed here (the message says how to get them)."""


def postgres_bin() -> Path:
    """The folder with ``initdb``, ``pg_ctl`` and ``createdb``: Debian's
    ``/usr/lib/postgresql/<version>/bin`` (newest first), else the one on ``PATH``."""
    def version(folder: str) -> int:
        name = Path(folder).parent.name
        return int(name) if name.isdigit() else 0

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    for folder in candidates:
        if all((Path(folder) / tool).exists() for tool in ("initdb", "pg_ctl", "createdb")):
            return Path(folder)
    raise PostgresUnavailable("PostgreSQL is not installed: `apt-get install postgresql` (Debian, "
                              "as root; `make setup` does it where it can) or your system's package")


def _server_tmp() -> str | None:
    """Where a throw-away server's folder goes: the temporary folder, unless this process runs as
    root (the server then runs as the ``postgres`` user) and that user cannot reach it, as under
    pytest's ``/tmp/pytest-of-root`` (mode 0700); then ``/tmp`` itself."""
    if os.geteuid() != 0:
        return None
    base = Path(tempfile.gettempdir()).resolve()
    reachable = all(folder.stat().st_mode & 0o001 for folder in [base, *base.parents])
    return None if reachable else "/tmp"


class PostgresServer:
    """A throw-away PostgreSQL server::

        with PostgresServer() as pg:
            storage = tune.open_storage(pg.url, heartbeat_s=2)

    ``pg.url`` is ``postgresql+psycopg2://postgres@127.0.0.1:<port>/<database>`` (trust
    authentication, loopback only). Leaving the block stops the server (``pg_ctl stop -m fast``)
    and deletes its data directory."""

    def __init__(self, database: str = "handbook", port: int | None = None,
                 workdir: str | Path | None = None, start_timeout: float = 30.0) -> None:
        self.bin = postgres_bin()
        self.database = database
        self.port = port or free_port()
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="handbook-pg-", dir=_server_tmp()))
        self.start_timeout = start_timeout
        self.user = "postgres"
        self.running = False
        self.server: process.LocalProcess | None = None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _command(self, *args: str) -> list[str]:
        cmd = [str(self.bin / args[0]), *args[1:]]
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd  # not as root

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(self._command(*args), capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): "
                               f"{(result.stderr or result.stdout).strip()[-800:]}")
        return result

    def _accepts(self) -> bool:
        """Whether the server accepts connections yet (``pg_isready``; an open port is not enough:
        PostgreSQL listens while it is still starting up)."""
        return process.port_open(self.port) and self._run(
            "pg_isready", "-h", "127.0.0.1", "-p", str(self.port), "-t", "1", check=False).returncode == 0

    def start(self) -> PostgresServer:
        """Create the cluster and start the server; on any failure, stop what started and delete
        the folder it made before raising."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> PostgresServer:
        data, sockets = self.workdir / "data", self.workdir / "sockets"
        self.workdir.mkdir(parents=True, exist_ok=True)
        sockets.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres")
            shutil.chown(sockets, "postgres")
        self._run("initdb", "-D", str(data), "-U", self.user, "--auth=trust", "-E", "UTF8")
        # The server in the foreground, as a helpers.process.LocalProcess: its own process group,
        # its log, ready when it accepts connections; SIGINT is PostgreSQL's fast shutdown.
        self.server = process.LocalProcess(
            self._command("postgres", "-D", str(data), "-p", str(self.port), "-k", str(sockets),
                          "-c", "listen_addresses=127.0.0.1"),
            self.workdir / "server.log", ready=self._accepts, stop_signal=signal.SIGINT,
            name="postgres")
        self.server.start(self.start_timeout)
        self.running = True
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
                  self.database)
        return self

    def stop(self) -> None:
        if self.server is not None:  # also a server whose start timed out: LocalProcess.stop is safe
            self.server.stop(timeout_s=30)
        self.running = False
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def check_database(url: str, timeout_s: float = 5.0) -> None:
    """Connect once to ``url``; a ``ConnectionError`` naming host and port (and the driver's
    reason) if that does not work within about ``timeout_s`` seconds."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return
    connect_args = {"connect_timeout": max(1, int(timeout_s))}
    engine = create_engine(url, connect_args=connect_args, pool_pre_ping=False)
    start = time.monotonic()
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as err:
        reason = str(err.orig).strip().splitlines()[0] if err.orig else str(err)
        raise ConnectionError(
            f"cannot reach the {backend} database at {parsed.host}:{parsed.port or 'default port'} "
            f"(after {time.monotonic() - start:.1f} s): {reason}. Is the server running, and is "
            "the URL's host and port right?") from err
    finally:
        engine.dispose()


def saved_activation_bytes(forward: Callable[[], Any]) -> int:
    """Bytes of the tensors autograd keeps for the backward pass while ``forward()`` runs
    (each storage counted once). This is the memory activation checkpointing saves, measured
    the same way on a CPU and a GPU (``torch.cuda.max_memory_allocated`` adds the rest)."""
    import torch

    seen: dict[tuple[int, int], int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[(storage.data_ptr(), storage.nbytes())] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward()
    return sum(seen.values())


def step_seconds(step: Callable[[], Any], repeats: int = 5, warmup: int = 1,
                 device: Any = None) -> float:
    """Deprecated since the review of chapter 12: use :func:`helpers.hardware.time_op`, the
    course's one timer (same median, same synchronization). Kept so code written against it
    runs."""
    import torch

    warnings.warn("scale.step_seconds is deprecated: use helpers.hardware.time_op(fn, device, "
                  "repeats=..., warmup=...)", DeprecationWarning, stacklevel=2)
    return time_op(step, torch.device(device or "cpu"), repeats=repeats, warmup=warmup)
