"""First-party identity: cookie domains from the bundled Public Suffix List, Meta's _fbp/_fbc, the
GA4 client's FPID/FPLC (`client_id: server`), consent opt-out, and a real server round trip."""

from __future__ import annotations

import re
import socket
import textwrap
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import pytest
from sgtm_plugins.ga4 import GA4Client, GA4Settings
from sgtm_plugins.ga4.fpid import FPID_MAX_AGE, FPLC_MAX_AGE, fplc_for, new_fpid, parse_fpid
from sgtm_plugins.meta_capi.cookies import meta_cookies

from sgtm.config import load_text
from sgtm.container import Container, HandleResult
from sgtm.dedupe import MemoryDedupe
from sgtm.delivery.recorder import RecorderDelivery
from sgtm.kit import cookies as kit_cookies
from sgtm.kit.cookies import CookieSettings, cookie_domain, is_cookie_value, query_param
from sgtm.plugin import SYSTEM_RANDOM, ClientContext, ContainerInfo, Cookie
from sgtm.request import HitRequest
from tests.installed import registry
from tests.servers import SgtmServer

NOW = 1_700_000_000.5
NOW_MS = 1_700_000_000_500
FBP = re.compile(r"fb\.(\d)\.(\d{13})\.(\d{1,10})")
FPID = re.compile(r"FPID2\.(\d)\.([A-Za-z0-9%]{44,60})\.(\d{10})")
# Real cookies written by Google's sGTM (public captures): value -> event data client_id.
REAL_FPIDS = {
    "FPID2.2.2vwfEqQnm1fbTyLngcbupbCN7jTzwZsEQcaBdDulNzI%3D.1775537645": (
        "2vwfEqQnm1fbTyLngcbupbCN7jTzwZsEQcaBdDulNzI=.1775537645"
    ),
    "FPID2.3.lyIq69k%2BIIPzNjhtIB2fAiohcIUTdA%2FJGmQqqBkQcoQ%3D.1699216512": (
        "lyIq69k+IIPzNjhtIB2fAiohcIUTdA/JGmQqqBkQcoQ=.1699216512"
    ),
}


def ctx(consent_default: str = "granted") -> ClientContext:
    info = ContainerInfo(name="t", consent_default=consent_default)
    return ClientContext(client_name="c", container=info, now=NOW)


def request(host: str = "sgtm.shop.example", cookie: str = "", **headers: str) -> HitRequest:
    all_headers = {"cookie": cookie, **headers} if cookie else dict(headers)
    return HitRequest(method="POST", path="/x", headers=all_headers, host=host)


# --- cookie domains ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "setting", "domain"),
    [
        ("sgtm.shop.example", "auto", "shop.example"),
        ("shop.com.br", "auto", "shop.com.br"),
        ("www.loja.com.br", "auto", "loja.com.br"),
        ("sgtm.a.b.loja.com.br", "auto", "loja.com.br"),
        ("www.example.co.uk", "auto", "example.co.uk"),
        ("Sgtm.Shop.Example.", "auto", "shop.example"),
        ("shop.github.io", "auto", "shop.github.io"),  # the PSL's private section counts too
        ("com.br", "auto", None),
        ("github.io", "auto", None),
        ("localhost", "auto", None),
        ("127.0.0.1", "auto", None),
        ("[::1]", "auto", None),
        ("2001:db8::1", "auto", None),
        ("", "auto", None),
        ("sgtm.shop.example", "host", None),
        ("sgtm.shop.example", "shop.example", "shop.example"),
        ("shop.example", "shop.example", "shop.example"),
        ("sgtm.shop.example", "sgtm.shop.example", "sgtm.shop.example"),
        ("sgtm.loja.com.br", "shop.example", "loja.com.br"),  # not inside it: auto
        ("evilshop.example", "shop.example", "evilshop.example"),
        ("shop.example;secure", "auto", None),
        ("a b.shop.example", "auto", None),
        ("例子.中国", "auto", None),
        ("xn--fsqu00a.xn--fiqs8s", "auto", "xn--fsqu00a.xn--fiqs8s"),
    ],
)
def test_cookie_domain(host: str, setting: str, domain: str | None) -> None:
    assert cookie_domain(host, CookieSettings(domain=setting)) == domain


def test_public_suffix_list_is_read_from_the_package_never_fetched(monkeypatch) -> None:
    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("network access")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    kit_cookies._psl.cache_clear()
    try:
        assert cookie_domain("www.loja.com.br", CookieSettings()) == "loja.com.br"
    finally:
        kit_cookies._psl.cache_clear()


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"domain": "com.br"}, "is a public suffix"),
        ({"domain": "co.uk"}, "is a public suffix"),
        ({"domain": "shop example"}, "is not auto, host or a domain name"),
        ({"domain": "shop.example;x=1"}, "is not auto, host or a domain name"),
        ({"same_site": "None", "secure": False}, "same_site: None needs secure: true"),
    ],
)
def test_cookie_settings_errors(settings: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        CookieSettings(**settings)


def test_explicit_domain_is_normalized() -> None:
    assert CookieSettings(domain=" .Shop.Example ").domain == "shop.example"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("fb.1.1700000000000.123", True),
        ("FPID2.2.abc%3D.1700000000", True),
        ("a;b", False),
        ("a b", False),
        ('a"b', False),
        ("a,b", False),
        ("a\\b", False),
        ("é", False),
        ("", False),
        ("x" * 1025, False),
        (None, False),
        (12, False),
    ],
)
def test_is_cookie_value(value: Any, ok: bool) -> None:
    assert is_cookie_value(value) is ok


@pytest.mark.parametrize(
    ("url", "value"),
    [
        ("https://www.shop.example/p?fbclid=IwAR1-Ab_c&x=1", "IwAR1-Ab_c"),
        ("https://www.shop.example/p?x=1&fbclid=a%2Bb&fbclid=second", "a+b"),
        ("www.shop.example/?fbclid=abc", "abc"),
        ("https://www.shop.example/p?fbclid=", ""),
        ("https://www.shop.example/p#fbclid=abc", None),
        ("https://www.shop.example/p", None),
        ("http://[::1?fbclid=abc", None),
        (None, None),
        (123, None),
    ],
)
def test_query_param(url: Any, value: str | None) -> None:
    assert query_param(url, "fbclid") == value


# --- Meta cookies -----------------------------------------------------------------------------


def run_meta(
    req: HitRequest, events: list[dict[str, Any]] | None = None, page: str | None = None, **kw: Any
) -> tuple[list[dict[str, Any]], ClientContext]:
    events = [{"event_name": "page_view"}] if events is None else events
    if page is not None:  # the page URL the client wrote into its events
        for event in events:
            event.setdefault("page_location", page)
    context = ctx(kw.pop("consent_default", "granted"))
    set_cookies = kw.pop("set_cookies", True)
    meta_cookies(req, events, CookieSettings(**kw), context, set_cookies=set_cookies)
    return events, context


def test_new_fbp_and_fbc_on_a_multi_part_tld() -> None:
    page = "https://www.loja.com.br/p?fbclid=IwAR3xYz-_Case"
    (event,), context = run_meta(request("sgtm.loja.com.br"), page=page)
    fbp, fbc = event["x-fb-ck-fbp"], event["x-fb-ck-fbc"]
    match = FBP.fullmatch(fbp)
    assert match and match[1] == "2" and int(match[2]) == NOW_MS and int(match[3]) < 2147483647
    assert fbc == f"fb.2.{NOW_MS}.IwAR3xYz-_Case"
    assert [c.header_value() for c in context.cookies] == [
        f"_fbp={fbp}; Path=/; Max-Age=7776000; Domain=loja.com.br; Secure; SameSite=Lax",
        f"_fbc={fbc}; Path=/; Max-Age=7776000; Domain=loja.com.br; Secure; SameSite=Lax",
    ]


def test_fbp_random_part_varies() -> None:
    values = {run_meta(request())[0][0]["x-fb-ck-fbp"] for _ in range(20)}
    assert len(values) == 20


@pytest.mark.parametrize(
    ("host", "index", "domain"),
    [("localhost", 0, None), ("127.0.0.1", 0, None), ("sgtm.shop.example", 1, "shop.example")],
)
def test_index_and_domain_by_host(host: str, index: int, domain: str | None) -> None:
    (event,), context = run_meta(request(host))
    assert event["x-fb-ck-fbp"].startswith(f"fb.{index}.")
    assert context.cookies[0].domain == domain


def test_existing_cookies_kept_byte_for_byte_and_refreshed() -> None:
    cookie = "_fbp=fb.1.1600000000000.987654321; _fbc=fb.1.1600000000000.SameClick"
    page = "https://www.shop.example/?fbclid=SameClick"
    (event,), context = run_meta(request(cookie=cookie), page=page)
    assert event["x-fb-ck-fbp"] == "fb.1.1600000000000.987654321"
    assert event["x-fb-ck-fbc"] == "fb.1.1600000000000.SameClick"
    assert [(c.name, c.max_age) for c in context.cookies] == [("_fbp", 7776000), ("_fbc", 7776000)]


def test_a_new_click_id_replaces_the_old_fbc() -> None:
    cookie = "_fbc=fb.1.1600000000000.OldClick"
    (event,), _ = run_meta(request(cookie=cookie), page="https://www.shop.example/?fbclid=NewClick")
    assert event["x-fb-ck-fbc"] == f"fb.1.{NOW_MS}.NewClick"


def test_existing_fbc_without_a_click_in_the_page_is_kept() -> None:
    (event,), _ = run_meta(request(cookie="_fbc=fb.1.1600000000000.Old"), page="https://s.example/")
    assert event["x-fb-ck-fbc"] == "fb.1.1600000000000.Old"


def test_invalid_cookies_are_replaced() -> None:
    (event,), _ = run_meta(request(cookie="_fbp=garbage; _fbc=fb.x.1.y"))
    assert FBP.fullmatch(event["x-fb-ck-fbp"]) and "x-fb-ck-fbc" not in event


def test_value_the_hit_carries_is_used_when_the_cookie_is_missing() -> None:
    events = [{"event_name": "page_view", "x-fb-ck-fbp": "fb.1.1500000000000.11"}]
    (event,), context = run_meta(request(), events)
    assert event["x-fb-ck-fbp"] == "fb.1.1500000000000.11"
    assert context.cookies[0].value == "fb.1.1500000000000.11"


def test_empty_fbclid_is_no_click() -> None:
    (event,), context = run_meta(request(), page="https://www.shop.example/?fbclid=")
    assert "x-fb-ck-fbc" not in event and context.dropped == {}


def test_fbclid_from_the_referer_when_the_page_has_none() -> None:
    req = request(referer="https://www.shop.example/landing?fbclid=FromReferer")
    (event,), _ = run_meta(req, page="https://www.shop.example/next")
    assert event["x-fb-ck-fbc"] == f"fb.1.{NOW_MS}.FromReferer"


@pytest.mark.parametrize("fbclid", ["a%3Bb", "a%20b", "%C3%A9", "a%0D%0ASet-Cookie:x", "x" * 1100])
def test_unsafe_fbclid_sets_no_fbc(fbclid: str) -> None:
    (event,), context = run_meta(request(), page=f"https://www.shop.example/?fbclid={fbclid}")
    assert "x-fb-ck-fbc" not in event
    assert [c.name for c in context.cookies] == ["_fbp"]
    assert context.dropped == {"identity.invalid_fbclid": 1}


@pytest.mark.parametrize(
    ("events", "consent_default", "set"),
    [
        ([{"consent_state": {"ad_storage": False}}], "granted", False),
        ([{"consent_state": {"ad_storage": True}}], "denied", True),
        ([{}], "denied", False),
        ([{}, {"consent_state": {"ad_storage": "denied"}}], "granted", False),
        (
            [
                {
                    "x-sst-system_properties": {
                        "consent": {"consentGrantedState": {"ad_storage": False}}
                    }
                }
            ],
            "granted",
            False,
        ),
        ([], "granted", False),
    ],
)
def test_meta_cookies_need_ad_storage(
    events: list[dict[str, Any]], consent_default: str, set: bool
) -> None:
    page = "https://www.shop.example/?fbclid=abc"
    out, context = run_meta(request(), events, page, consent_default=consent_default)
    assert bool(context.cookies) is set
    assert any("x-fb-ck-fbp" in e for e in out) is set


# The visitor's own cookies are read whatever `meta_cookies` says: reading is not setting.


def test_own_cookies_are_read_without_setting_any() -> None:
    cookie = "_fbp=fb.1.1600000000000.987654321; _fbc=fb.1.1600000000000.IwAR_Case"
    page = "https://www.shop.example/?fbclid=OtherClick"
    (event,), context = run_meta(request(cookie=cookie), page=page, set_cookies=False)
    assert event["x-fb-ck-fbp"] == "fb.1.1600000000000.987654321"
    # the cookie as the browser holds it: a new click id is the tag's to turn into an fbc
    assert event["x-fb-ck-fbc"] == "fb.1.1600000000000.IwAR_Case"
    assert context.cookies == [] and context.dropped == {}


@pytest.mark.parametrize(
    ("cookie", "carried", "fbp", "fbc"),
    [
        ("", None, None, None),  # nothing is invented when nothing is set
        ("_fbp=garbage; _fbc=fb.x.1.y", None, None, None),
        ('_fbp="fb.1.1.2;x"', None, None, None),  # not a safe cookie value
        ("", "fb.1.1500000000000.11", "fb.1.1500000000000.11", None),  # what the hit carries
        ("_fbp=fb.2.1600000000000.5", "fb.1.1500000000000.11", "fb.2.1600000000000.5", None),
    ],
)
def test_reading_takes_only_valid_values(
    cookie: str, carried: str | None, fbp: str | None, fbc: str | None
) -> None:
    events = [{"event_name": "page_view", **({"x-fb-ck-fbp": carried} if carried else {})}]
    (event,), context = run_meta(request(cookie=cookie), events, set_cookies=False)
    assert event.get("x-fb-ck-fbp") == fbp and event.get("x-fb-ck-fbc") == fbc
    assert context.cookies == []


@pytest.mark.parametrize("set_cookies", [False, True])
def test_reading_needs_ad_storage_too(set_cookies: bool) -> None:
    events = [{"event_name": "page_view", "consent_state": {"ad_storage": False}}]
    req = request(cookie="_fbp=fb.1.1600000000000.987654321")
    (event,), context = run_meta(req, events, set_cookies=set_cookies)
    assert "x-fb-ck-fbp" not in event and context.cookies == []


def test_cookie_settings_reach_the_cookies() -> None:
    _, context = run_meta(request(), domain="host", same_site="None", secure=True)
    assert (
        context.cookies[0].header_value().endswith("Path=/; Max-Age=7776000; Secure; SameSite=None")
    )
    _, context = run_meta(request(), same_site="Strict", secure=False)
    assert context.cookies[0].header_value().endswith("Domain=shop.example; SameSite=Strict")


# --- FPID / FPLC ------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "client_id"), REAL_FPIDS.items())
def test_parse_real_sgtm_fpid(value: str, client_id: str) -> None:
    parsed = parse_fpid(value)
    assert parsed is not None and (parsed.cookie, parsed.client_id) == (value, client_id)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "FPID1.2.abc.1700000000",
        "FPID2.2.abc",
        "FPID2.2.abc%3D.17000000001234",
        "FPID2.2.ab;c.1700000000",
        "FPID2.2.%00%01.1700000000",
        "FPID2.2.abc%3D.1700000000; Domain=evil",
        "GA1.1.123.456",
    ],
)
def test_parse_fpid_rejects(value: str | None) -> None:
    assert parse_fpid(value) is None


@pytest.mark.parametrize(("domain", "labels"), [("loja.com.br", 3), ("shop.example", 2), (None, 1)])
def test_new_fpid_format(domain: str | None, labels: int) -> None:
    fpid = new_fpid(domain, NOW, SYSTEM_RANDOM)
    match = FPID.fullmatch(fpid.cookie)
    assert match and int(match[1]) == labels and match[3] == "1700000000"
    assert parse_fpid(fpid.cookie) == fpid
    assert len({new_fpid(domain, NOW, SYSTEM_RANDOM).client_id for _ in range(50)}) == 50


def test_fplc_is_derived_from_fpid_and_hides_it() -> None:
    fpid = new_fpid("shop.example", NOW, SYSTEM_RANDOM)
    assert (
        fplc_for(fpid) == fplc_for(fpid) != fplc_for(new_fpid("shop.example", NOW, SYSTEM_RANDOM))
    )
    assert fpid.client_id.split(".")[0] not in fplc_for(fpid)
    assert is_cookie_value(fplc_for(fpid))


GA4_HIT = "v=2&tid=G-TEST&cid=111.222&en=page_view&dl=https%3A%2F%2Fwww.shop.example%2F"


def ga4(
    query: str = GA4_HIT,
    cookie: str = "",
    consent_default: str = "granted",
    body: bytes = b"",
    **settings: Any,
) -> tuple[list[dict[str, Any]], list[Cookie], ClientContext]:
    client = GA4Client()
    parsed = GA4Settings(**settings)
    req = HitRequest(
        method="POST",
        path="/g/collect",
        query_string=query,
        headers={"cookie": cookie} if cookie else {},
        body=body,
        host="sgtm.shop.example",
    )
    context = ctx(consent_default)
    events = client.parse(req, parsed, context)
    response = client.respond(req, events, parsed, context)
    return events, response.cookies, context


def test_js_client_id_by_default_sets_nothing() -> None:
    (event,), cookies, _ = ga4()
    assert event["client_id"] == "111.222" and "x-ga-js_client_id" not in event
    assert cookies == []


def test_server_client_id_new_visitor() -> None:
    (event,), cookies, _ = ga4(client_id="server")
    fpid_cookie, fplc_cookie = cookies
    parsed = parse_fpid(fpid_cookie.value)
    assert parsed is not None
    assert event["client_id"] == parsed.client_id
    assert event["x-ga-js_client_id"] == "111.222"
    assert fpid_cookie.header_value() == (
        f"FPID={fpid_cookie.value}; Path=/; Max-Age={FPID_MAX_AGE}; Domain=shop.example; "
        "Secure; HttpOnly; SameSite=Lax"
    )
    assert FPID_MAX_AGE == 63072000 and FPLC_MAX_AGE == 72000
    assert fplc_cookie.header_value() == (
        f"FPLC={fplc_for(parsed)}; Path=/; Max-Age=72000; Domain=shop.example; Secure; SameSite=Lax"
    )


@pytest.mark.parametrize(("value", "client_id"), REAL_FPIDS.items())
def test_server_client_id_returning_visitor_keeps_the_fpid(value: str, client_id: str) -> None:
    (event,), cookies, _ = ga4(cookie=f"FPID={value}; FPLC=abc", client_id="server")
    assert event["client_id"] == client_id
    assert [(c.name, c.value, c.http_only) for c in cookies] == [("FPID", value, True)]


def test_a_broken_fpid_is_replaced_and_counted() -> None:
    (event,), cookies, context = ga4(cookie="FPID=FPID2.2.x;y.1", client_id="server")
    assert parse_fpid(cookies[0].value) is not None and event["client_id"] != "111.222"
    assert context.dropped["ga4.invalid_fpid"] == 1


def test_batched_hits_share_one_fpid() -> None:
    body = b"en=page_view\nen=scroll\nen=click"
    events, cookies, _ = ga4(query="v=2&tid=G-TEST&cid=1.2", body=body, client_id="server")
    assert len(events) == 3 and len({e["client_id"] for e in events}) == 1
    assert [c.name for c in cookies] == ["FPID", "FPLC"]


@pytest.mark.parametrize(
    ("consent", "consent_default", "server_id"),
    [
        ("&gcs=G100", "granted", False),  # analytics_storage denied
        ("&gcs=G110", "granted", False),
        ("&gcs=G101", "granted", True),
        ("&gcd=13r3p3r3r5l1", "granted", False),  # analytics letter p: denied
        ("", "denied", False),
        ("&gcs=G101", "denied", True),
    ],
)
def test_fpid_needs_analytics_storage(consent: str, consent_default: str, server_id: bool) -> None:
    (event,), cookies, _ = ga4(
        query=GA4_HIT + consent, consent_default=consent_default, client_id="server"
    )
    assert (event["client_id"] != "111.222") is server_id
    assert ("x-ga-js_client_id" in event) is server_id
    assert any(c.name == "FPID" for c in cookies) is server_id


def test_fpid_and_meta_cookies_consent_apart() -> None:
    # ad_storage denied, analytics granted: FPID yes, Meta no.
    (event,), cookies, _ = ga4(query=GA4_HIT + "&gcs=G101", client_id="server", meta_cookies=True)
    assert [c.name for c in cookies] == ["FPID", "FPLC"] and "x-fb-ck-fbp" not in event
    # the other way round
    (event,), cookies, _ = ga4(query=GA4_HIT + "&gcs=G110", client_id="server", meta_cookies=True)
    assert [c.name for c in cookies] == ["_fbp"] and event["client_id"] == "111.222"


def test_ga4_meta_cookies_read_the_page_location() -> None:
    query = "v=2&tid=G-1&cid=1.2&en=page_view&dl=https%3A%2F%2Fwww.shop.example%2F%3Ffbclid%3DClk-1"
    (event,), cookies, _ = ga4(query=query, meta_cookies=True)
    assert event["x-fb-ck-fbc"] == f"fb.1.{NOW_MS}.Clk-1"
    assert [c.name for c in cookies] == ["_fbp", "_fbc"]


VISITOR_COOKIE = "_fbp=fb.1.1600000000000.987654321; _fbc=fb.1.1600000000000.IwAR-1"


def _client_events(kind: str) -> tuple[list[dict[str, Any]], ClientContext]:
    """Events of each browser-facing client on default settings, for a request that carries the
    visitor's Meta cookies."""
    from sgtm_plugins.beacon import BeaconClient, BeaconSettings
    from sgtm_plugins.datalayer import DataLayerClient, DataLayerSettings

    context = ctx()
    headers = {"cookie": VISITOR_COOKIE, "content-type": "text/plain"}
    if kind == "ga4":
        events, _, context = ga4(cookie=VISITOR_COOKIE)
        return events, context
    if kind == "datalayer":
        body = b'{"event": "purchase", "page_location": "https://www.shop.example/"}'
        req = HitRequest("POST", "/data", headers=headers, body=body, host="sgtm.shop.example")
        return DataLayerClient().parse(req, DataLayerSettings(), context), context
    body = b'{"session_id": "s-1", "view_url": "https://events.example/v1/beacon/view/A"}'
    req = HitRequest("POST", "/beacon/view", headers=headers, body=body, host="sgtm.shop.example")
    return BeaconClient().parse(req, BeaconSettings(), context), context


@pytest.mark.parametrize("kind", ["ga4", "datalayer", "beacon"])
def test_clients_read_the_visitors_meta_cookies_on_default_settings(kind: str) -> None:
    (event,), context = _client_events(kind)
    assert event["x-fb-ck-fbp"] == "fb.1.1600000000000.987654321"
    assert event["x-fb-ck-fbc"] == "fb.1.1600000000000.IwAR-1"
    assert [c.name for c in context.cookies if c.name.startswith("_fb")] == []


def test_container_settings_and_emulate_output() -> None:
    text = textwrap.dedent(
        """\
        version: 1
        clients:
          - name: ga4
            type: ga4
            settings:
              client_id: server
              meta_cookies: true
              cookies: {domain: loja.com.br, same_site: Strict}
        """
    )
    spec = load_text(text, "ga4.yaml", registry())
    target = Container(spec, RecorderDelivery(), MemoryDedupe(), clock=lambda: NOW)
    req = HitRequest(method="GET", path="/g/collect", query_string=GA4_HIT, host="sgtm.loja.com.br")

    async def run() -> HandleResult:
        return await target.handle(req, trace=True)

    import asyncio

    result = asyncio.run(run())
    headers = [c.header_value() for c in result.response.cookies]
    assert [h.split("=")[0] for h in headers] == ["FPID", "FPLC", "_fbp"]
    assert all("Domain=loja.com.br; Secure" in h and h.endswith("SameSite=Strict") for h in headers)
    assert headers[0].startswith("FPID=FPID2.3.")


def test_settings_reject_unknown_values() -> None:
    text = "version: 1\nclients:\n  - {name: g, type: ga4, settings: {client_id: cookie}}\n"
    with pytest.raises(Exception, match=r"clients\[0\]\.settings\.client_id"):
        load_text(text, "ga4.yaml", registry())


# --- a real server ----------------------------------------------------------------------------


def test_real_server_sets_and_keeps_identity(tmp_path: Path) -> None:
    config = tmp_path / "ga4.yaml"
    config.write_text(
        "version: 1\nclients:\n"
        "  - {name: ga4, type: ga4, settings: {client_id: server, meta_cookies: true}}\n"
    )
    with SgtmServer(config) as server:
        hit = f"{server.url}/g/collect?{GA4_HIT}"
        first = httpx.post(hit, headers={"host": "sgtm.loja.com.br"})
        assert first.status_code == 200
        set_cookies = first.headers.get_list("set-cookie")
        assert [c.split("=")[0] for c in set_cookies] == ["FPID", "FPLC", "_fbp"]
        assert all("Domain=loja.com.br" in c for c in set_cookies)
        jar = "; ".join(c.split(";")[0] for c in set_cookies)
        again = httpx.post(hit, headers={"host": "sgtm.loja.com.br", "cookie": jar})
        assert [c.split(";")[0] for c in again.headers.get_list("set-cookie")] == [
            c.split(";")[0] for c in set_cookies if not c.startswith("FPLC")
        ]


# --- the visitor id retail-media ids are joined on --------------------------------------------


@pytest.mark.parametrize(
    ("event", "cookies", "expected"),
    [
        ({"client_id": "111.222"}, {"_ga": "GA1.1.333.444"}, "111.222"),  # a GA4 hit's own
        ({"client_id": "Zm9v.1", "x-ga-js_client_id": "111.222"}, {}, "111.222"),  # FPID mode
        ({"client_id": "dcid.1.5.6"}, {"_ga": "GA1.2.333.444"}, "333.444"),  # GA's id first
        ({"client_id": "dcid.1.5.6"}, {}, "dcid.1.5.6"),
        ({}, {"_ga": "GA1.1.333.444", "_dcid": "dcid.1.5.6"}, "333.444"),
        ({}, {"_dcid": "dcid.1.5.6"}, "dcid.1.5.6"),
        ({}, {"_ga": "GA1.1.333"}, None),  # not GA's format
        ({}, {"_ga": "GA1.1.333.444.555"}, None),
        ({}, {"_ga": "GS1.1.333.444"}, None),
        ({}, {"_ga": "GA1.1." + "1" * 30 + ".2"}, None),
        ({}, {"_dcid": "x" * 300}, None),  # too long to be an id
        ({"client_id": 7}, {"_dcid": " "}, None),
        ({}, {}, None),
    ],
)
def test_visitor_id(event: dict[str, Any], cookies: dict[str, str], expected: str | None) -> None:
    assert kit_cookies.visitor_id(event, cookies) == expected
