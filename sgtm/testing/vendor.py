"""Fake vendors for tests: one scripted vendor, reachable in-process or over a real socket.

A `Vendor` records every request it gets, may refuse a payload (`check` returns a problem: the
answer is 400) and answers from a script: `responses` in order (a status or a full `Reply`), then
`default_status`, with a body from `reply(request, status)` when the script gives none.

- `MockTransport(...)` is that vendor in-process: the delivery engine's transport, so a tag's
  requests reach it without a socket (httpx's MockTransport, for sgtm's delivery).
- `FakeVendor(...)` is that vendor as a real HTTP server on loopback (uvicorn in a thread), for
  tests that go through a real socket or a real `sgtm serve`.

The same `check` and `reply` functions serve both, so a fake written once against a vendor's
documented schema checks unit tests and end-to-end tests alike.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import uvicorn

from sgtm.delivery.transport import Response, Transport, TransportError


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    """A request as the vendor got it; header names lower-case."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    host: str = ""

    def json(self) -> Any:
        """The body decoded as JSON (ValueError when it is not)."""
        return json.loads(self.body)

    def params(self) -> dict[str, str]:
        """The query parameters, first value of each."""
        out: dict[str, str] = {}
        for key, value in parse_qsl(self.query, keep_blank_values=True):
            out.setdefault(key, value)
        return out


@dataclass
class Reply:
    """A scripted answer: status, headers, body, and how long to wait before answering."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0


@dataclass
class Vendor:
    """Answers `responses` in order, then `default_status`; `check` may reject a payload (400);
    `reply(request, status)` gives the response body (JSON), empty by default."""

    default_status: int = 200
    responses: list[int | Reply] = field(default_factory=list)
    check: Callable[[Received], str | None] | None = None
    reply: Callable[[Received, int], bytes] | None = None
    received: list[Received] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()  # FakeVendor answers from its server thread

    def answer(self, got: Received) -> Reply:
        """Record `got` and decide the answer, body included."""
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
        body = answer.body or (self.reply(got, answer.status) if self.reply else b"")
        return Reply(status=answer.status, headers=answer.headers, body=body, delay=answer.delay)


@dataclass
class MockTransport(Vendor, Transport):
    """The vendor as the delivery engine's transport: no socket, no real waiting. A scripted
    `Reply.delay` at or above the request's time limit is a timeout, as the real transport
    reports it."""

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes, time_limit: float
    ) -> Response:
        parts = urlsplit(url)
        got = Received(
            method=method,
            path=parts.path or "/",
            query=parts.query,
            headers={k.lower(): v for k, v in headers.items()},
            body=body,
            host=parts.netloc,
        )
        answer = self.answer(got)
        if answer.delay >= time_limit:
            raise TransportError("timeout")
        headers_out = {k.lower(): v for k, v in answer.headers.items()}
        if answer.body:
            headers_out.setdefault("content-type", "application/json")
        return Response(status=answer.status, headers=headers_out, body=answer.body)


@dataclass
class FakeVendor(Vendor):
    """The vendor as a real uvicorn server in a thread on loopback (`url`); use it as a context
    manager. `delay` holds every answer; `port` fixes the port (a vendor that is "down", nothing
    listening, comes back there)."""

    delay: float = 0.0
    port: int = 0
    in_flight: int = 0
    max_in_flight: int = 0  # the most requests it was answering at once

    def __post_init__(self) -> None:
        super().__post_init__()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
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
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        got = Received(
            method=scope["method"],
            path=scope["path"],
            query=scope["query_string"].decode(),
            headers=headers,
            body=body,
            host=headers.get("host", ""),
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
        answer = self.answer(got)
        if answer.delay:
            await asyncio.sleep(answer.delay)
        headers = [(b"content-length", str(len(answer.body)).encode())]
        if answer.body:
            headers.append((b"content-type", b"application/json"))
        headers.extend((k.lower().encode(), v.encode()) for k, v in answer.headers.items())
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

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
        """The requests received, once there are at least `count` (AssertionError after
        `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} requests, got {len(self.received)}")
