"""A tag that refuses an event (`invalid: ...`) logs one warning line per tag and reason a
minute, without the event's values or secrets, and counts the lines it held back."""

from __future__ import annotations

import json
import logging

import pytest

from sgtm.ratelog import RateLimitedLog
from sgtm.redact import HIDDEN, hide_values
from sgtm.testing import Harness

META = """\
version: 1
triggers: {all: {all: []}}
tags:
  - name: meta
    type: meta_capi
    triggers: [all]
    settings: {pixel_id: "1234567890123456", access_token: "${META_TOKEN}"}
"""
ENV = {"META_TOKEN": "EAAB-token-value-1234"}
PURCHASE = {
    "event_name": "purchase",
    "currency": "BRL",
    "page_location": "https://shop.test/p",
    "user_agent": "Mozilla/5.0",
    "ip_override": "203.0.113.9",
}
HOSTILE_VALUES = [
    "12,50",
    "ana@example.com",
    "{{secret.META_TOKEN}}",
    "EAAB-token-value-1234",
    'it\'s "quoted"\nX-Injected: 1',
    "+55 11 99999-8888",
    "x" * 10_000,
]


def serving(*args, **kwargs) -> Harness:
    """The harness's container as `sgtm serve` runs it: logging the events it refuses."""
    harness = Harness(*args, **kwargs)
    harness.container.refusals = RateLimitedLog(logging.getLogger("sgtm.container"))
    return harness


def refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "tag refused an event"]


async def test_a_refused_event_is_logged_once_with_its_values_hidden(caplog):
    caplog.set_level(logging.INFO, logger="sgtm.container")
    harness = serving(META, environ=ENV)
    for value in HOSTILE_VALUES:
        result = await harness.events({**PURCHASE, "value": value})
        (tag,) = result.events[0].tags
        assert tag.reason is not None and tag.reason.startswith("invalid: value")
    (record,) = refusals(caplog)  # one reason, whatever the value: one line
    assert record.levelno == logging.WARNING
    fields = record.__dict__
    assert fields["container"] == "container" and fields["tag"] == "meta"
    assert fields["reason"] == f"invalid: value {HIDDEN} is not a number"
    assert fields["suppressed"] == 0
    line = json.dumps(fields, default=str)
    for value in HOSTILE_VALUES:
        assert value[:12] not in line
    assert "EAAB" not in line and "99999" not in line and "X-Injected" not in line


async def test_held_back_lines_are_counted_in_the_next_one(caplog):
    caplog.set_level(logging.INFO, logger="sgtm.container")
    harness = serving(META, environ=ENV)
    now = [1000.0]
    harness.container.refusals = RateLimitedLog(
        logging.getLogger("sgtm.container"), clock=lambda: now[0]
    )
    for _ in range(5):
        await harness.events({**PURCHASE, "value": "NaN"})
    await harness.events({**PURCHASE, "action_source": "somewhere"})  # another reason
    now[0] += 61
    await harness.events({**PURCHASE, "value": "NaN"})
    lines = [(r.__dict__["reason"], r.__dict__["suppressed"]) for r in refusals(caplog)]
    assert lines == [
        (f"invalid: value {HIDDEN} is not a number", 0),
        (
            f"invalid: action_source {HIDDEN} is not one of: app, business_messaging, chat, "
            "email, other, phone_call, physical_store, system_generated, website",
            0,
        ),
        (f"invalid: value {HIDDEN} is not a number", 4),
    ]


async def test_emulate_and_audit_containers_log_no_refusals(caplog):
    caplog.set_level(logging.INFO, logger="sgtm.container")
    harness = Harness(META, environ=ENV)
    result = await harness.events({**PURCHASE, "value": "NaN"})
    assert result.events[0].tags[0].reason.startswith("invalid")
    assert refusals(caplog) == []


async def test_templated_settings_that_render_invalid_are_logged_without_the_value(caplog):
    caplog.set_level(logging.INFO, logger="sgtm.container")
    harness = serving(META.replace('"1234567890123456"', '"{{event.pixel}}"'), environ=ENV)
    result = await harness.events({**PURCHASE, "value": 1, "pixel": "ana@example.com"})
    reason = result.events[0].tags[0].reason
    assert reason == "invalid: settings: pixel_id: expected the pixel's numeric id, got " + repr(
        "ana@example.com"
    )
    (record,) = refusals(caplog)
    assert "ana@example.com" not in record.__dict__["reason"]
    assert "example" not in json.dumps(record.__dict__, default=str)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("value '12,50' is not a number", f"value {HIDDEN} is not a number"),
        ('action_source "it\'s" is not one', f"action_source {HIDDEN} is not one"),
        ("host 'a\\'b' is not allowed", f"host {HIDDEN} is not allowed"),
        ("this tag's publisher_id", "this tag's publisher_id"),  # an apostrophe opens nothing
        ("Expected `int`, got `str` - at `$.x`", "Expected `int`, got `str` - at `$.x`"),
        ("no e-mail: ana@example.com given", f"no e-mail: {HIDDEN} given"),
        ("phone 5511999998888 refused", f"phone {HIDDEN} refused"),
        ("at most 1000 items", "at most 1000 items"),
        ("unterminated 'secret value", f"unterminated {HIDDEN}"),
        ("line\nbreak\x00nul", "line break nul"),
        ("", ""),
    ],
)
def test_hide_values(text, shown):
    assert hide_values(text) == shown


def test_hide_values_is_bounded_and_linear():
    assert len(hide_values("a " * 100_000)) == 300
    assert hide_values("'" + "\\" * 100_001) == HIDDEN  # a dangling escape ends the text


def test_rate_limited_log_forgets_the_oldest_key_past_its_bound(caplog):
    caplog.set_level(logging.WARNING, logger="test.ratelog")
    limited = RateLimitedLog(logging.getLogger("test.ratelog"), max_keys=2, clock=lambda: 0.0)
    assert limited.warning("a", "m", {}) and limited.warning("b", "m", {})
    assert not limited.warning("a", "m", {})
    assert limited.warning("c", "m", {})  # "a" (logged first) is forgotten
    assert limited.warning("a", "m", {})
    assert len(limited._keys) == 2
