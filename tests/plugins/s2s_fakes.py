"""Fake HubSpot, WhatsApp Cloud API, Slack incoming webhook and Graph API lead reads on loopback,
strict about what each vendor documents (reference destinations/hubspot-and-webhooks.md,
whatsapp-cloud-api.md, meta-leadgen-webhooks.md, and Slack's incoming-webhook docs).

Built on `crm_fakes.FakeAPI`: every request is checked; a violation is recorded in `errors` and
answered the way the vendor answers it, so a test asserts the outcome and `errors == []`. State
(contacts, sent messages) makes results real: an address HubSpot finds invalid fails alone in a
207, a template the account does not have is refused with 132001. `script[route]` answers first,
to inject throttling and outages.
"""

from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from sgtm.plugin import Verdict
from sgtm.testing import Harness
from tests.plugins.crm_fakes import FakeAPI, Problem, Reply, json_body
from tests.servers import Received


async def deliver(
    tag_type: str,
    settings: dict[str, Any],
    events: list[dict[str, Any]],
    environ: dict[str, str] | None = None,
) -> list[Verdict]:
    """One tag of `tag_type` with `settings` fires on every event; what it builds is sent once
    the way the delivery engine sends it (sgtm.testing's Harness: lanes, batches, merge,
    classify), and each request's verdict comes back."""
    container = {
        "version": 1,
        "triggers": {"all_events": {"all": []}},
        "tags": [
            {"name": tag_type, "type": tag_type, "triggers": ["all_events"], "settings": settings}
        ],
    }
    harness = Harness(container, environ=environ or {})
    await harness.events(*events)
    return [delivered.verdict for delivered in await harness.deliver()]


# -- HubSpot CRM v3 ------------------------------------------------------------------------------

HUBSPOT_TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
HUBSPOT_PROPERTIES = frozenset(
    {
        "email",
        "firstname",
        "lastname",
        "phone",
        "mobilephone",
        "city",
        "state",
        "zip",
        "country",
        "company",
        "jobtitle",
        "website",
        "lifecyclestage",
        "hs_lead_status",
    }
)
HUBSPOT_STAGES = frozenset(
    {
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "opportunity",
        "customer",
        "evangelist",
        "other",
    }
)
INPUT_KEYS = frozenset({"id", "idProperty", "properties", "objectWriteTraceId"})
# HubSpot checks an address's domain: reserved top-level domains are refused (RFC 2606).
HUBSPOT_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.(?!invalid$|localhost$)[a-z]{2,}", re.IGNORECASE)


def forget(fake: FakeAPI) -> None:
    """Clear what a fake recorded and its scripted answers."""
    with fake._lock:
        fake.received.clear()
        fake.errors.clear()
    fake.script.clear()


def hubspot_error(status: int, category: str, message: str, **extra: Any) -> Reply:
    body = {"status": "error", "message": message, "correlationId": "c0ffee", "category": category}
    return Reply(status, {**body, **extra})


@dataclass
class FakeHubSpot(FakeAPI):
    """`POST /crm/v3/objects/contacts/batch/upsert` with a private app token."""

    token: str = HUBSPOT_TOKEN
    custom_properties: frozenset[str] = frozenset({"lead_source", "plan"})

    def setup(self) -> None:
        self.reset()
        self.ids = itertools.count(1001)
        self.route("POST", r"/crm/v3/objects/contacts/batch/upsert", "upsert", self.upsert)

    def reset(self) -> None:
        """Forget every request and contact (one server serves a whole test module)."""
        forget(self)
        self.contacts: dict[str, dict[str, str]] = {}  # email -> properties
        self.batches: list[int] = []  # inputs per accepted request

    def upsert(self, got: Received, _: re.Match[str]) -> Reply:
        auth = got.headers.get("authorization", "")
        if auth != f"Bearer {self.token}":
            return hubspot_error(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at https://developers.hubspot.com/",
            )

        def bad(message: str) -> Problem:
            return Problem(message, hubspot_error(400, "VALIDATION_ERROR", message))

        body = json_body(got, bad)
        if not isinstance(body, dict) or set(body) != {"inputs"}:
            raise bad("body must be {inputs: [...]}")
        inputs = body["inputs"]
        if not isinstance(inputs, list) or not 1 <= len(inputs) <= 100:
            raise bad("inputs: 1 to 100 per request")
        ids = [i.get("id") for i in inputs if isinstance(i, dict)]
        if len({str(i).lower() for i in ids}) != len(ids):
            raise bad("Duplicate IDs found in batch input")
        for item in inputs:
            self.check_input(item, bad)
        unknown = sorted(
            {p for i in inputs for p in i["properties"]}
            - HUBSPOT_PROPERTIES
            - self.custom_properties
        )
        if unknown:
            # A property that does not exist fails the whole request, naming no input.
            return hubspot_error(
                400,
                "VALIDATION_ERROR",
                f'Property values were not valid: [{{"isValid":false,"message":"Property '
                f'\\"{unknown[0]}\\" does not exist","error":"PROPERTY_DOESNT_EXIST",'
                f'"name":"{unknown[0]}"}}]',
            )
        results, errors = [], []
        for item in inputs:
            email = item["id"].lower()
            stage = item["properties"].get("lifecyclestage")
            problem = None
            if not HUBSPOT_EMAIL.fullmatch(email):
                problem = f"Email address {email} is invalid"
                code = "INVALID_EMAIL"
            elif stage is not None and stage not in HUBSPOT_STAGES and not stage.isdigit():
                problem = f"{stage} was not one of the allowed options"
                code = "INVALID_OPTION"
            if problem is not None:
                errors.append(
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": f'Property values were not valid: [{{"isValid":false,"message":'
                        f'"{problem}","error":"{code}"}}]',
                        "context": {"objectWriteTraceId": [item.get("objectWriteTraceId", "")]},
                    }
                )
                continue
            new = email not in self.contacts
            contact = self.contacts.setdefault(email, {"hs_object_id": str(next(self.ids))})
            contact.update(item["properties"])
            results.append(
                {
                    "id": contact["hs_object_id"],
                    "properties": dict(contact),
                    "createdAt": "2026-12-01T12:00:00.000Z",
                    "updatedAt": "2026-12-01T12:00:00.000Z",
                    "archived": False,
                    "new": new,
                    "objectWriteTraceId": item.get("objectWriteTraceId"),
                }
            )
        self.batches.append(len(inputs))
        answer: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": "2026-12-01T12:00:00.000Z",
            "completedAt": "2026-12-01T12:00:00.100Z",
        }
        if errors:
            answer |= {"numErrors": len(errors), "errors": errors}
        return Reply(207 if errors else 200, answer)

    @staticmethod
    def check_input(item: Any, bad: Any) -> None:
        if not isinstance(item, dict) or not set(item) <= INPUT_KEYS:
            raise bad(f"an input is {sorted(INPUT_KEYS)}")
        if not isinstance(item.get("id"), str) or item.get("idProperty") != "email":
            raise bad("upsert by e-mail: id is the address and idProperty is email")
        properties = item.get("properties")
        if not isinstance(properties, dict) or not all(
            isinstance(v, str) for v in properties.values()
        ):
            raise bad("properties: an object of string values")
        if properties.get("email", item["id"]).lower() != item["id"].lower():
            raise bad("properties.email differs from the input's id")
        trace = item.get("objectWriteTraceId")
        if trace is not None and not isinstance(trace, str):
            raise bad("objectWriteTraceId must be a string")


# -- WhatsApp Cloud API ------------------------------------------------------------------------

WHATSAPP_TOKEN = "EAAG-whatsapp-system-user-token"
PHONE_NUMBER_ID = "106540352242922"
MESSAGE_KEYS = frozenset(
    {"messaging_product", "recipient_type", "to", "type", "template", "biz_opaque_callback_data"}
)
E164_DIGITS = re.compile(r"\+?[1-9][0-9]{6,14}")


def whatsapp_error(status: int, code: int, message: str, details: str = "") -> Reply:
    error = {
        "message": f"(#{code}) {message}",
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details or message},
        "fbtrace_id": "AbCdEf123",
    }
    return Reply(status, {"error": error})


@dataclass
class FakeWhatsApp(FakeAPI):
    """`POST /{version}/{phone_number_id}/messages`, template messages only. `templates`: the
    account's approved templates, (name, language) -> (header params, body params)."""

    token: str = WHATSAPP_TOKEN
    phone_number_id: str = PHONE_NUMBER_ID
    templates: dict[tuple[str, str], tuple[int, int]] = field(
        default_factory=lambda: {("novo_lead", "pt_BR"): (0, 3), ("hot_lead", "en_US"): (1, 2)}
    )

    def setup(self) -> None:
        self.reset()
        self.wamids = itertools.count(1)
        self.route("POST", r"/v[0-9]+\.[0-9]+/([0-9]+)/messages", "messages", self.send)

    def send(self, got: Received, match: re.Match[str]) -> Reply:
        if got.headers.get("authorization") != f"Bearer {self.token}":
            return whatsapp_error(
                401, 190, "Invalid OAuth access token - Cannot parse access token"
            )
        if match.group(1) != self.phone_number_id:
            return whatsapp_error(400, 100, "Invalid parameter", "Unknown phone number id")
        if got.query:
            raise Problem("no query string", whatsapp_error(400, 100, "Invalid parameter"))

        def bad(message: str) -> Problem:
            return Problem(message, whatsapp_error(400, 100, "Invalid parameter", message))

        body = json_body(got, bad)
        if not isinstance(body, dict) or not set(body) <= MESSAGE_KEYS:
            raise bad(f"a message has only {sorted(MESSAGE_KEYS)}")
        if body.get("messaging_product") != "whatsapp" or body.get("type") != "template":
            raise bad("messaging_product must be whatsapp and type template")
        if body.get("recipient_type", "individual") != "individual":
            raise bad("recipient_type must be individual")
        to = body.get("to")
        if not isinstance(to, str) or not E164_DIGITS.fullmatch(to):
            raise bad("to: the recipient's number with country code, digits only")
        template = body.get("template")
        if not isinstance(template, dict) or not set(template) <= {
            "name",
            "language",
            "components",
        }:
            raise bad("template: {name, language, components}")
        language = template.get("language")
        if not isinstance(language, dict) or not isinstance(language.get("code"), str):
            raise bad("template.language: {code, policy}")
        if language.get("policy", "deterministic") != "deterministic":
            raise bad("template.language.policy must be deterministic")
        found = self.templates.get((template.get("name"), language["code"]))
        if found is None:
            return whatsapp_error(
                404, 132001, "Template name does not exist in the translation",
                f"template name ({template.get('name')}) does not exist in {language['code']}",
            )  # fmt: skip
        counts = self.parameter_counts(template.get("components", []), bad)
        if counts != found:
            return whatsapp_error(
                400, 132000, "Number of parameters does not match the expected number of params",
                f"header/body parameters {counts}, the template has {found}",
            )  # fmt: skip
        self.messages.append(body)
        wa_id = to.lstrip("+")
        return Reply(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": wa_id}],
                "messages": [
                    {"id": f"wamid.HBgN{next(self.wamids):08d}", "message_status": "accepted"}
                ],
            },
        )

    def reset(self) -> None:
        forget(self)
        self.messages: list[dict[str, Any]] = []  # accepted message bodies

    @staticmethod
    def parameter_counts(components: Any, bad: Any) -> tuple[int, int]:
        counts = {"header": 0, "body": 0}
        if not isinstance(components, list):
            raise bad("components must be a list")
        for component in components:
            kind = component.get("type") if isinstance(component, dict) else None
            if kind not in counts or set(component) != {"type", "parameters"}:
                raise bad("a component is {type: header|body, parameters: [...]}")
            for parameter in component["parameters"]:
                if not isinstance(parameter, dict) or parameter.get("type") != "text":
                    raise bad("parameters are {type: text, text}")
                if not set(parameter) <= {"type", "text", "parameter_name"}:
                    raise bad("unknown parameter field")
                text = parameter.get("text")
                if not isinstance(text, str) or not text.strip():
                    raise bad("a text parameter cannot be empty")
                if re.search(r"[\n\t]| {5,}", text):
                    raise bad(
                        "Param text cannot have new-line/tab characters or more than 4 "
                        "consecutive spaces"
                    )
            counts[kind] += len(component["parameters"])
        return counts["header"], counts["body"]


# -- Slack incoming webhook --------------------------------------------------------------------

SLACK_PATH = "/services/T000/B000/XXXXXXXX"


@dataclass
class FakeSlack(FakeAPI):
    """An incoming webhook: `text` (the notification) and optional Block Kit `blocks`. Besides
    Slack's schema it refuses what would ping a channel from data: `<!channel>`, `<!here>`,
    `<!everyone>` or a user mention in the parsed parts (`text`, `mrkdwn`)."""

    def setup(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.route("POST", re.escape(SLACK_PATH), "webhook", self.post)

    def post(self, got: Received, _: re.Match[str]) -> Reply:
        def bad(message: str) -> Problem:
            return Problem(message, Reply(400, "invalid_payload"))

        body = json_body(got, bad)
        if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
            raise bad("a message needs text")
        allowed = {"text", "blocks", "mrkdwn", "unfurl_links", "unfurl_media"}
        if not set(body) <= allowed:
            raise bad(f"unknown fields {sorted(set(body) - allowed)}")
        parsed = [body["text"]]
        blocks = body.get("blocks", [])
        if not isinstance(blocks, list) or len(blocks) > 50:
            raise bad("blocks: a list of at most 50")
        for block in blocks:
            parsed += self.block_texts(block, bad)
        for text in parsed:
            if SLACK_MENTION.search(text):
                raise bad(f"a mention in parsed text would notify people: {text[:60]!r}")
        self.posts.append(body)
        return Reply(200, "ok")

    @staticmethod
    def block_texts(block: Any, bad: Any) -> list[str]:
        """The block's texts Slack parses for mentions and links (mrkdwn), after checking it."""
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "header":
            text = block.get("text")
            if not _text_object(text, 150, ("plain_text",)):
                raise bad("a header's text is plain_text of 1 to 150 characters")
            return []
        if kind == "section":
            objects = ([block["text"]] if "text" in block else []) + block.get("fields", [])
            if not objects or len(block.get("fields", [])) > 10:
                raise bad("a section has text or 1 to 10 fields")
            for obj in objects:
                if not _text_object(obj, 3000, ("plain_text", "mrkdwn")):
                    raise bad("section texts are plain_text or mrkdwn of 1 to 3000 characters")
            return [o["text"] for o in objects if o["type"] == "mrkdwn"]
        raise bad(f"unsupported block type {kind!r}")


SLACK_MENTION = re.compile(r"<(!channel|!here|!everyone|@[UW][A-Z0-9]+|!subteam)")


def _text_object(value: Any, limit: int, kinds: tuple[str, ...]) -> bool:
    return (
        isinstance(value, dict)
        and value.get("type") in kinds
        and isinstance(value.get("text"), str)
        and 0 < len(value["text"]) <= limit
    )


# -- Graph API lead reads ----------------------------------------------------------------------

PAGE_TOKEN = "EAAB-page-access-token-with-leads-retrieval"


@dataclass
class FakeGraphLeads(FakeAPI):
    """`GET /{version}/{leadgen_id}?access_token=...&fields=...` answering the stored lead."""

    token: str = PAGE_TOKEN
    leads: dict[str, dict[str, Any]] = field(default_factory=dict)

    def setup(self) -> None:
        self.reads = 0
        self.lock = threading.Lock()
        self.route("GET", r"/v[0-9]+\.[0-9]+/([0-9]+)", "lead", self.lead)

    def lead(self, got: Received, match: re.Match[str]) -> Reply:
        query = parse_qs(got.query)
        if query.get("access_token") != [self.token]:
            return Reply(
                400,
                {
                    "error": {
                        "message": "Invalid OAuth access token - Cannot parse access token",
                        "type": "OAuthException",
                        "code": 190,
                        "fbtrace_id": "x",
                    }
                },
            )
        lead = self.leads.get(match.group(1))
        if lead is None:
            return Reply(
                400,
                {
                    "error": {
                        "message": f"Unsupported get request. Object with ID '{match.group(1)}' "
                        "does not exist",
                        "type": "GraphMethodException",
                        "code": 100,
                        "error_subcode": 33,
                        "fbtrace_id": "x",
                    }
                },
            )
        fields = (query.get("fields") or ["id,created_time,field_data"])[0].split(",")
        self.reads += 1
        return Reply(200, {k: v for k, v in lead.items() if k in fields or k == "id"})
