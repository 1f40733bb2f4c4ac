"""Real servers on loopback for integration tests: a fake vendor and `sgtm serve` itself.

The fake vendor is `sgtm.testing`'s (a real uvicorn server in a thread that records every request
and answers from a script), the one plugin authors use too. `sgtm serve` comes two ways, with one
interface (`url`, `port`, `logs()`, `log_records()`, `wait_for_log()`, `stop()`):

- `SgtmServer` runs it in this process: the app `sgtm serve` builds, in the uvicorn server with
  `sgtm serve`'s options (its HTTP protocol included), on a thread, with the real delivery engine
  and store. Most end-to-end tests use it: no interpreter to start, so it costs milliseconds.
- `SgtmProcess` runs the real CLI in a subprocess and keeps its stderr (the JSON logs), for what
  only a process shows: signals, a kill, several workers, the command line itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import uvicorn

from sgtm.app import create_app
from sgtm.cli import uvicorn_options
from sgtm.config import load_containers
from sgtm.limits import limits_from_env
from sgtm.logs import JsonFormatter
from sgtm.reload import ReloadOptions
from sgtm.testing.vendor import FakeVendor, Received, Reply, free_port
from tests.installed import registry

__all__ = [
    "ROOT",
    "SGTM",
    "FakeVendor",
    "Received",
    "Reply",
    "SgtmProcess",
    "SgtmServer",
    "eventually",
    "free_port",
    "wait_until",
]

ROOT = Path(__file__).resolve().parent.parent
SGTM = str(Path(sys.executable).parent / "sgtm")


POLL = 0.02  # how often the polling helpers look again

# What the HTTP protocol (sgtm/protocol.py) reads once per process: only a process of its own
# has other values.
PROTOCOL_LIMITS = (
    "SGTM_HEADER_TIMEOUT",
    "SGTM_MAX_HEADER_BYTES",
    "SGTM_WRITE_TIMEOUT",
    "SGTM_MIN_WRITE_RATE",
    "SGTM_MAX_PIPELINED",
)


def wait_until(check: Callable[[], Any], what: str = "condition", timeout: float = 10.0) -> Any:
    """Poll `check()` until it returns something truthy, and return it; fail naming `what`.
    The one polling helper of the suite (`eventually` is the same for async tests)."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g}s")
        time.sleep(POLL)
    return value


async def eventually(
    check: Callable[[], Any | Awaitable[Any]],
    what: str = "condition",
    timeout: float = 15.0,  # noqa: ASYNC109 - a polling deadline, nothing to cancel
) -> Any:
    """`wait_until` for async tests: `check()` may be a coroutine function, and the loop keeps
    running (the engine under test works) while it waits."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g}s")
        await asyncio.sleep(POLL)


def _data_dir(config: str | Path) -> str:
    """The outbox belongs to the config: a server restarted on the same config file finds what
    the previous one acknowledged, and tests with other configs never share it."""
    key = hashlib.sha256(str(Path(config).resolve()).encode()).hexdigest()[:16]
    return str(Path(tempfile.gettempdir()) / f"sgtm-data-{key}")


class _LogRecords:
    """The JSON log lines `sgtm serve` would write on stderr, kept in memory: what is logged on
    the server's thread (the test's own clients log on theirs)."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()
        self.handler = logging.StreamHandler(self.buffer)
        self.handler.setFormatter(JsonFormatter())
        self.thread: int | None = None
        self.handler.addFilter(lambda record: threading.get_ident() == self.thread)
        self._level = logging.WARNING

    def start(self) -> None:
        root = logging.getLogger()
        self._level = root.level
        root.addHandler(self.handler)
        root.setLevel(logging.INFO)  # sgtm serve's default level

    def stop(self) -> None:
        root = logging.getLogger()
        root.removeHandler(self.handler)
        root.setLevel(self._level)

    def text(self) -> str:
        self.handler.acquire()
        try:
            return self.buffer.getvalue()
        finally:
            self.handler.release()


class _Logs:
    """What both servers offer to read their logs."""

    def logs(self) -> str:
        raise NotImplementedError

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON lines written so far. A line the server is still writing (no newline yet:
        a process's log is read while it runs) is left for the next read."""
        text = self.logs()
        complete = text[: text.rfind("\n") + 1]
        return [json.loads(line) for line in complete.splitlines() if line.startswith("{")]

    def wait_for_log(self, match: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """The first JSON log record `match` accepts, once the server has written it."""
        return wait_until(lambda: next(filter(match, self.log_records()), None), what)


class SgtmServer(_Logs):
    """`sgtm serve` in this process on a free loopback port: `create_app` on the containers, in
    uvicorn with `sgtm serve`'s options, on a thread. `env` is the server's environment (over
    this process's), read while the server is built as `sgtm serve` reads it at start. Counters
    start at zero, as in a new process."""

    def __init__(
        self,
        config: str | Path,
        env: dict[str, str] | None = None,
        watch: float | None = None,
        **app_options: Any,
    ) -> None:
        env = dict(env or {})
        if set(PROTOCOL_LIMITS) & set(env):
            raise ValueError("protocol limits need their own process: use SgtmProcess")
        # The listening socket is bound here and handed to uvicorn: a port picked first and
        # bound later can be taken in between by another test process.
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = env.setdefault("SGTM_DATA_DIR", _data_dir(config))
        self._logs = _LogRecords()
        with mock.patch.dict(os.environ, env):
            # Reloads read the files again with this environment (a thread takes no signals:
            # `reload()` below is this server's SIGHUP).
            reload = ReloadOptions(
                (config,), watch=watch, environ=dict(os.environ), sighup=False, registry=registry()
            )
            specs = load_containers([config], registry(), dict(os.environ))
            limits = limits_from_env()
            app = create_app(specs, limits=limits, reload=reload, **app_options)
        self.app = app
        self.metrics = app.state.metrics
        options = uvicorn_options("127.0.0.1", self.port, limits)
        self.server = uvicorn.Server(uvicorn.Config(app, **options))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self._logs.start()
        self.thread.start()
        try:
            wait_until(
                lambda: self.server.started or not self.thread.is_alive(), "sgtm serve started", 20
            )
        except AssertionError:
            self.stop()
            raise
        if not self.server.started:
            self.stop()
            raise RuntimeError(f"sgtm serve did not start: {self.logs()}")

    def _run(self) -> None:
        self._logs.thread = threading.get_ident()
        self.server.run(sockets=[self.socket])

    def logs(self) -> str:
        return self._logs.text()

    def reload(self, timeout: float = 30.0) -> bool:
        """What SIGHUP does to `sgtm serve`: load the containers again, on the server's loop;
        whether the new version is served."""
        reloader = self.app.state.reloader
        future = asyncio.run_coroutine_threadsafe(reloader.reload("test"), reloader.loop)
        return bool(future.result(timeout))

    def stop(self) -> int:
        """Shut down as on SIGTERM: stop accepting, drain deliveries, close the store."""
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()
        self._logs.stop()
        return 0

    def __enter__(self) -> SgtmServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SgtmProcess(_Logs):
    """`sgtm serve` in a subprocess on a free loopback port."""

    def __init__(self, config: str | Path, env: dict[str, str] | None = None, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stderr_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"sgtm-{self.port}.log"
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in stop()
        env = dict(env or {})
        self.data_dir = env.setdefault("SGTM_DATA_DIR", _data_dir(config))
        self.proc = subprocess.Popen(
            [SGTM, "serve", "-c", str(config), "--port", str(self.port), *extra],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            cwd=str(ROOT),
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sgtm serve exited {self.proc.returncode}: {self.logs()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"sgtm serve did not become ready: {self.logs()}")

    def logs(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def stop(self, sig: int | None = None) -> int:
        if self.proc.poll() is None:
            if sig is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()
        return self.proc.returncode

    def __enter__(self) -> SgtmProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
