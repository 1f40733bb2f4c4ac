"""The admin surface under `/_sgtm/`: a JSON API and the UI that uses it.

On only when `SGTM_ADMIN_TOKEN` is set (404 otherwise). The API takes `Authorization: Bearer
<token>` or the UI's login cookie (sgtm/admin/auth.py; wrong tokens are throttled per client
with /metrics' by one `TokenGate`: 429 and Retry-After); the UI is static files shipped in the
package (sgtm/admin/static: no CDN, works offline) under a strict Content-Security-Policy, and
sets every value it shows through textContent.

    POST /_sgtm/api/preview                   start a preview session -> 201 {"id", "expires"}
    GET  /_sgtm/api/preview/<id>              its traces (sgtm/preview.py)
    GET  /_sgtm/api/events/<event_id>         the event's delivery history (sgtm/history.py)
    GET  /_sgtm/api/transactions/<id>         the same by transaction_id
    GET  /_sgtm/api/health                    per lane: depth, rate, breaker, last error
    GET  /_sgtm/api/dlq[?tag=&limit=]         dead letters (sgtm/dlq.py's summary)
    GET  /_sgtm/api/dlq/<id>                  one dead letter in full
    POST /_sgtm/api/dlq/replay                {"ids": [...]} | {"tag": T} | {"all": true}
    POST /_sgtm/api/dlq/purge                 {"before": "7d" | ISO date}
"""

from __future__ import annotations

import html
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

import msgspec
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp

from sgtm import dlq, history
from sgtm.admin.auth import (
    COOKIE,
    CSRF_HEADER,
    SESSION_LIFE,
    AdminAuth,
    Session,
    TokenGate,
    same_origin,
)
from sgtm.delivery.base import DeliveryUnavailable
from sgtm.delivery.engine import DeliveryEngine
from sgtm.delivery.store import PREVIEW_LIFE, Store
from sgtm.preview import COOKIE as PREVIEW_COOKIE
from sgtm.preview import Previews, valid_id

PREFIX = "/_sgtm"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "cache-control": "no-store",
    "referrer-policy": "same-origin",  # no-referrer would make form posts say Origin: null
    "x-frame-options": "DENY",
}
STATIC = {"admin.js": "text/javascript", "admin.css": "text/css"}
MAX_LIST = 500

Handler = Callable[[Request], Awaitable[Response]]


class ReplayBody(msgspec.Struct, forbid_unknown_fields=True):
    ids: list[str] | None = None
    tag: str | None = None
    all: bool = False


class PurgeBody(msgspec.Struct, forbid_unknown_fields=True):
    before: str


def json_response(value: Any, status: int = 200) -> Response:
    return Response(
        msgspec.json.encode(value),
        status_code=status,
        media_type="application/json",
        headers=SECURITY_HEADERS,
    )


def problem(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


def _static(name: str) -> bytes:
    return resources.files("sgtm.admin").joinpath("static", name).read_bytes()


def too_many(retry_after: int) -> Response:
    """A client locked out for wrong tokens (sgtm/admin/auth.py, TokenGate)."""
    answer = problem(429, f"too many wrong tokens: try again in {retry_after} s")
    answer.headers["retry-after"] = str(retry_after)
    return answer


def admin_app(
    gate: TokenGate,
    store: Store | None,
    engine: DeliveryEngine | None,
    previews: Previews | None,
) -> ASGIApp:
    """The `/_sgtm` app. `gate` checks the token (shared with /metrics: one throttle). `store`
    is None when the server runs without a delivery store (a test's recorder): then only health
    answers, empty."""
    auth = AdminAuth(gate.token)
    page_template = _static("page.html").decode()

    def api(handler: Handler, *, changes: bool = False) -> Handler:
        async def guarded(request: Request) -> Response:
            bearer = gate.bearer(request)
            if bearer.retry_after:
                return too_many(bearer.retry_after)
            if not bearer.ok:
                session = auth.session(request)
                if session is None:
                    return problem(401, "unauthorized: Authorization: Bearer <token> required")
                given = request.headers.get(CSRF_HEADER)
                if changes and not auth.may_change(request, session, given):
                    return problem(403, "forbidden: CSRF token or origin does not match")
            try:
                return await handler(request)
            except DeliveryUnavailable as exc:
                return problem(503, f"delivery store unavailable: {exc}")

        return guarded

    def need_store() -> Store:
        if store is None:
            raise DeliveryUnavailable("this server has no delivery store")
        return store

    async def body_of(request: Request, kind: type[Any]) -> Any:
        raw = await request.body()
        try:
            return msgspec.json.decode(raw or b"{}", type=kind)
        except msgspec.ValidationError as exc:
            raise BadInput(f"invalid body: {exc}") from None
        except msgspec.DecodeError as exc:
            raise BadInput(f"body is not JSON: {exc}") from None

    # -- API ----------------------------------------------------------------------------------

    async def preview_start(request: Request) -> Response:
        if previews is None:
            return problem(503, "preview needs the delivery store (this server has none)")
        id, expires = await previews.open()
        return json_response({"id": id, "expires": expires}, 201)

    async def preview_show(request: Request) -> Response:
        id = request.path_params["id"]
        found = await previews.read(id) if previews is not None and valid_id(id) else None
        if found is None:
            return problem(404, "no such preview session (unknown or expired)")
        return json_response(found)

    async def event_show(request: Request) -> Response:
        key = request.path_params["key"]
        why = history.check_key(key)
        if why is not None:
            return problem(400, why)
        return json_response(await history.event_history(need_store(), key))

    async def transaction_show(request: Request) -> Response:
        key = request.path_params["key"]
        why = history.check_key(key)
        if why is not None:
            return problem(400, why)
        return json_response(await history.transaction_history(need_store(), key))

    async def health(request: Request) -> Response:
        lanes = await engine.health() if engine is not None else []
        return json_response({"sends": bool(engine and engine.sends), "lanes": lanes})

    async def dlq_list(request: Request) -> Response:
        tag = request.query_params.get("tag") or None
        try:
            limit = int(request.query_params.get("limit", "100"))
        except ValueError:
            return problem(400, "limit: expected a number")
        if not 1 <= limit <= MAX_LIST:
            return problem(400, f"limit: 1 to {MAX_LIST}")
        letters = await need_store().dead_letters(tag=tag, limit=limit)
        return json_response({"dead_letters": [dlq.summary(x) for x in letters]})

    async def dlq_show(request: Request) -> Response:
        letter = await need_store().dead_letter(request.path_params["id"])
        if letter is None:
            return problem(404, "no such dead letter")
        return json_response(dlq.details(letter))

    async def dlq_replay(request: Request) -> Response:
        try:
            body = await body_of(request, ReplayBody)
        except BadInput as exc:
            return problem(400, str(exc))
        if not (body.ids or body.tag or body.all):
            return problem(400, 'replay what? give "ids", "tag" or "all": true')
        count = await need_store().replay(ids=body.ids or None, tag=body.tag, now=time.time())
        return json_response({"replayed": count})

    async def dlq_purge(request: Request) -> Response:
        try:
            body = await body_of(request, PurgeBody)
            before = dlq.parse_when(body.before, time.time())
        except BadInput as exc:
            return problem(400, str(exc))
        except dlq.DlqError as exc:
            return problem(400, f"before: {exc}")
        return json_response({"purged": await need_store().purge(before)})

    # -- UI -----------------------------------------------------------------------------------

    def page(kind: str, session: Session, **data: str) -> Response:
        fields = {"page": kind, "csrf": session.csrf, "preview": "", **data}
        text = page_template
        for name, value in fields.items():
            text = text.replace("{{" + name + "}}", html.escape(value, quote=True))
        return Response(text, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    def login_page(status: int = 200, message: str = "", retry_after: int = 0) -> Response:
        text = _static("login.html").decode().replace("{{message}}", html.escape(message))
        headers = SECURITY_HEADERS
        if retry_after:
            headers = {**SECURITY_HEADERS, "retry-after": str(retry_after)}
        return Response(text, status, media_type="text/html; charset=utf-8", headers=headers)

    def back_to(path: str) -> Response:
        return RedirectResponse(f"{PREFIX}{path}", status_code=303, headers=SECURITY_HEADERS)

    async def home(request: Request) -> Response:
        session = auth.session(request)
        if session is None:
            return login_page()
        return page("home", session)

    async def login(request: Request) -> Response:
        client = gate.client(request)
        wait = gate.retry_after(client)
        if wait:
            return login_page(429, "Too many wrong tokens: wait a minute.", wait)
        if not same_origin(request):
            return login_page(403, "This form must be sent from this site.")
        form = _form_fields(await request.body())
        if form is None:
            return login_page(400, "This form has too many fields.")
        given = (form.get("token") or [""])[0]
        if not gate.form_token(given, client):
            return login_page(401, "Wrong token.")
        response = back_to("/")
        response.set_cookie(
            COOKIE,
            auth.new_cookie(),
            max_age=int(SESSION_LIFE),
            path=PREFIX,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    async def form_session(request: Request) -> tuple[Session | None, dict[str, list[str]]]:
        """The login session of a form post that may change something (CSRF-checked)."""
        session = auth.session(request)
        form = _form_fields(await request.body())
        if form is None:
            return None, {}  # refused as a form without a session would be
        csrf = (form.get("csrf") or [""])[0]
        if session is None or not auth.may_change(request, session, csrf):
            return None, form
        return session, form

    async def logout(request: Request) -> Response:
        session, _ = await form_session(request)
        if session is None:
            return PlainTextResponse("forbidden\n", 403, headers=SECURITY_HEADERS)
        response = back_to("/")
        response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return response

    async def preview_page(request: Request) -> Response:
        session = auth.session(request)
        id = request.path_params["id"]
        if session is None:
            return login_page()
        if not valid_id(id):
            return PlainTextResponse("no such preview session\n", 404, headers=SECURITY_HEADERS)
        return page("preview", session, preview=id)

    async def preview_site(request: Request) -> Response:
        """Puts this browser in the session: the `sgtm_preview` cookie on this (the tagging)
        domain, sent with the site's hits to it; `stop` takes it away."""
        session, form = await form_session(request)
        id = request.path_params["id"]
        if session is None:
            return PlainTextResponse("forbidden\n", 403, headers=SECURITY_HEADERS)
        if not valid_id(id) or previews is None or not await previews.live(id):
            return PlainTextResponse("no such preview session\n", 404, headers=SECURITY_HEADERS)
        response = back_to(f"/preview/{id}")
        secure = request.url.scheme == "https"
        if (form.get("stop") or [""])[0]:
            response.delete_cookie(PREVIEW_COOKIE, path="/", secure=secure, httponly=True)
        else:
            # Lax: the site's pages (www.shop.example) and the tagging domain are one site, and
            # their hits carry it; another site's cannot.
            response.set_cookie(
                PREVIEW_COOKIE,
                id,
                max_age=int(PREVIEW_LIFE),
                path="/",
                secure=secure,
                httponly=True,
                samesite="lax",
            )
        return response

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return PlainTextResponse("not found\n", 404)
        headers = {**SECURITY_HEADERS, "cache-control": "no-cache"}
        return Response(_static(name), media_type=STATIC[name], headers=headers)

    return Router(
        routes=[
            Route("/", home, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/preview/{id}", preview_page, methods=["GET"]),
            Route("/preview/{id}/site", preview_site, methods=["POST"]),
            Route("/static/{name}", static, methods=["GET"]),
            Route("/api/preview", api(preview_start, changes=True), methods=["POST"]),
            Route("/api/preview/{id}", api(preview_show), methods=["GET"]),
            Route("/api/events/{key:path}", api(event_show), methods=["GET"]),
            Route("/api/transactions/{key:path}", api(transaction_show), methods=["GET"]),
            Route("/api/health", api(health), methods=["GET"]),
            Route("/api/dlq", api(dlq_list), methods=["GET"]),
            Route("/api/dlq/replay", api(dlq_replay, changes=True), methods=["POST"]),
            Route("/api/dlq/purge", api(dlq_purge, changes=True), methods=["POST"]),
            Route("/api/dlq/{id}", api(dlq_show), methods=["GET"]),
        ],
        redirect_slashes=False,
        default=json_not_found,
    )


async def json_not_found(scope: Any, receive: Any, send: Any) -> None:
    await problem(404, "not found")(scope, receive, send)


class BadInput(Exception):
    pass


async def not_found(scope: Any, receive: Any, send: Any) -> None:
    """The admin surface when no token is set: it does not exist."""
    await PlainTextResponse("not found\n", status_code=404)(scope, receive, send)


# The admin forms send one or two fields: more is not one of them.
MAX_FORM_FIELDS = 4


def _form_fields(body: bytes) -> dict[str, list[str]] | None:
    """A posted form's fields; None for more than MAX_FORM_FIELDS (parse_qs raises on them)."""
    try:
        return parse_qs(body.decode("latin-1"), max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        return None
