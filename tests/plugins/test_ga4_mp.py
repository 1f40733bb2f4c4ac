"""`ga4_mp`: event data -> Measurement Protocol requests through the real pipeline (`sgtm emulate`
and Container + RecorderDelivery), every limit and what the tag does at it, Google's user_data
normalization, consent, client ids, merge, dedupe and classification. The fake GA4 and the
end-to-end runs are in test_ga4_mp_vendor.py; every request built here also passes its checks."""

from __future__ import annotations

import asyncio
import hashlib
import json
import textwrap
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest
from sgtm_plugins.ga4_mp import Ga4MpTag
from sgtm_plugins.ga4_mp import normalize as google
from sgtm_plugins.ga4_mp.settings import Ga4MpSettings

from sgtm.config import load_text
from sgtm.container import Container, TagTrace
from sgtm.dedupe import MemoryDedupe
from sgtm.delivery.recorder import RecorderDelivery
from sgtm.kit import hashing as pii
from sgtm.metrics import Metrics
from sgtm.plugin import BuildContext, ContainerInfo, Outbound
from sgtm.yamlsource import ConfigErrors
from tests.cli import run_cli
from tests.installed import registry
from tests.plugins.test_ga4_mp_vendor import problems, received

NOW = 1_790_000_000.0
MICROS = int(NOW * 1_000_000)
SECRET = "mp-secret-value-123"
TAG = Ga4MpTag()


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def container_yaml(settings: dict[str, Any] | None = None, default: str = "granted") -> str:
    settings = {
        "measurement_id": "G-TEST01ABCD",
        "api_secret": "${GA4_API_SECRET}",
        **(settings or {}),
    }
    lines = "".join(f"      {k}: {json.dumps(v)}\n" for k, v in settings.items())
    return (
        textwrap.dedent(
            f"""\
            version: 1
            consent: {{default: {default}}}
            triggers:
              everything: {{all: []}}
            tags:
              - name: ga4
                type: ga4_mp
                triggers: [everything]
                settings:
            """
        )
        + lines
    )


def run(
    events: list[dict[str, Any]],
    settings: dict[str, Any] | None = None,
    default: str = "granted",
    metrics: Metrics | None = None,
) -> list[TagTrace]:
    """The ga4_mp tag's trace for each event, through the real pipeline."""
    spec = load_text(
        container_yaml(settings, default), "ga4.yaml", registry(), {"GA4_API_SECRET": SECRET}
    )
    container = Container(spec, RecorderDelivery(), MemoryDedupe(), lambda: NOW, metrics=metrics)
    _, traces = asyncio.run(container.run_events(events, None, None, NOW, trace=True))
    return [trace.tags[0] for trace in traces]


def base(name: str = "page_view", **extra: Any) -> dict[str, Any]:
    return {
        "event_name": name,
        "client_id": "555.1789990000",
        "ga_session_id": "1789990000",
        "page_location": "https://www.shop.example/p/1",
        **extra,
    }


def sent(event: dict[str, Any], settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The request body the tag sends for one event (checked by the fake GA4's rules)."""
    (trace,) = run([event], settings)
    assert trace.fired, trace.reason
    (outbound,) = trace.requests
    assert problems(received(outbound.body, query=urlsplit(outbound.url).query), NOW) is None
    return msgspec.json.decode(outbound.body)  # type: ignore[no-any-return]


def one(event: dict[str, Any], settings: dict[str, Any] | None = None) -> tuple[dict, list[str]]:
    """(the MP event's params, the warnings) for one event."""
    (trace,) = run([event], settings)
    assert trace.fired, trace.reason
    body = msgspec.json.decode(trace.requests[0].body)
    return body["events"][0]["params"], trace.warnings


def refused(event: dict[str, Any], settings: dict[str, Any] | None = None) -> str:
    (trace,) = run([event], settings)
    assert not trace.fired and trace.requests == []
    assert trace.reason is not None and trace.reason.startswith("invalid: ")
    return trace.reason.removeprefix("invalid: ")


# -- sgtm emulate, per event type ----------------------------------------------------------------

SOCK = {"item_id": "SKU-1", "item_name": "Sock", "price": 9.9, "quantity": 2}
EMULATE_EVENTS = [
    base("page_view", page_title="Sock", engagement_time_msec=300),
    base("view_item", currency="EUR", value=9.9, items=[{**SOCK, "quantity": 1}]),
    base("add_to_cart", currency="EUR", value=19.8, items=[SOCK]),
    base("begin_checkout", currency="EUR", value=19.8, coupon="WELCOME", items=[SOCK]),
    base(
        "purchase", currency="EUR", value=19.8, transaction_id="T-1", tax=3.3, items=[SOCK],
        user_id="U-1",
        user_data={"email_address": "Ana.Maria@GMail.com", "address": {"city": "Montréal"}},
        **{"x-ga-mp2-user_properties": {"_user_id": "U-1", "plan": "gold"}},
    ),
    base("generate_lead", currency="EUR", value=30, form_id="contact"),
    base("sign_up", method="email", user_id="U-2"),
    base("ad_click"),
]  # fmt: skip


def test_emulate_shows_the_exact_requests(tmp_path):
    config = tmp_path / "shop.yaml"
    config.write_text(container_yaml())
    lines = "\n".join(json.dumps(e) for e in EMULATE_EVENTS)
    done = run_cli(
        "emulate", "-c", str(config), "--events", "-", "--now", str(NOW),
        stdin=lines, env={"PATH": "", "GA4_API_SECRET": SECRET},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout
    outputs = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(outputs) == len(EMULATE_EVENTS)
    names = []
    for output in outputs[:-1]:
        (tag,) = output["events"][0]["tags"]
        assert tag["fired"] is True, tag["reason"]
        assert "warnings" not in tag
        (request,) = tag["requests"]
        assert request["url"] == (
            "https://www.google-analytics.com/mp/collect?measurement_id=G-TEST01ABCD"
            "&api_secret=${GA4_API_SECRET}"
        )
        assert request["headers"] == {"Content-Type": "application/json"}
        assert problems(received(request["body"]), NOW) is None
        (event,) = request["body"]["events"]
        assert event["timestamp_micros"] == MICROS
        names.append(event["name"])
    assert names == [e["event_name"] for e in EMULATE_EVENTS[:-1]]
    purchase = outputs[4]["events"][0]["tags"][0]["requests"][0]["body"]
    assert purchase == {
        "client_id": "555.1789990000",
        "user_id": "U-1",
        "user_data": {
            "sha256_email_address": [sha("anamaria@gmail.com")],
            "address": [{"city": "montréal"}],
        },
        "user_properties": {"plan": {"value": "gold", "timestamp_micros": MICROS}},
        "events": [
            {
                "name": "purchase",
                "params": {
                    "session_id": "1789990000",
                    "engagement_time_msec": 1,
                    "page_location": "https://www.shop.example/p/1",
                    "currency": "EUR",
                    "value": 19.8,
                    "transaction_id": "T-1",
                    "items": [SOCK],
                    "tax": 3.3,
                },
                "timestamp_micros": MICROS,
            }
        ],
    }
    page_view = outputs[0]["events"][0]["tags"][0]["requests"][0]["body"]["events"][0]
    assert page_view["params"] == {
        "session_id": "1789990000",
        "engagement_time_msec": 300,
        "page_location": "https://www.shop.example/p/1",
        "page_title": "Sock",
    }
    (ad_click,) = outputs[-1]["events"][0]["tags"]
    assert ad_click["fired"] is False and ad_click["requests"] == []
    assert ad_click["reason"] == (
        "invalid: event name 'ad_click' is reserved by GA4, which drops such events "
        "(rename it with event_map)"
    )


def test_emulate_lists_warnings_and_metrics_count_them(tmp_path):
    config = tmp_path / "shop.yaml"
    config.write_text(container_yaml())
    event = base("page_view", note="x" * 120, **{"bad-name": 1})
    done = run_cli(
        "emulate", "-c", str(config), "--events", "-", "--now", str(NOW),
        stdin=json.dumps(event), env={"PATH": "", "GA4_API_SECRET": SECRET},
    )  # fmt: skip
    (tag,) = json.loads(done.stdout)["events"][0]["tags"]
    assert tag["fired"] is True
    assert tag["warnings"] == [
        "param 'note' cut to 100 characters (was 120)",
        "param 'bad-name' dropped: the name is not a letter followed by letters, digits and "
        "underscores",
    ]
    metrics = Metrics()
    run([event], metrics=metrics)
    assert metrics.value("sgtm_tag_warnings_total", container="ga4", tag="ga4") == 2


# -- what the tag refuses: GA4 would drop the whole event ----------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"event_name": None}, "no event_name"),
        ({"event_name": "add-to-cart"},
         "event name 'add-to-cart' is not a letter followed by letters, digits and underscores; "
         "GA4 drops such events"),
        ({"event_name": "e" * 41}, "is longer than 40 characters"),
        ({"event_name": "ga_custom"}, "is a reserved prefix (ga_, google_, firebase_)"),
        ({"event_name": "session_start"}, "event name 'session_start' is reserved by GA4"),
        ({"event_name": "first_visit"}, "reserved by GA4"),
        ({"client_id": None}, "no client_id: GA4 needs one per request"),
        ({"timestamp_micros": MICROS - 73 * 3600 * 1_000_000},
         "event is 73.0 hours old; GA4 takes events up to 72 hours back"),
        ({"timestamp_micros": "yesterday"}, "timestamp_micros 'yesterday' is not a number"),
        ({"x-sst-system_properties": {"request_start_time_ms": (NOW - 80 * 3600) * 1000}},
         "event is 80.0 hours old"),
    ],
)  # fmt: skip
def test_events_ga4_would_drop_are_not_sent(change, reason):
    event = {k: v for k, v in {**base(), **change}.items() if v is not None}
    assert reason in refused(event)


def test_a_body_of_130_kb_is_not_sent():
    wide = {f"p{i}": "x" * 100 for i in range(10)}
    items = [{"item_id": f"SKU-{i}", **wide} for i in range(200)]
    reason = refused(base("view_item_list", items=items))
    assert reason.startswith("request body is ") and "GA4 takes less than 130000" in reason


def test_timestamps_72_hours_back_pass_and_future_ones_become_now():
    body = sent(base(timestamp_micros=MICROS - 72 * 3600 * 1_000_000 + 1))
    assert body["events"][0]["timestamp_micros"] == MICROS - 72 * 3600 * 1_000_000 + 1
    (trace,) = run([base(timestamp_micros=MICROS + 5_000_000)])
    assert msgspec.json.decode(trace.requests[0].body)["events"][0]["timestamp_micros"] == MICROS
    assert trace.warnings == ["timestamp in the future: sent as now"]
    arrived = sent(
        base(**{"x-sst-system_properties": {"request_start_time_ms": NOW * 1000 - 1500}})
    )
    assert arrived["events"][0]["timestamp_micros"] == MICROS - 1_500_000


# -- what the tag cuts or drops: GA4 would silently lose it ---------------------------------------


def test_params_over_25_keep_standard_ones_first():
    custom = {f"custom_{i:02d}": i for i in range(30)}
    params, warnings = one(base("purchase", **custom, currency="EUR", value=5, transaction_id="T"))
    assert len(params) == 25
    assert list(params)[:6] == [
        "session_id", "engagement_time_msec", "page_location", "currency", "value",
        "transaction_id",
    ]  # fmt: skip
    assert list(params)[6:] == [f"custom_{i:02d}" for i in range(19)]
    assert warnings == [
        "11 params dropped, GA4 takes 25 per event: custom_19, custom_20, custom_21, custom_22, "
        "custom_23 and 6 more"
    ]


@pytest.mark.parametrize(
    ("extra", "expected", "warning"),
    [
        ({"note": "x" * 101}, {"note": "x" * 100}, "param 'note' cut to 100 characters (was 101)"),
        ({"page_title": "t" * 301}, {"page_title": "t" * 300}, "cut to 300 characters"),
        ({"page_referrer": "r" * 421}, {"page_referrer": "r" * 420}, "cut to 420 characters"),
        ({"page_location": "https://s.example/" + "p" * 990}, {}, "cut to 1000 characters"),
        ({"note": "x" * 100}, {"note": "x" * 100}, None),
        ({"obj": {"a": 1}}, {}, "param 'obj' dropped: GA4 takes text and numbers, not an object"),
        ({"tags": ["a"]}, {}, "param 'tags' dropped: GA4 takes text and numbers, not a list"),
        ({"nothing": None}, {}, None),
        ({"x-ga-gcs": "G111", "x-sst-system_properties": {}, "x-fb-ck-fbp": "fb.1"}, {}, None),
        ({"page_hostname": "s", "page_path": "/", "user_agent": "UA", "language": "en"}, {}, None),
        ({"9lives": 1}, {}, "param '9lives' dropped: the name is not a letter followed by"),
        ({"google_x": 1}, {}, "the name is a reserved prefix (ga_, google_, firebase_)"),
        ({"p" * 41: 1}, {}, "the name is longer than 40 characters"),
        ({"currency": "eur"}, {"currency": "EUR"}, None),
        ({"currency": "euro"}, {}, "param 'currency' dropped: not a 3-letter ISO 4217 code"),
        ({"value": "12.50", "currency": "BRL"}, {"value": 12.5, "currency": "BRL"}, None),
        ({"value": "lots", "currency": "BRL"}, {"currency": "BRL"},
         "param 'value' dropped: not a number"),
        ({"value": 10}, {"value": 10}, "value sent without currency: GA4 counts no revenue for it"),
        ({"flag": True, "score": 2.5}, {"flag": True, "score": 2.5}, None),
    ],
)  # fmt: skip
def test_param_limits(extra, expected, warning):
    params, warnings = one(base(**extra))
    for name, value in expected.items():
        assert params[name] == value
    for name in set(extra) - set(expected) - {"page_location"}:
        assert name not in params
    if "page_location" in extra:
        assert len(params["page_location"]) == 1000
    if warning is None:
        assert warnings == []
    else:
        (found,) = warnings
        assert warning in found


@pytest.mark.parametrize(
    ("items", "expected", "warning"),
    [
        ([{"item_id": 1001, "price": "9.90", "quantity": "2"}],
         [{"item_id": "1001", "price": 9.9, "quantity": 2}], None),
        ([{"item_name": "Sock"}, {"price": 3}], [{"item_name": "Sock"}],
         "items[1] dropped: it has neither item_id nor item_name"),
        ([{"item_id": "A", "price": "cheap"}], [{"item_id": "A"}],
         "items[0].price dropped: not a number"),
        ([{"item_id": "A", "meta": {"k": 1}}], [{"item_id": "A"}], "items[0].meta dropped"),
        ([{"item_id": "A", "item_name": "n" * 150}], [{"item_id": "A", "item_name": "n" * 100}],
         "cut to 100 characters"),
        ([{"item_id": "A", **{f"c{i}": i for i in range(12)}}],
         [{"item_id": "A", **{f"c{i}": i for i in range(10)}}],
         "items[0].c10 dropped: GA4 takes 10 custom params per item"),
        (["SKU-1", {"item_id": "B"}], [{"item_id": "B"}], "items[0] dropped: not an object"),
        ("SKU-1", None, "param 'items' dropped: not a list"),
        ([{"item_id": "A", "bad-key": 1}], [{"item_id": "A"}], "items[0].bad-key dropped"),
    ],
)  # fmt: skip
def test_item_limits(items, expected, warning):
    params, warnings = one(base("view_item_list", items=items))
    assert params.get("items") == expected
    if warning is None:
        assert warnings == []
    else:
        assert any(warning in w for w in warnings), warnings


def test_at_most_200_items():
    params, warnings = one(base("view_item_list", items=[{"item_id": str(i)} for i in range(205)]))
    assert len(params["items"]) == 200
    assert warnings == ["5 items dropped, GA4 takes 200 per event"]


def test_user_property_limits():
    props = {
        "_user_id": "U-1",
        "plan": "gold",
        "long_value": "v" * 40,
        "p" * 25: "too long a name",
        "user_id": "reserved",
        "firebase_x": 1,
        "nested": {"a": 1},
        "empty": None,
        **{f"u{i:02d}": i for i in range(30)},
    }
    (trace,) = run([base(**{"x-ga-mp2-user_properties": props})])
    body = msgspec.json.decode(trace.requests[0].body)
    sent_props = body["user_properties"]
    assert len(sent_props) == 25
    assert sent_props["plan"] == {"value": "gold", "timestamp_micros": MICROS}
    assert sent_props["long_value"]["value"] == "v" * 36
    assert "_user_id" not in sent_props and "user_id" not in sent_props
    assert list(sent_props)[2:] == [f"u{i:02d}" for i in range(23)]
    assert trace.warnings == [
        "user property 'long_value' cut to 36 characters (was 40)",
        f"user property {'p' * 25!r} dropped: the name is longer than 24 characters",
        "user property 'user_id' dropped: the name is reserved by GA4",
        "user property 'firebase_x' dropped: the name is a reserved prefix (ga_, google_, "
        "firebase_)",
        "user property 'nested' dropped: GA4 takes text and numbers",
        "7 user properties dropped, GA4 takes 25",
    ]


def test_a_user_id_over_256_characters_is_not_sent():
    (trace,) = run([base(user_id="u" * 257)])
    assert "user_id" not in msgspec.json.decode(trace.requests[0].body)
    assert trace.warnings == ["user_id not sent: 257 characters, GA4 takes 256"]


# -- ids, session, engagement ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "setting", "expected"),
    [
        ({"client_id": "555.1789990000"}, None, "555.1789990000"),
        # a server-managed FPID: the _ga cookie's id (x-ga-js_client_id) joins the browser's users
        ({"client_id": "FPIDx2Yz=.1789990000", "x-ga-js_client_id": "777.1789990000"}, None,
         "777.1789990000"),
        ({"client_id": "FPIDx2Yz=.1789990000"}, None, "FPIDx2Yz=.1789990000"),
        ({"client_id": "FPIDx2Yz=.1789990000", "x-ga-js_client_id": "junk"}, None,
         "FPIDx2Yz=.1789990000"),
        ({"client_id": 12345}, None, "12345"),
        ({"client_id": "555.1"}, "{{event.visitor}}", "v-9"),
    ],
)  # fmt: skip
def test_client_id(event, setting, expected):
    settings = {"client_id": setting} if setting else None
    data = {**base(), **event, "visitor": "v-9"}
    assert sent(data, settings)["client_id"] == expected


@pytest.mark.parametrize(
    ("event", "expected", "warnings"),
    [
        ({"ga_session_id": "1789990000"}, "1789990000", []),
        ({"ga_session_id": None, "session_id": "1789990001"}, "1789990001", []),
        ({"ga_session_id": None, "session_id": "0f3a-uuid"}, None,
         ["session_id not sent as session_id: GA4 session ids are numbers"]),
        ({"ga_session_id": None}, None, []),
    ],
)  # fmt: skip
def test_session_id(event, expected, warnings):
    data = {k: v for k, v in {**base(), **event}.items() if v is not None}
    params, found = one(data)
    assert params.get("session_id") == expected
    assert found == warnings


@pytest.mark.parametrize(
    ("value", "expected"), [(None, 1), (0, 1), (-5, 1), ("2500", 2500), (1200.7, 1200), ("x", 1)]
)
def test_engagement_time_is_at_least_1_so_realtime_shows_the_event(value, expected):
    event = base() if value is None else base(engagement_time_msec=value)
    assert one(event)[0]["engagement_time_msec"] == expected


def test_debug_hits_go_to_debugview():
    params, _ = one(base(**{"x-ga-system_properties": {"dbg": "1"}}))
    assert params["debug_mode"] is True


def test_event_map_renames():
    params = sent(base("lead_created"), {"event_map": {"lead_created": "generate_lead"}})
    assert params["events"][0]["name"] == "generate_lead"


def test_params_setting_adds_and_removes():
    body = sent(
        base(page_title="Secret", plan="gold"),
        {"params": {"site": "shop-br", "page_title": None, "plan": "{{event.plan}}-tier"}},
    )
    params = body["events"][0]["params"]
    assert params["site"] == "shop-br" and params["plan"] == "gold-tier"
    assert "page_title" not in params


def test_user_properties_setting():
    body = sent(base(**{"x-ga-mp2-user_properties": {"a": 1}}), {"user_properties": {"b": "x"}})
    assert {k: v["value"] for k, v in body["user_properties"].items()} == {"a": 1, "b": "x"}


# -- consent ---------------------------------------------------------------------------------------

STATE = "x-sst-system_properties"


@pytest.mark.parametrize(
    ("state", "default", "expected"),
    [
        (None, "granted", None),
        (None, "denied", {"ad_user_data": "DENIED", "ad_personalization": "DENIED"}),
        ({"ad_user_data": True, "ad_personalization": False}, "granted",
         {"ad_user_data": "GRANTED", "ad_personalization": "DENIED"}),
        ({"ad_user_data": True}, "denied",
         {"ad_user_data": "GRANTED", "ad_personalization": "DENIED"}),
        ({"ad_personalization": "granted"}, "granted", {"ad_personalization": "GRANTED"}),
    ],
)  # fmt: skip
def test_consent_from_the_events_state(state, default, expected):
    event = (
        base() if state is None else base(**{STATE: {"consent": {"consentGrantedState": state}}})
    )
    (trace,) = run([event], default=default)
    assert msgspec.json.decode(trace.requests[0].body).get("consent") == expected


def test_consent_from_both_places_the_core_reads():
    event = base(**{STATE: {"consent": {"consentGrantedState": {"ad_user_data": True}}}})
    event["consent_state"] = {"ad_personalization": "denied"}
    body = sent(event)
    assert body["consent"] == {"ad_user_data": "GRANTED", "ad_personalization": "DENIED"}


# -- user_data: Google's normalization ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("  Ana.Maria@GMail.com ", "anamaria@gmail.com"),
        ("ana.maria+promo@googlemail.com", "anamaria+promo@googlemail.com"),
        ("Ana.Maria@Example.com", "ana.maria@example.com"),
        ("ana maria@example.com", "anamaria@example.com"),
        ("not-an-email", None),
        ("@example.com", None),
        ("a@b", None),
    ],
)
def test_google_email(raw, normalized):
    assert google.google_email(raw) == normalized


@pytest.mark.parametrize(
    ("raw", "country", "normalized"),
    [
        ("+55 (11) 91234-5678", None, "+5511912345678"),
        ("0055 11 91234 5678", None, "+5511912345678"),
        ("(11) 91234-5678", "55", "+5511912345678"),
        ("011 91234-5678", "55", "+5511912345678"),
        ("(11) 91234-5678", None, "+11912345678"),
        ("+1 (800) 555-0100", "55", "+18005550100"),
        ("12345", None, None),
        ("+1234567890123456", None, None),
        ("call me", None, None),
    ],
)
def test_e164(raw, country, normalized):
    assert pii.e164(raw, country) == normalized


@pytest.mark.parametrize(
    ("function", "raw", "normalized"),
    [
        (google.google_name, " Jean-Luc O'Neil 3rd ", "jeanluc oneil rd"),
        (google.google_name, "José", "josé"),
        (
            google.google_street,
            "1600 Amphitheatre Pkwy., Apt #2",
            "1600 amphitheatre pkwy apt 2",
        ),
        (google.google_city, "São Paulo (SP) 2", "são paulo sp"),
        (google.google_region, "CA", "ca"),
        (google.google_postal_code, " 94043.1351~ ", "940431351"),
        (google.google_country, "br", "BR"),
        (google.google_country, "Brazil", None),
        (google.google_name, "123 !!", None),
    ],
)
def test_google_address_rules(function, raw, normalized):
    assert function(raw) == normalized


def test_user_data_is_hashed_per_googles_rules():
    hashed_phone = sha("+5511912345678")
    body = sent(
        base(
            "purchase",
            user_id="U-1",
            user_data={
                "email_address": ["Ana.Maria@GMail.com", "ana@work.example"],
                "sha256_email_address": sha("anamaria@gmail.com").upper(),  # a duplicate
                "phone_number": "(11) 91234-5678",
                "address": [
                    {"first_name": "José", "last_name": "da Silva", "street": "Rua A, 10",
                     "city": "São Paulo", "region": "SP", "postal_code": "01310-100",
                     "country": "br"},
                    {"sha256_first_name": sha("ana"), "country": "Brasil"},
                ],
            },
        ),
        {"phone_country_code": "55"},
    )  # fmt: skip
    assert body["user_data"] == {
        "sha256_email_address": [sha("anamaria@gmail.com"), sha("ana@work.example")],
        "sha256_phone_number": [hashed_phone],
        "address": [
            {
                "sha256_first_name": sha("josé"),
                "sha256_last_name": sha("da silva"),
                "sha256_street": sha("rua a 10"),
                "city": "são paulo",
                "region": "sp",
                "postal_code": "01310-100",
                "country": "BR",
            },
            {"sha256_first_name": sha("ana")},
        ],
    }


def test_no_user_data_when_ad_user_data_is_denied_or_switched_off():
    denied = {STATE: {"consent": {"consentGrantedState": {"ad_user_data": False}}}}
    event = base(user_data={"email_address": "a@b.example"}, **denied)
    assert "user_data" not in sent(event)
    assert "user_data" not in sent(
        base(user_data={"email_address": "a@b.example"}), {"send_user_data": False}
    )
    assert sent(base(user_data={"email_address": "a@b.example"}))["user_data"] == {
        "sha256_email_address": [sha("a@b.example")]
    }


def test_device_and_location_from_the_hit():
    body = sent(
        base(
            language="pt-br",
            screen_resolution="390x844",
            ip_override="203.0.113.0",
            event_location={"country": "br", "region": "BR-SP", "city": "São Paulo"},
            client_hints={
                "mobile": True, "platform": "Android", "platform_version": "14.0.0",
                "model": "Pixel 8",
                "full_version_list": [
                    {"brand": "Not_A Brand", "version": "8.0.0.0"},
                    {"brand": "Chromium", "version": "120.0.6099.230"},
                    {"brand": "Google Chrome", "version": "120.0.6099.230"},
                ],
            },
        )
    )  # fmt: skip
    assert body["device"] == {
        "language": "pt-br",
        "screen_resolution": "390x844",
        "category": "mobile",
        "operating_system": "Android",
        "operating_system_version": "14.0.0",
        "model": "Pixel 8",
        "browser": "Google Chrome",
        "browser_version": "120.0.6099.230",
    }
    assert body["user_location"] == {"country_id": "BR", "region_id": "BR-SP", "city": "São Paulo"}
    assert body["ip_override"] == "203.0.113.0"


# -- endpoint, lanes, merge, dedupe, classification --------------------------------------------


@pytest.mark.parametrize(
    ("settings", "url"),
    [
        ({}, "https://www.google-analytics.com/mp/collect"),
        ({"region": "eu"}, "https://region1.google-analytics.com/mp/collect"),
        ({"validate": True}, "https://www.google-analytics.com/debug/mp/collect"),
        ({"endpoint": "https://gw.example/ga/"}, "https://gw.example/ga/mp/collect"),
    ],
)
def test_endpoints(settings, url):
    (trace,) = run([base()], settings)
    (outbound,) = trace.requests
    assert outbound.url == f"{url}?measurement_id=G-TEST01ABCD&api_secret={SECRET}"
    body = msgspec.json.decode(outbound.body)
    assert ("validation_behavior" in body) is bool(settings.get("validate"))


def _settings(**overrides: Any) -> Ga4MpSettings:
    return msgspec.convert(
        {"measurement_id": "G-TEST01ABCD", "api_secret": SECRET, **overrides}, Ga4MpSettings
    )


CTX = BuildContext(tag_name="ga4", container=ContainerInfo(name="shop"), now=NOW)


def test_one_lane_per_stream_and_only_one_clients_events_share_a_request():
    def built(**extra: Any) -> Outbound:
        return TAG.build(base(**extra), _settings(), CTX)[0]

    assert {built().destination, built(client_id="556.1789990000").destination} == {"G-TEST01ABCD"}
    group = built().batch_key
    assert group == built(page_title="other page").batch_key
    assert group != built(client_id="556.1789990000").batch_key
    assert group != built(user_id="U-1").batch_key
    assert group != built(consent_state={"ad_user_data": False}).batch_key
    assert "555" not in group and len(group) == 20


def test_merge_keeps_every_event_and_the_latest_user_properties():
    outbounds = [
        TAG.build(
            base(
                "add_to_cart",
                timestamp_micros=MICROS - (3 - i) * 1000,
                **{
                    "x-ga-mp2-user_properties": {
                        "tier": f"t{i}",
                        **({"first": 1} if i == 0 else {}),
                    }
                },
            ),
            _settings(),
            CTX,
        )[0]
        for i in range(3)
    ]
    merged = TAG.merge(outbounds)
    body = msgspec.json.decode(merged.body)
    assert [e["timestamp_micros"] for e in body["events"]] == [
        MICROS - 3000,
        MICROS - 2000,
        MICROS - 1000,
    ]
    assert body["user_properties"]["tier"] == {"value": "t2", "timestamp_micros": MICROS - 1000}
    assert body["user_properties"]["first"]["value"] == 1
    assert body["client_id"] == "555.1789990000"
    assert merged.url == outbounds[0].url and merged.destination == outbounds[0].destination
    assert problems(received(merged.body), NOW) is None
    assert TAG.merge(outbounds[:1]) is outbounds[0]
    with pytest.raises(ValueError, match="26 events"):
        TAG.merge((outbounds * 9)[:26])


def test_an_event_with_its_own_id_is_sent_once():
    event = base("purchase", event_id="evt-1", currency="EUR", value=1)
    assert TAG.dedupe_key(event, _settings()) == ("G-TEST01ABCD:purchase:evt-1", 86400)
    assert TAG.dedupe_key(base(), _settings()) is None
    assert TAG.dedupe_key(base("bad name", event_id="e"), _settings()) is None
    first, again, other = run([event, dict(event), {**event, "event_id": "evt-2"}])
    assert first.fired and other.fired
    assert not again.fired and again.reason == "dedupe"


@pytest.mark.parametrize(
    ("status", "body", "outcome", "reason"),
    [
        (204, b"", "done", ""),
        (200, b'{"validationMessages": []}', "done", ""),
        (200, b'{"validationMessages": [{"fieldPath": "events", "description": "Event at index: '
              b'[0] has invalid name [_badEventName].", "validationCode": "NAME_INVALID"}]}',
         "dead", "GA4 validation: events: Event at index: [0] has invalid name [_badEventName]. "
                 "(NAME_INVALID)"),
        (200, b"not json", "done", ""),
        (429, b"", "retry", "HTTP 429"),
        (500, b"", "retry", "HTTP 500"),
        (408, b"", "retry", "HTTP 408"),
        (404, b"", "dead", "HTTP 404: refused by GA4 or a proxy on the way"),
    ],
)  # fmt: skip
def test_classify(status, body, outcome, reason):
    verdict = TAG.classify(status, {}, body)
    assert (verdict.outcome, verdict.reason) == (outcome, reason)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"measurement_id": "UA-1234-1"}, "measurement_id: expected a web stream's id"),
        ({"api_secret": " "}, "api_secret: empty"),
        ({"region": "us"}, "region"),
        ({"endpoint": "{{event.host}}"}, "endpoint: cannot be a template"),
        ({"endpoint": "ftp://x"}, "endpoint: expected a base URL"),
        ({"event_map": {"x": "session_start"}},
         "event_map.x: 'session_start' is not a GA4 event name"),
        ({"params": {"bad-name": 1}}, "params.bad-name: the name is not a letter"),
        ({"user_properties": {"user_id": 1}}, "user_properties.user_id: the name is reserved"),
        ({"user_properties": {"p" * 25: 1}}, "the name is longer than 24 characters"),
        ({"phone_country_code": "+55"}, "phone_country_code: 1-3 digits"),
        ({"surprise": 1}, "surprise"),
    ],
)  # fmt: skip
def test_settings_are_checked_at_load(settings, message):
    with pytest.raises(ConfigErrors) as info:
        load_text(container_yaml(settings), "ga4.yaml", registry(), {"GA4_API_SECRET": SECRET})
    assert message in str(info.value)


def test_a_templated_measurement_id_is_checked_per_event():
    (good, bad) = run(
        [base(stream="G-OTHER12345"), base(stream="UA-1")], {"measurement_id": "{{event.stream}}"}
    )
    assert good.fired and "measurement_id=G-OTHER12345" in good.requests[0].url
    assert not bad.fired and bad.reason.startswith("invalid: settings: measurement_id")
