"""Mapping tables, as data: sGTM event data -> Meta Conversions API server events.

Sources (reference/destinations/meta-capi.md §9): Stape's facebook-tag template (`STAPE`) and
Meta's own sGTM template (`MTAG`, facebookincubator/ConversionsAPI-Tag-for-GoogleTagManager).
Each source list is read in order; the first value that survives normalization wins.
"""

from __future__ import annotations

# GA4 / sGTM event names -> Meta standard events (§9.1, STAPE's table, a superset of MTAG's).
# Names not listed pass through unchanged, as custom events. `event_map` in the settings is
# merged over this table.
EVENT_MAP: dict[str, str] = {
    "page_view": "PageView",
    "gtm.dom": "PageView",
    "view_item": "ViewContent",
    "add_to_cart": "AddToCart",
    "add_to_wishlist": "AddToWishlist",
    "begin_checkout": "InitiateCheckout",
    "add_payment_info": "AddPaymentInfo",
    "purchase": "Purchase",
    "sign_up": "CompleteRegistration",
    "generate_lead": "Lead",
    "search": "Search",
    "contact": "Contact",
    "customize_product": "CustomizeProduct",
    "donate": "Donate",
    "find_location": "FindLocation",
    "schedule": "Schedule",
    "start_trial": "StartTrial",
    "submit_application": "SubmitApplication",
    "subscribe": "Subscribe",
    "gtm4wp.addProductToCartEEC": "AddToCart",
    "gtm4wp.productClickEEC": "ViewContent",
    "gtm4wp.checkoutOptionEEC": "InitiateCheckout",
    "gtm4wp.checkoutStepEEC": "AddPaymentInfo",
    "gtm4wp.orderCompletedEEC": "Purchase",
}

# user_data fields Meta wants SHA-256 hashed, and the event data keys each is read from.
# `x-fb-ud-*` come first, as MTAG reads them; then STAPE's order (§9.3). `address.` is
# `user_data.address` when it is an object, or its first entry when it is a list.
# Google's pre-hashed keys (`user_data.sha256_email_address`, `sha256_phone_number`,
# `address.sha256_first_name` / `sha256_last_name`) are not sources: Google normalizes before
# hashing differently (Gmail dots removed, the phone's `+` hashed, inner spaces of names kept),
# so such a hash would often never match. A container that knows its hashes follow Meta's rules
# maps them itself with the `user_data` setting.
HASHED_FIELDS: dict[str, tuple[str, ...]] = {
    "em": (
        "x-fb-ud-em",
        "email",
        "user_data.email_address",
        "user_data.email",
    ),
    "ph": (
        "x-fb-ud-ph",
        "phone",
        "user_data.phone_number",
        "user_data.phone",
    ),
    "fn": (
        "x-fb-ud-fn",
        "firstName",
        "FirstName",
        "nameFirst",
        "first_name",
        "user_data.first_name",
        "address.first_name",
    ),
    "ln": (
        "x-fb-ud-ln",
        "lastName",
        "LastName",
        "nameLast",
        "last_name",
        "user_data.last_name",
        "address.last_name",
    ),
    "ge": ("x-fb-ud-ge", "gender", "user_data.gender"),
    "db": ("x-fb-ud-db", "db", "date_of_birth", "user_data.date_of_birth"),
    "ct": ("x-fb-ud-ct", "city", "user_data.city", "address.city"),
    "st": ("x-fb-ud-st", "state", "region", "user_data.region", "address.region"),
    "zp": ("x-fb-ud-zp", "zip", "postal_code", "user_data.postal_code", "address.postal_code"),
    "country": (
        "x-fb-ud-country",
        "countryCode",
        "country",
        "user_data.country",
        "address.country",
    ),
    "external_id": ("x-fb-ud-external_id", "external_id", "user_id", "userId"),
}

# user_data fields Meta wants as they are (never hashed) and read straight from event data.
PLAIN_SOURCES: dict[str, tuple[str, ...]] = {
    "subscription_id": ("x-fb-ud-subscription_id", "subscription_id", "subscriptionId"),
    "fb_login_id": ("x-fb-ud-fb-login-id", "fb_login_id", "user_data.fb_login_id"),
    "lead_id": ("lead_id", "leadId"),
    "anon_id": ("anon_id",),
    "madid": ("madid",),
}

# Every never-hashed user_data field Meta documents; those without sources above are built by
# the tag itself (IP, user agent, fbc, fbp) or only set through the `user_data` setting.
PLAIN_FIELDS: tuple[str, ...] = (
    "client_ip_address",
    "client_user_agent",
    "fbc",
    "fbp",
    *PLAIN_SOURCES,
    "page_id",
    "page_scoped_user_id",
    "ctwa_clid",
    "ig_account_id",
    "ig_sid",
)

# The browser id and click id cookies, as clients expose them: MTAG's `x-fb-ck-*`, STAPE's
# `common_cookie.*`, then plain names. Never hashed; sent only when they have Meta's format.
FBP_SOURCES: tuple[str, ...] = ("x-fb-ck-fbp", "common_cookie._fbp", "_fbp", "fbp")
FBC_SOURCES: tuple[str, ...] = ("x-fb-ck-fbc", "common_cookie._fbc", "_fbc", "fbc")

# custom_data fields an event may set directly (MTAG's `x-fb-cd-*` keys); they win over the
# values derived from items, value, currency...
CUSTOM_DATA_OVERRIDES: tuple[str, ...] = (
    "content_category",
    "content_ids",
    "content_name",
    "content_type",
    "contents",
    "num_items",
    "predicted_ltv",
    "status",
    "delivery_category",
)

# GA4 item fields -> Meta `contents[]` fields (§9.4).
CONTENT_FIELDS: dict[str, str] = {
    "item_id": "id",
    "quantity": "quantity",
    "price": "item_price",
    "item_name": "title",
    "item_brand": "brand",
    "item_category": "category",
}

# The value of the event, first found (§9.4): Universal Analytics' ev / tr, then GA4's value.
VALUE_SOURCES: tuple[str, ...] = ("x-ga-mp1-ev", "x-ga-mp1-tr", "value")
