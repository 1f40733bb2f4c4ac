"""sgtm.js, served first-party by the `datalayer` client.

The file is read and compressed once, at import. Each representation has a strong ETag derived
from its bytes (plain and gzip differ, as RFC 9110 requires for strong validators), so a browser
revalidates with `If-None-Match` and gets a 304 without a body. `Cache-Control: public` lets a
CDN in front keep it too.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from sgtm.plugin import ClientResponse, HitRequest

SOURCE = (Path(__file__).parent / "sgtm.js").read_bytes()


@dataclass(frozen=True, slots=True)
class Representation:
    body: bytes
    etag: str
    encoding: str | None


_DIGEST = hashlib.sha256(SOURCE).hexdigest()[:32]
PLAIN = Representation(SOURCE, f'"{_DIGEST}"', None)
GZIP = Representation(gzip.compress(SOURCE, 9, mtime=0), f'"{_DIGEST}-gz"', "gzip")


def response(request: HitRequest, max_age: int) -> ClientResponse:
    chosen = GZIP if accepts_gzip(request.headers.get("accept-encoding", "")) else PLAIN
    headers = {
        "etag": chosen.etag,
        "cache-control": f"public, max-age={max_age}",
        "vary": "Accept-Encoding",
    }
    if etag_matches(request.headers.get("if-none-match", ""), chosen.etag):
        return ClientResponse(status=304, headers=headers)
    headers["content-type"] = "application/javascript; charset=utf-8"
    headers["x-content-type-options"] = "nosniff"
    if chosen.encoding:
        headers["content-encoding"] = chosen.encoding
    return ClientResponse(status=200, headers=headers, body=chosen.body)


def accepts_gzip(header: str) -> bool:
    for part in header.split(","):
        coding, _, params = part.partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip"):
            continue
        quality = params.strip().lower()
        if quality.startswith("q="):
            try:
                return float(quality[2:]) > 0
            except ValueError:
                return False
        return True
    return False


def etag_matches(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison: `W/"x"` matches `"x"`; `*` matches anything."""
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in tags or etag in tags
