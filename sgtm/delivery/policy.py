"""Delivery configuration: the container's `delivery:` section, per-tag overrides, durations.

A lane's policy starts from what the tag type declares (`batching`, `rate_limit`, `timeout`) and
the container's `delivery.max_age`; a tag's own `delivery:` block overrides any of it. Durations
are written as "500ms", "30s", "15m", "6h", "1d" or plain numbers of seconds.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec

from sgtm.delivery.store import DEFAULT_HISTORY_RETENTION
from sgtm.plugin import Batching, RateLimit, Tag

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}

DEFAULT_MAX_AGE = 6 * 3600.0
DEFAULT_CONCURRENCY = 32
# Destinations (lanes) one tag may have at once in a process: tags keep lanes few (one per vendor
# account or endpoint), and a destination taken from a hit must not open lanes without end.
DEFAULT_MAX_LANES = 64


def parse_duration(value: Any) -> float:
    """Seconds from "500ms" / "30s" / "15m" / "6h" / "1d" or a number; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 30s, 15m or 6h, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION_RE.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f"expected a duration like 500ms, 30s, 15m or 6h, got {value!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    return seconds


Duration = str | float


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class RateLimitConfig(_Strict):
    requests: int
    per: Duration = 1.0


class StoreConfig(_Strict):
    """The container's top-level `delivery:` section."""

    store: Literal["sqlite", "redis"] = "sqlite"
    path: str | None = None  # sqlite: a directory (default ./var or $SGTM_DATA_DIR)
    url: str | None = None  # redis: redis://host:port/db (may be "${REDIS_URL}")
    prefix: str = "sgtm"  # redis: key prefix, so several deployments can share one server
    max_age: Duration = DEFAULT_MAX_AGE
    # How long each delivery's outcome stays findable by event id (`sgtm trace`, the admin
    # API); 0 keeps no history.
    history: Duration = DEFAULT_HISTORY_RETENTION
    # Lanes (destinations) each tag may have at once; a request for one more is refused when
    # the hit is stored (counted, logged), never stored and then dropped.
    max_lanes_per_tag: int = DEFAULT_MAX_LANES


class TagDeliveryConfig(_Strict):
    """A tag's `delivery:` block: overrides of what its tag type declares."""

    max_items: int | None = None
    max_bytes: int | None = None
    linger: Duration | None = None
    flush_every: Duration | None = None
    rate_limit: RateLimitConfig | None = None
    concurrency: int | None = None
    timeout: Duration | None = None
    max_age: Duration | None = None
    max_lanes: int | None = None  # overrides the container's max_lanes_per_tag


@dataclass(frozen=True, slots=True)
class StoreSpec:
    """Where the outbox, dead letters, schedules and dedupe keys live."""

    kind: Literal["sqlite", "redis"] = "sqlite"
    path: str = ""  # sqlite directory, resolved
    url: str = ""
    prefix: str = "sgtm"
    history: float = DEFAULT_HISTORY_RETENTION  # seconds the delivery history keeps an outcome

    def describe(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite at {self.path}"
        return f"redis {redact_url(self.url)} prefix {self.prefix!r}"


@dataclass(frozen=True, slots=True)
class LanePolicy:
    """Everything the engine needs to know about sending one tag's requests."""

    batching: Batching
    rate_limit: RateLimit | None
    concurrency: int
    timeout: float
    max_age: float
    batched: bool  # the tag declares batching: requests go through merge / classify_batch
    timeout_fixed: bool = False  # set in the tag's delivery block: wins over Outbound.timeout
    max_lanes: int = DEFAULT_MAX_LANES  # destinations the tag may have at once (LaneBudget)


def default_data_dir() -> str:
    return os.environ.get("SGTM_DATA_DIR") or str(Path("var").resolve())


def store_spec(cfg: StoreConfig | None) -> StoreSpec:
    if cfg is None:
        return StoreSpec(kind="sqlite", path=default_data_dir())
    history = parse_duration(cfg.history)
    if cfg.store == "redis":
        return StoreSpec(kind="redis", url=cfg.url or "", prefix=cfg.prefix, history=history)
    path = str(Path(cfg.path).resolve()) if cfg.path else default_data_dir()
    return StoreSpec(kind="sqlite", path=path, history=history)


def lane_policy(
    tag: Tag[Any],
    cfg: TagDeliveryConfig | None,
    max_age: float,
    settings: Any = None,
    max_lanes: int = DEFAULT_MAX_LANES,
) -> LanePolicy:
    """The tag type's declarations (for these settings, when given) with the tag's overrides
    applied (already validated); `max_age` and `max_lanes` are the container's defaults."""
    declared = tag.batching or Batching()
    cfg = cfg or TagDeliveryConfig()
    batching = Batching(
        max_items=cfg.max_items if cfg.max_items is not None else declared.max_items,
        max_bytes=cfg.max_bytes if cfg.max_bytes is not None else declared.max_bytes,
        linger=parse_duration(cfg.linger) if cfg.linger is not None else declared.linger,
        flush_every=(
            parse_duration(cfg.flush_every) if cfg.flush_every is not None else declared.flush_every
        ),
    )
    rate = tag.rate_limit if settings is None else tag.rate_limit_for(settings)
    if cfg.rate_limit is not None:
        rate = RateLimit(requests=cfg.rate_limit.requests, per=parse_duration(cfg.rate_limit.per))
    return LanePolicy(
        batching=batching,
        rate_limit=rate,
        concurrency=cfg.concurrency or DEFAULT_CONCURRENCY,
        timeout=parse_duration(cfg.timeout) if cfg.timeout is not None else tag.timeout,
        max_age=parse_duration(cfg.max_age) if cfg.max_age is not None else max_age,
        batched=tag.batching is not None,
        timeout_fixed=cfg.timeout is not None,
        max_lanes=cfg.max_lanes if cfg.max_lanes is not None else max_lanes,
    )


def check_tag_delivery(cfg: TagDeliveryConfig, tag: Tag[Any]) -> list[tuple[str, str]]:
    """Problems as (relative path, message); an empty list means the block is valid."""
    problems: list[tuple[str, str]] = []
    for name in ("linger", "flush_every", "timeout", "max_age"):
        value = getattr(cfg, name)
        if value is None:
            continue
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            problems.append((name, str(exc)))
            continue
        if name in ("flush_every", "timeout", "max_age") and seconds <= 0:
            problems.append((name, "must be more than zero"))
    for name in ("max_items", "max_bytes", "concurrency", "max_lanes"):
        value = getattr(cfg, name)
        if value is not None and value < 1:
            problems.append((name, "must be at least 1"))
    if cfg.max_items is not None and cfg.max_items > 1 and tag.batching is None:
        problems.append(
            ("max_items", f"tag type {tag.name!r} does not batch: it cannot merge requests")
        )
    if (
        tag.batching is not None
        and cfg.max_items is not None
        and cfg.max_items > tag.batching.max_items
    ):
        limit = tag.batching.max_items
        problems.append(("max_items", f"tag type {tag.name!r} allows at most {limit} per request"))
    if cfg.rate_limit is not None:
        if cfg.rate_limit.requests < 1:
            problems.append(("rate_limit.requests", "must be at least 1"))
        try:
            if parse_duration(cfg.rate_limit.per) <= 0:
                problems.append(("rate_limit.per", "must be more than zero"))
        except ValueError as exc:
            problems.append(("rate_limit.per", str(exc)))
    return problems


def check_store(cfg: StoreConfig) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    try:
        if parse_duration(cfg.max_age) <= 0:
            problems.append(("max_age", "must be more than zero"))
    except ValueError as exc:
        problems.append(("max_age", str(exc)))
    try:
        parse_duration(cfg.history)
    except ValueError as exc:
        problems.append(("history", str(exc)))
    if cfg.max_lanes_per_tag < 1:
        problems.append(("max_lanes_per_tag", "must be at least 1"))
    if cfg.store == "redis" and not cfg.url:
        problems.append(("url", "required for store: redis (e.g. redis://127.0.0.1:6379/0)"))
    if cfg.store == "sqlite" and cfg.url:
        problems.append(("url", "only for store: redis (sqlite takes `path`)"))
    if cfg.store == "redis" and cfg.path:
        problems.append(("path", "only for store: sqlite (redis takes `url`)"))
    return problems


def redact_url(url: str) -> str:
    """redis://user:password@host -> redis://user:***@host, for logs and errors."""
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)
