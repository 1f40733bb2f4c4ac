"""Reading requests that servers send: JSON bodies, HMAC signatures, senders' rates.

For server-to-server clients (the built-in `webhook`, `meta_leadgen` and `ga4_mp` clients use
it; `decode_json` serves the browser clients as well). Every check raises `BadRequest` with a 4xx
and a message that says what to fix; none of them echoes a secret or more than a few characters
of the input.

- `json_body`: POST only (405), a JSON media type (415), at most `max_bytes` (413), then
  `decode_json`.
- `decode_json(raw, what)`: UTF-8, valid JSON, nested at most `MAX_DEPTH` levels (400); browser
  clients use it too, for bodies and for JSON carried in a query parameter.
- `hmac_digest` / `same` / `any_same`: a signature is computed over the raw body bytes exactly
  as received (never over re-serialized JSON: senders that escape non-ASCII characters sign the
  escaped bytes) and compared in constant time.
- `rate(text)`: "100/minute" as the `RateLimit` a client's `rate_limit` returns.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from functools import lru_cache
from itertools import chain, compress
from typing import Any, Literal

import msgspec

from sgtm.plugin import BadRequest, HitRequest, RateLimit
from sgtm.ratelimit import parse_rate

# Deeper JSON is refused: no event data needs it, and tags walk event data recursively.
MAX_DEPTH = 32
JSON_TYPES = frozenset({"application/json"})
# msgspec decodes JSON objects and arrays to exactly these types.
_CONTAINERS = frozenset({dict, list})
_is_container = _CONTAINERS.__contains__

Algorithm = Literal["sha256", "sha1", "sha512"]
Encoding = Literal["hex", "base64"]


@lru_cache(maxsize=256)
def rate(text: str) -> RateLimit:
    """`RateLimit` from "100/minute" (per second, minute, hour or day); ValueError otherwise.
    Cached: a client's `rate_limit` may call it for every request."""
    return parse_rate(text)


def media_type(request: HitRequest) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def require_post(request: HitRequest) -> None:
    if request.method != "POST":
        raise BadRequest("use POST", status=405, headers={"allow": "POST"})


def check_size(request: HitRequest, max_bytes: int) -> None:
    if len(request.body) > max_bytes:
        raise BadRequest(f"body over {max_bytes} bytes", status=413)


def json_body(request: HitRequest, max_bytes: int, media_types: Iterable[str] = JSON_TYPES) -> Any:
    """The decoded JSON body; BadRequest (405, 413, 415, 400) for anything else."""
    check_json_request(request, max_bytes, media_types)
    return decode_json(request.body, "body")


def check_json_request(
    request: HitRequest, max_bytes: int, media_types: Iterable[str] = JSON_TYPES
) -> None:
    """`json_body`'s checks without the decoding, for a client that decodes only the parts it
    needs (msgspec types, `msgspec.Raw`)."""
    require_post(request)
    check_size(request, max_bytes)
    found = media_type(request)
    allowed = frozenset(media_types)
    if found not in allowed and not (found.startswith("application/") and found.endswith("+json")):
        shown = found[:60] or "none"
        raise BadRequest(
            f"unsupported Content-Type {shown!r}: send {' or '.join(sorted(allowed))}", status=415
        )
    if not request.body.strip():
        raise BadRequest("empty body: send JSON")


def decode_json(raw: bytes, what: str) -> Any:
    """`raw` as JSON, or BadRequest (400) saying what is wrong with `what` (e.g. "body")."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"{what} is not UTF-8 (byte {exc.start})") from None
    too_deep = f"{what} is not valid JSON: nested deeper than {MAX_DEPTH} levels"
    try:
        value = msgspec.json.decode(raw)
    except RecursionError:
        raise BadRequest(too_deep) from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"{what} is not valid JSON: {exc}") from None
    # Fewer brackets than the limit cannot nest past it (brackets inside strings only add to
    # the count): a wide body with few containers skips the walk, a bytes count in C.
    if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH and depth(value) > MAX_DEPTH:
        raise BadRequest(too_deep)
    return value


def depth(value: Any) -> int:
    """How many arrays and objects deep `value` goes, counted up to MAX_DEPTH + 1 (a scalar is 0).

    Level by level, without recursion; the containers of a level are picked out by C-level
    iteration (`compress` over their types), so a wide body costs a pass per level, not a Python
    step per value."""
    level = [value] if type(value) in _CONTAINERS else []
    deepest = 0
    while level and deepest <= MAX_DEPTH:
        deepest += 1
        children = (node.values() if type(node) is dict else node for node in level)
        level = list(
            chain.from_iterable(
                compress(items, map(_is_container, map(type, items))) for items in children
            )
        )
    return deepest


def hmac_digest(
    secret: str, message: bytes, algorithm: Algorithm = "sha256", encoding: Encoding = "hex"
) -> str:
    mac = hmac.new(secret.encode("utf-8"), message, getattr(hashlib, algorithm)).digest()
    return mac.hex() if encoding == "hex" else base64.b64encode(mac).decode("ascii")


def same(expected: str, given: str) -> bool:
    """Constant-time equality of two header-borne values (latin-1, as headers are decoded)."""
    return hmac.compare_digest(
        expected.encode("latin-1", "replace"), given.encode("latin-1", "replace")
    )


def any_same(candidates: Iterable[str], given: str) -> str | None:
    """The candidate equal to `given`, comparing against every candidate in constant time."""
    found = None
    for candidate in candidates:
        if same(candidate, given):
            found = candidate
    return found
