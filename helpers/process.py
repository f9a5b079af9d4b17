"""Real servers as local processes: start, wait until they answer, read their log, stop them all.

Taught in ``notebooks/13_serving.ipynb``, where ``serve.Service`` runs uvicorn on it; chapter
12's PostgreSQL server takes its free port from here, and the maintainers' browser checks
(JupyterLab) run on it too. Each server it runs is a
``LocalProcess``: its own process group (so stopping it stops its children too), its output in a
log file, and a readiness check on 127.0.0.1 (a port that accepts connections, or a URL that
answers 200). A process that exits while starting, or does not answer in time, raises
``ProcessError`` with the end of its log, which is where the reason is.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["ProcessError", "free_port", "port_open", "url_ok", "LocalProcess"]


class ProcessError(RuntimeError):
    """A local server did not start, or stopped answering (the message ends with its log)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex((host, port)) == 0


def url_ok(url: str) -> bool:
    """Whether ``url`` answers 200 (loopback URLs only: nothing here leaves the machine)."""
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:  # noqa: S310 (loopback)
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


class LocalProcess:
    """One server process on this machine, in its own process group.

    Args:
        command: the program and its arguments.
        log_path: where its standard output and error go (a new file each start).
        ready: ``() -> bool``, true once it serves (``port_open``/``url_ok`` with a port);
            None: ready as soon as it started.
        env: extra environment variables; cwd: its working folder.
        stop_signal: what ``stop`` sends first (SIGTERM; PostgreSQL's fast shutdown is SIGINT).
        name: what error messages call it.
    """

    def __init__(self, command: Sequence[str], log_path: str | Path,
                 ready: Callable[[], bool] | None = None, env: Mapping[str, str] | None = None,
                 cwd: str | Path | None = None, stop_signal: int = signal.SIGTERM,
                 name: str | None = None) -> None:
        self.command = [str(c) for c in command]
        self.log_path = Path(log_path)
        self.ready, self.env, self.cwd = ready, dict(env or {}), cwd
        self.stop_signal = stop_signal
        self.name = name or Path(self.command[0]).name
        self.process: subprocess.Popen | None = None

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of its log ("(no log)" before it wrote any)."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout_s: float = 30.0) -> LocalProcess:
        """Start it and wait until ``ready``.

        Raises:
            ProcessError: it exited while starting, or was not ready within ``timeout_s``
                (it is stopped first); the message holds the end of its log.
        """
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "w") as out:  # the child keeps its own handle
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT,
                                            env={**os.environ, **self.env}, cwd=self.cwd,
                                            start_new_session=True)
        atexit.register(self.stop)  # a kernel that exits (or restarts) takes its servers along
        deadline = time.monotonic() + timeout_s
        while not (self.ready is None or self.ready()):
            if not self.running:
                raise ProcessError(f"{self.name} exited with code {self.process.returncode} while "
                                   f"starting:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise ProcessError(f"{self.name} was not ready after {timeout_s:.0f} s:\n"
                                   f"{self.log_tail()}")
            time.sleep(0.1)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop its whole process group: ``stop_signal``, then SIGKILL after ``timeout_s``."""
        if self.process is None or self.process.poll() is not None:
            return
        for sig in (self.stop_signal, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout_s)
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> LocalProcess:
        return self.start() if not self.running else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
