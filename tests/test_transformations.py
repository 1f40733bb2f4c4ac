"""sgtm.transformations: allow / exclude / augment, `when`, which tags they affect."""

from __future__ import annotations

import textwrap
from typing import Any

import msgspec
import pytest

from sgtm import event as ev
from sgtm.config import load_text
from sgtm.container import Container
from sgtm.dedupe import MemoryDedupe
from sgtm.delivery.recorder import RecorderDelivery
from sgtm.event import copy_event
from sgtm.scope import BUILTINS, BoundVariable, Scope
from sgtm.templates import compile_value
from sgtm.transformations import Transformation, apply_all
from sgtm.triggers import compile_condition
from tests.installed import registry

CURRENCY = BoundVariable(
    "shop_currency",
    registry().variables["constant"],
    msgspec.convert({"value": "BRL"}, registry().variables["constant"].Settings),
)
VARIABLES = {"shop_currency": CURRENCY}


def event() -> dict[str, Any]:
    return {
        "event_name": "purchase",
        "value": 99.9,
        "currency": "USD",
        "transaction_id": "T-1",
        "items": [{"item_id": "SKU1", "price": 10}, {"item_id": "SKU2", "price": 20}],
        "user_data": {
            "email_address": "a@b.example",
            "phone_number": "+5511999999999",
            "address": {"city": "São Paulo", "country": "BR"},
        },
        "x-ga-mp2-seg": "1",
        "a.b": "literal dotted key",
    }


def run(*transformations: Transformation, source: dict[str, Any] | None = None) -> dict[str, Any]:
    original = source if source is not None else event()
    before = copy_event(original)
    view = apply_all(transformations, original, Scope(original, None, "ga4", VARIABLES))
    assert original == before, "the original event was modified"
    return view


def allow(*params: str, **kw: Any) -> Transformation:
    return Transformation(kind="allow", params=params, **kw)


def exclude(*params: str, **kw: Any) -> Transformation:
    return Transformation(kind="exclude", params=params, **kw)


def augment(values: dict[str, Any], **kw: Any) -> Transformation:
    return Transformation(
        kind="augment", set=tuple((k, compile_value(v)) for k, v in values.items()), **kw
    )


def when(raw: Any) -> Any:
    return compile_condition(raw, "when", lambda n: n in VARIABLES or n in BUILTINS)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (("value",), {"event_name": "purchase", "value": 99.9}),
        ((), {"event_name": "purchase"}),
        (
            ("value", "currency", "user_data.email_address"),
            {
                "event_name": "purchase",
                "value": 99.9,
                "currency": "USD",
                "user_data": {"email_address": "a@b.example"},
            },
        ),
        (
            ("user_data.address.city",),
            {"event_name": "purchase", "user_data": {"address": {"city": "São Paulo"}}},
        ),
        (
            ("user_data.address",),
            {
                "event_name": "purchase",
                "user_data": {"address": {"city": "São Paulo", "country": "BR"}},
            },
        ),
        (
            ("user_data.address.city", "user_data.email_address"),
            {
                "event_name": "purchase",
                "user_data": {"address": {"city": "São Paulo"}, "email_address": "a@b.example"},
            },
        ),
        (("items",), {"event_name": "purchase", "items": event()["items"]}),
        (("x-ga-mp2-seg",), {"event_name": "purchase", "x-ga-mp2-seg": "1"}),
        (("a.b",), {"event_name": "purchase", "a.b": "literal dotted key"}),
        # absent params are not created
        (("nope", "user_data.nope", "value.nope"), {"event_name": "purchase"}),
        (("event_name",), {"event_name": "purchase"}),
    ],
)
def test_allow_keeps_only_listed_params_and_event_name(
    params: tuple[str, ...], expected: dict[str, Any]
) -> None:
    assert run(allow(*params)) == expected


def test_allow_keeps_present_null_and_falsy_values() -> None:
    source = {"event_name": "e", "a": None, "b": 0, "c": "", "d": False, "e": []}
    assert run(allow("a", "b", "c", "d", "e"), source=source) == source


def test_allow_without_event_name_in_the_event() -> None:
    assert run(allow("value"), source={"value": 1, "other": 2}) == {"value": 1}


@pytest.mark.parametrize(
    ("params", "removed"),
    [
        (("value",), ["value"]),
        (("user_data.phone_number",), ["user_data.phone_number"]),
        (("user_data.address.city",), ["user_data.address.city"]),
        (("user_data.address",), ["user_data.address"]),
        (("user_data",), ["user_data"]),
        (
            ("value", "currency", "user_data.email_address"),
            ["value", "currency", "user_data.email_address"],
        ),
        (("items.0.price",), ["items.0.price"]),
        (("a.b",), ["a.b"]),
    ],
)
def test_exclude_removes_only_the_listed_paths(params: tuple[str, ...], removed: list[str]) -> None:
    view = run(exclude(*params))
    for path in removed:
        assert not ev.has(view, path)
    expected = event()
    for path in removed:
        ev.delete_path(expected, path)
    assert view == expected
    # what was not excluded is still there
    assert view["event_name"] == "purchase"
    assert view["transaction_id"] == "T-1"


def test_exclude_nested_keeps_siblings() -> None:
    view = run(exclude("user_data.phone_number", "items.1.item_id"))
    assert view["user_data"] == {
        "email_address": "a@b.example",
        "address": {"city": "São Paulo", "country": "BR"},
    }
    assert view["items"] == [{"item_id": "SKU1", "price": 10}, {"price": 20}]


@pytest.mark.parametrize(
    "params",
    [("nope",), ("user_data.nope",), ("value.x",), ("nope.deeper.still",), ("items.9.price",)],
)
def test_exclude_of_absent_paths_changes_nothing(params: tuple[str, ...]) -> None:
    assert run(exclude(*params)) == event()


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"currency": "{{shop_currency}}"}, {"currency": "BRL"}),
        ({"brand": "ACME"}, {"brand": "ACME"}),
        ({"value_copy": "{{event.value}}"}, {"value_copy": 99.9}),
        (
            {"label": "order {{event.transaction_id}} in {{shop_currency}}"},
            {"label": "order T-1 in BRL"},
        ),
        ({"label": "{{event.nope}}"}, {"label": None}),
        ({"label": "x{{event.nope}}y"}, {"label": "xy"}),
        ({"client": "{{client_name}}"}, {"client": "ga4"}),
        ({"first_item": "{{event.items.0.item_id}}"}, {"first_item": "SKU1"}),
        (
            {"n": 0, "b": False, "l": [1, "{{shop_currency}}"]},
            {"n": 0, "b": False, "l": [1, "BRL"]},
        ),
    ],
)
def test_augment_sets_top_level_params(values: dict[str, Any], expected: dict[str, Any]) -> None:
    view = run(augment(values))
    assert view == {**event(), **expected}


def test_augment_nested_paths_create_and_keep_siblings() -> None:
    view = run(
        augment(
            {
                "user_data.address.country": "{{shop_currency}}",
                "user_data.address.region": "SP",
                "x-sst-system_properties.source": "test",
                "items.0.brand": "ACME",
            }
        )
    )
    assert view["user_data"]["address"] == {"city": "São Paulo", "country": "BRL", "region": "SP"}
    assert view["user_data"]["email_address"] == "a@b.example"
    assert view["x-sst-system_properties"] == {"source": "test"}
    assert view["items"] == [
        {"item_id": "SKU1", "price": 10, "brand": "ACME"},
        {"item_id": "SKU2", "price": 20},
    ]


def test_augment_replaces_a_scalar_on_the_way() -> None:
    view = run(augment({"value.amount": 1}))
    assert view["value"] == {"amount": 1}


@pytest.mark.parametrize(
    ("condition", "applied"),
    [
        ({"event_name": "purchase"}, True),
        ({"event_name": "refund"}, False),
        ({"key": "currency", "exists": False}, False),
        ({"key": "currency", "equals": "USD"}, True),
        ({"var": "client_name", "equals": "ga4"}, True),
        ({"all": []}, True),
        ({"any": []}, False),
    ],
)
def test_when(condition: Any, applied: bool) -> None:
    t_exclude = exclude("value", when=when(condition))
    t_allow = allow("currency", when=when(condition))
    t_augment = augment({"flag": True}, when=when(condition))
    assert ("value" not in run(t_exclude)) is applied
    assert (run(t_allow) == {"event_name": "purchase", "currency": "USD"}) is applied
    assert (run(t_augment).get("flag") is True) is applied
    if not applied:
        assert run(t_exclude) == event()
        assert run(t_allow) == event()
        assert run(t_augment) == event()


def test_when_sees_the_original_event_not_the_transformed_one() -> None:
    view = run(
        exclude("currency"),
        augment({"seen": "yes"}, when=when({"key": "currency", "equals": "USD"})),
    )
    assert "currency" not in view
    assert view["seen"] == "yes"


@pytest.mark.parametrize(
    ("transformations", "expected"),
    [
        # augment then allow: the augmented param survives only if allowed
        (
            (augment({"brand": "ACME", "other": 1}), allow("brand")),
            {"event_name": "purchase", "brand": "ACME"},
        ),
        # allow then augment: augment adds after the allow list cut
        (
            (allow("value"), augment({"currency": "{{shop_currency}}"})),
            {"event_name": "purchase", "value": 99.9, "currency": "BRL"},
        ),
        # allow then exclude
        (
            (allow("value", "currency"), exclude("currency")),
            {"event_name": "purchase", "value": 99.9},
        ),
        # exclude then allow of the excluded param: gone
        ((exclude("value"), allow("value")), {"event_name": "purchase"}),
        # exclude event_name, then allow: event_name cannot come back
        ((exclude("event_name"), allow("value")), {"value": 99.9}),
    ],
)
def test_transformations_run_in_order(
    transformations: tuple[Transformation, ...], expected: dict[str, Any]
) -> None:
    assert run(*transformations) == expected


def test_the_view_copies_only_what_transformations_write_under() -> None:
    # Copy on write: the containers on the way to a changed path are the view's own, the rest is
    # shared with the event (as the event itself is with a tag that has no transformation; tags
    # never modify what they get).
    original = event()
    view = apply_all(
        (exclude("user_data.address.city", "items.1.price"), augment({"items.0.brand": "A"})),
        original,
        Scope(original, None, None, VARIABLES),
    )
    assert original == event()
    assert view is not original
    assert view["user_data"] is not original["user_data"]
    assert view["user_data"]["address"] is not original["user_data"]["address"]
    assert view["items"] is not original["items"]
    assert view["items"][0] is not original["items"][0]
    assert view["items"][1] is not original["items"][1]
    assert view["user_data"]["address"] == {"country": "BR"}
    assert view["items"] == [
        {"item_id": "SKU1", "price": 10, "brand": "A"},
        {"item_id": "SKU2"},
    ]
    untouched = apply_all((augment({"x": 1}),), original, Scope(original, None, None, VARIABLES))
    assert untouched["user_data"] is original["user_data"]


@pytest.mark.parametrize(
    "transformations",
    [
        # allow keeps the event's values; what runs after it writes under them
        (allow("user_data.address"), exclude("user_data.address.city")),
        (allow("user_data"), augment({"user_data.address.city": "x"})),
        (allow("items"), exclude("items.0"), augment({"items.0.price": 1})),
        # an augmented value taken from the event, then changed under it
        (augment({"copy": "{{event.user_data}}"}), exclude("copy.address.city")),
        (augment({"copy": "{{event.items}}"}), exclude("copy.0"), augment({"copy.0.p": 2})),
        # the same container reached twice
        (exclude("items.0.price"), exclude("items.0.item_id"), augment({"items.0.x": 1})),
    ],
)
def test_writes_after_allow_or_augment_never_reach_the_original(
    transformations: tuple[Transformation, ...],
) -> None:
    run(*transformations)  # run() checks that the original is unchanged


def test_an_augmented_variable_value_is_not_changed_for_other_tags() -> None:
    settings = registry().variables["constant"].Settings
    shared = BoundVariable(
        "meta", registry().variables["constant"], msgspec.convert({"value": {"a": 1}}, settings)
    )
    original = event()
    scope = Scope(original, None, None, {"meta": shared})
    chain = (augment({"meta": "{{meta}}"}), exclude("meta.a"))
    assert apply_all(chain, original, scope)["meta"] == {}
    assert apply_all(chain, original, scope)["meta"] == {}
    assert scope.var("meta") == {"a": 1}


def test_no_transformations_returns_the_event_unchanged() -> None:
    original = event()
    assert apply_all((), original, Scope(original, None, None, {})) == event()


@pytest.mark.parametrize(
    ("tags", "tag_types", "tag_name", "tag_type", "expected"),
    [
        (None, None, "meta", "meta_capi", True),
        (frozenset({"meta"}), None, "meta", "meta_capi", True),
        (frozenset({"meta"}), None, "ga4", "ga4_mp", False),
        (frozenset({"meta", "crm"}), None, "crm", "http_request", True),
        (None, frozenset({"meta_capi"}), "meta_2", "meta_capi", True),
        (None, frozenset({"meta_capi"}), "hook", "http_request", False),
        (frozenset({"a"}), frozenset({"t"}), "b", "t", True),
        (frozenset({"a"}), frozenset({"t"}), "a", "z", True),
        (frozenset({"a"}), frozenset({"t"}), "b", "z", False),
        (frozenset(), None, "a", "t", False),
        (None, frozenset(), "a", "t", False),
        (frozenset({"meta_capi"}), None, "x", "meta_capi", False),
        (None, frozenset({"meta"}), "meta", "meta_capi", False),
    ],
)
def test_affects(
    tags: frozenset[str] | None,
    tag_types: frozenset[str] | None,
    tag_name: str,
    tag_type: str,
    expected: bool,
) -> None:
    transformation = Transformation(kind="exclude", params=("x",), tags=tags, tag_types=tag_types)
    assert transformation.affects(tag_name, tag_type) is expected


def test_loader_gives_each_tag_the_transformations_that_affect_it() -> None:
    text = textwrap.dedent(
        """\
        version: 1
        variables:
          shop_currency: {type: constant, value: BRL}
        triggers:
          all: {all: []}
        transformations:
          - {type: exclude, params: [user_data.phone_number], tags: [crm]}
          - {type: augment, set: {currency: "{{shop_currency}}"}, tag_types: [http_request]}
          - type: allow
            params: [value]
            when: {event_name: purchase}
        tags:
          - {name: crm, type: http_request, triggers: [all], settings: {url: "https://a.example/"}}
          - {name: log, type: http_request, triggers: [all], settings: {url: "https://b.example/"}}
        """
    )
    spec = load_text(text, "shop.yaml", registry(), environ={})
    crm, log = spec.tags
    assert [t.kind for t in crm.transformations] == ["exclude", "augment", "allow"]
    assert [t.kind for t in log.transformations] == ["augment", "allow"]

    source = {
        "event_name": "purchase",
        "value": 5,
        "currency": "USD",
        "user_data": {"phone_number": "1"},
    }
    scope = Scope(source, None, None, spec.variables)
    assert apply_all(crm.transformations, source, scope) == {"event_name": "purchase", "value": 5}
    refund = {**source, "event_name": "refund"}
    scope = Scope(refund, None, None, spec.variables)
    assert apply_all(log.transformations, refund, scope) == {
        "event_name": "refund",
        "value": 5,
        "currency": "BRL",
        "user_data": {"phone_number": "1"},
    }
    assert source["currency"] == "USD"


async def test_tags_read_variables_on_their_own_view_of_the_event() -> None:
    # Each tag's variables see its transformations: one reading a key a transformation wrote
    # gets the new value, one reading nothing changed gets the event's (computed once).
    text = textwrap.dedent(
        """\
        version: 1
        variables:
          email: {type: event_data, key: user_data.email_address}
          host: {type: lookup, input: page_hostname, map: {a.example: web}, default: other}
          first: {type: event_data, key: items.1.item_id}
        triggers:
          all: {all: []}
        transformations:
          - {type: augment, set: {user_data.email_address: hidden}, tags: [masked]}
          - {type: exclude, params: [items.0], tags: [masked]}
          - {type: augment, set: {page_location: "https://b.example/"}, tags: [moved]}
          - {type: allow, params: [event_name], tags: [allowed]}
        tags:
        """
    )
    body = '{e: "{{email}}", h: "{{host}}", f: "{{first}}"}'
    for name in ("plain", "masked", "moved", "allowed"):
        text += f"  - {{name: {name}, type: http_request, triggers: [all],"
        text += f' settings: {{url: "https://t.example/", body: {body}}}}}\n'
    spec = load_text(text, "views.yaml", registry(), environ={})
    container = Container(spec, RecorderDelivery(), MemoryDedupe())
    source = {
        "event_name": "e",
        "page_location": "https://a.example/x",
        "user_data": {"email_address": "a@b.example"},
        "items": [{"item_id": "A"}, {"item_id": "B"}, {"item_id": "C"}],
    }
    _, (trace,) = await container.run_events([source], None, "ga4", 0.0, trace=True)
    bodies = {tag.name: msgspec.json.decode(tag.requests[0].body) for tag in trace.tags}
    assert bodies == {
        "plain": {"e": "a@b.example", "h": "web", "f": "B"},
        "masked": {"e": "hidden", "h": "web", "f": "C"},
        "moved": {"e": "a@b.example", "h": "other", "f": "B"},
        "allowed": {"e": None, "h": "other", "f": None},
    }
