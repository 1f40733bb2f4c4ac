"""Fixtures for the delivery tests: a store of each backend, fresh per test.

Redis is a real server at 127.0.0.1:6379 (.ci/run starts one); each test uses its own key
prefix and deletes its keys. An unreachable Redis fails these tests: it is never a skip.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis
import uvloop

from sgtm.delivery.redis_store import RedisStore
from sgtm.delivery.sqlite_store import SqliteStore
from sgtm.delivery.store import Store

REDIS_URL = os.environ.get("SGTM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_prefix() -> str:
    return f"sgtm-test-{uuid.uuid4().hex[:12]}"


def drop_redis_prefix(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match="{" + prefix + "}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is required for the delivery tests: {exc}")
    finally:
        client.close()
    return REDIS_URL


class StoreFactory:
    """Opens stores of one backend that share one outbox (like two workers or instances)."""

    def __init__(self, kind: str, tmp_path: os.PathLike[str], url: str) -> None:
        self.kind = kind
        self.directory = tmp_path
        self.url = url
        self.prefix = redis_prefix()
        self.opened: list[Store] = []

    async def __call__(self, owner: str | None = None) -> Store:
        store: Store
        if self.kind == "sqlite":
            store = SqliteStore(self.directory, owner=owner)
        else:
            store = RedisStore(self.url, prefix=self.prefix, owner=owner)
        await store.open()
        self.opened.append(store)
        return store

    def new(self) -> Store:
        """An unopened store on the same outbox (for an engine, which opens it)."""
        if self.kind == "sqlite":
            return SqliteStore(self.directory)
        return RedisStore(self.url, prefix=self.prefix)

    async def cleanup(self) -> None:
        for store in self.opened:
            await store.close()
        if self.kind == "redis":
            drop_redis_prefix(self.prefix)


@pytest.fixture(params=["sqlite", "redis"])
async def stores(request, tmp_path, redis_url) -> AsyncIterator[StoreFactory]:
    factory = StoreFactory(request.param, tmp_path, redis_url)
    try:
        yield factory
    finally:
        await factory.cleanup()


@pytest.fixture
async def store(stores: StoreFactory) -> Store:
    return await stores()


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """uvloop beside asyncio for tests marked `asyncio(loop_factories=[...])`: `sgtm serve`
    runs on uvloop, whose transports differ from asyncio's in ways the HTTP transport meets."""
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": asyncio.new_event_loop
    }
    marker = item.get_closest_marker("asyncio")
    if marker is not None and "loop_factories" in marker.kwargs:
        factories["uvloop"] = uvloop.new_event_loop
    return factories
