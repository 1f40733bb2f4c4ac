"""datalayer client: content types, arrays, the dataLayer mapping, Stape's Data Tag protocol
(GET dtdc and POST), consent, the `_dcid` cookie, sgtm.js (ETag, gzip, 304) and hostile input,
through the real pipeline (Container + RecorderDelivery). Over a real `sgtm serve`:
test_datalayer_http.py; in Chromium: tests/browser/."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from sgtm_plugins.datalayer import PIXEL, DataLayerClient, DataLayerSettings, script
from sgtm_plugins.datalayer.mapping import MAX_ITEMS

from sgtm.config import load_text
from sgtm.container import Container, HandleResult
from sgtm.dedupe import MemoryDedupe
from sgtm.delivery.recorder import RecorderDelivery
from sgtm.kit.inbound import MAX_DEPTH
from sgtm.request import HitRequest
from sgtm.yamlsource import ConfigErrors
from tests.installed import registry

NOW = 1_700_000_000.0
UA = "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0"
IP = "203.0.113.7"
HOST = "sgtm.shop.example"
PAGE = "https://www.shop.example/checkout/done?order=1001"
SOURCE = (Path(script.__file__).parent / "sgtm.js").read_bytes()

PURCHASE: dict[str, Any] = {
    "event": "purchase",
    "event_id": "4b1e6c1a-0d4f-4c55-9a53-7a0b5d3b2f10",
    "ecommerce": {
        "transaction_id": "T-1001",
        "value": 59.7,
        "currency": "BRL",
        "tax": 4.9,
        "shipping": 10,
        "coupon": "WELCOME",
        "items": [
            {"item_id": "SKU-1", "item_name": "Shirt", "price": 19.9, "quantity": 3},
        ],
    },
    "user_data": {"email_address": "ana@example.com", "address": {"city": "Recife"}},
    "page_location": PAGE,
    "page_referrer": "https://www.shop.example/cart",
    "page_title": "Thank you",
    "language": "pt-br",
    "screen_resolution": "1920x1080",
    "consent_state": {"ad_storage": True, "analytics_storage": True},
    "_dcid_temp": "f0e1d2c3-b4a5-4697-8877-665544332211",
    "plan": {"tier": "gold", "months": 12},
}


def container(settings: str = "{}", consent_default: str = "granted") -> Container:
    text = textwrap.dedent(
        f"""\
        version: 1
        origins: [https://www.shop.example]
        consent: {{default: {consent_default}}}
        clients:
          - name: web
            type: datalayer
            settings: {settings}
        triggers:
          everything: {{all: []}}
        tags:
          - name: hook
            type: http_request
            triggers: [everything]
            settings: {{url: "http://127.0.0.1:9/hook"}}
          - name: ads
            type: http_request
            triggers: [everything]
            consent: [ad_storage]
            settings: {{url: "http://127.0.0.1:9/ads"}}
        """
    )
    spec = load_text(text, "datalayer.yaml", registry())
    return Container(spec, RecorderDelivery(), MemoryDedupe(), clock=lambda: NOW)


async def send(
    target: Container,
    body: Any = None,
    *,
    method: str = "POST",
    path: str = "/data",
    query: str = "",
    content_type: str | None = "text/plain;charset=UTF-8",
    headers: dict[str, str] | None = None,
    trusted_sender: bool = False,
) -> HandleResult:
    raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    all_headers = {"user-agent": UA, "accept-language": "pt-BR,pt;q=0.9,en;q=0.8"}
    if content_type is not None:
        all_headers["content-type"] = content_type
    all_headers.update(headers or {})
    request = HitRequest(
        method=method,
        path=path,
        query_string=query,
        headers=all_headers,
        body=raw,
        client_ip=IP,
        host=HOST,
        trusted_sender=trusted_sender,
    )
    return await target.handle(request, trace=True)


def accepted(result: HandleResult) -> list[dict[str, Any]]:
    assert result.response.status == 200, result.response.body
    return [trace.data for trace in result.events]


def answer(result: HandleResult) -> dict[str, Any]:
    assert result.response.headers["content-type"] == "application/json"
    decoded: dict[str, Any] = json.loads(result.response.body)
    return decoded


def refused(result: HandleResult, status: int = 400) -> str:
    assert result.response.status == status, result.response.body
    assert result.events == []
    return result.response.body.decode()


def without_request_fields(event: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in event.items()
        if k not in ("user_agent", "ip_override", "x-sst-system_properties", "client_id")
    }


# --- settings and claim -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("{path: data}", "path: must be a path"),
        ("{path: /data, script_path: /data}", "script_path: must differ from path"),
        ("{script_path: 'sgtm.js'}", "script_path: must be a path"),
        ("{max_events: 0}", "max_events: must be between 1 and 500"),
        ("{max_events: 501}", "max_events: must be between 1 and 500"),
        ("{max_body_bytes: 1023}", "max_body_bytes: must be between 1024 and 1048576"),
        ("{max_body_bytes: 1048577}", "max_body_bytes: must be between 1024 and 1048576"),
        ("{events: []}", "events: list event names"),
        ("{events: ['  ']}", "events: list event names"),
        ("{client_id_cookie: 'a b'}", "client_id_cookie: not a valid cookie name"),
        ("{script_max_age: -1}", "script_max_age: must be between"),
        ("{cookies: {domain: com.br}}", "public suffix"),
        ("{pathh: /x}", "pathh"),
    ],
)
def test_settings_are_checked(settings: str, message: str) -> None:
    with pytest.raises(ConfigErrors) as info:
        container(settings)
    assert message in str(info.value)
    assert "clients[0].settings" in str(info.value)


@pytest.mark.parametrize(
    ("settings", "method", "path", "claimed"),
    [
        (DataLayerSettings(), "POST", "/data", True),
        (DataLayerSettings(), "GET", "/data", True),
        (DataLayerSettings(), "PUT", "/data", True),  # claimed, then answered 405
        (DataLayerSettings(), "OPTIONS", "/data", False),  # the core answers preflights
        (DataLayerSettings(), "GET", "/sgtm.js", True),
        (DataLayerSettings(), "HEAD", "/sgtm.js", True),
        (DataLayerSettings(), "POST", "/sgtm.js", False),
        (DataLayerSettings(), "POST", "/data/", False),
        (DataLayerSettings(), "POST", "/g/collect", False),
        (DataLayerSettings(path="/t/e", script_path="/t/s.js"), "GET", "/t/s.js", True),
        (DataLayerSettings(path="/t/e", script_path="/t/s.js"), "POST", "/data", False),
        (DataLayerSettings(script_path=None), "GET", "/sgtm.js", False),
    ],
)
def test_claim(settings: DataLayerSettings, method: str, path: str, claimed: bool) -> None:
    assert DataLayerClient().claim(HitRequest(method=method, path=path), settings) is claimed


# --- dataLayer events ---------------------------------------------------------------------------


async def test_purchase_maps_to_sgtm_event_data() -> None:
    result = await send(container(), PURCHASE)
    (event,) = accepted(result)
    assert event == {
        "event_name": "purchase",
        "event_id": "4b1e6c1a-0d4f-4c55-9a53-7a0b5d3b2f10",
        "user_data": {"email_address": "ana@example.com", "address": {"city": "Recife"}},
        "page_location": PAGE,
        "page_referrer": "https://www.shop.example/cart",
        "page_title": "Thank you",
        "language": "pt-br",
        "screen_resolution": "1920x1080",
        "consent_state": {"ad_storage": True, "analytics_storage": True},
        "plan": {"tier": "gold", "months": 12},
        "transaction_id": "T-1001",
        "value": 59.7,
        "currency": "BRL",
        "tax": 4.9,
        "shipping": 10,
        "coupon": "WELCOME",
        "items": [{"item_id": "SKU-1", "item_name": "Shirt", "price": 19.9, "quantity": 3}],
        "user_agent": UA,
        "ip_override": IP,
        "x-sst-system_properties": {"request_start_time_ms": int(NOW * 1000)},
        "client_id": "f0e1d2c3-b4a5-4697-8877-665544332211",
    }
    assert answer(result) == {"timestamp": int(NOW), "events": 1}
    assert result.response.headers["cache-control"] == "no-store"
    hook = json.loads(result.events[0].tags[0].requests[0].body)
    assert hook["event_name"] == "purchase" and hook["items"][0]["item_id"] == "SKU-1"


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain;charset=UTF-8",
        "text/plain",
        "application/json",
        "Application/JSON; charset=utf-8",
        None,
    ],
)
@pytest.mark.parametrize("as_array", [False, True])
async def test_content_types_and_arrays(content_type: str | None, as_array: bool) -> None:
    one = {"event": "sign_up", "method": "email"}
    result = await send(container(), [one] if as_array else one, content_type=content_type)
    (event,) = accepted(result)
    assert (event["event_name"], event["method"]) == ("sign_up", "email")


async def test_an_array_keeps_order_and_each_event_fires_its_tags() -> None:
    target = container()
    names = ["view_item", "add_to_cart", "begin_checkout"]
    result = await send(target, [{"event": n} for n in names])
    assert [e["event_name"] for e in accepted(result)] == names
    submitted = target.delivery.submitted  # type: ignore[attr-defined]
    assert [(s.tag, json.loads(s.outbound.body)["event_name"]) for s in submitted] == [
        (tag, name) for name in names for tag in ("hook", "ads")
    ]


@pytest.mark.parametrize(
    ("push", "expected"),
    [
        # ecommerce keys move up and win; top-level extras are kept
        (
            {"event": "e", "currency": "USD", "ecommerce": {"currency": "BRL"}},
            {"currency": "BRL"},
        ),
        ({"event": "e", "ecommerce": None}, {}),  # GTM's "clear the ecommerce object" push
        ({"event": "e", "ecommerce": {"items": []}}, {"items": []}),
        # numeric strings and numeric ids are normalized
        ({"event": "e", "value": "12.50"}, {"value": 12.5}),
        ({"event": "e", "value": "12"}, {"value": 12}),
        (
            {"event": "e", "transaction_id": 1001, "user_id": 42},
            {"transaction_id": "1001", "user_id": "42"},
        ),
        # `event_name` (the Data Tag's) wins over `event`; both are consumed
        ({"event": "a", "event_name": "b"}, {"event_name": "b"}),
        # GTM's internal keys never reach event data
        ({"event": "e", "gtm.uniqueEventId": 7, "gtm.start": 1}, {}),
        # consent: booleans and gtag's strings; other entries left out
        (
            {
                "event": "e",
                "consent_state": {
                    "ad_storage": "granted",
                    "analytics_storage": "denied",
                    "wait_for_update": 500,
                },
            },
            {"consent_state": {"ad_storage": True, "analytics_storage": False}},
        ),
        ({"event": "e", "ip_override": "2001:db8:0:0::1"}, {"ip_override": "2001:db8::1"}),
        ({"event": "e", "user_agent": "Custom/1.0"}, {"user_agent": "Custom/1.0"}),
        ({"event": "e", "language": "en-us"}, {"language": "en-us"}),
    ],
)
async def test_mapping_rules(push: dict[str, Any], expected: dict[str, Any]) -> None:
    # From a trusted sender, so an `ip_override` of the push is kept (tests/test_hit_ip.py).
    (event,) = accepted(await send(container(), push, trusted_sender=True))
    name = expected.get("event_name", push.get("event"))
    defaults = {"event_name": name, "user_agent": UA, "ip_override": IP, "language": "pt-br"}
    rest = {k: v for k, v in event.items() if k not in ("x-sst-system_properties", "client_id")}
    assert rest == {**defaults, **expected}


@pytest.mark.parametrize(
    ("push", "kept"),
    [
        ({"value": "abc"}, {}),
        ({"value": True}, {}),
        ({"currency": 986}, {}),
        ({"items": "SKU-1"}, {}),
        ({"ecommerce": "purchase"}, {}),
        ({"user_data": ["ana@example.com"]}, {}),
        ({"consent_state": "granted"}, {}),
        ({"transaction_id": {"id": 1}}, {}),
        ({"page_location": ["x"]}, {}),
        ({"ip_override": "not-an-ip"}, {"ip_override": IP}),
        ({"user_agent": 5}, {"user_agent": UA}),
    ],
)
async def test_a_wrongly_typed_field_is_dropped_and_counted(
    push: dict[str, Any], kept: dict[str, Any]
) -> None:
    result = await send(container(), {"event": "e", "keep": 1, **push})
    (event,) = accepted(result)
    for key in push:
        assert key not in event or event[key] == kept[key]
    assert event["keep"] == 1
    assert answer(result)["dropped"] == {"datalayer.invalid_field": 1}


async def test_items_keep_objects_up_to_the_limit() -> None:
    items = [{"item_id": f"S{i}"} for i in range(MAX_ITEMS + 5)]
    result = await send(container(), {"event": "view_item_list", "items": [*items, "x", 3]})
    (event,) = accepted(result)
    assert event["items"] == items[:MAX_ITEMS]
    assert answer(result)["dropped"] == {
        "datalayer.invalid_item": 1,
        "datalayer.too_many_items": 1,
    }


async def test_request_fields_fill_only_what_the_event_lacks() -> None:
    target = container()
    (event,) = accepted(await send(target, {"event": "e"}, headers={"accept-language": "*"}))
    assert "language" not in event
    (event,) = accepted(await send(target, {"event": "e"}, headers={"accept-language": ""}))
    assert "language" not in event and event["user_agent"] == UA


# --- allow-list ---------------------------------------------------------------------------------


async def test_events_allow_list() -> None:
    target = container("{events: [purchase, sign_up]}")
    result = await send(
        target, [{"event": "page_view"}, {"event": "purchase"}, {"event": "gtm.dom"}]
    )
    assert [e["event_name"] for e in accepted(result)] == ["purchase"]
    assert answer(result) == {
        "timestamp": int(NOW),
        "events": 1,
        "dropped": {"datalayer.event_not_allowed": 2},
    }
    # Filtered by the container's choice, not the sender's fault: still 200, no events.
    only = await send(target, {"event": "page_view"})
    assert accepted(only) == [] and answer(only)["events"] == 0
    assert only.response.cookies == []  # no event, no consent to read: no cookie either
    submitted = target.delivery.submitted  # type: ignore[attr-defined]
    assert [(s.tag, json.loads(s.outbound.body)["event_name"]) for s in submitted] == [
        ("hook", "purchase"),
        ("ads", "purchase"),
    ]


# --- consent ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("consent_state", "default", "ads_fired"),
    [
        ({"ad_storage": True}, "denied", True),
        ({"ad_storage": "granted"}, "denied", True),
        ({"ad_storage": False}, "granted", False),
        ({"ad_storage": "denied"}, "granted", False),
        ({"analytics_storage": False}, "granted", True),  # ad_storage unsaid: the default
        ({"analytics_storage": True}, "denied", False),
        (None, "granted", True),
        (None, "denied", False),
    ],
)
async def test_consent_state_decides_the_ad_storage_tag(
    consent_state: dict[str, Any] | None, default: str, ads_fired: bool
) -> None:
    push: dict[str, Any] = {"event": "purchase"}
    if consent_state is not None:
        push["consent_state"] = consent_state
    result = await send(container(consent_default=default), push)
    hook, ads = result.events[0].tags
    assert hook.fired is True
    assert ads.fired is ads_fired
    assert ads.reason == (None if ads_fired else "consent:ad_storage")


# --- the _dcid client id cookie ------------------------------------------------------------------


def cookie_header(result: HandleResult) -> list[str]:
    return [c.header_value() for c in result.response.cookies]


async def test_new_client_id_cookie() -> None:
    result = await send(container(), [{"event": "a"}, {"event": "b"}])
    first, second = accepted(result)
    client_id = first["client_id"]
    assert re.fullmatch(r"dcid\.1\.1700000000000\.[1-9]\d{8}", client_id)
    assert second["client_id"] == client_id
    assert cookie_header(result) == [
        f"_dcid={client_id}; Path=/; Max-Age=63072000; Domain=shop.example; Secure; HttpOnly;"
        " SameSite=Lax"
    ]


@pytest.mark.parametrize(
    ("cookie", "push", "expected"),
    [
        ("_dcid=dcid.1.1.123456789", {}, "dcid.1.1.123456789"),  # the browser's cookie
        ("_dcid=dcid.1.1.123456789", {"_dcid": "dcid.1.2.2"}, "dcid.1.1.123456789"),
        ("", {"_dcid": "dcid.1.2.2", "_dcid_temp": "t"}, "dcid.1.2.2"),  # Data Tag's carried id
        ("", {"data_client_id": "dc-9"}, "dc-9"),
        ("", {"_dcid_temp": "page-1"}, "page-1"),  # sgtm.js: one per page view
        ('_dcid="a b"', {"_dcid_temp": "page-1"}, "page-1"),  # an unusable cookie is ignored
    ],
)
async def test_client_id_sources(cookie: str, push: dict[str, Any], expected: str) -> None:
    result = await send(container(), {"event": "e", **push}, headers={"cookie": cookie})
    (event,) = accepted(result)
    assert event["client_id"] == expected
    assert not {"_dcid", "_dcid_temp", "data_client_id"} & event.keys()
    assert cookie_header(result)[0].startswith(f"_dcid={expected}; ")


async def test_the_event_client_id_wins_and_the_cookie_keeps_the_visitor_id() -> None:
    result = await send(
        container(), {"event": "e", "client_id": "123.456"}, headers={"cookie": "_dcid=v1"}
    )
    assert accepted(result)[0]["client_id"] == "123.456"
    assert cookie_header(result)[0].startswith("_dcid=v1; ")


async def test_analytics_storage_denied_sets_and_reads_no_cookie() -> None:
    target = container(consent_default="denied")
    result = await send(
        target, {"event": "e", "_dcid_temp": "page-1"}, headers={"cookie": "_dcid=visitor"}
    )
    assert accepted(result)[0]["client_id"] == "page-1"
    assert result.response.cookies == []
    result = await send(target, {"event": "e"}, headers={"cookie": "_dcid=visitor"})
    assert accepted(result)[0]["client_id"].startswith("dcid.1.")  # this request only
    assert result.response.cookies == []
    # one event of the request denying is enough
    mixed = [
        {"event": "a", "consent_state": {"analytics_storage": True}},
        {"event": "b", "consent_state": {"analytics_storage": False}},
    ]
    assert (await send(container(), mixed)).response.cookies == []


async def test_cookie_settings_and_no_cookie() -> None:
    custom = container("{client_id_cookie: sid, cookies: {domain: host, same_site: Strict}}")
    result = await send(custom, {"event": "e"})
    (header,) = cookie_header(result)
    assert header.startswith("sid=dcid.1.") and "Domain" not in header
    assert header.endswith("SameSite=Strict")
    none = container("{client_id_cookie: null}")
    result = await send(none, {"event": "e", "_dcid_temp": "page-1"})
    assert accepted(result)[0]["client_id"] == "page-1" and result.response.cookies == []
    result = await send(none, {"event": "e"})
    assert "client_id" not in accepted(result)[0]


async def test_meta_cookies_when_asked() -> None:
    page = "https://www.shop.example/p?fbclid=IwAR1abc"
    result = await send(container("{meta_cookies: true}"), {"event": "e", "page_location": page})
    (event,) = accepted(result)
    assert re.fullmatch(r"fb\.1\.1700000000000\.\d+", event["x-fb-ck-fbp"])
    assert event["x-fb-ck-fbc"] == "fb.1.1700000000000.IwAR1abc"
    names = sorted(c.name for c in result.response.cookies)
    assert names == ["_dcid", "_fbc", "_fbp"]


# --- Stape Data Tag protocol ----------------------------------------------------------------------


def dtdc(data: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(data).encode()).decode()


DATA_TAG = {
    "event_name": "add_to_cart",
    "page_location": "https://www.shop.example/p/1",
    "page_hostname": "www.shop.example",
    "page_referrer": "",
    "page_title": "Shirt",
    "page_encoding": "UTF-8",
    "consent_state": {"ad_storage": True, "analytics_storage": False},
    "common_cookie": {"_fbp": "fb.1.1700000000000.123"},
    "value": 19.9,
    "_dcid_temp": "dcid.1.1700000000000.123456789",
}


async def test_data_tag_get_with_dtdc() -> None:
    query = "v=2&event=add_to_cart&dtdc=" + quote(dtdc(DATA_TAG))
    result = await send(container(), method="GET", query=query, content_type=None)
    (event,) = accepted(result)
    expected = {k: v for k, v in DATA_TAG.items() if k != "_dcid_temp"}
    assert without_request_fields(event) == {**expected, "language": "pt-br"}
    assert event["client_id"] == "dcid.1.1700000000000.123456789"
    assert result.response.body == PIXEL
    assert result.response.headers["content-type"] == "image/gif"
    assert result.response.headers["cache-control"] == "no-store"
    assert cookie_header(result) == []  # analytics_storage denied by the hit


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: quote(s),  # what the Data Tag sends: standard base64, percent-encoded
        lambda s: s,  # unescaped: `+` arrives as a space
        lambda s: s.rstrip("="),  # no padding
        lambda s: s.replace("+", "-").replace("/", "_"),  # URL-safe alphabet
    ],
)
async def test_dtdc_base64_variants(encode: Any) -> None:
    data = {"event_name": "e", "note": "ü?>>~~~"}  # bytes that give +, / and padding
    raw = dtdc(data)
    assert "+" in raw or "/" in raw
    query = "v=2&dtdc=" + encode(raw)
    (event,) = accepted(await send(container(), method="GET", query=query, content_type=None))
    assert event["note"] == "ü?>>~~~"


async def test_data_tag_get_plain_params_and_dtcd() -> None:
    query = urlencode(
        {"v": "2", "event": "page_view", "url": "https://www.shop.example/", "value": "5.5"}
    )
    (event,) = accepted(await send(container(), method="GET", query=query, content_type=None))
    assert event["event_name"] == "page_view"
    assert event["page_location"] == event["url"] == "https://www.shop.example/"
    assert event["value"] == 5.5 and "v" not in event and "event" not in event
    query = "v=2&event=x&dtcd=" + quote(json.dumps({"plan": "gold", "event_name": "lead"}))
    (event,) = accepted(await send(container(), method="GET", query=query, content_type=None))
    assert (event["event_name"], event["plan"]) == ("lead", "gold")


async def test_data_tag_post_body_wins_over_query_and_data_tag_fields_expand() -> None:
    body = {
        "event_name": "purchase",
        "v": 2,
        "url": "https://www.shop.example/thanks",
        "ip": "198.51.100.9",
        "userAgent": "DataTag/1.0",
        "email": "ana@example.com",
        "phone": "+5581999990000",
        "name": "Ana",
        "lastName": "Silva",
        "state": "PE",
        "zip": "50000-000",
        "data_tag_custom_data": [
            {"name": "plan", "value": "gold"},
            {"name": "", "value": "ignored"},
            "junk",
        ],
        "important_cookie_values": {"_fbp": ["fb.1.1.1"], "_fbc": [], "other": ["x"]},
        "data_tag": True,
    }
    result = await send(
        container(),
        body,
        query="v=2&event=page_view&richsstsse",
        content_type="application/json",
        trusted_sender=True,  # a server-side Data Tag sender, so its `ip` is kept
    )
    (event,) = accepted(result)
    assert event["event_name"] == "purchase"
    assert event["page_location"] == "https://www.shop.example/thanks"
    assert event["ip_override"] == "198.51.100.9"
    assert event["user_agent"] == "DataTag/1.0"
    assert event["user_data"] == {
        "email_address": "ana@example.com",
        "phone_number": "+5581999990000",
        "address": {
            "first_name": "Ana",
            "last_name": "Silva",
            "region": "PE",
            "postal_code": "50000-000",
        },
    }
    assert event["plan"] == "gold" and event["_fbp"] == "fb.1.1.1"
    for gone in ("v", "richsstsse", "data_tag", "data_tag_custom_data", "important_cookie_values"):
        assert gone not in event
    assert "_fbc" not in event and "other" not in event
    assert event["url"] == body["url"]  # aliases stay, as in Stape's Data Client
    assert answer(result)["events"] == 1


async def test_data_tag_aliases_never_override_standard_keys() -> None:
    body = {
        "event_name": "e",
        "page_location": "https://a.example/",
        "url": "https://b.example/",
        "user_data": {"email_address": "a@a.example"},
        "email": "b@b.example",
    }
    (event,) = accepted(await send(container(), body, query="v=2"))
    assert event["page_location"] == "https://a.example/"
    assert event["user_data"] == {"email_address": "a@a.example"}


async def test_aliases_apply_to_data_tag_hits_only() -> None:
    push = {"event": "search", "city": "Paris", "url": "/file.pdf", "name": "shirt"}
    (event,) = accepted(await send(container(), push))
    assert "user_data" not in event and "page_location" not in event
    assert (event["city"], event["url"], event["name"]) == ("Paris", "/file.pdf", "shirt")


async def test_data_tag_post_with_an_empty_body_uses_the_query() -> None:
    result = await send(container(), None, query="v=2&event=lead&form=contact")
    (event,) = accepted(result)
    assert (event["event_name"], event["form"]) == ("lead", "contact")


# --- hostile input -----------------------------------------------------------------------------


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


HOSTILE: list[tuple[str, dict[str, Any], int, str]] = [
    ("invalid json", {"body": b'{"event": "x"'}, 400, "body is not valid JSON"),
    ("json with a trailing comma", {"body": b'{"event": "x",}'}, 400, "body is not valid JSON"),
    ("not utf-8", {"body": b'{"event": "caf\xe9"}'}, 400, "body is not UTF-8 (byte 14)"),
    ("utf-16", {"body": '{"event": "x"}'.encode("utf-16")}, 400, "body is not UTF-8"),
    ("lone surrogate", {"body": b'{"event": "\\ud800"}'}, 400, "body is not valid JSON"),
    ("empty body", {"body": b""}, 400, "empty body"),
    ("blank body", {"body": b" \n "}, 400, "empty body"),
    ("empty array", {"body": []}, 400, "empty array: no events"),
    ("a string", {"body": "purchase"}, 400, "must be a JSON object or an array"),
    ("null", {"body": b"null"}, 400, "must be a JSON object or an array"),
    ("array of scalars", {"body": [1, "x", None]}, 400, "event 0: not a JSON object"),
    ("nested arrays", {"body": [[{"event": "x"}]]}, 400, "not a JSON object"),
    ("no event name", {"body": {"value": 1}}, 400, "no event name"),
    ("event not a string", {"body": {"event": 5}}, 400, "event name must be a non-empty string"),
    ("event empty", {"body": {"event": "  "}}, 400, "non-empty string"),
    ("event an object", {"body": {"event": {"name": "x"}}}, 400, "non-empty string"),
    ("event too long", {"body": {"event": "x" * 257}}, 400, "longer than 256 characters"),
    (
        "too deep",
        {"body": {"event": "x", "deep": nested(MAX_DEPTH)}},
        400,
        f"nested deeper than {MAX_DEPTH} levels",
    ),
    (
        "deeper than the parser goes",
        {"body": b"[" * 30_000 + b"]" * 30_000},
        400,
        "nested deeper than",
    ),
    ("form post", {"content_type": "application/x-www-form-urlencoded"}, 415, "text/plain"),
    ("multipart", {"content_type": "multipart/form-data; boundary=x"}, 415, "Content-Type"),
    ("put", {"method": "PUT"}, 405, "use POST"),
    ("delete", {"method": "DELETE"}, 405, "use POST"),
    ("dtdc not base64", {"method": "GET", "query": "v=2&dtdc=%%%"}, 400, "dtdc is not base64"),
    (
        "dtdc not json",
        {"method": "GET", "query": "v=2&dtdc=" + base64.b64encode(b"{x").decode()},
        400,
        "dtdc is not valid JSON",
    ),
    (
        "dtdc not an object",
        {"method": "GET", "query": "v=2&dtdc=" + base64.b64encode(b"[1]").decode()},
        400,
        "dtdc must hold a JSON object",
    ),
    (
        "dtdc not utf-8",
        {"method": "GET", "query": "v=2&dtdc=" + base64.b64encode(b'{"a":"\xff"}').decode()},
        400,
        "dtdc is not UTF-8",
    ),
    ("dtcd not json", {"method": "GET", "query": "v=2&event=x&dtcd=%7B"}, 400, "dtcd is not"),
    ("get without a name", {"method": "GET", "query": "v=2"}, 400, "no event name"),
    ("get without params", {"method": "GET"}, 400, "no event name"),
]


@pytest.mark.parametrize(
    ("case", "request_args", "status", "message"), HOSTILE, ids=[h[0] for h in HOSTILE]
)
async def test_hostile_input_gets_a_clear_4xx(
    case: str, request_args: dict[str, Any], status: int, message: str
) -> None:
    target = container()
    args = {"body": {"event": "x"}, **request_args}
    body = args.pop("body")
    result = await send(target, body, **args)
    assert message in refused(result, status)
    assert target.delivery.submitted == []  # type: ignore[attr-defined]


async def test_depth_at_the_limit_is_accepted() -> None:
    # the event object is level 1, so MAX_DEPTH - 1 nested arrays inside it reach the limit
    (event,) = accepted(await send(container(), {"event": "x", "deep": nested(MAX_DEPTH - 1)}))
    assert event["deep"] == nested(MAX_DEPTH - 1)


async def test_valid_events_survive_invalid_neighbours() -> None:
    body = [{"event": "ok_1"}, 7, {"value": 1}, {"event": ""}, {"event": "ok_2"}]
    result = await send(container(), body)
    assert [e["event_name"] for e in accepted(result)] == ["ok_1", "ok_2"]
    assert answer(result)["dropped"] == {"datalayer.invalid_event": 3}


async def test_huge_arrays_are_capped_and_counted() -> None:
    target = container("{max_events: 50, max_body_bytes: 1048576}")
    result = await send(target, [{"event": f"e{i}"} for i in range(5000)])
    events = accepted(result)
    assert [e["event_name"] for e in events] == [f"e{i}" for i in range(50)]
    assert answer(result)["dropped"] == {"datalayer.too_many_events": 4950}
    assert len(target.delivery.submitted) == 100  # type: ignore[attr-defined]


async def test_the_default_cap_is_100_events() -> None:
    result = await send(container(), [{"event": "e"}] * 101)
    assert len(accepted(result)) == 100


async def test_big_strings_and_many_keys_are_fine() -> None:
    # Under the server's 1 MiB with the client's limit raised to it (JSON writes é as \u00e9).
    push = {"event": "e", "blob": "é" * 150_000, **{f"k{i}": i for i in range(5000)}}
    (event,) = accepted(await send(container("{max_body_bytes: 1048576}"), push))
    assert len(event["blob"]) == 150_000 and event["k4999"] == 4999


async def test_bodies_over_max_body_bytes_get_413_before_any_decoding() -> None:
    """sgtm.js sends with fetch keepalive or sendBeacon, which browsers cap at 64 KiB: above
    `max_body_bytes` (64 KiB by default) a body is refused whole, unread."""
    fits = {"event": "e", "blob": "x" * (65536 - 40)}
    assert len(json.dumps(fits)) <= 65536
    (event,) = accepted(await send(container(), fits))
    assert event["event_name"] == "e"
    target = container()
    result = await send(target, {"event": "e", "blob": "x" * 65536})
    assert "body over 65536 bytes" in refused(result, 413)
    assert target.delivery.submitted == []  # type: ignore[attr-defined]
    raised = container("{max_body_bytes: 2048}")
    assert "body over 2048 bytes" in refused(await send(raised, {"e": "x" * 2100}), 413)


# --- sgtm.js ------------------------------------------------------------------------------------


async def get_script(
    target: Container, headers: dict[str, str] | None = None, method: str = "GET"
) -> HandleResult:
    return await send(
        target, None, method=method, path="/sgtm.js", content_type=None, headers=headers
    )


def test_script_is_small_and_plain_es2017() -> None:
    assert len(gzip.compress(SOURCE, 9)) < 5 * 1024
    text = SOURCE.decode()
    assert "import " not in text and "require(" not in text  # no dependencies
    for newer in ("?.", "??", "#private", "static {"):  # syntax newer than ES2017-2019 hosts
        assert newer not in text


async def test_script_is_served_with_a_strong_etag() -> None:
    result = await get_script(container())
    response = result.response
    assert response.status == 200
    assert response.body == SOURCE
    digest = hashlib.sha256(SOURCE).hexdigest()[:32]
    assert response.headers == {
        "etag": f'"{digest}"',
        "cache-control": "public, max-age=3600",
        "vary": "Accept-Encoding, Origin",
        "content-type": "application/javascript; charset=utf-8",
        "x-content-type-options": "nosniff",
    }
    assert result.events == [] and result.error is None


@pytest.mark.parametrize(
    ("accept_encoding", "gzipped"),
    [
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.8", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("gzip;q=0", False),
        ("gzip;q=bad", False),
        ("br", False),
        ("identity", False),
        ("", False),
    ],
)
async def test_script_gzip_negotiation(accept_encoding: str, gzipped: bool) -> None:
    response = (await get_script(container(), {"accept-encoding": accept_encoding})).response
    assert (response.headers.get("content-encoding") == "gzip") is gzipped
    body = gzip.decompress(response.body) if gzipped else response.body
    assert body == SOURCE
    assert response.headers["etag"].endswith('-gz"') is gzipped


@pytest.mark.parametrize("gzipped", [False, True])
async def test_script_revalidation_gets_304(gzipped: bool) -> None:
    target = container("{script_max_age: 600}")
    encoding = {"accept-encoding": "gzip"} if gzipped else {}
    first = (await get_script(target, encoding)).response
    etag = first.headers["etag"]
    for if_none_match in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = (await get_script(target, {**encoding, "if-none-match": if_none_match})).response
        assert again.status == 304, if_none_match
        assert again.body == b""
        assert again.headers == {
            "etag": etag,
            "cache-control": "public, max-age=600",
            "vary": "Accept-Encoding, Origin",
        }
    stale = (await get_script(target, {**encoding, "if-none-match": '"old"'})).response
    assert stale.status == 200 and stale.body == first.body


async def test_script_head_and_custom_path() -> None:
    target = container("{path: /t/e, script_path: /assets/t.js}")
    result = await send(target, None, method="HEAD", path="/assets/t.js", content_type=None)
    assert result.response.status == 200
    assert result.response.headers["etag"] == script.PLAIN.etag
    assert (await get_script(target)).response.status == 404  # /sgtm.js is not claimed now
