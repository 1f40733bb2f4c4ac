"""Running a container's tags on the audit's probes, with triggers and consent out of the way.

The container runs as `sgtm emulate` runs it (the real pipeline, delivery recorded, nothing
sent), except that every tag fires on every probe: its triggers, blocking triggers, consent
requirements and `paused` are lifted (the report states them instead), and neither dedupe nor a
client's per-sender rate holds a probe back. Probes are, per probe event name:

- the probe event itself, as a server feeding event data would send it (after the container's
  IP anonymization, as a client's events are);
- every request the container's clients build for it (`Client.probe_requests`), sent through
  the whole pipeline: the client that claims it parses it, with its own rules (`ep.user_data.*`
  on a GA4 hit, a Data Tag's aliases, the identity cookies it reads).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sgtm.audit.canaries import EVENT_NAMES, Canaries
from sgtm.config import ContainerSpec, TagSpec
from sgtm.container import Container, EventTrace
from sgtm.delivery.recorder import RecorderDelivery
from sgtm.event import copy_event
from sgtm.plugin import Outbound, RateLimit
from sgtm.privacy import anonymize_ip
from sgtm.ratelimit import SourceLimiter
from sgtm.scope import Scope

# A fixed clock: the same container always gives the same report.
NOW = 1_700_000_000.0


class NeverSeen:
    """A dedupe store that lets every probe through: probes repeat event ids on purpose."""

    async def seen(self, key: str, ttl: float) -> bool:
        return False

    async def forget(self, keys: list[str]) -> None:
        return None


class NoLimit(SourceLimiter):
    """A sender rate that admits every probe: a client's `rate_limit` is not the audit's concern."""

    def admit(self, source: str, rate: RateLimit) -> float:
        return 0.0


@dataclass
class TagRun:
    """What one tag did on the probes."""

    spec: TagSpec
    requests: list[Outbound] = field(default_factory=list)
    fired: int = 0
    refused: dict[str, list[str]] = field(default_factory=dict)  # reason -> probes refused


@dataclass
class ContainerRun:
    spec: ContainerSpec
    tags: dict[str, TagRun]
    notes: list[str] = field(default_factory=list)  # probes a client could not take


def _always(scope: Scope) -> bool:
    return True


def _ungated(tag: TagSpec) -> TagSpec:
    return replace(tag, triggers=(_always,), block=(), consent=(), paused=False, dedupe=None)


async def run(spec: ContainerSpec, canaries: Canaries) -> ContainerRun:
    probing = replace(spec, tags=[_ungated(tag) for tag in spec.tags])
    container = Container(probing, RecorderDelivery(), NeverSeen(), clock=lambda: NOW)
    container.limiter = NoLimit(container.clock)
    outcome = ContainerRun(spec, {tag.name: TagRun(tag) for tag in spec.tags})
    host = spec.hosts[0] if spec.hosts else "sgtm.shop.example"
    base = canaries.request(host, spec.privacy.resolve(canaries.value("ip_override"), None))
    for name in EVENT_NAMES:
        event = canaries.event(name, NOW)
        if spec.privacy.anonymize_ip:
            event["ip_override"] = anonymize_ip(event["ip_override"])
        _, traces = await container.run_events([copy_event(event)], None, None, NOW, trace=True)
        _record(container, outcome, traces, name)
        for client in spec.clients:
            probe = f"{name} via {client.name}"
            try:
                requests = client.type.probe_requests(copy_event(event), base, client.settings)
            except Exception as exc:  # a plugin's bug: the report says so, the audit goes on
                outcome.notes.append(
                    f"client {client.name} could not build its {name} probe: {exc!r}"
                )
                continue
            for request in requests:
                result = await container.handle(request, trace=True)
                if result.error or not result.events:
                    problem = result.error or f"answered {result.response.status}, no event"
                    outcome.notes.append(
                        f"probe {probe} gave no event: {container.redact(problem)}"
                    )
                _record(container, outcome, result.events, probe)
    return outcome


def _record(
    container: Container, outcome: ContainerRun, traces: list[EventTrace], probe: str
) -> None:
    for trace in traces:
        for tag in trace.tags:
            run = outcome.tags[tag.name]
            reason = tag.reason or "did not fire"
            if tag.fired:
                try:
                    sent = [container.as_sent(tag.type, o) for o in tag.requests]
                except Exception as exc:  # a batching tag's merge(): reported, not raised
                    reason = f"invalid: merge() failed ({type(exc).__name__})"
                else:
                    run.requests.extend(sent)
                    run.fired += 1
                    continue
            probes = run.refused.setdefault(reason, [])
            if probe not in probes:
                probes.append(probe)
