"""Fake RD Station, Salesforce and Responsys APIs on loopback, strict about their documented schema.

Each fake is a real uvicorn server (tests/servers.py FakeVendor) with the vendor's token endpoint
and API in one app. Every request is checked against what the vendor documents (field names,
types, limits, auth header shapes); a violation is recorded in `errors` and answered the way the
vendor answers it, so a test asserts both the outcome and `errors == []`. State (issued tokens,
contacts, records) makes per-record results real: a Lead without Company fails alone, a merge
with a bad address comes back `MERGEFAILED` for that record only.

`script[route]` replies are answered first, to inject throttling and expired sessions.

`CredentialFlow` does, for contract tests, what the delivery engine does with a tag's credential
declarations: fetch a token, fill `{{credential}}` placeholders, send, refresh once on an auth
failure, and classify (per item for batching tags).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import msgspec

from sgtm.config import ContainerSpec, load_text
from sgtm.delivery.credentials import fill, needs_credential
from sgtm.delivery.sqlite_store import SqliteStore
from sgtm.delivery.store import DeadLetter
from sgtm.emulate import Emulator, RequestLine
from sgtm.plugin import Credential, Outbound, Tag, Verdict, as_verdict
from tests.installed import registry
from tests.servers import FakeVendor, Received, SgtmServer

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class Problem(Exception):
    """A request the vendor would refuse; `reply` is the vendor's answer."""

    def __init__(self, message: str, reply: Reply) -> None:
        super().__init__(message)
        self.reply = reply


Handler = Callable[[Received, re.Match[str]], Reply]


@dataclass
class FakeAPI(FakeVendor):
    """A FakeVendor answering JSON from routes: (method, path regex) -> handler."""

    script: dict[str, list[Reply]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.routes: list[tuple[str, re.Pattern[str], str, Handler]] = []
        self.state_lock = threading.Lock()
        self.setup()

    def setup(self) -> None:
        raise NotImplementedError

    def route(self, method: str, pattern: str, name: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(pattern), name, handler))

    def requests_to(self, name: str) -> list[Received]:
        return [r for r in self.received if self.route_name(r) == name]

    def route_name(self, got: Received) -> str | None:
        for method, pattern, name, _ in self.routes:
            if got.method == method and pattern.fullmatch(got.path):
                return name
        return None

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        got = Received(
            method=scope["method"],
            path=scope["path"],
            query=scope["query_string"].decode(),
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body=body,
        )
        reply = self.answer(got)
        payload = b"" if reply.body is None else msgspec.json.encode(reply.body)
        headers = [(b"content-length", str(len(payload)).encode())]
        if payload:
            headers.append((b"content-type", b"application/json"))
        headers.extend((k.lower().encode(), v.encode()) for k, v in reply.headers.items())
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def answer(self, got: Received) -> Reply:
        with self._lock:
            self.received.append(got)
        for method, pattern, name, handler in self.routes:
            match = pattern.fullmatch(got.path)
            if got.method != method or match is None:
                continue
            with self.state_lock:
                scripted = self.script.get(name)
                if scripted:
                    return scripted.pop(0)
                try:
                    return handler(got, match)
                except Problem as problem:
                    with self._lock:
                        self.errors.append(f"{name}: {problem}")
                    return problem.reply
        with self._lock:
            self.errors.append(f"no route for {got.method} {got.path}")
        return Reply(404, {"error": "not found"})


def json_body(got: Received, problem: Callable[[str], Problem]) -> Any:
    if not got.headers.get("content-type", "").startswith("application/json"):
        raise problem(f"content-type is {got.headers.get('content-type')!r}, not JSON")
    try:
        return msgspec.json.decode(got.body)
    except msgspec.DecodeError:
        raise problem("body is not JSON") from None


def form_body(got: Received, problem: Callable[[str], Problem]) -> dict[str, str]:
    if got.headers.get("content-type", "") != "application/x-www-form-urlencoded":
        raise problem("token requests are form-encoded")
    if got.query:
        raise problem("credentials must never be in the URL")
    form = parse_qs(got.body.decode(), keep_blank_values=True)
    return {k: v[0] for k, v in form.items()}


# -- RD Station Marketing ------------------------------------------------------------------

RD_CONVERSION_FIELDS = frozenset(
    {
        "conversion_identifier",
        "email",
        "name",
        "job_title",
        "bio",
        "birthdate",
        "state",
        "city",
        "country",
        "personal_phone",
        "mobile_phone",
        "twitter",
        "facebook",
        "linkedin",
        "website",
        "company_name",
        "company_site",
        "company_address",
        "client_tracking_id",
        "traffic_source",
        "traffic_medium",
        "traffic_campaign",
        "traffic_value",
        "available_for_mailing",
        "tags",
        "legal_bases",
    }
)
RD_ECOMMERCE_FIELDS = frozenset(
    {
        "email",
        "identifier",
        "name",
        "mobile_phone",
        "personal_phone",
        "legal_bases",
        "checkout_url",
        "currency",
        "price",
        "total_items",
        "line_items",
        "shipping_price",
        "shipping_city",
        "shipping_state",
        "shipping_country",
        "order_url",
        "payment_methods",
        "cancel_reason",
    }
)
RD_LINE_ITEM_FIELDS = frozenset(
    {
        "product_id",
        "product_title",
        "price",
        "quantity",
        "product_url",
        "variant_id",
        "variant_title",
        "sku",
        "image_url",
        "categories",
    }
)
RD_TYPES = frozenset(
    {
        "CONVERSION",
        "OPPORTUNITY",
        "SALE",
        "OPPORTUNITY_LOST",
        "ECOMMERCE_CHECKOUT_STARTED",
        "ECOMMERCE_CART_ABANDONED",
        "ECOMMERCE_ORDER_PLACED",
        "ECOMMERCE_ORDER_PAID",
        "ECOMMERCE_ORDER_FULFILLED",
        "ECOMMERCE_SHIPMENT_DELIVERED",
        "ECOMMERCE_ORDER_CANCELLED",
        "ECOMMERCE_ORDER_REFUNDED",
    }
)
RD_BASIS_TYPES = frozenset(
    {
        "pre_existent_contract",
        "consent",
        "legitimate_interest",
        "judicial_process",
        "vital_interest",
        "public_interest",
    }
)


def rd_error(status: int, error_type: str, message: str, path: str = "") -> Reply:
    return Reply(
        status,
        {"errors": [{"error_type": error_type, "error_message": message, "path": path}]},
    )


@dataclass
class FakeRDStation(FakeAPI):
    """POST /auth/token (JSON), /platform/conversions?api_key=, /platform/events?event_type=."""

    api_keys: tuple[str, ...] = ("rd-key-1",)
    client_id: str = "rd-client"
    client_secret: str = "rd-client-secret"
    refresh_token: str = "rd-refresh"
    custom_fields: tuple[str, ...] = ("cf_plan", "cf_origem")
    lead_limit: int = 120  # POST events per contact per 24 h

    def setup(self) -> None:
        self.tokens: set[str] = set()
        self.expired: set[str] = set()
        self.per_lead: dict[str, int] = {}
        self.events: list[dict[str, Any]] = []  # accepted: {"event_type", "payload", "via"}
        self.counter = itertools.count(1)
        self.route("POST", "/auth/token", "token", self.token)
        self.route("POST", "/platform/conversions", "conversions", self.conversions)
        self.route("POST", "/platform/events", "events", self.platform_events)

    def expire_tokens(self) -> None:
        """Every issued token is now expired (RD tokens last 24 h)."""
        with self.state_lock:
            self.expired |= self.tokens
            self.tokens.clear()

    def token(self, got: Received, _: re.Match[str]) -> Reply:
        body = json_body(got, lambda m: Problem(m, rd_error(400, "BAD_REQUEST", m)))
        if not isinstance(body, dict) or set(body) != {
            "client_id",
            "client_secret",
            "refresh_token",
        }:
            raise Problem(
                "token body must be {client_id, client_secret, refresh_token}",
                rd_error(400, "BAD_REQUEST", "invalid body"),
            )
        if (body["client_id"], body["client_secret"]) != (self.client_id, self.client_secret):
            return Reply(
                401,
                {
                    "errors": {
                        "error_type": "ACCESS_DENIED",
                        "error_message": "Wrong credentials provided.",
                    }
                },
            )
        if body["refresh_token"] != self.refresh_token:
            return Reply(
                401,
                {
                    "errors": {
                        "error_type": "INVALID_REFRESH_TOKEN",
                        "error_message": "The provided refresh token is invalid or was revoked.",
                    }
                },
            )
        token = f"rd-access-{next(self.counter)}"
        self.tokens.add(token)
        return Reply(
            200, {"access_token": token, "expires_in": 86400, "refresh_token": self.refresh_token}
        )

    def conversions(self, got: Received, _: re.Match[str]) -> Reply:
        key = parse_qs(got.query).get("api_key", [""])[0]
        if key not in self.api_keys:
            return Reply(
                401, {"errors": {"error_type": "UNAUTHORIZED", "error_message": "Invalid API key."}}
            )
        if "authorization" in got.headers:
            raise Problem(
                "the api_key endpoint takes no Authorization", rd_error(400, "BAD_REQUEST", "auth")
            )
        return self.accept(got, "api_key", only_conversion=True, account=key)

    def platform_events(self, got: Received, _: re.Match[str]) -> Reply:
        auth = got.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        if not auth.startswith("Bearer ") or token not in self.tokens:
            headers = {}
            if token in self.expired:
                headers["WWW-Authenticate"] = (
                    'Bearer realm="https://api.rd.services/", error="expired_token", '
                    'error_description="The access token expired"'
                )
            return Reply(
                401,
                {"errors": {"error_type": "UNAUTHORIZED", "error_message": "Invalid token."}},
                headers,
            )
        query = parse_qs(got.query).get("event_type", [""])[0]
        reply = self.accept(got, "oauth", only_conversion=False, account="oauth")
        if reply.status == 200 and query.upper() != self.events[-1]["event_type"]:
            raise Problem(
                f"event_type in the query ({query}) differs from the body",
                rd_error(400, "INVALID_OPTION", "event_type mismatch"),
            )
        return reply

    def accept(self, got: Received, via: str, *, only_conversion: bool, account: str) -> Reply:
        def bad(message: str, error_type: str = "INVALID_DATA", path: str = "") -> Problem:
            return Problem(message, rd_error(400, error_type, message, path))

        if len(got.body) > 200_000:
            raise bad("body larger than 0.2 MB", "PAYLOAD_TOO_LARGE")
        body = json_body(got, bad)
        if not isinstance(body, dict) or set(body) != {"event_type", "event_family", "payload"}:
            raise bad("body must be {event_type, event_family, payload}")
        if body["event_family"] != "CDP":
            raise bad("event_family must be CDP", "INVALID_OPTION", "$.event_family")
        event_type = body["event_type"]
        if event_type not in RD_TYPES:
            raise bad(f"event_type {event_type!r}", "INVALID_OPTION", "$.event_type")
        if only_conversion and event_type != "CONVERSION":
            raise bad("the api_key endpoint supports only conversion events", "INVALID_OPTION")
        payload = body["payload"]
        if not isinstance(payload, dict):
            raise bad("payload must be an object")
        check_rd_payload(event_type, payload, self.custom_fields, bad)
        contact = f"{account}/{payload['email']}"
        self.per_lead[contact] = self.per_lead.get(contact, 0) + 1
        if self.per_lead[contact] > self.lead_limit:
            return Reply(
                429,
                {
                    "error": "'lead_limiter' rate limit exceeded for 86400 second(s) period "
                    f"for key '{payload['email']}'",
                    "max": self.lead_limit,
                    "usage": self.per_lead[contact],
                    "remaining_time": 43067,
                },
            )
        self.events.append({"event_type": event_type, "payload": payload, "via": via})
        return Reply(200, {"event_uuid": str(uuid.uuid4())})


def check_rd_payload(
    event_type: str, payload: dict[str, Any], custom: tuple[str, ...], bad: Callable[..., Problem]
) -> None:
    email = payload.get("email")
    if not isinstance(email, str) or not EMAIL_RE.match(email):
        raise bad("email: invalid or missing", "CANNOT_BE_NULL", "$.payload.email")
    for name, value in payload.items():
        if name.startswith("cf_"):
            if event_type != "CONVERSION":
                raise bad(f"{name}: custom fields go on CONVERSION only")
            if name not in custom:
                raise bad(f"{name}: no such custom field", "FIELD_NOT_FOUND")
            continue
        allowed = RD_CONVERSION_FIELDS if event_type == "CONVERSION" else RD_ECOMMERCE_FIELDS
        if name not in allowed:
            raise bad(f"{name}: not a field of {event_type}", "INVALID_FIELD")
        if name in ("tags", "legal_bases", "line_items", "payment_methods"):
            if not isinstance(value, list):
                raise bad(f"{name}: Must be of type 'SET'", "INVALID_DATA_TYPE")
        elif name in ("price", "shipping_price", "total_items"):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise bad(f"{name}: must be a number of 0 or more")
        elif name == "available_for_mailing":
            if not isinstance(value, bool):
                raise bad("available_for_mailing: must be a boolean")
        elif not isinstance(value, str):
            raise bad(f"{name}: must be a string", "INVALID_DATA_TYPE")
    for tag in payload.get("tags", []):
        if not isinstance(tag, str) or tag != tag.lower():
            raise bad(f"tags: {tag!r}", "VALUES_MUST_BE_LOWERCASE")
    for basis in payload.get("legal_bases", []):
        if (
            not isinstance(basis, dict)
            or basis.get("category") != "communications"
            or basis.get("type") not in RD_BASIS_TYPES
            or basis.get("status") not in ("granted", "declined")
            or len(basis) != 3
        ):
            raise bad(f"legal_bases: {basis!r}", "INVALID_OPTION")
    if event_type == "CONVERSION":
        identifier = payload.get("conversion_identifier")
        if not isinstance(identifier, str) or not identifier.strip():
            raise bad("conversion_identifier: required", "CANNOT_BE_NULL")
        return
    if not isinstance(payload.get("identifier"), str) or not payload["identifier"]:
        raise bad("identifier: required", "CANNOT_BE_NULL")
    if event_type in ("ECOMMERCE_CHECKOUT_STARTED", "ECOMMERCE_CART_ABANDONED",
                      "ECOMMERCE_ORDER_PLACED", "ECOMMERCE_ORDER_PAID"):  # fmt: skip
        for name in ("currency", "price", "total_items"):
            if name not in payload:
                raise bad(f"{name}: required for {event_type}", "CANNOT_BE_NULL")
        if not isinstance(payload["total_items"], int):
            raise bad("total_items: must be an integer")
    if event_type in ("ECOMMERCE_CHECKOUT_STARTED", "ECOMMERCE_CART_ABANDONED"):
        url = payload.get("checkout_url")
        if not isinstance(url, str) or not re.match(r"^https?://\S+$", url):
            raise bad("checkout_url: required http(s) URL", "CANNOT_BE_NULL")
        if payload["total_items"] < 1:
            raise bad("total_items: at least 1")
    lines = payload.get("line_items", [])
    if len(lines) > 20:
        raise bad("line_items: at most 20")
    for line in lines:
        if not isinstance(line, dict) or not set(line) <= RD_LINE_ITEM_FIELDS:
            raise bad(f"line_items: {line!r}")
        for name in ("product_id", "product_title"):
            if not isinstance(line.get(name), str) or not line[name]:
                raise bad(f"line_items.{name}: required")
        if not isinstance(line.get("price"), (int, float)) or line["price"] < 0:
            raise bad("line_items.price: a number of 0 or more")
        quantity = line.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            raise bad("line_items.quantity: an integer of 1 or more")
        if len(line.get("categories", [])) > 10:
            raise bad("line_items.categories: at most 10")
    if len(payload.get("payment_methods", [])) > 5:
        raise bad("payment_methods: at most 5")


# -- Salesforce -------------------------------------------------------------------------------

SF_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
SF_REQUIRED = {"Lead": ("LastName", "Company"), "Contact": ("LastName",)}
SF_LENGTHS = {"Subject": 255, "Email": 80, "FirstName": 40, "LastName": 80, "Phone": 40}


def sf_error(status: int, code: str, message: str) -> Reply:
    return Reply(status, [{"message": message, "errorCode": code, "fields": []}])


@dataclass
class FakeSalesforce(FakeAPI):
    """My Domain token endpoint (client credentials); sObject Collections create/update/upsert."""

    client_id: str = "sf-client"
    client_secret: str = "sf-client-secret"
    objects: tuple[str, ...] = ("Task", "Lead", "Contact")
    external_ids: tuple[str, ...] = ("Web_Id__c",)
    # Required on create: Salesforce's own, and whatever an org adds (validation rules).
    required: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(SF_REQUIRED))

    def setup(self) -> None:
        self.tokens: set[str] = set()
        self.records: dict[str, dict[str, Any]] = {}  # id -> fields (with "type")
        self.by_external: dict[tuple[str, str, str], str] = {}
        self.counter = itertools.count(1)
        self.batches: list[int] = []  # records per accepted Collections request
        self.route("POST", "/services/oauth2/token", "token", self.token)
        base = r"/services/data/v(\d+\.0)/composite/sobjects"
        self.route("POST", base, "create", self.create)
        self.route("PATCH", base, "update", self.update)
        self.route("PATCH", base + r"/(\w+)/(\w+)", "upsert", self.upsert)

    def expire_sessions(self) -> None:
        with self.state_lock:
            self.tokens.clear()

    def token(self, got: Received, _: re.Match[str]) -> Reply:
        form = form_body(
            got,
            lambda m: Problem(m, Reply(400, {"error": "invalid_request", "error_description": m})),
        )
        if form.get("grant_type") != "client_credentials":
            raise Problem(
                "grant_type must be client_credentials",
                Reply(400, {"error": "unsupported_grant_type"}),
            )
        if (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return Reply(
                400, {"error": "invalid_client", "error_description": "invalid client credentials"}
            )
        token = f"00Dxx0000001gPL!sf-{next(self.counter)}"
        self.tokens.add(token)
        # No expires_in and no refresh token: the session lasts while it is used.
        return Reply(
            200,
            {
                "access_token": token,
                "signature": "c2ln",
                "scope": "api",
                "instance_url": self.url,
                "id": f"{self.url}/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS",
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
            },
        )

    def authorized(self, got: Received) -> Reply | None:
        auth = got.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in self.tokens:
            return sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        return None

    def collection(self, got: Received, match: re.Match[str]) -> list[dict[str, Any]]:
        def bad(message: str) -> Problem:
            return Problem(message, sf_error(400, "JSON_PARSER_ERROR", message))

        if float(match.group(1)) < 46:
            raise bad("sObject Collections upsert needs API version 46.0 or later")
        body = json_body(got, bad)
        if not isinstance(body, dict) or not set(body) <= {"allOrNone", "records"}:
            raise bad("body must be {allOrNone, records}")
        if body.get("allOrNone") is not False:
            raise bad("allOrNone must be false for per-record results (tests expect it)")
        records = body.get("records")
        if not isinstance(records, list) or not 1 <= len(records) <= 200:
            raise bad("records: 1 to 200 objects")
        for record in records:
            attributes = record.get("attributes") if isinstance(record, dict) else None
            if not isinstance(attributes, dict) or not isinstance(attributes.get("type"), str):
                raise bad("each record needs attributes.type")
            for name, value in record.items():
                if name != "attributes" and not SF_NAME_RE.match(name):
                    raise bad(f"{name}: not a field name")
                if name != "attributes" and isinstance(value, (dict, list)):
                    raise bad(f"{name}: field values are scalars")
        self.batches.append(len(records))
        return records

    def check_record(self, record: dict[str, Any], creating: bool) -> dict[str, Any] | None:
        kind = record["attributes"]["type"]
        if kind not in self.objects:
            return failure("INVALID_TYPE", f"sObject type '{kind}' is not supported.", [])
        for name, limit in SF_LENGTHS.items():
            value = record.get(name)
            if isinstance(value, str) and len(value) > limit:
                return failure("STRING_TOO_LONG", f"{name}: data value too large", [name])
        email = record.get("Email")
        if email is not None and not (isinstance(email, str) and EMAIL_RE.match(email)):
            return failure(
                "INVALID_EMAIL_ADDRESS", f"Email: invalid email address: {email}", ["Email"]
            )
        if creating:
            missing = [n for n in self.required.get(kind, ()) if not record.get(n)]
            if missing:
                return failure(
                    "REQUIRED_FIELD_MISSING", f"Required fields are missing: {missing}", missing
                )
        return None

    def save(self, record: dict[str, Any], record_id: str | None = None) -> str:
        record_id = record_id or f"00X{next(self.counter):012d}"
        fields = {k: v for k, v in record.items() if k not in ("attributes", "id")}
        self.records.setdefault(record_id, {"type": record["attributes"]["type"]}).update(fields)
        return record_id

    def create(self, got: Received, match: re.Match[str]) -> Reply:
        if denied := self.authorized(got):
            return denied
        results = []
        for record in self.collection(got, match):
            if "id" in record or "Id" in record:
                raise Problem("create records carry no id", sf_error(400, "INVALID_FIELD", "id"))
            problem = self.check_record(record, creating=True)
            results.append(problem or {"id": self.save(record), "success": True, "errors": []})
        return Reply(200, results, {"Sforce-Limit-Info": "api-usage=18/100000"})

    def update(self, got: Received, match: re.Match[str]) -> Reply:
        if denied := self.authorized(got):
            return denied
        results = []
        for record in self.collection(got, match):
            record_id = record.get("id")
            if not isinstance(record_id, str):
                raise Problem("update records need id", sf_error(400, "MISSING_ARGUMENT", "id"))
            if record_id not in self.records:
                results.append(failure("ENTITY_IS_DELETED", "entity is deleted", []))
                continue
            problem = self.check_record(record, creating=False)
            results.append(
                problem or {"id": self.save(record, record_id), "success": True, "errors": []}
            )
        return Reply(200, results)

    def upsert(self, got: Received, match: re.Match[str]) -> Reply:
        if denied := self.authorized(got):
            return denied
        kind, external = match.group(2), match.group(3)
        if external not in self.external_ids:
            raise Problem(f"{external} is not an External ID", sf_error(404, "NOT_FOUND", external))
        results = []
        for record in self.collection(got, match):
            if record["attributes"]["type"] != kind:
                raise Problem(
                    "records must be of the URL's type", sf_error(400, "INVALID_TYPE", kind)
                )
            if "id" in record or "Id" in record:
                raise Problem("upsert records carry no id", sf_error(400, "INVALID_FIELD", "Id"))
            value = record.get(external)
            if not isinstance(value, str) or not value:
                results.append(failure("MISSING_ARGUMENT", f"{external} not specified", [external]))
                continue
            existing = self.by_external.get((kind, external, value))
            problem = self.check_record(record, creating=existing is None)
            if problem:
                results.append(problem)
                continue
            record_id = self.save(record, existing)
            self.by_external[(kind, external, value)] = record_id
            results.append(
                {"id": record_id, "success": True, "errors": [], "created": existing is None}
            )
        return Reply(200, results)


def failure(code: str, message: str, fields: list[str]) -> dict[str, Any]:
    return {
        "success": False,
        "errors": [{"statusCode": code, "message": message, "fields": fields}],
    }


# -- Responsys --------------------------------------------------------------------------------

RS_MERGE_RULE = {
    "insertOnNoMatch": (bool,),
    "updateOnMatch": ("REPLACE_ALL", "NO_UPDATE"),
    "matchColumnName1": (
        "RIID_",
        "CUSTOMER_ID_",
        "EMAIL_ADDRESS_",
        "MOBILE_NUMBER_",
        "EMAIL_MD5_HASH_",
        "EMAIL_SHA256_HASH_",
    ),
    "matchColumnName2": (None,),
    "matchOperator": ("NONE", "AND"),
    "optinValue": ("I",),
    "optoutValue": ("O",),
    "htmlValue": ("H",),
    "textValue": ("T",),
    "rejectRecordIfChannelEmpty": (None, "E", "M", "EM"),
    "defaultPermissionStatus": ("OPTIN", "OPTOUT"),
}
RS_RECIPIENT_IDS = {
    "emailAddress": "EMAIL_ADDRESS_",
    "customerId": "CUSTOMER_ID_",
    "recipientId": "RIID_",
    "mobileNumber": "MOBILE_NUMBER_",
    "emailMD5Hash": "EMAIL_MD5_HASH_",
    "emailSHA256Hash": "EMAIL_SHA256_HASH_",
}
RS_RECIPIENT_KEYS = frozenset(
    {
        "emailAddress",
        "customerId",
        "recipientId",
        "mobileNumber",
        "emailMD5Hash",
        "emailSHA256Hash",
        "listName",
        "emailFormat",
    }
)


# The account's mobile format is E.164 (Oracle's recommended setting, "Mobile number data import
# handling"): the number with its country code, the `+` dropped when stored, MOBILE_COUNTRY_
# filled from the calling code when not given. The calling codes these tests use:
RS_CALLING_CODES = {"55": "BR", "351": "PT", "1": "US"}


def rs_mobile(row: dict[str, Any]) -> str | None:
    """Store MOBILE_NUMBER_ / MOBILE_COUNTRY_ of a merged row as an E.164 account does; the
    MERGEFAILED reason when the number cannot be E.164 or contradicts its country."""
    mobile = row.get("MOBILE_NUMBER_")
    if mobile is None:
        return None
    digits = mobile.removeprefix("+")
    code = next((c for c in RS_CALLING_CODES if digits.startswith(c)), None)
    if not digits.isdigit() or not 8 <= len(digits) <= 15 or code is None:
        return f"INVALID_MOBILE_NUMBER: {mobile} is not an E.164 number"
    country = row.get("MOBILE_COUNTRY_") or RS_CALLING_CODES[code]
    if RS_CALLING_CODES[code] != country:
        return f"INVALID_MOBILE_COUNTRY: {country} for +{code}"
    row["MOBILE_NUMBER_"], row["MOBILE_COUNTRY_"] = digits, country
    return None


def rs_error(status: int, code: str, detail: str, title: str = "") -> Reply:
    return Reply(
        status,
        {
            "type": "",
            "title": title or detail,
            "errorCode": code,
            "detail": detail,
            "errorDetails": [],
        },
    )


@dataclass
class FakeResponsys(FakeAPI):
    """Password login (form) returning token + endPoint; list merges and custom events."""

    username: str = "api_user"
    password: str = "rs-password"
    lists: tuple[str, ...] = ("CONTACTS_LIST",)
    events: tuple[str, ...] = ("Purchase_Made",)

    def setup(self) -> None:
        self.tokens: set[str] = set()
        self.members: dict[str, list[dict[str, str]]] = {name: [] for name in self.lists}
        self.permissions: dict[str, str] = {}  # riid -> permission given on insert
        self.triggered: list[dict[str, Any]] = []
        self.counter = itertools.count(470515045)
        self.batches: list[int] = []
        self.route("POST", "/rest/api/v1.3/auth/token", "token", self.token)
        self.route("POST", r"/rest/api/v1.3/lists/([^/]+)/members", "merge", self.merge)
        self.route("POST", r"/rest/api/v1.3/events/([^/]+)", "event", self.event)

    def expire_tokens(self) -> None:
        with self.state_lock:
            self.tokens.clear()

    def token(self, got: Received, _: re.Match[str]) -> Reply:
        form = form_body(got, lambda m: Problem(m, rs_error(400, "INVALID_PARAMETER", m)))
        if form.get("auth_type") != "password":
            raise Problem(
                "auth_type must be password", rs_error(400, "INVALID_PARAMETER", "auth_type")
            )
        if (form.get("user_name"), form.get("password")) != (self.username, self.password):
            return rs_error(400, "INVALID_USER_NAME_PASSWORD", "Invalid username or password.")
        token = f"rs-token-{next(self.counter)}"
        self.tokens.add(token)
        return Reply(
            200, {"authToken": token, "issuedAt": int(time.time() * 1000), "endPoint": self.url}
        )

    def authorized(self, got: Received) -> Reply | None:
        if got.headers.get("authorization", "") not in self.tokens:  # the bare token, no Bearer
            return rs_error(
                401, "INVALID_TOKEN", "Not a valid authentication token", "Not a valid token"
            )
        return None

    def body(self, got: Received) -> Any:
        def bad(message: str) -> Problem:
            return Problem(message, rs_error(400, "INVALID_PARAMETER", message))

        if not got.body.isascii():
            raise bad("non-ASCII characters must be sent as \\uXXXX escapes")
        return json_body(got, bad)

    def merge(self, got: Received, match: re.Match[str]) -> Reply:
        if denied := self.authorized(got):
            return denied
        body = self.body(got)

        def bad(message: str, code: str = "INVALID_PARAMETER") -> Problem:
            return Problem(message, rs_error(400, code, message))

        list_name = match.group(1)
        if list_name not in self.members:
            return rs_error(404, "LIST_NOT_FOUND", f"List {list_name} not found")
        if not isinstance(body, dict) or set(body) != {"recordData", "mergeRule"}:
            raise bad("body must be {recordData, mergeRule}")
        data, rule = body["recordData"], body["mergeRule"]
        if not isinstance(data, dict) or set(data) != {"fieldNames", "records", "mapTemplateName"}:
            raise bad("recordData must be {fieldNames, records, mapTemplateName}")
        names, records = data["fieldNames"], data["records"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise bad("FieldList is null OR empty")
        if len(set(names)) != len(names):
            raise bad("fieldNames repeat a column")
        if not isinstance(records, list) or not records:
            raise bad("records: at least one")
        if len(records) > 200:
            raise bad("more than 200 records", "RECIPIENT_LIMIT_EXCEEDED")
        if not isinstance(rule, dict) or set(rule) != set(RS_MERGE_RULE):
            raise bad(f"mergeRule must have exactly {sorted(RS_MERGE_RULE)}")
        for key, allowed in RS_MERGE_RULE.items():
            value = rule[key]
            ok = isinstance(value, bool) if allowed == (bool,) else value in allowed
            if not ok:
                raise bad(f"mergeRule.{key}: {value!r}")
        column = rule["matchColumnName1"]
        if column not in names:
            raise bad(f"match column {column} is not in fieldNames")
        if column.startswith("EMAIL_") and column.endswith("HASH_") and rule["insertOnNoMatch"]:
            raise bad("hash match columns are update-only (insertOnNoMatch: false)")
        self.batches.append(len(records))
        results = []
        for number, record in enumerate(records, start=1):
            if not isinstance(record, list) or len(record) != len(names):
                raise bad(f"record {number} does not have {len(names)} values")
            if not all(v is None or isinstance(v, str) for v in record):
                raise bad(f"record {number}: values are strings")
            row = dict(zip(names, record, strict=True))
            email = row.get("EMAIL_ADDRESS_")
            if email is not None and not EMAIL_RE.match(email):
                results.append([f"MERGEFAILED: Record {number} = INVALID_EMAIL_ADDRESS: {email}"])
                continue
            if mobile_problem := rs_mobile(row):
                results.append([f"MERGEFAILED: Record {number} = {mobile_problem}"])
                continue
            member = self.find(list_name, column, row[column])
            if member is not None:
                if rule["updateOnMatch"] == "REPLACE_ALL":
                    member.update(row)
            elif rule["insertOnNoMatch"]:
                member = {**row, "RIID_": str(next(self.counter))}
                self.members[list_name].append(member)
                self.permissions[member["RIID_"]] = rule["defaultPermissionStatus"]
            else:
                results.append([f"MERGEFAILED: Record {number} = RECORD_NOT_FOUND"])
                continue
            if member.get("EMAIL_ADDRESS_"):
                address = member["EMAIL_ADDRESS_"].encode()
                member["EMAIL_SHA256_HASH_"] = hashlib.sha256(address).hexdigest()
                member["EMAIL_MD5_HASH_"] = hashlib.md5(address).hexdigest()
            results.append([member["RIID_"]])
        data = {"fieldNames": ["RIID_"], "records": results, "mapTemplateName": None}
        return Reply(200, {"recordData": data, "mergeRule": {**rule, "matchColumnName3": None}})

    def find(self, list_name: str, column: str, value: Any) -> dict[str, str] | None:
        for member in self.members.get(list_name, []):
            if value is not None and member.get(column) == str(value):
                return member
        return None

    def event(self, got: Received, match: re.Match[str]) -> Reply:
        if denied := self.authorized(got):
            return denied
        body = self.body(got)

        def bad(message: str, code: str = "INVALID_PARAMETER") -> Problem:
            return Problem(message, rs_error(400, code, message))

        name = match.group(1)
        if name not in self.events:
            return rs_error(404, "EVENT_NOT_FOUND", f"Event {name} not found")
        if not isinstance(body, dict) or set(body) != {"customEvent", "recipientData"}:
            raise bad("body must be {customEvent, recipientData}")
        if set(body["customEvent"]) != {
            "eventNumberDataMapping",
            "eventDateDataMapping",
            "eventStringDataMapping",
        }:
            raise bad("customEvent must name the three data mappings")
        recipients = body["recipientData"]
        if not isinstance(recipients, list) or not recipients:
            raise bad("recipientData: at least one")
        if len(recipients) > 200:
            raise bad("more than 200 recipients", "RECIPIENT_LIMIT_EXCEEDED")
        self.batches.append(len(recipients))
        results = []
        for entry in recipients:
            if not isinstance(entry, dict) or set(entry) != {"recipient", "optionalData"}:
                raise bad("each recipientData entry is {recipient, optionalData}")
            recipient = entry["recipient"]
            if not isinstance(recipient, dict) or set(recipient) != RS_RECIPIENT_KEYS:
                raise bad(f"recipient keys must be {sorted(RS_RECIPIENT_KEYS)}")
            list_name = recipient["listName"]
            if not isinstance(list_name, dict) or set(list_name) != {"folderName", "objectName"}:
                raise bad("listName must be {folderName, objectName}")
            if recipient["emailFormat"] not in ("HTML_FORMAT", "TEXT_FORMAT"):
                raise bad("emailFormat")
            for item in entry["optionalData"]:
                if set(item) != {"name", "value"} or not isinstance(item["value"], str):
                    raise bad("optionalData entries are {name, value: string}")
                if item["name"].endswith("_"):
                    raise bad(f"optionalData cannot use the system column {item['name']}")
            ids = [
                (c, recipient[k]) for k, c in RS_RECIPIENT_IDS.items() if recipient[k] is not None
            ]
            if len(ids) != 1:
                raise bad(f"a recipient names itself once, got {ids}")
            found = self.find(list_name["objectName"], *ids[0])
            if found is None:
                results.append(
                    {"errorMessage": "RECIPIENT_NOT_FOUND", "success": False, "recipientId": -1}
                )
                continue
            self.triggered.append(
                {"event": name, "riid": found["RIID_"], "data": entry["optionalData"]}
            )
            results.append(
                {"errorMessage": None, "success": True, "recipientId": int(found["RIID_"])}
            )
        return Reply(200, results)


# -- what the engine does with credentials, for contract tests ---------------------------------


def own_nonces(outbound: Outbound) -> set[str]:
    """The nonces of the placeholders a request holds: the engine keeps them with the job; a
    contract test trusts what its own tag built."""
    text = outbound.url + "".join(outbound.headers.values())
    return set(re.findall(r"\{\{credential[^{}@]*@([0-9a-f]+)\}\}", text))


class CredentialFlow:
    """Token once, placeholders filled at send time, one refresh and one retry on auth failure."""

    def __init__(self, tag: Tag, settings: Any) -> None:
        self.tag = tag
        self.settings = settings
        self.credential: Credential | None = None
        self.client = httpx.AsyncClient()

    async def aclose(self) -> None:
        await self.client.aclose()

    async def token(self) -> Credential:
        request = self.tag.auth_request(self.settings)
        assert request is not None
        response = await self.client.request(
            request.method, request.url, headers=request.headers, content=request.body
        )
        self.credential = self.tag.parse_auth(
            response.status_code, dict(response.headers), response.content, time.time()
        )
        return self.credential

    async def send(self, outbounds: list[Outbound]) -> list[Verdict]:
        request = self.tag.merge(outbounds) if self.tag.batching else outbounds[0]
        nonces = own_nonces(request)
        needs_token = needs_credential(request, nonces)
        for attempt in (1, 2):
            sent = request
            if needs_token:
                credential = self.credential or await self.token()
                sent = fill(request, credential, nonces)
                assert not own_nonces(sent), "a credential placeholder was left unfilled"
            response = await self.client.request(
                sent.method, sent.url, headers=sent.headers, content=sent.body
            )
            status, headers, body = response.status_code, dict(response.headers), response.content
            if needs_token and attempt == 1 and self.tag.is_auth_failure(status, headers, body):
                await self.token()
                continue
            break
        if self.tag.batching:
            verdicts = self.tag.classify_batch(status, headers, body, outbounds)
        else:
            verdicts = [self.tag.classify(status, headers, body)]
        return [as_verdict(v) for v in verdicts]


# -- running containers ------------------------------------------------------------------------

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def load(text: str, env: dict[str, str] | None = None) -> ContainerSpec:
    return load_text(textwrap.dedent(text), "test.yaml", registry(), environ=env or {})


def emulate(
    text: str, events: list[dict[str, Any]], env: dict[str, str] | None = None, now: float = NOW
) -> list[list[dict[str, Any]]]:
    """`sgtm emulate --events`: per event, the tags as emulate prints them (requests as sent)."""
    emulator = Emulator([load(text, env)], now)
    result = asyncio.run(emulator.events(events, None))
    return [event["tags"] for event in result["events"]]


def emulate_request(
    text: str, line: dict[str, Any], env: dict[str, str] | None = None, now: float = NOW
) -> dict[str, Any]:
    """`sgtm emulate --requests`: one request line through the container's clients."""
    emulator = Emulator([load(text, env)], now)
    return asyncio.run(emulator.request(RequestLine(**line)))


# -- the real server ---------------------------------------------------------------------------

# The delivery engine tuned for tests: quick polls and short backoffs (SGTM_DELIVERY_* knobs).
FAST_DELIVERY = {
    "SGTM_DELIVERY_POLL_INTERVAL": "0.05",
    "SGTM_DELIVERY_BACKOFF_BASE": "0.05",
    "SGTM_DELIVERY_BACKOFF_CAP": "0.5",
    "SGTM_DELIVERY_DISCOVER_INTERVAL": "0.1",
    "SGTM_DELIVERY_SWEEP_INTERVAL": "0.2",
}


def serve(tmp_path: Path, container: str, env: dict[str, str]) -> SgtmServer:
    """`sgtm serve` on the container, its outbox under tmp_path."""
    path = tmp_path / "site.yaml"
    path.write_text(textwrap.dedent(container))
    return SgtmServer(path, {**FAST_DELIVERY, "SGTM_DATA_DIR": str(tmp_path / "var"), **env})


def ga4_post(server: SgtmServer, lines: list[str], common: str = "") -> None:
    """One batched GA4 POST: the URL holds what the events share, the body one event per line."""
    url = f"{server.url}/g/collect?v=2&tid=G-TEST01&cid=111.222&sid=1700000000&{common}"
    response = httpx.post(url, content="\n".join(lines).encode(), timeout=5)
    assert 200 <= response.status_code < 300, response.text


def dead_letters(tmp_path: Path) -> list[DeadLetter]:
    """The dead letters in the outbox of a stopped server, oldest first."""

    async def read() -> list[DeadLetter]:
        store = SqliteStore(str(tmp_path / "var"))
        await store.open()
        try:
            return await store.dead_letters(limit=1000)
        finally:
            await store.close()

    return list(reversed(asyncio.run(read())))
