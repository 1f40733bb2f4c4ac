"""`newtail`: the SSRF guard on ad event URLs (hostile URLs are refused and nothing is sent),
ad event and conversion bodies through the real pipeline (`sgtm emulate`, Container +
RecorderDelivery), unit prices, Newtail's hashing rules, dedupe windows, settings checks.
The fake Newtail and the end-to-end runs are in test_newtail_vendor.py; every request built here
also passes its checks."""

from __future__ import annotations

import asyncio
import hashlib
import json
import textwrap
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest
from sgtm_plugins.newtail import NewtailTag, normalize
from sgtm_plugins.newtail.settings import NewtailSettings

from sgtm.config import load_text
from sgtm.container import Container, TagTrace
from sgtm.dedupe import MemoryDedupe
from sgtm.delivery.recorder import RecorderDelivery
from sgtm.yamlsource import ConfigErrors
from tests.cli import run_cli
from tests.installed import registry
from tests.plugins.test_newtail_vendor import HOST, problems, received, signed

NOW = 1_790_000_000.0  # 2026-09-21T14:13:20Z
TAG = NewtailTag()
ALLOWED = [HOST, "newtail-media.newtail.com.br", "events.staging.example:8443"]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def container_yaml(settings: dict[str, Any] | None = None) -> str:
    settings = {"publisher_id": "pub-1", "allowed_event_hosts": ALLOWED, **(settings or {})}
    settings = {k: v for k, v in settings.items() if v is not None}  # None: the default
    lines = "".join(f"      {k}: {json.dumps(v)}\n" for k, v in settings.items())
    return (
        textwrap.dedent(
            """\
            version: 1
            triggers:
              everything: {all: []}
            tags:
              - name: newtail
                type: newtail
                triggers: [everything]
                settings:
            """
        )
        + lines
    )


def run(
    events: list[dict[str, Any]], settings: dict[str, Any] | None = None
) -> tuple[list[TagTrace], RecorderDelivery]:
    """The newtail tag's trace per event, through the real pipeline, and what it submitted."""
    spec = load_text(container_yaml(settings), "newtail.yaml", registry())
    recorder = RecorderDelivery()
    container = Container(spec, recorder, MemoryDedupe(), lambda: NOW)

    async def all_events() -> list[TagTrace]:
        submissions, traces = await container.run_events(events, None, None, NOW, trace=True)
        await recorder.submit(submissions)
        return [trace.tags[0] for trace in traces]

    return asyncio.run(all_events()), recorder


def ad(kind: str = "impression", url: str | None = None, **extra: Any) -> dict[str, Any]:
    event = {
        "event_name": f"ad_{kind}",
        "ad_event_url": signed(kind, "AD-1") if url is None else url,
        "session_id": "s-1",
        "user_id": "u-7",
    }
    return {**event, **extra}


def sent(
    event: dict[str, Any], settings: dict[str, Any] | None = None, *, check: bool = True
) -> tuple[str, Any]:
    """(url, body) of the one request sent for `event`, checked by the fake Newtail's rules
    (`check=False` for URLs of another shape than Newtail's current ones)."""
    (trace,), _ = run([event], settings)
    assert trace.fired, trace.reason
    (outbound,) = trace.requests
    url = urlsplit(outbound.url)
    if check:
        assert problems(received(url.path, msgspec.json.decode(outbound.body), url.query)) is None
    assert outbound.headers == {"Content-Type": "application/json", "Accept": "application/json"}
    return outbound.url, msgspec.json.decode(outbound.body)


def refused(event: dict[str, Any], settings: dict[str, Any] | None = None) -> str:
    (trace,), recorder = run([event], settings)
    assert not trace.fired and trace.requests == [] and recorder.submitted == []
    assert trace.reason is not None and trace.reason.startswith("invalid: ")
    return trace.reason.removeprefix("invalid: ")


# -- the SSRF guard: only signed URLs on allowed hosts are ever called -----------------------------

GOOD = signed("impression", "AD-1")
PATH = "/v1/beacon/impression/AD-1?sign=" + "9f" * 32


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (None, "no impression URL (ad_event_url or impression_url)"),
        ("", "no impression URL"),
        (12345, "no impression URL"),
        (f"http://{HOST}{PATH}", "event URL must be https://"),
        (f"https://evil.example{PATH}",
         "event URL host 'evil.example' is not in allowed_event_hosts"),
        (f"https://{HOST}@evil.example{PATH}", "event URL has user info"),
        (f"https://evil.example@{HOST}{PATH}", "event URL has user info"),
        (f"https://user:pw@{HOST}{PATH}", "event URL has user info"),
        (f"https://{HOST}.evil.example{PATH}", "is not in allowed_event_hosts"),
        (f"https://x{HOST}{PATH}", "is not in allowed_event_hosts"),
        (f"https://sub.{HOST}{PATH}", "is not in allowed_event_hosts"),
        (f"https://{HOST}.{PATH}", "is not in allowed_event_hosts"),  # trailing dot
        (f"https://{HOST}%2eevil.example{PATH}", "is not in allowed_event_hosts"),
        ("https://127.0.0.1/v1/beacon/impression/1", "event URL host is an IP address"),
        ("https://169.254.169.254/latest/meta-data/", "event URL host is an IP address"),
        ("https://[::1]/v1/beacon/impression/1", "event URL host is an IP address"),
        ("https://[::ffff:10.0.0.1]/x", "event URL host is an IP address"),
        ("https://2130706433/v1/beacon/impression/1", "is not in allowed_event_hosts"),
        ("https://0x7f.1/v1/beacon/impression/1", "is not in allowed_event_hosts"),
        ("https://localhost/v1/beacon/impression/1", "is not in allowed_event_hosts"),
        (f"https://{HOST}:8443{PATH}",
         f"event URL host '{HOST}:8443' is not in allowed_event_hosts"),
        (f"https://{HOST}:99999{PATH}", "event URL cannot be parsed (bad host or port)"),
        (f"https://{HOST}:0x1bb{PATH}", "event URL cannot be parsed"),
        ("https://\u0435vents.newtail-media.newtail.com.br/v1/beacon/impression/1",  # Cyrillic
         "event URL has spaces, control or non-ASCII characters"),
        ("https://xn--vents-3ve.newtail-media.newtail.com.br/v1/beacon/impression/1",
         "is not in allowed_event_hosts"),
        (f"https://{HOST}\\@evil.example/", "event URL has a backslash"),
        (f"https://{HOST}{PATH}\r\nHost: evil.example", "spaces, control or non-ASCII"),
        (f"https://{HOST}/v1/beacon/impression/A D", "spaces, control or non-ASCII"),
        (f"https://{HOST}{PATH}#frag", "event URL has a fragment"),
        (f"https://{HOST}{PATH}#", "event URL has a fragment"),
        ("https:///v1/beacon/impression/1", "event URL has no host"),
        (f"https:{HOST}{PATH}", "event URL has no host"),
        ("javascript:alert(1)", "event URL must be https://"),
        ("file:///etc/passwd", "event URL must be https://"),
        (f"//{HOST}{PATH}", "event URL must be https://"),
        (f"https://{HOST}/v1/beacon/impression/{'A' * 5000}", "characters; at most 4096"),
        (signed("click", "AD-1"), "event URL is a click URL, not a impression URL"),
        (f"https://{HOST}/v1/beacon/conversion", "event URL is a conversion URL"),
    ],
)  # fmt: skip
def test_hostile_urls_are_refused_and_nothing_is_sent(url, reason):
    event = ad(url=url)
    if url is None:
        del event["ad_event_url"]
    assert reason in refused(event)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (GOOD, GOOD),
        (GOOD.replace("https://", "HTTPS://").replace(HOST, HOST.upper()), None),
        (GOOD.replace(HOST, f"{HOST}:443"), None),
        (GOOD.replace(HOST, "newtail-media.newtail.com.br"), None),
        (GOOD.replace(HOST, "events.staging.example:8443"), None),
        (f"https://{HOST}/v1/beacon/impression/AD-1", None),  # no query
        (f"https://{HOST}/v2/events/new-shape?token=x", None),  # Newtail may change its URLs
    ],
)
def test_allowed_urls_are_sent_exactly_as_they_came(url, expected):
    sent_url, body = sent(ad(url=url), check="sign=" in url)
    assert sent_url == (expected or url)
    assert body == {"session_id": "s-1", "user_id": "u-7"}


def test_event_endpoint_gets_the_checked_urls_path_and_query():
    settings = {"event_endpoint": "http://egress.internal:3128/newtail/"}
    sent_url, _ = sent(ad(), settings, check=False)
    assert sent_url == "http://egress.internal:3128/newtail" + GOOD.split(HOST, 1)[1]
    # the guard still applies: the URL's host decides whether anything is sent
    hostile = ad(url=f"https://evil.example{PATH}")
    assert "is not in allowed_event_hosts" in refused(hostile, settings)


def test_the_url_may_come_as_kind_url():
    event = ad("view")
    event["view_url"] = event.pop("ad_event_url")
    sent_url, _ = sent(event)
    assert sent_url == signed("view", "AD-1")


# -- ad events -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "settings", "body"),
    [
        (ad(), None, {"session_id": "s-1", "user_id": "u-7"}),
        (ad(user_id=None), None, {"session_id": "s-1"}),
        ({**ad(session_id=None), "client_id": "555.1789990000"}, None,
         {"session_id": "555.1789990000", "user_id": "u-7"}),
        (ad(persistent="p-9"), {"fields": {"session_id": "{{event.persistent}}"}},
         {"session_id": "p-9", "user_id": "u-7"}),
        (ad(user_id=1234), None, {"session_id": "s-1", "user_id": "1234"}),
    ],
)  # fmt: skip
def test_ad_event_bodies(event, settings, body):
    event = {k: v for k, v in event.items() if v is not None}
    assert sent(event, settings)[1] == body


def test_an_ad_event_without_session_is_refused():
    event = {k: v for k, v in ad().items() if k != "session_id"}
    assert refused(event) == "no session_id: Newtail needs one on every ad event"


def test_unknown_events_are_refused_unless_mapped():
    assert refused({"event_name": "page_view"}) == (
        "event 'page_view' is no ad event or purchase for Newtail (map it with event_map)"
    )
    event = {**ad(), "event_name": "promo_click"}
    sent_url, _ = sent(
        {**event, "ad_event_url": signed("click", "AD-1")}, {"event_map": {"promo_click": "click"}}
    )
    assert "/click/AD-1" in sent_url


def test_newtails_dedupe_windows():
    assert TAG.dedupe_key(ad(), _settings()) == ("impression:AD-1:u-7:s-1", 60)
    assert TAG.dedupe_key(ad("click", signed("click", "AD-1")), _settings()) == (
        "click:AD-1:u-7:s-1",
        3600,
    )
    assert TAG.dedupe_key(ad("view", signed("view", "AD-1")), _settings()) is None
    assert TAG.dedupe_key(purchase(), _settings()) == ("conversion:pub-1:ORD-1", 30 * 86400)
    assert TAG.dedupe_key({"event_name": "page_view"}, _settings()) is None
    assert TAG.dedupe_key(ad(url=12), _settings()) is None


def test_dedupe_in_the_pipeline():
    click = ad("click", signed("click", "AD-1"))
    view = ad("view", signed("view", "AD-1"))
    events = [
        ad(), ad(), ad(user_id="u-8"), ad(session_id="s-2"), ad(url=signed("impression", "AD-2")),
        click, click, view, view, purchase(), purchase(), purchase(transaction_id="ORD-2"),
    ]  # fmt: skip
    traces, recorder = run(events)
    assert [t.reason for t in traces] == [
        None, "dedupe", None, None, None,  # per ad, user and device
        None, "dedupe",
        None, None,  # views: Newtail documents no window
        None, "dedupe", None,  # conversions: per order
    ]  # fmt: skip
    assert len(recorder.submitted) == 9


def test_impression_window_expires_after_a_minute():
    clock = [NOW]
    spec = load_text(container_yaml(), "newtail.yaml", registry())
    container = Container(
        spec, RecorderDelivery(), MemoryDedupe(clock=lambda: clock[0]), lambda: NOW
    )

    def fired(event: dict[str, Any]) -> bool:
        _, traces = asyncio.run(container.run_events([event], None, None, NOW, trace=True))
        return traces[0].tags[0].fired

    click = ad("click", signed("click", "AD-1"))
    assert fired(ad()) and fired(click)
    clock[0] += 59
    assert not fired(ad()) and not fired(click)
    clock[0] += 2
    assert fired(ad())  # 61 s: impressions count again
    assert not fired(click)  # clicks: an hour
    clock[0] += 3600
    assert fired(click)


# -- conversions -----------------------------------------------------------------------------------


def purchase(**extra: Any) -> dict[str, Any]:
    event = {
        "event_name": "purchase",
        "transaction_id": "ORD-1",
        "client_id": "555.1789990000",
        "user_id": "u-7",
        "items": [{"item_id": "SKU-1", "item_name": "Sock", "price": 19.9, "quantity": 3}],
        "user_data": {"email_address": "Ana@Example.com"},
        "x-sst-system_properties": {"request_start_time_ms": NOW * 1000 - 2500},
    }
    return {**event, **extra}


def conversion(event: dict[str, Any], settings: dict[str, Any] | None = None) -> dict[str, Any]:
    url, body = sent(event, settings)
    assert url == "https://events.newtail-media.newtail.com.br/v1/beacon/conversion"
    return body  # type: ignore[no-any-return]


def test_a_purchase_becomes_a_conversion():
    assert conversion(purchase()) == {
        "publisher_id": "pub-1",
        "user_id": "u-7",
        "session_id": "555.1789990000",
        "order_id": "ORD-1",
        "created_at": "2026-09-21T14:13:17Z",
        "items": [{"sku": "SKU-1", "quantity": 3, "price": 19.9, "promotional_price": 19.9}],
        "channel": "ecommerce",
        "email_hashed": sha("ana@example.com"),
    }


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        # GA4's price is the unit price paid; discount is per unit: list = price + discount
        ({"item_id": "A", "price": 19.9, "quantity": 3, "discount": 5.1},
         {"sku": "A", "quantity": 3, "price": 25, "promotional_price": 19.9}),
        # the beacon client keeps Newtail's list price
        ({"item_id": "A", "price": 19.9, "quantity": 3, "item_list_price": 25, "discount": 5.1},
         {"sku": "A", "quantity": 3, "price": 25, "promotional_price": 19.9}),
        ({"item_id": 42, "price": "10.50"},
         {"sku": "42", "quantity": 1, "price": 10.5, "promotional_price": 10.5}),
        ({"sku": "B", "price": 0, "quantity": 0.5, "seller_id": 9, "product_id": "P-1"},
         {"sku": "B", "quantity": 0.5, "price": 0, "promotional_price": 0, "seller_id": "9",
          "product_id": "P-1"}),
        ({"item_id": "C", "price": 0.1, "quantity": 3, "discount": 0.2},
         {"sku": "C", "quantity": 3, "price": 0.3, "promotional_price": 0.1}),
    ],
)  # fmt: skip
def test_items_carry_unit_prices_never_multiplied(item, expected):
    assert conversion(purchase(items=[item]))["items"] == [expected]


@pytest.mark.parametrize(
    ("item", "warning"),
    [
        ({"price": 1}, "items[0] not sent: no item_id"),
        ({"item_id": "A", "price": 1, "quantity": 0}, "quantity is not a number above 0"),
        ({"item_id": "A", "price": 1, "quantity": "many"}, "quantity is not a number above 0"),
        ({"item_id": "A"}, "items[0] not sent: price is not a number of at least 0"),
        ({"item_id": "A", "price": -1}, "price is not a number of at least 0"),
    ],
)
def test_items_newtail_would_refuse_are_left_out(item, warning):
    ok = {"item_id": "OK", "price": 1}
    (trace,), _ = run([purchase(items=[item, ok])])
    body = msgspec.json.decode(trace.requests[0].body)
    assert [i["sku"] for i in body["items"]] == ["OK"]
    (found,) = trace.warnings
    assert found.startswith("items[0] not sent: ") and found.endswith(warning)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"transaction_id": None}, "no order id: Newtail needs transaction_id (or order_id)"),
        ({"user_data": None}, "no email: Newtail needs email_hashed"),
        ({"user_data": {"email_address": "not an email"}}, "no email"),
        ({"user_data": {"sha256_email_address": "abc"}}, "no email"),
        ({"items": None}, "no items: Newtail needs at least one item"),
        ({"items": [{"price": 1}]}, "no items"),
        ({"client_id": None}, "no session_id: Newtail needs one"),
        ({"publisher_id": "pub-2"}, "publisher_id 'pub-2' in the event is not this tag's"),
        ({"created_at": "yesterday"}, "created_at 'yesterday' is not an ISO 8601 date-time"),
        ({"created_at": -5}, "created_at '-5' is not a date-time"),
        ({"created_at": 1e30}, "created_at is out of range"),
    ],
)  # fmt: skip
def test_conversions_newtail_would_refuse_are_not_sent(change, reason):
    event = {k: v for k, v in {**purchase(), **change}.items() if v is not None}
    assert reason in refused(event)


@pytest.mark.parametrize(
    ("created_at", "expected"),
    [
        ("2024-05-01T09:30:00-03:00", "2024-05-01T12:30:00Z"),
        ("2024-05-01T12:30:00.123Z", "2024-05-01T12:30:00Z"),
        ("2024-05-01T12:30:00", "2024-05-01T12:30:00Z"),  # naive: UTC, as Newtail's old docs say
        (1714566600, "2024-05-01T12:30:00Z"),
        (1714566600000, "2024-05-01T12:30:00Z"),
        ("1714566600", "2024-05-01T12:30:00Z"),
    ],
)
def test_created_at_is_iso_8601_in_utc(created_at, expected):
    assert conversion(purchase(created_at=created_at))["created_at"] == expected


def test_user_and_session_ids():
    # no user id: the hashed email stands in (Newtail's own app uses the email)
    body = conversion({k: v for k, v in purchase().items() if k != "user_id"})
    assert body["user_id"] == sha("ana@example.com")
    # a beacon's persistent session id wins over the client id
    assert conversion(purchase(session_id="s-1"))["session_id"] == "s-1"
    # GA's client id, also when the ga4 client keeps it in x-ga-js_client_id (FPID mode)
    assert conversion(purchase())["session_id"] == "555.1789990000"
    fpid = purchase(client_id="Zm9v.1789990000", **{"x-ga-js_client_id": "555.1789990000"})
    assert conversion(fpid)["session_id"] == "555.1789990000"
    # sgtm's own _dcid client id when there is no GA id
    assert conversion(purchase(client_id="dcid.1.1789990000000.1"))["session_id"] == (
        "dcid.1.1789990000000.1"
    )
    settings = {"fields": {"user_id": "{{event.crm_id}}", "session_id": "{{event.visitor}}"}}
    body = conversion(purchase(crm_id="CRM-1", visitor="v-1"), settings)
    assert (body["user_id"], body["session_id"]) == ("CRM-1", "v-1")


def test_personal_data_is_hashed_per_newtails_rules():
    body = conversion(
        purchase(
            user_data={
                "email_address": " Ana.Maria@GMail.com ",  # Newtail keeps the dots
                "phone_number": "(11) 91234-5678",
                "cpf": "123.456.789-09",
                "address": {"first_name": " Ana Maria ", "last_name": "da Silva",
                            "region": "sp", "city": "São Paulo"},
                "gender": "female",
            }
        ),
        {"phone_country_code": "55"},
    )  # fmt: skip
    assert body["email_hashed"] == sha("ana.maria@gmail.com")
    assert body["phone_hashed"] == sha("+5511912345678")
    assert body["social_id_hashed"] == sha("12345678909")
    assert body["first_name_hashed"] == sha("anamaria")
    assert body["last_name_hashed"] == sha("dasilva")
    assert (body["uf"], body["city"], body["gender"]) == ("SP", "São Paulo", "F")
    assert body["is_company"] is False  # a CPF: a person


def test_hashes_given_by_the_site_are_kept_never_hashed_twice():
    email, phone = sha("ana@example.com"), sha("+5511912345678")
    body = conversion(
        purchase(
            user_data={
                "sha256_email_address": email.upper(),
                "phone_number": phone,  # a hash where clear text was expected
                "sha256_social_id": sha("12345678000199"),
                "cnpj": "12.345.678/0001-99",
                "address": [{"sha256_first_name": sha("ana")}],
            }
        )
    )
    assert body["email_hashed"] == email
    assert body["phone_hashed"] == phone
    assert body["social_id_hashed"] == sha("12345678000199")
    assert body["first_name_hashed"] == sha("ana")
    assert body["is_company"] is True  # a CNPJ: a company


@pytest.mark.parametrize(
    ("event", "settings", "expected"),
    [
        ({}, None, {}),
        ({}, {"channel": "app", "brand": "Shop BR"}, {"channel": "app", "brand": "Shop BR"}),
        ({"channel": "physical_store", "brand": "Outlet"}, {"brand": "Shop BR"},
         {"channel": "physical_store", "brand": "Outlet"}),
        ({"gender": "M", "is_company": True}, None, {"gender": "M", "is_company": True}),
        ({"gender": "unknown"}, None, {}),
        ({"uf": "rj"}, None, {"uf": "RJ"}),
        ({"brand": "Outlet"}, {"fields": {"brand": None}}, {}),
        ({}, {"fields": {"is_company": "true", "gender": "o"}},
         {"is_company": True, "gender": "O"}),
    ],
)  # fmt: skip
def test_plain_fields(event, settings, expected):
    body = conversion(purchase(**event), settings)
    fields = ("channel", "brand", "gender", "uf", "is_company")
    assert {k: body[k] for k in fields if k in body} == {"channel": "ecommerce", **expected}


# -- Newtail's hashing rules -----------------------------------------------------------------------


def test_newtail_normalization():
    assert normalize.newtail_text(" Allan ") == "allan"
    # Newtail's docs print 8c01ade3... for create_hash(' Allan '): that is the hash of the raw
    # ' Allan ', not of the "allan" its own rule and code produce. sgtm follows the rule.
    assert sha(" Allan ").startswith("8c01ade3cb71")
    assert sha("allan").startswith("5fd726bc56c3")
    assert normalize.newtail_text("Ana\tMaria \n") == "anamaria"
    assert normalize.newtail_email(" Ana@Example.COM ") == "ana@example.com"
    assert normalize.newtail_email("ana") is None
    assert normalize.newtail_social_id("123.456.789-09") == "12345678909"
    assert normalize.newtail_social_id("12.345.678/0001-99") == "12345678000199"
    assert normalize.newtail_social_id("12.ABC.345/01DE-35") == "12abc34501de35"  # CNPJ from 2026
    assert normalize.newtail_social_id(1234567890) == "01234567890"
    assert normalize.newtail_social_id("123") is None


# -- sgtm emulate: beacon requests and a GA4 hit in, exact requests out ----------------------------


def test_emulate_shows_the_exact_requests(tmp_path):
    config = tmp_path / "shop.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            clients:
              - {{name: beacon, type: beacon}}
              - {{name: ga4, type: ga4}}
            triggers:
              everything: {{all: []}}
            tags:
              - name: newtail
                type: newtail
                triggers: [everything]
                settings:
                  publisher_id: pub-1
                  allowed_event_hosts: [{HOST}]
            """
        )
    )

    def beacon(kind: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"method": "POST", "url": f"/beacon/{kind}", "body": json.dumps(body),
                "headers": {"content-type": "text/plain"}}  # fmt: skip

    ids = {"session_id": "s-1", "user_id": "u-7"}
    hit = (
        "/g/collect?v=2&tid=G-1&cid=555.1789990000&sid=1789990000&en={en}&uid=u-7"
        "&ep.user_data.email=ana%40example.com&cu=BRL&ep.transaction_id=ORD-9"
        "&pr1=idSKU-1~nmSock~pr19.9~qt3~ds5.1"
    )
    lines = [
        beacon("impression", {**ids, "impression_url": signed("impression", "AD-1")}),
        beacon("view", {**ids, "view_url": signed("view", "AD-1")}),
        beacon("click", {**ids, "click_url": signed("click", "AD-1")}),
        beacon("impression", {**ids, "impression_url": "https://169.254.169.254/latest"}),
        {"url": hit.format(en="purchase")},
        *({"url": hit.format(en=en)} for en in
          ("page_view", "view_item", "add_to_cart", "begin_checkout", "generate_lead", "sign_up")),
    ]  # fmt: skip
    done = run_cli(
        "emulate", "-c", str(config), "--requests", "-", "--now", str(NOW),
        stdin="\n".join(json.dumps(line) for line in lines), env={"PATH": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    outputs = [json.loads(line) for line in done.stdout.splitlines()]
    tags = [o["events"][0]["tags"][0] for o in outputs]
    for kind, tag in zip(("impression", "view", "click"), tags, strict=False):
        (request,) = tag["requests"]
        assert request == {
            "method": "POST",
            "url": signed(kind, "AD-1"),
            "headers": {"Content-Type": "application/json", "Accept": "application/json"},
            "body": ids,
        }
    assert outputs[3]["response"]["status"] == 202  # the beacon is answered; nothing is sent
    assert tags[3]["reason"] == "invalid: event URL host is an IP address"
    (request,) = tags[4]["requests"]
    assert request["body"] == {
        "publisher_id": "pub-1",
        "user_id": "u-7",
        "session_id": "555.1789990000",
        "order_id": "ORD-9",
        "created_at": "2026-09-21T14:13:20Z",
        "items": [{"sku": "SKU-1", "quantity": 3, "price": 25, "promotional_price": 19.9}],
        "channel": "ecommerce",
        "email_hashed": sha("ana@example.com"),
    }
    assert problems(received("/v1/beacon/conversion", request["body"])) is None
    for tag in tags[5:]:
        assert tag["fired"] is False
        assert tag["reason"].endswith(
            "is no ad event or purchase for Newtail (map it with event_map)"
        )


# -- settings --------------------------------------------------------------------------------------


def _settings(**overrides: Any) -> NewtailSettings:
    return msgspec.convert(
        {"publisher_id": "pub-1", "allowed_event_hosts": ALLOWED, **overrides}, NewtailSettings
    )


def test_allowed_hosts_are_normalized():
    assert _settings(
        allowed_event_hosts=[" Events.Example.COM ", "a.example:443"]
    ).allowed_event_hosts == [
        "events.example.com",
        "a.example",
    ]


def test_allowed_event_hosts_default_to_the_documented_hosts():
    settings = msgspec.convert({"publisher_id": "pub-1"}, NewtailSettings)
    assert settings.allowed_event_hosts == [
        "events.newtail-media.newtail.com.br",
        "newtail-media.newtail.com.br",
        "events-api.ads.vtex.com",
    ]
    default = {"allowed_event_hosts": None}
    for host in settings.allowed_event_hosts:
        url = signed("click", "AD-1", host)
        click = {"event_name": "ad_click", "session_id": "s-1", "click_url": url}
        assert sent(click, default)[0] == url
    evil = signed("click", "AD-1", "evil.example")
    click = {"event_name": "ad_click", "session_id": "s-1", "click_url": evil}
    assert "is not in allowed_event_hosts" in refused(click, default)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"allowed_event_hosts": []}, "allowed_event_hosts: empty, so no ad event could be sent"),
        ({"allowed_event_hosts": ["127.0.0.1"]}, "is an IP address; name the host"),
        ({"allowed_event_hosts": ["[::1]"]}, "allowed_event_hosts: '[::1]'"),
        ({"allowed_event_hosts": ["*.newtail.com.br"]}, "not a host name"),
        ({"allowed_event_hosts": ["https://events.example"]}, "bad port"),
        ({"allowed_event_hosts": ["events.example:70000"]}, "bad port"),
        ({"allowed_event_hosts": ["localhost"]}, "not a host name"),
        ({"allowed_event_hosts": ["{{event.host}}"]}, "cannot be a template"),
        ({"publisher_id": " "}, "publisher_id: empty"),
        ({"endpoint": "{{event.url}}"}, "endpoint: cannot be a template"),
        ({"event_endpoint": "ftp://x"}, "event_endpoint: expected a base URL"),
        ({"fields": {"email_hashed": "x"}}, "fields: unknown field 'email_hashed'"),
        ({"event_map": {"x": "purchase"}}, "event_map"),
        ({"phone_country_code": "0055"}, "phone_country_code: a country calling code of 1-3"),
    ],
)  # fmt: skip
def test_settings_are_checked_at_load(settings, message):
    with pytest.raises(ConfigErrors) as info:
        load_text(container_yaml(settings), "newtail.yaml", registry())
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (202, "done"),
        (200, "done"),
        (422, "dead"),
        (408, "retry"),
        (429, "retry"),
        (502, "retry"),
        (400, "dead"),
    ],
)
def test_classify(status, outcome):
    assert TAG.classify(status, {}, b"").outcome == outcome
    assert TAG.classify(422, {}, b"not json").reason == "HTTP 422: not json"
