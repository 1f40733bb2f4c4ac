"""The `meta_capi` tag's settings: every field a container may set, checked when it loads.

Values may be `{{variable}}` / `{{event.key}}` templates (a lookup variable can pick the pixel per
site, for instance); such a field is checked again once the core has rendered it for an event,
and a bad rendered value makes that event `invalid: settings: ...`. The endpoint alone can never
be a template: an event must not choose where a request goes.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from sgtm.kit.hashing import check_calling_code
from sgtm.plugin import Secret, Url

from .mapping import HASHED_FIELDS, PLAIN_FIELDS

ActionSource = Literal[
    "email",
    "website",
    "app",
    "phone_call",
    "chat",
    "physical_store",
    "system_generated",
    "business_messaging",
    "other",
]

DEFAULT_ENDPOINT = "https://graph.facebook.com"
# The Conversions API is part of the Marketing API and follows *its* version schedule, not the
# Graph API's (which keeps versions for two years): a Marketing API version lives about a year,
# until 90+ days after a newer one. Release and announced expiry dates, from Meta's "Marketing
# API version history"; None: no expiry announced yet. The default is the newest version; each
# new version is added here, which moves the default (a test holds the two together; see
# docs/tags/meta_capi.md, "API version").
MARKETING_API_VERSIONS: dict[str, tuple[date, date | None]] = {
    "v27.0": (date(2026, 11, 4), None),
    "v26.0": (date(2026, 7, 29), None),
    "v25.0": (date(2026, 2, 18), date(2027, 2, 23)),
    "v24.0": (date(2025, 10, 8), date(2026, 11, 10)),
    "v23.0": (date(2025, 5, 29), date(2026, 6, 9)),
}
DEFAULT_API_VERSION = "v27.0"

# Ids and versions become URL path segments: allow nothing that could leave the segment.
_PATH_SAFE_RE = re.compile(r"[A-Za-z0-9_\-]+")
_API_VERSION_RE = re.compile(r"v[0-9]+\.[0-9]+")


def _templated(value: object) -> bool:
    return isinstance(value, str) and "{{" in value


class MetaCapiSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # The Meta pixel (dataset) id, e.g. "1234567890123456". Not a secret: it is in page source.
    pixel_id: str
    # A Conversions API access token; take it from the environment: "${META_ACCESS_TOKEN}".
    # Sent as the `access_token` query parameter, as Meta documents.
    access_token: Secret
    api_version: str = DEFAULT_API_VERSION
    # Events Manager "Test events" code; an event's own `test_event_code` wins.
    test_event_code: str | None = None
    # Where the conversions happened; an event's own valid `action_source` wins.
    action_source: ActionSource = "website"
    # Send `appsecret_proof` = hex HMAC-SHA256(app_secret, access_token), for apps that require it.
    appsecret_proof: bool = False
    app_secret: Secret | None = None  # "${META_APP_SECRET}"; required with appsecret_proof
    # Sent as the request's `partner_agent` (attribution of the integration in Events Manager).
    partner_agent: str | None = None
    # Event name -> Meta event name, merged over the built-in table (mapping.EVENT_MAP).
    event_map: dict[str, str] = {}
    # Extra custom_data fields, applied last (templates allowed): {content_category: "..."}.
    custom_data: dict[str, Any] = {}
    # user_data overrides, applied last: hashed fields are normalized and hashed like the rest.
    user_data: dict[str, Any] = {}
    # Country calling code for phone numbers written without one ("55" for Brazil): Meta only
    # matches phones with their country code.
    phone_country_code: str | None = None
    # Send `opt_out: true` (do not use the events for ads delivery optimization) unless an event
    # says otherwise with its own `opt_out`.
    opt_out: bool = False
    # Limited Data Use: ["LDU"] with country 0 (geolocate) or 1 (US) and state 0 or 1000 (CA).
    data_processing_options: list[Literal["LDU"]] | None = None
    data_processing_options_country: Literal[0, 1] = 0
    data_processing_options_state: Literal[0, 1000] = 0
    # Base URL: proxies, regional gateways, tests. Never a template.
    endpoint: Url = DEFAULT_ENDPOINT

    def __post_init__(self) -> None:
        if not _templated(self.pixel_id) and not _PATH_SAFE_RE.fullmatch(self.pixel_id):
            raise ValueError(f"pixel_id: expected the pixel's numeric id, got {self.pixel_id!r}")
        if not _templated(self.api_version) and not _API_VERSION_RE.fullmatch(self.api_version):
            raise ValueError(
                f"api_version: expected a Marketing API version like {DEFAULT_API_VERSION!r}, "
                f"got {self.api_version!r}"
            )
        if not self.access_token:
            raise ValueError("access_token: empty (set it from the environment)")
        check_calling_code(self.phone_country_code)
        if self.appsecret_proof and not self.app_secret:
            raise ValueError("app_secret: required when appsecret_proof is true")
        parts = urlsplit(self.endpoint)
        if "{{" in self.endpoint:
            raise ValueError("endpoint: cannot be a template")
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError(
                f"endpoint: expected a base URL like {DEFAULT_ENDPOINT}, got {self.endpoint!r}"
            )
        unknown = sorted(set(self.user_data) - HASHED_FIELDS.keys() - set(PLAIN_FIELDS))
        if unknown:
            raise ValueError(
                f"user_data: unknown field {unknown[0]!r} (known: "
                + ", ".join([*HASHED_FIELDS, *PLAIN_FIELDS])
                + ")"
            )
