"""`sgtm emulate`: the container as a pure function of recorded requests or events.

This is the one runner `sgtm emulate`, `sgtm test` (sgtm/scenarios.py) and `sgtm diff`
(sgtm/diff.py) share: they differ only in what they do with its output.

It runs the real pipeline with delivery replaced by a recorder, an in-memory dedupe store for the
run and a fixed clock (`--now`), so the same input always prints the same output: one JSON
object per request, one line each, in docs/design.md's format. A recorded request line is routed
and turned into a `HitRequest` by sgtm/ingress.py, as `sgtm serve` does with a socket's request.
Secrets from the environment are shown as `${NAME}`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

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


class SeededOnUse(random.Random):
    """A `random.Random(seed)` whose seeding waits for its first draw: seeding fills the Mersenne
    Twister's whole state (about 20 us), and most inputs never draw from the client's stream.
    Every draw goes through `random` or `getrandbits`, so the numbers are those of
    `random.Random(seed)`."""

    _pending: str | None = None

    def seed_on_use(self, seed: str) -> None:
        self._pending = seed

    def _ready(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            super().seed(pending)

    def seed(self, a: Any = None, version: int = 2) -> None:
        self._pending = None
        super().seed(a, version)

    def random(self) -> float:
        self._ready()
        return super().random()

    def getrandbits(self, k: int, /) -> int:
        self._ready()
        return super().getrandbits(k)

    def getstate(self) -> tuple[Any, ...]:
        self._ready()
        return super().getstate()

    def setstate(self, state: tuple[Any, ...]) -> None:
        self._pending = None
        super().setstate(state)


class Emulator:
    def __init__(self, specs: list[ContainerSpec], now: float, seed: int = 0) -> None:
        recorder = RecorderDelivery()
        dedupe = MemoryDedupe()
        clock = lambda: now  # noqa: E731 - the fixed clock is the point
        self.seed = seed
        self.inputs = 0  # inputs run so far: ids are drawn per input, container and tag
        self.streams: dict[str, random.Random] = {}
        self.client_stream = SeededOnUse()
        self.containers = [
            Container(spec, recorder, dedupe, clock, tag_ids=self._tag_ids) for spec in specs
        ]
        self.router = HostRouter(self.containers)
        self.now = now

    def _stream(self, key: str) -> random.Random:
        """The generator of `key` for the current input: the same seed, input number and key
        give the same ids, whatever other tags or inputs drew (`sgtm diff` compares versions
        of a container where a tag may fire or not)."""
        stream = self.streams.get(key)
        if stream is None:
            stream = self.streams[key] = random.Random(self._stream_seed(key))
        return stream

    def _stream_seed(self, key: str) -> str:
        return f"{self.seed}/{self.inputs}/{key}"

    def _tag_ids(self, tag: str) -> Callable[[], str]:
        # One container runs an input: the tag's name is key enough, and the same in the two
        # versions `sgtm diff` compares, whatever their files are called.
        def new_id() -> str:
            return f"{self._stream(f'tag/{tag}').getrandbits(128):032x}"

        return new_id

    def _next_input(self, container: Container) -> None:
        self.inputs += 1
        self.streams = {}
        # The client's stream is seeded as `_stream("client")` would be, on its first draw.
        self.client_stream.seed_on_use(self._stream_seed("client"))
        container.rng = self.client_stream

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
        self._next_input(container)
        result = await container.handle(request, trace=True)
        return render_result(result, container)

    async def events(self, events: list[dict[str, Any]], host: str | None) -> dict[str, Any]:
        try:
            container = self.container_for(host_name(host) if host else None)
        except BadHost as exc:
            raise InputError(str(exc)) from None
        self._next_input(container)
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

    masks = bool(redact)

    def show(text: str) -> str:
        # Most texts hold neither a placeholder nor, without secrets, anything to mask: those
        # are shown as they are, without the two calls (a request has a handful of texts).
        if masks:
            text = redact(text)
        return placeholders.for_display(text) if "{{" in text else text

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
        if len(line) > MAX_LINE_CHARS:
            raise InputError(f"line {number}: longer than {MAX_LINE_CHARS} characters")
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


MAX_LINE_CHARS = 16 * 1024 * 1024


def parse_now(value: str | float) -> float:
    """Epoch seconds or ISO 8601 (`2026-01-01T00:00:00Z`); ValueError otherwise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone (add Z or +00:00)")
    return moment.timestamp()


def request_view(request: dict[str, Any]) -> dict[str, Any]:
    """A rendered request (`render_outbound`) in parts, as `sgtm test` addresses them and
    `sgtm diff` compares them: the URL's components and query parameters, headers by lower-case
    name, the body as parsed."""
    parts = urlsplit(request["url"])
    query: dict[str, Any] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in query:
            previous = query[name]
            query[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            query[name] = value
    return {
        "method": request["method"],
        "url": {
            "scheme": parts.scheme,
            "host": parts.netloc,
            "path": parts.path,
            "query": query,
        },
        "headers": {k.lower(): v for k, v in request["headers"].items()},
        "body": request["body"],
    }


_STEP = re.compile(r"\[(\d+)\]|([^.\[\]]+)")
MISSING = object()


def path_steps(path: str) -> list[str | int] | None:
    """`data[0].event_name` as steps (["data", 0, "event_name"]); None if it is not a path."""
    steps: list[str | int] = []
    position = 0
    while position < len(path):
        if path[position] == "." and steps and position + 1 < len(path):
            position += 1
        match = _STEP.match(path, position)
        if match is None:
            return None
        steps.append(int(match.group(1)) if match.group(1) is not None else match.group(2))
        position = match.end()
    return steps or None


def path_get(value: Any, steps: list[str | int]) -> Any:
    """The value at `steps` inside `value`, or MISSING."""
    for step in steps:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return MISSING
        elif not isinstance(value, dict) or step not in value:
            return MISSING
        value = value[step]
    return value


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of a JSON value by its path (`body.data[0].event_name`); empty containers are
    leaves, so a list that became empty is seen."""
    out: dict[str, Any] = {}
    stack: list[tuple[str, Any]] = [(prefix, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict) and item:
            for key, child in item.items():
                stack.append((f"{path}.{key}" if path else str(key), child))
        elif isinstance(item, list) and item:
            for index, child in enumerate(item):
                stack.append((f"{path}[{index}]", child))
        else:
            out[path] = item
    return out
