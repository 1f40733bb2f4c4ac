"""`app_data` for app events (`action_source: app`) and the event's `opt_out` flag.

Meta requires `app_data` on every app event (Conversions API "App Data Parameters"):
- `advertiser_tracking_enabled` (required): the iOS 14.5+ ATT permission, true or false;
- `application_tracking_enabled` (optional): the person's in-app ad tracking choice;
- `extinfo` (required): 16 strings in a fixed order, an empty string for each unknown one;
  entry 0 is the version (`a2` Android, `i2` iOS), entry 4 the OS version; both required.
An app event without them is `invalid` here rather than refused by Meta with the whole batch.

An app sends them in its event data: Meta's own `app_data` object, or the same three keys at the
top level. `extinfo` is Meta's 16-entry list (shorter lists are padded), or an object keyed by
the names of Meta's SDKs (`ext_info_version`, `os_version`, ...: EXTINFO_FIELDS). The optional
strings Meta lists (`campaign_ids`, `install_referrer`, ...) pass through from `app_data`.
"""

from __future__ import annotations

import math
from typing import Any

from sgtm.plugin import EventData, InvalidEvent

# extinfo indexes, named as Meta's business SDKs name them (ExtendedDeviceInfo).
EXTINFO_FIELDS: tuple[str, ...] = (
    "ext_info_version",
    "app_package_name",
    "short_version",
    "long_version",
    "os_version",
    "device_model_name",
    "locale",
    "timezone_abbreviation",
    "carrier",
    "screen_width",
    "screen_height",
    "screen_density",
    "cpu_core_count",
    "total_disk_space_gb",
    "free_disk_space_gb",
    "device_time_zone",
)
EXTINFO_VERSIONS = ("a2", "i2")
OS_VERSION = EXTINFO_FIELDS.index("os_version")
# Optional app_data strings (and `url_schemes`, a list of them) passed on as they are.
OPTIONAL_TEXT = (
    "campaign_ids",
    "install_referrer",
    "installer_package",
    "vendor_id",
    "windows_attribution_id",
)
MAX_TEXT = 1024  # a device fact longer than this is no device fact

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def app_data(event: EventData) -> dict[str, Any]:
    """The `app_data` object of an app event; InvalidEvent when Meta would refuse it."""
    own = event.get("app_data")
    if own is not None and not isinstance(own, dict):
        raise InvalidEvent("app_data must be an object")
    source: dict[str, Any] = own if isinstance(own, dict) else event
    out: dict[str, Any] = {}
    advertiser = flag(source.get("advertiser_tracking_enabled"), "advertiser_tracking_enabled")
    if advertiser is None:
        raise InvalidEvent(
            "action_source app needs app_data.advertiser_tracking_enabled (the ATT permission, "
            "true or false)"
        )
    out["advertiser_tracking_enabled"] = advertiser
    application = flag(source.get("application_tracking_enabled"), "application_tracking_enabled")
    if application is not None:
        out["application_tracking_enabled"] = application
    out["extinfo"] = extinfo(source.get("extinfo"))
    if own is not None:
        for key in OPTIONAL_TEXT:
            text = _text(own.get(key))
            if text:
                out[key] = text
        schemes = own.get("url_schemes")
        if isinstance(schemes, list):
            kept = [t for t in (_text(s) for s in schemes) if t]
            if kept:
                out["url_schemes"] = kept
    return out


def extinfo(raw: Any) -> list[str]:
    """Meta's 16 extinfo strings from a list or an object keyed by EXTINFO_FIELDS."""
    if raw is None or raw == "" or raw == [] or raw == {}:
        raise InvalidEvent(
            "action_source app needs app_data.extinfo (16 device facts; at least the version "
            "a2 / i2 and the OS version)"
        )
    if isinstance(raw, dict):
        unknown = sorted(set(raw) - set(EXTINFO_FIELDS))
        if unknown:
            raise InvalidEvent(f"app_data.extinfo: unknown field {str(unknown[0])[:40]!r}")
        values = [raw.get(name) for name in EXTINFO_FIELDS]
    elif isinstance(raw, list):
        if len(raw) > len(EXTINFO_FIELDS):
            raise InvalidEvent(
                f"app_data.extinfo has {len(raw)} entries; Meta takes {len(EXTINFO_FIELDS)}"
            )
        values = list(raw) + [None] * (len(EXTINFO_FIELDS) - len(raw))
    else:
        raise InvalidEvent("app_data.extinfo must be a list of 16 strings or an object")
    out = []
    for index, value in enumerate(values):
        text = "" if value is None else _text(value)
        if text is None:
            raise InvalidEvent(f"app_data.extinfo[{index}] ({EXTINFO_FIELDS[index]}) is not text")
        out.append(text)
    if out[0] not in EXTINFO_VERSIONS:
        raise InvalidEvent(
            f"app_data.extinfo[0] must be a2 (Android) or i2 (iOS), got {out[0][:20]!r}"
        )
    if not out[OS_VERSION]:
        raise InvalidEvent("app_data.extinfo[4] (os_version) is required")
    return out


def opt_out(event: EventData, default: bool) -> bool | None:
    """The event's own `opt_out`, else `True` when the settings ask for it, else None (sent
    only when set)."""
    own = flag(event.get("opt_out"), "opt_out")
    if own is not None:
        return own
    return True if default else None


def flag(value: Any, name: str) -> bool | None:
    """A boolean as apps send one (true/false, 1/0, "true"/"false"); None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise InvalidEvent(f"{name} must be true or false, got {str(value)[:40]!r}")


def _text(value: Any) -> str | None:
    """Text as Meta's string fields take it: numbers written plainly (`2.0` -> `"2"`)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, str) and len(value) <= MAX_TEXT:
        return value.strip()
    return None
