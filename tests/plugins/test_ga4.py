"""GA4 client: the reference examples (ga4-collect-protocol.md §7), every table, garbage."""

from __future__ import annotations

import base64
import hashlib
import math
import random
from typing import Any
from urllib.parse import quote

import msgspec
import pytest
from sgtm_plugins.ga4 import GA4Client, GA4Settings, register_client_types, user_data
from sgtm_plugins.ga4.parse import (
    MAX_ITEMS,
    MAX_PARAMS,
    MAX_VALUE_CHARS,
    consent_state,
    gcd_letter,
    parse_hits,
)

from sgtm.event import EventData
from sgtm.plugin import BadRequest, ClientContext, ContainerInfo
from sgtm.request import HitRequest

NOW = 1_700_000_123.456
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0.0.0"


class Counter(dict[str, int]):
    """A `drop` callback that remembers what was dropped."""

    def __call__(self, reason: str, count: int) -> None:
        self[reason] = self.get(reason, 0) + count


def one(query: str, body: bytes = b"", **kwargs: Any) -> EventData:
    events = parse_hits(query, body, **kwargs)
    assert len(events) == 1
    event: EventData = events[0]
    return event


def context() -> ClientContext:
    return ClientContext(client_name="ga4", container=ContainerInfo(name="test"), now=NOW)


def request(
    query: str = "",
    body: bytes = b"",
    method: str = "POST",
    path: str = "/g/collect",
    headers: dict[str, str] | None = None,
) -> HitRequest:
    return HitRequest(
        method=method,
        path=path,
        query_string=query,
        headers={"user-agent": UA} if headers is None else headers,
        body=body,
        client_ip="203.0.113.9",
    )


# --- §7 examples ------------------------------------------------------------------------------

EXAMPLE_7_1 = (
    "v=2&tid=G-EXAMPLE01&gtm=45je0000&_p=1700000000000&cid=1234567890.1700000000&ul=en-gb"
    "&sr=1440x900&_s=1&sid=1700000000&sct=1&seg=0&_ss=1&gcs=G111&uaa=x86&uab=64&uamb=0"
    "&uap=Windows&uaw=0&dl=https%3A%2F%2Fshop.example%2Fshoes%3Fsize%3D42&dt=Shoes&en=page_view"
)
EXPECTED_7_1: EventData = {
    "event_name": "page_view",
    "client_id": "1234567890.1700000000",
    "x-ga-protocol_version": "2",
    "x-ga-measurement_id": "G-EXAMPLE01",
    "x-ga-gtm_version": "45je0000",
    "x-ga-page_id": 1700000000000,
    "x-ga-request_count": 1,
    "ga_session_id": "1700000000",
    "ga_session_number": 1,
    "x-ga-mp2-seg": "0",
    "x-ga-system_properties": {"ss": "1"},
    "language": "en-gb",
    "screen_resolution": "1440x900",
    "page_location": "https://shop.example/shoes?size=42",
    "page_title": "Shoes",
    "x-ga-gcs": "G111",
    "client_hints": {
        "architecture": "x86",
        "bitness": "64",
        "mobile": False,
        "platform": "Windows",
        "wow64": False,
    },
    # Not in the abridged §7.1 listing, but required by §6 (decoded consent).
    "x-sst-system_properties": {
        "consent": {"consentGrantedState": {"ad_storage": True, "analytics_storage": True}}
    },
}


def test_example_7_1_get_page_view_whole_dict() -> None:
    assert parse_hits(EXAMPLE_7_1, b"") == [EXPECTED_7_1]


def test_example_7_1_through_the_client_adds_request_facts() -> None:
    ctx = context()
    events = GA4Client().parse(request(EXAMPLE_7_1, method="GET"), GA4Settings(), ctx)
    expected = {
        **EXPECTED_7_1,
        "ip_override": "203.0.113.9",
        "user_agent": UA,
        "x-sst-system_properties": {
            **EXPECTED_7_1["x-sst-system_properties"],
            "request_start_time_ms": 1_700_000_123_456,
        },
    }
    assert events == [expected]
    assert ctx.dropped == {}


def test_example_7_2_batched_post_lines_override_url() -> None:
    query = (
        "v=2&tid=G-EXAMPLE01&cid=1234567890.1700000000&sid=1700000000&sct=3&dt=Blog&en=page_view"
    )
    body = (
        b"en=scroll&epn.percent_scrolled=90&_et=5200\n"
        b"en=file_download&ep.file_name=guide.pdf&dt=Guide&_et=800"
    )
    shared = {
        "x-ga-protocol_version": "2",
        "x-ga-measurement_id": "G-EXAMPLE01",
        "client_id": "1234567890.1700000000",
        "ga_session_id": "1700000000",
        "ga_session_number": 3,
    }
    assert parse_hits(query, body) == [
        {
            **shared,
            "event_name": "scroll",
            "percent_scrolled": 90,
            "engagement_time_msec": 5200,
            "page_title": "Blog",
        },
        {
            **shared,
            "event_name": "file_download",
            "file_name": "guide.pdf",
            "engagement_time_msec": 800,
            "page_title": "Guide",
        },
    ]


def test_example_7_3_purchase_items_and_user_properties() -> None:
    query = (
        "v=2&tid=G-EXAMPLE01&cid=555.1700000000&uid=u-42&sid=1700000500&sct=7&en=purchase&cu=EUR"
        "&ep.transaction_id=T-1001&epn.value=59.8&epn.tax=9.55"
        "&pr1=idSKU-1~nmRunning%20Sock~brAcme~pr9.9~qt2~k0fabric~v0wool&pr2=idSKU-2~nmInsole~pr40~qt1"
        "&up.plan=gold&upn.lifetime_orders=7"
    )
    assert one(query) == {
        "x-ga-protocol_version": "2",
        "x-ga-measurement_id": "G-EXAMPLE01",
        "client_id": "555.1700000000",
        "event_name": "purchase",
        "currency": "EUR",
        "transaction_id": "T-1001",
        "value": 59.8,
        "tax": 9.55,
        "user_id": "u-42",
        "ga_session_id": "1700000500",
        "ga_session_number": 7,
        "items": [
            {
                "item_id": "SKU-1",
                "item_name": "Running Sock",
                "item_brand": "Acme",
                "price": 9.9,
                "quantity": 2,
                "fabric": "wool",
            },
            {"item_id": "SKU-2", "item_name": "Insole", "price": 40, "quantity": 1},
        ],
        "x-ga-mp2-user_properties": {"_user_id": "u-42", "plan": "gold", "lifetime_orders": 7},
    }


# --- parameter tables -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "key", "value"),
    [
        ("v=2", "x-ga-protocol_version", "2"),
        ("tid=G-1", "x-ga-measurement_id", "G-1"),
        ("gtm=45je5ca1za200", "x-ga-gtm_version", "45je5ca1za200"),
        ("_p=1766755449798", "x-ga-page_id", 1766755449798),
        ("_s=2", "x-ga-request_count", 2),
        ("cid=1677925765.1764678332", "client_id", "1677925765.1764678332"),
        ("uid=u1", "user_id", "u1"),
        ("sid=1766755460", "ga_session_id", "1766755460"),
        ("sct=2", "ga_session_number", 2),
        ("seg=1", "x-ga-mp2-seg", "1"),
        ("_et=169", "engagement_time_msec", 169),
        ("en=add_to_cart", "event_name", "add_to_cart"),
        ("cu=USD", "currency", "USD"),
        ("pi=P_1", "promotion_id", "P_1"),
        ("pn=Summer", "promotion_name", "Summer"),
        ("lo=ChIJ", "location_id", "ChIJ"),
        ("dt=Home", "page_title", "Home"),
        ("dr=https%3A%2F%2Fref.example%2F", "page_referrer", "https://ref.example/"),
        ("dh=www.example.com", "page_hostname", "www.example.com"),
        ("ul=en-us", "language", "en-us"),
        ("sr=2056x1329", "screen_resolution", "2056x1329"),
        ("ur=DE-BY", "x-ga-ur", "DE-BY"),
        ("ur=", "x-ga-ur", ""),
        ("tfd=28197", "x-ga-tfd", 28197),
        ("lps=1", "x-ga-lps", True),
        ("are=1", "x-ga-mp2-are", "1"),
        ("ir=1", "x-ga-mp2-ir", "1"),
        ("richsstsse", "x-ga-mp2-richsstsse", ""),
        ("gap.lineItemValue=3180", "x-ga-mp2-gap.lineItemValue", "3180"),
        ("ci=24680", "campaign_id", "24680"),
        ("cm=cpc", "campaign_medium", "cpc"),
        ("cs=google", "campaign_source", "google"),
        ("cn=spring", "campaign_name", "spring"),
        ("cc=banner", "campaign_content", "banner"),
        ("ck=shoes", "campaign_term", "shoes"),
        ("ct=shoes", "campaign_term", "shoes"),
        ("ccf=native", "campaign_creative_format", "native"),
        ("cmt=prospecting", "campaign_marketing_tactic", "prospecting"),
        ("gcs=G101", "x-ga-gcs", "G101"),
        ("gcd=13l3l3l2l1", "x-ga-gcd", "13l3l3l2l1"),
        ("gcu=1", "x-ga-gcu", "1"),
        ("gcut=2", "x-ga-gcut", "2"),
        ("dma=0", "x-ga-dma", "0"),
        ("dma_cps=sypham", "x-ga-dma_cps", "sypham"),
        ("npa=1", "x-ga-npa", "1"),
        ("us_privacy=1YNY", "x-ga-us_privacy", "1YNY"),
        ("gdpr=1", "x-ga-gdpr", "1"),
        ("gdpr_consent=CPfP", "x-ga-gdpr_consent", "CPfP"),
        ("ecid=788548699", "x-ga-ecid", "788548699"),
        ("gdid=dYmQxMT", "x-ga-gdid", "dYmQxMT"),
        ("edid=x1", "x-ga-edid", "x1"),
        ("_edid=x2", "x-ga-edid", "x2"),
        ("did=dZWU", "x-ga-did", "dZWU"),
        ("ep.page_type=checkout", "page_type", "checkout"),
        ("ep.empty=", "empty", ""),
        ("ep.a.b=c", "a.b", "c"),
        ("epn.plays=42", "plays", 42),
        ("epn.ratio=0.25", "ratio", 0.25),
        ("epn.whole=30.00", "whole", 30),
        ("epn.exp=2e3", "exp", 2000),
        ("epn.neg=-1.5", "neg", -1.5),
    ],
)
def test_top_level_param(param: str, key: str, value: Any) -> None:
    event = one(param)
    assert event[key] == value
    assert type(event[key]) is type(value)


@pytest.mark.parametrize(
    ("param", "key", "value"),
    [
        ("_ss=1", "ss", "1"),
        ("_fv=2", "fv", "2"),
        ("_ee=1", "ee", True),
        ("_fid=fEj96vkOHt5jN-csBLEy_A", "fid", "fEj96vkOHt5jN-csBLEy_A"),
        ("_nsi=1", "nsi", "1"),
        ("_c=1", "c", "1"),
        ("_dbg=1", "dbg", "1"),
        ("_rnd=342342343", "rnd", "342342343"),
    ],
)
def test_system_property(param: str, key: str, value: Any) -> None:
    assert one(param) == {"x-ga-system_properties": {key: value}}


def test_user_properties_and_uid() -> None:
    event = one("uid=u-1&up.tier=gold&upn.orders=3&upn.avg=12.5&up.empty=")
    assert event["user_id"] == "u-1"
    assert event["x-ga-mp2-user_properties"] == {
        "_user_id": "u-1",
        "tier": "gold",
        "orders": 3,
        "avg": 12.5,
        "empty": "",
    }


def test_sst_params_become_system_properties_as_strings() -> None:
    query = (
        "sst.rnd=2042025140.1764340310&sst.etld=google.com.br&sst.tft=1764340309313"
        "&sst.lpc=3978671&sst.navt=n&sst.ude=0&sst.sw_exp=1&sst.gcd=13l3l3l2l1&sst.uc=DE"
        "&sst.gcsub=region1&sst.adr=1&sst.us_privacy=1---"
    )
    assert one(query) == {
        "x-sst-system_properties": {
            "rnd": "2042025140.1764340310",
            "etld": "google.com.br",
            "tft": "1764340309313",
            "lpc": "3978671",
            "navt": "n",
            "ude": "0",
            "sw_exp": "1",
            "gcd": "13l3l3l2l1",
            "uc": "DE",
            "gcsub": "region1",
            "adr": "1",
            "us_privacy": "1---",
        }
    }


def test_ip_override_from_hit_only_when_valid() -> None:
    assert one("_uip=198.51.100.7")["ip_override"] == "198.51.100.7"
    assert one("uip=2001:db8::1")["ip_override"] == "2001:db8::1"
    assert one("_uip=not-an-ip&uip=198.51.100.8")["ip_override"] == "198.51.100.8"
    drops = Counter()
    assert "ip_override" not in one("_uip=999.1.1.1", drop=drops)
    assert drops == {"ga4.invalid_param": 1}


@pytest.mark.parametrize(
    ("query", "hostname", "path"),
    [
        ("dl=https%3A%2F%2FShop.Example%2Fa%2Fb%3Fq%3D1%23top", "shop.example", "/a/b"),
        ("dl=https%3A%2F%2Fshop.example", "shop.example", "/"),
        ("dl=https%3A%2F%2Fshop.example%2Fx&dh=www.other.example", "www.other.example", "/x"),
    ],
)
def test_page_hostname_and_path_derived_from_dl(query: str, hostname: str, path: str) -> None:
    event = one(query, derive_page_fields=True)
    assert (event["page_hostname"], event["page_path"]) == (hostname, path)


@pytest.mark.parametrize("location", ["not a url", "http://[::1/x", ""])
def test_page_fields_not_derived_from_unusable_dl(location: str) -> None:
    event = one(f"dl={location}", derive_page_fields=True)
    assert event["page_location"] == location
    assert "page_hostname" not in event
    assert "page_path" not in event


def test_page_fields_are_left_to_page_location_by_default() -> None:
    event = one("dl=https%3A%2F%2Fshop.example%2Fx")
    assert event == {"page_location": "https://shop.example/x"}


def test_unknown_and_not_mapped_params_are_left_out_when_asked() -> None:
    query = (
        "en=x&_z=ccd.tbB&_eu=AAAAAAQ&_tu=DAg&tag_exp=1~2&frm=0&pscdl=noapi&ec_mode=a&_gaz=1"
        "&_rdi=1&_geo=1&gtm_up=1&_glv=1&tt=internal&_fplc=0&pae=1&mystery=1&_uip=bad"
    )
    assert one(query, passthrough_unknown=False) == {"event_name": "x"}


def test_unknown_params_pass_through_by_default() -> None:
    event = one("en=x&tt=internal_cookie&_z=ccd.tbB&_fplc=0&b%20ad=1")
    assert event == {
        "event_name": "x",
        "x-ga-mp2-tt": "internal_cookie",
        "x-ga-system_properties": {"z": "ccd.tbB"},
    }


def test_protocol_fields_win_over_event_params_of_the_same_name() -> None:
    event = one("ep.event_name=spoof&en=real&ep.client_id=spoof&cid=1.2")
    assert (event["event_name"], event["client_id"]) == ("real", "1.2")


def test_first_occurrence_of_a_repeated_param_wins() -> None:
    assert one("en=first&en=second")["event_name"] == "first"


# --- items ------------------------------------------------------------------------------------

ALL_ITEM_KEYS = (
    "idSKU_12345~nmStan%20and%20Friends%20Tee~brGoogle~caApparel~c2Adult~c3Shirts~c4Crew"
    "~c5Short%20sleeve~vagreen~pr10.01~qt3~cpSUMMER_FUN~ds2.22~lp0~lirelated_products"
    "~lnRelated%20Products~afGoogle%20Merchandise%20Store~loChIJIQBpAG2ahYAR_6128GcTUEo~piP_12345"
    "~pnSummer%20Sale~cnsummer_banner2~csfeatured_app_1~k0google_business_vertical~v0retail"
)


def test_item_with_every_two_letter_key() -> None:
    assert one(f"pr1={ALL_ITEM_KEYS}")["items"] == [
        {
            "item_id": "SKU_12345",
            "item_name": "Stan and Friends Tee",
            "item_brand": "Google",
            "item_category": "Apparel",
            "item_category2": "Adult",
            "item_category3": "Shirts",
            "item_category4": "Crew",
            "item_category5": "Short sleeve",
            "item_variant": "green",
            "price": 10.01,
            "quantity": 3,
            "coupon": "SUMMER_FUN",
            "discount": 2.22,
            "index": 0,
            "item_list_id": "related_products",
            "item_list_name": "Related Products",
            "affiliation": "Google Merchandise Store",
            "location_id": "ChIJIQBpAG2ahYAR_6128GcTUEo",
            "promotion_id": "P_12345",
            "promotion_name": "Summer Sale",
            "creative_name": "summer_banner2",
            "creative_slot": "featured_app_1",
            "google_business_vertical": "retail",
        }
    ]


@pytest.mark.parametrize(
    ("raw", "item"),
    [
        # Custom pairs, including two-digit indexes and values that start with digits.
        ("idA~k0color~v0red~k1size~v142", {"item_id": "A", "color": "red", "size": "42"}),
        ("idA~k10fabric~v10wool~k1cut~v1slim", {"item_id": "A", "fabric": "wool", "cut": "slim"}),
        ("idA~v0orphan~k3lonely", {"item_id": "A"}),
        # A custom param cannot replace a standard field.
        ("idA~k0item_id~v0B", {"item_id": "A"}),
        # Garbage keeps the valid fields.
        ("idA~prabc~qtNaN~ds1e999~lpx~nmOK", {"item_id": "A", "item_name": "OK"}),
        ("idA~~x~zzunknown~nm", {"item_id": "A", "item_name": ""}),
        ("ln", {"item_list_name": ""}),
    ],
)
def test_item_fields(raw: str, item: dict[str, Any]) -> None:
    assert one(f"pr1={raw.replace('~', '%7E')}")["items"] == [item]


def test_items_sorted_by_number_and_empty_ones_counted() -> None:
    drops = Counter()
    event = one("pr10=idC&pr2=idB&pr1=idA&pr3=&pr4=zzz", drop=drops)
    assert [item["item_id"] for item in event["items"]] == ["A", "B", "C"]
    assert drops == {"ga4.invalid_param": 2}


def test_items_capped_at_max_items() -> None:
    drops = Counter()
    query = "&".join(f"pr{n}=id{n}" for n in range(1, MAX_ITEMS + 6))
    items = one(query, drop=drops)["items"]
    assert len(items) == MAX_ITEMS
    assert items[-1] == {"item_id": f"{MAX_ITEMS}"}
    assert drops == {"ga4.too_many_items": 5}


def test_no_items_key_when_every_item_is_invalid() -> None:
    assert "items" not in one("pr1=&pr2=~~")


# --- client hints ------------------------------------------------------------------------------


def test_client_hints_with_double_encoded_full_version_list() -> None:
    # A real hit (foomo/sesamy-go tests): brands travel percent-encoded a second time.
    query = (
        "uaa=arm&uab=64&uafvl=Chromium%3B124.0.6367.201%7CGoogle%2520Chrome%3B124.0.6367.201"
        "%7CNot-A.Brand%3B99.0.0.0&uamb=0&uam=&uap=macOS&uapv=14.4.1&uaw=0"
    )
    assert one(query) == {
        "client_hints": {
            "architecture": "arm",
            "bitness": "64",
            "full_version_list": [
                {"brand": "Chromium", "version": "124.0.6367.201"},
                {"brand": "Google Chrome", "version": "124.0.6367.201"},
                {"brand": "Not-A.Brand", "version": "99.0.0.0"},
            ],
            "mobile": False,
            "model": "",
            "platform": "macOS",
            "platform_version": "14.4.1",
            "wow64": False,
        }
    }


@pytest.mark.parametrize(
    ("uafvl", "expected"),
    [
        ("", []),
        ("Chromium", [{"brand": "Chromium", "version": ""}]),
        # An encoded ";" inside a brand is not the separator.
        ("Not)A%253BBrand%3B24.0.0.0", [{"brand": "Not)A;Brand", "version": "24.0.0.0"}]),
        ("Not%2520A(Brand%3B24.0.0.0%7C%7C", [{"brand": "Not A(Brand", "version": "24.0.0.0"}]),
    ],
)
def test_full_version_list_edge_cases(uafvl: str, expected: list[dict[str, str]]) -> None:
    assert one(f"uafvl={uafvl}")["client_hints"]["full_version_list"] == expected


@pytest.mark.parametrize(("raw", "mobile"), [("1", True), ("0", False), ("", False)])
def test_mobile_flag(raw: str, mobile: bool) -> None:
    assert one(f"uamb={raw}") == {"client_hints": {"mobile": mobile}}


def test_bad_boolean_is_dropped() -> None:
    drops = Counter()
    assert one("uamb=maybe&uaw=1", drop=drops) == {"client_hints": {"wow64": True}}
    assert drops == {"ga4.invalid_param": 1}


def test_client_hints_from_sec_ch_ua_headers_under_hit_params() -> None:
    headers = {
        "user-agent": UA,
        "sec-ch-ua": '"Chromium";v="116", "Not)A;Brand";v="24", "Google Chrome";v="116"',
        "sec-ch-ua-mobile": "?0",
        "sec-ch-ua-platform": '"macOS"',
    }
    client = GA4Client()
    header_only = client.parse(
        request("v=2&tid=G-1&en=x", headers=headers), GA4Settings(), context()
    )
    assert header_only[0]["client_hints"] == {
        "brands": [
            {"brand": "Chromium", "version": "116"},
            {"brand": "Not)A;Brand", "version": "24"},
            {"brand": "Google Chrome", "version": "116"},
        ],
        "mobile": False,
        "platform": '"macOS"',
    }
    both = client.parse(
        request("v=2&tid=G-1&en=x&uap=macOS&uamb=1", b"en=a\nen=b", headers=headers),
        GA4Settings(),
        context(),
    )
    assert both[0]["client_hints"]["platform"] == "macOS"
    assert both[0]["client_hints"]["mobile"] is True
    assert both[0]["client_hints"]["brands"][0] == {"brand": "Chromium", "version": "116"}
    assert both[0]["client_hints"]["brands"] is not both[1]["client_hints"]["brands"]


# --- consent ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("letter", "granted"),
    [
        ("l", None),
        ("p", False),
        ("q", False),
        ("t", True),
        ("r", True),
        ("m", False),
        ("n", True),
        ("u", False),
        ("v", True),
        ("", None),
        ("*", None),
    ],
)
def test_gcd_letters(letter: str, granted: bool | None) -> None:
    assert gcd_letter(letter) is granted


@pytest.mark.parametrize(
    ("gcs", "gcd", "state"),
    [
        (None, None, {}),
        ("G111", None, {"ad_storage": True, "analytics_storage": True}),
        ("G100", None, {"ad_storage": False, "analytics_storage": False}),
        ("G101", None, {"ad_storage": False, "analytics_storage": True}),
        ("G110", None, {"ad_storage": True, "analytics_storage": False}),
        ("G1--", None, {}),
        ("garbage", None, {}),
        (None, "13l3l3l3l1", {}),
        (None, "11l1l1l1l1", {}),
        (
            None,
            "13r3r3r2r5l1",
            {
                "ad_storage": True,
                "analytics_storage": True,
                "ad_user_data": True,
                "ad_personalization": True,
            },
        ),
        (
            None,
            "13t3t3t3t5l1",
            {
                "ad_storage": True,
                "analytics_storage": True,
                "ad_user_data": True,
                "ad_personalization": True,
            },
        ),
        (None, "13l3l3l2l1", {}),
        (None, "13p3l3m2l1", {"ad_storage": False, "ad_user_data": False}),
        (
            None,
            "13u3v3n2q5l1",
            {
                "ad_storage": False,
                "analytics_storage": True,
                "ad_user_data": True,
                "ad_personalization": False,
            },
        ),
        # gcd overrides gcs for the storage types; gcs fills what gcd leaves unset.
        ("G111", "13q3l3l2l1", {"ad_storage": False, "analytics_storage": True}),
        ("G100", "13v3v3l2l1", {"ad_storage": True, "analytics_storage": True}),
        (None, "13q", {"ad_storage": False}),
    ],
)
def test_consent_state(gcs: str | None, gcd: str | None, state: dict[str, bool]) -> None:
    assert consent_state(gcs, gcd) == state


def test_synthetic_fully_denied_hit() -> None:
    assert one("gcs=G100&gcd=13q3q3q2q5l1&npa=1") == {
        "x-ga-gcs": "G100",
        "x-ga-gcd": "13q3q3q2q5l1",
        "x-ga-npa": "1",
        "x-sst-system_properties": {
            "consent": {
                "consentGrantedState": {
                    "ad_storage": False,
                    "analytics_storage": False,
                    "ad_user_data": False,
                    "ad_personalization": False,
                }
            }
        },
    }


def test_consent_key_absent_when_the_hit_states_nothing() -> None:
    assert one("gcd=13l3l3l3l1") == {"x-ga-gcd": "13l3l3l3l1"}


def test_consent_sits_next_to_sst_params() -> None:
    event = one("sst.gcd=13l3l3l2l1&gcs=G101")
    assert event["x-sst-system_properties"] == {
        "gcd": "13l3l3l2l1",
        "consent": {"consentGrantedState": {"ad_storage": False, "analytics_storage": True}},
    }


# --- user data --------------------------------------------------------------------------------


def test_user_data_nested_with_sgtm_names() -> None:
    query = (
        "ep.user_data.email=a%40example.com&ep.user_data.phone=%2B15551234567"
        "&ep.user_data.address.first_name=Ada&ep.user_data.address.last_name=Lovelace"
        "&ep.user_data.address.street=1%20Main%20St&ep.user_data.address.city=London"
        "&ep.user_data.address.region=LDN&ep.user_data.address.postal_code=N1"
        "&ep.user_data.address.country=GB&ep.user_data.sha256_email_address=abc123"
    )
    assert one(query) == {
        "user_data": {
            "email_address": "a@example.com",
            "phone_number": "+15551234567",
            "sha256_email_address": "abc123",
            "address": {
                "first_name": "Ada",
                "last_name": "Lovelace",
                "street": "1 Main St",
                "city": "London",
                "region": "LDN",
                "postal_code": "N1",
                "country": "GB",
            },
        }
    }


@pytest.mark.parametrize(
    "query",
    [
        "ep.user_data.email_address=a%40b.c&ep.user_data.phone_number=1",
        "ep.user_data.email=a%40b.c&ep.user_data.phone=1",
    ],
)
def test_user_data_long_and_short_names(query: str) -> None:
    assert one(query) == {"user_data": {"email_address": "a@b.c", "phone_number": "1"}}


def test_user_data_with_empty_path_segment_is_invalid() -> None:
    drops = Counter()
    assert one("ep.user_data..city=x&ep.user_data.=y&ep.=z", drop=drops) == {}
    assert drops == {"ga4.invalid_param": 3}


# Digests of `example@example.com` from Google's own parser tests (confidential-match
# EnhancedMatchMapperTest): the same SHA-256 as base64url, which gtag sends, and as hex.
EXAMPLE_B64 = "McVUPBc00lxyBvX9WRUl0Clb7G_oT_gvlGo0_pcKHmY"
EXAMPLE_HEX = "31c5543c1734d25c7206f5fd591525d0295bec6fe84ff82f946a34fe970a1e66"


def test_em_decodes_into_user_data_with_sgtm_names_and_hex_digests() -> None:
    phone = hashlib.sha256(b"+15551234567").hexdigest()
    first = hashlib.sha256(b"ada").hexdigest()
    last = hashlib.sha256(b"lovelace").hexdigest()
    em = f"tv.1~em.{EXAMPLE_B64}~pn.{b64(phone)}~fn0.{b64(first)}~ln0.{last.upper()}~pc0.N1~co0.GB"
    drops = Counter()
    assert one("em=" + quote(em), drop=drops) == {
        "user_data": {
            "sha256_email_address": EXAMPLE_HEX,
            "sha256_phone_number": phone,
            "address": {
                "sha256_first_name": first,
                "sha256_last_name": last,
                "postal_code": "N1",
                "country": "GB",
            },
        }
    }
    assert drops == {}


def test_em_real_capture_with_only_an_email_and_a_country() -> None:
    # A begin_checkout hit seen in Tag Assistant (UtekosKristoffer/utekos-headless, tests/
    # ga4_corpus/README.md): the address has only its country.
    event = one("em=tv.1~em.4x8WFpkYUiISoDaC9zQnW4M-xxMNPal-E3vq2kbfQCI~co0.NO")
    assert event == {
        "user_data": {
            "sha256_email_address": (
                "e31f16169918522212a03682f734275b833ec7130d3da97e137beada46df4022"
            ),
            "address": {"country": "NO"},
        }
    }


def test_em_repeated_fields_and_several_addresses() -> None:
    other = hashlib.sha256(b"b@example.com").hexdigest()
    em = f"tv.1~em.{EXAMPLE_B64}~em.{b64(other)}~em.{EXAMPLE_B64}~co0.BR~co1.PT~pc1.1000"
    assert one("em=" + em)["user_data"] == {
        "sha256_email_address": [EXAMPLE_HEX, other],
        "address": [{"country": "BR"}, {"country": "PT", "postal_code": "1000"}],
    }


def test_em_merges_with_ep_user_data_and_wins_on_the_same_field() -> None:
    query = (
        f"ep.user_data.sha256_email_address=old&ep.user_data.address.city=Oslo"
        f"&em=tv.1~em.{EXAMPLE_B64}~co0.NO"
    )
    assert one(query)["user_data"] == {
        "sha256_email_address": EXAMPLE_HEX,
        "address": {"city": "Oslo", "country": "NO"},
    }


@pytest.mark.parametrize(
    ("em", "user_data", "invalid"),
    [
        (f"tv.2~em.{EXAMPLE_B64}", None, 1),  # only tag version 1 exists
        (f"em.{EXAMPLE_B64}", None, 1),  # no tag version
        (f"tv.1~tv.1~em.{EXAMPLE_B64}", None, 1),  # tag version twice
        ("tv.1~em.not-a-digest~co0.NO", {"address": {"country": "NO"}}, 1),
        ("tv.1~fn0.plain~ln0.e12~co0.NO", {"address": {"country": "NO"}}, 1),
        ("tv.1~em.e2~pn.e13~ec.e7", None, 0),  # error codes: nothing to read, nothing wrong
        ("tv.1~em~em.~.x~sa0.street~ct0.city~co0.a.b", None, 0),  # tokens Google ignores
        ("tv.1~fn100.x~co100.NO", None, 0),  # address indexes are 0-99
    ],
)
def test_em_that_cannot_be_read(em: str, user_data: Any, invalid: int) -> None:
    drops = Counter()
    event = one("em=" + quote(em), drop=drops)
    assert event.get("user_data") == user_data
    assert "x-ga-em" not in event and "x-ga-mp2-em" not in event
    assert drops == ({"ga4.invalid_param": invalid} if invalid else {})


def test_em_limits() -> None:
    drops = Counter()
    long = f"tv.1~em.{EXAMPLE_B64}" + "~co0.NO" * 2000  # over the 8192 characters of a value
    assert one("em=" + long, drop=drops) == {}
    assert drops == {"ga4.param_too_long": 1}
    # Google's own parser stops at 20,000 characters; so does the decoder, whoever calls it.
    assert user_data.decode(f"tv.1~em.{EXAMPLE_B64}" + "~co0.NO" * 3000) == ({}, 1)


def b64(hex_digest: str) -> str:
    return base64.urlsafe_b64encode(bytes.fromhex(hex_digest)).decode().rstrip("=")


# --- malformed input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "missing"),
    [
        ("_et=NaN", "engagement_time_msec"),
        ("_et=abc", "engagement_time_msec"),
        ("_et=", "engagement_time_msec"),
        ("_et=Infinity", "engagement_time_msec"),
        ("_et=0x10", "engagement_time_msec"),
        ("_et=1_000", "engagement_time_msec"),
        ("sct=%EF%BC%91", "ga_session_number"),  # a full-width digit
        ("epn.value=abc", "value"),
        ("epn.value=1e999", "value"),
        ("epn.value=-inf", "value"),
        ("upn.ltv=nan", "x-ga-mp2-user_properties"),
    ],
)
def test_invalid_number_drops_only_that_param(query: str, missing: str) -> None:
    drops = Counter()
    event = one(f"en=e&{query}", drop=drops)
    assert event == {"event_name": "e"}
    assert missing not in event
    assert drops == {"ga4.invalid_param": 1}


def test_numbers_are_never_nan_or_infinite() -> None:
    event = one("_et=1e308&epn.a=-0&epn.b=%201.5%20&_p=9007199254740993")
    assert event["engagement_time_msec"] == 1e308
    assert (event["a"], event["b"]) == (0, 1.5)
    # Beyond 2**53 a JavaScript number is a float; so is ours.
    assert isinstance(event["x-ga-page_id"], float)
    assert all(math.isfinite(v) for v in event.values())


def test_broken_percent_escapes_are_kept_as_text() -> None:
    event = one("en=e&dt=%E0%A4%A&ep.x=100%&ep.y=%zz")
    assert event["page_title"] == "\ufffd%A"
    assert (event["x"], event["y"]) == ("100%", "%zz")


def test_non_utf8_body_bytes_become_replacement_characters() -> None:
    events = parse_hits("v=2&tid=G-1", b"en=caf\xe9&dt=\xff\xfeok\nen=fine")
    assert [e["event_name"] for e in events] == ["caf\ufffd", "fine"]
    assert events[0]["page_title"] == "\ufffd\ufffdok"


TWO_MB = 2 * 1024 * 1024


@pytest.mark.parametrize(
    ("junk", "reason"),
    [
        ((b"\x00\xff{<junk>}%%%~&&==" * 120_000)[:TWO_MB], "ga4.too_many_params"),
        (b"x" * TWO_MB, "ga4.invalid_param"),  # one 2 MB parameter name
        (b"ep.x=" + b"%" * TWO_MB, "ga4.param_too_long"),
        (random.Random(7).randbytes(TWO_MB).replace(b"\n", b" "), "ga4.too_many_params"),
    ],
)
def test_two_megabytes_of_junk_body(junk: bytes, reason: str) -> None:
    drops = Counter()
    events = parse_hits("v=2&tid=G-1&en=page_view", junk, drop=drops)
    assert len(events) == 1
    assert events[0]["event_name"] == "page_view"
    assert drops[reason] > 0


FUZZ_TOKENS = (
    "&", "=", "~", "%", "%2", "%E0%A4", "%zz", "+", ".", "\r", "\n", "NaN", "1e999", "-0", "G1",
    "en", "_et", "epn.v", "ep.user_data.", "pr1", "k0", "v0", "gcd", "gcs", "uafvl", "|", ";",
    "_uip", "dl", "http://[", "up.", "upn.x", "sst.", "\xff", "\u0000", "1", "abc",
)  # fmt: skip


def assert_json_safe(value: Any) -> None:
    if isinstance(value, dict):
        assert all(isinstance(k, str) for k in value)
        for v in value.values():
            assert_json_safe(v)
    elif isinstance(value, list):
        for v in value:
            assert_json_safe(v)
    elif isinstance(value, float):
        assert math.isfinite(value)
    else:
        assert value is None or isinstance(value, str | int | bool)


def test_random_garbage_never_raises_and_stays_json_safe() -> None:
    rng = random.Random(2024)
    for _ in range(500):
        query = "".join(rng.choice(FUZZ_TOKENS) for _ in range(rng.randint(0, 40)))
        body = "".join(rng.choice(FUZZ_TOKENS) for _ in range(rng.randint(0, 60)))
        events = parse_hits(query, body.encode("utf-8", "surrogatepass"), max_events=5)
        assert 1 <= len(events) <= 5
        assert_json_safe(events)
        msgspec.json.encode(events)


def test_ten_thousand_lines_are_capped_and_counted() -> None:
    drops = Counter()
    body = "\n".join(f"en=e{n}" for n in range(10_000)).encode()
    events = parse_hits("v=2&tid=G-1", body, max_events=100, drop=drops)
    assert [e["event_name"] for e in events[:2]] == ["e0", "e1"]
    assert len(events) == 100
    assert events[-1]["event_name"] == "e99"
    assert drops == {"ga4.too_many_events": 9_900}


@pytest.mark.parametrize("body", [b"", b"\n", b"\r\n\r\n", b"\n \n\t\n"])
def test_empty_or_blank_body_is_one_hit_from_the_url(body: bytes) -> None:
    assert parse_hits("v=2&en=page_view", body) == [
        {"x-ga-protocol_version": "2", "event_name": "page_view"}
    ]


def test_crlf_lines() -> None:
    events = parse_hits("v=2", b"en=a\r\nen=b\r\n")
    assert [e["event_name"] for e in events] == ["a", "b"]


def test_line_that_is_not_a_query_string_keeps_url_params() -> None:
    events = parse_hits("v=2&en=page_view", b'{"event":"json"}\nen=scroll&_et=5')
    assert events == [
        {"x-ga-protocol_version": "2", "event_name": "page_view"},
        {"x-ga-protocol_version": "2", "event_name": "scroll", "engagement_time_msec": 5},
    ]


def test_too_long_values_are_dropped_and_counted() -> None:
    drops = Counter()
    ok = "a" * MAX_VALUE_CHARS
    query = f"en=e&dt={ok}&dl={ok}b&ep.big={'%41' * (MAX_VALUE_CHARS + 1)}&ep.huge={'x' * 200_000}"
    event = one(query, drop=drops)
    assert event == {"event_name": "e", "page_title": ok}
    assert drops == {"ga4.param_too_long": 3}


def test_too_many_params_in_one_query_string() -> None:
    drops = Counter()
    query = "en=e&" + "&".join(f"ep.p{n}=1" for n in range(MAX_PARAMS + 10))
    event = one(query, drop=drops)
    assert len(event) == MAX_PARAMS  # en plus the first MAX_PARAMS - 1 event params
    assert drops == {"ga4.too_many_params": 11}


def test_overlong_param_name_is_invalid() -> None:
    drops = Counter()
    assert one(f"en=e&ep.{'k' * 300}=1", drop=drops) == {"event_name": "e"}
    assert drops == {"ga4.invalid_param": 1}


# --- the client -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "claimed"),
    [
        ("GET", "/g/collect", "v=2&tid=G-1&en=page_view", b"", True),
        ("POST", "/g/collect", "v=2&tid=G-1", b"en=a\nen=b", True),
        ("POST", "/g/collect", "", b"v=2&tid=G-1&en=a\nen=b", True),
        ("POST", "/g/collect", "v=2", b"\n\ntid=G-1&en=a", True),
        ("GET", "/g/collect", "", b"v=2&tid=G-1", False),  # GET bodies are not read
        ("POST", "/g/collect", "v=2", b"en=a\ntid=G-1", False),  # only the first line counts
        ("GET", "/g/collect/", "v=2&tid=G-1", b"", False),
        ("GET", "/x/g/collect", "v=2&tid=G-1", b"", False),
        ("GET", "/mp/collect", "v=2&tid=G-1", b"", False),
        ("GET", "/g/collect", "tid=G-1&en=x", b"", False),
        ("GET", "/g/collect", "v=1&tid=G-1", b"", False),
        ("GET", "/g/collect", "v=2&en=x", b"", False),
        ("GET", "/g/collect", "v=2&tid=", b"", False),
        ("PUT", "/g/collect", "v=2&tid=G-1", b"", False),
        ("OPTIONS", "/g/collect", "v=2&tid=G-1", b"", False),
    ],
)
def test_claim(method: str, path: str, query: str, body: bytes, claimed: bool) -> None:
    hit = request(query, body, method=method, path=path)
    assert GA4Client().claim(hit, GA4Settings()) is claimed


def test_claim_uses_the_configured_path() -> None:
    settings = GA4Settings(path="/collect/ga")
    assert GA4Client().claim(request("v=2&tid=G-1", path="/collect/ga"), settings)
    assert not GA4Client().claim(request("v=2&tid=G-1"), settings)


def test_parse_drops_events_without_a_name_and_counts_them() -> None:
    ctx = context()
    body = b"en=kept\n_et=5\nen=\nen=also_kept"
    events = GA4Client().parse(request("v=2&tid=G-1", body), GA4Settings(), ctx)
    assert [e["event_name"] for e in events] == ["kept", "also_kept"]
    assert ctx.dropped == {"ga4.missing_event_name": 2}


def test_parse_passes_counters_and_max_events_through() -> None:
    ctx = context()
    body = b"en=a&_et=NaN\nen=b\nen=c"
    events = GA4Client().parse(request("v=2&tid=G-1", body), GA4Settings(max_events=2), ctx)
    assert [e["event_name"] for e in events] == ["a", "b"]
    assert ctx.dropped == {"ga4.invalid_param": 1, "ga4.too_many_events": 1}


def test_parse_keeps_a_valid_hit_ip_and_skips_a_missing_user_agent() -> None:
    hit = request("v=2&tid=G-1&en=x&_uip=198.51.100.1", headers={})
    event = GA4Client().parse(hit, GA4Settings(), context())[0]
    assert event["ip_override"] == "198.51.100.1"
    assert "user_agent" not in event


def test_parse_without_request_ip() -> None:
    hit = request("v=2&tid=G-1&en=x")
    hit.client_ip = None
    assert "ip_override" not in GA4Client().parse(hit, GA4Settings(), context())[0]


def test_settings_switches_reach_the_parser() -> None:
    settings = GA4Settings(derive_page_fields=False, passthrough_unknown=True)
    hit = request("v=2&tid=G-1&en=x&dl=https%3A%2F%2Fa.example%2Fp&tt=1")
    event = GA4Client().parse(hit, settings, context())[0]
    assert event["x-ga-mp2-tt"] == "1"
    assert "page_path" not in event


def test_respond_is_an_empty_200() -> None:
    response = GA4Client().respond(request(), [], GA4Settings(), context())
    assert (response.status, response.body, response.headers) == (200, b"", {})


def test_settings_reject_unknown_fields() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"path": "/g/collect", "nope": 1}, GA4Settings)


def test_register_client_types_hook() -> None:
    registered: list[Any] = []
    register_client_types(registered.append)
    assert len(registered) == 1
    assert isinstance(registered[0], GA4Client)
    assert registered[0].name == "ga4"


def test_fast_unquote_decodes_exactly_as_urllib():
    # The parser's own decoder must give what urllib's unquote_plus gives, broken escapes and
    # bad UTF-8 included; seeded, so a failure reproduces.
    from urllib.parse import unquote_plus

    from sgtm_plugins.ga4.parse import _unquote_plus

    pieces = ["%", "+", "a", "ç", "%C3", "%A9", "%c3%a9", "%ZZ", "%2", "%e2", "%82", "%F0%9F%98"]
    pieces += ["%F0%9F%98%80", "x", "%0", "~", "%25", "%2B", " ", "%00", "\ud800"]
    rng = random.Random(20261206)
    for _ in range(20000):
        raw = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 10)))
        assert _unquote_plus(raw) == unquote_plus(raw), raw


# --- body size (issue #8) ---------------------------------------------------------------------


def test_a_body_over_max_body_bytes_is_refused_unparsed() -> None:
    """gtag batches with sendBeacon, which browsers cap at 64 KiB: a bigger body is no browser's
    and is refused whole (413) before a line of it is parsed."""
    line = b"en=scroll&epn.percent_scrolled=90&ep.x=" + b"y" * 60 + b"\n"
    fits = line * (65536 // len(line))
    ctx = context()
    events = GA4Client().parse(request("v=2&tid=G-1&cid=1.2", fits), GA4Settings(), ctx)
    assert len(events) == 100 and ctx.dropped == {
        "ga4.too_many_events": len(fits) // len(line) - 100
    }
    over = fits + line
    with pytest.raises(BadRequest, match="body over 65536 bytes") as refused:
        GA4Client().parse(request("v=2&tid=G-1&cid=1.2", over), GA4Settings(), context())
    assert refused.value.status == 413
    bigger = GA4Settings(max_body_bytes=1024 * 1024)
    assert len(GA4Client().parse(request("v=2&tid=G-1&cid=1.2", over), bigger, context())) == 100


@pytest.mark.parametrize("size", [1023, 1024 * 1024 + 1])
def test_max_body_bytes_is_checked(size: int) -> None:
    with pytest.raises(ValueError, match="max_body_bytes: must be between 1024 and 1048576"):
        msgspec.convert({"max_body_bytes": size}, GA4Settings)
