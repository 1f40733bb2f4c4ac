"""The `webhook` client: signatures, API keys, event data from the JSON, resends, per-sender rates
and every kind of bad input, through the real container pipeline; then once on `sgtm serve`."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import textwrap
from pathlib import Path
from typing import Any

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

SECRET = "whsec-0123456789abcdef"
KEY_OLD = "key-old-0123456789abcdef"
KEY_NEW = "key-new-0123456789abcdef"
ENV = {"CRM_SECRET": SECRET, "CRM_KEY_OLD": KEY_OLD, "CRM_KEY_NEW": KEY_NEW}
NOW = 1_700_000_000.0
ROOT = Path(__file__).resolve().parents[2]

CONTAINER = """\
version: 1
name: shop
clients:
  - name: crm
    type: webhook
    settings:
      path: /webhooks/crm
      signature:
        {{secret: "${{CRM_SECRET}}", header: X-Webhook-Signature{extra_signature}}}
      {auth}
      event_name: {event_name}
      map:
        user_data.email_address: lead.email
        user_data.phone_number: lead.phone
        user_data.address.first_name: lead.first_name
        value: deal.amount
        lead_source: lead.source
        first_item: items.0.sku
      id_field: lead.id
      rate_limit: {rate}
      max_body_bytes: 4096
      max_events: 3
triggers: {{all_events: {{all: []}}}}
tags:
  - name: hook
    type: http_request
    triggers: [all_events]
    settings:
      url: https://hooks.example.test/lead
      body: {{name: "{{{{event.user_data.address.first_name}}}}", event: "{{{{event_name}}}}"}}
"""


def container(
    *,
    auth: str = "",
    event_name: str = "generate_lead",
    rate: str = "100/minute",
    extra_signature: str = "",
) -> tuple[Container, RecorderDelivery]:
    text = CONTAINER.format(
        auth=auth, event_name=event_name, rate=rate, extra_signature=extra_signature
    )
    spec = load_text(text, "shop.yaml", registry(), environ=ENV)
    delivery = RecorderDelivery()
    return Container(spec, delivery, MemoryDedupe(), clock=lambda: NOW), delivery


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(
    body: Any,
    *,
    signature: str | None = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
    method: str = "POST",
    ip: str = "198.51.100.7",
) -> HitRequest:
    data = raw if raw is not None else json.dumps(body).encode()
    all_headers = {"content-type": "application/json"}
    all_headers["x-webhook-signature"] = signature if signature is not None else sign(data)
    all_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    return HitRequest(
        method=method, path="/webhooks/crm", headers=all_headers, body=data, client_ip=ip
    )


LEAD = {
    "lead": {
        "id": 4711,
        "email": "Ana@Example.com",
        "phone": "+55 11 91234-5678",
        "first_name": "Ana",
        "source": "site",
    },
    "deal": {"amount": 1500.5},
    "items": [{"sku": "PLAN-PRO"}],
}


async def handle(c: Container, request: HitRequest) -> tuple[int, dict[str, Any], Any]:
    result = await c.handle(request, trace=True)
    body = result.response.body
    decoded = msgspec.json.decode(body) if body[:1] == b"{" else body.decode()
    return result.response.status, result.response.headers, (decoded, result)


# -- accepted requests -------------------------------------------------------------------------


async def test_a_signed_lead_becomes_event_data_and_is_answered_202():
    c, delivery = container()
    status, headers, (body, result) = await handle(c, post(LEAD))
    assert (status, body) == (202, {"status": "accepted"})
    assert headers["content-type"] == "application/json"
    (trace,) = result.events
    assert trace.data == {
        "user_data": {
            "email_address": "Ana@Example.com",
            "phone_number": "+55 11 91234-5678",
            "address": {"first_name": "Ana"},
        },
        "value": 1500.5,
        "lead_source": "site",
        "first_item": "PLAN-PRO",
        "event_name": "generate_lead",
        "event_id": "4711",
    }
    (submission,) = delivery.submitted
    assert json.loads(submission.outbound.body) == {"name": "Ana", "event": "generate_lead"}


async def test_an_absent_map_path_leaves_its_key_out():
    c, _ = container()
    lead = {"lead": {"id": "a-1", "email": "bia@example.com"}}
    _, _, (_, result) = await handle(c, post(lead))
    assert result.events[0].data == {
        "user_data": {"email_address": "bia@example.com"},
        "event_name": "generate_lead",
        "event_id": "a-1",
    }


async def test_an_array_gives_one_event_per_element():
    c, delivery = container()
    leads = [{"lead": {"id": i, "first_name": f"n{i}"}} for i in range(3)]
    status, _, (_, result) = await handle(c, post(leads))
    assert status == 202
    assert [t.data["event_id"] for t in result.events] == ["0", "1", "2"]
    assert [json.loads(s.outbound.body)["name"] for s in delivery.submitted] == ["n0", "n1", "n2"]


async def test_without_a_map_the_object_is_the_event_data():
    text = textwrap.dedent("""\
        version: 1
        clients:
          - name: forms
            type: webhook
            settings: {path: /webhooks/crm, api_keys: ["${CRM_KEY_NEW}"], event_name: form}
        """)
    c = Container(
        load_text(text, "f.yaml", registry(), environ=ENV), RecorderDelivery(), MemoryDedupe()
    )
    request = post({"a": 1, "b": {"c": [1, 2]}}, headers={"X-API-Key": KEY_NEW})
    _, _, (_, result) = await handle(c, request)
    assert result.events[0].data == {"a": 1, "b": {"c": [1, 2]}, "event_name": "form"}


async def test_the_event_name_can_come_from_the_json():
    c, _ = container(event_name="null\n      event_name_field: type")
    status, _, (_, result) = await handle(c, post({"type": "deal_won", "lead": {"id": 1}}))
    assert status == 202 and result.events[0].data["event_name"] == "deal_won"
    status, _, (body, _) = await handle(c, post({"lead": {"id": 2}}))
    assert status == 422
    assert body["error"] == "no event name at 'type' (a string of 1 to 100 characters)"
    status, _, (body, _) = await handle(c, post([{"type": "a"}, {"type": ["x"]}]))
    assert status == 422 and body["error"].startswith("element 1: no event name")


# -- signatures and keys -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signature", "error"),
    [
        ("", "invalid signature"),
        ("sha256=" + "0" * 64, "invalid signature"),
        (sign(b"{}"), "invalid signature"),  # a signature of another body
        (sign(json.dumps(LEAD).encode(), "another-secret-value"), "invalid signature"),
        (sign(json.dumps(LEAD).encode())[7:], "invalid signature"),  # without the prefix
        ("sha256=ä" + "0" * 63, "invalid signature"),  # not even ASCII
    ],
)
async def test_a_wrong_signature_is_401_and_nothing_is_kept(signature, error):
    c, delivery = container()
    status, _, (body, result) = await handle(c, post(LEAD, signature=signature))
    assert (status, body) == (401, {"status": "rejected", "error": error})
    assert result.events == [] and delivery.submitted == []


async def test_a_missing_signature_is_401():
    c, delivery = container()
    request = post(LEAD)
    del request.headers["x-webhook-signature"]
    status, _, (body, _) = await handle(c, request)
    assert (status, body["error"]) == (401, "missing signature (X-Webhook-Signature)")
    assert delivery.submitted == []


async def test_the_signature_is_over_the_raw_bytes_as_sent():
    """Meta-style senders sign an escaped form: re-encoding the parsed JSON would not match."""
    c, _ = container()
    raw = b'{"lead": {"id": 1, "first_name": "J\\u00f6rg"}}'
    status, _, (_, result) = await handle(c, post(None, raw=raw, signature=sign(raw)))
    assert status == 202 and result.events[0].data["user_data"]["address"]["first_name"] == "Jörg"
    reencoded = json.dumps(json.loads(raw), ensure_ascii=False).encode()
    status, _, _ = await handle(c, post(None, raw=raw, signature=sign(reencoded)))
    assert status == 401


async def test_a_timestamped_signature_refuses_replays():
    extra = ', timestamp_header: X-Webhook-Timestamp, signed_payload: "{timestamp}.{body}"'
    c, delivery = container(extra_signature=extra)
    body = json.dumps(LEAD).encode()

    def request(sent: str, signed_with: str | None = None) -> HitRequest:
        signature = sign(f"{signed_with or sent}.".encode() + body)
        return post(None, raw=body, signature=signature, headers={"X-Webhook-Timestamp": sent})

    assert (await handle(c, request(str(int(NOW) - 60))))[0] == 202
    assert (await handle(c, request(str(int(NOW * 1000) + 5000))))[0] == 202  # milliseconds
    status, _, (body_old, _) = await handle(c, request(str(int(NOW) - 301)))
    assert (status, body_old["error"]) == (
        401,
        "timestamp outside the tolerance: the request is too old",
    )
    # A captured request sent again with a fresh timestamp: the signature no longer matches.
    status, _, (replayed, _) = await handle(
        c, request(str(int(NOW)), signed_with=str(int(NOW) - 900))
    )
    assert (status, replayed["error"]) == (401, "invalid signature")
    for bad in ("", "soon", "-5", "1e9", "٣٣٣"):
        status, _, (refused, _) = await handle(c, request(bad))
        assert (status, refused["error"]) == (
            401,
            "missing or malformed timestamp (X-Webhook-Timestamp)",
        )
    assert len(delivery.submitted) == 1  # the two accepted requests carry the same lead id


async def test_either_api_key_works_while_one_is_rotated_out():
    c, delivery = container(auth='api_keys: ["${CRM_KEY_OLD}", "${CRM_KEY_NEW}"]')
    for i, key in enumerate((KEY_OLD, KEY_NEW)):
        lead = {"lead": {"id": i}}
        assert (await handle(c, post(lead, headers={"X-API-Key": key})))[0] == 202
    status, _, (body, _) = await handle(c, post(LEAD, headers={"X-API-Key": KEY_NEW + "x"}))
    assert (status, body["error"]) == (401, "invalid API key")
    status, _, (body, _) = await handle(c, post(LEAD))
    assert (status, body["error"]) == (401, "missing API key (X-API-Key)")
    # With both configured, a valid key does not excuse a bad signature.
    status, _, _ = await handle(
        c, post(LEAD, signature="sha256=00", headers={"X-API-Key": KEY_OLD})
    )
    assert status == 401
    assert len(delivery.submitted) == 2


# -- resends and rates -------------------------------------------------------------------------


async def test_a_resent_id_is_acknowledged_and_not_processed_twice():
    c, delivery = container()
    for _ in range(3):
        status, _, (body, _) = await handle(c, post(LEAD))
        assert (status, body) == (202, {"status": "accepted"})
    assert len(delivery.submitted) == 1
    other = {**LEAD, "lead": {**LEAD["lead"], "id": 4712}}
    await handle(c, post(other))
    assert len(delivery.submitted) == 2


async def test_a_sender_over_its_rate_gets_429_with_retry_after():
    c, _ = container(auth='api_keys: ["${CRM_KEY_OLD}", "${CRM_KEY_NEW}"]', rate="2/minute")
    old = {"X-API-Key": KEY_OLD}
    assert [(await handle(c, post(LEAD, headers=old)))[0] for _ in range(2)] == [202, 202]
    status, headers, _ = await handle(c, post(LEAD, headers=old))
    assert (status, headers["retry-after"]) == (429, "30")
    # Keyed by API key: another key (even from the same peer) has its own bucket.
    assert (await handle(c, post(LEAD, headers={"X-API-Key": KEY_NEW})))[0] == 202


async def test_without_a_key_the_rate_is_per_peer_and_wrong_keys_spend_the_peers():
    c, _ = container(rate="2/minute")
    assert (await handle(c, post(LEAD, ip="203.0.113.1")))[0] == 202
    assert (await handle(c, post(LEAD, ip="203.0.113.1", signature="sha256=00")))[0] == 401
    assert (await handle(c, post(LEAD, ip="203.0.113.1")))[0] == 429
    assert (await handle(c, post(LEAD, ip="203.0.113.2")))[0] == 202


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "error"),
    [
        (b"not json", "application/json", 400, "body is not valid JSON: "),
        (b"\xff\xfe{}", "application/json", 400, "body is not UTF-8 (byte 0)"),
        (b"", "application/json", 400, "empty body: send JSON"),
        (b"42", "application/json", 400, "body must be a JSON object or an array of objects"),
        (b'"lead"', "application/json", 400, "body must be a JSON object or an array"),
        (b'{"a": 1}', "text/plain", 415, "unsupported Content-Type 'text/plain'"),
        (b'{"a": 1}', "", 415, "unsupported Content-Type 'none'"),
        (b"[" * 40 + b"]" * 40, "application/json", 400, "body is not valid JSON: nested deeper"),
        (b"[" * 2000 + b"]" * 2000, "application/json", 400, "body is not valid JSON: nested"),
        (b"[1, 2]", "application/json", 422, "element 0: not a JSON object"),
        (b"[{}, {}, {}, {}]", "application/json", 413, "4 events in one request; send at most 3"),
        (b'{"lead": {"id": {"x": 1}}}', "application/json", 422, "lead.id is not an id"),
        (b'{"lead": {"id": "' + b"9" * 300 + b'"}}', "application/json", 422, "lead.id is not"),
        (b'{"pad": "' + b"x" * 5000 + b'"}', "application/json", 413, "body over 4096 bytes"),
    ],
)
async def test_bad_input_gets_a_clear_4xx_and_nothing_is_kept(raw, content_type, status, error):
    c, delivery = container()
    request = post(None, raw=raw, headers={"content-type": content_type})
    got, _, (body, result) = await handle(c, request)
    assert got == status
    assert body["status"] == "rejected" and body["error"].startswith(error)
    assert result.events == [] and delivery.submitted == []


async def test_other_methods_get_405_with_allow():
    c, _ = container()
    status, headers, (body, _) = await handle(c, post(LEAD, method="GET"))
    assert (status, headers["allow"], body["error"]) == (405, "POST", "use POST")


async def test_an_unsigned_oversized_body_is_refused_for_its_size_before_anything_else():
    c, _ = container()
    request = post(None, raw=b"x" * 5000, signature="sha256=00")
    assert (await handle(c, request))[0] == 413


async def test_hostile_values_travel_as_plain_text():
    """Template and placeholder syntax in a sender's values is data: it is never rendered."""
    c, delivery = container()
    hostile = [
        "{{event.lead_source}}",
        "{{credential}}",
        "${CRM_SECRET}",
        "{{shop_currency}}",
        '"},"injected":{"',
        "<script>alert(1)</script>",
        "\u0000\u202e\ud7ff",
    ]
    for i, name in enumerate(hostile):
        await handle(c, post({"lead": {"id": i, "first_name": name, "source": "x"}}))
    sent = [json.loads(s.outbound.body)["name"] for s in delivery.submitted]
    assert sent == hostile
    assert all(SECRET not in s.outbound.body.decode() for s in delivery.submitted)


async def test_wrongly_typed_values_are_kept_as_the_json_had_them():
    c, _ = container()
    lead = {"lead": {"id": 5, "email": ["a@x.com"], "phone": 5511912345678, "source": True}}
    _, _, (_, result) = await handle(c, post(lead))
    data = result.events[0].data
    assert data["user_data"] == {"email_address": ["a@x.com"], "phone_number": 5511912345678}
    assert data["lead_source"] is True


# -- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("{path: /w, event_name: x}", "a webhook needs `signature` or `api_keys`"),
        ("{path: /w, api_keys: [short], event_name: x}", "api_keys: a key is shorter than 16"),
        ('{path: /w, signature: {secret: "tiny"}, event_name: x}', "secret: shorter than 16"),
        ("{path: w, api_keys: [$K], event_name: x}", "'w' is not a path"),
        ("{path: /w, api_keys: [$K]}", "give event_name or event_name_field"),
        ("{path: /w, api_keys: [$K], event_name: x, event_name_field: y}", "give event_name or"),
        ("{path: /w, api_keys: [$K], event_name: x, map: {event_id: a}}", "set by the client"),
        ("{path: /w, api_keys: [$K], event_name: x, map: {a..b: c}}", "not an event data path"),
        ("{path: /w, api_keys: [$K], event_name: x, rate_limit: fast}", "expected a rate like"),
        ("{path: /w, api_keys: [$K], event_name: x, max_events: 10000}", "max_events: 1 to 500"),
        (
            "{path: /w, event_name: x,"
            ' signature: {secret: $K, signed_payload: "{timestamp}.{body}"}}',
            "goes with {timestamp}",
        ),
        (
            '{path: /w, event_name: x, signature: {secret: $K, signed_payload: "{body}{body}"}}',
            "must hold {body} once",
        ),
        (
            "{path: /w, event_name: x, signature: {secret: $K, algorithm: md5}}",
            "Invalid enum value 'md5'",
        ),
    ],
)
def test_settings_errors_are_reported_at_load(settings, message):
    text = f"version: 1\nclients:\n  - {{name: w, type: webhook, settings: {settings}}}\n"
    text = text.replace("$K", "0123456789abcdefXYZ")
    with pytest.raises(ConfigErrors) as caught:
        load_text(text, "w.yaml", registry())
    assert message in str(caught.value)
    assert str(caught.value).startswith("w.yaml:3:")


# -- sgtm serve --------------------------------------------------------------------------------


def test_on_a_real_server_a_signed_lead_reaches_the_vendor_once(tmp_path):
    with FakeVendor() as vendor:
        config = tmp_path / "site.yaml"
        config.write_text(
            textwrap.dedent(f"""\
                version: 1
                clients:
                  - name: crm
                    type: webhook
                    settings:
                      path: /webhooks/crm
                      signature: {{secret: "${{CRM_SECRET}}"}}
                      event_name: generate_lead
                      map: {{user_data.email_address: email}}
                      id_field: id
                      rate_limit: 3/minute
                triggers: {{leads: {{event_name: generate_lead}}}}
                tags:
                  - name: hook
                    type: http_request
                    triggers: [leads]
                    settings: {{url: "{vendor.url}/lead"}}
                """)
        )
        env = {**FAST_DELIVERY, **ENV, "SGTM_DATA_DIR": str(tmp_path / "var")}
        env["SGTM_ADMIN_TOKEN"] = "admin-token-for-tests"
        with SgtmServer(config, env) as server:
            body = json.dumps({"id": "L-1", "email": "ana@example.com"}).encode()
            url = f"{server.url}/webhooks/crm"
            headers = {"content-type": "application/json", "x-webhook-signature": sign(body)}
            answers = [httpx.post(url, content=body, headers=headers) for _ in range(2)]
            assert [(a.status_code, a.json()) for a in answers] == [
                (202, {"status": "accepted"})
            ] * 2
            forged = httpx.post(url, content=body, headers={**headers, "x-webhook-signature": "x"})
            assert (forged.status_code, forged.json()["error"]) == (401, "invalid signature")
            limited = httpx.post(url, content=body, headers=headers)
            # 3/minute: a token every 20 s, less the (wall-clock) time the requests took.
            assert limited.status_code == 429 and 0 < int(limited.headers["retry-after"]) <= 20
            vendor.wait_for(1)
            metrics = httpx.get(
                f"{server.url}/metrics", headers={"authorization": "Bearer admin-token-for-tests"}
            ).text
            logs = server.logs()
    # The resend was acknowledged but never became an event: one event, one delivery.
    assert 'sgtm_events_total{client="crm",container="site"} 1' in metrics
    assert 'sgtm_dropped_total{container="site",reason="crm.duplicate"} 1' in metrics
    (received,) = vendor.received
    data = json.loads(received.body)
    assert data["event_id"] == "L-1" and data["user_data"] == {"email_address": "ana@example.com"}
    assert SECRET not in logs


# -- the docs page -----------------------------------------------------------------------------


async def test_the_docs_example_gives_the_documented_event_data():
    """docs/clients/webhook.md: its container, fed its request signed as it says, gives its
    event data."""
    page = (ROOT / "docs" / "clients" / "webhook.md").read_text()
    blocks = re.findall(r"```(\w+)\n(.*?)```", page, re.S)
    (config,) = [text for lang, text in blocks if lang == "yaml"]
    request_json, expected = [json.loads(text) for lang, text in blocks if lang == "json"]
    env = {"CRM_WEBHOOK_SECRET": SECRET, "CRM_API_KEY": KEY_OLD, "CRM_API_KEY_NEXT": KEY_NEW}
    spec = load_text(config, "webhook.md", registry(), environ=env)
    c = Container(spec, RecorderDelivery(), MemoryDedupe(), clock=lambda: NOW)
    body = json.dumps(request_json).encode()
    timestamp = str(int(NOW))
    digest = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    headers = {
        "content-type": "application/json",
        "x-webhook-timestamp": timestamp,
        "x-webhook-signature": f"sha256={digest.hexdigest()}",
        "x-api-key": KEY_NEW,
    }
    request = HitRequest(method="POST", path="/webhooks/crm", headers=headers, body=body)
    result = await c.handle(request, trace=True)
    assert result.response.status == 202
    assert result.events[0].data == expected
    assert [t.fired for t in result.events[0].tags] == [True]


async def test_the_docs_python_sender_is_accepted(monkeypatch):
    """docs/clients/webhook.md's sender snippet, run as written, signs what the page's container
    accepts."""
    page = (ROOT / "docs" / "clients" / "webhook.md").read_text()
    (config,) = re.findall(r"```yaml\n(.*?)```", page, re.S)
    (snippet,) = re.findall(r"```python\n(.*?)```", page, re.S)
    monkeypatch.setattr("time.time", lambda: NOW)
    scope: dict[str, Any] = {"SECRET": SECRET, "API_KEY": KEY_OLD}
    exec(compile(snippet, "webhook.md", "exec"), scope)
    env = {"CRM_WEBHOOK_SECRET": SECRET, "CRM_API_KEY": KEY_OLD, "CRM_API_KEY_NEXT": KEY_NEW}
    spec = load_text(config, "webhook.md", registry(), environ=env)
    c = Container(spec, RecorderDelivery(), MemoryDedupe(), clock=lambda: NOW)
    headers = {k.lower(): v for k, v in scope["headers"].items()}
    request = HitRequest(method="POST", path="/webhooks/crm", headers=headers, body=scope["body"])
    result = await c.handle(request, trace=True)
    assert result.response.status == 202
    assert result.events[0].data["event_id"] == "4711"
