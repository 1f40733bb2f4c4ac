"""sgtm.consent: where the consent state is read from, and which required type is denied."""

from __future__ import annotations

from typing import Any

import pytest

from sgtm.consent import STATE_KEYS, first_denied, state


def stape(values: Any) -> dict[str, Any]:
    return {"event_name": "e", "consent_state": values}


def sgtm(values: Any) -> dict[str, Any]:
    return {
        "event_name": "e",
        "x-sst-system_properties": {"consent": {"consentGrantedState": values}},
    }


def test_state_keys_order() -> None:
    assert STATE_KEYS == (
        "consent_state",
        "x-sst-system_properties.consent.consentGrantedState",
    )


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({}, {}),
        ({"event_name": "e"}, {}),
        (
            stape({"ad_storage": True, "analytics_storage": False}),
            {"ad_storage": True, "analytics_storage": False},
        ),
        (
            sgtm({"ad_storage": True, "ad_user_data": False}),
            {"ad_storage": True, "ad_user_data": False},
        ),
        # both: consent_state wins per type; the others merge in
        (
            {
                **stape({"ad_storage": False, "analytics_storage": True}),
                **sgtm({"ad_storage": True, "ad_user_data": True}),
            },
            {"ad_storage": False, "analytics_storage": True, "ad_user_data": True},
        ),
        # a value consent_state cannot read does not hide the other location's value
        (
            {**stape({"ad_storage": "maybe"}), **sgtm({"ad_storage": "denied"})},
            {"ad_storage": False},
        ),
        # not a mapping: ignored
        (stape("granted"), {}),
        (sgtm(["ad_storage"]), {}),
        ({"consent_state": None}, {}),
        ({"x-sst-system_properties": "x"}, {}),
        ({"x-sst-system_properties": {"consent": "granted"}}, {}),
    ],
)
def test_state(event: dict[str, Any], expected: dict[str, bool]) -> None:
    assert state(event) == expected


@pytest.mark.parametrize(
    ("value", "granted"),
    [
        (True, True),
        (False, False),
        ("granted", True),
        ("denied", False),
        ("GRANTED", True),
        (" Denied ", False),
        ("true", True),
        ("false", False),
        ("1", True),
        ("0", False),
        ("yes", True),
        ("no", False),
        (1, True),
        (0, False),
        ("maybe", None),
        ("", None),
        (None, None),
        (1.0, None),
        ([True], None),
        ({"granted": True}, None),
    ],
)
@pytest.mark.parametrize("where", [stape, sgtm])
def test_state_values(where: Any, value: Any, granted: bool | None) -> None:
    expected = {} if granted is None else {"ad_storage": granted}
    assert state(where({"ad_storage": value})) == expected


@pytest.mark.parametrize(
    ("required", "event", "default_granted", "expected"),
    [
        ((), {}, False, None),
        ((), stape({"ad_storage": False}), True, None),
        (("ad_storage",), {}, True, None),
        (("ad_storage",), {}, False, "ad_storage"),
        (("ad_storage",), stape({"ad_storage": True}), False, None),
        (("ad_storage",), stape({"ad_storage": "granted"}), False, None),
        (("ad_storage",), stape({"ad_storage": "denied"}), True, "ad_storage"),
        (("ad_storage",), sgtm({"ad_storage": "denied"}), True, "ad_storage"),
        (("ad_storage",), stape({"ad_storage": "unknown"}), True, None),
        (("ad_storage",), stape({"ad_storage": "unknown"}), False, "ad_storage"),
        # first denied, in the order the tag lists them
        (
            ("ad_storage", "ad_user_data"),
            stape({"ad_storage": False, "ad_user_data": False}),
            True,
            "ad_storage",
        ),
        (
            ("ad_user_data", "ad_storage"),
            stape({"ad_storage": False, "ad_user_data": False}),
            True,
            "ad_user_data",
        ),
        (
            ("ad_storage", "ad_user_data"),
            stape({"ad_storage": True, "ad_user_data": False}),
            True,
            "ad_user_data",
        ),
        (("ad_storage", "ad_user_data"), stape({"ad_storage": True}), False, "ad_user_data"),
        (("ad_storage", "ad_user_data"), stape({"ad_storage": True}), True, None),
        # consent_state beats x-sst-system_properties
        (
            ("ad_storage",),
            {**stape({"ad_storage": True}), **sgtm({"ad_storage": False})},
            False,
            None,
        ),
        (
            ("ad_storage",),
            {**stape({"ad_storage": "denied"}), **sgtm({"ad_storage": "granted"})},
            True,
            "ad_storage",
        ),
        # any consent type name is allowed
        (("custom_vendor",), stape({"custom_vendor": False}), True, "custom_vendor"),
        (("custom_vendor",), stape({"ad_storage": False}), True, None),
    ],
)
def test_first_denied(
    required: tuple[str, ...], event: dict[str, Any], default_granted: bool, expected: str | None
) -> None:
    assert first_denied(required, event, default_granted) == expected
