"""Consent: the event's consent state and the tag check.

Clients write what a hit says about consent into event data; the core reads it from two places,
in this order: `consent_state` (Stape Data Client's flat `{type: bool}`) and sGTM's
`x-sst-system_properties.consent.consentGrantedState`. A consent type the hit does not mention
falls back to the container's `consent.default`.
"""

from __future__ import annotations

from typing import Any

from sgtm import event as ev

STATE_KEYS = ("consent_state", "x-sst-system_properties.consent.consentGrantedState")

# The consent types a tag may require: Google consent mode v2's, and the three other storage
# types sGTM knows. Any other name in a container is an error (a typo would make the tag fire
# for visitors who denied consent).
KNOWN_TYPES = (
    "ad_storage",
    "analytics_storage",
    "ad_user_data",
    "ad_personalization",
    "functionality_storage",
    "personalization_storage",
    "security_storage",
)


def state(event: ev.EventData) -> dict[str, bool]:
    merged: dict[str, bool] = {}
    for key in reversed(STATE_KEYS):  # the first location wins
        found = ev.get(event, key)
        if isinstance(found, dict):
            for name, value in found.items():
                granted = _granted(value)
                if granted is not None:
                    merged[name] = granted
    return merged


def _granted(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("granted", "true", "1", "yes"):
            return True
        if lowered in ("denied", "false", "0", "no"):
            return False
    if isinstance(value, int):
        return value != 0
    return None


def first_denied(
    required: tuple[str, ...], event: ev.EventData, default_granted: bool
) -> str | None:
    """The first required consent type the event does not grant, or None if all are granted."""
    if not required:
        return None
    current = state(event)
    for name in required:
        if not current.get(name, default_granted):
            return name
    return None
