"""The `meta_leadgen` client: Meta's verification handshake, signed leadgen notifications (Meta's
documented sample shape, ids as numbers and as strings), redeliveries, bad input; then on
`sgtm serve` the way Meta calls it."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode

import httpx
import msgspec
import pytest

from sgtm.config import load_text
from sgtm.container import Container
from sgtm.dedupe import MemoryDedupe
from sgtm.delivery import RecorderDelivery
from sgtm.request import HitRequest
from sgtm.yamlsource import ConfigErrors
from tests.installed import registry
from tests.plugins.crm_fakes import FAST_DELIVERY
from tests.servers import FakeVendor, SgtmServer

APP_SECRET = "meta-app-secret-0123456789"
VERIFY_TOKEN = "verify-me-please"
ENV = {"META_APP_SECRET": APP_SECRET, "META_VERIFY_TOKEN": VERIFY_TOKEN}
CONTAINER = """\
version: 1
name: shop
clients:
  - name: meta_ads
    type: meta_leadgen
    settings:
      path: /webhooks/meta-ads
      verify_token: "${META_VERIFY_TOKEN}"
      app_secret: "${META_APP_SECRET}"
triggers: {leads: {event_name: generate_lead}}
tags:
  - name: hook
    type: http_request
    triggers: [leads]
    settings: {url: "https://hooks.example.test/lead"}
"""

# Meta's sample notification (Graph API docs, "Webhooks for Leads"): ids as JSON numbers, two
# changes in one entry (the second with ids as strings, as real deliveries also have them).
SAMPLE = {
    "object": "page",
    "entry": [
        {
            "id": 153125381133,
            "time": 1438292065,
            "changes": [
                {
                    "field": "leadgen",
                    "value": {
                        "leadgen_id": 123123123123,
                        "page_id": 123123123,
                        "form_id": 12312312312,
                        "adgroup_id": 12312312312,
                        "ad_id": 12312312312,
                        "created_time": 1440120384,
                    },
                },
                {
                    "field": "leadgen",
                    "value": {
                        "leadgen_id": "123123123124",
                        "page_id": "123123123",
                        "form_id": "12312312312",
                        "created_time": 1440120385,
                    },
                },
            ],
        }
    ],
}


def container() -> tuple[Container, RecorderDelivery]:
    spec = load_text(CONTAINER, "shop.yaml", registry(), environ=ENV)
    delivery = RecorderDelivery()
    return Container(spec, delivery, MemoryDedupe()), delivery


def signed(raw: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def notification(body: Any = SAMPLE, *, raw: bytes | None = None, **headers: str) -> HitRequest:
    data = raw if raw is not None else json.dumps(body).encode()
    all_headers = {"content-type": "application/json", "x-hub-signature-256": signed(data)}
    all_headers.update({k.replace("_", "-"): v for k, v in headers.items()})
    return HitRequest(method="POST", path="/webhooks/meta-ads", headers=all_headers, body=data)


def verification(**query: str) -> HitRequest:
    return HitRequest(method="GET", path="/webhooks/meta-ads", query_string=urlencode(query))


async def test_the_verification_handshake_echoes_the_challenge():
    c, _ = container()
    good = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    result = await c.handle(verification(**good))
    assert (result.response.status, result.response.body) == (200, b"1158201444")
    assert result.response.headers["content-type"] == "text/plain"
    for wrong in (
        {**good, "hub.verify_token": "guess"},
        {**good, "hub.mode": "unsubscribe"},
        {"hub.challenge": "1"},
    ):
        refused = await c.handle(verification(**wrong))
        assert refused.response.status == 403
        assert b"1158201444" not in refused.response.body
    # The challenge is echoed only as a plain token: markup is never reflected.
    hostile = await c.handle(verification(**{**good, "hub.challenge": "<script>x</script>"}))
    assert hostile.response.status == 400 and b"<script>" not in hostile.response.body


async def test_each_leadgen_change_is_one_generate_lead_event_with_string_ids():
    c, delivery = container()
    result = await c.handle(notification(), trace=True)
    assert (result.response.status, result.response.body) == (200, b"")
    assert [t.data for t in result.events] == [
        {
            "event_name": "generate_lead",
            "lead_id": "123123123123",
            "form_id": "12312312312",
            "ad_id": "12312312312",
            "adgroup_id": "12312312312",
            "page_id": "123123123",
            "created_time": 1440120384,
            "event_id": "123123123123",
        },
        {
            "event_name": "generate_lead",
            "lead_id": "123123123124",
            "form_id": "12312312312",
            "page_id": "123123123",  # an organic lead: no ad ids
            "created_time": 1440120385,
            "event_id": "123123123124",
        },
    ]
    assert len(delivery.submitted) == 2


async def test_a_redelivered_lead_is_acknowledged_without_running_tags_again():
    c, delivery = container()
    for _ in range(3):
        assert (await c.handle(notification())).response.status == 200
    assert len(delivery.submitted) == 2


async def test_the_signature_is_checked_over_the_raw_escaped_bytes():
    c, _ = container()
    raw = (
        b'{"object": "page", "entry": [{"id": "1", "time": 1, "changes": [{"field": "leadgen",'
        b' "value": {"leadgen_id": "42", "page_id": "1", "form_id": "2",'
        b' "note": "\\u00e4\\u00f6"}}]}]}'
    )
    assert (await c.handle(notification(raw=raw))).response.status == 200
    decoded_then_signed = json.dumps(json.loads(raw), ensure_ascii=False).encode()
    request = notification(raw=raw, x_hub_signature_256=signed(decoded_then_signed))
    assert (await c.handle(request)).response.status == 401


@pytest.mark.parametrize(
    "signature",
    ["", "sha256=", "sha1=" + "0" * 40, signed(b"{}"), signed(json.dumps(SAMPLE).encode(), "x")],
)
async def test_a_wrong_signature_is_401_and_nothing_is_kept(signature):
    c, delivery = container()
    result = await c.handle(notification(x_hub_signature_256=signature), trace=True)
    assert result.response.status == 401
    assert result.events == [] and delivery.submitted == []


async def test_a_missing_signature_is_401():
    c, delivery = container()
    request = notification()
    del request.headers["x-hub-signature-256"]
    result = await c.handle(request)
    assert (result.response.status, result.response.body) == (
        401,
        b"missing X-Hub-Signature-256\n",
    )
    assert delivery.submitted == []


async def test_other_fields_and_objects_are_acknowledged_and_ignored():
    c, delivery = container()
    feed = {"object": "page", "entry": [{"id": "1", "changes": [{"field": "feed", "value": {}}]}]}
    other = {"object": "instagram", "entry": [{"id": "1", "changes": [{"field": "leadgen"}]}]}
    for body in (feed, other):
        assert (await c.handle(notification(body))).response.status == 200
    assert delivery.submitted == []


async def test_a_change_without_a_usable_leadgen_id_is_dropped_and_the_rest_kept():
    c, _ = container()
    values = [{"leadgen_id": 7.5}, {"leadgen_id": "12ab"}, {"form_id": 1}, "x", {"leadgen_id": 9}]
    body = {
        "object": "page",
        "entry": [{"id": "1", "changes": [{"field": "leadgen", "value": v} for v in values]}],
    }
    result = await c.handle(notification(body), trace=True)
    assert result.response.status == 200
    assert [t.data["lead_id"] for t in result.events] == ["9"]


async def test_parts_of_other_types_are_skipped_and_other_changes_are_never_decoded():
    """Only leadgen changes are decoded: another change may hold anything (deep, huge), and an
    entry or change of the wrong JSON type is skipped like one of another field."""
    c, _ = container()
    deep = "[" * 200 + "]" * 200
    raw = (
        '{"object": "page", "entry": ["x", 7, {"changes": {"a": 1}}, {"id": "1", "changes": ['
        f'{{"field": "feed", "value": {deep}}}, 5, {{"field": 9, "value": 1}}, '
        '{"field": "leadgen", "value": {"leadgen_id": 44, "page_id": "{{secret.APP_SECRET}}"}}'
        "]}]}"
    ).encode()
    result = await c.handle(notification(raw=raw), trace=True)
    assert result.response.status == 200
    assert [t.data["lead_id"] for t in result.events] == ["44"]
    assert "page_id" not in result.events[0].data  # not an id: never taken


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "message"),
    [
        (
            b'{"object": "page", "entry": [{"changes": [{"field": "leadgen", "value": '
            + b"[" * 40
            + b"]" * 40
            + b"}]}]}",
            "application/json",
            400,
            b"nested deeper than 32",
        ),
        # Invalid UTF-8 is refused even where the part would be skipped.
        (b'{"object": "page", "entry": [], "x": "\xc3\x28"}', "application/json", 400, b"UTF-8"),
        # Deep nesting in a part that is skipped costs a scan, not an error.
        (
            b'{"object": "page", "entry": [1], "x": [' + b"[" * 500 + b"]" * 500 + b"]}",
            "application/json",
            200,
            b"",
        ),
        (b"nope", "application/json", 400, b"body is not valid JSON"),
        (b"[]", "application/json", 400, b"not a Graph API webhook notification"),
        (b'{"object": "page", "entry": {}}', "application/json", 400, b"not a Graph API"),
        (b"{}", "text/plain", 415, b"unsupported Content-Type 'text/plain'"),
        (b"[" * 100 + b"]" * 100, "application/json", 400, b"nested deeper than 32"),
    ],
)
async def test_bad_bodies_get_a_clear_4xx(raw, content_type, status, message):
    c, delivery = container()
    result = await c.handle(notification(raw=raw, content_type=content_type))
    assert result.response.status == status
    assert message in result.response.body
    assert delivery.submitted == []


async def test_other_methods_get_405():
    c, _ = container()
    request = HitRequest(method="PUT", path="/webhooks/meta-ads")
    result = await c.handle(request)
    assert (result.response.status, result.response.headers["allow"]) == (405, "POST")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("{app_secret: 0123456789ab}", "verify_token: required"),
        ("{verify_token: 0123456789ab}", "app_secret: required"),
        ("{verify_token: short, app_secret: 0123456789ab}", "shorter than 8 characters"),
        ("{verify_token: 0123456789ab, app_secret: 0123456789ab, path: x}", "is not a path"),
    ],
)
def test_settings_errors_are_reported_at_load(settings, message):
    text = f"version: 1\nclients:\n  - {{name: m, type: meta_leadgen, settings: {settings}}}\n"
    with pytest.raises(ConfigErrors) as caught:
        load_text(text, "m.yaml", registry())
    assert message in str(caught.value)


def test_on_a_real_server_meta_verifies_then_delivers_a_lead(tmp_path):
    with FakeVendor() as vendor:
        config = tmp_path / "site.yaml"
        config.write_text(
            CONTAINER.replace("https://hooks.example.test/lead", f"{vendor.url}/lead")
        )
        env = {**FAST_DELIVERY, **ENV, "SGTM_DATA_DIR": str(tmp_path / "var")}
        with SgtmServer(config, env) as server:
            url = f"{server.url}/webhooks/meta-ads"
            query = {
                "hub.mode": "subscribe",
                "hub.challenge": "31337",
                "hub.verify_token": VERIFY_TOKEN,
            }
            verified = httpx.get(url, params=query)
            assert (verified.status_code, verified.text) == (200, "31337")
            raw = json.dumps(SAMPLE).encode()
            headers = {"content-type": "application/json", "x-hub-signature-256": signed(raw)}
            answer = httpx.post(url, content=raw, headers=headers)
            assert (answer.status_code, answer.content) == (200, b"")
            received = vendor.wait_for(2)
            logs = server.logs()
    leads = sorted(msgspec.json.decode(r.body)["lead_id"] for r in received)
    assert leads == ["123123123123", "123123123124"]
    assert APP_SECRET not in logs and VERIFY_TOKEN not in logs


def test_a_usual_notification_is_read_in_one_typed_pass():
    """The fast path (msgspec Structs, other changes' values left as raw bytes) must accept what
    Meta sends; only odd shapes take the tolerant path."""
    from sgtm_plugins.meta_leadgen import _NOTIFICATION, leadgen_values

    raw = msgspec.json.encode(SAMPLE)
    typed = _NOTIFICATION.decode(raw)
    assert typed.object == "page"
    assert [c.field for e in typed.entry for c in e.changes] == [
        c["field"] for e in SAMPLE["entry"] for c in e["changes"]
    ]
    assert leadgen_values(raw) == [
        c["value"] for e in SAMPLE["entry"] for c in e["changes"] if c["field"] == "leadgen"
    ]
