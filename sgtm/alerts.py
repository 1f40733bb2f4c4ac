"""The `alerts:` section of a container: a webhook (Slack-compatible `{"text": ...}`) told when
a lane's circuit breaker opens (and when it closes again), when dead letters grow past a count
in a window, or when a tag refuses more than a share of its events.

The rules read the process's own counters and gauges (sgtm/metrics.py) every few seconds, the
way Prometheus rules read `/metrics`: nothing on the hit path or in the delivery engine waits
for them. Messages are deduplicated (one alert is sent again only after `repeat` while it
holds) and capped per container (`max_messages` an hour, the rest counted and said in the next
message), so an outage sends a handful, not thousands. Sending happens on a task of its own
through sgtm's HTTP transport; a webhook that fails is logged, never raised. The webhook URL is
a secret: it comes from the environment and is never logged.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import urlsplit

import msgspec

from sgtm.delivery.policy import Duration, parse_duration
from sgtm.delivery.transport import Transport, TransportError
from sgtm.redact import Redactor

log = logging.getLogger("sgtm.alerts")

Count = Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)]
Ratio = Annotated[float, msgspec.Meta(gt=0.0, le=1.0)]
MAX_URL = 2048
# The metrics the rules read (metrics.samples).
WATCHED = ("sgtm_delivery_breaker_state", "sgtm_deliveries_total", "sgtm_tags_total")


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class WebhookConfig(_Strict):
    url: str  # "${ALERTS_WEBHOOK_URL}": a secret, from the environment
    timeout: Duration = 5.0


class DeadLettersConfig(_Strict):
    count: Count = 1  # dead letters of one tag within `window` that make an alert
    window: Duration = 300.0


class InvalidConfig(_Strict):
    ratio: Ratio = 0.1  # share of a tag's events refused (`invalid: ...`) within `window`
    min_events: Count = 20  # fewer events than this in the window never alert
    window: Duration = 300.0


class AlertsConfig(_Strict):
    """A container's `alerts:` section."""

    webhook: WebhookConfig
    breaker: bool = True
    dead_letters: DeadLettersConfig | bool = msgspec.field(default_factory=DeadLettersConfig)
    invalid: InvalidConfig | bool = msgspec.field(default_factory=InvalidConfig)
    repeat: Duration = 3600.0  # an alert that still holds is sent again after this long
    max_messages: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 20  # per container, per hour


@dataclass(frozen=True, slots=True)
class Threshold:
    count: int
    window: float
    ratio: float = 0.0


@dataclass(frozen=True, slots=True)
class AlertRules:
    """A container's alerts, checked and with durations in seconds."""

    container: str
    url: str
    url_name: str  # the environment variable the URL came from: what logs say instead of it
    timeout: float
    breaker: bool
    dead_letters: Threshold | None
    invalid: Threshold | None
    repeat: float
    max_messages: int
    redact: Redactor = field(default_factory=lambda: Redactor({}), compare=False)


def check_alerts(
    cfg: AlertsConfig, container: str, url_name: str
) -> tuple[AlertRules | None, list[tuple[str, str]]]:
    """The rules of a decoded section, or the problems (relative path, message). Messages never
    quote the webhook URL: it is a secret."""
    problems: list[tuple[str, str]] = []
    problem = _url_problem(cfg.webhook.url)
    if problem:
        problems.append(("webhook.url", problem))

    def seconds(path: str, value: Duration, low: float, high: float, shown: str) -> float:
        try:
            parsed = parse_duration(value)
        except ValueError as exc:
            problems.append((path, str(exc)))
            return low
        if not low <= parsed <= high:
            problems.append((path, f"must be {shown}"))
        return parsed

    timeout = seconds("webhook.timeout", cfg.webhook.timeout, 0.001, 30, "over 0 and at most 30s")
    repeat = seconds("repeat", cfg.repeat, 60, 7 * 86400, "between 1m and 7d")
    dead = invalid = None
    dead_cfg = DeadLettersConfig() if cfg.dead_letters is True else cfg.dead_letters
    if isinstance(dead_cfg, DeadLettersConfig):
        window = seconds("dead_letters.window", dead_cfg.window, 10, 86400, "between 10s and 1d")
        dead = Threshold(dead_cfg.count, window)
    invalid_cfg = InvalidConfig() if cfg.invalid is True else cfg.invalid
    if isinstance(invalid_cfg, InvalidConfig):
        window = seconds("invalid.window", invalid_cfg.window, 10, 86400, "between 10s and 1d")
        invalid = Threshold(invalid_cfg.min_events, window, invalid_cfg.ratio)
    if problems:
        return None, problems
    rules = AlertRules(
        container=container,
        url=cfg.webhook.url,
        url_name=url_name,
        timeout=timeout,
        breaker=cfg.breaker,
        dead_letters=dead,
        invalid=invalid,
        repeat=repeat,
        max_messages=cfg.max_messages,
    )
    return rules, []


def _url_problem(url: str) -> str | None:
    if "{{" in url or "}}" in url:
        return "templates are not rendered here: give the URL through `${NAME}`"
    if len(url) > MAX_URL:
        return f"longer than {MAX_URL} characters"
    if any(c.isspace() or not c.isprintable() for c in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "not a URL"
    if not host:
        return "expected https://host/path"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and _loopback(host):
        return None  # a relay or test server on this machine
    return "must be https:// (http:// only to this machine's loopback)"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- the rules at run time -------------------------------------------------------------------

Sample = tuple[str, dict[str, str], float]  # metric name, labels, value


@dataclass(slots=True)
class Message:
    rules: AlertRules
    key: tuple[str, str]  # (kind, lane or tag): what deduplication compares
    text: str


@dataclass(slots=True)
class _Series:
    """One counter's samples within a window, oldest first, plus the one just before it."""

    points: collections.deque[tuple[float, float]] = field(default_factory=collections.deque)

    def increase(self, now: float, value: float, window: float, start: float) -> float:
        points = self.points
        if not points:
            points.append((start, 0.0))  # counters start at zero with the process
        if value < points[-1][1]:
            points.clear()  # the counter was reset
            points.append((now, 0.0))
        points.append((now, value))
        while len(points) > 1 and points[1][0] <= now - window:
            points.popleft()
        return value - points[0][1]


@dataclass(slots=True)
class _State:
    """What one container's alerts remember between checks."""

    open_lanes: set[str] = field(default_factory=set)
    announced: set[str] = field(default_factory=set)  # lanes whose opening was sent
    last_sent: dict[tuple[str, str], float] = field(default_factory=dict)
    series: dict[tuple[str, str, str], _Series] = field(default_factory=dict)
    sent: collections.deque[float] = field(default_factory=collections.deque)  # the last hour


class Alerter:
    """Checks every container's rules each `interval` seconds and posts what they find."""

    def __init__(
        self,
        rules: Sequence[AlertRules],
        read: Callable[[Iterable[str]], list[Sample]],
        *,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.time,
        interval: float = 5.0,
        queue_size: int = 100,
    ) -> None:
        self.rules = list(rules)
        self.read = read
        self.transport = transport or Transport(connections=4, per_host=2)
        self.clock = clock
        self.interval = interval
        self.started = clock()
        self._state = {r.container: _State() for r in self.rules}
        self._queue: asyncio.Queue[Message] = asyncio.Queue(queue_size)
        self._tasks: list[asyncio.Task[None]] = []

    def replace_rules(self, rules: Sequence[AlertRules]) -> None:
        """The rules of a reloaded config; what was said and counted for a container stays."""
        self.rules = list(rules)
        self._state = {r.container: self._state.get(r.container) or _State() for r in self.rules}

    async def start(self) -> None:
        await self.transport.start()
        self.started = self.clock()
        self._tasks = [
            asyncio.create_task(self._check_loop(), name="sgtm-alerts-check"),
            asyncio.create_task(self._send_loop(), name="sgtm-alerts-send"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.transport.close()

    # -- checking -------------------------------------------------------------------------

    def check(self, now: float) -> list[Message]:
        """The messages due now (already counted against deduplication and the caps)."""
        if not self.rules:
            return []
        samples = self.read(WATCHED)
        by_container: dict[str, list[Sample]] = collections.defaultdict(list)
        for sample in samples:
            by_container[sample[1].get("container", "")].append(sample)
        out: list[Message] = []
        for rules in self.rules:
            state = self._state[rules.container]
            found = by_container.get(rules.container, [])
            candidates = [
                *self._breakers(rules, state, found),
                *self._dead_letters(rules, state, found, now),
                *self._invalid(rules, state, found, now),
            ]
            out.extend(self._admit(rules, state, candidates, now))
        return out

    def _breakers(self, rules: AlertRules, state: _State, samples: list[Sample]) -> list[Message]:
        if not rules.breaker:
            return []
        out = []
        for name, labels, value in samples:
            if name != "sgtm_delivery_breaker_state":
                continue
            lane = labels.get("lane", "")
            if value >= 1:
                state.open_lanes.add(lane)
                text = (
                    f"sgtm {rules.container}: lane {lane} is failing: its circuit breaker is "
                    "open. Its deliveries wait in the outbox and are retried; a message follows "
                    "when it recovers."
                )
                out.append(Message(rules, ("open", lane), text))
            elif lane in state.open_lanes:
                state.open_lanes.discard(lane)
                if lane in state.announced:
                    state.announced.discard(lane)
                    text = (
                        f"sgtm {rules.container}: lane {lane} recovered: the vendor answers "
                        "again and the waiting deliveries are being sent."
                    )
                    out.append(Message(rules, ("closed", lane), text))
        return out

    def _dead_letters(
        self, rules: AlertRules, state: _State, samples: list[Sample], now: float
    ) -> list[Message]:
        rule = rules.dead_letters
        if rule is None:
            return []
        out = []
        for name, labels, value in samples:
            if name != "sgtm_deliveries_total" or labels.get("outcome") != "dead":
                continue
            tag = labels.get("tag", "")
            series = state.series.setdefault(("dead", tag, ""), _Series())
            grown = series.increase(now, value, rule.window, self.started)
            if grown >= rule.count:
                text = (
                    f"sgtm {rules.container}: {grown:g} deliveries of tag {tag} were "
                    f"dead-lettered in the last {_duration(rule.window)}. `sgtm dlq list` shows "
                    "them and why; `sgtm dlq replay` sends them again."
                )
                out.append(Message(rules, ("dead", tag), text))
        return out

    def _invalid(
        self, rules: AlertRules, state: _State, samples: list[Sample], now: float
    ) -> list[Message]:
        rule = rules.invalid
        if rule is None:
            return []
        counts: dict[str, dict[str, float]] = collections.defaultdict(dict)
        for name, labels, value in samples:
            if name == "sgtm_tags_total" and labels.get("outcome") in ("fired", "invalid"):
                counts[labels.get("tag", "")][labels["outcome"]] = value
        out = []
        for tag, values in counts.items():
            grown = {
                outcome: state.series.setdefault(("tags", tag, outcome), _Series()).increase(
                    now, values.get(outcome, 0.0), rule.window, self.started
                )
                for outcome in ("fired", "invalid")
            }
            total = grown["fired"] + grown["invalid"]
            if total >= rule.count and grown["invalid"] / total >= rule.ratio:
                text = (
                    f"sgtm {rules.container}: tag {tag} refused {grown['invalid']:g} of "
                    f"{total:g} events ({grown['invalid'] / total:.0%}) in the last "
                    f"{_duration(rule.window)}. The `tag refused an event` log lines say why."
                )
                out.append(Message(rules, ("invalid", tag), text))
        return out

    def _admit(
        self, rules: AlertRules, state: _State, candidates: list[Message], now: float
    ) -> list[Message]:
        """The candidates not sent within `repeat` (recoveries first), at most `max_messages`
        an hour; the last one sent says how many more are held back (they stay due, and are
        sent when the hour makes room)."""
        while state.sent and state.sent[0] <= now - 3600:
            state.sent.popleft()
        due = [
            m
            for m in candidates
            if m.key[0] == "closed"
            or (last := state.last_sent.get(m.key)) is None
            or now - last >= rules.repeat
        ]
        due.sort(key=lambda m: m.key[0] != "closed")
        room = max(0, rules.max_messages - len(state.sent))
        out, held = due[:room], len(due) - room
        for message in out:
            state.last_sent[message.key] = now
            state.sent.append(now)
            if message.key[0] == "open":
                state.announced.add(message.key[1])
        if out and held > 0:
            out[-1].text += (
                f" ({held} more alerts were held back: at most {rules.max_messages} messages "
                "an hour.)"
            )
        return out

    # -- sending --------------------------------------------------------------------------

    async def _check_loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                messages = self.check(self.clock())
            except Exception as exc:
                log.error("alerts not checked: %s", type(exc).__name__)
                continue
            for message in messages:
                try:
                    self._queue.put_nowait(message)
                except asyncio.QueueFull:
                    log.warning(
                        "alert dropped: the webhook is not keeping up",
                        extra={"container": message.rules.container},
                    )

    async def _send_loop(self) -> None:
        while True:
            message = await self._queue.get()
            await self.send(message)

    async def send(self, message: Message) -> bool:
        """Post one message; whether the webhook took it. Failures are logged, never raised."""
        rules = message.rules
        body = msgspec.json.encode({"text": rules.redact(message.text)})
        headers = {"Content-Type": "application/json"}
        where = {"container": rules.container, "webhook": "${" + rules.url_name + "}"}
        try:
            response = await self.transport.send("POST", rules.url, headers, body, rules.timeout)
        except TransportError as exc:
            log.warning("alert not sent: %s", exc.kind, extra=where)
            return False
        except Exception as exc:
            log.warning("alert not sent: %s", type(exc).__name__, extra=where)
            return False
        if not 200 <= response.status < 300:
            log.warning("alert not sent: the webhook answered %d", response.status, extra=where)
            return False
        log.info("alert sent", extra={**where, "alert": message.key[0]})
        return True


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def alerter_for(
    rules: Sequence[AlertRules],
    read: Callable[[Iterable[str]], list[Sample]],
    environ: Mapping[str, str] | None = None,
) -> Alerter:
    """The process's alerter, checking the rules every `SGTM_ALERTS_INTERVAL` (default 5s). It
    runs without rules too (reading nothing), so a reload that adds an `alerts:` section
    takes effect."""
    raw = (os.environ if environ is None else environ).get("SGTM_ALERTS_INTERVAL", "5s")
    try:
        interval = parse_duration(raw)
    except ValueError as exc:
        raise ValueError(f"SGTM_ALERTS_INTERVAL: {exc}") from None
    if not 0.01 <= interval <= 3600:
        raise ValueError("SGTM_ALERTS_INTERVAL: must be between 10ms and 1h")
    return Alerter(rules, read, interval=interval)
