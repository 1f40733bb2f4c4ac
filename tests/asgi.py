"""Call an ASGI app in-process with a request exactly as given: repeated headers, raw bytes, a body
in chunks, a client that goes away. httpx's ASGITransport normalizes what these tests need raw."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Answer:
    status: int | None = None  # None: the app sent no response
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]


async def call(
    app: Any,
    method: str = "GET",
    target: str = "/",
    headers: list[tuple[str, str]] | None = None,
    chunks: list[bytes] | None = None,
    *,
    disconnect: bool = False,
    stall: bool = False,
    client: tuple[str, int] | None = ("203.0.113.9", 50000),
    into: Answer | None = None,
) -> Answer:
    """`chunks` arrive as http.request messages (the last without more_body); with `disconnect`
    the client goes away after them instead of finishing the body, with `stall` it sends nothing
    more and stays. The answer is written `into` the given one, if any (read it when the app
    raises)."""
    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers or []],
        "client": client,
        "server": ("127.0.0.1", 8080),
    }
    parts = list(chunks or [b""])
    messages: list[dict[str, Any]] = [
        {
            "type": "http.request",
            "body": part,
            "more_body": disconnect or stall or i < len(parts) - 1,
        }
        for i, part in enumerate(parts)
    ]
    if disconnect:
        messages.append({"type": "http.disconnect"})
    answer = Answer() if into is None else into

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        if stall:
            await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = [(k.decode(), v.decode()) for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")

    await app(scope, receive, send)
    return answer
