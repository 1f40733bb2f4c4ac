"""Run-time credentials: one token request for many sends, one refresh after a refusal."""

from __future__ import annotations

import asyncio
import json

from tests.delivery.helpers import (
    AuthSettings,
    AuthTag,
    bearer,
    engine,
    route,
    submission,
)
from tests.servers import FakeVendor, Reply, eventually

SECRET = "client-secret-value-42"


def token_server() -> FakeVendor:
    issued = iter(range(1, 1000))
    return FakeVendor(
        reply=lambda got, status: json.dumps({"token": f"tok-{next(issued)}", "ttl": 3600}).encode()
    )


def auth_route(tokens: FakeVendor):
    settings = AuthSettings(token_url=tokens.url + "/token", client_secret=SECRET)
    return route(AuthTag(), settings=settings, secrets={SECRET: "CLIENT_SECRET"})


async def test_concurrent_sends_share_one_token_request(stores):
    store = await stores()
    with token_server() as tokens, FakeVendor() as api:
        r = auth_route(tokens)
        eng = engine(stores.new(), r)
        await eng.start()
        try:
            await eng.submit(
                [submission(r, api.url + "/e", i, headers=bearer()) for i in range(20)]
            )
            got = await asyncio.to_thread(api.wait_for, 20)
        finally:
            await eng.close()
    assert len(tokens.received) == 1
    assert SECRET.encode() in tokens.received[0].body
    assert {g.headers["authorization"] for g in got} == {"Bearer tok-1"}
    # What waits in the store keeps the placeholder, never the token.
    assert await store.dead_letters() == []


async def test_refused_token_is_refreshed_once_and_the_send_retried(stores):
    store = await stores()
    with token_server() as tokens, FakeVendor(responses=[401, 401]) as api:
        r = auth_route(tokens)
        eng = engine(stores.new(), r)
        await eng.start()
        try:
            await eng.submit([submission(r, api.url + "/e", 1, headers=bearer())])
            await eventually(lambda: store.dead_letters())
        finally:
            await eng.close()
        # Refused, refreshed once, refused again: no loop of refreshes, a dead letter.
        assert [g.headers["authorization"] for g in api.received] == [
            "Bearer tok-1",
            "Bearer tok-2",
        ]
        assert len(tokens.received) == 2
        (letter,) = await store.dead_letters()
        stored = letter.outbound()
        assert stored.headers["Authorization"] == bearer()["Authorization"]  # never the token
        assert b"tok-" not in letter.payload
        assert (
            eng.metrics.value("sgtm_delivery_auth_refresh_total", container="shop", tag="hook") == 1
        )


async def test_many_refusals_of_one_token_make_one_refresh(stores):
    with token_server() as tokens, FakeVendor(responses=[Reply(401)] * 8) as api:
        r = auth_route(tokens)
        eng = engine(stores.new(), r)
        await eng.start()
        try:
            await eng.submit([submission(r, api.url + "/e", i, headers=bearer()) for i in range(8)])
            await asyncio.to_thread(api.wait_for, 16)
            await eventually(
                lambda: (
                    eng.metrics.value(
                        "sgtm_deliveries_total", container="shop", tag="hook", outcome="done"
                    )
                    == 8
                )
            )
        finally:
            await eng.close()
    assert len(tokens.received) == 2  # the first token, then one shared refresh
    retried = [g.headers["authorization"] for g in api.received[8:]]
    assert retried == ["Bearer tok-2"] * 8


async def test_token_endpoint_down_retries_later(stores):
    with FakeVendor(responses=[503]) as tokens, FakeVendor() as api:
        tokens.reply = lambda got, status: json.dumps({"token": "tok-ok", "ttl": 3600}).encode()
        r = auth_route(tokens)
        eng = engine(stores.new(), r)
        await eng.start()
        try:
            await eng.submit([submission(r, api.url + "/e", 1, headers=bearer())])
            (got,) = await asyncio.to_thread(api.wait_for, 1)
        finally:
            await eng.close()
    assert got.headers["authorization"] == "Bearer tok-ok"
    assert len(tokens.received) == 2
