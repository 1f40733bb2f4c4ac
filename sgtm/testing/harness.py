"""`Harness`: a container run in-process, for testing plugins and containers.

The harness loads a container (YAML text or a dict) with the installed plugins plus the ones under
test, and runs the real pipeline on requests or on event data, with a clock that moves only when
told. Nothing is sent while it runs: every request a tag builds is captured. `deliver()` then
sends what was captured once, the way the delivery engine sends it (lanes, batches, `merge`,
sealed secrets, run-time credentials, `classify` / `classify_batch`, Retry-After), to a
`MockTransport` or a real server, and reports each item's verdict.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

import yaml

from sgtm.composition import routes_for
from sgtm.config import ContainerSpec, load_text
from sgtm.container import Container, EventTrace, TagTrace
from sgtm.dedupe import MemoryDedupe
from sgtm.delivery.base import Submission
from sgtm.delivery.engine import DeliveryEngine, Lane, _batch_key, split
from sgtm.delivery.recorder import RecorderDelivery
from sgtm.delivery.store import Job, Payload, Store
from sgtm.delivery.transport import Response, Transport
from sgtm.ingress import recorded_host, recorded_request
from sgtm.plugin import (
    Client,
    ClientResponse,
    EventData,
    HitRequest,
    Outbound,
    Tag,
    Variable,
    Verdict,
    hookimpl,
)
from sgtm.plugins import load_registry

# 2026-09-21T14:13:20Z: any fixed time will do; a fixed one makes every build repeatable.
DEFAULT_NOW = 1_790_000_000.0


class FixedClock:
    """Seconds since the epoch that change only with `advance` (or by setting `now`)."""

    def __init__(self, now: float = DEFAULT_NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Result:
    """What one request, or one run of events, did in the container."""

    client: str | None  # the client that claimed the request; None for events fed straight in
    response: ClientResponse | None  # None for events fed straight in
    events: list[EventTrace]  # per event: its data and, per tag, whether it fired and why not
    error: str | None = None
    container: Container | None = None

    @property
    def status(self) -> int | None:
        return self.response.status if self.response is not None else None

    @property
    def data(self) -> list[EventData]:
        """The event data of each event, as the client parsed it (or as fed in)."""
        return [trace.data for trace in self.events]

    def tag(self, name: str) -> list[TagTrace]:
        """The tag's trace for each event (KeyError when the container has no such tag)."""
        traces = [t for event in self.events for t in event.tags if t.name == name]
        if self.events and not traces:
            raise KeyError(f"no tag named {name!r} in the container")
        return traces

    def fired(self, name: str) -> bool:
        """Whether the tag fired for any event."""
        return any(trace.fired for trace in self.tag(name))

    def reasons(self, name: str) -> list[str | None]:
        """Why the tag did not fire, per event (None where it fired): `trigger`, `blocked`,
        `consent:<type>`, `dedupe`, `paused`, `invalid: <why>`."""
        return [trace.reason for trace in self.tag(name)]

    def warnings(self, name: str) -> list[str]:
        """What the tag changed to send the events (`ctx.warn`), over every event."""
        return [w for trace in self.tag(name) for w in trace.warnings]

    def requests(self, name: str | None = None) -> list[Outbound]:
        """The requests the tag (every tag without a name) built, each as the vendor receives
        it when sent alone: a batching tag's request already went through its `merge`."""
        traces = self.tag(name) if name is not None else [t for e in self.events for t in e.tags]
        assert self.container is not None
        as_sent = self.container.as_sent
        return [as_sent(t.type, outbound) for t in traces for outbound in t.requests]


@dataclass(frozen=True)
class Delivered:
    """One request a tag built (`item`), after one delivery attempt."""

    tag: str
    item: Outbound  # as the tag's build returned it
    verdict: Verdict  # the tag's classification (or the engine's: no response is a retry)
    status: int  # the vendor's HTTP status; 0 when there was no response
    batch: int  # requests sharing a number travelled in one vendor request

    @property
    def outcome(self) -> str:
        return self.verdict.outcome


def json_body(request: Outbound) -> Any:
    """A built request's body decoded as JSON (ValueError when it is not)."""
    return json.loads(request.body)


def query_params(request: Outbound) -> dict[str, str]:
    """A built request's query parameters, first value of each."""
    out: dict[str, str] = {}
    for key, value in parse_qsl(urlsplit(request.url).query, keep_blank_values=True):
        out.setdefault(key, value)
    return out


class Harness:
    """A container in-process: `await request(...)` / `await events(...)` run the pipeline;
    `built` holds every request tags built (never sent); `await deliver(...)` sends them once.

    `container`: YAML text or the same structure as a dict. `plugins`: what to register besides
    the installed plugins (`installed=False`: only these and the core's): plugin modules (or
    objects with hook implementations), or `Client` / `Tag` / `Variable` instances, which are
    registered through the same hooks and checks as a plugin's. `environ`: what `${NAME}` in the
    container reads (never the process environment, so a test cannot depend on the machine).
    `now`: the fixed clock's start.
    """

    def __init__(
        self,
        container: str | Mapping[str, Any],
        *,
        plugins: Sequence[object] = (),
        environ: Mapping[str, str] | None = None,
        now: float = DEFAULT_NOW,
        installed: bool = True,
        file: str = "container.yaml",
    ) -> None:
        text = container if isinstance(container, str) else yaml.safe_dump(dict(container))
        types = [p for p in plugins if isinstance(p, Client | Tag | Variable)]
        others = [p for p in plugins if not isinstance(p, Client | Tag | Variable)]
        extra = [*others, _TypesPlugin(types)] if types else others
        registry = load_registry(extra, installed=installed)
        self.spec: ContainerSpec = load_text(text, file, registry, environ=dict(environ or {}))
        self.clock = FixedClock(now)
        self.recorder = RecorderDelivery()
        self.container = Container(
            self.spec, self.recorder, MemoryDedupe(clock=self.clock), clock=self.clock
        )
        self._pending: list[tuple[Submission, int]] = []  # (submission, attempts so far)

    @property
    def built(self) -> list[Submission]:
        """Every request the container's tags built (dry-run tags excluded), in order."""
        return list(self.recorder.submitted)

    async def request(
        self,
        url: str | HitRequest,
        *,
        method: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | str = b"",
        ip: str | None = "203.0.113.7",
        host: str | None = None,
    ) -> Result:
        """Run one request: a path with its query (`/g/collect?v=2&...`), a full URL, or a
        `HitRequest` as given. The client IP goes through the container's privacy settings
        (trusted proxies and `X-Forwarded-For`, anonymization) as in `sgtm serve`."""
        if isinstance(url, HitRequest):
            request = url
        else:
            request = self._hit(url, method, headers, body, ip, host)
        before = len(self.recorder.submitted)
        result = await self.container.handle(request, trace=True)
        self._queue(before)
        return Result(result.client, result.response, result.events, result.error, self.container)

    async def events(self, *events: EventData, request: HitRequest | None = None) -> Result:
        """Run event data straight through triggers, consent, transformations and tags, as
        `sgtm emulate --events` does (no client; `request` is what variables see, if any)."""
        before = len(self.recorder.submitted)
        submissions, traces = await self.container.run_events(
            [dict(event) for event in events], request, None, self.clock(), trace=True
        )
        if submissions:
            await self.recorder.submit(submissions)
        self._queue(before)
        return Result(None, None, traces, None, self.container)

    async def deliver(self, transport: Transport | None = None) -> list[Delivered]:
        """Send every request built since the last `deliver` (and every one a vendor asked to
        retry), once, as the delivery engine sends it; one `Delivered` per request, in order.

        `transport`: a `MockTransport` (the vendor in-process), or by default the real HTTP
        transport (for a `FakeVendor` on loopback). Retried requests wait for the next call
        (advance the clock first to pass a Retry-After); done and dead ones are finished.
        """
        pending, self._pending = self._pending, []
        attempt = _Attempt(self.spec, transport or Transport(), self.clock)
        await attempt.transport.start()
        try:
            delivered = await attempt.run(pending)
        finally:
            await attempt.transport.close()
        for (submission, attempts), outcome in zip(pending, delivered, strict=True):
            if outcome.outcome == "retry":
                self._pending.append((submission, attempts + 1))
        return delivered

    def _queue(self, before: int) -> None:
        self._pending.extend((s, 0) for s in self.recorder.submitted[before:])

    def _hit(
        self,
        url: str,
        method: str | None,
        headers: Mapping[str, str] | None,
        body: bytes | str,
        ip: str | None,
        host: str | None,
    ) -> HitRequest:
        # The way `sgtm serve` and `sgtm emulate` see a request (sgtm/ingress.py).
        headers = headers or {}
        raw = body.encode() if isinstance(body, str) else body
        name = recorded_host(url, headers, host)
        return recorded_request(
            self.spec.privacy,
            url=url,
            method=method or ("POST" if raw else "GET"),
            headers=headers,
            body=raw,
            peer=ip,
            host=name or (self.spec.hosts[0] if self.spec.hosts else "localhost"),
        )


class _TypesPlugin:
    """Type instances given to the harness, registered as a plugin named `harness` would."""

    __name__ = "harness"

    def __init__(self, types: list[Client[Any] | Tag[Any] | Variable[Any]]) -> None:
        self.types = types

    @hookimpl
    def register_client_types(self, register: Callable[[Client[Any]], None]) -> None:
        for item in self.types:
            if isinstance(item, Client):
                register(item)

    @hookimpl
    def register_tag_types(self, register: Callable[[Tag[Any]], None]) -> None:
        for item in self.types:
            if isinstance(item, Tag):
                register(item)

    @hookimpl
    def register_variable_types(self, register: Callable[[Variable[Any]], None]) -> None:
        for item in self.types:
            if isinstance(item, Variable):
                register(item)


class _Attempt(DeliveryEngine):
    """The delivery engine's own send path, run once per batch with the outcomes recorded
    instead of stored: the jobs are what `submit` would store, grouped in lanes and batches as
    a lane's pump groups them, sent by `_deliver_batch` (merge, secrets, credentials, classify).
    No store is opened: `_settle` is where an engine writes one, and a fresh lane's breaker
    never asks it to hasten retries."""

    def __init__(self, spec: ContainerSpec, transport: Transport, clock: FixedClock) -> None:
        super().__init__(cast(Store, None), routes_for([spec]), transport=transport, clock=clock)
        self._outcomes: dict[str, tuple[Verdict, int]] = {}

    async def run(self, pending: list[tuple[Submission, int]]) -> list[Delivered]:
        lanes: dict[str, list[Job]] = {}
        unstorable: set[str] = set()
        for number, (submission, attempts) in enumerate(pending):
            new = self.job_for(submission, self.clock())
            if new is None:  # the engine drops it (logged, counted): it is never sent
                unstorable.add(str(number))
                continue
            job = Job(
                id=str(number),
                lane=new.lane,
                created=new.created,
                attempts=attempts,
                payload=new.payload,
            )
            lanes.setdefault(new.lane, []).append(job)
        batch_of: dict[str, int] = {}  # job id -> number of the vendor request it went in
        for key, jobs in lanes.items():
            first = jobs[0].decode()
            lane = Lane(key, self.routes[(first.container, first.tag)], self)
            policy = lane.policy
            max_items = policy.batching.max_items if policy.batched else 1
            grouping = _batch_key if policy.batched else None
            for batch in split(jobs, max_items, policy.batching.max_bytes, grouping):
                sent_in = len(set(batch_of.values()))
                batch_of.update((job.id, sent_in) for job in batch)
                await self._deliver_batch(lane, batch)
        out = []
        for number, (submission, _) in enumerate(pending):
            key = str(number)
            if key in unstorable:
                reason = "the request cannot be stored (its batch_item is not plain data)"
                verdict, status, sent_in = Verdict(outcome="dead", reason=reason), 0, -1
            else:
                (verdict, status), sent_in = self._outcomes[key], batch_of[key]
            out.append(Delivered(submission.tag, submission.outbound, verdict, status, sent_in))
        return out

    async def _settle(
        self,
        lane: Lane,
        jobs: list[Job],
        verdicts: list[Verdict],
        *,
        payloads: list[Payload],
        response: Response | None = None,
        ms: float = 0.0,
        error: str = "",
    ) -> None:
        status = response.status if response is not None else 0
        for job, verdict in zip(jobs, verdicts, strict=True):
            self._outcomes[job.id] = (verdict, status)
