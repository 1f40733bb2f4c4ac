"""A fake Google Analytics 4 `/g/collect` endpoint for `tests.servers.FakeVendor`, and the
independent decoding the round-trip tests compare with.

Nothing here imports sgtm: the wire format is read the way GA4's collectors and the public
references read it (reference ga4-collect-protocol.md, ga4-tag-forwarding.md; d8a-tech/d8a's
protocol notes; Google's own `em` parser), so a mistake shared by the client and the tag cannot
hide. `problems(received)` lists what GA4 would misread in a request: the URL query holds the
shared params, each body line one event whose params override the URL's; every event needs
`v=2`, a measurement id and an event name; numbers must be numbers, flags `0`/`1`, items
two-letter fields and paired `k<i>`/`v<i>` custom fields, `em` Google's `tv.1~key.value` form
with base64url digests, `_uip` one IP address. Google itself answers 204 to anything; the fake
answers 400 to what it finds so tests see it (FakeVendor records it in `errors`).

`hits(received)` gives each event's params; `canonical(params)` puts them in a form where equal
meaning compares equal (numbers as numbers, items as field maps, `em` as its set of fields).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
from typing import Any
from urllib.parse import parse_qsl, unquote

from tests.servers import Received

NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
NUMBER_PARAMS = frozenset({"_p", "_s", "sct", "_et", "tfd"})
NUMBER_PREFIXES = ("epn.", "upn.")
FLAG_PARAMS = {
    "uamb": {"0", "1"},
    "uaw": {"0", "1"},
    "_ee": {"1", "0"},
    "_ss": {"1"},
    "_nsi": {"1"},
    "_fv": {"1", "2"},
    "_c": {"1"},
    "seg": {"0", "1"},
    "npa": {"0", "1"},
    "dma": {"0", "1"},
    "_dbg": {"1"},
}
BOOLEAN_PARAMS = frozenset({"uamb", "uaw", "_ee", "lps"})
GCS = re.compile(r"G1[01]{2}")
GCD = re.compile(r"1[0-9](?:[A-Za-z][0-9])+")
MEASUREMENT_ID = re.compile(r"G-[A-Z0-9]+")
ITEM_PARAM = re.compile(r"pr([1-9][0-9]{0,2})")
ITEM_KEYS = {
    "id": "item_id", "nm": "item_name", "br": "item_brand", "ca": "item_category",
    "c2": "item_category2", "c3": "item_category3", "c4": "item_category4",
    "c5": "item_category5", "va": "item_variant", "pr": "price", "qt": "quantity",
    "cp": "coupon", "ds": "discount", "lp": "index", "li": "item_list_id",
    "ln": "item_list_name", "af": "affiliation", "lo": "location_id", "pi": "promotion_id",
    "pn": "promotion_name", "cn": "creative_name", "cs": "creative_slot",
}  # fmt: skip
ITEM_NUMBERS = frozenset({"pr", "qt", "ds", "lp"})
CUSTOM_NAME = re.compile(r"k([0-9]+)([^0-9].*)", re.S)
CUSTOM_VALUE = re.compile(r"v([0-9]+)(.*)", re.S)
EM_HASHED = re.compile(r"(?:em|pn|fn[0-9]{1,2}|ln[0-9]{1,2})")
EM_PLAIN = re.compile(r"(?:pc|co)[0-9]{1,2}")
BASE64URL_DIGEST = re.compile(r"[A-Za-z0-9_-]{43}")
HEX_DIGEST = re.compile(r"[0-9A-Fa-f]{64}")
ERROR_CODE = re.compile(r"e[0-9]{1,5}")
MAX_ITEMS = 200


def hits(got: Received) -> list[dict[str, str]]:
    """One dict per event: the URL's params, overridden by each body line's."""
    base = dict(parse_qsl(got.query, keep_blank_values=True))
    lines = [line for line in got.body.decode().split("\n") if line.strip()]
    events = [
        {**base, **dict(parse_qsl(line.strip("\r"), keep_blank_values=True))} for line in lines
    ]
    return events or [base]


def problems(got: Received) -> str | None:
    """What GA4 would misread in this request; None if nothing."""
    found = list(_request_problems(got))
    return "; ".join(found) if found else None


def _request_problems(got: Received) -> Any:
    if got.method not in ("GET", "POST") or got.path != "/g/collect":
        yield f"{got.method} {got.path}: not /g/collect"
        return
    if got.body and not got.headers.get("content-type", "").startswith("text/plain"):
        yield "a body must be text/plain (one event per line)"
    for part in [got.query, *got.body.decode(errors="replace").split("\n")]:
        names = [name for name, _ in parse_qsl(part, keep_blank_values=True)]
        if len(names) != len(set(names)):
            yield f"a param is repeated in {part[:60]!r}"
    for index, params in enumerate(hits(got)):
        for problem in _hit_problems(params):
            yield f"event {index}: {problem}"


def _hit_problems(params: dict[str, str]) -> Any:
    if params.get("v") != "2":
        yield "v must be 2"
    if not MEASUREMENT_ID.fullmatch(params.get("tid", "")):
        yield f"tid {params.get('tid')!r} is not a measurement id"
    if not params.get("en"):
        yield "no event name (en)"
    if not params.get("cid"):
        yield "no client id (cid)"
    for name, value in params.items():
        if name in NUMBER_PARAMS or name.startswith(NUMBER_PREFIXES):
            if not NUMBER.fullmatch(value) or not math.isfinite(float(value)):
                yield f"{name}={value!r} is not a number"
        elif name in FLAG_PARAMS and value not in FLAG_PARAMS[name]:
            yield f"{name}={value!r}: expected one of {sorted(FLAG_PARAMS[name])}"
        elif (match := ITEM_PARAM.fullmatch(name)) and int(match[1]) > MAX_ITEMS:
            yield f"{name}: at most {MAX_ITEMS} items"
    if "gcs" in params and not GCS.fullmatch(params["gcs"]):
        yield f"gcs={params['gcs']!r} is not G1<ad><analytics>"
    if "gcd" in params and not GCD.fullmatch(params["gcd"]):
        yield f"gcd={params['gcd']!r} is not a consent-mode string"
    if "_uip" in params:
        try:
            ipaddress.ip_address(params["_uip"])
        except ValueError:
            yield f"_uip={params['_uip']!r} is not one IP address"
    for name, value in params.items():
        if ITEM_PARAM.fullmatch(name):
            yield from (f"{name}: {p}" for p in _item_problems(value))
    if "em" in params:
        yield from (f"em: {p}" for p in _em_problems(params["em"]))


def _item_problems(raw: str) -> Any:
    fields, custom, problems = _split_item(raw)
    yield from problems
    for key, value in fields.items():
        if key in ITEM_NUMBERS and not NUMBER.fullmatch(value):
            yield f"{ITEM_KEYS[key]} {value!r} is not a number"
    if not fields and not custom:
        yield "an empty item"


def _split_item(raw: str) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(two-letter fields, custom fields by name, problems). A custom value `v<i><value>` whose
    value starts with a digit is ambiguous (`v1010`: pair 1 or 10?): like GA4, take the longest
    index that has a name."""
    fields: dict[str, str] = {}
    names: dict[str, str] = {}
    values: list[str] = []
    problems = []
    for part in raw.split("~"):
        if match := CUSTOM_NAME.fullmatch(part):
            names[match[1]] = match[2]
        elif CUSTOM_VALUE.fullmatch(part):
            values.append(part[1:])
        elif part[:2] in ITEM_KEYS:
            fields[part[:2]] = part[2:]
        else:
            problems.append(f"unknown item field {part[:20]!r}")
    custom: dict[str, str] = {}
    for digits_and_value in values:
        index = next(
            (
                digits_and_value[:end]
                for end in range(len(digits_and_value), 0, -1)
                if digits_and_value[:end] in names
            ),
            None,
        )
        if index is None:
            problems.append(f"custom item value v{digits_and_value[:10]} has no k<i>")
        else:
            custom[names[index]] = digits_and_value[len(index) :]
    if len(custom) != len(names):
        problems.append("every k<i> needs a v<i>")
    return fields, custom, problems


def _em_problems(raw: str) -> Any:
    tokens = raw.split("~")
    if tokens[0] != "tv.1":
        yield "must start with tv.1"
    for token in tokens[1:]:
        key, dot, value = token.partition(".")
        if not dot or not key or not value or "." in value:
            yield f"token {token[:20]!r} is not key.value"
        elif EM_HASHED.fullmatch(key):
            if not (BASE64URL_DIGEST.fullmatch(value) or HEX_DIGEST.fullmatch(value)):
                yield f"{key} is not a SHA-256 digest"
        elif not EM_PLAIN.fullmatch(key):
            yield f"unknown field {key!r}"


def canonical(params: dict[str, str]) -> dict[str, Any]:
    """Params in a form where equal meaning compares equal."""
    out: dict[str, Any] = {}
    items: dict[int, dict[str, Any]] = {}
    for name, value in params.items():
        if name in NUMBER_PARAMS or name.startswith(NUMBER_PREFIXES):
            out[name] = float(value) if NUMBER.fullmatch(value) else value
        elif name in BOOLEAN_PARAMS:
            out[name] = value.lower() in ("1", "true")
        elif match := ITEM_PARAM.fullmatch(name):
            items[int(match[1])] = item(value)
        elif name == "em":
            out[name] = em_fields(value)
        elif name == "uafvl":
            out[name] = [brand_version(entry) for entry in value.split("|")]
        else:
            out[name] = value
    if items:
        out["items"] = [items[n] for n in sorted(items)]
    return out


def brand_version(entry: str) -> tuple[str, str]:
    """A `uafvl` entry: `brand;version` with the brand percent-encoded; `Chromium` alone: no
    version."""
    brand, _, version = entry.partition(";")
    return unquote(brand), version


def item(raw: str) -> dict[str, Any]:
    fields, custom, _ = _split_item(raw)
    out: dict[str, Any] = {}
    for key, value in fields.items():
        number = key in ITEM_NUMBERS and NUMBER.fullmatch(value)
        out[ITEM_KEYS[key]] = float(value) if number else value
    for name, value in custom.items():
        out.setdefault(name, value)
    return out


def em_fields(raw: str) -> frozenset[tuple[str, str]]:
    """The fields Google's parser reads from `em`: digests as hex, plain values lowercased."""
    fields = set()
    for token in raw.split("~")[1:]:
        key, _, value = token.partition(".")
        if ERROR_CODE.fullmatch(value):
            continue
        if EM_HASHED.fullmatch(key):
            fields.add((key, digest_hex(value)))
        elif EM_PLAIN.fullmatch(key):
            fields.add((key, value.lower()))
    return frozenset(fields)


def digest_hex(value: str) -> str:
    if HEX_DIGEST.fullmatch(value):
        return value.lower()
    try:
        return base64.urlsafe_b64decode(value + "=").hex()
    except (binascii.Error, ValueError):
        return value
