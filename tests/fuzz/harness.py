"""The fuzz suite's server: the real ASGI app of `sgtm serve`, in process, with every client.

Tags take secrets from the environment: `hook` signs its body with HOOK_SECRET (which must never
leave), `crm` sends API_TOKEN in its Authorization header (only there), `meta` sends
META_ACCESS_TOKEN as Meta's `access_token` query parameter (only there). The server-to-server
clients check their senders with secrets of their own (webhook signature, Meta's verify token and
app secret, the ga4_mp api_secret), which no request may carry on. Delivery is a recorder;
`sent()` turns each recorded submission into the request the engine would put on the wire: the
engine's own `job_for` seals it as the outbox stores it (secrets become placeholders bound to the
job's nonce), and the job's nonces unseal it as `_deliver_batch` does before sending. So a secret
a hit smuggles in through placeholder text shows up here as it would at the vendor.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from sgtm.app import create_app
from sgtm.composition import routes_for
from sgtm.config import ContainerSpec, load_text
from sgtm.delivery.credentials import needs_credential
from sgtm.delivery.engine import DeliveryEngine
from sgtm.delivery.recorder import RecorderDelivery
from sgtm.delivery.store import Store, decode_payload
from sgtm.plugin import Outbound
from tests.installed import registry

SECRETS = {
    "HOOK_SECRET": "hk-7Qm2v9XzLp4Rt8Wn",
    "API_TOKEN": "tok-Jd83kS0aPq1ZyV6e",
    "META_ACCESS_TOKEN": "EAAmeta5Fh2Kx9Lr0Tq",
    # The server-to-server clients' own secrets: senders prove themselves with them, and no
    # tag is ever given one.
    "CRM_WEBHOOK_SECRET": "wh-Pq7Ls2Nd9Xc4Vb1Mz",
    "META_VERIFY_TOKEN": "vt-Hr5Kw8Tq3Zs6Jy0Fa",
    "META_APP_SECRET": "as-Gd1Mx4Wc7Pv2Lt9Rn",
    "MP_SECRET": "mp-Bn6Qz3Yh8Ks5Dw2Ej",
}
# Where each secret may appear in what is sent: (tag, part of the request).
ALLOWED = {
    "API_TOKEN": ("crm", "header:authorization"),
    "META_ACCESS_TOKEN": ("meta", "url"),
}

CONTAINER = r"""
version: 1
origins: [https://www.shop.example]
privacy: {anonymize_ip: true}
clients:
  - {name: ga4, type: ga4}
  - {name: datalayer, type: datalayer}
  - {name: beacon, type: beacon}
  - name: crm_in
    type: webhook
    settings:
      path: /webhooks/crm
      signature: {secret: "${CRM_WEBHOOK_SECRET}"}
      event_name_field: type
      map: {user_data.email_address: lead.email, page_location: lead.page, uid: lead.owner}
      id_field: lead.id
      rate_limit: null  # one fuzzing peer sends thousands: every one must reach the parser
  - name: leads
    type: meta_leadgen
    settings: {verify_token: "${META_VERIFY_TOKEN}", app_secret: "${META_APP_SECRET}"}
  - name: mp
    type: ga4_mp
    settings: {api_secrets: ["${MP_SECRET}"]}
variables:
  section:
    type: regex_table
    input: page_location
    patterns:
      - {match: '^(https?://)?([a-z0-9]+\.)*shop\.example(/.*)*$', value: shop}
      - {match: '^https://[^/]+/p/([^/?#]+)', value: 'product:$1'}
    default: other
  ua: {type: request_header, name: user-agent}
  session: {type: cookie, name: session}
  email: {type: event_data, key: user_data.email_address}
  utm: {type: query_param, name: utm_source}
triggers:
  everything: {all: []}
  shop_page: {var: page_location, matches: '^(https?://)?([a-z0-9]+\.)*shop\.example(/.*)*$'}
tags:
  - name: hook
    type: http_request
    triggers: [everything]
    settings:
      url: https://hooks.example.invalid/e/{{event_name}}?page={{page_location}}&utm={{utm}}
      hmac_secret: "${HOOK_SECRET}"
      headers: {X-Section: "{{section}}", X-UA: "ua {{ua}}", X-Session: "s {{session}}"}
      body:
        event: "{{event_name}}"
        email: "{{email}}"
        value: "{{event.value}}"
        items: "{{event.items}}"
        uid: "{{event.uid}}"
  - name: crm
    type: http_request
    triggers: [shop_page]
    settings:
      url: https://crm.example.invalid/hooks
      headers: {Authorization: "Bearer ${API_TOKEN}", X-Page: "{{page_location}}"}
      body: {event: "{{event_name}}", section: "{{section}}", user: "{{event.user_id}}"}
  - name: meta
    type: meta_capi
    triggers: [everything]
    settings:
      pixel_id: "1234567890123456"
      access_token: "${META_ACCESS_TOKEN}"
"""

NORMAL_HIT = (
    "/g/collect?v=2&tid=G-FUZZ0001&cid=111.222&en=page_view"
    "&dl=https%3A%2F%2Fwww.shop.example%2Fp%2Fsock"
)


@dataclass(repr=False)
class Server:
    spec: ContainerSpec
    app: Any
    delivery: RecorderDelivery
    loop: asyncio.AbstractEventLoop
    client: httpx.AsyncClient
    # Never started: only its job_for (the outbox's sealing) and routes are used.
    engine: DeliveryEngine
    logs: list[str] = field(default_factory=list)

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return f"Server({self.spec.name!r})"

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.request(method, url, **kw))

    def mark(self) -> tuple[int, int]:
        """Where the submissions and logs are now: `leaks(since=...)` looks only past it."""
        return len(self.delivery.submitted), len(self.logs)

    def sent(self, since: int = 0) -> list[tuple[str, Outbound]]:
        """(tag, request as the engine would send it) for what was submitted since `since`."""
        out = []
        for submission in self.delivery.submitted[since:]:
            job = self.engine.job_for(submission, due=0.0)
            assert job is not None, f"{submission.tag} built a request the outbox cannot store"
            payload = decode_payload(job.payload)
            route = self.engine.routes[(payload.container, payload.tag)]
            request = route.seal.unseal(payload.outbound, payload.nonces())
            # No tag here asks for a run-time token, so a credential placeholder the engine
            # would fill could only have come from a hit.
            assert not needs_credential(request, payload.nonces()), submission.tag
            out.append((submission.tag, request))
        return out

    def assert_answers_a_normal_hit(self) -> None:
        before = len(self.delivery.submitted)
        response = self.request("GET", NORMAL_HIT)
        assert response.status_code == 200, response.text
        assert len(self.delivery.submitted) > before  # its tags fired

    def leaks(self, since: tuple[int, int] = (0, 0)) -> list[str]:
        """Every place a secret value appears where the config does not put it."""
        found = []
        for tag, outbound in self.sent(since[0]):
            parts = {
                "url": outbound.url,
                "body": outbound.body.decode("utf-8", "replace"),
                **{f"header:{k.lower()}": v for k, v in outbound.headers.items()},
            }
            for name, value in SECRETS.items():
                for part, text in parts.items():
                    if value in text and ALLOWED.get(name) != (tag, part):
                        found.append(f"{name} in {tag} {part}")
        for line in self.logs[since[1] :]:
            found.extend(f"{name} in a log line" for name, v in SECRETS.items() if v in line)
        return found


class _Collect(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        from sgtm.logs import JsonFormatter

        self.lines.append(JsonFormatter().format(record))


@contextmanager
def serve() -> Iterator[Server]:
    spec = load_text(CONTAINER, "fuzz.yaml", registry(), SECRETS)
    delivery = RecorderDelivery()
    app = create_app([spec], delivery=delivery)
    loop = asyncio.new_event_loop()
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 40000))
    client = httpx.AsyncClient(transport=transport, base_url="https://sgtm.shop.example")
    engine = DeliveryEngine(cast(Store, None), routes_for([spec]))
    server = Server(spec, app, delivery, loop, client, engine)
    handler = _Collect(server.logs)
    root = logging.getLogger()
    root.addHandler(handler)
    levels = root.level, logging.getLogger("httpx").level
    root.setLevel(logging.INFO)  # what `sgtm serve` logs by default
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the test client's own lines
    try:
        yield server
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        logging.getLogger("httpx").setLevel(levels[1])
        loop.run_until_complete(client.aclose())
        loop.close()


# -- requests ------------------------------------------------------------------------------------

# Deterministic and bounded: CI runs the same examples every time, in seconds.
FUZZ = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def escape(text: str) -> str:
    """Percent-encoded UTF-8; a lone surrogate becomes bytes no UTF-8 decoder accepts."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def query(params: list[tuple[str, str]]) -> str:
    return "&".join(f"{escape(k)}={escape(v)}" for k, v in params)


def answered(server: Server, response_status: int) -> None:
    assert response_status < 500
    server.assert_answers_a_normal_hit()


def signature(secret: str, body: bytes) -> str:
    """`sha256=` and the hex HMAC-SHA256 of the body under SECRETS[secret], as the webhook
    client's default signature and Meta's X-Hub-Signature-256 are written."""
    return "sha256=" + hmac.new(SECRETS[secret].encode(), body, hashlib.sha256).hexdigest()


# -- strategies ----------------------------------------------------------------------------------

# Text that means something to sgtm or to the layers it passes through.
SPECIAL = [
    "{{secret.API_TOKEN}}",
    "{{secret.META_ACCESS_TOKEN|url}}",
    "{{secret.HOOK_SECRET|url+}}",
    "{{secret.MP_SECRET}}",
    "{{secret.META_APP_SECRET|url}}",
    "{{credential}}",
    # Placeholders as the outbox stores them, with a guessed nonce: never the job's own.
    "{{secret.API_TOKEN@" + "0" * 24 + "}}",
    "{{credential.instance_url@0123456789abcdef01234567}}",
    "{{event_name}}",
    "{{ email }}",
    "${API_TOKEN}",
    "$$",
    "$1",
    "%",
    "%zz",
    "%E0%A4",
    "%00",
    "\r\n",
    "\x00",
    "\u202e",
    "\ud800",
    "😀",
    "NaN",
    "-Infinity",
    "1e999",
    "9" * 400,
    "1" * 2000 + "x",
    "https://www.shop.example" + "/" * 30 + "\n/",
    "../../admin?delete=1#",
    '"\\"',
    "~",
    "&",
    "=",
]
pieces = st.one_of(
    st.sampled_from(SPECIAL),
    st.text(max_size=20),
    st.text(alphabet="0123456789.-+eE", max_size=12),
)
values = st.lists(pieces, max_size=4).map("".join)
names = st.one_of(
    st.sampled_from(
        ["en", "dl", "dt", "uid", "cid", "ep.uid", "epn.value", "pr1", "_uip", "gcs", "gcd", "cu"]
    ),
    st.sampled_from(["ep.", "epn.", "up.", "upn.", "ep.user_data."]).flatmap(
        lambda p: st.text(min_size=0, max_size=12).map(lambda s: p + s)
    ),
    st.text(max_size=12),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    values,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(names, values), children, max_size=4),
    ),
    max_leaves=20,
)
