"""The Store protocol: where deliveries wait, and the records they are made of.

A store holds the outbox (deliveries not yet done), dead letters, lane schedules and dedupe keys.
Every method that changes state is durable when it returns. Leasing is how several engines (the
workers of one `sgtm serve`, or several instances on one Redis) share an outbox: a leased job is
invisible to others until its lease expires, so the jobs of a crashed engine come back by
themselves, and nothing is ever deleted before it is done or dead-lettered.

Jobs never hold run-time credentials: tags write `{{credential}}` placeholders that are filled at
send time, and the engine swaps configured secrets for `{{secret.ENV_NAME}}` before it stores
anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from sgtm import placeholders
from sgtm.plugin import Outbound

HISTORY_LIMIT = 20  # attempts kept per job: the first few and the latest are the useful ones
BODY_LIMIT = 4096  # bytes of a vendor's response body kept with a dead letter
DEFAULT_HISTORY_RETENTION = 24 * 3600.0  # how long each delivery's outcome stays findable
PREVIEW_LIFE = 3600.0  # a preview session ends an hour after it started
MAX_PREVIEWS = 20  # live preview sessions per store: starting one more ends the oldest
MAX_TRACES = 200  # traced requests kept per preview session, newest
PREVIEW_RESPONSE_LIMIT = 512  # characters of a vendor's answer shown in a preview trace


class Attempt(msgspec.Struct, array_like=True):
    at: float  # seconds since the epoch
    status: int  # 0: no HTTP response (connection error, timeout)
    error: str = ""  # the exception type, or the verdict's reason
    ms: float = 0.0


class Payload(msgspec.Struct, array_like=True):
    """What a job carries, encoded once at enqueue (msgpack)."""

    container: str
    tag: str
    tag_type: str
    outbound: Outbound
    created: float
    # The nonce the request's placeholders are bound to (sgtm.placeholders): "" when it has
    # none; None for jobs stored before nonces existed.
    nonce: str | None = None
    # For the delivery's log lines and history (Submission): "" in jobs stored before they
    # existed. The history finds deliveries by event_id and transaction_id.
    event_id: str = ""
    request_id: str = ""
    transaction_id: str = ""
    # Where a preview session shows this request's delivery ("" when it is not traced).
    preview: str = ""

    def nonces(self) -> set[str]:
        """The nonces whose placeholders may be filled in this job's request."""
        if self.nonce is None:
            return {placeholders.LEGACY}
        return {self.nonce} if self.nonce else set()


class NewJob(msgspec.Struct, kw_only=True):
    lane: str
    due: float
    created: float
    payload: bytes  # an encoded Payload


class Job(msgspec.Struct, kw_only=True):
    """A leased outbox entry."""

    id: str
    lane: str
    created: float
    attempts: int
    payload: bytes
    history: list[Attempt] = []

    def decode(self) -> Payload:
        return decode_payload(self.payload)


class Retry(msgspec.Struct, kw_only=True):
    job: Job  # with attempts and history already updated
    due: float


class LastResponse(msgspec.Struct, kw_only=True):
    status: int
    headers: dict[str, str] = {}
    body: bytes = b""  # at most BODY_LIMIT bytes


class DeadLetter(msgspec.Struct, kw_only=True):
    id: str  # the job's id while it was in the outbox; the dead letter's own id once stored
    lane: str
    container: str
    tag: str
    tag_type: str
    created: float
    died: float
    attempts: int
    reason: str
    payload: bytes
    response: LastResponse | None = None
    history: list[Attempt] = []

    def outbound(self) -> Outbound:
        return decode_payload(self.payload).outbound


class Outcome(msgspec.Struct, array_like=True):
    """One delivery's latest state, kept by event id for the delivery history (and, for a
    traced request, shown in its preview session). Written with the settlement that made it."""

    event_id: str
    transaction_id: str
    job: str  # the outbox job's id: one record per delivery, replaced as it moves on
    container: str
    tag: str
    state: str  # "delivered" | "retrying" | "dead"
    attempts: int
    status: int  # the vendor's HTTP status; 0: no answer (timeout, connection error)
    at: float
    preview: str = ""  # the preview reference of a traced request (Payload.preview)
    response: str = ""  # the start of the vendor's answer, kept for preview sessions only


class PreviewData(msgspec.Struct, kw_only=True):
    expires: float
    traces: list[bytes]  # oldest first, each an encoded trace (sgtm.preview)
    deliveries: dict[str, Outcome]  # by preview reference (Payload.preview)


class Store(Protocol):
    name: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    # -- outbox ---------------------------------------------------------------------------

    async def enqueue(self, jobs: list[NewJob]) -> None:
        """Durable on return; raises DeliveryUnavailable when the store cannot accept."""

    async def lanes(self) -> list[str]:
        """Every lane that has jobs (due, leased or waiting for a retry)."""
        ...

    async def lease(self, lane: str, now: float, limit: int, lease_for: float) -> list[Job]:
        """Up to `limit` due jobs of a lane, oldest due first, hidden from others until
        `now + lease_for` unless settled sooner."""
        ...

    async def next_due(self, lane: str) -> float | None:
        """When the lane's earliest job is due (leased jobs: when their lease ends)."""
        ...

    async def settle(
        self,
        done: list[Job],
        retry: list[Retry],
        dead: list[DeadLetter],
        outcomes: Sequence[Outcome] = (),
    ) -> None:
        """One transaction: delete what was delivered, reschedule retries, move dead letters,
        and record the outcomes in the delivery history (and in their preview sessions)."""

    async def release(self, jobs: list[Job], now: float) -> None:
        """Give leases back (shutdown): the jobs are due again at once."""

    async def hasten(self, lane: str, now: float) -> int:
        """Make every job of the lane that waits for a retry due now (the vendor is back)."""
        ...

    async def expire(self, lane: str, created_before: float, now: float, limit: int = 1000) -> int:
        """Move up to `limit` of the lane's unleased jobs created before the cutoff to the dead
        letters (a bounded transaction: a sweep after a long outage never stalls intake)."""
        ...

    async def depth(self) -> dict[str, int]:
        """Jobs waiting per lane: every lane the store knows, 0 for an emptied one until it
        is forgotten (`forget_lanes`)."""
        ...

    async def forget_lanes(self, lanes: list[str]) -> list[str]:
        """Remove the named lanes that have no job (due, leased or waiting for a retry) from
        the lanes `depth` lists, with their flush schedules; the ones removed. Atomic per lane
        with `enqueue`: a job stored meanwhile keeps its lane (or brings it back)."""
        ...

    # -- scheduled flush ------------------------------------------------------------------

    async def get_schedule(self, lane: str) -> float | None: ...

    async def set_schedule(self, lane: str, at: float) -> None: ...

    # -- dead letters ---------------------------------------------------------------------

    async def dead_letters(
        self, *, tag: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        """Newest first."""
        ...

    async def dead_letter(self, id: str) -> DeadLetter | None: ...

    async def replay(self, *, ids: list[str] | None, tag: str | None, now: float) -> int:
        """Put dead letters back in the outbox (fresh age, same idempotency key); how many."""
        ...

    async def purge(self, before: float) -> int:
        """Delete dead letters that died before `before`; how many."""
        ...

    # -- delivery history and preview sessions -------------------------------------------

    async def history(
        self, *, event_id: str | None = None, transaction_id: str | None = None, limit: int = 200
    ) -> list[Outcome]:
        """The latest outcome of each delivery of an event (or of a transaction), oldest first."""
        ...

    async def prune(self, now: float) -> int:
        """Forget history older than the retention and preview sessions that expired."""
        ...

    async def preview_open(self, id: str, expires: float, now: float) -> None:
        """Start a preview session; the oldest live one ends when there are MAX_PREVIEWS."""

    async def preview_expires(self, id: str, now: float) -> float | None:
        """When a live session ends; None for an unknown or expired one."""
        ...

    async def preview_add(self, id: str, trace: bytes) -> None:
        """Keep a trace (its newest MAX_TRACES) of a live session."""

    async def preview_read(self, id: str, now: float) -> PreviewData | None:
        """A live session's traces and delivery states; None for an unknown or expired one."""
        ...

    # -- dedupe ---------------------------------------------------------------------------

    async def seen(self, key: str, ttl: float) -> bool:
        """Atomically: True if the key was seen within its ttl, else remember it for ttl."""
        ...

    async def forget(self, keys: list[str]) -> None:
        """Drop keys marked by `seen` for events that were then not stored."""
        ...


_payload_decoder = msgspec.msgpack.Decoder(Payload)
_encoder = msgspec.msgpack.Encoder()


def encode_payload(payload: Payload) -> bytes:
    return _encoder.encode(payload)


def decode_payload(data: bytes) -> Payload:
    return _payload_decoder.decode(data)


_history_decoder = msgspec.msgpack.Decoder(list[Attempt])
_response_decoder = msgspec.msgpack.Decoder(LastResponse)


def encode(value: object) -> bytes:
    return _encoder.encode(value)


def decode_history(data: bytes | None) -> list[Attempt]:
    return _history_decoder.decode(data) if data else []


def decode_response(data: bytes | None) -> LastResponse | None:
    return _response_decoder.decode(data) if data else None


def trim_history(history: list[Attempt]) -> list[Attempt]:
    if len(history) <= HISTORY_LIMIT:
        return history
    return history[:5] + history[-(HISTORY_LIMIT - 5) :]


_outcome_decoder = msgspec.msgpack.Decoder(Outcome)


def decode_outcome(data: bytes) -> Outcome:
    return _outcome_decoder.decode(data)


def preview_session(reference: str) -> str:
    """The session id a preview reference (`session/trace/event/tag/request`) belongs to."""
    return reference.partition("/")[0]


def latest(outcomes: list[Outcome]) -> list[Outcome]:
    """One outcome per delivery, the latest, oldest delivery first."""
    by_job: dict[str, Outcome] = {}
    for outcome in sorted(outcomes, key=lambda o: o.at):
        by_job[outcome.job] = outcome
    return list(by_job.values())
