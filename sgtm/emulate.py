"""`sgtm emulate`: the container as a pure function of recorded requests or events.

It runs the real pipeline with delivery replaced by a recorder, an in-memory dedupe store for the
run and a fixed clock (`--now`), so the same input always prints the same output: one JSON
object per request, one line each, in docs/design.md's format. A recorded request line is routed
and turned into a `HitRequest` by sgtm/ingress.py, as `sgtm serve` does with a socket's request.
Secrets from the environment are shown as `${NAME}`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from sgtm import placeholders
from sgtm.config import ContainerSpec
from sgtm.container import Container, EventTrace, HandleResult, TagTrace
from sgtm.dedupe import MemoryDedupe
from sgtm.delivery.recorder import RecorderDelivery
from sgtm.ingress import BadHost, HostRouter, host_name, recorded_host, recorded_request
from sgtm.plugin import ClientResponse, Outbound
from sgtm.redact import Redactor


class RequestLine(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str
    method: str = "GET"
    headers: dict[str, str] = {}
    body: str = ""
    ip: str | None = "127.0.0.1"
    host: str | None = None


class InputError(Exception):
    pass


class Emulator:
    def __init__(self, specs: list[ContainerSpec], now: float, seed: int = 0) -> None:
        recorder = RecorderDelivery()
        dedupe = MemoryDedupe()
        clock = lambda: now  # noqa: E731 - the fixed clock is the point
        # Ids tags (ctx.unique_id) and clients (ctx.random) draw repeat from run to run.
        rng = random.Random(seed)

        def new_id() -> str:
            return f"{rng.getrandbits(128):032x}"

        self.containers = [Container(spec, recorder, dedupe, clock, new_id, rng) for spec in specs]
        self.router = HostRouter(self.containers)
        self.now = now

    def container_for(self, host: str | None) -> Container:
        container = self.router.route(host)
        if container is not None:
            return container
        if host is None:  # no host given and no default container: the first one
            return self.containers[0]
        raise InputError(f"no container serves host {host!r}")

    async def request(self, line: RequestLine) -> dict[str, Any]:
        try:
            host = recorded_host(line.url, line.headers, line.host)
        except BadHost as exc:
            raise InputError(str(exc)) from None
        container = self.container_for(host)
        if host is None:
            host = container.spec.hosts[0] if container.spec.hosts else "localhost"
        request = recorded_request(
            container.spec.privacy,
            url=line.url,
            method=line.method,
            headers=line.headers,
            body=line.body.encode("utf-8", "surrogateescape"),
            peer=line.ip,
            host=host,
        )
        result = await container.handle(request, trace=True)
        return render_result(result, container)

    async def events(self, events: list[dict[str, Any]], host: str | None) -> dict[str, Any]:
        try:
            container = self.container_for(host_name(host) if host else None)
        except BadHost as exc:
            raise InputError(str(exc)) from None
        _, traces = await container.run_events(events, None, None, self.now, trace=True)
        return {
            "client": None,
            "response": None,
            "events": [render_event(t, container) for t in traces],
            "error": None,
        }


def render_result(result: HandleResult, container: Container) -> dict[str, Any]:
    return {
        "client": result.client,
        "response": render_response(result.response),
        "events": [render_event(t, container) for t in result.events],
        "error": container.redact(result.error) if result.error else None,
    }


def render_response(response: ClientResponse) -> dict[str, Any]:
    headers: dict[str, Any] = dict(response.headers)
    cookies = [c.header_value() for c in response.cookies]
    if cookies:
        headers["set-cookie"] = cookies[0] if len(cookies) == 1 else cookies
    return {
        "status": response.status,
        "headers": headers,
        "body": response.body.decode("utf-8", "replace"),
    }


def render_event(trace: EventTrace, container: Container) -> dict[str, Any]:
    return {"data": trace.data, "tags": [render_tag(t, container) for t in trace.tags]}


def render_tag(trace: TagTrace, container: Container) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "name": trace.name,
        "type": trace.type,
        "fired": trace.fired,
        "reason": trace.reason,
        "requests": [
            render_outbound(container.as_sent(trace.type, o), container.redact)
            for o in trace.requests
        ],
    }
    if trace.warnings:
        rendered["warnings"] = trace.warnings
    return rendered


def render_outbound(outbound: Outbound, redact: Redactor) -> dict[str, Any]:
    """A request as people read it: secrets as `${NAME}`, credential placeholders without their
    nonce (`{{credential}}`), JSON bodies parsed."""

    def show(text: str) -> str:
        return placeholders.for_display(redact(text))

    text = show(outbound.body.decode("utf-8", "replace"))
    body: Any = text
    if text[:1] in ("{", "["):
        try:
            body = msgspec.json.decode(text)
        except msgspec.DecodeError:
            body = text
    return {
        "method": outbound.method,
        "url": show(outbound.url),
        "headers": {k: show(v) for k, v in outbound.headers.items()},
        "body": body,
    }


def ndjson(lines: Iterable[str]) -> Iterator[tuple[int, Any]]:
    """(line number, decoded value) for each non-blank line; InputError names the bad line."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, msgspec.json.decode(line)
        except msgspec.DecodeError as exc:
            raise InputError(f"line {number}: invalid JSON: {exc}") from None


def request_line(number: int, value: Any) -> RequestLine:
    try:
        return msgspec.convert(value, RequestLine)
    except msgspec.ValidationError as exc:
        raise InputError(f"line {number}: {exc}") from None
