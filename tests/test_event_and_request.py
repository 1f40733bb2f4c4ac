"""sgtm.event dotted paths and sgtm.request (query and cookie parsing) edge cases."""

from __future__ import annotations

from typing import Any

import pytest

from sgtm import event as ev
from sgtm.request import HitRequest, parse_cookie_header


def sample() -> dict[str, Any]:
    return {
        "event_name": "purchase",
        "value": 0,
        "flag": False,
        "nothing": None,
        "items": [{"item_id": "SKU1", "price": 10}, {"item_id": "SKU2"}],
        "user_data": {"email_address": "a@b.example", "address": {"city": "Recife"}},
        "a.b": "literal",
        "a": {"b": "nested", "c": {"d": [1, [2, 3]]}},
        "x-sst-system_properties": {"consent": {"consentGrantedState": {"ad_storage": True}}},
    }


MISSING = "<default>"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("event_name", "purchase"),
        ("value", 0),
        ("flag", False),
        ("nothing", None),
        ("user_data.email_address", "a@b.example"),
        ("user_data.address.city", "Recife"),
        ("user_data.address", {"city": "Recife"}),
        ("items.0.item_id", "SKU1"),
        ("items.1.item_id", "SKU2"),
        ("items.1.price", MISSING),
        ("items.2.item_id", MISSING),
        ("items.-1.item_id", MISSING),
        ("items.first", MISSING),
        ("items.²", MISSING),
        ("a.c.d.1.0", 2),
        ("a.c.d.1.2", MISSING),
        ("a.b", "literal"),  # a literal key with a dot wins
        ("a.c", {"d": [1, [2, 3]]}),
        ("x-sst-system_properties.consent.consentGrantedState.ad_storage", True),
        ("value.x", MISSING),
        ("event_name.x", MISSING),
        ("nothing.x", MISSING),
        ("nope", MISSING),
        ("user_data.nope", MISSING),
        ("", MISSING),
        ("user_data.", MISSING),
        (".user_data", MISSING),
        ("user_data..email_address", MISSING),
    ],
)
def test_get(path: str, expected: Any) -> None:
    assert ev.get(sample(), path, MISSING) == expected
    assert ev.has(sample(), path) is (expected != MISSING)


def test_get_default_is_none() -> None:
    assert ev.get(sample(), "nope") is None
    assert ev.get(sample(), "nothing", "d") is None  # present and null is not missing


@pytest.mark.parametrize(
    ("path", "value", "expected_part", "expected"),
    [
        ("currency", "BRL", "currency", "BRL"),
        ("event_name", "refund", "event_name", "refund"),
        ("user_data.phone_number", "+55", "user_data", None),
        ("user_data.address.region", "PE", "user_data.address", {"city": "Recife", "region": "PE"}),
        ("new.deep.path", 1, "new", {"deep": {"path": 1}}),
        ("value.amount", 5, "value", {"amount": 5}),  # a scalar on the way is replaced
        ("nothing.x", 5, "nothing", {"x": 5}),
        ("items.0.price", 11, "items", [{"item_id": "SKU1", "price": 11}, {"item_id": "SKU2"}]),
        (
            "items.1.price",
            12,
            "items",
            [{"item_id": "SKU1", "price": 10}, {"item_id": "SKU2", "price": 12}],
        ),
        ("items.1", "replaced", "items", [{"item_id": "SKU1", "price": 10}, "replaced"]),
        ("a.c.d.1.0", 9, "a", {"b": "nested", "c": {"d": [1, [9, 3]]}}),
        ("a.c.d.0.x", 9, "a", {"b": "nested", "c": {"d": [{"x": 9}, [2, 3]]}}),
        # not an index of the list: the list is replaced, as any other non-dict value
        ("items.5.price", 1, "items", {"5": {"price": 1}}),
        ("items.name", "x", "items", {"name": "x"}),
    ],
)
def test_set_path(path: str, value: Any, expected_part: str, expected: Any) -> None:
    event = sample()
    ev.set_path(event, path, value)
    assert ev.get(event, path) == value
    if expected is not None:
        assert ev.get(event, expected_part) == expected


def test_set_path_keeps_unrelated_keys() -> None:
    event = sample()
    ev.set_path(event, "user_data.phone_number", "+55")
    assert event["user_data"] == {
        "email_address": "a@b.example",
        "address": {"city": "Recife"},
        "phone_number": "+55",
    }
    expected = sample()
    expected["user_data"]["phone_number"] = "+55"
    assert event == expected


def test_set_path_on_an_empty_event() -> None:
    event: dict[str, Any] = {}
    ev.set_path(event, "x-sst-system_properties.consent.consentGrantedState", {"a": True})
    assert event == {"x-sst-system_properties": {"consent": {"consentGrantedState": {"a": True}}}}


@pytest.mark.parametrize(
    ("path", "check", "expected"),
    [
        ("event_name", "event_name", MISSING),
        ("user_data.email_address", "user_data", {"address": {"city": "Recife"}}),
        ("user_data.address.city", "user_data.address", {}),
        ("user_data", "user_data", MISSING),
        ("items.0.price", "items", [{"item_id": "SKU1"}, {"item_id": "SKU2"}]),
        ("items.0", "items", [{"item_id": "SKU2"}]),
        ("a.c.d.1.0", "a.c.d", [1, [3]]),
        # a literal dotted key is deleted, not the nested one
        ("a.b", "a", {"b": "nested", "c": {"d": [1, [2, 3]]}}),
    ],
)
def test_delete_path(path: str, check: str, expected: Any) -> None:
    event = sample()
    ev.delete_path(event, path)
    assert ev.get(event, check, MISSING) == expected


def test_delete_literal_dotted_key_only() -> None:
    event = sample()
    ev.delete_path(event, "a.b")
    assert "a.b" not in event
    assert event["a"]["b"] == "nested"
    ev.delete_path(event, "a.b")  # now the nested one
    assert "b" not in event["a"]


@pytest.mark.parametrize(
    "path",
    [
        "nope",
        "nope.deeper",
        "user_data.nope",
        "user_data.address.city.x",
        "value.x",
        "nothing.x",
        "items.9",
        "items.9.price",
        "items.-1",
        "items.x",
        "items.²",
        "",
    ],
)
def test_delete_absent_path_is_a_no_op(path: str) -> None:
    event = sample()
    ev.delete_path(event, path)
    assert event == sample()


def test_copy_event_is_deep() -> None:
    original = sample()
    copy = ev.copy_event(original)
    assert copy == original
    assert copy is not original
    copy["user_data"]["address"]["city"] = "Olinda"
    copy["items"][0]["price"] = 0
    copy["items"].append({"item_id": "SKU3"})
    copy["a"]["c"]["d"][1].append(4)
    copy["x-sst-system_properties"]["consent"]["consentGrantedState"]["ad_storage"] = False
    assert original == sample()


def test_copy_event_of_empty_and_scalar_values() -> None:
    assert ev.copy_event({}) == {}
    source = {"s": "x", "n": 1.5, "b": True, "z": None, "l": []}
    copy = ev.copy_event(source)
    assert copy == source
    assert copy["l"] is not source["l"]


@pytest.mark.parametrize(
    ("query_string", "expected"),
    [
        ("", {}),
        ("&&", {}),
        ("a=1&b=2", {"a": "1", "b": "2"}),
        ("a=1&a=2", {"a": "1"}),  # the first wins
        ("a", {"a": ""}),
        ("a=", {"a": ""}),
        ("=x", {"": "x"}),
        ("a=1+2", {"a": "1 2"}),
        ("a=1%2B2", {"a": "1+2"}),
        ("a=%C3%A9", {"a": "é"}),
        ("dl=https%3A%2F%2Fs.example%2Fp%3Fq%3D1", {"dl": "https://s.example/p?q=1"}),
        # broken percent escapes stay as text; bytes that are not UTF-8 become U+FFFD
        ("a=%zz", {"a": "%zz"}),
        ("a=%", {"a": "%"}),
        ("a=%2", {"a": "%2"}),
        ("a=100%", {"a": "100%"}),
        ("a=%E9", {"a": "\ufffd"}),
        ("a=%C3", {"a": "\ufffd"}),
        ("a=%00", {"a": "\x00"}),
        ("%zz=1", {"%zz": "1"}),
        ("a=1;b=2", {"a": "1;b=2"}),  # only & separates
        ("a=b=c", {"a": "b=c"}),
        ("en=page_view&ep.x=%F0%9F%98%80", {"en": "page_view", "ep.x": "😀"}),
    ],
)
def test_query(query_string: str, expected: dict[str, str]) -> None:
    assert HitRequest("GET", "/g/collect", query_string).query == expected


def test_request_properties() -> None:
    request = HitRequest(
        "POST",
        "/g/collect",
        "v=2",
        headers={"origin": "https://www.shop.example", "cookie": "a=1; b=2"},
        host="sgtm.shop.example",
    )
    assert request.url == "https://sgtm.shop.example/g/collect?v=2"
    assert request.origin == "https://www.shop.example"
    assert request.cookies == {"a": "1", "b": "2"}
    bare = HitRequest("GET", "/x", host="h.example", scheme="http")
    assert bare.url == "http://h.example/x"
    assert bare.origin is None
    assert bare.cookies == {}
    assert bare.query == {}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", {}),
        ("a=1", {"a": "1"}),
        ("a=1; b=2", {"a": "1", "b": "2"}),
        ("a=1;b=2", {"a": "1", "b": "2"}),
        ("a=1;;; b=2;", {"a": "1", "b": "2"}),
        ("  a = 1 ;  b=2  ", {"a": "1", "b": "2"}),
        (
            "_ga=GA1.1.123.456; _ga_ABC=GS1.1.1700000000.1.0",
            {"_ga": "GA1.1.123.456", "_ga_ABC": "GS1.1.1700000000.1.0"},
        ),
        ("a=b=c", {"a": "b=c"}),
        ("a=", {"a": ""}),
        ("a=%20x", {"a": "%20x"}),  # not URL-decoded
        # duplicates: the first wins (the most specific path comes first)
        ("a=1; a=2", {"a": "1"}),
        # bad pairs are skipped, the others kept
        ("novalue; b=2", {"b": "2"}),
        ("=x; b=2", {"b": "2"}),
        ("; b=2", {"b": "2"}),
        ("===; b=2", {"b": "2"}),
        # quoted values
        ('a="quoted"', {"a": "quoted"}),
        ('a="with space"', {"a": "with space"}),
        ('a=""', {"a": ""}),
        ('a="\\073"', {"a": ";"}),
        ('a="\\"x\\""', {"a": '"x"'}),
        ('a="é"', {"a": "é"}),
        ('a="', {"a": '"'}),
        ('a="x', {"a": '"x'}),
        ('a=x"', {"a": 'x"'}),
        ('a="\\"; b=2', {"a": "\\", "b": "2"}),
        ('a="x"y"; c=1', {"a": 'x"y', "c": "1"}),
        ('a="abc\\"; c=1', {"a": "abc\\", "c": "1"}),
        ('FPID="FPID2.2.abc%3D.1"; b=2', {"FPID": "FPID2.2.abc%3D.1", "b": "2"}),
    ],
)
def test_parse_cookie_header(header: str, expected: dict[str, str]) -> None:
    assert parse_cookie_header(header) == expected


def test_request_cookies_never_raise_for_bad_headers() -> None:
    request = HitRequest("GET", "/", headers={"cookie": 'a="\\"; _ga=GA1.1.1.2'})
    assert request.cookies["_ga"] == "GA1.1.1.2"
