"""Test tag types and an engine tuned for tests (tiny backoffs, fast polls)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import msgspec

from sgtm import placeholders
from sgtm.delivery.base import Submission
from sgtm.delivery.engine import DeliveryEngine, EngineOptions, TagRoute
from sgtm.delivery.policy import TagDeliveryConfig, lane_policy
from sgtm.delivery.seal import SecretSeal
from sgtm.delivery.store import Store
from sgtm.plugin import (
    Batching,
    Credential,
    Outbound,
    Tag,
    Verdict,
    default_classify,
)
from sgtm.redact import Redactor


class PlainTag(Tag):
    name = "test_plain"
    timeout = 2.0


class BatchTag(Tag):
    """Merges items into {"items": [...]}; the vendor answers {"results": [outcome, ...]}."""

    name = "test_batch"
    timeout = 2.0
    batching = Batching(max_items=4, max_bytes=100_000)

    def merge(self, outbounds: list[Outbound]) -> Outbound:
        first = outbounds[0]
        body = json.dumps({"items": [o.batch_item for o in outbounds]}).encode()
        return Outbound(method="POST", url=first.url, headers=first.headers, body=body)

    def classify_batch(self, status, headers, body, items):
        if status != 200:
            return [default_classify(status)] * len(items)
        results = json.loads(body)["results"]  # malformed bodies raise: the engine retries
        return [Verdict(outcome=r, reason=f"item said {r}") for r in results]


class AuthSettings(msgspec.Struct, kw_only=True):
    token_url: str
    client_secret: str


class AuthTag(Tag):
    """Gets {"token", "ttl"} from token_url; sends `Authorization: Bearer {{credential}}`."""

    name = "test_auth"
    timeout = 2.0
    Settings = AuthSettings

    def auth_request(self, settings: AuthSettings) -> Outbound:
        body = f"grant_type=client_credentials&secret={settings.client_secret}".encode()
        return Outbound(method="POST", url=settings.token_url, body=body)

    def parse_auth(self, status, headers, body, now) -> Credential:
        data = json.loads(body)
        return Credential(token=data["token"], expires_at=now + data["ttl"])


def route(
    tag: Tag,
    *,
    container: str = "shop",
    name: str = "hook",
    settings: Any = None,
    delivery: TagDeliveryConfig | None = None,
    max_age: float = 3600.0,
    secrets: dict[str, str] | None = None,
) -> TagRoute:
    return TagRoute(
        container=container,
        tag=name,
        type=tag,
        settings=settings,
        policy=lane_policy(tag, delivery, max_age),
        seal=SecretSeal(secrets or {}),
        redact=Redactor(secrets or {}),
    )


FAST = EngineOptions(
    poll_interval=0.05,
    backoff_base=0.05,
    backoff_cap=0.2,
    breaker_failures=3,
    breaker_open_min=0.05,
    breaker_open_max=0.2,
    lease_margin=1.0,
    drain_timeout=2.0,
    sweep_interval=0.1,
    discover_interval=0.1,
)


def engine(store: Store, *routes: TagRoute, **options: Any) -> DeliveryEngine:
    opts = _replace(FAST, **options)
    return DeliveryEngine(store, {(r.container, r.tag): r for r in routes}, options=opts)


def _replace(options: EngineOptions, **changes: Any) -> EngineOptions:
    import dataclasses

    return dataclasses.replace(options, **changes)


def submission(
    r: TagRoute,
    url: str,
    n: int,
    *,
    headers: dict[str, str] | None = None,
    created: float | None = None,
) -> Submission:
    body = json.dumps({"n": n}).encode()
    outbound = Outbound(
        method="POST",
        url=url,
        headers={"Idempotency-Key": f"event-{n}", **(headers or {})},
        body=body,
        idempotency_key=f"event-{n}",
        batch_item={"n": n},
    )
    return Submission(
        container=r.container,
        tag=r.tag,
        tag_type=r.type.name,
        outbound=outbound,
        created=time.time() if created is None else created,
        nonce=NONCE,
    )


NONCE = "0123456789abcdef"  # the nonce `submission` binds its requests' placeholders to


def bearer(credential: str = placeholders.credential(NONCE)) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


async def eventually(predicate: Callable[[], Any], limit: float = 15.0) -> Any:
    """Poll until `predicate()` (sync or async) is truthy; fail after `limit` seconds."""
    deadline = time.monotonic() + limit
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
