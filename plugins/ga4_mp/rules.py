"""GA4 Measurement Protocol limits and reserved names, as data (docs/tags/ga4_mp.md has the
table of what the tag does with each).

Sources: developers.google.com/analytics/devguides/collection/protocol/ga4/sending-events
(#limitations), .../ga4/reference, support.google.com/analytics/answer/9267744 (collection
limits), Google's Event Builder (googleanalytics/ga-dev-tools, ValidateEvent/schemas and
handlers/formatCheckLib.ts, which carries the Measurement Protocol's reserved event names).
"""

from __future__ import annotations

import re

MAX_EVENTS_PER_REQUEST = 25
MAX_PARAMS_PER_EVENT = 25
MAX_USER_PROPERTIES = 25
# Not in Google's pages: gtag's and third parties' figure (taggingdocs.com data limits).
MAX_ITEMS_PER_EVENT = 200
# The MP page says 10; the collection-limits page now allows 27 for recommended events.
MAX_CUSTOM_ITEM_PARAMS = 10
MAX_NAME_CHARS = 40  # event, param and item param names
MAX_USER_PROPERTY_NAME_CHARS = 24
MAX_USER_PROPERTY_VALUE_CHARS = 36
MAX_VALUE_CHARS = 100
MAX_USER_ID_CHARS = 256
# "The total size of the post body must be smaller than 130kB": bytes, read as 130,000.
MAX_BODY_BYTES = 130_000
MAX_AGE_SECONDS = 72 * 3600  # timestamp_micros may be backdated 72 hours at most

# Params whose values may be longer than MAX_VALUE_CHARS.
VALUE_CHARS = {"page_location": 1000, "page_referrer": 420, "page_title": 300}

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
RESERVED_PREFIXES = ("ga_", "google_", "firebase_")

# The Measurement Protocol's reserved event names (Event Builder's formatCheckLib.ts, the list of
# the sending-events page): GA4 drops such events. `page_view` is not one (MP takes it).
RESERVED_EVENT_NAMES = frozenset(
    {
        "ad_activeview",
        "ad_click",
        "ad_exposure",
        "ad_impression",
        "ad_query",
        "adunit_exposure",
        "app_clear_data",
        "app_install",
        "app_update",
        "app_remove",
        "error",
        "first_open",
        "first_visit",
        "in_app_purchase",
        "notification_dismiss",
        "notification_foreground",
        "notification_open",
        "notification_receive",
        "os_update",
        "screen_view",
        "session_start",
        "user_engagement",
    }
)
RESERVED_USER_PROPERTY_NAMES = frozenset(
    {
        "first_open_time",
        "first_visit_time",
        "last_deep_link_referrer",
        "user_id",
        "first_open_after_install",
    }
)

# Standard item fields (the Event Builder's ITEM_FIELDS); any other item key is a custom item
# param, at most MAX_CUSTOM_ITEM_PARAMS per item.
ITEM_TEXT_FIELDS = frozenset(
    {
        "item_id",
        "item_name",
        "affiliation",
        "coupon",
        "currency",
        "item_brand",
        "item_category",
        "item_category2",
        "item_category3",
        "item_category4",
        "item_category5",
        "item_list_id",
        "item_list_name",
        "item_variant",
        "location_id",
        "creative_name",
        "creative_slot",
        "promotion_id",
        "promotion_name",
    }
)
ITEM_NUMBER_FIELDS = frozenset({"price", "quantity", "discount", "index"})
ITEM_FIELDS = ITEM_TEXT_FIELDS | ITEM_NUMBER_FIELDS

# Event params GA4 itself defines, kept first when an event has more than 25 params (then the
# event's other params in their order). `items` counts as one param.
STANDARD_PARAMS = (
    "session_id",
    "engagement_time_msec",
    "page_location",
    "page_referrer",
    "page_title",
    "currency",
    "value",
    "transaction_id",
    "items",
    "event_id",
    "tax",
    "shipping",
    "coupon",
    "affiliation",
    "payment_type",
    "shipping_tier",
    "search_term",
    "method",
    "content_type",
    "item_id",
    "item_list_id",
    "item_list_name",
    "creative_name",
    "creative_slot",
    "promotion_id",
    "promotion_name",
    "location_id",
    "debug_mode",
)
NUMBER_PARAMS = frozenset({"value", "tax", "shipping"})


def name_problem(name: str, max_chars: int = MAX_NAME_CHARS) -> str | None:
    """Why `name` cannot be an event, param or user property name, or None if it can."""
    if len(name) > max_chars:
        return f"longer than {max_chars} characters"
    if not NAME.fullmatch(name):
        return "not a letter followed by letters, digits and underscores"
    if name.lower().startswith(RESERVED_PREFIXES):
        return "a reserved prefix (ga_, google_, firebase_)"
    return None


# A web data stream's measurement id: "G-" and capital letters or digits (Google's are 10 of
# them today; older and test streams are shorter). Both GA4 tags send to it and key their lane
# by it, so a value a hit chose must have this shape and this bound.
MEASUREMENT_ID_PREFIX = "G-"
MEASUREMENT_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
MIN_MEASUREMENT_ID_CHARS = 4  # after the prefix
MAX_MEASUREMENT_ID_CHARS = 20


def is_measurement_id(value: object) -> bool:
    """Whether `value` is a web stream's measurement id: one length check and one pass over at
    most 20 characters (no pattern engine on a value that may come from a hit)."""
    if not isinstance(value, str) or not value.startswith(MEASUREMENT_ID_PREFIX):
        return False
    rest = value[len(MEASUREMENT_ID_PREFIX) :]
    if not MIN_MEASUREMENT_ID_CHARS <= len(rest) <= MAX_MEASUREMENT_ID_CHARS:
        return False
    return MEASUREMENT_ID_CHARS.issuperset(rest)


def measurement_id_problem(value: object) -> str | None:
    """Why `value` cannot be a measurement id (the value quoted, cut to 40 characters), or None."""
    if is_measurement_id(value):
        return None
    shown = value[:40] if isinstance(value, str) else type(value).__name__
    return (
        f"measurement id {shown!r} is not a web stream's id (G- and "
        f"{MIN_MEASUREMENT_ID_CHARS} to {MAX_MEASUREMENT_ID_CHARS} capital letters or digits, "
        "like G-ABC123XYZ9)"
    )
