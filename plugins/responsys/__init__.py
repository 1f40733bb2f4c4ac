"""`responsys`: Oracle Responsys profile-list merges and custom events. docs/tags/responsys.md.

Auth is a password login (form body, never the URL) that returns a token and the account's API
endpoint; requests carry the bare token in `Authorization` (no `Bearer`) and go to that endpoint.
Tokens last at most 2-3 hours; the credential is renewed after 90 minutes, and on an auth error.

Both calls take up to 200 records and answer 200 with one result per record: a merge returns
`MERGEFAILED: ...` in place of a RIID, a trigger `{"success": false, "errorMessage"}`. Only those
records dead-letter. Throttling comes back as `400 API_LIMIT_EXCEEDED`, which is a retry.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import quote, urlencode, urlsplit

import msgspec

from sgtm.kit import hashing as pii
from sgtm.kit import mapping as m
from sgtm.kit.hashing import check_calling_code
from sgtm.kit.http import batch_request, http_url, json_or_none
from sgtm.plugin import (
    Batching,
    BuildContext,
    Credential,
    EventData,
    InvalidEvent,
    Outbound,
    Outcome,
    RateLimit,
    Secret,
    Tag,
    Url,
    Verdict,
    hookimpl,
)

MAX_RECORDS = 200
LINGER_SECONDS = 2.0
TOKEN_LIFETIME = 90 * 60  # Oracle: "always expires after three hours"; clients see 2 h
API_LIMIT_WAIT = 60.0  # "...Please try again in a minute"
CAPACITY_WAIT = 600.0  # internal capacity limits reset every 10 minutes
EVENT_DEDUPE_SECONDS = 86400

# Match column -> the event key that fills it by default (update-only for the hash columns).
MATCH_COLUMNS: dict[str, str | None] = {
    "EMAIL_ADDRESS_": "user_data.email_address",
    "CUSTOMER_ID_": "user_id",
    "MOBILE_NUMBER_": "user_data.phone_number",
    "EMAIL_SHA256_HASH_": "user_data.sha256_email_address",
    "EMAIL_MD5_HASH_": None,
    "RIID_": None,
}
HASH_COLUMNS = frozenset({"EMAIL_SHA256_HASH_", "EMAIL_MD5_HASH_"})
# Recipient attribute of a custom-event trigger for each match column.
RECIPIENT_KEYS = {
    "EMAIL_ADDRESS_": "emailAddress",
    "CUSTOMER_ID_": "customerId",
    "RIID_": "recipientId",
    "MOBILE_NUMBER_": "mobileNumber",
    "EMAIL_MD5_HASH_": "emailMD5Hash",
    "EMAIL_SHA256_HASH_": "emailSHA256Hash",
}
# Profile-list system columns filled by default in merge mode (every list has them).
MERGE_COLUMNS = {
    "EMAIL_ADDRESS_": "user_data.email_address",
    "CUSTOMER_ID_": "user_id",
    "POSTAL_STREET_1_": "user_data.address.street",
    "CITY_": "user_data.address.city",
    "STATE_": "user_data.address.region",
    "POSTAL_CODE_": "user_data.address.postal_code",
    "COUNTRY_": "user_data.address.country",
}
# optionalData of a custom event by default: what a Program usually personalizes with.
EVENT_DATA = {
    "ORDER_ID": "transaction_id",
    "ORDER_TOTAL": "value",
    "CURRENCY": "currency",
}
COLUMN_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")


class ResponsysSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # The account's login host: https://login5.responsys.net, https://<account>-api.responsys.ocs.oraclecloud.com
    login_url: Url
    username: str
    password: Secret  # "${RESPONSYS_PASSWORD}"
    mode: Literal["merge", "event"] = "merge"
    # The profile list (objectName), and its folder (custom events name the list by both).
    list_name: str
    list_folder: str = "!MasterData"
    # The custom event to trigger (mode: event).
    event_name: str | None = None
    # How Responsys finds the recipient.
    match_column: str = "EMAIL_ADDRESS_"
    # Permission of a record the merge inserts. Responsys' own default is OPTOUT, and so is ours:
    # merging a visitor never subscribes them. OPTIN only for lists of people who opted in.
    default_permission: Literal["OPTIN", "OPTOUT"] = "OPTOUT"
    update_on_match: Literal["REPLACE_ALL", "NO_UPDATE"] = "REPLACE_ALL"
    # MOBILE_NUMBER_ is sent in E.164 (Responsys' recommended format): the country calling code
    # of numbers written without one ("55"), and the MOBILE_COUNTRY_ (ISO 3166-1 alpha-2, "BR")
    # written with numbers of that calling code.
    phone_country_code: str | None = None
    mobile_country: str | None = None
    # Column (merge) or optionalData name (event) -> value, over the defaults.
    fields: dict[str, Any] = {}
    # Base URL of the API calls; default: the endPoint of the login response.
    endpoint: Url | None = None

    def __post_init__(self) -> None:
        for name in ("login_url", "endpoint"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, http_url(name, value))
        column = self.match_column.upper()
        column = column if column.endswith("_") else column + "_"
        if column not in MATCH_COLUMNS:
            known = ", ".join(MATCH_COLUMNS)
            raise ValueError(f"match_column: {self.match_column!r} is not one of {known}")
        self.match_column = column
        check_calling_code(self.phone_country_code)
        if self.mobile_country is not None:
            self.mobile_country = self.mobile_country.strip().upper()
            if not COUNTRY_RE.match(self.mobile_country):
                raise ValueError("mobile_country: a two-letter country code such as BR")
            if self.phone_country_code is None:
                raise ValueError(
                    "mobile_country: needs phone_country_code, the calling code of its numbers"
                )
        if self.mode == "event" and not self.event_name:
            raise ValueError("event_name: required with mode: event")
        for name in ("list_name", "event_name", "list_folder"):
            value = getattr(self, name)
            if value is not None and (not value.strip() or "/" in value):
                raise ValueError(f"{name}: {value!r} is not a Responsys object name")
        for name in self.fields:
            if not COLUMN_RE.match(name):
                raise ValueError(f"fields: {name!r} is not a Responsys column name")
            # In a trigger, the match column identifies the recipient; the rest is optionalData.
            if self.mode == "event" and name.endswith("_") and name != self.match_column:
                raise ValueError(
                    f"fields: {name!r}: optionalData takes no system columns (names ending in _)"
                )


class ResponsysTag(Tag[ResponsysSettings]):
    name = "responsys"
    Settings = ResponsysSettings
    description = "Oracle Responsys: profile-list merges and custom-event triggers, 200 per call."
    batching = Batching(max_items=MAX_RECORDS, linger=LINGER_SECONDS)
    # Oracle's default per-function throttle; merges allow 1000 / min (GET /rest/api/ratelimit).
    rate_limit = RateLimit(requests=200, per=60)

    def build(
        self, event: EventData, settings: ResponsysSettings, ctx: BuildContext
    ) -> list[Outbound]:
        base = settings.endpoint or ctx.credential("endpoint")
        if settings.mode == "merge":
            item = merge_item(event, settings)
            url = f"{base}/rest/api/v1.3/lists/{quote(settings.list_name, safe='')}/members"
            # Records merge only with records of the same columns and rule: a column missing
            # from one record must not be sent empty, which REPLACE_ALL would write.
            shape = msgspec.json.encode([item["fieldNames"], item["mergeRule"]])
            destination = f"merge {settings.list_name} {hashlib.sha256(shape).hexdigest()[:12]}"
        else:
            item = recipient_item(event, settings)
            url = f"{base}/rest/api/v1.3/events/{quote(str(settings.event_name), safe='')}"
            destination = f"event {settings.event_name}"
        outbound = Outbound(
            method="POST",
            url=url,
            headers={"Authorization": ctx.credential(), "Content-Type": "application/json"},
            destination=destination,
            idempotency_key=m.text(event.get("event_id")),
            batch_item=item,
        )
        return [self.merge([outbound])]

    def merge(self, outbounds: list[Outbound]) -> Outbound:
        first = outbounds[0]
        items = [o.batch_item for o in outbounds]
        if "mergeRule" in first.batch_item:
            body: dict[str, Any] = {
                "recordData": {
                    "fieldNames": first.batch_item["fieldNames"],
                    "records": [item["record"] for item in items],
                    "mapTemplateName": None,
                },
                "mergeRule": first.batch_item["mergeRule"],
            }
        else:
            body = {
                "customEvent": {
                    "eventNumberDataMapping": None,
                    "eventDateDataMapping": None,
                    "eventStringDataMapping": None,
                },
                "recipientData": items,
            }
        # Responsys asks for non-ASCII characters as \uXXXX escapes.
        return batch_request(
            outbounds, json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode()
        )

    def dedupe_key(self, event: EventData, settings: ResponsysSettings) -> tuple[str, float] | None:
        # A merge is an upsert (safe to repeat); a trigger sends a message each time.
        if settings.mode != "event":
            return None
        event_id = m.text(event.get("event_id"))
        return (f"event:{event_id}", EVENT_DEDUPE_SECONDS) if event_id else None

    # -- credentials ----------------------------------------------------------------------

    def auth_request(self, settings: ResponsysSettings) -> Outbound:
        form = {
            "user_name": settings.username,
            "password": settings.password,
            "auth_type": "password",
        }
        return Outbound(
            method="POST",
            url=f"{settings.login_url}/rest/api/v1.3/auth/token",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            body=urlencode(form).encode(),
        )

    def parse_auth(
        self, status: int, headers: dict[str, str], body: bytes, now: float
    ) -> Credential:
        data = json_or_none(body)
        if status != 200 or not isinstance(data, dict):
            code, detail = error_code(data)
            raise ValueError(f"Responsys login failed: {status} {code}: {detail}")
        token, endpoint = data.get("authToken"), data.get("endPoint")
        if not isinstance(token, str) or not token:
            raise ValueError("Responsys login response has no authToken")
        parts = urlsplit(endpoint) if isinstance(endpoint, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("Responsys login response has no valid endPoint")
        return Credential(
            token=token,
            expires_at=now + TOKEN_LIFETIME,
            values={"endpoint": str(endpoint).rstrip("/")},
        )

    def is_auth_failure(self, status: int, headers: dict[str, str], body: bytes) -> bool:
        # 401 INVALID_TOKEN "Not a valid authentication token"; some accounts answer the same
        # detail with another status (UNEXPECTED_EXCEPTION).
        if status == 401:
            return True
        code, detail = error_code(json_or_none(body))
        return code in ("INVALID_TOKEN", "TOKEN_EXPIRED") or "authentication token" in detail

    # -- responses ------------------------------------------------------------------------

    def classify(self, status: int, headers: dict[str, str], body: bytes) -> Outcome | Verdict:
        if 200 <= status < 300:
            return "done"
        code, detail = error_code(json_or_none(body))
        reason = f"{status} {code}: {detail}".strip(": ")
        # Responsys throttles with 400, not 429: branch on the error code, not the status.
        if code == "API_LIMIT_EXCEEDED":
            return Verdict(outcome="retry", retry_after=API_LIMIT_WAIT, reason=reason)
        if code == "INTERNAL_CAPACITY_LIMIT_EXCEEDED":
            return Verdict(outcome="retry", retry_after=CAPACITY_WAIT, reason=reason)
        if code == "UNABLE_TO_SUBMIT_ASYNC_REQUEST" or status in (408, 429) or status >= 500:
            return Verdict(outcome="retry", reason=reason)
        return Verdict(outcome="dead", reason=reason)

    def classify_batch(
        self, status: int, headers: dict[str, str], body: bytes, items: list[Outbound]
    ) -> list[Outcome | Verdict]:
        if status != 200:
            return [self.classify(status, headers, body)] * len(items)
        data = json_or_none(body)
        if isinstance(data, list):  # a trigger: one result per recipient
            results: list[Any] = data
        elif isinstance(data, dict) and isinstance(data.get("recordData"), dict):
            results = data["recordData"].get("records") or []
        else:
            results = []
        if len(results) != len(items):
            # Nothing tells which records were saved: a merge is safe to repeat, a trigger
            # is not, so it is kept for an operator instead.
            merging = isinstance(items[0].batch_item, dict) and "mergeRule" in items[0].batch_item
            verdict = Verdict(
                outcome="retry" if merging else "dead",
                reason="200 without one result per record",
            )
            return [verdict] * len(items)
        return [record_result(result) for result in results]


def merge_item(event: EventData, settings: ResponsysSettings) -> dict[str, Any]:
    table = dict(MERGE_COLUMNS)
    source = MATCH_COLUMNS[settings.match_column]
    if source is not None:
        table[settings.match_column] = source
    columns = m.overlay(m.read(event, table), settings.fields)
    mobile_columns(columns, settings)
    if "EMAIL_ADDRESS_" in columns:
        address = m.email(columns["EMAIL_ADDRESS_"])
        if address is None:
            raise InvalidEvent("EMAIL_ADDRESS_ is not a valid address")
        columns["EMAIL_ADDRESS_"] = address
    require_match(columns, settings)
    values = {}
    for name, value in columns.items():
        cell = m.text(value)
        if cell is None:
            raise InvalidEvent(f"{name}: Responsys columns take a single value")
        values[name] = cell
    names = list(values)
    return {
        "fieldNames": names,
        "record": [values[name] for name in names],
        "mergeRule": {
            # A hash identifies only someone already on the list: no insert.
            "insertOnNoMatch": settings.match_column not in HASH_COLUMNS,
            "updateOnMatch": settings.update_on_match,
            "matchColumnName1": settings.match_column,
            "matchColumnName2": None,
            "matchOperator": "NONE",
            "optinValue": "I",
            "optoutValue": "O",
            "htmlValue": "H",
            "textValue": "T",
            "rejectRecordIfChannelEmpty": None,
            "defaultPermissionStatus": settings.default_permission,
        },
    }


def recipient_item(event: EventData, settings: ResponsysSettings) -> dict[str, Any]:
    source = MATCH_COLUMNS[settings.match_column]
    ids = m.read(event, {settings.match_column: source} if source else {})
    ids = m.overlay(ids, {k: v for k, v in settings.fields.items() if k == settings.match_column})
    mobile_columns(ids, settings)
    match = require_match(ids, settings)
    recipient: dict[str, Any] = {key: None for key in RECIPIENT_KEYS.values()}
    recipient[RECIPIENT_KEYS[settings.match_column]] = match
    recipient["listName"] = {"folderName": settings.list_folder, "objectName": settings.list_name}
    recipient["emailFormat"] = "HTML_FORMAT"
    extra = {k: v for k, v in settings.fields.items() if k != settings.match_column}
    data = m.overlay(m.read(event, EVENT_DATA), extra)
    optional = []
    for name, value in data.items():
        cell = m.text(value)
        if cell is None:
            raise InvalidEvent(f"optionalData {name}: takes a single value")
        optional.append({"name": name, "value": cell})
    return {"recipient": recipient, "optionalData": optional}


def mobile_columns(columns: dict[str, Any], settings: ResponsysSettings) -> None:
    """MOBILE_NUMBER_ in E.164, as Responsys stores it (the country code and number, digits
    only: it drops the `+`), through the shared E.164 rule; and, for a number of the configured
    calling code, MOBILE_COUNTRY_ (unless set in `fields`). Numbers of other countries get no
    MOBILE_COUNTRY_: Responsys derives it from an E.164 number itself."""
    if "MOBILE_NUMBER_" not in columns:
        return
    number = pii.e164(m.text(columns["MOBILE_NUMBER_"]), settings.phone_country_code)
    if number is None:
        raise InvalidEvent(
            "MOBILE_NUMBER_ is not a phone number (7 to 15 digits with the country code; set "
            "phone_country_code for numbers written without one)"
        )
    columns["MOBILE_NUMBER_"] = number[1:]
    code = settings.phone_country_code
    if settings.mobile_country and code and number.startswith("+" + code):
        columns.setdefault("MOBILE_COUNTRY_", settings.mobile_country)


def require_match(values: dict[str, Any], settings: ResponsysSettings) -> str:
    column = settings.match_column
    value = m.text(values.get(column))
    if value is None:
        source = MATCH_COLUMNS[column] or f"fields.{column}"
        raise InvalidEvent(f"no {column}: the match column needs a value ({source})")
    if column == "EMAIL_ADDRESS_":
        cleaned = m.email(value)
        if cleaned is None:
            raise InvalidEvent("EMAIL_ADDRESS_ is not a valid address")
        return cleaned
    if column == "EMAIL_SHA256_HASH_" and not m.is_sha256(value.lower()):
        raise InvalidEvent("EMAIL_SHA256_HASH_ is not a SHA-256 hex digest")
    return value


def record_result(result: Any) -> Outcome | Verdict:
    if isinstance(result, dict):  # custom event trigger
        if result.get("success") is True:
            return "done"
        return Verdict(outcome="dead", reason=str(result.get("errorMessage") or "success: false"))
    cell = result[0] if isinstance(result, list) and result else result
    if isinstance(cell, str) and cell.startswith("MERGEFAILED"):
        return Verdict(outcome="dead", reason=cell)
    return "done"


def error_code(data: Any) -> tuple[str, str]:
    """(errorCode, detail) of `{"title", "errorCode", "detail", "errorDetails"}`."""
    if not isinstance(data, dict):
        return "", ""
    return str(data.get("errorCode") or ""), str(data.get("detail") or data.get("title") or "")


@hookimpl
def register_tag_types(register: Callable[[Any], None]) -> None:
    register(ResponsysTag())
