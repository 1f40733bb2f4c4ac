"""Mapping tables, as data: sGTM event data -> TikTok Events API 2.0 events.

Event names follow TikTok's standard events (ads.tiktok.com "Supported standard events", 2025):
`Purchase` and `Lead` are the current names; the older `CompletePayment` and `SubmitForm` that
Stape's template sends are remapped by TikTok itself ("reserved events"). Names not listed pass
through unchanged, as custom events. `event_map` in the settings is merged over the table.
"""

from __future__ import annotations

EVENT_MAP: dict[str, str] = {
    "page_view": "PageView",  # not a standard event: reporting only ("Browse" maps to it)
    "view_item": "ViewContent",
    "add_to_cart": "AddToCart",
    "add_to_wishlist": "AddToWishlist",
    "begin_checkout": "InitiateCheckout",
    "add_payment_info": "AddPaymentInfo",
    "purchase": "Purchase",
    "generate_lead": "Lead",
    "sign_up": "CompleteRegistration",
    "search": "Search",
    "contact": "Contact",
    "customize_product": "CustomizeProduct",
    "find_location": "FindLocation",
    "schedule": "Schedule",
    "start_trial": "StartTrial",
    "submit_application": "SubmitApplication",
    "subscribe": "Subscribe",
    "file_download": "Download",
}

# `user` fields TikTok wants SHA-256 hashed, and the event data keys read for each, in order.
# `address.` is `user_data.address`, or its first entry when it is a list. Google's
# `user_data.sha256_email_address` is no source (Google removes Gmail dots before hashing,
# TikTok does not); its `sha256_phone_number` is (both hash E.164 with the `+`).
HASHED_SOURCES: dict[str, tuple[str, ...]] = {
    "email": ("user_data.email_address", "user_data.email", "email", "email_address"),
    "phone": (
        "user_data.phone_number",
        "user_data.phone",
        "phone",
        "phone_number",
        "user_data.sha256_phone_number",
    ),
    "external_id": ("external_id", "user_id", "userId", "user_data.external_id"),
    "first_name": ("address.first_name", "user_data.first_name", "first_name"),
    "last_name": ("address.last_name", "user_data.last_name", "last_name"),
    "zip_code": ("address.postal_code", "user_data.postal_code", "postal_code", "zip"),
}
# `user` fields sent in clear, normalized (`normalize.tiktok_location`).
LOCATION_SOURCES: dict[str, tuple[str, ...]] = {
    "city": ("address.city", "user_data.city", "city"),
    "state": ("address.region", "user_data.region", "state", "region"),
    "country": ("address.country", "user_data.country", "country"),
}
# Fields that take a list of values (several emails of one person): at most this many.
LIST_FIELDS = ("email", "phone", "external_id")
MAX_LIST_VALUES = 10

# GA4 item fields -> TikTok `contents[]` fields.
CONTENT_FIELDS: dict[str, str] = {
    "item_id": "content_id",
    "item_name": "content_name",
    "item_category": "content_category",
    "item_brand": "brand",
    "price": "price",
    "quantity": "quantity",
}
