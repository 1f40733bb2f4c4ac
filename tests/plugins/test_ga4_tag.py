"""The `ga4` tag in-process: event data of any client -> one `/g/collect` request, settings,
user-provided data, privacy, hostile values, response classification. The wire is read back with
the fake GA4 endpoint's own decoder (tests/plugins/fake_ga4.py), which also checks it."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest
from sgtm_plugins.ga4 import register_tag_types
from sgtm_plugins.ga4.encode import number_text
from sgtm_plugins.ga4.tag import Ga4Settings, Ga4Tag
from sgtm_plugins.ga4_mp.collect import event_data as mp_event_data

from sgtm.event import EventData
from sgtm.plugin import BuildContext, ContainerInfo, InvalidEvent, Outbound
from tests.plugins import fake_ga4
from tests.servers import Received

TAG = Ga4Tag()
NOW = 1_767_225_600.0
UA = "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0"
EXAMPLE_HEX = "31c5543c1734d25c7206f5fd591525d0295bec6fe84ff82f946a34fe970a1e66"
EXAMPLE_B64 = "McVUPBc00lxyBvX9WRUl0Clb7G_oT_gvlGo0_pcKHmY"

# What the datalayer client makes of a purchase pushed by sgtm.js (docs/clients/datalayer.md).
DATALAYER_PURCHASE: EventData = {
    "event_name": "purchase",
    "client_id": "dc.1767225600.abc",
    "event_id": "0b6a8c3e-4a3f-4f63-9d3c-55c3c0f1a001",
    "page_location": "https://www.shop.example/checkout/done",
    "page_title": "Thanks",
    "language": "pt-br",
    "screen_resolution": "1440x900",
    "currency": "BRL",
    "value": "59.80",
    "transaction_id": "T-1001",
    "items": [
        {"item_id": "SKU-1", "item_name": "Meia", "price": 9.9, "quantity": 2, "fabric": "wool"},
        {"item_id": "SKU-2", "price": "40", "quantity": 1, "in_stock": True},
    ],
    "user_data": {
        "email_address": " Ana.Maria@GMail.com ",
        "phone_number": "+55 11 91234-5678",
        "address": {"first_name": "Ana", "last_name": "Souza", "city": "São Paulo"},
    },
    "consent_state": {"ad_storage": True, "analytics_storage": False, "ad_user_data": True},
    "user_agent": UA,
    "ip_override": "203.0.113.0",
}


def context(default: str = "granted") -> BuildContext:
    container = ContainerInfo(name="shop", consent_default=default)
    return BuildContext(tag_name="ga4", container=container, now=NOW)


def settings(**values: Any) -> Ga4Settings:
    return msgspec.convert({"measurement_id": "G-SHOP0001", **values}, Ga4Settings)


def build(event: EventData, ctx: BuildContext | None = None, **values: Any) -> Outbound:
    (outbound,) = TAG.build(event, settings(**values), ctx or context())
    return outbound


def sent(outbound: Outbound) -> dict[str, str]:
    url = urlsplit(outbound.url)
    headers = {k.lower(): v for k, v in outbound.headers.items()}
    got = Received(outbound.method, url.path, url.query, headers, outbound.body)
    assert fake_ga4.problems(got) is None
    (params,) = fake_ga4.hits(got)
    return params


# --- events of other clients ----------------------------------------------------------------


def test_a_datalayer_purchase_becomes_a_gtag_hit() -> None:
    ctx = context()
    outbound = build(DATALAYER_PURCHASE, ctx)
    assert outbound.method == "POST"
    assert outbound.url.startswith("https://region1.google-analytics.com/g/collect?v=2&tid=G-")
    assert outbound.headers == {"Content-Type": "text/plain;charset=UTF-8", "User-Agent": UA}
    assert outbound.destination == "G-SHOP0001"
    params = sent(outbound)
    email = hashlib.sha256(b"anamaria@gmail.com").digest()
    phone = hashlib.sha256(b"+5511912345678").digest()
    first = hashlib.sha256(b"ana").digest()
    last = hashlib.sha256(b"souza").digest()
    assert fake_ga4.canonical(params) == {
        "v": "2",
        "tid": "G-SHOP0001",
        "cid": "dc.1767225600.abc",
        "en": "purchase",
        "dl": "https://www.shop.example/checkout/done",
        "dt": "Thanks",
        "ul": "pt-br",
        "sr": "1440x900",
        "cu": "BRL",
        # the datalayer client's consent_state: analytics denied, so GA4 must know
        "gcs": "G110",
        "epn.value": 59.8,
        "ep.transaction_id": "T-1001",
        "ep.event_id": "0b6a8c3e-4a3f-4f63-9d3c-55c3c0f1a001",
        "em": frozenset(
            {
                ("em", email.hex()),
                ("pn", phone.hex()),
                ("fn0", first.hex()),
                ("ln0", last.hex()),
            }
        ),
        "items": [
            {
                "item_id": "SKU-1",
                "item_name": "Meia",
                "price": 9.9,
                "quantity": 2,
                "fabric": "wool",
            },
            {"item_id": "SKU-2", "price": 40, "quantity": 1, "in_stock": "true"},
        ],
        "_uip": "203.0.113.0",
    }
    # no personal data in clear anywhere on the wire
    wire = outbound.url + outbound.body.decode()
    assert "Ana" not in wire and "GMail" not in wire and "91234" not in wire
    assert ctx.warnings == []


# A backend's Measurement Protocol request, as the ga4_mp client receives it.
MP_BODY: dict[str, Any] = {
    "client_id": "123456789.1718000000",
    "user_id": "CRM-42",
    "timestamp_micros": 1_767_225_000_000_000,
    "non_personalized_ads": True,
    "user_properties": {"plan": {"value": "gold"}, "orders": {"value": 3}},
    "user_data": {
        "sha256_email_address": [EXAMPLE_HEX],
        "address": [{"sha256_first_name": EXAMPLE_HEX, "city": "sao paulo", "country": "BR"}],
    },
    "events": [
        {
            "name": "purchase",
            "params": {
                "transaction_id": "T-9",
                "currency": "BRL",
                "value": 99.9,
                "session_id": 1718000000,
                "engagement_time_msec": 120,
                "items": [{"item_id": "SKU-9", "price": 99.9, "quantity": 1}],
            },
        }
    ],
}


@pytest.mark.parametrize("ad_user_data", [None, "GRANTED", "DENIED"])
def test_an_event_of_the_ga4_mp_client_becomes_a_gtag_hit(ad_user_data: str | None) -> None:
    """The ga4_mp client keys events as the ga4 client does, so this tag reads them whole; a
    backend gave no IP and no browser, so neither `_uip` nor a User-Agent is sent."""
    body = dict(MP_BODY)
    if ad_user_data is not None:
        body["consent"] = {"ad_user_data": ad_user_data}
    event = mp_event_data(body, body["events"][0], "G-ABC123XYZ9", False, NOW)
    ctx = context()
    (outbound,) = TAG.build(event, msgspec.convert({}, Ga4Settings), ctx)
    assert outbound.headers == {"Content-Type": "text/plain;charset=UTF-8"}
    expected: dict[str, Any] = {
        "v": "2",
        "tid": "G-ABC123XYZ9",
        "cid": "123456789.1718000000",
        "uid": "CRM-42",
        "sid": "1718000000",
        "_et": 120,
        "en": "purchase",
        "cu": "BRL",
        "npa": "1",
        "up.plan": "gold",
        "upn.orders": 3,
        "ep.transaction_id": "T-9",
        "epn.value": 99.9,
        "items": [{"item_id": "SKU-9", "price": 99.9, "quantity": 1}],
    }
    if ad_user_data != "DENIED":
        expected["em"] = frozenset({("em", EXAMPLE_HEX), ("fn0", EXAMPLE_HEX), ("co0", "br")})
    assert fake_ga4.canonical(sent(outbound)) == expected  # no timestamp_micros, no _uip
    assert ctx.warnings == []


def test_the_body_line_holds_the_event_and_the_url_the_rest() -> None:
    outbound = build(DATALAYER_PURCHASE)
    body = outbound.body.decode()
    assert "\n" not in body
    names = [pair.split("=")[0] for pair in body.split("&")]
    assert names[0] == "en"
    assert all(n in ("en", "_et") or n.startswith(("ep.", "epn.", "pr")) for n in names)
    query_names = [pair.split("=")[0] for pair in urlsplit(outbound.url).query.split("&")]
    assert query_names[:2] == ["v", "tid"] and "em" in query_names and "_uip" in query_names


def test_values_are_encoded_like_encode_uri_component() -> None:
    event = {
        "event_name": "search",
        "client_id": "1.2",
        "search_term": "a&b=c d+é/?#~",
        "page_title": "100% <off>",
    }
    outbound = build(event)
    assert "ep.search_term=a%26b%3Dc%20d%2B%C3%A9%2F%3F%23~" in outbound.body.decode()
    assert "dt=100%25%20%3Coff%3E" in outbound.url
    params = sent(outbound)
    assert params["ep.search_term"] == "a&b=c d+é/?#~"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3, "3"),
        (30.0, "30"),
        (59.8, "59.8"),
        (0.1 + 0.2, "0.30000000000000004"),
        (-1.5, "-1.5"),
        (2**53 + 2.0, "9007199254740994"),
        (1e21, "1e+21"),
        (" 12.50 ", "12.50"),
        ("12,50", None),
        (float("nan"), None),
        (float("inf"), None),
        (True, None),
        (None, None),
    ],
)
def test_number_text(value: Any, text: str | None) -> None:
    assert number_text(value) == text


# --- settings -------------------------------------------------------------------------------


def test_measurement_id_and_event_name_settings_replace_the_events() -> None:
    event = {"event_name": "lead_created", "client_id": "1.2", "x-ga-measurement_id": "G-OLD1"}
    params = sent(build(event, event_name="generate_lead", measurement_id="G-NEW12345"))
    assert (params["tid"], params["en"]) == ("G-NEW12345", "generate_lead")
    inherited = msgspec.convert({}, Ga4Settings)
    (outbound,) = TAG.build(event, inherited, context())
    assert sent(outbound)["tid"] == "G-OLD1"


def test_params_and_user_properties_are_added_replaced_and_removed() -> None:
    event = {
        "event_name": "page_view",
        "client_id": "1.2",
        "page_title": "Secret page",
        "plan": "gold",
        "x-ga-mp2-user_properties": {"tier": "a", "_user_id": "u1", "old": "x"},
    }
    params = sent(
        build(
            event,
            params={"page_title": None, "site": "shop-br", "plays": 3, "plan": "silver"},
            user_properties={"old": None, "cohort": 7},
        )
    )
    assert "dt" not in params
    assert (params["ep.site"], params["epn.plays"], params["ep.plan"]) == ("shop-br", "3", "silver")
    assert (params["up.tier"], params["upn.cohort"]) == ("a", "7")
    assert "up.old" not in params and "up._user_id" not in params
    assert event["x-ga-mp2-user_properties"]["old"] == "x"  # the event itself is untouched


def test_region_and_endpoint() -> None:
    event = {"event_name": "x", "client_id": "1.2"}
    assert build(event, region="global").url.startswith(
        "https://www.google-analytics.com/g/collect?"
    )
    assert build(event, endpoint="http://127.0.0.1:9/proxy/collect").url.startswith(
        "http://127.0.0.1:9/proxy/collect?v=2"
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"measurement_id": "UA-1234-1"}, "measurement_id"),
        ({"measurement_id": "g-lower"}, "measurement_id"),
        ({"event_name": "  "}, "event_name"),
        ({"endpoint": "ftp://x/g/collect"}, "endpoint"),
        ({"endpoint": "https://{{event.host}}/g/collect"}, "template"),
        ({"endpoint": "https://x.example/g/collect?tid=G-1"}, "endpoint"),
        ({"endpoint": "/g/collect"}, "endpoint"),
        ({"region": "us"}, "region"),
        ({"params": {"bad name": 1}}, "params.bad name"),
        ({"params": {"9lives": 1}}, "params.9lives"),
        ({"user_properties": {"x" * 41: 1}}, "user_properties"),
        ({"redact_visitor_ip": "yes"}, "redact_visitor_ip"),
        ({"api_secret": "s"}, "api_secret"),
    ],
)
def test_bad_settings_are_refused_with_the_field_named(values: dict[str, Any], message: str):
    with pytest.raises(msgspec.ValidationError, match=message):
        msgspec.convert(values, Ga4Settings)


def test_templated_measurement_id_is_checked_after_rendering() -> None:
    assert msgspec.convert({"measurement_id": "{{ga4_id}}"}, Ga4Settings).measurement_id
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"measurement_id": "not-an-id"}, Ga4Settings)


# --- sessions, debug, consent ---------------------------------------------------------------


def test_session_and_engagement_fields_go_back_under_their_names() -> None:
    event = {
        "event_name": "user_engagement",
        "client_id": "1.2",
        "ga_session_id": "1767225000",
        "ga_session_number": 4,
        "engagement_time_msec": 5210,
        "x-ga-mp2-seg": "1",
        "x-ga-system_properties": {"ss": "1", "fv": "1", "nsi": "1", "ee": True, "zz": "q"},
        "x-ga-mp2-tt": "internal",
    }
    params = sent(build(event))
    assert {k: params[k] for k in ("sid", "sct", "_et", "seg", "_ss", "_fv", "_nsi", "_ee")} == {
        "sid": "1767225000",
        "sct": "4",
        "_et": "5210",
        "seg": "1",
        "_ss": "1",
        "_fv": "1",
        "_nsi": "1",
        "_ee": "1",
    }
    assert (params["_zz"], params["tt"]) == ("q", "internal")


@pytest.mark.parametrize(
    ("event", "debug_setting", "dbg", "param"),
    [
        ({"debug_mode": True}, False, "1", "true"),
        ({"debug_mode": "true"}, False, "1", "true"),
        ({"debug_mode": "false"}, False, None, "false"),
        ({}, True, "1", "true"),
        ({"x-ga-system_properties": {"dbg": "1"}}, False, "1", None),
    ],
)
def test_debug_mode(event: EventData, debug_setting: bool, dbg: str | None, param: str | None):
    params = sent(build({"event_name": "x", "client_id": "1.2", **event}, debug_mode=debug_setting))
    assert (params.get("_dbg"), params.get("ep.debug_mode")) == (dbg, param)


@pytest.mark.parametrize(
    ("event", "default", "gcs"),
    [
        ({"consent_state": {"ad_storage": False, "analytics_storage": False}}, "granted", "G100"),
        ({"consent_state": {"analytics_storage": False}}, "granted", "G110"),
        ({"consent_state": {"analytics_storage": True}}, "denied", "G101"),
        ({"consent_state": {"ad_user_data": False}}, "granted", None),
        ({"x-ga-gcd": "13p3p3p2p5l1", "consent_state": {"ad_storage": False}}, "granted", None),
        ({"x-ga-gcs": "G101", "consent_state": {"analytics_storage": False}}, "granted", "G101"),
    ],
)
def test_gcs_for_events_gtag_did_not_send(event: EventData, default: str, gcs: str | None):
    params = sent(build({"event_name": "x", "client_id": "1.2", **event}, context(default)))
    assert params.get("gcs") == gcs


# --- user-provided data ---------------------------------------------------------------------


def test_em_from_digests_as_they_are_and_from_plain_values_hashed() -> None:
    other = hashlib.sha256(b"other@example.com").hexdigest()
    event = {
        "event_name": "sign_up",
        "client_id": "1.2",
        "user_data": {
            "sha256_email_address": [EXAMPLE_HEX, EXAMPLE_B64, other.upper()],
            "email_address": "example@example.com",  # the same address: sent once
            "sha256_phone_number": "not a digest",  # hashed as a phone: not one, dropped
            "address": [{"country": "br", "postal_code": "01310-100"}, {"country": "Brazil"}],
        },
    }
    em = sent(build(event))["em"]
    assert em == f"tv.1~em.{EXAMPLE_B64}~em.{fake_b64(other)}~pc0.01310-100~co0.BR"


def test_em_is_not_sent_when_ad_user_data_is_denied_or_switched_off() -> None:
    event = {"event_name": "x", "client_id": "1.2", "user_data": {"email_address": "a@b.example"}}
    assert "em" in sent(build(event))
    denied = {**event, "consent_state": {"ad_user_data": False}}
    assert "em" not in sent(build(denied))
    assert "em" not in sent(build(event, send_user_data=False))


@pytest.mark.parametrize(
    "user_data",
    [None, "a@b.example", [], {}, {"email_address": 42}, {"address": "Rua X"}, {"phone": "12"}],
)
def test_user_data_without_anything_google_reads_sends_no_em(user_data: Any) -> None:
    params = sent(build({"event_name": "x", "client_id": "1.2", "user_data": user_data}))
    assert "em" not in params


def test_user_data_a_hit_sent_in_clear_goes_back_hashed_only() -> None:
    # Some setups send ep.user_data.* in clear; the client nests them into user_data.
    from sgtm_plugins.ga4.parse import parse_hits

    query = (
        "v=2&tid=G-SHOP0001&cid=1.2&en=sign_up&ep.user_data.email=Example%40Example.com"
        "&ep.user_data.address.first_name=Ana&ep.user_data.address.city=Lisboa"
    )
    (event,) = parse_hits(query, b"")
    outbound = build(event)
    params = sent(outbound)
    assert not [name for name in params if name.startswith("ep.")]
    assert (
        params["em"] == f"tv.1~em.{EXAMPLE_B64}~fn0.{fake_b64(hashlib.sha256(b'ana').hexdigest())}"
    )
    wire = outbound.url + outbound.body.decode()
    assert "Example" not in wire and "Ana" not in wire and "Lisboa" not in wire


def test_personal_data_never_goes_as_an_event_param() -> None:
    event = {
        "event_name": "generate_lead",
        "client_id": "1.2",
        "email_address": "ana@example.com",
        "email": "ana@example.com",
        "phone_number": "+5511912345678",
        "phone": "+5511912345678",
        "first_name": "Ana",
        "last_name": "Souza",
        "address": {"city": "x"},
        "form_id": "contact",
    }
    params = sent(build(event))
    assert [k for k in params if k.startswith("ep")] == ["ep.form_id"]


# --- visitor IP and user agent ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "redact", "uip"),
    [
        ("203.0.113.0", False, "203.0.113.0"),
        ("2001:db8:0:0:0:0:0:1", False, "2001:db8::1"),
        ("203.0.113.9", True, "::"),
        (None, True, "::"),
        (None, False, None),
    ],
)
def test_visitor_ip(ip: str | None, redact: bool, uip: str | None) -> None:
    event = {"event_name": "x", "client_id": "1.2", "ip_override": ip}
    assert sent(build(event, redact_visitor_ip=redact)).get("_uip") == uip


@pytest.mark.parametrize("ip", ["203.0.113.9:443", "1.2.3.4, 5.6.7.8", "localhost", "", 42])
def test_a_bad_ip_override_is_not_sent(ip: Any) -> None:
    ctx = context()
    params = sent(build({"event_name": "x", "client_id": "1.2", "ip_override": ip}, ctx))
    assert "_uip" not in params
    assert ctx.warnings and "not an IP address" in ctx.warnings[0]


def test_user_agent_header_never_carries_control_characters() -> None:
    event = {"event_name": "x", "client_id": "1.2", "user_agent": "Evil\r\nX-Injected: 1\x00"}
    assert build(event).headers["User-Agent"] == "EvilX-Injected: 1"
    odd = {**event, "user_agent": "Bot/1 (é😀\ud800)"}  # from a JSON body, not a real header
    assert build(odd).headers["User-Agent"] == "Bot/1 ()"
    for missing in (None, 42, " \r\n"):
        assert "User-Agent" not in build({**event, "user_agent": missing}).headers


# --- hostile and broken event data ------------------------------------------------------------


def test_events_without_measurement_id_or_name_are_invalid() -> None:
    inherited = msgspec.convert({}, Ga4Settings)
    with pytest.raises(InvalidEvent, match="no measurement id"):
        TAG.build({"event_name": "x", "client_id": "1.2"}, inherited, context())
    with pytest.raises(InvalidEvent, match="no event name"):
        build({"client_id": "1.2", "event_name": ""})


def test_values_ga4_cannot_take_are_dropped_and_said() -> None:
    ctx = context()
    event = {
        "event_name": "x",
        "client_id": "1.2",
        "ga_session_number": "three",
        "engagement_time_msec": float("nan"),
        "client_hints": {"mobile": "maybe", "platform": '"Windows"', "full_version_list": 3},
        "page_title": {"nested": True},
        "tags": ["a", "b"],
        "ratio": float("inf"),
        "x-ga-mp2-user_properties": {"list": [1], "ok": "yes"},
        "items": [
            "not an item",
            {},
            {"item_id": "A~B", "price": "free", "color~": "red", "2nd": "x", "size": {"a": 1}},
        ],
    }
    params = sent(build(event, ctx))
    assert "sct" not in params and "_et" not in params and "uamb" not in params
    assert params["uap"] == "Windows"  # the Sec-CH-UA-Platform header's quotes are not sent
    assert "dt" not in params and "ep.tags" not in params and "epn.ratio" not in params
    assert params["up.ok"] == "yes" and "up.list" not in params
    assert fake_ga4.canonical(params)["items"] == [{"item_id": "AB"}]
    assert len(ctx.warnings) == 15, ctx.warnings


def test_a_hit_too_long_for_a_url_travels_in_the_body() -> None:
    # The largest event the client lets through (1000 params of 8192 characters) must still
    # reach GA4: the URL keeps v and tid, the body line holds the rest.
    event = {
        "event_name": "page_view",
        "client_id": "1.2",
        "page_location": "https://shop.example/?q=" + "é" * 8000,
        **{f"x-ga-mp2-p{i}": "v" * 8000 for i in range(1000)},
    }
    outbound = build(event)
    assert urlsplit(outbound.url).query == "v=2&tid=G-SHOP0001"
    assert outbound.body.startswith(b"en=page_view&cid=1.2&dl=https")
    params = sent(outbound)
    assert params["dl"] == event["page_location"] and params["p999"] == "v" * 8000
    short = build({"event_name": "x", "client_id": "1.2", "page_location": "https://a.example/"})
    assert "dl=" in short.url and len(short.url) < 200


def test_items_are_capped_at_200() -> None:
    ctx = context()
    items = [{"item_id": f"S{i}"} for i in range(250)]
    params = sent(build({"event_name": "x", "client_id": "1.2", "items": items}, ctx))
    assert [k for k in params if k.startswith("pr")][-1] == "pr200"
    assert ctx.warnings == ["items: 250 items; GA4 takes 200, the rest are not sent"]


def test_custom_item_fields_are_numbered_pairs_ten_at_most() -> None:
    # From k10 on, `v1010` could be pair 1 (value "010") or pair 10 (value "10").
    ctx = context()
    item = {"item_id": "S", **{f"f{i}": i * 10 for i in range(12)}}
    params = sent(build({"event_name": "x", "client_id": "1.2", "items": [item]}, ctx))
    assert params["pr1"].startswith("idS~k0f0~v00~k1f1~v110~k2f2~v220~")
    assert fake_ga4.item(params["pr1"]) == {
        "item_id": "S",
        **{f"f{i}": str(i * 10) for i in range(10)},
    }
    assert ctx.warnings == [
        "items[0].f10: GA4 items take 10 custom fields; not sent",
        "items[0].f11: GA4 items take 10 custom fields; not sent",
    ]


# --- delivery ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(204, "done"), (200, "done"), (500, "retry"), (503, "retry"), (400, "dead"), (429, "dead")],
)
def test_classify(status: int, outcome: str) -> None:
    verdict = TAG.classify(status, {}, b"")
    assert verdict.outcome == outcome
    if outcome == "dead":
        assert verdict.reason.startswith(f"HTTP {status}")


def test_no_batching_no_dedupe_and_the_hook_registers_the_tag() -> None:
    assert TAG.batching is None
    assert TAG.dedupe_key({"event_name": "x", "event_id": "1"}, settings()) is None
    registered: list[Any] = []
    register_tag_types(registered.append)
    assert [t.name for t in registered] == ["ga4"]


def fake_b64(hex_digest: str) -> str:
    import base64

    return base64.urlsafe_b64encode(bytes.fromhex(hex_digest)).decode().rstrip("=")


def test_fast_component_encoding_equals_quote() -> None:
    # The shortcut for text that needs no escape must give what quote() gives; seeded.
    import random
    from urllib.parse import quote

    from sgtm_plugins.ga4.encode import URI_COMPONENT_SAFE, _component

    pieces = ["a", "Z", "0", "-", "_", ".", "~", "!", "*", "'", "(", ")", " ", "%", "&", "="]
    pieces += ["+", "/", "?", "#", "é", "™", "\n", "\x00", "😀", "[", ";", "|", "\ud800"]
    rng = random.Random(20261207)
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        expected = quote(text, safe=URI_COMPONENT_SAFE, errors="replace")
        assert _component(text) == expected, text
    assert _component("a\ud800b") == "a%3Fb"  # a lone surrogate (JSON allows one) is a "?"
