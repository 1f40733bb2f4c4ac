"""Real servers on loopback for integration tests: a fake vendor and `sgtm serve` itself.

The fake vendor is a real uvicorn server in a thread: it records every request and answers from a
script (status codes, delays), so tests see exactly what left sgtm over a real socket.
`SgtmProcess` runs the real CLI in a subprocess and keeps its stderr (the JSON logs).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parent.parent
SGTM = str(Path(sys.executable).parent / "sgtm")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    """A scripted answer: status, headers, body, and how long to wait before answering."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0


@dataclass
class FakeVendor:
    """Answers `responses` in order, then `default_status`; `check` may reject a payload (400);
    `reply(request, status)` gives the response body (JSON), empty by default."""

    default_status: int = 200
    responses: list[int | Reply] = field(default_factory=list)
    check: Callable[[Received], str | None] | None = None
    reply: Callable[[Received, int], bytes] | None = None
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    port: int = 0  # a fixed port: a vendor that is "down" (nothing listens) comes back there
    in_flight: int = 0
    max_in_flight: int = 0  # the most requests it was answering at once

    def __post_init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        config = uvicorn.Config(self._app, log_level="warning", lifespan="off", interface="asgi3")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        got = Received(
            method=scope["method"],
            path=scope["path"],
            query=scope["query_string"].decode(),
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body=body,
        )
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self._answer(got, send)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _answer(self, got: Received, send: Any) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        problem = self.check(got) if self.check else None
        with self._lock:
            self.received.append(got)
            if problem:
                self.errors.append(problem)
            scripted = (
                400
                if problem
                else (self.responses.pop(0) if self.responses else self.default_status)
            )
        answer = scripted if isinstance(scripted, Reply) else Reply(status=scripted)
        if answer.delay:
            await asyncio.sleep(answer.delay)
        status = answer.status
        payload = answer.body or (self.reply(got, status) if self.reply else b"")
        headers = [(b"content-length", str(len(payload)).encode())]
        if payload:
            headers.append((b"content-type", b"application/json"))
        headers.extend((k.lower().encode(), v.encode()) for k, v in answer.headers.items())
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def __enter__(self) -> FakeVendor:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake vendor did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} requests, got {len(self.received)}")


class SgtmProcess:
    """`sgtm serve` in a subprocess on a free loopback port."""

    def __init__(self, config: str | Path, env: dict[str, str] | None = None, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stderr_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"sgtm-{self.port}.log"
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in stop()
        env = dict(env or {})
        # The outbox belongs to the config: a server restarted on the same config file finds
        # what the previous one acknowledged, and tests with other configs never share it.
        key = hashlib.sha256(str(Path(config).resolve()).encode()).hexdigest()[:16]
        default_dir = Path(tempfile.gettempdir()) / f"sgtm-data-{key}"
        self.data_dir = env.setdefault("SGTM_DATA_DIR", str(default_dir))
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
