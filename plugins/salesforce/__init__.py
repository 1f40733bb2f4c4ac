"""`salesforce`: events as Salesforce Tasks or Lead / Contact fields. See docs/tags/salesforce.md.

Auth is OAuth 2.0 client credentials against the org's My Domain; the token has no expiry and no
refresh token, so it is reused until a `401 INVALID_SESSION_ID`, then fetched again once. Records
go through sObject Collections, up to 200 per request, with `allOrNone: false`: Salesforce saves
each record on its own and answers one result per record, so only the failed ones dead-letter.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import msgspec

from sgtm.kit import mapping as m
from sgtm.kit.http import batch_request, http_url, json_or_none
from sgtm.plugin import (
    Batching,
    BuildContext,
    Credential,
    EventData,
    Outbound,
    Outcome,
    Secret,
    Tag,
    Url,
    Verdict,
    hookimpl,
)

from . import records

MAX_RECORDS = 200
# Gather records for a moment: every request counts against the org's daily API allocation.
LINGER_SECONDS = 2.0
# The org's rolling 24 h allocation is used up: capacity comes back gradually, not in seconds.
REQUEST_LIMIT_WAIT = 1800.0
LOCK_WAIT = 30.0
_VERSION_RE = re.compile(r"^\d{2,3}\.0$")


class SalesforceSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # The org's My Domain URL (https://acme.my.salesforce.com); the token is requested there.
    instance_url: Url
    client_id: str
    client_secret: Secret  # "${SF_CLIENT_SECRET}"
    api_version: str = "62.0"
    # Task, Lead, Contact (default field tables), or any other sObject, e.g. Web_Event__c.
    object: str = "Task"
    mode: Literal["create", "update", "upsert"] = "create"
    # update: "Id" (the record id, from fields). upsert: an External ID field of the object.
    match_field: str | None = None
    # Field -> value over the object's defaults; values are templates ("{{event.x}}") or constants.
    fields: dict[str, Any] = {}
    # Task subject, a template: "Viewed product: {{event.items.0.item_name}}".
    subject: str | None = None
    # Base URL of the data API calls; default: the instance_url of the token response.
    endpoint: Url | None = None

    def __post_init__(self) -> None:
        for name in ("instance_url", "endpoint"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, http_url(name, value))
        host = urlsplit(self.instance_url).hostname or ""
        if host in ("login.salesforce.com", "test.salesforce.com"):
            raise ValueError(
                "instance_url: use the org's My Domain URL (https://<domain>.my.salesforce.com); "
                f"{host} refuses the client credentials flow"
            )
        if not _VERSION_RE.match(self.api_version.removeprefix("v")):
            raise ValueError(
                f"api_version: expected a version like '62.0', got {self.api_version!r}"
            )
        self.api_version = self.api_version.removeprefix("v")
        if not records.OBJECT_RE.match(self.object):
            raise ValueError(f"object: {self.object!r} is not an sObject API name")
        for name in self.fields:
            if not records.NAME_RE.match(name):
                raise ValueError(f"fields: {name!r} is not a Salesforce field API name")
        if self.mode == "update":
            self.match_field = self.match_field or "Id"
            if self.match_field != "Id":
                raise ValueError(
                    "match_field: update finds records by Id only; to match on an External ID "
                    "field use mode: upsert"
                )
        elif self.mode == "upsert":
            if not self.match_field or self.match_field == "Id":
                raise ValueError(
                    "match_field: upsert needs an External ID field of the object (not Id)"
                )
            if not records.NAME_RE.match(self.match_field):
                raise ValueError(f"match_field: {self.match_field!r} is not a field API name")
        elif self.match_field is not None:
            raise ValueError("match_field: only used with mode update or upsert")
        if self.mode != "update" and "Id" in self.fields:
            raise ValueError(f"fields: Id cannot be set with mode {self.mode}")


class SalesforceTag(Tag[SalesforceSettings]):
    name = "salesforce"
    Settings = SalesforceSettings
    description = "Salesforce: Tasks or Lead/Contact field updates through sObject Collections."
    batching = Batching(max_items=MAX_RECORDS, linger=LINGER_SECONDS)
    # No per-minute limit: a rolling 24 h allocation per org (403 REQUEST_LIMIT_EXCEEDED).
    rate_limit = None

    def build(
        self, event: EventData, settings: SalesforceSettings, ctx: BuildContext
    ) -> list[Outbound]:
        fields = records.record(event, settings, ctx.now)
        if settings.mode == "update":
            fields["id"] = fields.pop("Id")
        record = {"attributes": {"type": settings.object}, **fields}
        base = settings.endpoint or ctx.credential("instance_url")
        path = f"/services/data/v{settings.api_version}/composite/sobjects"
        if settings.mode == "upsert":
            path += f"/{settings.object}/{settings.match_field}"
        outbound = Outbound(
            method="POST" if settings.mode == "create" else "PATCH",
            url=base + path,
            headers={
                "Authorization": f"Bearer {ctx.credential()}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            destination=f"{settings.mode} {path}",
            idempotency_key=m.text(event.get("event_id")),
            batch_item=record,
        )
        return [self.merge([outbound])]

    def merge(self, outbounds: list[Outbound]) -> Outbound:
        body = {"allOrNone": False, "records": [o.batch_item for o in outbounds]}
        return batch_request(outbounds, msgspec.json.encode(body))

    # -- credentials ----------------------------------------------------------------------

    def auth_request(self, settings: SalesforceSettings) -> Outbound:
        form = {
            "grant_type": "client_credentials",
            "client_id": settings.client_id,
            "client_secret": settings.client_secret,
        }
        return Outbound(
            method="POST",
            url=f"{settings.instance_url}/services/oauth2/token",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            body=urlencode(form).encode(),
        )

    def parse_auth(
        self, status: int, headers: dict[str, str], body: bytes, now: float
    ) -> Credential:
        data = json_or_none(body)
        if status != 200 or not isinstance(data, dict):
            error = data.get("error", "") if isinstance(data, dict) else ""
            detail = data.get("error_description", "") if isinstance(data, dict) else ""
            raise ValueError(f"Salesforce token request failed: {status} {error}: {detail}")
        token, instance = data.get("access_token"), data.get("instance_url")
        if not isinstance(token, str) or not token:
            raise ValueError("Salesforce token response has no access_token")
        parts = urlsplit(instance) if isinstance(instance, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("Salesforce token response has no valid instance_url")
        # No expires_in: the session lasts while it is used; reuse it until a 401.
        return Credential(
            token=token, expires_at=None, values={"instance_url": str(instance).rstrip("/")}
        )

    def is_auth_failure(self, status: int, headers: dict[str, str], body: bytes) -> bool:
        return status == 401  # INVALID_SESSION_ID: expired or revoked session

    # -- responses ------------------------------------------------------------------------

    def classify(self, status: int, headers: dict[str, str], body: bytes) -> Outcome | Verdict:
        if 200 <= status < 300:
            return "done"
        code, message = first_error(json_or_none(body))
        reason = f"{status} {code}: {message}".strip(": ")
        if status == 403 and code == "REQUEST_LIMIT_EXCEEDED":
            return Verdict(outcome="retry", retry_after=REQUEST_LIMIT_WAIT, reason=reason)
        if status in (408, 420, 500, 502, 503, 504) or code == "UNABLE_TO_LOCK_ROW":
            return Verdict(outcome="retry", reason=reason)
        return Verdict(outcome="dead", reason=reason)

    def classify_batch(
        self, status: int, headers: dict[str, str], body: bytes, items: list[Outbound]
    ) -> list[Outcome | Verdict]:
        if status != 200:
            return [self.classify(status, headers, body)] * len(items)
        results = json_or_none(body)
        if not isinstance(results, list) or len(results) != len(items):
            # Salesforce saved some records or none: resending could duplicate creates.
            verdict = Verdict(outcome="dead", reason="200 without one result per record")
            return [verdict] * len(items)
        return [save_result(result) for result in results]


def save_result(result: Any) -> Outcome | Verdict:
    """One SaveResult / UpsertResult: `{"id", "success", "errors": [{"statusCode", ...}]}`."""
    if isinstance(result, dict) and result.get("success") is True:
        return "done"
    errors = result.get("errors") if isinstance(result, dict) else None
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    code = str(first.get("statusCode", "UNKNOWN"))
    fields = first.get("fields")
    where = f" ({', '.join(map(str, fields))})" if isinstance(fields, list) and fields else ""
    reason = f"{code}: {first.get('message', '')}{where}".strip()
    if code == "ALL_OR_NONE_OPERATION_ROLLED_BACK":
        return Verdict(outcome="retry", reason=reason)  # failed only because another record did
    if code == "UNABLE_TO_LOCK_ROW":
        return Verdict(outcome="retry", retry_after=LOCK_WAIT, reason=reason)
    if code == "REQUEST_LIMIT_EXCEEDED":
        return Verdict(outcome="retry", retry_after=REQUEST_LIMIT_WAIT, reason=reason)
    return Verdict(outcome="dead", reason=reason)


def first_error(data: Any) -> tuple[str, str]:
    """(errorCode, message) of Salesforce's error array `[{"message", "errorCode", "fields"}]`."""
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return str(data[0].get("errorCode", "")), str(data[0].get("message", ""))
    if isinstance(data, dict):
        return str(data.get("error", "")), str(data.get("error_description", ""))
    return "", ""


@hookimpl
def register_tag_types(register: Callable[[Any], None]) -> None:
    register(SalesforceTag())
