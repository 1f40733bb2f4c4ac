"""`ga4_mp` against a fake GA4 on loopback that checks every request against the Measurement
Protocol's documented schema and limits: batches sent directly, the real `sgtm serve` fed GA4
hits (production and validation endpoints), and response classification from real answers.

The fake's checks (`problems`) are Google's documentation as code (reference
destinations/ga4-measurement-protocol.md §2-§5, the sending-events limits, the Event Builder's
schemas): production GA4 would answer 2xx and drop silently what they find, so here they answer
400 and the tests assert none was found.
"""

from __future__ import annotations

import hashlib
import json
import re
import textwrap
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import msgspec
import pytest
from sgtm_plugins.ga4_mp import Ga4MpTag
from sgtm_plugins.ga4_mp.settings import Ga4MpSettings

from sgtm.plugin import BuildContext, ContainerInfo
from tests.cli import dead_letters
from tests.servers import FakeVendor, Received, SgtmServer, wait_until

MEASUREMENT_ID = "G-TEST01ABCD"
SECRET = "mp-secret-value-123"
TAG = Ga4MpTag()
FAST_ENV = {
    "SGTM_DELIVERY_POLL_INTERVAL": "100ms",
    "SGTM_DELIVERY_BACKOFF_BASE": "100ms",
    "SGTM_DELIVERY_BACKOFF_CAP": "500ms",
    "SGTM_DELIVERY_DISCOVER_INTERVAL": "200ms",
}

# -- the fake GA4: Google's documented schema and limits ---------------------------------------

REQUEST_KEYS = {
    "client_id",
    "app_instance_id",
    "user_id",
    "timestamp_micros",
    "user_properties",
    "user_data",
    "consent",
    "non_personalized_ads",
    "user_location",
    "ip_override",
    "device",
    "validation_behavior",
    "events",
}
DEVICE_KEYS = {
    "category",
    "language",
    "screen_resolution",
    "operating_system",
    "operating_system_version",
    "model",
    "brand",
    "browser",
    "browser_version",
}
LOCATION_KEYS = {"city", "region_id", "country_id", "subcontinent_id", "continent_id"}
ADDRESS_KEYS = {
    "sha256_first_name",
    "sha256_last_name",
    "sha256_street",
    "city",
    "region",
    "postal_code",
    "country",
}
RESERVED_EVENTS = {
    "ad_activeview", "ad_click", "ad_exposure", "ad_impression", "ad_query", "adunit_exposure",
    "app_clear_data", "app_install", "app_update", "app_remove", "error", "first_open",
    "first_visit", "in_app_purchase", "notification_dismiss", "notification_foreground",
    "notification_open", "notification_receive", "os_update", "screen_view", "session_start",
    "user_engagement",
}  # fmt: skip
RESERVED_USER_PROPERTIES = {
    "first_open_time",
    "first_visit_time",
    "last_deep_link_referrer",
    "user_id",
    "first_open_after_install",
}
ITEM_STANDARD = {
    "item_id", "item_name", "affiliation", "coupon", "currency", "discount", "index",
    "item_brand", "item_category", "item_category2", "item_category3", "item_category4",
    "item_category5", "item_list_id", "item_list_name", "item_variant", "location_id", "price",
    "quantity", "creative_name", "creative_slot", "promotion_id", "promotion_name",
}  # fmt: skip
LONG_VALUES = {"page_location": 1000, "page_referrer": 420, "page_title": 300}
NAME = re.compile(r"^(?!ga_|google_|firebase_)[A-Za-z][A-Za-z0-9_]*$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def problems(got: Received, now: float | None = None) -> str | None:
    """What GA4 documents it would drop or refuse in this request; None if nothing."""
    found = _problems(got, time.time() if now is None else now)
    return "; ".join(found) if found else None


def _problems(got: Received, now: float) -> list[str]:
    if got.method != "POST" or got.path not in ("/mp/collect", "/debug/mp/collect"):
        return [f"{got.method} {got.path}: not POST /mp/collect"]
    query = parse_qs(got.query)
    out = []
    if not re.fullmatch(r"G-[A-Z0-9]+", (query.get("measurement_id") or [""])[0]):
        out.append("no measurement_id")
    if not (query.get("api_secret") or [""])[0]:
        out.append("no api_secret")
    if len(got.body) >= 130_000:
        out.append(f"body of {len(got.body)} bytes; must be smaller than 130kB")
    try:
        body = msgspec.json.decode(got.body)
    except msgspec.DecodeError:
        return [*out, "body is not JSON"]
    if not isinstance(body, dict):
        return [*out, "body is not an object"]
    out += [f"unknown request field {k!r}" for k in sorted(set(body) - REQUEST_KEYS)]
    if not isinstance(body.get("client_id"), str) or not body["client_id"]:
        out.append("client_id is required")
    if "user_id" in body and (not isinstance(body["user_id"], str) or len(body["user_id"]) > 256):
        out.append("user_id must be a string of at most 256 characters")
    events = body.get("events")
    if not isinstance(events, list) or not 1 <= len(events) <= 25:
        out.append("events: 1 to 25 events")
        events = []
    for i, event in enumerate(events):
        out += [f"events[{i}]: {p}" for p in _event_problems(event, now)]
    out += _user_property_problems(body.get("user_properties", {}))
    out += _consent_problems(body.get("consent", {}))
    out += _user_data_problems(body.get("user_data", {}))
    if not set(body.get("device", {})) <= DEVICE_KEYS:
        out.append("unknown device field")
    if not set(body.get("user_location", {})) <= LOCATION_KEYS:
        out.append("unknown user_location field")
    if body.get("validation_behavior", "RELAXED") not in ("RELAXED", "ENFORCE_RECOMMENDATIONS"):
        out.append("validation_behavior must be RELAXED or ENFORCE_RECOMMENDATIONS")
    return out


def _event_problems(event: Any, now: float) -> list[str]:
    if not isinstance(event, dict) or set(event) - {"name", "params", "timestamp_micros"}:
        return ["an event is {name, params, timestamp_micros}"]
    out = []
    name = event.get("name")
    if not isinstance(name, str) or len(name) > 40 or not NAME.match(name):
        out.append(f"invalid event name {name!r}")
    elif name in RESERVED_EVENTS:
        out.append(f"reserved event name {name!r}")
    micros = event.get("timestamp_micros")
    if micros is not None:
        if not isinstance(micros, int) or micros > now * 1e6 + 60e6:
            out.append("timestamp_micros must be integer microseconds, not in the future")
        elif micros < (now - 72 * 3600) * 1e6:
            out.append("timestamp_micros more than 72 hours back")
    params = event.get("params", {})
    if not isinstance(params, dict) or len(params) > 25:
        return [*out, "params: an object of at most 25 params"]
    for key, value in params.items():
        if len(key) > 40 or not NAME.match(key):
            out.append(f"invalid param name {key!r}")
        if key == "items":
            out += _items_problems(value)
        elif not _scalar_ok(value, LONG_VALUES.get(key, 100)):
            out.append(f"param {key!r}: must be text of at most 100 characters or a number")
    if "value" in params and not _is_number(params["value"]):
        out.append("value must be a number")
    if "currency" in params and not re.fullmatch(r"[A-Z]{3}", str(params["currency"])):
        out.append("currency must be an uppercase ISO 4217 code")
    if "engagement_time_msec" in params and not _is_number(params["engagement_time_msec"]):
        out.append("engagement_time_msec must be a number")
    return out


def _items_problems(items: Any) -> list[str]:
    if not isinstance(items, list) or not 1 <= len(items) <= 200:
        return ["items: a list of 1 to 200 items"]
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not ({"item_id", "item_name"} & set(item)):
            out.append(f"items[{i}] needs item_id or item_name")
            continue
        custom = [k for k in item if k not in ITEM_STANDARD]
        if len(custom) > 10:
            out.append(f"items[{i}] has {len(custom)} custom params; at most 10")
        for key, value in item.items():
            if len(key) > 40 or not NAME.match(key) or not _scalar_ok(value, 100):
                out.append(f"items[{i}].{key} is invalid")
        for key in ("price", "quantity", "discount", "index"):
            if key in item and not _is_number(item[key]):
                out.append(f"items[{i}].{key} must be a number")
    return out


def _user_property_problems(props: Any) -> list[str]:
    if not isinstance(props, dict) or len(props) > 25:
        return ["user_properties: at most 25"]
    out = []
    for name, prop in props.items():
        if len(name) > 24 or not NAME.match(name) or name in RESERVED_USER_PROPERTIES:
            out.append(f"invalid user property name {name!r}")
        if not isinstance(prop, dict) or "value" not in prop:
            out.append(f"user property {name!r} must be {{value: ...}}")
        elif set(prop) - {"value", "timestamp_micros"} or not _scalar_ok(prop["value"], 36):
            out.append(f"user property {name!r}: a value of at most 36 characters")
    return out


def _consent_problems(consent: Any) -> list[str]:
    if not isinstance(consent, dict):
        return ["consent must be an object"]
    allowed = {"ad_user_data", "ad_personalization"}
    if set(consent) - allowed or set(consent.values()) - {"GRANTED", "DENIED"}:
        return ["consent: ad_user_data / ad_personalization, GRANTED or DENIED"]
    return []


def _user_data_problems(data: Any) -> list[str]:
    if not isinstance(data, dict):
        return ["user_data must be an object"]
    out = []
    if set(data) - {"sha256_email_address", "sha256_phone_number", "address"}:
        out.append("unknown user_data field")
    for key in ("sha256_email_address", "sha256_phone_number"):
        values = data.get(key, [])
        if not isinstance(values, list) or not all(HEX64.match(str(v)) for v in values):
            out.append(f"user_data.{key} must be a list of SHA-256 hex digests")
    for address in data.get("address", []):
        if set(address) - ADDRESS_KEYS:
            out.append("unknown address field")
        for key in ("sha256_first_name", "sha256_last_name", "sha256_street"):
            if key in address and not HEX64.match(address[key]):
                out.append(f"address.{key} must be a SHA-256 hex digest")
        for key in ("city", "region"):
            if key in address and (
                address[key] != address[key].lower() or re.search(r"\d", address[key])
            ):
                out.append(f"address.{key} must be lowercase without digits")
        if "country" in address and not re.fullmatch(r"[A-Z]{2}", address["country"]):
            out.append("address.country must be an ISO 3166-1 alpha-2 code")
    return out


def _scalar_ok(value: Any, max_chars: int) -> bool:
    if isinstance(value, str):
        return len(value) <= max_chars
    return isinstance(value, bool | int | float)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check(got: Received) -> str | None:
    """The production endpoint's check; the validation endpoint answers 200 with messages."""
    return None if got.path.startswith("/debug/") else problems(got)


def reply(got: Received, status: int) -> bytes:
    """Production answers 2xx with no body. The validation server answers validationMessages:
    the schema problems, and with ENFORCE_RECOMMENDATIONS a client_id not shaped
    `<number>.<number>` (as Google's does)."""
    if not got.path.startswith("/debug/"):
        return b""
    messages = [
        {"fieldPath": "events", "description": p, "validationCode": "VALUE_INVALID"}
        for p in _problems(got, time.time())
    ]
    body = msgspec.json.decode(got.body)
    enforce = body.get("validation_behavior") == "ENFORCE_RECOMMENDATIONS"
    if enforce and not re.fullmatch(r"\d+\.\d+", body.get("client_id", "")):
        messages.append(
            {
                "fieldPath": "client_id",
                "description": "Measurement client_id is expected to be of the form "
                "[number].[number]",
                "validationCode": "VALUE_INVALID",
            }
        )
    return msgspec.json.encode({"validationMessages": messages})


# -- the fake refuses what GA4 drops -------------------------------------------------------------


def received(body: Any, *, path: str = "/mp/collect", query: str = "") -> Received:
    raw = body if isinstance(body, bytes) else msgspec.json.encode(body)
    query = query or f"measurement_id={MEASUREMENT_ID}&api_secret=s"
    return Received("POST", path, query, {"content-type": "application/json"}, raw)


def good_body(now: float) -> dict[str, Any]:
    return {
        "client_id": "555.1700000000",
        "events": [
            {
                "name": "purchase",
                "params": {
                    "session_id": "1700000000",
                    "engagement_time_msec": 1,
                    "currency": "EUR",
                    "value": 9.9,
                    "items": [{"item_id": "SKU-1", "price": 9.9, "quantity": 1}],
                },
                "timestamp_micros": int(now * 1e6),
            }
        ],
    }


def _with(now: float, path: str, value: Any) -> dict[str, Any]:
    body = good_body(now)
    node: Any = body
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return body


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        ("client_id", ..., "client_id is required"),
        ("events", [], "events: 1 to 25 events"),
        ("events.0.name", "ad_click", "reserved event name"),
        ("events.0.name", "my-event", "invalid event name"),
        ("events.0.name", "e" * 41, "invalid event name"),
        ("events.0.params.ga_thing", 1, "invalid param name"),
        ("events.0.params.note", "x" * 101, "at most 100 characters"),
        ("events.0.params.page_title", "x" * 301, "at most 100 characters"),
        ("events.0.params.nested", {"a": 1}, "must be text"),
        ("events.0.params.currency", "eur", "uppercase ISO 4217"),
        ("events.0.params.value", "9.9", "value must be a number"),
        ("events.0.params.items", [{"price": 1}], "needs item_id or item_name"),
        ("events.0.timestamp_micros", 1, "72 hours back"),
        ("user_properties", {"user_id": {"value": "x"}}, "invalid user property name"),
        ("user_properties", {"plan": {"value": "x" * 37}}, "at most 36 characters"),
        ("consent", {"ad_user_data": "yes"}, "GRANTED or DENIED"),
        ("user_data", {"sha256_email_address": ["a@b.co"]}, "SHA-256 hex"),
        ("surprise", 1, "unknown request field"),
    ],
)  # fmt: skip
def test_fake_refuses_what_ga4_drops(path, value, problem):
    now = time.time()
    found = problems(received(_with(now, path, value)), now)
    assert found is not None and problem in found
    assert problems(received(good_body(now)), now) is None


def test_fake_refuses_bad_requests():
    now = time.time()
    ok = good_body(now)
    assert "no api_secret" in problems(received(ok, query=f"measurement_id={MEASUREMENT_ID}"))
    assert "not POST /mp/collect" in problems(received(ok, path="/collect"))
    assert "body is not JSON" in problems(received(b"v=2&en=x"))
    many = {**ok, "events": ok["events"] * 26}
    assert "1 to 25 events" in problems(received(many))
    params = {f"p{i}": i for i in range(26)}
    crowded = {**ok, "events": [{"name": "x", "params": params}]}
    assert "at most 25 params" in problems(received(crowded))


# -- the tag's requests over a real socket -------------------------------------------------------


def _settings(vendor_url: str, **overrides: Any) -> Ga4MpSettings:
    return msgspec.convert(
        {
            "measurement_id": MEASUREMENT_ID,
            "api_secret": SECRET,
            "endpoint": vendor_url,
            **overrides,
        },
        Ga4MpSettings,
    )


def _outbounds(settings: Ga4MpSettings, count: int, now: float) -> list[Any]:
    ctx = BuildContext(tag_name="ga4", container=ContainerInfo(name="shop"), now=now)
    events = [
        {
            "event_name": "add_to_cart",
            "client_id": "555.1700000000",
            "ga_session_id": "1700000000",
            "currency": "BRL",
            "value": 10 * (i + 1),
            "items": [{"item_id": f"SKU-{i}", "price": 10, "quantity": i + 1}],
            "x-ga-mp2-user_properties": {"cart_size": i + 1},
            "x-sst-system_properties": {"request_start_time_ms": int(now * 1000) - 25 + i},
        }
        for i in range(count)
    ]
    return [TAG.build(event, settings, ctx)[0] for event in events]


def _send(outbound: Any) -> httpx.Response:
    return httpx.request(
        outbound.method, outbound.url, headers=outbound.headers, content=outbound.body, timeout=10
    )


@pytest.fixture
def ga4():
    with FakeVendor(default_status=204, check=check, reply=reply) as fake:
        yield fake


def test_a_full_batch_of_25_is_accepted(ga4):
    now = time.time()
    outbounds = _outbounds(_settings(ga4.url), 25, now)
    assert len({o.batch_key for o in outbounds}) == 1  # one client: may share a request
    response = _send(TAG.merge(outbounds))
    assert ga4.errors == []
    assert response.status_code == 204
    assert TAG.classify(204, dict(response.headers), response.content).outcome == "done"
    (got,) = ga4.received
    assert parse_qs(got.query) == {"measurement_id": [MEASUREMENT_ID], "api_secret": [SECRET]}
    body = msgspec.json.decode(got.body)
    assert [e["params"]["items"][0]["item_id"] for e in body["events"]] == [
        f"SKU-{i}" for i in range(25)
    ]
    # each user property at its latest value: the last event's
    assert body["user_properties"]["cart_size"]["value"] == 25


def test_validation_endpoint_messages_become_the_dead_letter_reason():
    # The validation server answers 200 with a body (production: 204, none).
    with FakeVendor(default_status=200, check=check, reply=reply) as debug:
        settings = _settings(
            debug.url, validate=True, validation_behavior="ENFORCE_RECOMMENDATIONS", client_id="abc"
        )
        (outbound,) = _outbounds(settings, 1, time.time())
        assert outbound.url.startswith(f"{debug.url}/debug/mp/collect?")
        response = _send(TAG.merge([outbound]))
        (fine,) = _outbounds(_settings(debug.url, validate=True), 1, time.time())
        answer = _send(fine)
    assert response.status_code == 200
    verdict = TAG.classify(response.status_code, dict(response.headers), response.content)
    assert verdict.outcome == "dead"
    assert verdict.reason == (
        "GA4 validation: client_id: Measurement client_id is expected to be of the form "
        "[number].[number] (VALUE_INVALID)"
    )
    assert SECRET not in verdict.reason
    # a valid event passes the validation server
    assert answer.json() == {"validationMessages": []}
    assert TAG.classify(answer.status_code, {}, answer.content).outcome == "done"


@pytest.mark.parametrize(
    ("status", "outcome"), [(204, "done"), (429, "retry"), (503, "retry"), (400, "dead")]
)
def test_answers_are_classified(status, outcome):
    with FakeVendor(responses=[status]) as vendor:
        (outbound,) = _outbounds(_settings(vendor.url), 1, time.time())
        response = _send(outbound)
    assert response.status_code == status
    verdict = TAG.classify(response.status_code, dict(response.headers), response.content)
    assert verdict.outcome == outcome


# -- the real server: GA4 hits in, Measurement Protocol requests out ----------------------------

HIT = (
    "/g/collect?v=2&tid=G-WEB&cid=111.1700000000&sid=1700000123&sct=2&_et={et}&en={en}"
    "&dl=https%3A%2F%2Fwww.shop.example%2Fp%2F1&dt=Sock&ul=pt-br&sr=1440x900{extra}"
)
HITS = {
    "page_view": "",
    "view_item": "&cu=BRL&epn.value=9.9&pr1=idSKU-1~nmSock~pr9.9~qt1",
    "add_to_cart": "&cu=BRL&epn.value=19.8&pr1=idSKU-1~nmSock~pr9.9~qt2~k0fabric~v0wool",
    "begin_checkout": (
        "&cu=BRL&epn.value=44.8&pr1=idSKU-1~nmSock~pr9.9~qt2&pr2=idSKU-2~nmCap~pr25~qt1"
    ),
    "purchase": (
        "&cu=BRL&epn.value=44.8&ep.transaction_id=T-77&pr1=idSKU-1~nmSock~pr9.9~qt2"
        "&pr2=idSKU-2~nmCap~pr25~qt1&uid=CRM-9&up.plan=gold&upn.orders=3"
        "&ep.user_data.email=Ana.Maria%40GMail.com&ep.user_data.address.city=S%C3%A3o%20Paulo"
    ),
    "generate_lead": "&cu=BRL&epn.value=50&ep.form_id=contact",
    "sign_up": "&ep.method=google",
}


def _container(tmp_path: Path, vendor_url: str, **settings: Any) -> Path:
    settings = {
        "measurement_id": MEASUREMENT_ID,
        "api_secret": "${GA4_API_SECRET}",
        "endpoint": vendor_url,
        **settings,
    }
    lines = "".join(f"      {k}: {json.dumps(v)}\n" for k, v in settings.items())
    path = tmp_path / "shop.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            version: 1
            clients:
              - {name: ga4, type: ga4}
            triggers:
              everything: {all: []}
            tags:
              - name: ga4
                type: ga4_mp
                triggers: [everything]
                consent: [analytics_storage]
                settings:
            """
        )
        + lines
    )
    return path


def _events(vendor: FakeVendor, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    def events() -> list[dict[str, Any]]:
        bodies = [msgspec.json.decode(r.body) for r in list(vendor.received)]
        return [{**e, "request": b} for b in bodies for e in b["events"]]

    return wait_until(lambda: len(found := events()) >= count and found, f"{count} events", timeout)


def test_serve_sends_each_event_type_as_ga4_documents(tmp_path, ga4):
    env = {**FAST_ENV, "GA4_API_SECRET": SECRET, "SGTM_DATA_DIR": str(tmp_path / "var")}
    with SgtmServer(_container(tmp_path, ga4.url), env) as server:
        # analytics_storage denied (gcs=G100): nothing may reach GA4 for this one (had it been
        # queued, it would be sent first, in the same lane as the others)
        httpx.get(server.url + HIT.format(en="scroll", et=5, extra="&gcs=G100"))
        for en, extra in HITS.items():
            url = server.url + HIT.format(en=en, et=1200, extra=extra)
            assert httpx.get(url, headers={"user-agent": "Mozilla/5.0"}).status_code == 200
        events = _events(ga4, len(HITS))
        logs = server.logs()
    assert ga4.errors == []
    assert len(events) == len(HITS)
    by_name = {e["name"]: e for e in events}
    assert set(by_name) == set(HITS)
    for event in events:
        request = event["request"]
        assert request["client_id"] == "111.1700000000"
        assert request["device"] == {"language": "pt-br", "screen_resolution": "1440x900"}
        assert event["params"]["session_id"] == "1700000123"
        assert event["params"]["engagement_time_msec"] == 1200
        assert event["params"]["page_location"] == "https://www.shop.example/p/1"
    for got in ga4.received:
        assert parse_qs(got.query) == {"measurement_id": [MEASUREMENT_ID], "api_secret": [SECRET]}
    purchase = by_name["purchase"]
    assert purchase["params"]["items"] == [
        {"item_id": "SKU-1", "item_name": "Sock", "price": 9.9, "quantity": 2},
        {"item_id": "SKU-2", "item_name": "Cap", "price": 25, "quantity": 1},
    ]
    assert purchase["params"]["transaction_id"] == "T-77"
    assert purchase["params"]["value"] == 44.8 and purchase["params"]["currency"] == "BRL"
    request = purchase["request"]
    assert request["user_id"] == "CRM-9"
    assert {k: v["value"] for k, v in request["user_properties"].items()} == {
        "plan": "gold",
        "orders": 3,
    }
    email = hashlib.sha256(b"anamaria@gmail.com").hexdigest()
    assert request["user_data"] == {
        "sha256_email_address": [email],
        "address": [{"city": "são paulo"}],
    }
    assert by_name["add_to_cart"]["params"]["items"][0]["fabric"] == "wool"
    assert by_name["sign_up"]["params"]["method"] == "google"
    assert SECRET not in logs


def test_serve_retries_a_failure_with_the_same_request(tmp_path):
    env = {**FAST_ENV, "GA4_API_SECRET": SECRET, "SGTM_DATA_DIR": str(tmp_path / "var")}
    vendor = FakeVendor(default_status=204, responses=[503], check=check, reply=reply)
    with vendor, SgtmServer(_container(tmp_path, vendor.url), env) as server:
        url = server.url + HIT.format(en="purchase", et=10, extra=HITS["purchase"])
        assert httpx.get(url).status_code == 200
        first, second = vendor.wait_for(2, timeout=30)
    assert vendor.errors == []
    assert first.body == second.body and first.query == second.query


def test_serve_validate_mode_dead_letters_with_googles_messages(tmp_path):
    env = {**FAST_ENV, "GA4_API_SECRET": SECRET, "SGTM_DATA_DIR": str(tmp_path / "var")}
    data = tmp_path / "dlq"
    with FakeVendor(default_status=200, check=check, reply=reply) as vendor:
        config = _container(
            tmp_path,
            vendor.url,
            validate=True,
            validation_behavior="ENFORCE_RECOMMENDATIONS",
            client_id="{{event.x-ga-gtm_version}}",
        )
        config.write_text(config.read_text() + f"delivery: {{path: '{data}'}}\n")
        with SgtmServer(config, env) as server:
            hit = HIT.format(en="page_view", et=10, extra="&gtm=45je4a1")
            assert httpx.get(server.url + hit).status_code == 200
            (got,) = vendor.wait_for(1)
            assert got.path == "/debug/mp/collect"
            listing = _wait_for_dead_letter(config)
    (letter,) = listing
    assert letter["reason"] == (
        "GA4 validation: client_id: Measurement client_id is expected to be of the form "
        "[number].[number] (VALUE_INVALID)"
    )


def _wait_for_dead_letter(config: Path) -> list[dict[str, Any]]:
    return wait_until(lambda: dead_letters(config, {"GA4_API_SECRET": SECRET}), "a dead letter", 30)
