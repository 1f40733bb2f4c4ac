"""GA4 `/g/collect` hits -> sGTM event data. Pure functions: no I/O, no clock.

The spec is reference/ga4-collect-protocol.md (parameter tables, §2-§6) and sgtm-model.md §10
(consent). Where the reference is silent, the choice and its evidence are written next to the
table entry that implements it.

Transport: the URL query holds the params every event shares; the body holds one event per
line, each line a query string whose params override the URL's. No body lines = one event from
the URL alone. Params are decoded like a browser form (`+` is a space); a broken percent escape
stays literal text and bytes that are not UTF-8 become U+FFFD. Within one query string the first
occurrence of a repeated param wins (as `URLSearchParams.get` does).

Values:
- Strings are copied as sent, empty strings included (real sGTM keeps `uam=` as `model: ""`
  and an empty `ep.*` as `""`).
- Numbers (`_p _s sct _et tfd`, `epn.*`, `upn.*`, item `pr qt ds lp`) must be a plain decimal
  (`12`, `-1.5`, `2e3`, surrounding spaces allowed): an integral value becomes an int, any other
  a float. `NaN`, `Infinity`, overflow (`1e999`), hex, `1_000`, empty values and values longer
  than MAX_NUMBER_CHARS are invalid.
  Integral values of 2**53 and above stay floats, as they would in sGTM's JavaScript.
- Booleans (`uamb uaw _ee lps`): `1`/`true` -> True, `0`/`false`/empty -> False.
- An invalid value drops that one param and counts `ga4.invalid_param`; the rest of the event
  is kept. Nothing here raises for any input and NaN/Infinity never reach event data.

Choices where the reference is silent or uncertain:
- Unknown params (and those the reference lists as not mapped: `_z _eu _tu tag_exp frm pscdl
  ec_mode _gaz _rdi _geo gtm_up _glv tt`) are copied the way real sGTM event data shows
  (`tt` -> `x-ga-mp2-tt`, `_z` -> `x-ga-system_properties.z` in a 2022 capture): `_name` ->
  `x-ga-system_properties.name`, `name` -> `x-ga-mp2-name`. `passthrough_unknown=False` drops
  them instead. `_fplc` only feeds the FPID cookie logic and is never copied.
- `_dbg` -> `x-ga-system_properties.dbg` (observed in real sGTM event data); `_c` and `_rnd` follow
  the same underscore rule. `gcut`, `us_privacy`, `gdpr`, `gdpr_consent` -> `x-ga-<name>` like the
  other consent params.
- Top-level `cn`/`cs` are campaign name/source (gtag sends event-level promotion fields as
  `ep.creative_name` etc.); campaign params map to gtag's own `campaign_<field>` names
  (`ci` -> `campaign_id`, as in analytics-debugger/ga4mp's gtag key table).
- `em` (user-provided data for enhanced conversions) is decoded into `user_data` with sGTM's key
  names by `sgtm_plugins.ga4.user_data`; a value that cannot be read counts `ga4.invalid_param`.
- Event params (`ep.`/`epn.`) are applied first, so a protocol field of the same name wins.
- `ep.user_data.<path>` is nested into `user_data`; `email`/`phone` become `email_address`/
  `phone_number`. Other `ep.*` names keep their dots as literal flat keys.
- Items: `prN` sorted by N; numeric `price`, `quantity`, `discount`, `index`; custom `kN`/`vN`
  pairs become plain item keys (a standard field of the same name wins); an item with no valid
  field is dropped (`ga4.invalid_param`).
- Consent: see `consent_state`.
- `page_hostname`/`page_path` are not written by default: real sGTM captures show only
  `page_location` (the Page Hostname / Page Path variables derive from it, as sgtm's built-in
  variables do). `derive_page_fields=True` writes them. An explicit `dh` always maps to
  `page_hostname`.

Speed: what repeats from hit to hit (`name=value` pairs such as the page URL and title, client
hints `uafvl` and the Sec-CH-UA headers, consent `gcs`/`gcd`, items, what to do with each param
name) is decoded once and memoized in small LRU caches keyed by its raw text. Each cache is
bounded in entries and takes only values up to a size, so a client sending endless distinct values
only evicts entries (and gets the uncached speed); what a cache returns is immutable or copied, so
no event shares state with another. The output is byte for byte the same as without them
(tests/ga4_corpus, tests/plugins/test_ga4_parse_memo.py).

Limits (each drop is counted with the reason in brackets):
- `max_events` body lines per request (default 100) [ga4.too_many_events];
- MAX_PARAMS params per query string or line [ga4.too_many_params];
- MAX_VALUE_CHARS decoded characters per value [ga4.param_too_long];
- MAX_KEY_CHARS characters per param name [ga4.invalid_param];
- MAX_ITEMS items per event [ga4.too_many_items];
- MAX_BRANDS entries in a client-hints brand list (the rest ignored).
"""

from __future__ import annotations

import functools
import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, unquote_plus, unquote_to_bytes, urlsplit

from sgtm.plugin import EventData

from . import user_data

Drop = Callable[[str, int], None]
Converter = Callable[[str], Any]  # returns None when the raw value is invalid

MAX_PARAMS = 1000
MAX_VALUE_CHARS = 8192
MAX_KEY_CHARS = 256
MAX_ITEMS = 200
MAX_BRANDS = 32
# One decoded character comes from at most 12 raw ones (%F0%9F%98%80): longer raw values
# cannot fit MAX_VALUE_CHARS and are rejected before decoding them.
_MAX_RAW_VALUE_CHARS = 12 * MAX_VALUE_CHARS

# Longer than any double written out in full (17 significant digits in fixed notation: at most
# 343 characters), so no number a client means; checked before looking at a single digit.
MAX_NUMBER_CHARS = 400
_MAX_SAFE_INT = 2**53
_TRUE = frozenset({"1", "true"})
_FALSE = frozenset({"0", "false", ""})


def to_number(raw: str) -> int | float | None:
    text = raw.strip()
    # Most numbers a hit carries are small integers (`_s=3`, `_et=1520`, `qt=2`): 15 digits are
    # below 2**53, so the int is the value the float path would give.
    if len(text) < 16 and text.isdigit() and text.isascii():
        return int(text)
    if len(text) > MAX_NUMBER_CHARS or not _is_plain_decimal(text):
        return None
    value = float(text)
    if not math.isfinite(value):
        return None
    if value.is_integer() and abs(value) < _MAX_SAFE_INT:
        return int(value)
    return value


def _is_plain_decimal(text: str) -> bool:
    """`[+-]?(digits[.digits]|.digits)([eE][+-]?digits)?` with ASCII digits, in linear time.

    String code rather than a regex: that pattern's adjacent digit runs backtrack quadratically
    on a long run of digits that ends badly.
    """
    mantissa, has_exponent, exponent = text.replace("E", "e").partition("e")
    whole, _, fraction = _unsigned(mantissa).partition(".")
    if not (whole or fraction):
        return False
    if (whole and not _digits(whole)) or (fraction and not _digits(fraction)):
        return False
    return not has_exponent or _digits(_unsigned(exponent))


def _unsigned(text: str) -> str:
    return text[1:] if text.startswith(("+", "-")) else text


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()  # "".isdigit() is false; "²".isdigit() is true


def to_bool(raw: str) -> bool | None:
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return None


def to_str(raw: str) -> str:
    return raw


# Memoized values: at most this many characters of raw text, and this many entries per cache.
_MEMO_CHARS = 2048
_MEMO_ENTRIES = 512
_SEC_CH_UA = 64 * MAX_BRANDS
assert _SEC_CH_UA <= _MEMO_CHARS


def full_version_list(raw: str) -> list[dict[str, str]]:
    """`uafvl`: `brand;version` pairs joined by `|`, each brand percent-encoded once more."""
    pairs = _version_pairs(raw) if len(raw) <= _MEMO_CHARS else _version_pairs.__wrapped__(raw)
    return [{"brand": brand, "version": version} for brand, version in pairs]


@functools.lru_cache(maxsize=_MEMO_ENTRIES)
def _version_pairs(raw: str) -> tuple[tuple[str, str], ...]:
    out = []
    for entry in raw.split("|", MAX_BRANDS)[:MAX_BRANDS]:
        if entry:
            brand, _, version = entry.partition(";")
            out.append((unquote(brand), version))
    return tuple(out)


# Param -> (event data paths, converter). Paths are dotted: `a.b` is key `b` of object `a`.
PARAMS: dict[str, tuple[tuple[str, ...], Converter]] = {
    # §2.1 identity, session, engagement
    "v": (("x-ga-protocol_version",), to_str),
    "tid": (("x-ga-measurement_id",), to_str),
    "gtm": (("x-ga-gtm_version",), to_str),
    "_p": (("x-ga-page_id",), to_number),
    "_s": (("x-ga-request_count",), to_number),
    "cid": (("client_id",), to_str),
    "uid": (("user_id", "x-ga-mp2-user_properties._user_id"), to_str),
    "sid": (("ga_session_id",), to_str),
    "sct": (("ga_session_number",), to_number),
    "seg": (("x-ga-mp2-seg",), to_str),
    "_ss": (("x-ga-system_properties.ss",), to_str),
    "_fv": (("x-ga-system_properties.fv",), to_str),
    "_ee": (("x-ga-system_properties.ee",), to_bool),
    "_fid": (("x-ga-system_properties.fid",), to_str),
    "_nsi": (("x-ga-system_properties.nsi",), to_str),
    "_c": (("x-ga-system_properties.c",), to_str),
    "_dbg": (("x-ga-system_properties.dbg",), to_str),
    "_et": (("engagement_time_msec",), to_number),
    "en": (("event_name",), to_str),
    # §2.2 event-level commerce fields sent as plain params
    "cu": (("currency",), to_str),
    "pi": (("promotion_id",), to_str),
    "pn": (("promotion_name",), to_str),
    "lo": (("location_id",), to_str),
    # §2.3 page, device, network
    "dl": (("page_location",), to_str),
    "dt": (("page_title",), to_str),
    "dr": (("page_referrer",), to_str),
    "dh": (("page_hostname",), to_str),
    "ul": (("language",), to_str),
    "sr": (("screen_resolution",), to_str),
    "ur": (("x-ga-ur",), to_str),
    "tfd": (("x-ga-tfd",), to_number),
    "lps": (("x-ga-lps",), to_bool),
    "are": (("x-ga-mp2-are",), to_str),
    "ir": (("x-ga-mp2-ir",), to_str),
    # §5 client hints
    "uaa": (("client_hints.architecture",), to_str),
    "uab": (("client_hints.bitness",), to_str),
    "uafvl": (("client_hints.full_version_list",), full_version_list),
    "uamb": (("client_hints.mobile",), to_bool),
    "uam": (("client_hints.model",), to_str),
    "uap": (("client_hints.platform",), to_str),
    "uapv": (("client_hints.platform_version",), to_str),
    "uaw": (("client_hints.wow64",), to_bool),
    # §2.4 campaign overrides (event data names are inferred)
    "ci": (("campaign_id",), to_str),
    "cm": (("campaign_medium",), to_str),
    "cs": (("campaign_source",), to_str),
    "cn": (("campaign_name",), to_str),
    "cc": (("campaign_content",), to_str),
    "ck": (("campaign_term",), to_str),
    "ct": (("campaign_term",), to_str),
    "ccf": (("campaign_creative_format",), to_str),
    "cmt": (("campaign_marketing_tactic",), to_str),
    "_rnd": (("x-ga-system_properties.rnd",), to_str),
    # §2.4 / §6 consent and ids; the decoded consent state is added by `consent_state`
    "gcs": (("x-ga-gcs",), to_str),
    "gcd": (("x-ga-gcd",), to_str),
    "gcu": (("x-ga-gcu",), to_str),
    "gcut": (("x-ga-gcut",), to_str),
    "dma": (("x-ga-dma",), to_str),
    "dma_cps": (("x-ga-dma_cps",), to_str),
    "npa": (("x-ga-npa",), to_str),
    "us_privacy": (("x-ga-us_privacy",), to_str),
    "gdpr": (("x-ga-gdpr",), to_str),
    "gdpr_consent": (("x-ga-gdpr_consent",), to_str),
    "ecid": (("x-ga-ecid",), to_str),
    "gdid": (("x-ga-gdid",), to_str),
    "edid": (("x-ga-edid",), to_str),
    "_edid": (("x-ga-edid",), to_str),
    "did": (("x-ga-did",), to_str),
    "richsstsse": (("x-ga-mp2-richsstsse",), to_str),
}

# PARAMS with each path pre-split: a plain key, or (object, key) for the nested ones.
_TARGETS: dict[str, tuple[tuple[str | tuple[str, str], ...], Converter]] = {}
for _name, (_paths, _convert) in PARAMS.items():
    _keys: list[str | tuple[str, str]] = []
    for _path in _paths:
        _parent, _, _leaf = _path.rpartition(".")
        assert "." not in _parent, _path  # one level of nesting at most
        _keys.append((_parent, _leaf) if _parent else _path)
    _TARGETS[_name] = (tuple(_keys), _convert)

# Read by this module or the client, never copied as they are.
CONSUMED = frozenset({"_uip", "uip", "_fplc", "em"})
IP_PARAMS = ("_uip", "uip")

# Prefixed params: prefix -> (event data object, or "" for top level; converter).
PREFIXED: dict[str, tuple[str, Converter]] = {
    "ep.": ("", to_str),
    "epn.": ("", to_number),
    "up.": ("x-ga-mp2-user_properties", to_str),
    "upn.": ("x-ga-mp2-user_properties", to_number),
    "sst.": ("x-sst-system_properties", to_str),
}
_PREFIXES = tuple(PREFIXED)
_EVENT_PARAM_PREFIXES = ("ep.", "epn.")

USER_DATA_PREFIX = "user_data."
USER_DATA_ALIASES = {"email": "email_address", "phone": "phone_number"}

# §3: two-character item keys.
ITEM_FIELDS: dict[str, str] = {
    "id": "item_id",
    "nm": "item_name",
    "br": "item_brand",
    "ca": "item_category",
    "c2": "item_category2",
    "c3": "item_category3",
    "c4": "item_category4",
    "c5": "item_category5",
    "va": "item_variant",
    "pr": "price",
    "qt": "quantity",
    "cp": "coupon",
    "ds": "discount",
    "lp": "index",
    "li": "item_list_id",
    "ln": "item_list_name",
    "af": "affiliation",
    "lo": "location_id",
    "pi": "promotion_id",
    "pn": "promotion_name",
    "cn": "creative_name",
    "cs": "creative_slot",
}
ITEM_NUMBER_FIELDS = frozenset({"price", "quantity", "discount", "index"})
_ITEM_PARAM = re.compile(r"pr([0-9]{1,9})")
# GA4 param names never start with a digit, so the digits of `k<i><name>` end at the name.
_ITEM_CUSTOM_NAME = re.compile(r"k([0-9]+)([^0-9].*)", re.DOTALL)
_ITEM_CUSTOM_VALUE = re.compile(r"v([0-9]+)(.*)", re.DOTALL)

CONSENT_TYPES = ("ad_storage", "analytics_storage", "ad_user_data", "ad_personalization")
# gcd: each type's letter sits at a fixed offset ("13" + letter + digit + letter ...).
_GCD_OFFSETS = dict(zip(CONSENT_TYPES, (2, 4, 6, 8), strict=True))
# A gcd letter is a base64url digit holding two 2-bit states, (default << 2) | update, each
# 3 = granted, 2 = denied, else not set. This reproduces the community letter table exactly
# (l p q t r m n u v) and gives any other letter a defined meaning.
_BASE64URL = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
_GCS_DIGITS = {"1": True, "0": False}

# Dots occur in real names (`gap.lineItemValue` on hits of Google's Shopping app).
_PASSTHROUGH_NAME = re.compile(r"_?[A-Za-z][A-Za-z0-9_.]{0,63}")
_SF_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')  # a Structured Field string, escapes kept
_BACKSLASH_ESCAPE = re.compile(r"\\(.)")


def _no_drop(reason: str, count: int) -> None:
    pass


def parse_hits(
    query_string: str,
    body: bytes,
    *,
    max_events: int = 100,
    drop: Drop = _no_drop,
    derive_page_fields: bool = False,
    passthrough_unknown: bool = True,
) -> list[EventData]:
    """One event data dict per hit: the URL alone, or URL params overridden by each body line."""
    base = _decoded(query_string, drop)
    text = body.decode("utf-8", errors="replace") if body else ""
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) > max_events:
        drop("ga4.too_many_events", len(lines) - max_events)
        del lines[max_events:]
    # The URL's params are decoded (and planned) once for every line of a batch.
    hits = [{**base, **_decoded(line.strip("\r"), drop)} for line in lines] or [base]
    return [_map(hit, drop, derive_page_fields, passthrough_unknown) for hit in hits]


def parse_query(query: str, drop: Drop = _no_drop) -> dict[str, str]:
    """Decode a query string leniently; the first occurrence of a name wins."""
    return {name: param[1] for name, param in _decoded(query, drop).items()}


# A decoded param with what `_map` does with it, planned when it is decoded (and memoized with
# it): a `Param` below. The kinds and their args:
_TOP = 0  # a converted value for one top-level key: arg is the key
_NESTED = 1  # a converted value for one key of an object: arg is (object, key)
_SET = 2  # a converted value for several keys (a key, or (object, key)): arg is the keys
_CALL = 3  # a param whose converted value is mutable (uafvl): converted is the converter
_INVALID = 4  # a value its converter refused, or a prefixed param without a name: dropped
_PREFIXED = 5  # up. upn. sst.: arg is (object, key), converted the value
_ITEM = 6  # prN: arg is N
_SYSTEM = 7  # an unknown `_name`: arg is the key under x-ga-system_properties
_MP2 = 8  # an unknown name: arg is its x-ga-mp2- key
_SKIP = 9  # read by name (em, gcs, _uip, ...) or not mapped at all
_EVENT_PARAM = 10  # ep./epn., mapped before the rest: arg is the key, or the user_data path

# (name, value, kind, arg, converted): a plain tuple, which unpacks faster than a NamedTuple.
Param = tuple[str, str, int, Any, Any]
# Only immutable values are converted when decoding (they are shared by every hit that sends
# the same pair); a converter making lists or dicts runs for each hit.
_IMMUTABLE_RESULTS = (to_str, to_number, to_bool)


def _decoded(query: str, drop: Drop) -> dict[str, Param]:
    """The params of a query string by name, the first occurrence of a name winning."""
    params: dict[str, Param] = {}
    pairs = query.split("&", MAX_PARAMS)
    if len(pairs) > MAX_PARAMS:
        # split() left everything past the limit unsplit in the last piece.
        drop("ga4.too_many_params", pairs.pop().count("&") + 1)
    # Pairs longer than the memo takes are decoded without it. A query no longer than that has
    # none (the usual case), and then `map` calls the memo for each pair without a Python step.
    decode = _pair if len(query) <= _MEMO_CHARS else _decode_pair
    for refused, param in map(decode, filter(None, pairs)):
        if param is None:
            drop(refused, 1)
        elif param[0] not in params:
            params[param[0]] = param
    return params


def _decode_pair(pair: str) -> tuple[str, Param | None]:
    return _pair(pair) if len(pair) <= _MEMO_CHARS else _pair.__wrapped__(pair)


@functools.lru_cache(maxsize=8 * _MEMO_ENTRIES)
def _pair(pair: str) -> tuple[str, Param | None]:
    """One `name=value` decoded and planned: ("", param), or (the drop reason, None)."""
    raw_name, _, raw_value = pair.partition("=")
    name = _unquote_plus(raw_name)
    if not name or len(name) > MAX_KEY_CHARS:
        return "ga4.invalid_param", None
    if len(raw_value) > _MAX_RAW_VALUE_CHARS:
        return "ga4.param_too_long", None
    value = _unquote_plus(raw_value)
    if len(value) > MAX_VALUE_CHARS:
        return "ga4.param_too_long", None
    return "", _param(name, value)


def _unquote_plus(raw: str) -> str:
    """`unquote_plus` with the same results (broken escapes stay literal, bad UTF-8 becomes
    U+FFFD), faster: most names and many values carry no escapes at all."""
    if "%" in raw:
        try:
            return unquote_to_bytes(raw.replace("+", " ")).decode("utf-8", "replace")
        except UnicodeEncodeError:  # a lone surrogate: only urllib's decoder keeps it
            return unquote_plus(raw)
    return raw.replace("+", " ") if "+" in raw else raw


def _param(name: str, value: str) -> Param:
    kind, arg = _plan(name)
    converted: Any = None
    if kind == _SET:
        keys, convert = arg
        if convert not in _IMMUTABLE_RESULTS:
            return name, value, _CALL, keys, convert
        converted = convert(value)
        if converted is None:
            kind, arg = _INVALID, None
        elif len(keys) > 1:
            arg = keys
        else:
            arg = keys[0]
            kind = _TOP if type(arg) is str else _NESTED
    elif kind in (_PREFIXED, _EVENT_PARAM):
        prefix, _, key = name.partition(".")
        container, convert = PREFIXED[prefix + "."]
        converted = convert(value)
        if not key or converted is None:
            arg = None  # dropped: counted where the param is mapped, as every drop is
        elif prefix == "ep" and key.startswith(USER_DATA_PREFIX):
            parts = key[len(USER_DATA_PREFIX) :].split(".")
            arg = (USER_DATA_ALIASES.get(parts[0], parts[0]), *parts[1:]) if all(parts) else None
        else:
            arg = (container, key) if container else key
        if arg is None and kind == _PREFIXED:
            kind = _INVALID
    return name, value, kind, arg, converted


def map_hit(
    params: Mapping[str, str],
    drop: Drop = _no_drop,
    *,
    derive_page_fields: bool = False,
    passthrough_unknown: bool = True,
) -> EventData:
    """Map one hit's decoded params to event data (§2-§6 of the reference)."""
    planned = {name: _param(name, value) for name, value in params.items()}
    return _map(planned, drop, derive_page_fields, passthrough_unknown)


def _map(
    params: dict[str, Param], drop: Drop, derive_page_fields: bool, passthrough_unknown: bool
) -> EventData:
    event: EventData = {}
    # Event params first so that the protocol's own fields win when a name is reused.
    for _name, _value, kind, arg, converted in params.values():
        if kind == _EVENT_PARAM:
            if arg is None:
                drop("ga4.invalid_param", 1)
            elif type(arg) is str:
                event[arg] = converted
            else:  # a path in user_data
                node = _object(event, "user_data")
                for part in arg[:-1]:
                    node = _object(node, part)
                node[arg[-1]] = converted

    items: dict[int, str] = {}
    for _name, value, kind, arg, converted in params.values():
        if kind == _TOP:
            event[arg] = converted
        elif kind == _NESTED:
            # _object(event, arg[0]), inline: most of a hit's params land in an object.
            parent = event.get(arg[0])
            if not isinstance(parent, dict):
                parent = event[arg[0]] = {}
            parent[arg[1]] = converted
        elif kind == _SET:
            for key in arg:
                if type(key) is str:
                    event[key] = converted
                else:
                    _object(event, key[0])[key[1]] = converted
        elif kind == _CALL:
            if (result := converted(value)) is None:
                drop("ga4.invalid_param", 1)
                continue
            for key in arg:
                if type(key) is str:
                    event[key] = result
                else:
                    _object(event, key[0])[key[1]] = result
        elif kind == _INVALID:
            drop("ga4.invalid_param", 1)
        elif kind == _PREFIXED:
            _object(event, arg[0])[arg[1]] = converted
        elif kind == _ITEM:
            items[arg] = value
        elif kind == _SYSTEM:
            if passthrough_unknown:
                _object(event, "x-ga-system_properties")[arg] = value
        elif kind == _MP2 and passthrough_unknown:
            event[arg] = value

    if items and (mapped := _map_items(items, drop)):
        event["items"] = mapped
    if (em := params.get("em")) is not None:
        decoded, invalid = user_data.decode(em[1])
        if invalid:
            drop("ga4.invalid_param", invalid)
        if decoded:
            user_data.merge(_object(event, "user_data"), decoded)
    gcs, gcd = params.get("gcs"), params.get("gcd")
    if (gcs or gcd) and (state := consent_state(gcs and gcs[1], gcd and gcd[1])):
        consent = _object(_object(event, "x-sst-system_properties"), "consent")
        consent["consentGrantedState"] = state
    if ip := _ip_override(params, drop):
        event["ip_override"] = ip
    if derive_page_fields:
        _derive_page_fields(event)
    return event


@functools.lru_cache(maxsize=4 * _MEMO_ENTRIES)
def _plan(name: str) -> tuple[int, Any]:
    """What `_map` does with a param, by its name alone: decided once per name (names repeat on
    every hit), in a bounded cache like the values'. `_SET` here is any param of PARAMS, with
    its (keys, converter); `_param` narrows it once it has the value."""
    if (target := _TARGETS.get(name)) is not None:
        return _SET, target
    if name.startswith(_EVENT_PARAM_PREFIXES):
        return _EVENT_PARAM, None
    if name in CONSUMED:
        return _SKIP, None
    if name.startswith(_PREFIXES):
        return _PREFIXED, None
    if match := _ITEM_PARAM.fullmatch(name):
        return _ITEM, int(match[1])
    if _PASSTHROUGH_NAME.fullmatch(name):
        return (_SYSTEM, name[1:]) if name.startswith("_") else (_MP2, f"x-ga-mp2-{name}")
    return _SKIP, None


def _object(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """The object at `parent[key]`, created (or replacing a scalar) if needed."""
    child = parent.get(key)
    if not isinstance(child, dict):
        child = parent[key] = {}
    return child


def _map_items(raw_items: dict[int, str], drop: Drop) -> list[dict[str, Any]]:
    indexes = sorted(raw_items)
    if len(indexes) > MAX_ITEMS:
        drop("ga4.too_many_items", len(indexes) - MAX_ITEMS)
        del indexes[MAX_ITEMS:]
    items = []
    for index in indexes:
        if item := parse_item(raw_items[index], drop):
            items.append(item)
        else:
            drop("ga4.invalid_param", 1)
    return items


def parse_item(raw: str, drop: Drop = _no_drop) -> dict[str, Any]:
    """`id<v>~nm<v>~k0<name>~v0<value>…`: fields keep the valid parts of a damaged item."""
    fields, invalid = _item(raw) if len(raw) <= _MEMO_CHARS else _item.__wrapped__(raw)
    if invalid:
        drop("ga4.invalid_param", invalid)
    return dict(fields)


@functools.lru_cache(maxsize=_MEMO_ENTRIES)
def _item(raw: str) -> tuple[tuple[tuple[str, Any], ...], int]:
    """An item's fields (values are strings and numbers: immutable) and its invalid count."""
    item: dict[str, Any] = {}
    invalid = 0
    custom_names: dict[str, str] = {}
    custom_values: list[str] = []
    for part in raw.split("~"):
        if match := _ITEM_CUSTOM_NAME.fullmatch(part):
            custom_names[match[1]] = match[2]
        elif _ITEM_CUSTOM_VALUE.fullmatch(part):
            custom_values.append(part[1:])
        elif field := ITEM_FIELDS.get(part[:2]):
            value: Any = part[2:]
            if field in ITEM_NUMBER_FIELDS and (value := to_number(value)) is None:
                invalid += 1
                continue
            item[field] = value
    for digits_and_value in custom_values:
        # `v10x` may be pair 1 or 10: take the longest index that has a name.
        for end in range(len(digits_and_value), 0, -1):
            digits = digits_and_value[:end]
            if digits in custom_names:
                item.setdefault(custom_names[digits], digits_and_value[end:])
                break
    return tuple(item.items()), invalid


def consent_state(gcs: str | None, gcd: str | None) -> dict[str, bool]:
    """Granted (True) / denied (False) per consent type the hit states; unstated types are absent.

    `gcs=G1<ad_storage><analytics_storage>` with 1/0 digits. `gcd` letters (sgtm-model.md §10)
    carry a default and an update state; the update wins when set, so `u` (granted default,
    denied update) is denied and `l` (nothing set) states nothing. gcd overrides gcs.
    """
    if (gcs is None or len(gcs) <= _MEMO_CHARS) and (gcd is None or len(gcd) <= _MEMO_CHARS):
        return dict(_consent_state(gcs, gcd))
    return dict(_consent_state.__wrapped__(gcs, gcd))


@functools.lru_cache(maxsize=_MEMO_ENTRIES)
def _consent_state(gcs: str | None, gcd: str | None) -> tuple[tuple[str, bool], ...]:
    state: dict[str, bool] = {}
    if gcs and gcs.startswith("G1"):
        for consent_type, digit in zip(("ad_storage", "analytics_storage"), gcs[2:4], strict=False):
            if digit in _GCS_DIGITS:
                state[consent_type] = _GCS_DIGITS[digit]
    if gcd:
        for consent_type, offset in _GCD_OFFSETS.items():
            granted = gcd_letter(gcd[offset : offset + 1])
            if granted is not None:
                state[consent_type] = granted
    return tuple(state.items())


def gcd_letter(letter: str) -> bool | None:
    bits = _BASE64URL.find(letter) if len(letter) == 1 else -1
    if bits < 0:
        return None
    for shift in (0, 2):  # update state first, then the default
        two_bits = (bits >> shift) & 3
        if two_bits == 3:
            return True
        if two_bits == 2:
            return False
    return None


def _ip_override(params: dict[str, Param], drop: Drop) -> str | None:
    for name in IP_PARAMS:
        param = params.get(name)
        if param is None:
            continue
        raw = param[1]
        try:
            ipaddress.ip_address(raw.strip())
        except ValueError:
            drop("ga4.invalid_param", 1)
            continue
        return raw.strip()
    return None


def _derive_page_fields(event: EventData) -> None:
    location = event.get("page_location")
    if not isinstance(location, str):
        return
    try:
        url = urlsplit(location)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return
    if not url.netloc:
        return
    event.setdefault("page_hostname", url.hostname or "")
    event["page_path"] = url.path or "/"


def header_client_hints(headers: Mapping[str, str]) -> dict[str, Any]:
    """`client_hints` keys real sGTM takes from the Sec-CH-UA request headers.

    Observed in real sGTM event data: `brands` from `sec-ch-ua`, `mobile` from
    `sec-ch-ua-mobile`, and `platform` as the raw `sec-ch-ua-platform` header, quotes
    included. Hit params (`uap`, `uamb`, ...) override these.
    """
    hints: dict[str, Any] = {}
    # At most 64 characters per brand are read (2048: the memo's own limit too).
    if (header := headers.get("sec-ch-ua")) and (brands := _header_brands(header[:_SEC_CH_UA])):
        hints["brands"] = [{"brand": brand, "version": version} for brand, version in brands]
    mobile = headers.get("sec-ch-ua-mobile", "").strip()
    if mobile in ("?0", "?1"):
        hints["mobile"] = mobile == "?1"
    if (platform := headers.get("sec-ch-ua-platform")) is not None:
        hints["platform"] = platform[:MAX_VALUE_CHARS]
    return hints


@functools.lru_cache(maxsize=_MEMO_ENTRIES)
def _header_brands(header: str) -> tuple[tuple[str, str], ...]:
    pairs = [(_unescape(brand), _unescape(version)) for brand, version in _brand_versions(header)]
    return tuple(pairs[:MAX_BRANDS])


def _brand_versions(header: str) -> list[tuple[str, str]]:
    """The `"brand";v="version"` pairs of a Sec-CH-UA header, its strings read left to right once.

    (One regex searched over the header retried a string that never closes from every later
    quote: quadratic in a header of escaped quotes.)
    """
    strings: list[tuple[str, str]] = []  # (the text before a string, the string)
    end = 0
    while (start := header.find('"', end)) >= 0:
        string = _SF_STRING.match(header, start)
        if string is None:
            break  # it never closes, so nothing after it is a string
        strings.append((header[end:start], string[1]))
        end = string.end()
    pairs = []
    i = 1
    while i < len(strings):
        if "".join(strings[i][0].split()) == ";v=":  # `\s*;\s*v\s*=\s*` between the two
            pairs.append((strings[i - 1][1], strings[i][1]))
            i += 2
        else:
            i += 1
    return pairs


def _unescape(quoted: str) -> str:
    return _BACKSLASH_ESCAPE.sub(r"\1", quoted)
