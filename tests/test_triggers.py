"""sgtm.triggers: every operator and its negation, combinators, compile errors."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from sgtm.request import HitRequest
from sgtm.scope import BUILTINS, BoundVariable, Scope
from sgtm.triggers import ALL_OPERATORS, OPERATORS, ConditionError, compile_condition
from tests.installed import registry

VARIABLES = {
    "email": BoundVariable(
        "email",
        registry().variables["event_data"],
        msgspec.convert(
            {"key": "user_data.email_address"}, registry().variables["event_data"].Settings
        ),
    ),
    "shop_currency": BoundVariable(
        "shop_currency",
        registry().variables["constant"],
        msgspec.convert({"value": "BRL"}, registry().variables["constant"].Settings),
    ),
}


def is_variable(name: str) -> bool:
    return name in VARIABLES or name in BUILTINS


def check(
    raw: Any, event: dict[str, Any], request: HitRequest | None = None, client: str | None = None
) -> bool:
    condition = compile_condition(raw, "triggers.t", is_variable)
    result = condition(Scope(event, request, client, VARIABLES))
    assert isinstance(result, bool)
    return result


MISSING = object()  # the key is absent from the event data


# (operator, expected value in the YAML, value in the event, does the operator match)
OPERATOR_CASES = [
    # equals: text
    ("equals", "purchase", "purchase", True),
    ("equals", "purchase", "Purchase", False),
    ("equals", "purchase", "purchase ", False),
    ("equals", "purchase", None, False),
    ("equals", "purchase", MISSING, False),
    ("equals", "", "", True),
    ("equals", "", MISSING, False),
    # equals: a number compares as a number
    ("equals", 10, 10, True),
    ("equals", 10, 10.0, True),
    ("equals", 10, "10", True),
    ("equals", 10, " 10 ", True),
    ("equals", 10, "10.0", True),
    ("equals", 10, "1e1", True),
    ("equals", 10, 11, False),
    ("equals", 10, "ten", False),
    ("equals", 10, True, False),
    ("equals", 1, True, False),
    ("equals", 0, False, False),
    ("equals", 10, [10], False),
    ("equals", 10, None, False),
    ("equals", 10, MISSING, False),
    ("equals", 0.1, "0.1", True),
    ("equals", 10, "1_0", False),
    # equals: a string compares as text, whatever the value's type
    ("equals", "10", 10, True),
    ("equals", "10", "10.0", False),
    ("equals", "true", True, True),
    ("equals", "True", True, False),
    # equals: a boolean compares as a boolean (text "true"/"false" in any case too)
    ("equals", True, True, True),
    ("equals", True, "true", True),
    ("equals", True, "TRUE", True),
    ("equals", True, False, False),
    ("equals", True, 1, False),
    ("equals", True, "1", False),
    ("equals", True, "yes", False),
    ("equals", True, None, False),
    ("equals", False, False, True),
    ("equals", False, "false", True),
    ("equals", False, 0, False),
    ("equals", False, "", False),
    ("equals", False, None, False),
    ("equals", False, MISSING, False),
    # contains: substring of the text
    ("contains", "shop", "www.shop.example", True),
    ("contains", "shop", "www.store.example", False),
    ("contains", "Shop", "www.shop.example", False),
    ("contains", "shop", None, False),
    ("contains", "shop", MISSING, False),
    ("contains", "", "anything", True),
    ("contains", "", None, False),
    ("contains", "5", 12345, True),
    ("contains", 5, 12345, True),
    ("contains", "6", 12345, False),
    ("contains", "ru", True, True),
    # contains: on a list, an element equal to the value
    ("contains", "a", ["a", "b"], True),
    ("contains", "a", ["ab", "b"], False),
    ("contains", "c", ["a", "b"], False),
    ("contains", "x", [], False),
    ("contains", 1, [1, 2], True),
    ("contains", "1", [1, 2], True),
    ("contains", 3, [1, 2], False),
    ("contains", "true", [True], True),
    ("contains", "none", [None], False),
    # starts_with / ends_with
    ("starts_with", "/checkout", "/checkout/done", True),
    ("starts_with", "/checkout", "/cart/checkout", False),
    ("starts_with", "/Checkout", "/checkout/done", False),
    ("starts_with", "/checkout", None, False),
    ("starts_with", "/checkout", MISSING, False),
    ("starts_with", "12", 12345, True),
    ("starts_with", 12, 12345, True),
    ("starts_with", "tr", True, True),
    ("starts_with", "", "", True),
    ("ends_with", ".example", "www.shop.example", True),
    ("ends_with", ".example", "www.shop.example.com", False),
    ("ends_with", ".EXAMPLE", "www.shop.example", False),
    ("ends_with", ".example", None, False),
    ("ends_with", ".example", MISSING, False),
    ("ends_with", "45", 12345, True),
    ("ends_with", 45, 12345, True),
    ("ends_with", "lse", False, True),
    # matches: a regular expression searched anywhere in the text
    ("matches", "^/checkout/", "/checkout/done", True),
    ("matches", "^/checkout/", "/cart/checkout/", False),
    ("matches", "checkout", "/cart/checkout/", True),
    ("matches", "^/CHECKOUT", "/checkout/done", False),
    ("matches", "^/checkout/", None, False),
    ("matches", "^/checkout/", MISSING, False),
    ("matches", "", "", True),
    ("matches", r"^\d+$", 12345, True),
    ("matches", r"^\d+$", "123a", False),
    ("matches", "^true$", True, True),
    ("matches", r"^12\.5$", 12.5, True),
    ("matches", '^\\["a"\\]$', ["a"], True),
    # in: one of a list
    ("in", ["purchase", "sign_up"], "purchase", True),
    ("in", ["purchase", "sign_up"], "view_item", False),
    ("in", ["purchase", "sign_up"], "Purchase", False),
    ("in", ["purchase", "sign_up"], None, False),
    ("in", ["purchase", "sign_up"], MISSING, False),
    ("in", [], "purchase", False),
    ("in", [10, 20], 10, True),
    ("in", [10, 20], "10", True),
    ("in", [10, 20], 10.0, True),
    ("in", [10, 20], "20.0", True),
    ("in", [10, 20], 30, False),
    ("in", [10, 20], True, False),
    ("in", ["10", "20"], 10, True),
    ("in", [True], True, True),
    ("in", [True], "true", True),
    ("in", [True], 1, False),
    ("in", ["true"], True, True),
    ("in", [False], None, False),
    ("in", ["", "x"], "", True),
    ("in", ["a", "b"], ["a"], False),
    # gt / gte / lt / lte: numeric, false for anything that is not a finite number
    ("gt", 10, 11, True),
    ("gt", 10, 10, False),
    ("gt", 10, 9, False),
    ("gt", 10, 10.5, True),
    ("gt", 10, "11", True),
    ("gt", 10, " 11 ", True),
    ("gt", 10, "10.01", True),
    ("gt", 10, "1e3", True),
    ("gt", 10, "-11", False),
    ("gt", 10, "abc", False),
    ("gt", 10, "", False),
    ("gt", 10, "11abc", False),
    ("gt", 10, "0x20", False),
    ("gt", 10, "1_000", False),
    ("gt", 10, "١٢", False),
    ("gt", 10, "NaN", False),
    ("gt", 10, "nan", False),
    ("gt", 10, "inf", False),
    ("gt", 10, "Infinity", False),
    ("gt", 10, "1e999", False),
    ("gt", 10, float("inf"), False),
    ("gt", 10, float("nan"), False),
    ("gt", 10, 10**400, False),
    ("gt", 0, True, False),
    ("gt", 0, [1], False),
    ("gt", 0, {"a": 1}, False),
    ("gt", 10, None, False),
    ("gt", 10, MISSING, False),
    ("gt", "9.5", 9.6, True),
    ("gt", "9.5", 9.5, False),
    ("gt", -1, 0, True),
    ("gte", 10, 10, True),
    ("gte", 10, "10", True),
    ("gte", 10, 10.0, True),
    ("gte", 10, 9.99, False),
    ("gte", 10, "abc", False),
    ("gte", 10, None, False),
    ("gte", 10, MISSING, False),
    ("gte", 0, False, False),
    ("lt", 10, 9, True),
    ("lt", 10, 10, False),
    ("lt", 10, "-5", True),
    ("lt", 10, "-inf", False),
    ("lt", 10, "abc", False),
    ("lt", 10, None, False),
    ("lt", 10, MISSING, False),
    ("lt", 10, False, False),
    ("lt", 10, "", False),
    ("lte", 10, 10, True),
    ("lte", 10, " 10 ", True),
    ("lte", 10, 10.01, False),
    ("lte", 10, "abc", False),
    ("lte", 10, None, False),
    ("lte", 10, MISSING, False),
    # exists: present and not null
    ("exists", True, "x", True),
    ("exists", True, "", True),
    ("exists", True, 0, True),
    ("exists", True, False, True),
    ("exists", True, [], True),
    ("exists", True, None, False),
    ("exists", True, MISSING, False),
    ("exists", False, None, True),
    ("exists", False, MISSING, True),
    ("exists", False, "x", False),
    ("exists", False, 0, False),
]


def _event(value: Any) -> dict[str, Any]:
    return {} if value is MISSING else {"v": value}


@pytest.mark.parametrize(("op", "expected", "value", "result"), OPERATOR_CASES)
def test_operator(op: str, expected: Any, value: Any, result: bool) -> None:
    assert check({"key": "v", op: expected}, _event(value)) is result


@pytest.mark.parametrize(("op", "expected", "value", "result"), OPERATOR_CASES)
def test_negated_operator(op: str, expected: Any, value: Any, result: bool) -> None:
    assert check({"key": "v", f"not_{op}": expected}, _event(value)) is (not result)


def test_every_operator_and_negation_is_covered() -> None:
    covered = {case[0] for case in OPERATOR_CASES}
    assert covered == set(OPERATORS)
    assert set(ALL_OPERATORS) == set(OPERATORS) | {f"not_{op}" for op in OPERATORS}


@pytest.mark.parametrize(
    ("op", "expected", "value", "ignore_case", "result"),
    [
        ("equals", "PURCHASE", "purchase", True, True),
        ("equals", "PURCHASE", "purchase", False, False),
        ("equals", "purchase", "PURCHASE", True, True),
        ("contains", "SHOP", "www.shop.example", True, True),
        ("contains", "SHOP", "www.shop.example", False, False),
        ("contains", "A", ["a", "b"], True, True),
        ("contains", "A", ["a", "b"], False, False),
        ("starts_with", "/CHECK", "/checkout", True, True),
        ("starts_with", "/CHECK", "/checkout", False, False),
        ("ends_with", ".EXAMPLE", "shop.example", True, True),
        ("ends_with", ".EXAMPLE", "shop.example", False, False),
        ("matches", "^/CHECKOUT/", "/checkout/done", True, True),
        ("matches", "^/CHECKOUT/", "/checkout/done", False, False),
        ("in", ["PURCHASE", "SIGN_UP"], "sign_up", True, True),
        ("in", ["PURCHASE", "SIGN_UP"], "sign_up", False, False),
        ("in", ["purchase"], "PURCHASE", True, True),
        ("equals", True, "True", False, True),  # booleans compare case-insensitively anyway
        ("equals", "x", None, True, False),
        ("contains", "x", None, True, False),
        ("matches", "x", None, True, False),
        ("in", ["x"], None, True, False),
    ],
)
def test_ignore_case(op: str, expected: Any, value: Any, ignore_case: bool, result: bool) -> None:
    raw = {"key": "v", op: expected, "ignore_case": ignore_case}
    assert check(raw, {"v": value}) is result
    negated = {"key": "v", f"not_{op}": expected, "ignore_case": ignore_case}
    assert check(negated, {"v": value}) is (not result)


@pytest.mark.parametrize(
    ("raw", "event", "result"),
    [
        ({"var": "event_name", "equals": "purchase"}, {"event_name": "purchase"}, True),
        ({"var": "event_name", "equals": "purchase"}, {"event_name": "refund"}, False),
        (
            {"var": "email", "ends_with": "@x.example"},
            {"user_data": {"email_address": "a@x.example"}},
            True,
        ),
        ({"var": "email", "exists": True}, {"user_data": {}}, False),
        (
            {"key": "user_data.email_address", "contains": "@"},
            {"user_data": {"email_address": "a@b"}},
            True,
        ),
        ({"key": "user_data.email_address", "exists": True}, {"user_data": "flat"}, False),
        ({"key": "items.0.item_id", "equals": "SKU1"}, {"items": [{"item_id": "SKU1"}]}, True),
        ({"key": "items.1.item_id", "exists": True}, {"items": [{"item_id": "SKU1"}]}, False),
        # `key` reads event data only; an undefined key is simply missing (no compile error)
        ({"key": "no.such.key", "exists": False}, {}, True),
        ({"key": "email", "exists": True}, {"user_data": {"email_address": "a@b"}}, False),
        ({"var": "shop_currency", "equals": "BRL"}, {}, True),
        (
            {"var": "page_path", "starts_with": "/checkout"},
            {"page_location": "https://s.example/checkout/x"},
            True,
        ),
        (
            {"var": "page_hostname", "equals": "s.example"},
            {"page_location": "https://S.example/x"},
            True,
        ),
    ],
)
def test_var_and_key_sources(raw: dict[str, Any], event: dict[str, Any], result: bool) -> None:
    assert check(raw, event) is result


def test_var_reads_request_and_client_builtins() -> None:
    request = HitRequest("POST", "/g/collect", "v=2&en=purchase")
    assert check({"var": "request_path", "equals": "/g/collect"}, {}, request) is True
    assert check({"var": "request_method", "equals": "post", "ignore_case": True}, {}, request)
    assert check({"var": "query_string", "contains": "en=purchase"}, {}, request) is True
    assert check({"var": "request_path", "exists": True}, {}, None) is False
    assert check({"var": "client_name", "equals": "ga4"}, {}, None, "ga4") is True
    assert check({"var": "client_name", "equals": "ga4"}, {}, None, None) is False


@pytest.mark.parametrize(
    ("event", "result"),
    [
        ({"event_name": "purchase"}, True),
        ({"event_name": "Purchase"}, False),
        ({"event_name": "purchase_x"}, False),
        ({}, False),
    ],
)
def test_event_name_shorthand(event: dict[str, Any], result: bool) -> None:
    assert check({"event_name": "purchase"}, event) is result


def test_event_name_shorthand_with_a_number_compares_as_number() -> None:
    assert check({"event_name": 404}, {"event_name": "404"}) is True


T = {"event_name": "purchase"}  # matches EVENT
F = {"event_name": "refund"}  # does not match EVENT
EVENT = {"event_name": "purchase", "value": 50, "page_path": "/checkout/done"}


@pytest.mark.parametrize(
    ("raw", "result"),
    [
        ([], True),
        ([T], True),
        ([F], False),
        ([T, T], True),
        ([T, F], False),
        ([F, T], False),
        ({"all": []}, True),
        ({"all": [T]}, True),
        ({"all": [T, T, T]}, True),
        ({"all": [T, F]}, False),
        ({"any": []}, False),
        ({"any": [F]}, False),
        ({"any": [F, T]}, True),
        ({"any": [F, F]}, False),
        ({"not": T}, False),
        ({"not": F}, True),
        ({"not": {"not": T}}, True),
        ({"not": []}, False),
        ({"not": [T, F]}, True),
        ({"not": {"any": []}}, True),
        ({"all": [{"any": [F, T]}, {"not": F}]}, True),
        ({"all": [{"any": [F, F]}, {"not": F}]}, False),
        ({"any": [{"all": [T, F]}, {"all": [T, {"key": "value", "gte": 50}]}]}, True),
        ({"any": [{"all": [T, F]}, {"all": [T, {"key": "value", "gt": 50}]}]}, False),
        ([{"any": [T]}, [T, {"not": F}]], True),
        ([{"any": [T]}, [T, {"not": T}]], False),
    ],
)
def test_combinators(raw: Any, result: bool) -> None:
    assert check(raw, EVENT) is result


def test_all_empty_matches_an_empty_event() -> None:
    assert check({"all": []}, {}) is True
    assert check([], {}) is True


def test_any_stops_at_the_first_match_and_all_at_the_first_miss() -> None:
    condition_any = compile_condition(
        {"any": [T, {"var": "email", "exists": True}]}, "t", is_variable
    )
    condition_all = compile_condition(
        {"all": [F, {"var": "email", "exists": True}]}, "t", is_variable
    )
    scope = Scope(EVENT, None, None, VARIABLES)
    assert condition_any(scope) is True
    assert condition_all(scope) is False
    # neither needed the second condition, so `email` was never resolved
    assert "email" not in scope._cache


def test_is_variable_is_asked_only_for_var_names() -> None:
    asked: list[str] = []

    def recording(name: str) -> bool:
        asked.append(name)
        return True

    compile_condition(
        {"all": [{"var": "a", "equals": 1}, {"key": "b", "equals": 1}, {"event_name": "x"}]},
        "t",
        recording,
    )
    assert asked == ["a", "event_name"]


# (condition, error path, message fragment, error points at the key rather than the value)
ERROR_CASES = [
    ({"var": "event_name", "bogus": 1}, "t.bogus", "unknown operator 'bogus'", True),
    ({"var": "event_name", "Equals": "x"}, "t.Equals", "unknown operator 'Equals'", True),
    ({"var": "event_name", "not_bogus": 1}, "t.not_bogus", "unknown operator 'not_bogus'", True),
    ({"var": "event_name", "not_not_equals": 1}, "t.not_not_equals", "unknown operator", True),
    (
        {"event_name": "x", "var": "page_path"},
        "t.event_name",
        "unknown operator 'event_name'",
        True,
    ),
    ({"var": "event_name", "equals": "a", "contains": "b"}, "t", "exactly one operator", False),
    ({"var": "event_name", "equals": "a", "not_equals": "b"}, "t", "exactly one operator", False),
    ({"var": "event_name"}, "t", "exactly one operator", False),
    ({"var": "event_name", "ignore_case": True}, "t", "exactly one operator", False),
    ({"equals": "a"}, "t", "exactly one of `var` or `key`", False),
    (
        {"var": "event_name", "key": "event_name", "equals": "a"},
        "t",
        "exactly one of `var` or `key`",
        False,
    ),
    ({"var": "nope", "equals": "a"}, "t.var", "unknown variable 'nope'", False),
    ({"var": "", "equals": "a"}, "t.var", "expected a non-empty name", False),
    ({"var": None, "equals": "a"}, "t.var", "expected a non-empty name", False),
    ({"key": 5, "equals": "a"}, "t.key", "expected a non-empty name", False),
    ({"key": "", "equals": "a"}, "t.key", "expected a non-empty name", False),
    ({"var": "page_path", "matches": "("}, "t.matches", "invalid regular expression", False),
    (
        {"var": "page_path", "not_matches": "[a-"},
        "t.not_matches",
        "invalid regular expression",
        False,
    ),
    ({"var": "page_path", "matches": "*x"}, "t.matches", "invalid regular expression", False),
    ({"var": "event_name", "in": "purchase"}, "t.in", "`in` needs a list", False),
    ({"var": "event_name", "in": {"a": 1}}, "t.in", "`in` needs a list", False),
    ({"var": "event_name", "not_in": None}, "t.not_in", "`in` needs a list", False),
    ({"key": "value", "gt": "abc"}, "t.gt", "`gt` needs a number", False),
    ({"key": "value", "gt": True}, "t.gt", "`gt` needs a number", False),
    ({"key": "value", "gt": [1]}, "t.gt", "`gt` needs a number", False),
    ({"key": "value", "gte": None}, "t.gte", "`gte` needs a number", False),
    ({"key": "value", "lt": "NaN"}, "t.lt", "`lt` needs a number", False),
    ({"key": "value", "lte": "inf"}, "t.lte", "`lte` needs a number", False),
    ({"key": "value", "lte": float("inf")}, "t.lte", "`lte` needs a number", False),
    ({"key": "value", "gt": "1_000"}, "t.gt", "`gt` needs a number", False),
    ({"key": "value", "not_gt": "x"}, "t.not_gt", "`gt` needs a number", False),
    ({"key": "value", "exists": "yes"}, "t.exists", "`exists` takes true or false", False),
    ({"key": "value", "exists": 1}, "t.exists", "`exists` takes true or false", False),
    ({"key": "value", "not_exists": "true"}, "t.not_exists", "`exists` takes true or false", False),
    ({"key": "value", "exists": None}, "t.exists", "`exists` takes true or false", False),
    ({"key": "v", "equals": None}, "t.equals", "`equals` needs a string, number or boolean", False),
    ({"key": "v", "contains": ["a"]}, "t.contains", "`contains` needs a string", False),
    ({"key": "v", "starts_with": {"a": 1}}, "t.starts_with", "`starts_with` needs a string", False),
    ({"key": "v", "not_ends_with": None}, "t.not_ends_with", "`ends_with` needs a string", False),
    ({"key": "v", "matches": None}, "t.matches", "`matches` needs a string", False),
    (
        {"key": "v", "equals": "x", "ignore_case": "yes"},
        "t.ignore_case",
        "expected true or false",
        False,
    ),
    ({}, "t", "empty condition", False),
    ("purchase", "t", "a condition must be a mapping, got str", False),
    (5, "t", "a condition must be a mapping, got int", False),
    (None, "t", "a condition must be a mapping, got NoneType", False),
    (True, "t", "a condition must be a mapping, got bool", False),
    ({"all": {"event_name": "x"}}, "t.all", "expected a list of conditions", False),
    ({"any": "x"}, "t.any", "expected a list of conditions", False),
    ({"all": [], "var": "event_name"}, "t", "`all` must be the only key", False),
    ({"any": [], "all": []}, "t", "`all` must be the only key", False),
    ({"any": [], "event_name": "x"}, "t", "`any` must be the only key", False),
    ({"not": T, "var": "event_name"}, "t", "`not` must be the only key", False),
    ({"not": None}, "t.not", "a condition must be a mapping, got NoneType", False),
    ({"not": {}}, "t.not", "empty condition", False),
    ({"event_name": ["a", "b"]}, "t.event_name", "needs a string, number or boolean", False),
    ({"event_name": None}, "t.event_name", "needs a string, number or boolean", False),
    ([T, "x"], "t[1]", "a condition must be a mapping, got str", False),
    ([T, [T, {}]], "t[1][1]", "empty condition", False),
    (
        {"all": [T, {"any": [F, {"var": "nope", "equals": 1}]}]},
        "t.all[1].any[1].var",
        "unknown variable 'nope'",
        False,
    ),
    ({"not": {"any": [{"key": "v", "gt": "x"}]}}, "t.not.any[0].gt", "`gt` needs a number", False),
    ({"all": [{"all": [{"key": "v", "bad": 1}]}]}, "t.all[0].all[0].bad", "unknown operator", True),
]


@pytest.mark.parametrize(("raw", "path", "message", "at_key"), ERROR_CASES)
def test_compile_errors(raw: Any, path: str, message: str, at_key: bool) -> None:
    with pytest.raises(ConditionError) as info:
        compile_condition(raw, "t", is_variable)
    assert info.value.path == path
    assert message in str(info.value)
    assert info.value.at_key is at_key


def test_unknown_operator_message_lists_the_operators() -> None:
    with pytest.raises(ConditionError) as info:
        compile_condition({"var": "event_name", "eq": "x"}, "triggers.p", is_variable)
    assert str(info.value) == (
        "unknown operator 'eq' (expected one of equals, contains, starts_with, ends_with, "
        "matches, in, gt, gte, lt, lte, exists or not_<op>)"
    )
    assert info.value.path == "triggers.p.eq"


def test_compiled_condition_is_reusable_across_events() -> None:
    condition = compile_condition({"key": "value", "gt": 10}, "t", is_variable)
    results = [condition(Scope({"value": v}, None, None, {})) for v in (5, 15, "20", None, 11)]
    assert results == [False, True, True, False, True]
