"""The measurement id both GA4 tags send to is their lane (`Outbound.destination`), so a value a
hit chose is checked before it can open one: the shape of a web stream's id (a linear check,
bounded), and the `ga4` tag's optional allowlist `measurement_ids`. A bad id makes the event
`invalid: ...` for that tag, never an exception past the tag or a lane."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from sgtm_plugins.ga4.tag import Ga4Settings, Ga4Tag
from sgtm_plugins.ga4_mp import Ga4MpTag
from sgtm_plugins.ga4_mp.rules import is_measurement_id, measurement_id_problem
from sgtm_plugins.ga4_mp.settings import Ga4MpSettings

from sgtm.event import EventData
from sgtm.plugin import BuildContext, ContainerInfo, InvalidEvent
from sgtm.redact import hide_values

NOW = 1_767_225_600.0
EVENT: EventData = {
    "event_name": "purchase",
    "client_id": "123.456",
    "x-ga-measurement_id": "G-SHOP0001",
    "page_location": "https://www.shop.example/done",
}


def context() -> BuildContext:
    return BuildContext(
        tag_name="ga4", container=ContainerInfo(name="shop", consent_default="granted"), now=NOW
    )


def ga4(event: EventData, **values: Any) -> str:
    """The destination the `ga4` tag gives the event's request."""
    settings = msgspec.convert(values, Ga4Settings)
    (outbound,) = Ga4Tag().build(event, settings, context())
    return outbound.destination


GOOD = ["G-ABC1", "G-ABC123XYZ9", "G-" + "Z" * 20, "G-0000000000"]
BAD: list[object] = [
    "",
    "G-",
    "G-ABC",  # 3 after the prefix
    "G-" + "A" * 21,
    "g-abc123xyz9",
    "G-abc123xyz9",
    "UA-1234-1",
    "AW-123456789",
    "G-ABC 123",
    "G-ABC-123",
    "G-ABC123\n",
    " G-ABC123",
    "G-ÀBC123",  # not ASCII
    "G-\uff21BC123",  # a fullwidth letter: str.isalnum() would say yes
    "G-{{event.x}}",
    "G-ABC123" + "9" * 1_000_000,
    123,
    None,
    ["G-ABC123"],
]


@pytest.mark.parametrize("value", GOOD)
def test_web_stream_ids_pass(value: str) -> None:
    assert is_measurement_id(value)
    assert measurement_id_problem(value) is None
    assert ga4({**EVENT, "x-ga-measurement_id": value}) == value


@pytest.mark.parametrize("value", BAD, ids=lambda v: repr(v)[:30])
def test_anything_else_is_refused_with_a_reason(value: object) -> None:
    assert not is_measurement_id(value)
    problem = measurement_id_problem(value)
    assert problem is not None and len(problem) < 200  # the value is cut, never echoed whole
    # The reason a served container logs hides the value, so every bad id logs the same line.
    assert hide_values(problem) == hide_values(measurement_id_problem("x") or "")


@pytest.mark.parametrize("value", [v for v in BAD if isinstance(v, str) and v], ids=repr)
def test_the_ga4_tag_does_not_send_to_a_malformed_hit_id(value: str) -> None:
    with pytest.raises(InvalidEvent, match="not a web stream's id"):
        ga4({**EVENT, "x-ga-measurement_id": value})


def test_an_event_without_an_id_is_still_refused_as_before() -> None:
    event = {k: v for k, v in EVENT.items() if k != "x-ga-measurement_id"}
    with pytest.raises(InvalidEvent, match="no measurement id"):
        ga4(event)


def test_the_allowlist_forwards_only_its_ids() -> None:
    allowed = {"measurement_ids": ["G-SHOP0001", "G-SHOP0002"]}
    assert ga4(EVENT, **allowed) == "G-SHOP0001"
    assert ga4({**EVENT, "x-ga-measurement_id": "G-SHOP0002"}, **allowed) == "G-SHOP0002"
    with pytest.raises(InvalidEvent, match="not one of the tag's measurement_ids"):
        ga4({**EVENT, "x-ga-measurement_id": "G-ATTACKER1"}, **allowed)
    # The setting's own id replaces the hit's before the check.
    attack = {**EVENT, "x-ga-measurement_id": "G-ATTACKER1"}
    assert ga4(attack, measurement_id="G-SHOP0002", **allowed) == "G-SHOP0002"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"measurement_ids": ["G-OK0001", "g-lower"]}, "measurement_ids"),
        ({"measurement_ids": ["{{event.x-ga-measurement_id}}"]}, "measurement_ids"),
        ({"measurement_ids": "G-OK0001"}, "measurement_ids"),
        ({"measurement_ids": [1]}, "measurement_ids"),
        ({"measurement_id": "G-OTHER01", "measurement_ids": ["G-OK0001"]}, "not one of"),
    ],
)
def test_bad_allowlists_are_load_errors(values: dict[str, Any], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        msgspec.convert(values, Ga4Settings)


def test_a_templated_id_that_renders_to_template_text_is_still_checked() -> None:
    # A rendered value holding "{{" passes the settings' own check (it looks like a template):
    # the tags check the id they send to again.
    rendered = {"measurement_id": "{{G-XYZ}}"}
    with pytest.raises(InvalidEvent, match="not a web stream's id"):
        ga4(EVENT, **rendered)
    mp = msgspec.convert({**rendered, "api_secret": "s3cr3t"}, Ga4MpSettings)
    with pytest.raises(InvalidEvent, match="not a web stream's id"):
        Ga4MpTag().build(EVENT, mp, context())
