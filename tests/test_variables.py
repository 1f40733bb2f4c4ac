"""sgtm.variables: built-ins, each variable type, memoization per Scope."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from sgtm.plugin import Variable
from sgtm.request import HitRequest
from sgtm.scope import BUILTIN_READS, BUILTINS, BoundVariable, Scope
from sgtm.variables import LookupVariable, RegexTableVariable, view_shared
from tests.installed import registry


def bind(var_name: str, type_name: str, /, **settings: Any) -> BoundVariable:
    """A variable as the loader builds it: registered type, settings through msgspec."""
    vtype = registry().variables[type_name]
    return BoundVariable(var_name, vtype, msgspec.convert(settings, vtype.Settings, strict=False))


def resolve(
    variables: list[BoundVariable],
    name: str,
    event: dict[str, Any] | None = None,
    request: HitRequest | None = None,
    client: str | None = None,
) -> Any:
    scope = Scope(event or {}, request, client, {v.name: v for v in variables})
    return scope.var(name)


REQUEST = HitRequest(
    "POST",
    "/g/collect",
    "v=2&en=purchase&en=second&dl=https%3A%2F%2Fs.example%2Fp&empty=&sp=a+b",
    headers={"user-agent": "UA/1.0", "cookie": '_ga=GA1.1.111.222; FPID="quoted"; x=1'},
    host="sgtm.shop.example",
)


def test_registered_variable_types() -> None:
    assert {
        "event_data",
        "constant",
        "request_header",
        "cookie",
        "query_param",
        "lookup",
        "regex_table",
    } <= set(registry().variables)


BUILTIN_CASES = [
    ("client_name", {}, None, "ga4", "ga4"),
    ("client_name", {}, None, None, None),
    ("event_name", {"event_name": "purchase"}, None, None, "purchase"),
    ("event_name", {}, None, None, None),
    ("request_path", {}, REQUEST, None, "/g/collect"),
    ("request_path", {}, None, None, None),
    ("request_method", {}, REQUEST, None, "POST"),
    ("request_method", {}, None, None, None),
    ("query_string", {}, REQUEST, None, REQUEST.query_string),
    ("query_string", {}, HitRequest("GET", "/"), None, ""),
    ("query_string", {}, None, None, None),
    (
        "page_location",
        {"page_location": "https://s.example/a?b=1"},
        None,
        None,
        "https://s.example/a?b=1",
    ),
    ("page_location", {}, None, None, None),
    # page_path / page_hostname: the event's own keys win ...
    (
        "page_path",
        {"page_path": "/explicit", "page_location": "https://s.example/other"},
        None,
        None,
        "/explicit",
    ),
    (
        "page_hostname",
        {"page_hostname": "a.example", "page_location": "https://b.example/"},
        None,
        None,
        "a.example",
    ),
    # ... else derived from page_location
    (
        "page_path",
        {"page_location": "https://s.example/checkout/done?x=1#top"},
        None,
        None,
        "/checkout/done",
    ),
    ("page_path", {"page_location": "https://s.example"}, None, None, "/"),
    ("page_path", {"page_location": "https://s.example?x=1"}, None, None, "/"),
    ("page_path", {"page_location": "https://s.example/a%20b"}, None, None, "/a%20b"),
    (
        "page_hostname",
        {"page_location": "https://WWW.Shop.Example:8443/x"},
        None,
        None,
        "www.shop.example",
    ),
    ("page_hostname", {"page_location": "https://user:pw@s.example/"}, None, None, "s.example"),
    ("page_hostname", {"page_location": "/relative/only"}, None, None, None),
    ("page_path", {"page_location": "/relative/only"}, None, None, "/relative/only"),
    ("page_path", {}, None, None, None),
    ("page_hostname", {}, None, None, None),
    ("page_path", {"page_location": ""}, None, None, None),
    ("page_hostname", {"page_location": 123}, None, None, None),
    ("page_path", {"page_location": ["https://s.example/x"]}, None, None, None),
    ("page_hostname", {"page_location": "http://[::1"}, None, None, None),
    ("page_path", {"page_location": "http://[::1"}, None, None, None),
    (
        "page_hostname",
        {"page_hostname": None, "page_location": "https://s.example/"},
        None,
        None,
        "s.example",
    ),
    (
        "page_referrer",
        {"page_referrer": "https://ref.example/"},
        None,
        None,
        "https://ref.example/",
    ),
    ("client_id", {"client_id": "123.456"}, None, None, "123.456"),
    ("user_id", {"user_id": "u1"}, None, None, "u1"),
    ("ip_override", {"ip_override": "1.2.3.0"}, None, None, "1.2.3.0"),
    ("user_agent", {"user_agent": "UA/2"}, REQUEST, None, "UA/2"),
    ("analytics_session_id", {"ga_session_id": "1700000000"}, None, None, "1700000000"),
    ("analytics_session_number", {"ga_session_number": 3}, None, None, 3),
    ("analytics_session_id", {}, None, None, None),
]


@pytest.mark.parametrize(("name", "event", "request_", "client", "expected"), BUILTIN_CASES)
def test_builtin(
    name: str, event: dict[str, Any], request_: HitRequest | None, client: str | None, expected: Any
) -> None:
    assert resolve([], name, event, request_, client) == expected


def test_every_builtin_is_tested() -> None:
    assert {case[0] for case in BUILTIN_CASES} == set(BUILTINS)


def test_unknown_name_resolves_to_none() -> None:
    assert resolve([], "no_such_variable", {"no_such_variable": "x"}) is None


@pytest.mark.parametrize(
    ("settings", "event", "expected"),
    [
        (
            {"key": "user_data.email_address"},
            {"user_data": {"email_address": "a@b.example"}},
            "a@b.example",
        ),
        ({"key": "user_data.email_address"}, {"user_data": {}}, None),
        ({"key": "user_data.email_address", "default": "none"}, {}, "none"),
        ({"key": "v", "default": "d"}, {"v": None}, "d"),
        ({"key": "v", "default": "d"}, {"v": False}, False),
        ({"key": "v", "default": "d"}, {"v": 0}, 0),
        ({"key": "v", "default": "d"}, {"v": ""}, ""),
        ({"key": "items.1.price"}, {"items": [{"price": 1}, {"price": 2.5}]}, 2.5),
        ({"key": "items"}, {"items": [{"a": 1}]}, [{"a": 1}]),
        ({"key": "x-ga-mp2-seg"}, {"x-ga-mp2-seg": "1"}, "1"),
        ({"key": "a.b"}, {"a.b": "literal", "a": {"b": "nested"}}, "literal"),
    ],
)
def test_event_data(settings: dict[str, Any], event: dict[str, Any], expected: Any) -> None:
    assert resolve([bind("x", "event_data", **settings)], "x", event) == expected


@pytest.mark.parametrize("value", ["BRL", 0, 1.5, False, None, [1, "a"], {"k": {"n": 1}}])
def test_constant(value: Any) -> None:
    assert resolve([bind("x", "constant", value=value)], "x", {"value": "other"}) == value


@pytest.mark.parametrize(
    ("type_name", "settings", "request_", "expected"),
    [
        ("request_header", {"name": "User-Agent"}, REQUEST, "UA/1.0"),
        ("request_header", {"name": "user-agent"}, REQUEST, "UA/1.0"),
        ("request_header", {"name": "X-Missing"}, REQUEST, None),
        ("request_header", {"name": "X-Missing", "default": "d"}, REQUEST, "d"),
        ("request_header", {"name": "User-Agent", "default": "d"}, None, "d"),
        ("request_header", {"name": "User-Agent"}, None, None),
        ("cookie", {"name": "_ga"}, REQUEST, "GA1.1.111.222"),
        ("cookie", {"name": "FPID"}, REQUEST, "quoted"),
        ("cookie", {"name": "_GA"}, REQUEST, None),
        ("cookie", {"name": "nope", "default": "d"}, REQUEST, "d"),
        ("cookie", {"name": "_ga", "default": "d"}, None, "d"),
        ("cookie", {"name": "_ga"}, HitRequest("GET", "/"), None),
        ("query_param", {"name": "en"}, REQUEST, "purchase"),
        ("query_param", {"name": "dl"}, REQUEST, "https://s.example/p"),
        ("query_param", {"name": "sp"}, REQUEST, "a b"),
        ("query_param", {"name": "empty", "default": "d"}, REQUEST, ""),
        ("query_param", {"name": "EN"}, REQUEST, None),
        ("query_param", {"name": "nope", "default": "d"}, REQUEST, "d"),
        ("query_param", {"name": "en", "default": "d"}, None, "d"),
    ],
)
def test_request_variables(
    type_name: str, settings: dict[str, Any], request_: HitRequest | None, expected: Any
) -> None:
    assert resolve([bind("x", type_name, **settings)], "x", {}, request_) == expected


TIER = {"1": "gold", "2": "silver", "true": "yes", "false": "no", "1.5": "one and a half"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", "gold"),
        (1, "gold"),
        (1.0, "gold"),
        (2, "silver"),
        ("1.0", "other"),
        (1.5, "one and a half"),
        (True, "yes"),
        (False, "no"),
        ("True", "other"),
        (3, "other"),
        (None, "other"),
        (" 1", "other"),
    ],
)
def test_lookup_input_types(value: Any, expected: str) -> None:
    tier = bind("tier", "lookup", input="level", map=TIER, default="other")
    level = bind("level", "event_data", key="level")
    assert resolve([tier, level], "tier", {"level": value}) == expected


@pytest.mark.parametrize(
    ("settings", "event", "expected"),
    [
        ({"map": {"purchase": "Purchase"}}, {"event_name": "purchase"}, "Purchase"),
        ({"map": {"purchase": "Purchase"}}, {"event_name": "PURCHASE"}, None),
        ({"map": {"purchase": "Purchase"}, "default": "Other"}, {"event_name": "x"}, "Other"),
        ({"map": {"purchase": "Purchase"}, "default": "Other"}, {}, "Other"),
        ({"map": {"": "empty"}, "default": "Other"}, {}, "empty"),
        # templated outputs: a whole reference keeps its type, text around it makes a string
        ({"map": {"purchase": "{{currency}}"}}, {"event_name": "purchase"}, "BRL"),
        ({"map": {"purchase": "{{event.value}}"}}, {"event_name": "purchase", "value": 99.9}, 99.9),
        ({"map": {"purchase": "v={{event.value}}"}}, {"event_name": "purchase", "value": 5}, "v=5"),
        (
            {"map": {"purchase": {"c": "{{currency}}", "n": 1}}},
            {"event_name": "purchase"},
            {"c": "BRL", "n": 1},
        ),
        ({"map": {"purchase": ["{{currency}}", "x"]}}, {"event_name": "purchase"}, ["BRL", "x"]),
        (
            {"map": {"a": 1}, "default": "{{event.page_path}}"},
            {"event_name": "b", "page_path": "/p"},
            "/p",
        ),
        ({"map": {"a": 1}, "default": "{{nope}}"}, {"event_name": "b"}, None),
        ({"map": {"purchase": 0}, "default": 1}, {"event_name": "purchase"}, 0),
        ({"map": {"purchase": None}, "default": 1}, {"event_name": "purchase"}, None),
    ],
)
def test_lookup(settings: dict[str, Any], event: dict[str, Any], expected: Any) -> None:
    variables = [
        bind("x", "lookup", input="event_name", **settings),
        bind("currency", "constant", value="BRL"),
    ]
    assert resolve(variables, "x", event) == expected


def test_lookup_chains_through_other_variables() -> None:
    variables = [
        bind(
            "section",
            "regex_table",
            input="page_path",
            patterns=[{"match": "^/p/", "value": "product"}],
        ),
        bind("content_group", "lookup", input="section", map={"product": "PDP"}, default="other"),
    ]
    assert resolve(variables, "content_group", {"page_path": "/p/1"}) == "PDP"
    assert resolve(variables, "content_group", {"page_path": "/cart"}) == "other"


def test_lookup_and_regex_table_references() -> None:
    lookup = bind("x", "lookup", input="event_name", map={})
    table = bind("y", "regex_table", input="page_path", patterns=[])
    assert LookupVariable().references(lookup.settings) == ["event_name"]
    assert RegexTableVariable().references(table.settings) == ["page_path"]


def test_self_referencing_lookup_returns_default_instead_of_recursing() -> None:
    loop = bind("loop", "lookup", input="loop", map={"x": "y"})
    assert resolve([loop], "loop", {}) is None
    with_default = bind("loop", "lookup", input="loop", map={"x": "y"}, default="d")
    assert resolve([with_default], "loop", {}) == "d"


def test_mutually_referencing_variables_terminate() -> None:
    a = bind("a", "lookup", input="b", map={"": "a-saw-nothing"}, default="a-default")
    b = bind("b", "lookup", input="a", map={"": "b-saw-nothing"}, default="b-default")
    scope = Scope({}, None, None, {"a": a, "b": b})
    # a asks b; b asks a, which is being computed and reads as None ("" as a key)
    assert scope.var("a") == "a-default"
    assert scope.var("b") == "b-saw-nothing"


PRODUCT_ROWS = [
    {"match": r"^/p/(\d+)", "value": "product-$1"},
    {"match": "^/p/", "value": "product"},
    {"match": "^/checkout", "value": "checkout"},
]


@pytest.mark.parametrize(
    ("settings", "subject", "expected"),
    [
        ({"patterns": PRODUCT_ROWS}, "/p/123", "product-123"),
        ({"patterns": PRODUCT_ROWS}, "/p/abc", "product"),
        ({"patterns": PRODUCT_ROWS}, "/checkout/done", "checkout"),
        ({"patterns": PRODUCT_ROWS}, "/cart", None),
        ({"patterns": PRODUCT_ROWS, "default": "other"}, "/cart", "other"),
        ({"patterns": PRODUCT_ROWS, "default": "other"}, None, "other"),
        # first match wins, even when a later row is more specific
        (
            {"patterns": [{"match": "^/p/", "value": "a"}, {"match": "^/p/sale", "value": "b"}]},
            "/p/sale",
            "a",
        ),
        # groups
        ({"patterns": [{"match": r"^/(\w+)/(\w+)", "value": "$2-$1"}]}, "/shoes/red", "red-shoes"),
        ({"patterns": [{"match": r"(\d+)", "value": "[$0]"}]}, "a12b", "[12]"),
        ({"patterns": [{"match": r"^/p(/x)?", "value": "<$1>"}]}, "/p/y", "<>"),
        ({"patterns": [{"match": r"^/p/(\d+)", "value": "$2"}]}, "/p/1", "$2"),
        ({"patterns": [{"match": "^/p", "value": "$1"}]}, "/p", "$1"),
        ({"patterns": [{"match": "^/p", "value": "costs $$5"}]}, "/p", "costs $$5"),
        ({"patterns": [{"match": r"^/p/(\d+)", "value": 7}]}, "/p/1", 7),
        # ignore_case
        (
            {"patterns": [{"match": "^/CHECKOUT", "value": "c"}], "ignore_case": True},
            "/checkout/x",
            "c",
        ),
        ({"patterns": [{"match": "^/CHECKOUT", "value": "c"}]}, "/checkout/x", None),
        (
            {"patterns": [{"match": "^/checkout", "value": "c"}], "ignore_case": False},
            "/Checkout",
            None,
        ),
        # full_match: the whole input must match
        ({"patterns": [{"match": r"/p/\d+", "value": "p"}], "full_match": True}, "/p/123", "p"),
        ({"patterns": [{"match": r"/p/\d+", "value": "p"}], "full_match": True}, "/p/123/x", None),
        ({"patterns": [{"match": r"/p/\d+", "value": "p"}]}, "/p/123/x", "p"),
        ({"patterns": [{"match": r"/p/\d+", "value": "p"}], "full_match": True}, "x/p/1", None),
        # typed inputs are matched as text
        ({"patterns": [{"match": "^42$", "value": "answer"}]}, 42, "answer"),
        ({"patterns": [{"match": "^42$", "value": "answer"}]}, 42.0, "answer"),
        ({"patterns": [{"match": "^true$", "value": "t"}]}, True, "t"),
        ({"patterns": [{"match": "^$", "value": "empty"}]}, None, "empty"),
        # templated values and default
        ({"patterns": [{"match": r"^/p/(\d+)", "value": "{{currency}}-$1"}]}, "/p/9", "BRL-9"),
        ({"patterns": [{"match": "^/p", "value": "{{event.value}}"}]}, "/p", 10),
        ({"patterns": [], "default": "{{currency}}"}, "/p", "BRL"),
        ({"patterns": [], "default": "{{event.value}}"}, "/p", 10),
    ],
)
def test_regex_table(settings: dict[str, Any], subject: Any, expected: Any) -> None:
    variables = [
        bind("x", "regex_table", input="subject", **settings),
        bind("subject", "event_data", key="subject"),
        bind("currency", "constant", value="BRL"),
    ]
    assert resolve(variables, "x", {"subject": subject, "value": 10}) == expected


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(", "invalid regular expression: missing ): ("),
        ("[a-", "invalid regular expression: missing ]: [a-"),
        ("*x", "invalid regular expression: no argument for repetition operator: *"),
        ("(a)\\1", "RE2 (sgtm's linear-time regex engine) has no backreference `\\1`"),
    ],
)
def test_regex_table_bad_regex_is_a_validation_error_naming_the_row(
    pattern: str, reason: str
) -> None:
    settings = {
        "input": "page_path",
        "patterns": [{"match": "^ok", "value": 1}, {"match": pattern, "value": 2}],
    }
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.convert(settings, RegexTableVariable.Settings)
    # "match: " lets the config loader point at the row's `match` key.
    assert str(info.value).startswith(f"match: {reason}")
    assert str(info.value).endswith(" - at `$.patterns[1]`")


@pytest.mark.parametrize(
    ("type_name", "settings", "fragment"),
    [
        ("event_data", {}, "missing required field `key`"),
        ("event_data", {"key": "a", "bogus": 1}, "unknown field `bogus`"),
        ("constant", {}, "missing required field `value`"),
        ("cookie", {"name": 5}, "Expected `str`, got `int`"),
        ("lookup", {"input": "a"}, "missing required field `map`"),
        ("lookup", {"input": "a", "map": [1]}, "Expected `object`, got `array`"),
        (
            "regex_table",
            {"input": "a", "patterns": [{"match": "x"}]},
            "missing required field `value`",
        ),
        ("regex_table", {"input": "a", "patterns": [], "ignore_case": "maybe"}, "Expected `bool`"),
    ],
)
def test_settings_are_checked(type_name: str, settings: dict[str, Any], fragment: str) -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.convert(settings, registry().variables[type_name].Settings, strict=False)
    assert fragment in str(info.value)


class Counting(Variable):
    name = "counting"

    def __init__(self, value: Any) -> None:
        self.value = value
        self.calls = 0

    def resolve(self, settings: Any, scope: Any) -> Any:
        self.calls += 1
        return self.value


@pytest.mark.parametrize("value", ["v", None, 0, False])
def test_a_variable_is_resolved_once_per_scope(value: Any) -> None:
    counting = Counting(value)
    variables = {
        "c": BoundVariable("c", counting, None),
        "via_lookup": bind("via_lookup", "lookup", input="c", map={"v": "seen"}),
    }
    scope = Scope({}, None, None, variables)
    assert scope.var("c") == value
    assert scope.var("c") == value
    scope.var("via_lookup")
    assert counting.calls == 1
    Scope({}, None, None, variables).var("c")
    assert counting.calls == 2


def test_a_variable_is_resolved_lazily() -> None:
    counting = Counting("v")
    scope = Scope({}, None, None, {"c": BoundVariable("c", counting, None)})
    scope.var("other")
    assert counting.calls == 0


def test_builtins_are_memoized_per_scope() -> None:
    event = {"page_location": "https://a.example/x"}
    scope = Scope(event, None, None, {})
    assert scope.var("page_hostname") == "a.example"
    event["page_location"] = "https://b.example/y"
    assert scope.var("page_hostname") == "a.example"
    assert Scope(event, None, None, {}).var("page_hostname") == "b.example"


def test_a_self_reading_variable_sees_none() -> None:
    class SelfReader(Variable):
        name = "self_reader"

        def resolve(self, settings: Any, scope: Any) -> Any:
            return ("inner", scope.var("me"))

    scope = Scope({}, None, None, {"me": BoundVariable("me", SelfReader(), None)})
    assert scope.var("me") == ("inner", None)
    assert scope.var("me") == ("inner", None)


class _Reads(dict):  # type: ignore[type-arg]
    """An event that records the keys read from it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.read: set[str] = set()

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)


@pytest.mark.parametrize("case", BUILTIN_CASES, ids=lambda case: case[0])
def test_builtin_reads_lists_every_key_a_builtin_reads(case: tuple[Any, ...]) -> None:
    name, event, request_, client, _ = case
    recording = _Reads(event)
    Scope(recording, request_, client, {}).var(name)
    assert recording.read <= set(BUILTIN_READS.get(name, ()))


VIEW_VARIABLES = {
    "email": bind("email", "event_data", key="user_data.email_address"),
    "price": bind("price", "event_data", key="items.1.price"),
    "fixed": bind("fixed", "constant", value="c"),
    "header": bind("header", "request_header", name="x-a"),
    "channel": bind("channel", "lookup", input="page_hostname", map={"a.example": "web"}),
    "by_currency": bind(
        "by_currency", "lookup", input="fixed", map={"c": "{{event.currency}}"}, default="x"
    ),
    "section": bind(
        "section",
        "regex_table",
        input="page_path",
        patterns=[{"match": "^/p/(.*)", "value": "$1-{{email}}"}],
    ),
    "custom": BoundVariable("custom", Counting("v"), None),
    "via_custom": bind("via_custom", "lookup", input="custom", map={}),
}


@pytest.mark.parametrize(
    ("written", "not_shared"),
    [
        ([], {"custom", "via_custom"}),
        (["site_section", "channel"], {"custom", "via_custom"}),
        (["currency"], {"custom", "via_custom", "by_currency"}),
        # the key itself, a key under it, a key above it
        (["user_data.email_address"], {"custom", "via_custom", "email", "section"}),
        (["user_data.email_address.x"], {"custom", "via_custom", "email", "section"}),
        (["user_data"], {"custom", "via_custom", "email", "section"}),
        (["user_data.phone_number"], {"custom", "via_custom"}),
        # page_location feeds page_hostname and page_path, and what reads them
        (
            ["page_location"],
            {"custom", "via_custom", "page_location", "page_path", "page_hostname"}
            | {"channel", "section"},
        ),
        (["page_path"], {"custom", "via_custom", "page_path", "section"}),
        # a list item: the whole list (removing one moves the next ones)
        (["items.0"], {"custom", "via_custom", "price"}),
        (["items.3.price"], {"custom", "via_custom", "price"}),
        (["event_name"], {"custom", "via_custom", "event_name"}),
    ],
)
def test_view_shared(written: list[str], not_shared: set[str]) -> None:
    everything = set(VIEW_VARIABLES) | set(BUILTINS)
    assert view_shared(VIEW_VARIABLES, written) == everything - not_shared


def test_view_shared_after_allow_keeps_only_what_reads_no_event_key() -> None:
    no_event = {"fixed", "header", "client_name", "request_path", "request_method"}
    assert view_shared(VIEW_VARIABLES, None) == no_event | {"query_string"}


def test_view_shared_of_variables_reading_each_other_is_none() -> None:
    variables = {
        "a": bind("a", "lookup", input="b", map={}),
        "b": bind("b", "lookup", input="a", map={}),
        "c": bind("c", "event_data", key="x"),
    }
    assert {"a", "b"}.isdisjoint(view_shared(variables, []))
    assert "c" in view_shared(variables, [])


def test_a_view_reads_shared_variables_from_the_event_and_computes_the_others() -> None:
    counting = Counting("v")
    variables = {**VIEW_VARIABLES, "custom": BoundVariable("custom", counting, None)}
    event = {
        "user_data": {"email_address": "a@b.example"},
        "page_location": "https://a.example/p/x",
    }
    scope = Scope(event, None, None, variables)
    view = {**event, "user_data": {"email_address": "changed@b.example"}}
    shared = view_shared(variables, ["user_data.email_address"])
    first = scope.view(view, shared)
    assert first.var("email") == "changed@b.example"
    assert first.var("section") == "x-changed@b.example"
    assert first.var("channel") == "web"
    assert first.var("custom") == "v"
    assert scope.var("email") == "a@b.example"
    assert scope.var("section") == "x-a@b.example"
    # `channel` was computed once, by the event's Scope; `custom` on each Scope
    assert scope._cache["channel"] == "web"
    second = scope.view(view, shared)
    assert second.var("custom") == "v"
    assert counting.calls == 2


def test_a_condition_holds_once_per_scope() -> None:
    calls = []

    def condition(scope: Scope) -> bool:
        calls.append(scope)
        return bool(scope.key("x"))

    event = {"x": 1}
    scope = Scope(event, None, None, {})
    assert scope.holds(condition) is True
    event["x"] = 0
    assert scope.holds(condition) is True  # the event's, as it was when first asked
    assert Scope(event, None, None, {}).holds(condition) is False
    assert len(calls) == 2


def test_page_parts_memo_is_bounded_and_skips_long_locations() -> None:
    """page_hostname / page_path remember pages they split (hits repeat them): at most
    _PAGE_MEMO_ENTRIES, and a location over _PAGE_MEMO_CHARS is split each time, unremembered.
    A hostile client sending a new page on every hit gets right answers and no growth."""
    from sgtm import scope as scope_module

    def read(location: str) -> tuple[Any, Any]:
        scope = Scope({"page_location": location}, None, None, {})
        return scope.var("page_hostname"), scope.var("page_path")

    for n in range(scope_module._PAGE_MEMO_ENTRIES * 2 + 3):
        assert read(f"https://S{n}.example/p/{n}") == (f"s{n}.example", f"/p/{n}")
        assert len(scope_module._PAGE_PARTS) <= scope_module._PAGE_MEMO_ENTRIES
    long_path = "/" + "a" * scope_module._PAGE_MEMO_CHARS
    assert read(f"https://long.example{long_path}") == ("long.example", long_path)
    assert f"https://long.example{long_path}" not in scope_module._PAGE_PARTS
    # Answers that are None (no host, not a URL) are remembered as well and stay right.
    assert read("/relative/only") == (None, "/relative/only")
    assert read("/relative/only") == (None, "/relative/only")
    assert read("http://[::1") == (None, None)
    assert read("http://[::1") == (None, None)


def test_regex_table_row_memo_is_bounded_and_skips_long_subjects() -> None:
    """A regex_table remembers which row a subject matched (inputs repeat): at most
    _ROW_MEMO_ENTRIES subjects of at most _ROW_MEMO_CHARS; a hostile client sending a new path
    on every hit gets right answers and no growth, and a long subject is matched unremembered.
    Row values are still rendered per event (`{{event_name}}` differs between two hits of one
    path)."""
    from sgtm import variables as variables_module

    table = bind(
        "section",
        "regex_table",
        input="page_path",
        patterns=[
            {"match": "^/p/([^/]+)", "value": "product:$1:{{event_name}}"},
            {"match": "^/c/", "value": "category"},
        ],
        default="other",
    )

    def section(path: str, event_name: str = "view") -> Any:
        event = {"page_path": path, "event_name": event_name}
        return Scope(event, None, None, {"section": table}).var("section")

    memo = table.settings._rows
    for n in range(variables_module._ROW_MEMO_ENTRIES * 2 + 3):
        assert section(f"/p/{n}") == f"product:{n}:view"
        assert len(memo) <= variables_module._ROW_MEMO_ENTRIES
    assert section("/p/1", "buy") == "product:1:buy"  # remembered row, value rendered anew
    assert section("/c/shoes") == "category"
    assert section("/nowhere") == section("/nowhere") == "other"
    long_path = "/p/" + "x" * variables_module._ROW_MEMO_CHARS
    assert section(long_path) == f"product:{'x' * variables_module._ROW_MEMO_CHARS}:view"
    assert long_path not in memo
