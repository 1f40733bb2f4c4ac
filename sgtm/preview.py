"""Preview sessions: the `sgtm emulate` view of live requests, with their deliveries.

An admin starts a session (`POST /_sgtm/api/preview`); for an hour, every tagging request that
carries its id in the `X-Sgtm-Preview` header or the `sgtm_preview` cookie is traced: the
container runs it as always and also says, per event and tag, what fired and why not, and the
requests built carry a reference to their place in the trace, so the delivery engine records
their delivery state there as it works (sgtm.delivery.store.Outcome.preview).

Sessions, traces and delivery states live in the delivery store (SQLite or Redis), so every
worker and both roles of a split deployment see the same sessions. Requests without a preview
id cost one header lookup; an unknown or expired id is simply not traced (a short per-process
cache keeps hostile ids from reaching the store on every request).
"""

from __future__ import annotations

import logging
import secrets
import string
import time
from collections.abc import Callable
from typing import Any

import msgspec

from sgtm.container import Container, HandleResult
from sgtm.delivery.base import DeliveryUnavailable
from sgtm.delivery.store import PREVIEW_LIFE, Outcome, Store
from sgtm.emulate import render_result
from sgtm.request import HitRequest
from sgtm.scope import Scope

log = logging.getLogger("sgtm.preview")

HEADER = "x-sgtm-preview"
COOKIE = "sgtm_preview"
CACHE_FOR = 5.0  # seconds a process trusts what it learnt about an id
CACHE_SIZE = 1024
_ID_CHARS = frozenset(string.ascii_letters + string.digits + "-_")


def valid_id(value: str) -> bool:
    """What secrets.token_urlsafe(24) makes: 32 URL-safe characters."""
    return len(value) == 32 and _ID_CHARS.issuperset(value)


def requested(request: HitRequest) -> str | None:
    """The preview id a tagging request carries, if any."""
    value = request.headers.get(HEADER)
    if value is None:
        cookie = request.headers.get("cookie")
        if cookie is None or COOKIE not in cookie:
            return None
        value = request.cookies.get(COOKIE)
    return value if value and valid_id(value) else None


class Previews:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._known: dict[str, tuple[float | None, float]] = {}  # id -> (expires, cached until)

    async def open(self) -> tuple[str, float]:
        """A new session: (id, when it ends)."""
        now = self.clock()
        id = secrets.token_urlsafe(24)
        expires = now + PREVIEW_LIFE
        await self.store.preview_open(id, expires, now)
        self._known.pop(id, None)
        return id, expires

    async def live(self, id: str) -> bool:
        now = self.clock()
        known = self._known.get(id)
        if known is None or known[1] <= now:
            try:
                expires = await self.store.preview_expires(id, now)
            except DeliveryUnavailable:
                expires = None
            if len(self._known) >= CACHE_SIZE:
                self._known.clear()
            known = (expires, now + CACHE_FOR)
            self._known[id] = known
        return known[0] is not None and known[0] > now

    async def handle(self, container: Container, request: HitRequest, id: str) -> HandleResult:
        """The request handled by its container, traced into session `id` when it is live."""
        if not await self.live(id):
            return await container.handle(request)
        key = f"{time.time_ns():x}{secrets.token_hex(4)}"
        result = await container.handle(request, preview=f"{id}/{key}")
        trace = render_trace(result, container, request, key, self.clock())
        try:
            await self.store.preview_add(id, msgspec.json.encode(trace))
        except DeliveryUnavailable as exc:
            log.warning("preview trace not kept: %s", exc)
        return result

    async def read(self, id: str) -> dict[str, Any] | None:
        """A live session's traces, oldest first, each delivery in its latest known state."""
        data = await self.store.preview_read(id, self.clock())
        if data is None:
            return None
        traces = [msgspec.json.decode(t) for t in data.traces]
        for trace in traces:
            merge_deliveries(trace, f"{id}/{trace['id']}", data.deliveries)
        return {"id": id, "expires": data.expires, "traces": traces}


PENDING: dict[str, Any] = {"state": "pending", "attempts": 0, "status": None, "response": None}


def render_trace(
    result: HandleResult, container: Container, request: HitRequest, key: str, now: float
) -> dict[str, Any]:
    """`sgtm emulate`'s output for the request, with its id, time and request line, the
    history key of each event and, on each request a tag handed to delivery, its state."""
    trace: dict[str, Any] = {
        "id": key,
        "at": now,
        "container": container.name,
        "request": {"method": request.method, "url": request.url},
        **render_result(result, container),
    }
    dry_run = {tag.name for tag in container.spec.tags if tag.dry_run}
    for event, event_trace in zip(trace["events"], result.events, strict=True):
        event["event_id"] = event_trace.event_id or None
        event["variables"] = variable_values(event_trace.data, request, result.client, container)
        for tag in event["tags"]:
            if tag["fired"] and tag["name"] not in dry_run:
                for sent in tag["requests"]:
                    sent["delivery"] = dict(PENDING)
    return trace


def variable_values(
    event: dict[str, Any], request: HitRequest, client: str | None, container: Container
) -> dict[str, Any]:
    """Each container variable's value for the event, as its tags saw it (secrets masked)."""
    scope = Scope(event, request, client, container.spec.variables)
    values: dict[str, Any] = {}
    for name in container.spec.variables:
        try:
            value = scope.var(name)
        except Exception as exc:  # a variable that fails here failed for the tags too
            value = f"(error: {type(exc).__name__})"
        if isinstance(value, str):
            value = container.redact(value)
        elif not isinstance(value, int | float | bool | type(None)):
            value = container.redact(msgspec.json.encode(value, enc_hook=str).decode())
        values[name] = value
    return values


def merge_deliveries(trace: dict[str, Any], prefix: str, states: dict[str, Outcome]) -> None:
    for e, event in enumerate(trace["events"]):
        for t, tag in enumerate(event["tags"]):
            for r, sent in enumerate(tag["requests"]):
                outcome = states.get(f"{prefix}/{e}/{t}/{r}")
                if outcome is not None and "delivery" in sent:
                    sent["delivery"] = {
                        "state": outcome.state,
                        "attempts": outcome.attempts,
                        "status": outcome.status or None,
                        "response": outcome.response,
                    }
