"""The durable delivery engine: outbox -> lanes -> batch -> rate limit -> breaker -> send.

`submit` writes every request of a hit to the store and returns once it is committed; the client
is answered after that, so an acknowledged event is never only in memory. Sending happens in
lanes, one per destination (container / tag / destination key, by default the URL's origin):
each lane has its own pump task, concurrency limit, token bucket, circuit breaker and batching,
so a failing or slow vendor only ever waits on itself.

A lane's pump leases due jobs from the store (leases expire, so another engine takes over the
jobs of one that died), merges them as the tag declares, sends, and settles each job by the
tag's verdict: done (deleted), retry (backoff with full jitter, at least the vendor's
Retry-After), or dead (moved to the dead letters with the last response and the attempt
history). A job older than its max age is dead-lettered instead of retried. Retries resend the
stored request unchanged, so idempotency keys and event ids stay the same.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from sgtm import logs, placeholders
from sgtm.delivery.base import DeliveryUnavailable, LaneKey, Submission, lane_key
from sgtm.delivery.budget import LaneBudget
from sgtm.delivery.credentials import CredentialError, CredentialManager, fill, needs_credential
from sgtm.delivery.policy import DEFAULT_MAX_AGE, DEFAULT_MAX_LANES, LanePolicy
from sgtm.delivery.seal import SecretSeal
from sgtm.delivery.store import (
    BODY_LIMIT,
    PREVIEW_RESPONSE_LIMIT,
    Attempt,
    DeadLetter,
    Job,
    LastResponse,
    NewJob,
    Outcome,
    Payload,
    Retry,
    Store,
    encode_payload,
    trim_history,
)
from sgtm.delivery.transport import Response, Transport, TransportError
from sgtm.metrics import Labels, Metrics, counter_key
from sgtm.plugin import Credential, Outbound, Tag, Verdict, as_verdict, makes_events
from sgtm.ratelimit import TokenBucket
from sgtm.ratelog import RateLimitedLog
from sgtm.redact import Redactor, hide_values

log = logging.getLogger("sgtm.delivery")

RATE_SAMPLES = 4096  # send times a lane keeps to tell its rate over the last minute
PREVIEW_STATES = {"done": "delivered", "retry": "retrying", "dead": "dead"}

FollowUps = Callable[[str, str, list[dict[str, Any]]], Awaitable[None]]


@dataclass(slots=True)
class TagRoute:
    """One tag of one container, as the engine sends it."""

    container: str
    tag: str
    type: Tag[Any]
    settings: Any  # the decoded settings (templates unrendered): what auth_request reads
    policy: LanePolicy
    seal: SecretSeal = field(default_factory=lambda: SecretSeal({}))
    redact: Redactor = field(default_factory=lambda: Redactor({}))

    @property
    def uses_auth(self) -> bool:
        return type(self.type).auth_request is not Tag.auth_request

    @property
    def follows_up(self) -> bool:
        return makes_events(self.type)


@dataclass(slots=True)
class EngineOptions:
    poll_interval: float = 1.0  # idle lanes look for work (other workers', retries) this often
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    breaker_failures: int = 5  # consecutive failed requests that open a lane's breaker
    breaker_open_min: float = 1.0  # first open period; doubles per failed probe
    breaker_open_max: float = 5.0  # cheap probes: a recovered vendor is noticed within this
    lease_margin: float = 30.0  # a lease lasts the request timeout plus this
    drain_timeout: float = 10.0  # on shutdown, time to send what is due before persisting
    sweep_interval: float = 60.0  # max-age sweeps and queue-depth gauges
    discover_interval: float = 5.0  # lanes other engines created
    # A lane with nothing to send for this long stops its task; one with no job left that long
    # is forgotten by the store and /metrics (and its destination's place in the tag's
    # max_lanes budget is free again).
    lane_idle_retire: float = 300.0


class Breaker:
    """Closed -> open after N consecutive failures -> half-open (one probe) -> closed or open."""

    def __init__(self, options: EngineOptions) -> None:
        self.options = options
        self.failures = 0
        self.open_until = 0.0
        self.open_for = 0.0
        self.probing = False

    @property
    def is_open(self) -> bool:
        return self.open_for > 0

    def slots(self, now: float, concurrency: int) -> int:
        if not self.is_open:
            return concurrency
        if now < self.open_until or self.probing:
            return 0
        return 1  # half-open: one probe

    def wait_time(self, now: float) -> float:
        return max(0.0, self.open_until - now) if self.is_open and not self.probing else 0.0

    def record(self, ok: bool, now: float) -> str | None:
        """The state change, if any: "open" or "closed"."""
        self.probing = False
        if ok:
            self.failures = 0
            if self.is_open:
                self.open_for = 0.0
                return "closed"
            return None
        self.failures += 1
        if self.is_open:
            self.open_for = min(self.open_for * 2, self.options.breaker_open_max)
            self.open_until = now + self.open_for
            return None
        if self.failures >= self.options.breaker_failures:
            self.open_for = self.options.breaker_open_min
            self.open_until = now + self.open_for
            return "open"
        return None


class Slot:
    """One of a lane's `concurrency` places, held by a send from its start until the vendor's
    answer (or the failure) arrives: writing the outcome happens after, outside the limit."""

    __slots__ = ("held", "lane")

    def __init__(self, lane: Lane) -> None:
        self.lane = lane
        self.held = True
        lane.inflight += 1

    def release(self) -> None:
        if self.held:
            self.held = False
            self.lane.inflight -= 1
            self.lane.wake.set()


class Lane:
    def __init__(self, key: str, route: TagRoute, engine: DeliveryEngine) -> None:
        self.key = key
        self.route = route
        self.policy = route.policy
        self.bucket = (
            TokenBucket(self.policy.rate_limit, engine.clock) if self.policy.rate_limit else None
        )
        self.breaker = Breaker(engine.options)
        self.inflight = 0  # sends waiting for an answer (Slot)
        # Jobs leased with the last round's for the next (unbatched lanes), usable until
        # `ahead_until`: after that their lease is too short to send them.
        self.ahead: list[Job] = []
        self.ahead_until = 0.0
        self.paused_until = 0.0  # a vendor's Retry-After for the whole lane
        self.wake = asyncio.Event()
        self.idle = False  # the last lease found nothing due
        self.linger_next = True
        self.next_flush: float | None = None
        self.flushing = False
        self.idle_since: float | None = None
        self.retired = False
        # For the admin's health view: when recent sends ended, and the last failure.
        self.sent: collections.deque[float] = collections.deque(maxlen=RATE_SAMPLES)
        self.last_error: tuple[float, str] | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def labels(self) -> dict[str, str]:
        return {"container": self.route.container, "tag": self.route.tag}

    async def wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), seconds)
        self.wake.clear()


class DeliveryEngine:
    def __init__(
        self,
        store: Store,
        routes: Mapping[tuple[str, str], TagRoute],
        *,
        options: EngineOptions | None = None,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.time,
        sends: bool = True,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics or Metrics()
        # False in an ingest-only process (`sgtm serve --role ingest`): submit stores, and
        # processes of the deliver role send; no lane, no transport, no sweep runs here.
        self.sends = sends
        self.routes = dict(routes)
        self.options = options or EngineOptions()
        self.transport = transport or Transport()
        self.clock = clock
        self.credentials = CredentialManager(self.transport, clock=clock)
        self._settler = OutcomeWriter(store)
        self.lanes: dict[str, Lane] = {}
        self._sends: dict[asyncio.Task[None], list[Job]] = {}
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self._stopped = asyncio.Event()
        self._unroutable: set[str] = set()
        # Routes a reload removed: requests built by the version before it (hits in flight
        # during the swap) are still sealed with their secrets when they are stored.
        self._former: dict[tuple[str, str], TagRoute] = {}
        self._depth_lanes: set[str] = set()  # lanes whose queue depth gauge was set
        # Lanes with no job and no task here, since when: forgotten once idle past retirement.
        self._empty_since: dict[str, float] = {}
        self.budget = LaneBudget(self.options.lane_idle_retire)
        self._enqueued: dict[tuple[str, str], tuple[str, Labels]] = {}
        self._refusals = RateLimitedLog(log)
        _check_routes(self.routes)
        self._orphan_max_age = _orphan_max_age(self.routes)
        # Where events a tag makes from a vendor's answer go (`Tag.follow_up`): the server sets
        # it to run them in their container. (container, tag, events); raises when not stored.
        self.follow_ups: FollowUps | None = None

    # -- the Delivery interface -----------------------------------------------------------

    async def start(self) -> None:
        await self.store.open()
        if not self.sends:
            return
        await self.transport.start()
        for key in await self.store.lanes():
            self._lane(key)
        self._supervisor = asyncio.create_task(self._supervise(), name="sgtm-delivery")

    async def submit(self, submissions: list[Submission]) -> None:
        """Store the submissions' jobs; returns once they are durable. A job for a destination
        past its tag's lane budget is refused here, before anything is acknowledged (counted
        in `sgtm_delivery_refused_total` and logged): the hit's other jobs are stored."""
        if self._stopping:
            raise DeliveryUnavailable("shutting down")
        now = self.clock()
        jobs: list[NewJob] = []
        stored: list[tuple[str, str]] = []
        for submission in submissions:
            key = (submission.container, submission.tag)
            route = self.routes.get(key) or self._former.get(key)
            job = self._job(submission, route, now)
            if job is not None and self._admit(key, route, job.lane, now):
                jobs.append(job)
                stored.append(key)
        if not jobs:
            return
        await self.store.enqueue(jobs)
        for lane_text in {job.lane for job in jobs} if self.sends else ():
            woken = self._lane(lane_text)
            if woken is not None:
                woken.wake.set()
        for key in stored:
            self.metrics.add(self._enqueued_series(key))

    def _enqueued_series(self, key: tuple[str, str]) -> tuple[str, Labels]:
        """The `sgtm_delivery_enqueued_total` series of a tag, worked out once per tag (a job
        or more per hit): the series of tags of the config, so as many as they are."""
        series = self._enqueued.get(key)
        if series is None:
            container, tag = key
            series = counter_key("sgtm_delivery_enqueued_total", container=container, tag=tag)
            self._enqueued[key] = series
        return series

    def _admit(self, key: tuple[str, str], route: TagRoute | None, lane: str, now: float) -> bool:
        """Whether the tag may have a job in `lane`: a destination it has, or a new one within
        its `max_lanes` (LaneBudget); a refusal is counted and logged (once a minute a tag)."""
        cap = route.policy.max_lanes if route is not None else DEFAULT_MAX_LANES
        if self.budget.admit(key, lane, cap, now, self.lanes.__contains__):
            return True
        container, tag = key
        self.metrics.inc(
            "sgtm_delivery_refused_total", container=container, tag=tag, reason="max_lanes"
        )
        # The destination is not logged: it may be a value the hit chose.
        self._refusals.warning(
            (container, tag, "max_lanes"),
            "delivery refused: the tag already sends to max_lanes_per_tag destinations",
            {"container": container, "tag": tag, "max_lanes": cap},
        )
        return False

    def job_for(self, submission: Submission, due: float) -> NewJob | None:
        """The outbox job of a submission: its request with configured secrets sealed,
        encoded as the store keeps it; None (counted and logged) when it cannot be stored."""
        key = (submission.container, submission.tag)
        return self._job(submission, self.routes.get(key) or self._former.get(key), due)

    def _job(self, submission: Submission, route: TagRoute | None, due: float) -> NewJob | None:
        outbound, nonce = submission.outbound, submission.nonce
        if route is not None and route.seal:
            # A nonce is drawn only for a request that holds a secret (most hold none).
            sealed, bound = route.seal.seal(outbound, nonce or placeholders.new_nonce)
            if bound:
                outbound, nonce = sealed, bound
        payload = Payload(
            container=submission.container,
            tag=submission.tag,
            tag_type=submission.tag_type,
            outbound=outbound,
            created=submission.created,
            nonce=nonce,
            event_id=submission.event_id,
            request_id=submission.request_id,
            transaction_id=submission.transaction_id,
            preview=submission.preview,
        )
        try:
            data = encode_payload(payload)
        except (TypeError, msgspec.EncodeError) as exc:
            # A plugin bug (a batch_item that is not plain data): it can never be stored or
            # sent, so it is counted and logged loudly rather than failing the whole hit.
            log.error(
                "tag built a request that cannot be stored: %s",
                exc,
                extra={"tag": submission.tag},
            )
            self.metrics.inc(
                "sgtm_deliveries_total",
                container=submission.container,
                tag=submission.tag,
                outcome="unstorable",
            )
            return None
        lane = lane_key(submission.container, submission.tag, outbound)
        return NewJob(lane=lane, due=due, created=submission.created, payload=data)

    async def close(self) -> None:
        """Send what is due for up to `drain_timeout`, then stop; unsent jobs stay stored."""
        deadline = self.clock() + self.options.drain_timeout
        # Polls the lanes' state (many lanes, one deadline); bounded by drain_timeout.
        while self.clock() < deadline and any(map(self._busy, self.lanes.values())):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        self._stopping = True
        self._stopped.set()
        for lane in self.lanes.values():
            lane.wake.set()
        tasks: list[asyncio.Task[None]] = [
            lane.task for lane in self.lanes.values() if lane.task is not None
        ]
        if self._supervisor is not None:
            self._supervisor.cancel()
            tasks.append(self._supervisor)
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._sends:
            remaining = max(0.1, deadline - self.clock())
            await asyncio.wait(list(self._sends), timeout=remaining)
        leftover = [job for jobs in self._sends.values() for job in jobs]
        leftover += [job for lane in self.lanes.values() for job in lane.ahead]
        for task in list(self._sends):
            task.cancel()
        await asyncio.gather(*self._sends, return_exceptions=True)
        if leftover:
            with contextlib.suppress(DeliveryUnavailable):
                await self.store.release(leftover, self.clock())
            log.warning(
                "shutdown: %d deliveries in flight were kept for the next start", len(leftover)
            )
        await self._settler.idle()
        await self.transport.close()
        await self.store.close()

    async def health(self) -> list[dict[str, Any]]:
        """Per lane, for the admin's view: the queue depth (the store's, every engine's jobs)
        and what this process sees of it: sends per second over the last minute, breaker
        state, last error."""
        depths = await self.store.depth()
        now = self.clock()
        rows = []
        for key in sorted(set(depths) | set(self.lanes)):
            parts = LaneKey.decode(key)
            lane = self.lanes.get(key)
            row: dict[str, Any] = {
                "lane": key,
                "container": parts.container,
                "tag": parts.tag,
                "destination": parts.destination,
                "depth": depths.get(key, 0),
                "rate": 0.0,
                "breaker": "closed",
                "last_error": None,
            }
            if lane is not None:
                recent = sum(1 for at in lane.sent if now - at <= 60.0)
                row["rate"] = round(recent / 60.0, 2)
                if lane.breaker.is_open:
                    row["breaker"] = "half-open" if now >= lane.breaker.open_until else "open"
                if lane.last_error is not None:
                    row["last_error"] = {"at": lane.last_error[0], "error": lane.last_error[1]}
            rows.append(row)
        return rows

    def _busy(self, lane: Lane) -> bool:
        if lane.inflight:
            return True
        if lane.ahead and not lane.breaker.is_open:
            return True
        if lane.breaker.is_open or lane.policy.batching.flush_every:
            return False  # it would not progress now; its jobs are safe in the store
        return not lane.idle

    # -- reload ---------------------------------------------------------------------------

    def reroute(self, routes: Mapping[tuple[str, str], TagRoute]) -> list[Job]:
        """Switch to the tags of a reloaded config (ValueError, and nothing changed, when one
        cannot be sent). Lanes of removed tags retire: their sends in flight finish on the old
        route, and the jobs they leased ahead are returned, to go back to the store at once
        (`release_retired`); the tag's stored jobs wait under the removed-tag rule. Lanes of
        changed tags take the new route for their next sends; tags that come back get their
        lanes again. Synchronous, so the caller swaps containers and routes in one step."""
        new = dict(routes)
        _check_routes(new)
        for key, route in new.items():
            old = self.routes.get(key) or self._former.get(key)
            if old is None:
                continue
            if old.seal.values.items() - route.seal.values.items():
                # Jobs stored by the old version keep its secrets' placeholders: unseal them too.
                merged = {v: n for n, v in (old.seal.values | route.seal.values).items()}
                route.seal = SecretSeal(merged)
            if old.settings != route.settings:
                self.credentials.forget(f"{route.container}/{route.tag}")
        handed_back: list[Job] = []
        retired: list[str] = []
        for lane in list(self.lanes.values()):
            parts = LaneKey.decode(lane.key)
            now_route = new.get((parts.container, parts.tag))
            if now_route is None:
                lane.retired = True
                del self.lanes[lane.key]
                retired.append(lane.key)
                handed_back += lane.ahead
                lane.ahead = []
                lane.wake.set()
            elif now_route is not lane.route:
                self._reroute_lane(lane, now_route)
        self._former = {k: v for k, v in (self._former | self.routes).items() if k not in new}
        self.routes = new
        self._enqueued.clear()  # series of the tags of this config only
        self._orphan_max_age = _orphan_max_age(new)
        if self.sends and self._supervisor is not None and not self._stopping:
            for lane_text in [*self._unroutable, *retired]:
                parts = LaneKey.decode(lane_text)
                if (parts.container, parts.tag) in new:
                    self._unroutable.discard(lane_text)
                self._lane(lane_text)  # a tag back gets its lane; a removed one is warned of
        return handed_back

    def _reroute_lane(self, lane: Lane, route: TagRoute) -> None:
        old = lane.route
        lane.route = route
        lane.policy = route.policy
        if route.policy.rate_limit != old.policy.rate_limit:
            limit = route.policy.rate_limit
            lane.bucket = TokenBucket(limit, self.clock) if limit else None
        lane.wake.set()

    async def release_retired(self, jobs: list[Job]) -> None:
        """Hand jobs leased ahead by retired lanes back to the store, due now. A store that
        cannot take them only delays them: their leases end and they are due again."""
        if not jobs:
            return
        try:
            await self.store.release(jobs, self.clock())
        except DeliveryUnavailable as exc:
            log.warning("jobs of retired lanes wait for their leases to end: %s", exc)

    # -- lanes ----------------------------------------------------------------------------

    def _lane(self, key: str) -> Lane | None:
        lane = self.lanes.get(key)
        if lane is not None:
            return lane
        parts = LaneKey.decode(key)
        route = self.routes.get((parts.container, parts.tag))
        if route is None:
            if key not in self._unroutable:
                self._unroutable.add(key)
                # Another instance may run a newer config that has this tag: leave its jobs.
                log.warning(
                    "jobs for a tag this config does not have wait; dead letters after %.0f h: %s",
                    self._orphan_max_age / 3600,
                    key,
                )
            return None
        lane = Lane(key, route, self)
        self.lanes[key] = lane
        self._empty_since.pop(key, None)
        # Jobs another process stored (or this one before a restart) hold a place in the tag's
        # budget while their lane runs here.
        self.budget.note((parts.container, parts.tag), key, self.clock())
        if not self._stopping:
            lane.task = asyncio.create_task(self._pump(lane), name=f"sgtm-lane {key}")
        return lane

    async def _supervise(self) -> None:
        last_sweep = 0.0
        while not self._stopping:
            await asyncio.sleep(self.options.discover_interval)
            try:
                for key in await self.store.lanes():
                    self._lane(key)
                now = self.clock()
                if now - last_sweep >= self.options.sweep_interval:
                    last_sweep = now
                    await self._sweep(now)
            except DeliveryUnavailable as exc:
                log.warning("delivery store unavailable: %s", exc)
            except Exception:
                log.exception("delivery supervisor error")

    async def _sweep(self, now: float) -> None:
        for lane in list(self.lanes.values()):
            await self._expire(lane.key, lane.policy.max_age, now)
        # Jobs of a tag this config does not have wait for an instance whose config has it (a
        # rolling deploy), but not forever: after the longest max age of this config they go to
        # the dead letters, where `sgtm dlq` shows them and can replay them.
        for key in list(self._unroutable):
            await self._expire(key, self._orphan_max_age, now)
        await self.store.prune(now)
        depths = await self.queue_depths()
        self._unroutable = {key for key in self._unroutable if depths.get(key, 0) > 0}
        await self._forget_lanes(depths, now)

    async def _forget_lanes(self, depths: dict[str, int], now: float) -> None:
        """Have the store forget lanes that have had no job, and no task here, for longer
        than a lane's retirement; their /metrics series go with them. Destinations that came
        and went (the hit's, a vendor's account that left the config) leave nothing behind."""
        empty = [key for key, depth in depths.items() if depth <= 0 and key not in self.lanes]
        self._empty_since = {key: self._empty_since.get(key, now) for key in empty}
        retire = self.options.lane_idle_retire
        due = [key for key, since in self._empty_since.items() if now - since >= retire]
        if not due:
            return
        removed = await self.store.forget_lanes(due)
        for key in removed:
            del self._empty_since[key]
            self._forget_series(key)
        if removed:
            log.info("forgot idle lanes", extra={"count": len(removed)})

    async def queue_depths(self) -> dict[str, int]:
        """The outbox's depth per lane, read from the store's counters (one cheap query) into
        the `sgtm_delivery_queue_depth` gauges; a lane emptied since the last read shows 0.
        `/metrics` calls it at each scrape, so the gauge is as current as the scrape."""
        depths = await self.store.depth()
        for key in self._depth_lanes - depths.keys():
            self._forget_series(key)  # the store forgot the lane (`_forget_lanes`)
        for key, depth in depths.items():
            self.metrics.gauge("sgtm_delivery_queue_depth", depth, lane=key)
        self._depth_lanes = set(depths)
        return depths

    def _forget_series(self, key: str) -> None:
        """Remove a lane's gauges from /metrics (not while a task here still sends in it)."""
        self._depth_lanes.discard(key)
        self.metrics.forget("sgtm_delivery_queue_depth", lane=key)
        if key not in self.lanes:
            self._forget_breaker(key)

    def _forget_breaker(self, key: str) -> None:
        parts = LaneKey.decode(key)
        self.metrics.forget(
            "sgtm_delivery_breaker_state", lane=key, container=parts.container, tag=parts.tag
        )

    async def _expire(self, key: str, max_age: float, now: float) -> None:
        expired = 0
        while True:
            moved = await self.store.expire(key, now - max_age, now, 1000)
            expired += moved
            if moved < 1000:
                break
        if expired:
            parts = LaneKey.decode(key)
            labels = {"container": parts.container, "tag": parts.tag}
            self.metrics.inc("sgtm_deliveries_total", float(expired), outcome="dead", **labels)
            log.warning(
                "dead-lettered deliveries older than their max age",
                extra={"lane": key, "count": expired},
            )

    async def _pump(self, lane: Lane) -> None:
        while not self._stopping and not lane.retired:
            try:
                await self._pump_once(lane)
            except DeliveryUnavailable as exc:
                log.warning("delivery store unavailable: %s", exc, extra={"lane": lane.key})
                await lane.wait(self.options.poll_interval)
            except Exception:
                log.exception("delivery lane error", extra={"lane": lane.key})
                await lane.wait(self.options.poll_interval)

    async def _pump_once(self, lane: Lane) -> None:
        policy = lane.policy
        now = self.clock()
        every = policy.batching.flush_every
        if every and not lane.flushing:
            if lane.next_flush is None:
                lane.next_flush = await self.store.get_schedule(lane.key)
                if lane.next_flush is None:
                    lane.next_flush = now + every
                    await self.store.set_schedule(lane.key, lane.next_flush)
            if now < lane.next_flush:
                await self._sleep(min(lane.next_flush - now, self.options.poll_interval * 5))
                return
            lane.flushing = True

        wait = max(
            lane.breaker.wait_time(now),
            lane.paused_until - now,
            lane.bucket.wait_time() if lane.bucket else 0.0,
        )
        slots = lane.breaker.slots(now, policy.concurrency) - lane.inflight
        if wait > 0 or slots <= 0:
            await lane.wait(wait if wait > 0 else self.options.poll_interval)
            return
        if lane.linger_next and policy.batching.linger > 0 and not lane.flushing:
            lane.linger_next = False
            await self._sleep(policy.batching.linger)
            return
        batches = slots
        if lane.bucket is not None:
            batches = max(1, min(batches, int(lane.bucket.available())))
        max_items = policy.batching.max_items if policy.batched else 1
        want = batches * max_items
        jobs = await self._ahead(lane, want, now)
        if len(jobs) < want:
            # Unbatched lanes lease the next round with this one: under load a lease waits
            # for the store's writer (tens of ms), and a lane that waited every round would
            # send at most `concurrency` requests per wait.
            ahead = 0 if policy.batched else policy.concurrency
            # A job may wait one round in `ahead`: its lease covers that, then token, send,
            # resend.
            lease_for = policy.timeout * (4 if ahead else 3) + self.options.lease_margin
            leased = await self.store.lease(lane.key, now, want - len(jobs) + ahead, lease_for)
            short = want - len(jobs)
            jobs += leased[:short]
            if leased[short:]:
                lane.ahead = leased[short:]
                lane.ahead_until = now + lease_for - policy.timeout * 3
        if lane.retired:  # a reload removed its tag while the lease was on its way
            await self.store.release([*jobs, *lane.ahead], now)
            lane.ahead = []
            return
        if len(jobs) < want:
            lane.linger_next = True
        if not jobs:
            lane.idle = True
            if lane.flushing:
                lane.flushing = False
                assert every is not None and lane.next_flush is not None
                while lane.next_flush <= now:
                    lane.next_flush += every
                await self.store.set_schedule(lane.key, lane.next_flush)
                return
            due = await self.store.next_due(lane.key)
            if due is None and self._retire_if_idle(lane, now):
                return
            idle_for = self.options.poll_interval
            if due is not None:
                idle_for = min(idle_for, max(0.0, due - now))
            await lane.wait(idle_for)
            return
        lane.idle = False
        lane.idle_since = None
        key = _batch_key if policy.batched else None
        ready = split(jobs, max_items, policy.batching.max_bytes, key)
        if len(ready) > batches:
            # Grouping by batch key (or bytes) made more requests than the lane may send now:
            # the rest go back to the store rather than past the concurrency or rate limit.
            await self.store.release([job for batch in ready[batches:] for job in batch], now)
            del ready[batches:]
        for batch in ready:
            if lane.bucket is not None:
                lane.bucket.take()
            if lane.breaker.is_open:
                lane.breaker.probing = True
            task = asyncio.create_task(self._deliver(lane, batch, Slot(lane)))
            self._sends[task] = batch
            task.add_done_callback(self._sent)

    async def _ahead(self, lane: Lane, count: int, now: float) -> list[Job]:
        """Up to `count` jobs leased ahead; those whose lease ran short go back to the store."""
        if not lane.ahead:
            return []
        if now >= lane.ahead_until:
            stale, lane.ahead = lane.ahead, []
            await self.store.release(stale, now)
            return []
        taken, lane.ahead = lane.ahead[:count], lane.ahead[count:]
        return taken

    def _retire_if_idle(self, lane: Lane, now: float) -> bool:
        """Stop the task of a lane that has had nothing to send for a while, so lanes of
        destinations that come and go do not pile up; a new job brings the lane back (submit
        here, or the supervisor's discovery for jobs another instance stored)."""
        if lane.idle_since is None:
            lane.idle_since = now
            return False
        if (
            now - lane.idle_since < self.options.lane_idle_retire
            or lane.inflight
            or lane.wake.is_set()
            or lane.policy.batching.flush_every
            # A new lane starts with a full bucket: retire only once this one has refilled, or
            # a limit per hour or day would be spent again by each comeback.
            or (lane.bucket is not None and lane.bucket.available() < lane.bucket.capacity)
        ):
            return False
        lane.retired = True
        del self.lanes[lane.key]
        # Idle since then: the next sweep has the store forget it if no job came meanwhile.
        self._empty_since[lane.key] = lane.idle_since
        # A lane that comes back starts with a closed breaker: the old state would be stale.
        self._forget_breaker(lane.key)
        log.debug("lane retired after being idle", extra={"lane": lane.key})
        return True

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sends.pop(task, None)

    async def _sleep(self, seconds: float) -> None:
        # Interruptible by shutdown only: a scheduled lane ignores new submissions.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), seconds)

    # -- sending --------------------------------------------------------------------------

    async def _deliver(self, lane: Lane, jobs: list[Job], slot: Slot) -> None:
        try:
            await self._deliver_batch(lane, jobs, slot)
        except asyncio.CancelledError:
            raise
        except DeliveryUnavailable as exc:
            # Settling failed; the leases run out and the jobs are sent again (same keys).
            log.warning("could not record delivery outcome: %s", exc, extra={"lane": lane.key})
        except Exception:
            log.exception("delivery error", extra={"lane": lane.key})
        finally:
            slot.release()

    async def _deliver_batch(self, lane: Lane, jobs: list[Job], slot: Slot | None = None) -> None:
        route = lane.route
        tag = route.type
        payloads = [job.decode() for job in jobs]
        outbounds = [p.outbound for p in payloads]
        nonces = set().union(*(p.nonces() for p in payloads))
        try:
            request = tag.merge(outbounds) if lane.policy.batched else outbounds[0]
        except Exception as exc:
            log.exception("tag merge() failed", extra={"lane": lane.key})
            reason = f"merge failed ({type(exc).__name__})"
            dead = [Verdict(outcome="dead", reason=reason)] * len(jobs)
            await self._settle(lane, jobs, dead, payloads=payloads)
            return
        request = route.seal.unseal(request, nonces)
        policy = lane.policy
        timeout = policy.timeout if policy.timeout_fixed else request.timeout or policy.timeout
        started = time.perf_counter()
        response: Response | None = None
        error = ""
        try:
            response = await self._send(lane, request, nonces, timeout)
        except TransportError as exc:
            error = exc.kind
        except CredentialError as exc:
            error = str(exc)
        if slot is not None:
            slot.release()
        ms = round((time.perf_counter() - started) * 1000, 1)
        now = self.clock()

        if response is None:
            verdicts = [Verdict(outcome="retry", reason=error)] * len(jobs)
        else:
            verdicts = self._classify(lane, response, outbounds)
            if verdicts[0].outcome == "done" and lane.route.follows_up:
                verdicts = [await self._follow_up(lane, response, outbounds[0])]
        failed = response is None or all(v.outcome == "retry" for v in verdicts)
        change = lane.breaker.record(not failed, now)
        if change is not None:
            # 1 while open (half-open included): what dashboards and the alerts webhook watch.
            state = 1.0 if change == "open" else 0.0
            self.metrics.gauge("sgtm_delivery_breaker_state", state, lane=lane.key, **lane.labels)
        if change == "open":
            self.metrics.inc("sgtm_delivery_breaker_open_total", 1.0, **lane.labels)
            log.warning("circuit open: vendor failing", extra={"lane": lane.key, "error": error})
        elif change == "closed":
            hastened = await self.store.hasten(lane.key, now)
            log.info("circuit closed: vendor back", extra={"lane": lane.key, "due": hastened})
        if response is not None:
            pause = max((v.retry_after or 0.0) for v in verdicts)
            if pause > 0:
                lane.paused_until = max(lane.paused_until, now + pause)
        lane.sent.append(now)
        if failed or any(v.outcome == "dead" for v in verdicts):
            status = response.status if response is not None else 0
            why = error or next((v.reason for v in verdicts if v.reason), "") or ""
            lane.last_error = (now, f"{status or 'no answer'}: {why}".rstrip(": "))
        await self._settle(
            lane, jobs, verdicts, payloads=payloads, response=response, ms=ms, error=error
        )

    async def _send(
        self, lane: Lane, request: Outbound, nonces: set[str], time_limit: float
    ) -> Response:
        route = lane.route
        if not (route.uses_auth and needs_credential(request, nonces)):
            return await self.transport.send(
                request.method, request.url, request.headers, request.body, time_limit
            )
        key = f"{route.container}/{route.tag}"
        credential: Credential = await self.credentials.get(
            key, route.type, route.settings, time_limit
        )
        sent = fill(request, credential, nonces)
        response = await self.transport.send(
            sent.method, sent.url, sent.headers, sent.body, time_limit
        )
        if route.type.is_auth_failure(response.status, response.headers, response.body):
            # The token was refused: one refresh (shared with every concurrent send), one retry.
            self.metrics.inc("sgtm_delivery_auth_refresh_total", 1.0, **lane.labels)
            credential = await self.credentials.refresh(
                key, route.type, route.settings, time_limit, credential
            )
            sent = fill(request, credential, nonces)
            response = await self.transport.send(
                sent.method, sent.url, sent.headers, sent.body, time_limit
            )
        return response

    async def _follow_up(self, lane: Lane, response: Response, request: Outbound) -> Verdict:
        """Store the events the tag makes of a done answer; until they are stored, the request
        is not done (it is sent again: tags that make events read, they do not write)."""
        route = lane.route
        try:
            events = route.type.follow_up(
                response.status, response.headers, response.body, request, route.settings
            )
        except Exception as exc:
            log.exception("tag follow_up() failed", extra={"lane": lane.key})
            return Verdict(outcome="dead", reason=f"follow_up failed ({type(exc).__name__})")
        if not events:
            return Verdict(outcome="done")
        if self.follow_ups is None:
            log.warning("follow-up events dropped: no container here", extra={"lane": lane.key})
            return Verdict(outcome="done")
        try:
            await self.follow_ups(route.container, route.tag, events)
        except Exception as exc:
            log.warning(
                "follow-up events not stored: %s", type(exc).__name__, extra={"lane": lane.key}
            )
            return Verdict(
                outcome="retry", reason=f"follow-up events not stored ({type(exc).__name__})"
            )
        self.metrics.inc("sgtm_follow_up_events_total", float(len(events)), **lane.labels)
        return Verdict(outcome="done")

    def _classify(self, lane: Lane, response: Response, outbounds: list[Outbound]) -> list[Verdict]:
        tag = lane.route.type
        header_wait = retry_after(response.headers.get("retry-after"), self.clock())
        try:
            if lane.policy.batched:
                raw = tag.classify_batch(
                    response.status, response.headers, response.body, outbounds
                )
                if len(raw) != len(outbounds):
                    raise ValueError(f"{len(raw)} verdicts for {len(outbounds)} items")
            else:
                raw = [tag.classify(response.status, response.headers, response.body)]
            verdicts = [as_verdict(v) for v in raw]
        except Exception as exc:
            log.error("tag classify failed: %s", type(exc).__name__, extra={"lane": lane.key})
            # The vendor answered something the tag cannot read: keep it and try again later.
            verdicts = [Verdict(outcome="retry", reason=f"classify failed ({type(exc).__name__})")]
            verdicts *= len(outbounds)
        if header_wait:
            verdicts = [
                msgspec.structs.replace(v, retry_after=max(v.retry_after or 0.0, header_wait))
                if v.outcome == "retry"
                else v
                for v in verdicts
            ]
        return verdicts

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
        now = self.clock()
        status = response.status if response is not None else 0
        done: list[Job] = []
        retries: list[Retry] = []
        dead: list[DeadLetter] = []
        outcomes = [
            self._outcome(lane, job, payload, verdict, status, response, now)
            for job, payload, verdict in zip(jobs, payloads, verdicts, strict=True)
        ]
        lines = OutcomeLines(lane.key, status, ms, lane.route.redact)
        for job, verdict, payload, record in zip(jobs, verdicts, payloads, outcomes, strict=True):
            if verdict.outcome == "done":
                done.append(job)
                lines.add("done", payload, job, "")
                continue
            job.attempts += 1
            job.history = trim_history(
                [*job.history, Attempt(at=now, status=status, error=verdict.reason or error, ms=ms)]
            )
            reason = verdict.reason
            if verdict.outcome == "retry" and now - job.created >= lane.policy.max_age:
                reason = (
                    f"max_age: still failing after {job.attempts} attempts ({reason or status})"
                )
            elif verdict.outcome == "retry":
                due = now + self.backoff(job.attempts, verdict.retry_after)
                retries.append(Retry(job=job, due=due))
                why = verdict.reason or error or f"vendor answered {status}"
                lines.add("retry", payload, job, why)
                continue
            letter = self._dead_letter(lane, job, reason, response, now)
            dead.append(letter)
            lines.add("dead", payload, job, letter.reason)
            record.state = "dead"  # also a retry past its max age
        await self._settler.settle(done, retries, dead, outcomes)
        labels = lane.labels
        for outcome, count in (("done", len(done)), ("retry", len(retries)), ("dead", len(dead))):
            if count:
                self.metrics.inc("sgtm_deliveries_total", float(count), outcome=outcome, **labels)
        lines.write()

    def _outcome(
        self,
        lane: Lane,
        job: Job,
        payload: Payload,
        verdict: Verdict,
        status: int,
        response: Response | None,
        now: float,
    ) -> Outcome:
        """The job's delivery history record; for a traced request, with the start of the
        vendor's answer (secrets masked), which its preview session shows."""
        answer = ""
        if payload.preview and response is not None:
            text = response.body[: PREVIEW_RESPONSE_LIMIT * 4].decode("utf-8", "replace")
            answer = lane.route.redact(text[:PREVIEW_RESPONSE_LIMIT])
        return Outcome(
            event_id=payload.event_id,
            transaction_id=payload.transaction_id,
            job=f"{job.lane}#{job.id}@{job.created!r}",
            container=payload.container,
            tag=payload.tag,
            state=PREVIEW_STATES[verdict.outcome],
            attempts=job.attempts + 1,
            status=status,
            at=now,
            preview=payload.preview,
            response=answer,
        )

    def backoff(self, attempts: int, retry_after: float | None) -> float:
        """Full jitter (uniform between 0 and the exponential cap), at least the vendor's wait."""
        ceiling = min(self.options.backoff_cap, self.options.backoff_base * 2 ** (attempts - 1))
        return max(retry_after or 0.0, random.uniform(0, ceiling))

    def _dead_letter(
        self, lane: Lane, job: Job, reason: str, response: Response | None, now: float
    ) -> DeadLetter:
        payload = job.decode()
        last = None
        if response is not None:
            redact = lane.route.redact
            body = redact(response.body[:BODY_LIMIT].decode("utf-8", "replace")).encode()
            headers = {
                k: redact(v) for k, v in response.headers.items() if k not in _PRIVATE_HEADERS
            }
            last = LastResponse(status=response.status, headers=headers, body=body)
            reason = reason or f"vendor answered {response.status}"
        return DeadLetter(
            id=job.id,
            lane=lane.key,
            container=payload.container,
            tag=payload.tag,
            tag_type=payload.tag_type,
            created=job.created,
            died=now,
            attempts=job.attempts,
            reason=reason or "dead",
            payload=job.payload,
            response=last,
            history=job.history,
        )


def _check_routes(routes: Mapping[tuple[str, str], TagRoute]) -> None:
    for route in routes.values():
        if makes_events(route.type) and route.policy.batched:
            raise ValueError(
                f"tag {route.container}/{route.tag}: a tag type that batches cannot make "
                "events from answers (follow_up)"
            )


def _orphan_max_age(routes: Mapping[tuple[str, str], TagRoute]) -> float:
    """How long jobs of a tag the config does not have wait: the longest max age it has."""
    return max([DEFAULT_MAX_AGE, *(route.policy.max_age for route in routes.values())])


_PRIVATE_HEADERS = frozenset({"set-cookie", "authorization", "proxy-authorization"})
_OUTCOME_LINES = {
    "done": (logging.INFO, "delivered"),
    "retry": (logging.INFO, "delivery will be retried"),
    "dead": (logging.WARNING, "delivery dead-lettered"),
}


class OutcomeLines:
    """The log lines of one send's outcomes, one per outcome: `delivered` (info), `delivery
    will be retried` (info), `delivery dead-lettered` (warning), each with the lane, the vendor's
    status (0: no answer), the time the send took and the `event_id` and `request_id` of its job;
    for a batch, `items` and the lists `event_ids` and `request_ids` (each request once). A
    retry says why (`error`) and the attempts so far; a dead letter its reason."""

    __slots__ = ("groups", "lane", "ms", "redact", "status")

    def __init__(self, lane: str, status: int, ms: float, redact: Redactor) -> None:
        self.lane = lane
        self.status = status
        self.ms = ms
        self.redact = redact
        self.groups: dict[str, list[tuple[Payload, Job, str]]] = {}

    def add(self, outcome: str, payload: Payload, job: Job, reason: str) -> None:
        self.groups.setdefault(outcome, []).append((payload, job, reason))

    def write(self) -> None:
        for outcome, rows in self.groups.items():
            level, message = _OUTCOME_LINES[outcome]
            if not log.isEnabledFor(level):
                continue
            extra: dict[str, Any] = {"lane": self.lane, "status": self.status, "ms": self.ms}
            if len(rows) == 1:
                extra["event_id"] = rows[0][0].event_id
                extra["request_id"] = rows[0][0].request_id
            else:
                extra["items"] = len(rows)
                extra["event_ids"] = [payload.event_id for payload, _, _ in rows]
                extra["request_ids"] = list(dict.fromkeys(p.request_id for p, _, _ in rows))
            if outcome != "done":
                extra["attempts"] = max(job.attempts for _, job, _ in rows)
                # Tags word reasons, sometimes from the vendor's answer: secrets masked and
                # quoted values hidden, as in the lines of refused events.
                reason = hide_values(self.redact(rows[0][2]))
                extra["error" if outcome == "retry" else "reason"] = reason
            logs.line(log, level, message, extra)


_Settlement = tuple[list[Job], list[Retry], list[DeadLetter], list[Outcome], asyncio.Future[None]]


class OutcomeWriter:
    """Writes the outcomes of many sends in one store call (group commit): outcomes that come
    while a write is in flight wait for it and go together in the next, so at thousands of sends
    per second the store sees tens of writes, not thousands, and an idle engine adds no delay."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._pending: list[_Settlement] = []
        self._writer: asyncio.Task[None] | None = None

    async def settle(
        self,
        done: list[Job],
        retry: list[Retry],
        dead: list[DeadLetter],
        outcomes: list[Outcome],
    ) -> None:
        """Returns once written; raises what the store raised (DeliveryUnavailable)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((done, retry, dead, outcomes, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        await future

    async def idle(self) -> None:
        """Returns once every outcome handed in has been written (or failed to be)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer])

    async def _write(self) -> None:
        while self._pending:
            group, self._pending = self._pending, []
            error: BaseException | None = None
            try:
                await self.store.settle(
                    [job for done, *_ in group for job in done],
                    [r for _, retry, *_ in group for r in retry],
                    [letter for _, _, dead, *_ in group for letter in dead],
                    [o for *_, outcomes, _ in group for o in outcomes],
                )
            except Exception as exc:
                error = exc
            for *_, future in group:
                if future.done():
                    continue  # its send was cancelled (shutdown); the outcome is written anyway
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(None)


def split(
    jobs: list[Job],
    max_items: int,
    max_bytes: int,
    key: Callable[[Job], str] | None = None,
) -> list[list[Job]]:
    """Batches of at most max_items jobs whose bodies fit in max_bytes (a job larger than
    max_bytes travels alone), jobs with different keys never together; in the order of each
    batch's oldest job."""
    batches: list[list[Job]] = []
    open_batches: dict[str, tuple[list[Job], int]] = {}  # key -> (batch being filled, bytes)
    for job in jobs:
        group = key(job) if key is not None else ""
        length = len(job.payload)
        current = open_batches.get(group)
        if current is None or len(current[0]) >= max_items or current[1] + length > max_bytes:
            batch: list[Job] = []
            batches.append(batch)
            current = (batch, 0)
        current[0].append(job)
        open_batches[group] = (current[0], current[1] + length)
    return batches


def _batch_key(job: Job) -> str:
    return job.decode().outbound.batch_key


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), capped at one hour."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - now
    return min(max(seconds, 0.0), 3600.0)
