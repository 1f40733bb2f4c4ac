"""Per-sender rate limits and sender-side dedupe: what the core does with `Client.rate_limit` and
`Client.dedupe_key`, with a small test client (the webhook tests exercise them on a real server)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from sgtm.config import load_text
from sgtm.container import Container
from sgtm.dedupe import MemoryDedupe
from sgtm.delivery import DeliveryUnavailable, RecorderDelivery, Submission
from sgtm.plugin import Client, ClientResponse, RateLimit
from sgtm.plugins import Registry
from sgtm.ratelimit import SourceLimiter, parse_rate
from sgtm.request import HitRequest
from tests.installed import registry


class SenderClient(Client):
    """Claims /in; one event per `ids` query value; senders named by the X-Sender header."""

    name = "sender"

    def claim(self, request: HitRequest, settings: Any) -> bool:
        return request.path == "/in"

    def parse(self, request: HitRequest, settings: Any, ctx: Any) -> list[dict[str, Any]]:
        ids = request.query.get("ids", "")
        return [{"event_name": "lead", "id": i} for i in ids.split(",") if i]

    def respond(self, request: HitRequest, events: Any, settings: Any, ctx: Any) -> ClientResponse:
        return ClientResponse(status=202, body=b'{"status": "accepted"}')

    def rate_limit(self, request: HitRequest, settings: Any) -> tuple[str, RateLimit] | None:
        sender = request.headers.get("x-sender")
        return None if sender is None else (sender, RateLimit(requests=2, per=60))

    def dedupe_key(self, event: dict[str, Any], settings: Any) -> tuple[str, float] | None:
        return (event["id"], 3600.0) if event["id"] != "-" else None


CONTAINER = """\
version: 1
name: shop
clients: [{name: crm, type: sender}]
triggers: {leads: {event_name: lead}}
tags:
  - {name: hook, type: http_request, triggers: [leads], settings: {url: "https://hook.example/x"}}
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class FlakyDelivery(RecorderDelivery):
    """Refuses the next `refuse` submissions, like a store that is down."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse = 0

    async def submit(self, submissions: list[Submission]) -> None:
        if self.refuse:
            self.refuse -= 1
            raise DeliveryUnavailable("store down")
        await super().submit(submissions)


@pytest.fixture
def setup():
    base = registry()
    reg = Registry(
        clients={**base.clients, "sender": SenderClient()},
        tags=base.tags,
        variables=base.variables,
    )
    clock = Clock()
    delivery = FlakyDelivery()
    container = Container(load_text(CONTAINER, "c.yaml", reg), delivery, MemoryDedupe(), clock)
    return container, delivery, clock


def hit(ids: str, sender: str | None = "a") -> HitRequest:
    headers = {"x-sender": sender} if sender else {}
    return HitRequest(method="POST", path="/in", query_string=f"ids={ids}", headers=headers)


def sent_ids(delivery: RecorderDelivery) -> list[str]:
    return [msgspec.json.decode(s.outbound.body)["id"] for s in delivery.submitted]


async def test_a_sender_over_its_rate_gets_429_with_retry_after(setup):
    container, delivery, clock = setup
    assert (await container.handle(hit("1"))).response.status == 202
    assert (await container.handle(hit("2"))).response.status == 202
    refused = await container.handle(hit("3"))
    assert refused.response.status == 429
    assert refused.response.headers["retry-after"] == "30"  # one token every 60/2 seconds
    assert sent_ids(delivery) == ["1", "2"]  # nothing of the refused request was parsed or sent
    # Another sender has its own bucket; requests without a sender are not limited.
    assert (await container.handle(hit("4", sender="b"))).response.status == 202
    assert (await container.handle(hit("5", sender=None))).response.status == 202
    clock.now += 30
    assert (await container.handle(hit("6"))).response.status == 202
    assert (await container.handle(hit("7"))).response.status == 429


async def test_a_resent_id_is_acknowledged_and_not_run_again(setup):
    container, delivery, _ = setup
    first = await container.handle(hit("10,11", sender=None))
    again = await container.handle(hit("11,12,12", sender=None))
    assert (first.response.status, again.response.status) == (202, 202)
    assert again.event_count == 1  # 11 was seen, the second 12 repeats the first
    assert sent_ids(delivery) == ["10", "11", "12"]
    # Events without a key are never deduplicated.
    await container.handle(hit("-,-", sender=None))
    assert sent_ids(delivery)[3:] == ["-", "-"]


async def test_a_503_releases_the_ids_so_the_resend_is_processed(setup):
    container, delivery, _ = setup
    delivery.refuse = 1
    refused = await container.handle(hit("20,21", sender=None))
    assert refused.response.status == 503
    resent = await container.handle(hit("20,21", sender=None))
    assert resent.response.status == 202
    assert sent_ids(delivery) == ["20", "21"]


def test_the_limiter_forgets_the_least_recent_sender_first():
    clock = Clock()
    limiter = SourceLimiter(clock, max_sources=2)
    rate = RateLimit(requests=1, per=60)
    assert limiter.admit("a", rate) == 0.0
    assert limiter.admit("a", rate) == 60.0
    limiter.admit("b", rate)
    limiter.admit("c", rate)  # "a" is forgotten: memory stays bounded under a flood of senders
    assert limiter.admit("a", rate) == 0.0


@pytest.mark.parametrize(
    ("text", "requests", "per"),
    [("100/minute", 100, 60.0), ("5/s", 5, 1.0), (" 1 / day ", 1, 86400.0), ("190/h", 190, 3600.0)],
)
def test_parse_rate(text, requests, per):
    assert parse_rate(text) == RateLimit(requests=requests, per=per)


@pytest.mark.parametrize("text", ["", "100", "0/minute", "-1/minute", "1e3/m", "10/fortnight", "x"])
def test_parse_rate_refuses_what_is_not_a_rate(text):
    with pytest.raises(ValueError, match="expected a rate like 100/minute"):
        parse_rate(text)
