"""Composition of `sgtm serve` from loaded containers: the delivery store, the lanes' policies,
the engine. It lives outside the delivery package, which knows nothing of the config; `sgtm dlq`
opens the same store the same way."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence

from sgtm.config import ContainerSpec
from sgtm.delivery.engine import DeliveryEngine, EngineOptions, TagRoute
from sgtm.delivery.policy import (
    DEFAULT_MAX_AGE,
    DEFAULT_MAX_LANES,
    StoreSpec,
    lane_policy,
    parse_duration,
    store_spec,
)
from sgtm.delivery.seal import SecretSeal
from sgtm.delivery.store import Store
from sgtm.metrics import Metrics
from sgtm.redact import Redactor


def store_for(specs: Sequence[ContainerSpec]) -> StoreSpec:
    """The store the containers name (load-time checks made them agree), else the default."""
    for spec in specs:
        if spec.delivery is not None:
            return store_spec(spec.delivery)
    return store_spec(None)


def open_store(spec: StoreSpec) -> Store:
    """A store object (not yet opened: call `await store.open()`)."""
    if spec.kind == "redis":
        from sgtm.delivery.redis_store import RedisStore

        return RedisStore(spec.url, prefix=spec.prefix, history=spec.history)
    from sgtm.delivery.sqlite_store import SqliteStore

    return SqliteStore(spec.path, history=spec.history)


def routes_for(specs: Sequence[ContainerSpec]) -> dict[tuple[str, str], TagRoute]:
    routes: dict[tuple[str, str], TagRoute] = {}
    for spec in specs:
        max_age = parse_duration(spec.delivery.max_age) if spec.delivery else DEFAULT_MAX_AGE
        max_lanes = spec.delivery.max_lanes_per_tag if spec.delivery else DEFAULT_MAX_LANES
        seal = SecretSeal(spec.secrets)
        redact = Redactor(spec.secrets)
        for tag in spec.tags:
            routes[(spec.name, tag.name)] = TagRoute(
                container=spec.name,
                tag=tag.name,
                type=tag.type,
                settings=tag.settings,
                policy=lane_policy(tag.type, tag.delivery, max_age, tag.settings, max_lanes),
                seal=seal,
                redact=redact,
            )
    return routes


def options_from_env(environ: Mapping[str, str] | None = None) -> EngineOptions:
    """EngineOptions with `SGTM_DELIVERY_<FIELD>` overrides (durations), e.g.
    SGTM_DELIVERY_BACKOFF_CAP=60s or SGTM_DELIVERY_DRAIN_TIMEOUT=30s."""
    env = os.environ if environ is None else environ
    options = EngineOptions()
    changes: dict[str, float | int] = {}
    for item in dataclasses.fields(options):
        raw = env.get(f"SGTM_DELIVERY_{item.name.upper()}")
        if raw is None:
            continue
        try:
            seconds = parse_duration(raw)
        except ValueError as exc:
            raise ValueError(f"SGTM_DELIVERY_{item.name.upper()}: {exc}") from None
        changes[item.name] = int(seconds) if item.type in ("int", int) else seconds
    return dataclasses.replace(options, **changes)  # type: ignore[arg-type]


def build_engine(
    specs: Sequence[ContainerSpec],
    options: EngineOptions | None = None,
    *,
    sends: bool = True,
    metrics: Metrics | None = None,
) -> DeliveryEngine:
    """`sends`: False for an ingest-only process, which stores and leaves sending to others."""
    store = open_store(store_for(specs))
    return DeliveryEngine(
        store,
        routes_for(specs),
        options=options or options_from_env(),
        sends=sends,
        metrics=metrics,
    )
