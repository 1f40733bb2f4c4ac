"""The request pipeline of one container (docs/design.md, "Data flow").

    clients by priority -> first claim wins -> the sender's rate -> parse -> hit-supplied IPs
    settled -> events the sender already sent dropped -> per event: per tag triggers, blocking
    triggers, consent, transformations, dedupe, build -> delivery.submit -> client.respond

The response is built only after delivery accepted the requests and never waits for a vendor.
With `trace=True` the result also says, per event and tag, whether it fired and why not; that is
what `sgtm emulate` prints.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from sgtm import consent, logs
from sgtm.config import ClientSpec, ContainerSpec, TagSpec
from sgtm.delivery.base import Delivery, DeliveryUnavailable, Submission
from sgtm.event import EventData
from sgtm.metrics import Labels, Metrics, counter_key
from sgtm.plugin import (
    SYSTEM_RANDOM,
    BadRequest,
    BuildContext,
    ClientContext,
    ClientResponse,
    ContainerInfo,
    InvalidEvent,
    Outbound,
    makes_events,
    random_id,
)
from sgtm.privacy import anonymize_ip
from sgtm.ratelimit import SourceLimiter
from sgtm.ratelog import RateLimitedLog
from sgtm.redact import Redactor, hide_values, log_view
from sgtm.request import HitRequest
from sgtm.scope import Scope
from sgtm.transformations import Transformation, apply_all
from sgtm.triggers import Condition, any_of
from sgtm.variables import view_shared

log = logging.getLogger("sgtm.container")

MAX_EVENTS_PER_REQUEST = 500


class DedupeStore(Protocol):
    async def seen(self, key: str, ttl: float) -> bool: ...

    async def forget(self, keys: list[str]) -> None: ...


@dataclass(slots=True)
class TagTrace:
    name: str
    type: str
    fired: bool
    reason: str | None
    requests: list[Outbound] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    nonce: str = ""  # the build's placeholder nonce (BuildContext.nonce), kept with its requests


@dataclass(slots=True)
class EventTrace:
    data: EventData
    tags: list[TagTrace]
    event_id: str = ""  # the delivery history's key for the event, when a tag sent something


@dataclass(slots=True)
class HandleResult:
    client: str | None
    response: ClientResponse
    events: list[EventTrace] = field(default_factory=list)
    event_count: int = 0
    error: str | None = None


@dataclass(slots=True)
class _TagPlan:
    """A tag as `run_events` runs it, with what can be worked out once at load."""

    spec: TagSpec
    fires: Condition  # any of its triggers
    blocked: Condition  # any of its blocking triggers
    shared: frozenset[str]  # the variables its view of an event reads from the event's Scope
    makes_events: bool
    # Its sgtm_tags_total series by outcome label (fired, trigger, consent, invalid...).
    counters: dict[str, tuple[str, Labels]] = field(default_factory=dict)


class Container:
    def __init__(
        self,
        spec: ContainerSpec,
        delivery: Delivery,
        dedupe: DedupeStore,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = random_id,
        metrics: Metrics | None = None,
        *,
        log_refusals: bool = False,
        rng: random.Random = SYSTEM_RANDOM,
        tag_ids: Callable[[str], Callable[[], str]] | None = None,
    ) -> None:
        self.spec = spec
        self.metrics = metrics or Metrics()
        # Where clients (rng) and each tag (tag_ids(name), else new_id) draw new ids: random
        # when serving; `sgtm emulate` seeds them per input and tag, so one tag's draws never
        # shift another's.
        self.rng = rng
        self.tag_ids = tag_ids or (lambda _tag: new_id)
        self.new_id = new_id  # ids drawn for events without one (the delivery history's key)
        self.name = spec.name
        self.delivery = delivery
        self.dedupe = dedupe
        self.clock = clock
        self.info = ContainerInfo(
            name=spec.name,
            origins=spec.origins,
            consent_default="granted" if spec.consent_default_granted else "denied",
        )
        self.redact = Redactor(spec.secrets)
        self.limiter = SourceLimiter(clock)
        self._origins = frozenset(spec.origins)
        self._tag_types = {tag.type_name: tag.type for tag in reversed(spec.tags)}  # first wins
        self._events_counters: dict[str, tuple[str, Labels]] = {}
        self._plans = [
            _TagPlan(
                spec=tag,
                fires=any_of(tag.triggers),
                blocked=any_of(tag.block),
                shared=view_shared(spec.variables, _written(tag.transformations)),
                makes_events=makes_events(tag.type),
            )
            for tag in spec.tags
        ]
        # Outcomes of skipped tags when nothing traces, by tag and fixed reason (bounded by the
        # config: trigger, blocked, paused, dedupe, consent:<type>).
        self._skipped: dict[tuple[str, str], TagTrace] = {}
        # A server logs the events its tags refuse (`sgtm emulate` and `sgtm audit` report them
        # in their output instead): one line per (tag, reason) a minute, so a tag refusing
        # every event does not write a line per event (sgtm_tags_total counts them all).
        self.refusals = RateLimitedLog(log) if log_refusals else None

    # -- requests -------------------------------------------------------------------------

    async def handle(
        self, request: HitRequest, *, trace: bool = False, preview: str = ""
    ) -> HandleResult:
        """`preview`: the request is traced for a preview session, and each request a tag built
        carries `<preview>/<event>/<tag>/<request>` (indexes in the trace) to its delivery, so
        the session shows how it went."""
        origin = request.origin
        allowed_origin = origin if origin is not None and origin.lower() in self._origins else None
        if request.method == "OPTIONS" and allowed_origin is not None:
            return HandleResult(None, self._preflight(request, allowed_origin))
        result = await self._handle(request, trace or bool(preview), preview)
        headers = result.response.headers
        if allowed_origin is not None:
            headers["access-control-allow-origin"] = allowed_origin
            headers["access-control-allow-credentials"] = "true"
        # The CORS headers differ by Origin, so every answer varies on it, listed origin or not:
        # a cache must not hand one origin's answer to another. Keep what the client varies on
        # (the datalayer script varies on Accept-Encoding).
        vary = headers.get("vary")
        if not vary:
            headers["vary"] = "Origin"
        elif "origin" not in (v.strip().lower() for v in vary.split(",")):
            headers["vary"] = f"{vary}, Origin"
        return result

    def _preflight(self, request: HitRequest, origin: str) -> ClientResponse:
        asked = request.headers.get("access-control-request-headers", "content-type")
        allowed = ", ".join(
            h.strip() for h in asked.split(",") if h.strip().replace("-", "").isalnum()
        )
        return ClientResponse(
            status=204,
            headers={
                "access-control-allow-origin": origin,
                "access-control-allow-credentials": "true",
                "access-control-allow-methods": "GET, POST, OPTIONS",
                "access-control-allow-headers": allowed or "content-type",
                "access-control-max-age": "86400",
                "vary": "Origin",
            },
        )

    async def _handle(self, request: HitRequest, trace: bool, preview: str) -> HandleResult:
        for client in self.spec.clients:
            try:
                claimed = client.type.claim(request, client.settings)
            except Exception:
                log.exception("client claim() failed", extra={"client": client.name})
                continue
            if claimed:
                break
        else:
            return HandleResult(
                None, ClientResponse(status=404, body=b"no client claimed this request\n")
            )

        limited = self._over_rate(client, request)
        if limited is not None:
            return HandleResult(client.name, limited, error="rate limited")

        now = self.clock()
        ctx = ClientContext(client_name=client.name, container=self.info, now=now, random=self.rng)
        try:
            events = client.type.parse(request, client.settings, ctx)
        except BadRequest as exc:
            self.metrics.inc(
                "sgtm_dropped_total", container=self.name, reason=f"{client.name}.bad_request"
            )
            body = exc.body if exc.body is not None else f"{exc}\n".encode()
            response = ClientResponse(status=exc.status, headers=dict(exc.headers), body=body)
            return HandleResult(client.name, response, error=str(exc))
        except Exception as exc:
            log.exception("client parse() failed", extra={"client": client.name})
            self.metrics.inc(
                "sgtm_dropped_total", container=self.name, reason=f"{client.name}.parse_error"
            )
            error = f"client {client.name} could not parse the request ({type(exc).__name__})"
            return HandleResult(
                client.name, ClientResponse(status=400, body=b"bad request\n"), error=error
            )
        self._settle_hit_ips(events, request, client)
        for reason, count in ctx.dropped.items():
            self.metrics.inc("sgtm_dropped_total", count, container=self.name, reason=reason)
        if len(events) > MAX_EVENTS_PER_REQUEST:
            self.metrics.inc(
                "sgtm_dropped_total", len(events) - MAX_EVENTS_PER_REQUEST, reason="too_many_events"
            )
            events = events[:MAX_EVENTS_PER_REQUEST]

        # Dedupe keys this request marked as seen: if it is answered 503, the client resends it,
        # and a resent event must not be dropped as a duplicate of one that was never stored.
        marked: list[str] = []
        traces: list[EventTrace] = []
        try:
            events = await self._drop_resent(client, events, marked)
            submissions, traces = await self.run_events(
                events, request, client.name, now, trace, marked, preview=preview
            )
            if submissions:
                await self.delivery.submit(submissions)
        except DeliveryUnavailable as exc:
            log.error("delivery unavailable: %s", exc)
            if marked:
                try:
                    await self.dedupe.forget(marked)
                except DeliveryUnavailable:
                    log.warning("could not release %d dedupe keys of a 503", len(marked))
            response = ClientResponse(
                status=503, headers={"retry-after": "5"}, body=b"unavailable\n"
            )
            return HandleResult(client.name, response, traces, len(events), error=str(exc))

        try:
            response = client.type.respond(request, events, client.settings, ctx)
        except Exception:
            log.exception("client respond() failed", extra={"client": client.name})
            response = ClientResponse(status=204)
        return HandleResult(client.name, response, traces, len(events))

    async def follow_up(self, source_tag: str, events: list[EventData]) -> None:
        """Run events a tag made from a vendor's answer and store their deliveries; raises
        DeliveryUnavailable (with the dedupe keys released) when they cannot be stored. Their
        Client Name is the tag's name."""
        marked: list[str] = []
        now = self.clock()
        try:
            submissions, _ = await self.run_events(
                events, None, source_tag, now, False, marked, follow_up=True
            )
            if submissions:
                await self.delivery.submit(submissions)
        except DeliveryUnavailable:
            if marked:
                with contextlib.suppress(DeliveryUnavailable):
                    await self.dedupe.forget(marked)
            raise

    def _over_rate(self, client: ClientSpec, request: HitRequest) -> ClientResponse | None:
        """The 429 for a sender over the rate its client declares, or None."""
        try:
            declared = client.type.rate_limit(request, client.settings)
        except Exception:
            log.exception("client rate_limit() failed", extra={"client": client.name})
            return None
        if declared is None:
            return None
        source, rate = declared
        wait = self.limiter.admit(f"{client.name}/{source}", rate)
        if wait == 0.0:
            return None
        self.metrics.inc(
            "sgtm_dropped_total", container=self.name, reason=f"{client.name}.rate_limited"
        )
        return ClientResponse(
            status=429,
            headers={"retry-after": str(math.ceil(wait)), "content-type": "text/plain"},
            body=b"too many requests\n",
        )

    async def _drop_resent(
        self, client: ClientSpec, events: list[EventData], marked: list[str]
    ) -> list[EventData]:
        """The events whose client dedupe key (a sender's own id) was not seen yet; their keys
        go in `marked`, so a 503 releases them for the sender's retry."""
        kept = []
        for event in events:
            try:
                declared = client.type.dedupe_key(event, client.settings)
            except Exception:
                log.exception("client dedupe_key() failed", extra={"client": client.name})
                declared = None
            if declared is None:
                kept.append(event)
                continue
            key = f"{self.name}/client:{client.name}/{declared[0]}"
            if await self.dedupe.seen(key, declared[1]):
                self.metrics.inc(
                    "sgtm_dropped_total", container=self.name, reason=f"{client.name}.duplicate"
                )
                continue
            marked.append(key)
            kept.append(event)
        return kept

    def _settle_hit_ips(
        self, events: list[EventData], request: HitRequest, client: ClientSpec
    ) -> None:
        """A hit may name its own client IP (GA4 `_uip`, an event's `ip_override`): believed only
        from a trusted sender or a client configured to trust it, else the request's own client
        IP takes its place. Done here, once, so no client can forget it. A believed IP is
        anonymized like the socket's."""
        believed = request.trusted_sender or client.trust_hit_ip
        anonymize = self.spec.privacy.anonymize_ip
        replaced = 0
        for event in events:
            if "ip_override" not in event:
                continue
            if believed:
                if anonymize:
                    event["ip_override"] = anonymize_ip(event["ip_override"])
            elif request.client_ip is None:
                del event["ip_override"]
                replaced += 1
            elif event["ip_override"] != request.client_ip:
                event["ip_override"] = request.client_ip
                replaced += 1
        if replaced:
            self.metrics.inc(
                "sgtm_dropped_total",
                replaced,
                container=self.name,
                reason=f"{client.name}.untrusted_hit_ip",
            )

    # -- events ---------------------------------------------------------------------------

    async def run_events(
        self,
        events: list[EventData],
        request: HitRequest | None,
        client_name: str | None,
        now: float,
        trace: bool,
        marked: list[str] | None = None,
        follow_up: bool = False,
        preview: str = "",
    ) -> tuple[list[Submission], list[EventTrace]]:
        """Run every tag on every event. Dedupe keys newly marked as seen for tags that fired
        are appended to `marked`, so a caller that cannot store the result can release them.
        `follow_up`: the events came from a vendor's answer; tags that make such events do not
        run on them, so no chain of answers and events can loop."""
        submissions: list[Submission] = []
        traces: list[EventTrace] = []
        client_label = client_name or "-"
        events_counter = self._events_counters.get(client_label)
        if events_counter is None:  # one per client and tag that makes follow-ups
            events_counter = self._events_counters[client_label] = counter_key(
                "sgtm_events_total", container=self.name, client=client_label
            )
        for event_index, event in enumerate(events):
            self.metrics.add(events_counter)
            scope = Scope(event, request, client_name, self.spec.variables)
            tag_traces: list[TagTrace] = []
            ids: tuple[str, str] | None = None  # the event's history keys, once it sends
            for plan in self._plans:
                if follow_up and plan.makes_events:
                    continue
                tag = plan.spec
                outcome = self._screen(plan, event, scope, trace)
                if outcome is None:
                    outcome = await self._run_tag(plan, event, scope, request, now, marked, trace)
                label = "fired" if outcome.fired else (outcome.reason or "").split(":")[0]
                counter = plan.counters.get(label)
                if counter is None:  # one per outcome label: a few words, not the messages
                    counter = plan.counters[label] = counter_key(
                        "sgtm_tags_total", container=self.name, tag=tag.name, outcome=label
                    )
                self.metrics.add(counter)
                if outcome.fired and not tag.dry_run:
                    if ids is None:
                        ids = self._history_keys(event)
                    at = f"{preview}/{event_index}/{len(tag_traces)}/" if preview else ""
                    submissions.extend(
                        Submission(
                            container=self.name,
                            tag=tag.name,
                            tag_type=tag.type_name,
                            outbound=outbound,
                            created=now,
                            nonce=outcome.nonce,
                            event_id=ids[0],
                            request_id=request.request_id if request is not None else "",
                            transaction_id=ids[1],
                            preview=f"{at}{number}" if preview else "",
                        )
                        for number, outbound in enumerate(outcome.requests)
                    )
                elif outcome.fired:
                    self._log_dry_run(tag, outcome.requests)
                elif self.refusals is not None and (outcome.reason or "").startswith("invalid"):
                    self._log_refusal(self.refusals, tag.name, outcome.reason or "", request)
                if trace:
                    tag_traces.append(outcome)
            if trace:
                traces.append(EventTrace(event, tag_traces, ids[0] if ids else ""))
        return submissions, traces

    def _history_keys(self, event: EventData) -> tuple[str, str]:
        """The keys the delivery history finds an event by: its own `event_id` (else one drawn
        for it, which its preview trace shows) and its `transaction_id` ("" when none)."""
        transaction_id = event.get("transaction_id")
        return (
            _event_id(event) or self.new_id(),
            str(transaction_id) if isinstance(transaction_id, str | int) else "",
        )

    def _skip(self, tag: TagSpec, reason: str, trace: bool) -> TagTrace:
        if trace:
            return TagTrace(tag.name, tag.type_name, False, reason)
        # Nobody keeps an outcome when nothing traces: one per tag and fixed reason serves
        # every event (the reasons with a message are made anew, in _run_tag).
        key = (tag.name, reason)
        shared = self._skipped.get(key)
        if shared is None:
            shared = self._skipped[key] = TagTrace(tag.name, tag.type_name, False, reason)
        return shared

    def _screen(
        self, plan: _TagPlan, event: EventData, scope: Scope, trace: bool
    ) -> TagTrace | None:
        """Why the tag does not fire on this event (paused, triggers, blocking triggers,
        consent), or None: decided without a coroutine, as most tags skip most events."""
        tag = plan.spec
        if tag.paused:
            return self._skip(tag, "paused", trace)
        if not plan.fires(scope):
            return self._skip(tag, "trigger", trace)
        if plan.blocked(scope):
            return self._skip(tag, "blocked", trace)
        denied = consent.first_denied(tag.consent, event, self.spec.consent_default_granted)
        if denied is not None:
            return self._skip(tag, f"consent:{denied}", trace)
        return None

    async def _run_tag(
        self,
        plan: _TagPlan,
        event: EventData,
        scope: Scope,
        request: HitRequest | None,
        now: float,
        marked: list[str] | None,
        trace: bool = False,
    ) -> TagTrace:
        """The tag on an event that passed `_screen`."""
        tag = plan.spec
        view = apply_all(tag.transformations, event, scope)
        view_scope = scope if view is event else scope.view(view, plan.shared)
        settings = tag.settings
        if tag.render_settings is not None:
            try:
                rendered = tag.render_settings(view_scope)
                settings = msgspec.convert(rendered, tag.type.Settings, strict=False)
            except (msgspec.ValidationError, ValueError) as exc:
                return TagTrace(
                    tag.name, tag.type_name, False, f"invalid: settings: {self.redact(str(exc))}"
                )

        try:
            dedupe = self._dedupe_key(tag, view, view_scope, settings)
        except Exception as exc:
            reason = f"invalid: dedupe key: {type(exc).__name__}"
            return TagTrace(tag.name, tag.type_name, False, reason)
        if dedupe is not None and await self.dedupe.seen(*dedupe):
            return self._skip(tag, "dedupe", trace)

        ctx = BuildContext(
            tag_name=tag.name,
            container=self.info,
            now=now,
            request=request,
            new_id=self.tag_ids(tag.name),
        )
        try:
            requests = [safe_headers(outbound) for outbound in tag.type.build(view, settings, ctx)]
        except Exception as exc:
            if dedupe is not None:
                # Nothing was sent: a corrected resend of this event must not count as a repeat.
                await self.dedupe.forget([dedupe[0]])
            if isinstance(exc, InvalidEvent):
                return TagTrace(tag.name, tag.type_name, False, f"invalid: {self.redact(str(exc))}")
            log.exception("tag build() failed", extra={"tag": tag.name})
            reason = f"invalid: tag error ({type(exc).__name__})"
            return TagTrace(tag.name, tag.type_name, False, reason)
        if dedupe is not None and marked is not None:
            marked.append(dedupe[0])
        warnings = [self.redact(w) for w in ctx.warnings]
        if warnings:
            self.metrics.inc(
                "sgtm_tag_warnings_total", len(warnings), container=self.name, tag=tag.name
            )
            log.info(
                "tag changed the event to send it", extra={"tag": tag.name, "warnings": warnings}
            )
        return TagTrace(tag.name, tag.type_name, True, None, requests, warnings, ctx.nonce)

    def _log_refusal(
        self, refusals: RateLimitedLog, tag: str, reason: str, request: HitRequest | None
    ) -> None:
        # The reason is worded by the tag and may quote the event's values: logged with them
        # hidden (docs/operations.md, Logs); `sgtm emulate` shows it whole.
        shown = hide_values(reason)
        refusals.warning(
            (tag, shown),
            "tag refused an event",
            {
                "container": self.name,
                "tag": tag,
                "reason": shown,
                "request_id": request.request_id if request is not None else "",
            },
        )

    def as_sent(self, tag_type: str, outbound: Outbound) -> Outbound:
        """The request as the vendor receives it when it travels alone (a batch of one)."""
        tag = self._tag_types[tag_type]
        return tag.merge([outbound]) if tag.batching else outbound

    def _dedupe_key(
        self, tag: TagSpec, view: EventData, scope: Scope, settings: Any
    ) -> tuple[str, float] | None:
        if tag.dedupe is not None:
            render, ttl = tag.dedupe
            value = render(scope)
            return (f"{self.name}/{tag.name}/{value}", ttl) if value not in (None, "") else None
        declared = tag.type.dedupe_key(view, settings)
        if declared is None:
            return None
        key, ttl = declared
        return f"{self.name}/{tag.name}/{key}", ttl

    def _log_dry_run(self, tag: TagSpec, requests: list[Outbound]) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        # At info, the request's shape only: values from a visitor (e-mails, phones, IPs,
        # click ids in query strings) never reach the logs. Debug shows it whole.
        full = log.isEnabledFor(logging.DEBUG)
        batching = tag.type.batching
        for outbound in requests:
            if batching:  # as it travels alone, as as_sent() gives it
                outbound = tag.type.merge([outbound])
            fields = {
                "container": self.name,
                "tag": tag.name,
                "method": outbound.method,
                **log_view(outbound, self.redact, full=full),
            }
            logs.line(log, logging.INFO, "dry_run request", fields)


def _written(transformations: tuple[Transformation, ...]) -> list[str] | None:
    """The event paths these transformations may write; None when one may change any (`allow`
    keeps only what it lists)."""
    paths: list[str] = []
    for transformation in transformations:
        if transformation.kind == "allow":
            return None
        if transformation.kind == "exclude":
            paths.extend(transformation.params)
        else:
            paths.extend(path for path, _ in transformation.set)
    return paths


def _event_id(event: EventData) -> str:
    """The event's own `event_id` as delivery lines show it: text or a number, at most 128
    characters, without control characters; "" when it has none."""
    raw = event.get("event_id")
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        return ""
    text = str(raw)[:128]
    return text if text.isprintable() else "".join(c for c in text if c.isprintable())


_HEADER_BREAKS = str.maketrans("", "", "\r\n\0")


def safe_headers(outbound: Outbound) -> Outbound:
    """The request with CR, LF and NUL removed from header values: a value that came from a hit
    can never end a header and start another (response splitting, smuggled auth headers)."""
    headers = outbound.headers
    values = "".join(headers.values())  # one scan of all the values, not three per value
    if "\r" not in values and "\n" not in values and "\0" not in values:
        return outbound
    clean = {k: v.translate(_HEADER_BREAKS) for k, v in headers.items()}
    return msgspec.structs.replace(outbound, headers=clean)
