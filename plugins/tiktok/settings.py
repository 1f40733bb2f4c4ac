"""The `tiktok` tag's settings, checked when the container loads.

`pixel_code`, `test_event_code`, `event_map`, `properties` may be `{{templates}}` (a lookup can
pick the pixel per site); such a field is checked again once rendered. The endpoint never can be
one: an event must not choose where a request goes.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from sgtm.kit.hashing import check_calling_code
from sgtm.kit.http import http_url
from sgtm.plugin import Secret, Url

DEFAULT_ENDPOINT = "https://business-api.tiktok.com"
# Events API 2.0 lives under the Marketing API's v1.3 path, one URL for one or many events.
TRACK_PATH = "/open_api/v1.3/event/track/"
# Pixel codes are upper-case letters and digits ("C4A1B2C3D4E5F6G7H8I9"); they become a lane name.
_PIXEL_CODE_RE = re.compile(r"[A-Za-z0-9]{8,64}")
# Standard and custom event names: what TikTok shows in Events Manager.
_EVENT_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,99}")


def _templated(value: object) -> bool:
    return isinstance(value, str) and "{{" in value


class TikTokSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # The TikTok pixel's code (Events Manager > Web Events); the events' `event_source_id`.
    pixel_code: str
    # An Events API access token for the pixel: "${TIKTOK_ACCESS_TOKEN}" (Access-Token header).
    access_token: Secret
    # Events Manager > Test events code; an event's own `test_event_code` wins.
    test_event_code: str | None = None
    # Event name -> TikTok event name, merged over the built-in table (mapping.EVENT_MAP).
    event_map: dict[str, str] = {}
    # Country calling code for phone numbers written without one ("55" for Brazil).
    phone_country_code: str | None = None
    # Limited Data Use (US state privacy laws) on every event, unless an event says otherwise.
    limited_data_use: bool = False
    # Extra `properties`, applied last (templates allowed); an empty value removes one.
    properties: dict[str, Any] = {}
    # Base URL: proxies, tests. Never a template.
    endpoint: Url = DEFAULT_ENDPOINT

    def __post_init__(self) -> None:
        if not _templated(self.pixel_code) and not _PIXEL_CODE_RE.fullmatch(self.pixel_code):
            raise ValueError(f"pixel_code: expected the pixel's code, got {self.pixel_code!r}")
        if not self.access_token.strip():
            raise ValueError("access_token: empty (set it from the environment)")
        check_calling_code(self.phone_country_code)
        for source, target in self.event_map.items():
            if not _templated(target) and not _EVENT_NAME_RE.fullmatch(target):
                raise ValueError(f"event_map.{source}: {target!r} is not a TikTok event name")
        if "{{" in self.endpoint:
            raise ValueError("endpoint: cannot be a template")
        self.endpoint = http_url("endpoint", self.endpoint)

    @property
    def track_url(self) -> str:
        return self.endpoint + TRACK_PATH
