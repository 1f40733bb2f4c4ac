"""The slack tag, tested as any plugin author would: installed, through sgtm.testing, against a
fake Slack webhook in-process and on loopback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fake_slack import problems, reply

from sgtm.testing import FakeVendor, Harness, MockTransport, Reply, json_body

HOOK = "https://hooks.slack.test/services/T000/B000/XXXX"

CONTAINER = """\
version: 1
triggers:
  purchase: {event_name: purchase}
tags:
  - name: slack_sales
    type: slack
    triggers: [purchase]
    settings:
      webhook_url: "${SLACK_WEBHOOK_URL}"
      channel: "#sales"
"""


def harness(url: str = HOOK) -> Harness:
    # No `plugins=`: the tag is found through the installed package's entry point.
    return Harness(CONTAINER, environ={"SLACK_WEBHOOK_URL": url})


def slack() -> MockTransport:
    return MockTransport(check=problems, reply=reply)


async def test_a_purchase_is_posted():
    h = harness()
    result = await h.events({"event_name": "purchase", "value": 42, "currency": "BRL"})
    (request,) = result.requests("slack_sales")
    assert request.url == HOOK
    assert json_body(request) == {"text": "purchase: 42 BRL", "channel": "#sales"}
    vendor = slack()
    (delivered,) = await h.deliver(vendor)
    assert delivered.outcome == "done" and vendor.errors == []


async def test_other_events_do_not_fire_and_a_purchase_without_value_is_invalid():
    result = await harness().events({"event_name": "page_view"}, {"event_name": "purchase"})
    assert result.reasons("slack_sales") == ["trigger", "invalid: no value to report"]


async def test_hit_values_cannot_ping_a_channel():
    result = await harness().events({"event_name": "purchase", "value": "<!channel> & <@U1>"})
    (request,) = result.requests("slack_sales")
    assert json_body(request)["text"] == "purchase: &lt;!channel&gt; &amp; &lt;@U1&gt;"


async def test_a_bad_currency_is_left_out_with_a_warning():
    result = await harness().events({"event_name": "purchase", "value": 5, "currency": "reais"})
    assert result.fired("slack_sales")
    assert result.warnings("slack_sales") == ["currency 'reais' is not an ISO 4217 code: left out"]
    assert json_body(result.requests("slack_sales")[0])["text"] == "purchase: 5"


async def test_a_purchase_is_posted_once_for_a_day():
    h = harness()
    purchase = {"event_name": "purchase", "value": 5, "transaction_id": "T-1"}
    assert (await h.events(purchase, purchase)).reasons("slack_sales") == [None, "dedupe"]
    h.clock.advance(86401)
    assert (await h.events(purchase)).fired("slack_sales")


@pytest.mark.parametrize(
    ("status", "outcome", "reason"),
    [
        (400, "dead", "slack answered 400: invalid_payload"),
        (404, "dead", "slack answered 404: no_service"),
        (410, "dead", "slack answered 410: channel_is_archived"),
        (429, "retry", "slack answered 429: rate_limited"),
        (500, "retry", "slack answered 500: rollup_error"),
    ],
)
async def test_slack_errors_are_classified(status, outcome, reason):
    h = harness()
    await h.events({"event_name": "purchase", "value": 1})
    (delivered,) = await h.deliver(MockTransport(responses=[status], reply=reply))
    assert (delivered.outcome, delivered.verdict.reason) == (outcome, reason)


async def test_a_rate_limited_post_is_sent_again_after_retry_after():
    h = harness()
    await h.events({"event_name": "purchase", "value": 1})
    vendor = MockTransport(
        check=problems, reply=reply, responses=[Reply(status=429, headers={"Retry-After": "30"})]
    )
    (first,) = await h.deliver(vendor)
    assert first.outcome == "retry" and first.verdict.retry_after == 30.0
    h.clock.advance(30)
    (second,) = await h.deliver(vendor)
    assert second.outcome == "done" and len(vendor.received) == 2


async def test_posted_over_a_real_socket():
    with FakeVendor(check=problems, reply=reply) as fake:
        h = harness(f"{fake.url}/services/T000/B000/XXXX")
        await h.events({"event_name": "purchase", "value": 9.5, "currency": "EUR"})
        (delivered,) = await h.deliver()
    assert delivered.outcome == "done" and fake.errors == []
    (got,) = fake.received
    assert got.json() == {"text": "purchase: 9.5 EUR", "channel": "#sales"}


def test_sgtm_lists_the_installed_plugin():
    listing = subprocess.run(
        [sys.executable, "-m", "sgtm", "plugins", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    plugins = {p["name"]: p for p in json.loads(listing.stdout)["plugins"]}
    assert plugins["slack"]["version"] == "1.0.0"
    assert plugins["slack"]["tag_types"] == ["slack"]
