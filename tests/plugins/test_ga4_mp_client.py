"""The `ga4_mp` client: Measurement Protocol requests from backends become the event data the `ga4`
client produces, the `ga4_mp` tag sends them on unchanged, `/debug/mp/collect` answers in Google's
validation-server shape from the rules the tag enforces; then once on `sgtm serve` to a fake GA4
that checks Google's documented schema."""

from __future__ import annotations

import hashlib
import json
import re
import sys
import textwrap
import time
import types
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlencode, urlsplit

import httpx
import msgspec
import pytest
from sgtm_plugins.ga4_mp import Ga4MpTag
from sgtm_plugins.ga4_mp.collect import event_data
from sgtm_plugins.ga4_mp.settings import Ga4MpSettings

from sgtm.config import load_text
from sgtm.container import Container
from sgtm.dedupe import MemoryDedupe
from sgtm.delivery import RecorderDelivery
from sgtm.plugin import BuildContext, ContainerInfo, InvalidEvent
from sgtm.request import HitRequest
from sgtm.yamlsource import ConfigErrors
from tests.installed import registry
from tests.plugins.test_ga4_mp_vendor import FAST_ENV, _events, check, reply
from tests.servers import FakeVendor, SgtmServer

NOW = 1_700_000_000.0
ROOT = Path(__file__).resolve().parents[2]
SECRETS = {"MP_SECRET_CRM": "crm-mp-secret-1", "MP_SECRET_APP": "app-mp-secret-2"}
STREAM = "G-TEST01ABCD"
CONTAINER = """\
version: 1
name: shop
clients:
  - name: mp
    type: ga4_mp
    trust_hit_ip: true  # backends with a secret name their users' IPs
    settings: {api_secrets: ["${MP_SECRET_CRM}", "${MP_SECRET_APP}"]}
triggers: {all_events: {all: []}}
tags:
  - name: ga4
    type: ga4_mp
    triggers: [all_events]
    settings: {measurement_id: G-TEST01ABCD, api_secret: "${GA4_API_SECRET}"}
"""
EMAIL_HASH = hashlib.sha256(b"ana@example.com").hexdigest()
MICROS = int(NOW * 1_000_000) - 60_000_000

# Every field of the Measurement Protocol reference.
BODY: dict[str, Any] = {
    "client_id": "123456789.1700000000",
    "user_id": "CRM-42",
    "timestamp_micros": MICROS,
    "user_properties": {"plan": {"value": "gold"}, "orders": {"value": 3}},
    "user_data": {"sha256_email_address": [EMAIL_HASH], "address": [{"city": "recife"}]},
    "consent": {"ad_user_data": "GRANTED", "ad_personalization": "DENIED"},
    "ip_override": "203.0.113.9",
    "user_location": {"city": "Recife", "region_id": "BR-PE", "country_id": "BR"},
    "device": {
        "category": "mobile",
        "language": "pt-br",
        "screen_resolution": "390x844",
        "operating_system": "iOS",
        "operating_system_version": "17.1",
        "model": "iPhone",
        "browser": "Safari",
        "browser_version": "17.1",
    },
    "events": [
        {
            "name": "purchase",
            "params": {
                "session_id": 1700000000,
                "session_number": 3,
                "engagement_time_msec": 1200,
                "transaction_id": "T-1",
                "currency": "BRL",
                "value": 99.9,
                "items": [{"item_id": "SKU-1", "item_name": "Plan", "price": 99.9, "quantity": 1}],
            },
        },
        {"name": "sign_up", "params": {"method": "crm"}, "timestamp_micros": MICROS + 1},
    ],
}


def container() -> tuple[Container, RecorderDelivery]:
    env = {**SECRETS, "GA4_API_SECRET": "outbound-secret"}
    spec = load_text(CONTAINER, "shop.yaml", registry(), environ=env)
    delivery = RecorderDelivery()
    return Container(spec, delivery, MemoryDedupe(), clock=lambda: NOW), delivery


def mp(
    body: Any = BODY,
    *,
    path: str = "/mp/collect",
    secret: str | None = "crm-mp-secret-1",
    raw: bytes | None = None,
    content_type: str = "application/json",
    query: dict[str, str] | None = None,
) -> HitRequest:
    params = {"measurement_id": STREAM} if query is None else dict(query)
    if secret is not None:
        params["api_secret"] = secret
    data = raw if raw is not None else json.dumps(body).encode()
    return HitRequest(
        method="POST",
        path=path,
        query_string=urlencode(params),
        headers={"content-type": content_type},
        body=data,
        client_ip="198.51.100.1",
    )


def messages(result: Any) -> list[dict[str, str]]:
    return msgspec.json.decode(result.response.body)["validationMessages"]


# -- /mp/collect -------------------------------------------------------------------------------


async def test_events_get_the_keys_the_ga4_client_produces():
    c, _ = container()
    result = await c.handle(mp(), trace=True)
    assert (result.response.status, result.response.body) == (204, b"")
    purchase, sign_up = (t.data for t in result.events)
    common = {
        "x-ga-protocol_version": "2",
        "x-ga-measurement_id": STREAM,
        "client_id": "123456789.1700000000",
        "user_id": "CRM-42",
        "x-ga-mp2-user_properties": {"plan": "gold", "orders": 3},
        "user_data": BODY["user_data"],
        "x-sst-system_properties": {
            "consent": {"consentGrantedState": {"ad_user_data": True, "ad_personalization": False}},
            "request_start_time_ms": int(NOW * 1000),
        },
        "ip_override": "203.0.113.9",
        "event_location": {"country": "BR", "region": "BR-PE", "city": "Recife"},
        "language": "pt-br",
        "screen_resolution": "390x844",
        "client_hints": {
            "mobile": True,
            "platform": "iOS",
            "platform_version": "17.1",
            "model": "iPhone",
            "full_version_list": [{"brand": "Safari", "version": "17.1"}],
        },
    }
    assert purchase == {
        "ga_session_id": "1700000000",
        "ga_session_number": 3,
        "engagement_time_msec": 1200,
        "transaction_id": "T-1",
        "currency": "BRL",
        "value": 99.9,
        "items": BODY["events"][0]["params"]["items"],
        "event_name": "purchase",
        "timestamp_micros": MICROS,
        **common,
    }
    assert sign_up == {
        "method": "crm",
        "event_name": "sign_up",
        "timestamp_micros": MICROS + 1,
        **common,
    }


async def test_the_ga4_mp_tag_sends_what_came_in():
    """MP in, MP out: the client's event data is what the tag needs to rebuild the request."""
    c, delivery = container()
    await c.handle(mp())
    tag = Ga4MpTag()
    sent = msgspec.json.decode(tag.merge([s.outbound for s in delivery.submitted]).body)
    events = sent.pop("events")
    assert sent == {
        "client_id": BODY["client_id"],
        "user_id": BODY["user_id"],
        "consent": BODY["consent"],
        "user_data": BODY["user_data"],
        "ip_override": BODY["ip_override"],
        "user_location": BODY["user_location"],
        "device": BODY["device"],
        "user_properties": {
            name: {"value": prop["value"], "timestamp_micros": MICROS + 1}
            for name, prop in BODY["user_properties"].items()
        },
    }
    original = BODY["events"][0]["params"]
    assert events[0]["name"] == "purchase" and events[0]["timestamp_micros"] == MICROS
    assert events[0]["params"] == {
        "session_id": "1700000000",
        "engagement_time_msec": 1200,
        **{k: v for k, v in original.items() if k not in ("session_id", "session_number")},
    }
    assert events[1]["params"] == {"engagement_time_msec": 1, "method": "crm"}


@pytest.mark.parametrize(
    "secret", [None, "", "crm-mp-secret-", "CRM-MP-SECRET-1", "outbound-secret"]
)
async def test_an_api_secret_not_in_the_list_is_403_and_no_event(secret):
    c, delivery = container()
    result = await c.handle(mp(secret=secret), trace=True)
    assert result.response.status == 403
    assert result.events == [] and delivery.submitted == []


async def test_without_the_secret_the_body_is_never_decoded():
    """A sender that does not know a secret cannot make sgtm parse its body: broken JSON is
    answered 403 (not 400), and /debug validates nothing but the secret."""
    c, delivery = container()
    broken = b'{"events": [' * 1000
    assert (await c.handle(mp(raw=broken, secret="guess"))).response.status == 403
    debug = await c.handle(mp(raw=broken, path="/debug/mp/collect", secret="guess"))
    assert [m.get("fieldPath") for m in messages(debug)] == ["api_secret"]
    assert delivery.submitted == []


async def test_every_listed_secret_is_accepted():
    c, delivery = container()
    for secret in SECRETS.values():
        assert (await c.handle(mp(secret=secret))).response.status == 204
    assert len(delivery.submitted) == 4


async def test_google_style_posts_without_a_json_content_type_are_accepted():
    c, _ = container()
    for content_type in ("text/plain;charset=UTF-8", ""):
        assert (await c.handle(mp(content_type=content_type))).response.status == 204


async def test_an_event_ga4_would_refuse_is_dropped_and_the_others_kept():
    c, _ = container()
    body = {
        "client_id": "1.2",
        "events": [
            {"name": "_badEventName"},
            {"name": "session_start"},
            {"params": {"a": 1}},
            "purchase",
            {"name": "page_view", "params": {"page_location": "https://shop.example/"}},
        ],
    }
    result = await c.handle(mp(body), trace=True)
    assert result.response.status == 204
    assert [t.data["event_name"] for t in result.events] == ["page_view"]


@pytest.mark.parametrize(
    ("body", "raw", "status", "needle"),
    [
        (None, b"{nope", 400, b"body is not valid JSON"),
        ([1, 2], None, 400, b"Unable to parse Measurement Protocol JSON payload."),
        ({"events": [{"name": "x"}]}, None, 400, b"Measurement requires a client_id."),
        ({"client_id": "1.2"}, None, 400, b"Measurement requires events."),
        ({"client_id": "1.2", "events": []}, None, 400, b"Measurement requires events."),
        ({"client_id": 12, "events": [{"name": "x"}]}, None, 400, b"client_id must be a string"),
        (
            {"client_id": "1.2", "events": [{"name": "x"}] * 26},
            None,
            400,
            b"Measurement has 26 events; at most 25",
        ),
        (None, b'{"pad": "' + b"x" * 140_000 + b'"}', 413, b"body over 130000 bytes"),
        (None, b"[" * 50 + b"]" * 50, 400, b"nested deeper than 32 levels"),
    ],
)
async def test_unusable_requests_are_400_with_validation_messages(body, raw, status, needle):
    c, delivery = container()
    result = await c.handle(mp(body, raw=raw), trace=True)
    assert result.response.status == status
    assert needle in result.response.body
    assert result.events == [] and delivery.submitted == []


async def test_other_bad_requests_get_a_clear_4xx():
    c, _ = container()
    get = HitRequest(method="GET", path="/mp/collect", query_string="measurement_id=G-X")
    assert (await c.handle(get)).response.status == 405
    assert (await c.handle(mp(content_type="application/xml"))).response.status == 415
    refused = await c.handle(mp(query={}))
    assert (refused.response.status, refused.response.body) == (
        400,
        b"measurement_id (or firebase_app_id) is required in the query\n",
    )


async def test_an_app_stream_reads_app_instance_id():
    c, _ = container()
    body = {"app_instance_id": "0123456789abcdef0123456789abcdef", "events": [{"name": "login"}]}
    request = mp(body)
    request.query_string = urlencode(
        {"firebase_app_id": "1:23:android:45", "api_secret": "crm-mp-secret-1"}
    )
    request.__dict__.pop("query", None)
    result = await c.handle(request, trace=True)
    (event,) = (t.data for t in result.events)
    assert event["client_id"] == body["app_instance_id"]
    assert event["x-ga-measurement_id"] == "1:23:android:45"


# -- /debug/mp/collect -------------------------------------------------------------------------


async def test_debug_answers_an_empty_list_for_a_valid_request_and_runs_no_tag():
    c, delivery = container()
    result = await c.handle(mp(path="/debug/mp/collect"), trace=True)
    assert result.response.status == 200
    assert result.response.headers["content-type"] == "application/json"
    assert messages(result) == []
    assert result.events == [] and delivery.submitted == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # Google's documented example, word for word.
        (
            {"client_id": "1.2", "events": [{"name": "_badEventName"}]},
            {
                "fieldPath": "events",
                "description": "Event at index: [0] has invalid name [_badEventName]. Names "
                "must start with an alphabetic character.",
                "validationCode": "NAME_INVALID",
            },
        ),
        (
            {"events": [{"name": "purchase"}]},
            {
                "fieldPath": "client_id",
                "description": "Measurement requires a client_id.",
                "validationCode": "VALUE_REQUIRED",
            },
        ),
        (
            {
                "client_id": "18",
                "validation_behavior": "ENFORCE_RECOMMENDATIONS",
                "events": [{"name": "purchase"}],
            },
            {
                "fieldPath": "client_id",
                "description": "client_id [18] has invalid format. It should be in "
                "<number>.<number> format.",
                "validationCode": "VALUE_INVALID",
            },
        ),
        (
            {"client_id": "1.2", "events": [{"name": "a", "params": {"obj": {"x": 1}}}]},
            {
                "fieldPath": "events[0].params.obj",
                "description": "Value is not a string or number.",
                "validationCode": "VALUE_INVALID",
            },
        ),
        (
            {"client_id": "1.2", "events": [{"names": "a"}]},
            {
                "description": "Unable to parse Measurement Protocol JSON payload. (events[0]) "
                "names: Cannot find field.",
                "validationCode": "VALUE_INVALID",
            },
        ),
        (
            {"client_id": "1.2", "events": [{"name": "screen_view"}]},
            {
                "fieldPath": "events",
                "description": "Event at index: [0] has name [screen_view] which is reserved.",
                "validationCode": "NAME_RESERVED",
            },
        ),
        (
            {
                "client_id": "1.2",
                "events": [{"name": "a", "timestamp_micros": MICROS - 3 * 86400 * 10**6}],
            },
            {
                "fieldPath": "events[0].timestamp_micros",
                "description": f"Measurement events[0].timestamp_micros has timestamp "
                f"[{MICROS - 3 * 86400 * 10**6}] that is more than 72 hours in the past.",
                "validationCode": "VALUE_INVALID",
            },
        ),
    ],
)
async def test_debug_messages_have_googles_shape_and_codes(body, expected):
    c, _ = container()
    result = await c.handle(mp(body, path="/debug/mp/collect"))
    assert result.response.status == 200
    assert expected in messages(result)


async def test_debug_says_when_the_secret_or_stream_is_wrong_and_when_json_is_broken():
    c, _ = container()
    wrong = await c.handle(mp(path="/debug/mp/collect", secret="guess"))
    assert messages(wrong) == [
        {
            "fieldPath": "api_secret",
            "description": "api_secret is not one of this container's api_secrets.",
            "validationCode": "VALUE_INVALID",
        }
    ]
    broken = await c.handle(mp(raw=b"{broken", path="/debug/mp/collect"))
    assert broken.response.status == 200
    (only,) = messages(broken)
    assert only["validationCode"] == "VALUE_INVALID" and "fieldPath" not in only
    assert only["description"].startswith("Unable to parse Measurement Protocol JSON payload.")


# Each request breaks one rule in rules.py: the debug endpoint names it, and the tag, given the
# event the client would make of it, refuses the event or changes it (with a warning) the same way;
# a param that is not text or a number the client itself drops (counted).
SAME_RULES = [
    ({"name": "a" * 41}, "NAME_INVALID", "invalid"),
    ({"name": "first_visit"}, "NAME_RESERVED", "invalid"),
    ({"name": "a", "params": {"bad-name": 1}}, "NAME_INVALID", "warn"),
    ({"name": "a", "params": {"ga_x": 1}}, "NAME_RESERVED", "warn"),
    ({"name": "a", "params": {"p": "x" * 101}}, "VALUE_OUT_OF_BOUNDS", "warn"),
    ({"name": "a", "params": {f"p{i}": i for i in range(26)}}, "EXCEEDED_MAX_ENTITIES", "warn"),
    ({"name": "a", "params": {"items": [{"price": 1}]}}, "VALUE_REQUIRED", "warn"),
    ({"name": "a", "params": {"items": [{"item_id": "x", **{f"c{i}": i for i in range(11)}}]}},
     "EXCEEDED_MAX_ENTITIES", "warn"),
    ({"name": "a", "params": {"l": [1]}}, "VALUE_INVALID", "client drops"),
]  # fmt: skip


@pytest.mark.parametrize(("entry", "code", "tag_does"), SAME_RULES)
async def test_debug_and_the_tag_apply_the_same_rules(entry, code, tag_does):
    c, _ = container()
    body = {"client_id": "1.2", "events": [entry]}
    codes = {
        m["validationCode"] for m in messages(await c.handle(mp(body, path="/debug/mp/collect")))
    }
    assert code in codes
    event = event_data(body, entry, STREAM, False, NOW)
    settings = msgspec.convert({"measurement_id": STREAM, "api_secret": "s"}, Ga4MpSettings)
    ctx = BuildContext(tag_name="ga4", container=ContainerInfo(name="shop"), now=NOW)
    if tag_does == "client drops":
        assert set(entry["params"]).isdisjoint(event)
    elif tag_does == "invalid":
        with pytest.raises(InvalidEvent):
            Ga4MpTag().build(event, settings, ctx)
    else:
        Ga4MpTag().build(event, settings, ctx)
        assert ctx.warnings, "the tag changed nothing the validator flagged"


def test_settings_errors_are_reported_at_load():
    for settings, message in [
        ("{}", "api_secrets: required"),
        ("{api_secrets: []}", "api_secrets: at least one"),
        ('{api_secrets: [" "]}', "api_secrets: at least one"),
        ("{api_secrets: [s], path: /x, debug_path: /x}", "debug_path: must differ"),
    ]:
        text = f"version: 1\nclients:\n  - {{name: mp, type: ga4_mp, settings: {settings}}}\n"
        with pytest.raises(ConfigErrors) as caught:
            load_text(text, "mp.yaml", registry())
        assert message in str(caught.value)


# -- sgtm serve --------------------------------------------------------------------------------


def test_on_a_real_server_a_backend_event_reaches_ga4_as_google_documents(tmp_path):
    with FakeVendor(default_status=204, check=check, reply=reply) as ga4:
        config = tmp_path / "site.yaml"
        config.write_text(
            textwrap.dedent(CONTAINER).replace(
                'api_secret: "${GA4_API_SECRET}"}',
                f'api_secret: "${{GA4_API_SECRET}}", endpoint: "{ga4.url}"}}',
            )
        )
        env = {
            **FAST_ENV,
            **SECRETS,
            "GA4_API_SECRET": "outbound-secret",
            "SGTM_DATA_DIR": str(tmp_path / "var"),
        }
        with SgtmServer(config, env) as server:
            body = {**BODY, "timestamp_micros": int(time.time() * 1e6) - 5_000_000}
            for event in body["events"]:
                event.pop("timestamp_micros", None)
            query = {"measurement_id": STREAM, "api_secret": SECRETS["MP_SECRET_CRM"]}
            answer = httpx.post(f"{server.url}/mp/collect", params=query, json=body)
            assert (answer.status_code, answer.content) == (204, b"")
            refused = httpx.post(
                f"{server.url}/mp/collect", params={**query, "api_secret": "x"}, json=body
            )
            assert refused.status_code == 403
            debug = httpx.post(f"{server.url}/debug/mp/collect", params=query, json=body)
            assert debug.json() == {"validationMessages": []}
            events = _events(ga4, 2)
            logs = server.logs()
    assert ga4.errors == []
    assert sorted(e["name"] for e in events) == ["purchase", "sign_up"]
    for event in events:
        request = event["request"]
        assert (
            request["client_id"] == BODY["client_id"] and request["user_data"] == BODY["user_data"]
        )
    assert "crm-mp-secret-1" not in logs and "outbound-secret" not in logs


async def test_params_cannot_take_the_place_of_request_level_keys():
    c, _ = container()
    params = {
        "client_id": "999.999",
        "user_data": {"sha256_email_address": ["0" * 64]},
        "consent_state": {"ad_storage": True},
        "ip_override": "192.0.2.1",
        "obj": {"a": 1},
        "lst": [1],
        "items": "not a list",
        "plan": "gold",
    }
    body = {"client_id": "1.2", "events": [{"name": "sign_up", "params": params}]}
    result = await c.handle(mp(body), trace=True)
    (event,) = (t.data for t in result.events)
    assert event["client_id"] == "1.2" and event["plan"] == "gold"
    for key in ("user_data", "consent_state", "ip_override", "obj", "lst", "items"):
        assert key not in event


async def test_the_docs_backend_example_is_accepted():
    """docs/clients/ga4_mp.md's backend call, run as written against a stand-in for `requests`,
    is a request the page's container turns into a purchase."""
    page = (ROOT / "docs" / "clients" / "ga4_mp.md").read_text()
    (snippet,) = re.findall(r"```python\n(.*?)```", page, re.S)
    sent: list[dict[str, Any]] = []
    stand_in = types.ModuleType("requests")
    stand_in.post = lambda url, params, json: sent.append(  # type: ignore[attr-defined]
        {"url": url, "params": params, "json": json}
    )
    scope = {"MP_SECRET_CRM": "crm-mp-secret-1"}
    with mock.patch.dict(sys.modules, {"requests": stand_in}):
        exec(compile(snippet, "ga4_mp.md", "exec"), scope)
    (call,) = sent
    assert urlsplit(call["url"]).path == "/mp/collect"
    c, _ = container()
    result = await c.handle(mp(call["json"], query={"measurement_id": STREAM}), trace=True)
    assert result.response.status == 204
    assert result.events[0].data["event_name"] == "purchase"
