"""Meta CAPI ``user_data`` normalization, hashing and fbc/fbp, ported from Meta's own normalizer.

This is a faithful port of facebook/capi-param-builder, nodejs implementation (``nodejs/
capi-param-builder/src``, published as npm ``capi-param-builder-nodejs`` 1.3.2), which Meta's nodejs
business SDK v26+ routes all PII through. Upstream files, by section below:

- ``src/piiUtil/commonUtil.js``: trim / strip / looks-like-hashed helpers
- ``src/piiUtil/emailUtil.js``, ``phoneUtil.js``, ``zipCodeUtil.js``, ``genderUtil.js``,
  ``dobUtil.js``
- ``src/piiUtil/stringUtil.js``: names, city, state, country, external_id (tables in ``_tables.py``)
- ``src/piiUtil/PIIUtil.js``: ``getNormalizedPII`` / ``getNormalizedAndHashedPII``
- ``src/utils/AppendixProvider.js`` and ``src/model/Constants.js``: the ``.<appendix>`` suffix
- ``src/ParamBuilder.js``: host -> eTLD+1 -> subdomain index, _fbc/_fbp validation and creation

JavaScript semantics are reproduced where Python differs: the JS ``\\s`` / ``trim()`` whitespace
set, ``$`` anchoring only at the very end, ASCII-only ``\\w`` / ``\\d``, ``String.length``
counting UTF-16 units, ``toLowerCase()`` on a newer Unicode version, and UTF-8 hashing of lone
surrogates.

Everything here is pure: no I/O, and callers pass the time and randomness in. The one exception is
the date-of-birth year window, which (like the builder's ``new Date().getFullYear()``) reads the
local clock unless ``current_year`` is given.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections.abc import Callable, Iterable, Sequence

from ._tables import COUNTRY_MAPPINGS, FEMALE_SET, JS_EXTRA_LOWER, MALE_SET, STATE_MAPPINGS

__all__ = [
    "APPENDIX_GENERAL_NEW",
    "APPENDIX_MODIFIED_NEW",
    "APPENDIX_NET_NEW",
    "APPENDIX_NO_CHANGE",
    "FIELD_TO_DATA_TYPE",
    "PARAM_BUILDER_VERSION",
    "PII_DATA_TYPES",
    "appendix",
    "etld_plus_one",
    "extract_host",
    "fbc_from",
    "fbp_from",
    "fbp_random_payload",
    "hash_pii",
    "is_prehashed",
    "is_valid_fbp_fbc",
    "looks_like_hashed",
    "make_fbc",
    "make_fbp",
    "normalize",
    "normalize_city",
    "normalize_country",
    "normalize_dob",
    "normalize_email",
    "normalize_external_id",
    "normalize_gender",
    "normalize_name",
    "normalize_phone",
    "normalize_state",
    "normalize_zip",
    "sha256_hex",
    "subdomain_index",
]

# The capi-param-builder release this module is a port of; it is also the version that
# ``appendix()`` encodes by default.
PARAM_BUILDER_VERSION = "1.3.2"

# ---------------------------------------------------------------------------------------------
# Constants.js
# ---------------------------------------------------------------------------------------------

APPENDIX_NO_CHANGE = 0x00
APPENDIX_GENERAL_NEW = 0x01
APPENDIX_NET_NEW = 0x02
APPENDIX_MODIFIED_NEW = 0x03
_APPENDIX_NEW_TYPES = (APPENDIX_NET_NEW, APPENDIX_GENERAL_NEW, APPENDIX_MODIFIED_NEW)
_DEFAULT_FORMAT = 0x01
NODEJS_LANGUAGE_INDEX = 0x04  # LANGUAGE_TOKEN_INDEX of the nodejs builder ("BA")
SUPPORTED_LANGUAGE_TOKENS = ("AQ", "Ag", "Aw", "BA", "BQ", "Bg")
_APPENDIX_LENGTH_V1 = 2
_APPENDIX_LENGTH_V2 = 8
_MIN_COOKIE_SEGMENTS = 4
_MAX_COOKIE_SEGMENTS = 5
_FBP_RANDOM_RANGE = 2147483647  # Math.floor(Math.random() * 2147483647)

# Constants.PII_DATA_TYPE: the builder's data type identifiers.
PII_DATA_TYPES: tuple[str, ...] = (
    "phone",
    "email",
    "first_name",
    "last_name",
    "date_of_birth",
    "gender",
    "city",
    "state",
    "zip_code",
    "country",
    "external_id",
)

# CAPI ``user_data`` keys -> builder data types (the mapping the nodejs SDK's UserData uses).
FIELD_TO_DATA_TYPE: dict[str, str] = {
    "em": "email",
    "ph": "phone",
    "fn": "first_name",
    "ln": "last_name",
    "db": "date_of_birth",
    "ge": "gender",
    "ct": "city",
    "st": "state",
    "zp": "zip_code",
    "country": "country",
    "external_id": "external_id",
}

# ---------------------------------------------------------------------------------------------
# JavaScript string semantics
# ---------------------------------------------------------------------------------------------

# ECMAScript WhiteSpace + LineTerminator: what JS ``\s`` and ``String.prototype.trim`` remove.
# Python's ``\s`` / ``str.strip()`` differ (they add \x1c-\x1f and \x85, and lack \ufeff).
_JS_WHITESPACE = (
    "\t\n\x0b\x0c\r \xa0\u1680"
    + "".join(chr(cp) for cp in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_JS_WS_CLASS = "".join(f"\\u{ord(ch):04x}" for ch in _JS_WHITESPACE)


def _js_trim(value: str) -> str:
    """``String.prototype.trim`` and commonUtil ``trim`` (``/^\\s+|\\s+$/g``)."""
    return value.strip(_JS_WHITESPACE)


def _js_lower(value: str) -> str:
    """``String.prototype.toLowerCase``: Python's full case mapping plus newer Unicode letters."""
    return value.lower().translate(JS_EXTRA_LOWER)


def _utf16_length(value: str) -> int:
    """JS ``String.length``: astral characters count twice."""
    return len(value) + sum(1 for ch in value if ord(ch) > 0xFFFF)


# ---------------------------------------------------------------------------------------------
# commonUtil.js
# ---------------------------------------------------------------------------------------------

_SHA256_RE = re.compile(r"[a-fA-F0-9]{64}")
_STRIP_WHITESPACE_RE = re.compile(f"[{_JS_WS_CLASS}]+")
# Punctuation characters: !"#$%&'()*+,-./:;<=>?@ [\]^_`{|}~ plus JS whitespace.
_STRIP_WHITESPACE_AND_PUNCTUATION_RE = re.compile(
    "[!\"#$%&'()*+,\\-./:;<=>?@ \\[\\\\\\]^_`{|}~" + _JS_WS_CLASS + "]+"
)
_STRIP_NON_LATIN_ALPHA_NUMERIC_RE = re.compile(r"[^a-zA-Z0-9]+")

_WHITESPACE_ONLY = "whitespace_only"
_WHITESPACE_AND_PUNCTUATION = "whitespace_and_punctuation"
_ALL_NON_LATIN_ALPHA_NUMERIC = "all_non_latin_alpha_numeric"
_STRIP_PATTERNS: dict[str, re.Pattern[str]] = {
    _WHITESPACE_ONLY: _STRIP_WHITESPACE_RE,
    _WHITESPACE_AND_PUNCTUATION: _STRIP_WHITESPACE_AND_PUNCTUATION_RE,
    _ALL_NON_LATIN_ALPHA_NUMERIC: _STRIP_NON_LATIN_ALPHA_NUMERIC_RE,
}


def looks_like_hashed(value: object) -> bool:
    """commonUtil ``looksLikeHashed``: exactly 64 hex characters, any case."""
    return isinstance(value, str) and _SHA256_RE.fullmatch(value) is not None


# ---------------------------------------------------------------------------------------------
# emailUtil.js
# ---------------------------------------------------------------------------------------------

# "good approximation of RFC 2822", verbatim, including upstream's ``(:?`` (an optional colon
# before each dot, where ``(?:`` was surely meant). Flag ``i`` without ``u`` = ASCII-only folding.
_EMAIL_LOCAL_CHAR = r"[\w!#$%&'*+/=?^`{|}~\-]"
_EMAIL_RE = re.compile(
    rf"^{_EMAIL_LOCAL_CHAR}+(:?\.{_EMAIL_LOCAL_CHAR}+)*"
    r"@(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\Z",
    re.ASCII | re.IGNORECASE,
)


def normalize_email(value: str) -> str | None:
    """emailUtil ``getNormalizedEmail``: lowercase, trim, then an RFC-2822-ish check (else None)."""
    if looks_like_hashed(value):
        return value
    email = _js_trim(_js_lower(value))
    return email if _EMAIL_RE.match(email) else None


# ---------------------------------------------------------------------------------------------
# phoneUtil.js
# ---------------------------------------------------------------------------------------------

_NON_DIGITS_RE = re.compile(r"[^0-9]")


def normalize_phone(value: str) -> str:
    """phoneUtil ``getNormalizedPhone``: drop every non-digit, then every leading zero.

    May return ``""`` (as upstream does); ``normalize`` / ``hash_pii`` turn that into a drop.
    """
    if looks_like_hashed(value):
        return value
    return _NON_DIGITS_RE.sub("", value).lstrip("0")


# ---------------------------------------------------------------------------------------------
# zipCodeUtil.js
# ---------------------------------------------------------------------------------------------


def normalize_zip(value: str) -> str | None:
    """zipCodeUtil ``getNormalizedZipCode``: lowercase, part before the first ``-``, trim; the
    result must be at least 2 (UTF-16) characters. Inner spaces are kept."""
    if looks_like_hashed(value):
        return value
    maybe_zip = _js_trim(_js_lower(value).split("-", 1)[0])
    return maybe_zip if _utf16_length(maybe_zip) >= 2 else None


# ---------------------------------------------------------------------------------------------
# genderUtil.js
# ---------------------------------------------------------------------------------------------


def normalize_gender(value: str) -> str | None:
    """genderUtil ``getNormalizedGender``: lowercase + trim, then synonym sets -> ``m`` / ``f``."""
    if looks_like_hashed(value):
        return value
    gender = _js_trim(_js_lower(value))
    if gender in MALE_SET:
        return "m"
    if gender in FEMALE_SET:
        return "f"
    return None


# ---------------------------------------------------------------------------------------------
# dobUtil.js
# ---------------------------------------------------------------------------------------------

# parseInt() of a digit run: beyond this many significant digits every comparison the builder
# makes (> 31, > 12, <= current year + 1) comes out the same, so cap instead of parsing (Python
# refuses int() on strings over 4300 digits; JS yields a huge float or Infinity).
_DOB_MAX_DIGITS = 9
_DOB_HUGE = 1_000_000_000  # 10 ** _DOB_MAX_DIGITS


def _js_parse_int(digits: str) -> int:
    significant = digits.lstrip("0")
    if len(significant) > _DOB_MAX_DIGITS:
        return _DOB_HUGE
    return int(significant or "0")


def _year_month_day(n1: int, n2: int, n3: int, current_year: int) -> str | None:
    """dobUtil ``getYearMonthDayFromNumbers`` + ``isValidDate``."""
    if n1 > 31:  # n1 is the year
        year, month, day = n1, (n3 if n2 > 12 else n2), (n2 if n2 > 12 else n3)
    elif n2 > 31:
        year, month, day = n2, (n1 if n3 > 12 else n3), (n3 if n3 > 12 else n1)
    else:
        year, month, day = n3, (n2 if n1 > 12 else n1), (n1 if n1 > 12 else n2)

    # Year between 1800 and next year; month 1..12; day 1..31 (not checked against the month).
    if year < 1800 or year > current_year + 1:
        return None
    if month < 1 or month > 12:
        return None
    if day < 1 or day > 31:
        return None
    return f"{year:04d}{month:02d}{day:02d}"


def normalize_dob(value: str, *, current_year: int) -> str | None:
    """dobUtil ``getNormalizedDOB``: the first three digit runs as a date in any order -> YYYYMMDD;
    else a lone 8-digit run as is; else None.

    ``current_year`` bounds valid years (upstream: ``new Date().getFullYear()``). It is given,
    never read from a clock here: a tag's build is pure, its time is the pipeline's ``ctx.now``.
    """
    if looks_like_hashed(value):
        return value
    groups = [group for group in _NON_DIGITS_RE.sub(" ", value).split(" ") if group]
    if len(groups) >= 3:
        n1, n2, n3 = (_js_parse_int(group) for group in groups[:3])
        result = _year_month_day(n1, n2, n3, current_year)
        if result is not None:
            return result
    if len(groups) == 1 and len(groups[0]) == 8:
        return groups[0]
    return None


# ---------------------------------------------------------------------------------------------
# stringUtil.js
# ---------------------------------------------------------------------------------------------

_STARTS_WITH_LATIN_LETTER_RE = re.compile(r"[a-z]")  # new RegExp('^[a-z]+').test(str)
_NON_LOWER_LATIN_RE = re.compile(r"[^a-z]")

# Upstream looks names up with ``mappings[input] != null`` on a plain object literal, so the one
# all-lowercase inherited property, ``constructor``, "matches": it yields the ``Object`` function,
# whose ``length`` is 1, which is then stringified. Net effect: state/country "constructor" -> "fu".
_JS_INHERITED_KEY = "constructor"
_JS_OBJECT_CONSTRUCTOR_SOURCE = "function Object() { [native code] }"


def _normalize_string(
    value: str | None,
    *,
    strip: str | None = None,
    lowercase: bool = False,
    truncate: int = 0,
    test: re.Pattern[str] | None = None,
) -> str | None:
    """stringUtil ``getNormalizeString``: strip, then lowercase, then truncate, then test."""
    if value is None:
        return None
    if looks_like_hashed(value):
        return value  # upstream never sets rejectHashed
    result = value
    if strip is not None:
        result = _STRIP_PATTERNS[strip].sub("", result)
    if lowercase:
        result = _js_lower(result)
    if truncate:
        result = _unicode_safe_truncate(result, truncate)
    if test is not None:
        return result if test.match(result) else None
    return result


def _unicode_safe_truncate(value: str, length: int) -> str:
    """stringUtil ``unicodeSafeTruncate``: first ``length`` code points."""
    if _utf16_length(value) < length:
        return value
    return value[:length]


def _get_from_map(value: str, mappings: dict[str, str]) -> str:
    """stringUtil ``getFromMap``: 2 letters as is; exact name; first name contained; else input."""
    if len(value) == 2:
        return value
    if value in mappings:
        return mappings[value]
    for name, code in mappings.items():  # insertion order, first hit wins
        if name in value:
            return code
    return value


def _normalize_two_letter_abbreviation(value: str, mappings: dict[str, str]) -> str | None:
    """stringUtil ``normalizeTwoLetterAbbreviations``."""
    if looks_like_hashed(value):
        return value
    letters = _NON_LOWER_LATIN_RE.sub("", _js_trim(_js_lower(value)))
    if letters == _JS_INHERITED_KEY:
        return _JS_OBJECT_CONSTRUCTOR_SOURCE
    code = _get_from_map(letters, mappings)
    if not code:
        return None
    return code[:2]


def normalize_name(value: str) -> str:
    """stringUtil ``getNormalizedName`` (fn, ln): drop whitespace and ASCII punctuation, lowercase.
    Non-ASCII letters are kept. May return ``""``."""
    result = _normalize_string(value, lowercase=True, strip=_WHITESPACE_AND_PUNCTUATION)
    return result if result is not None else ""


def normalize_city(value: str) -> str | None:
    """stringUtil ``getNormalizedCity``: keep only ``[a-zA-Z0-9]``, lowercase; must start with a
    letter (else None). Accented letters vanish, digits stay."""
    return _normalize_string(
        value,
        lowercase=True,
        strip=_ALL_NON_LATIN_ALPHA_NUMERIC,
        test=_STARTS_WITH_LATIN_LETTER_RE,
    )


def _normalize_region(value: str, mappings: dict[str, str]) -> str | None:
    return _normalize_string(
        _normalize_two_letter_abbreviation(value, mappings),
        truncate=2,
        strip=_ALL_NON_LATIN_ALPHA_NUMERIC,
        test=_STARTS_WITH_LATIN_LETTER_RE,
        lowercase=True,
    )


def normalize_state(value: str) -> str | None:
    """stringUtil ``getNormalizedState``: US state / Canadian province names -> 2-letter code,
    otherwise the first two letters."""
    return _normalize_region(value, STATE_MAPPINGS)


def normalize_country(value: str) -> str | None:
    """stringUtil ``getNormalizedCountry``: country names -> ISO 3166-1 alpha-2, otherwise the
    first two letters."""
    return _normalize_region(value, COUNTRY_MAPPINGS)


def normalize_external_id(value: str) -> str:
    """stringUtil ``getNormalizedExternalID``: drop all whitespace, lowercase. May return ``""``."""
    result = _normalize_string(value, lowercase=True, strip=_WHITESPACE_ONLY)
    return result if result is not None else ""


# ---------------------------------------------------------------------------------------------
# PIIUtil.js
# ---------------------------------------------------------------------------------------------

_SHA256_OR_MD5_RE = re.compile(r"(?:[A-Fa-f0-9]{64}|[A-Fa-f0-9]{32})")


def _data_type(field: str) -> str | None:
    """Builder data type for a CAPI key (``em``) or a builder identifier (``email``).

    Like ``getNormalizedPII``, the name is first passed through the external_id normalizer
    (lowercase, whitespace removed).
    """
    key = normalize_external_id(field)
    if key in FIELD_TO_DATA_TYPE:
        return FIELD_TO_DATA_TYPE[key]
    if key in PII_DATA_TYPES:
        return key
    return None


def normalize(field: str, value: str, *, current_year: int | None = None) -> str | None:
    """``getNormalizedPII``: the normalized plain value of ``value`` for ``field``, or None when the
    builder would drop it (invalid, empty after normalization, unknown field, not a string).

    ``field`` is a CAPI ``user_data`` key (em, ph, fn, ln, ct, st, zp, country, ge, db,
    external_id) or a builder data type (email, phone, first_name, ...). An input that already
    looks like a SHA-256 hex digest comes back unchanged, as upstream. A date of birth needs
    ``current_year`` (ValueError without it: there is no clock here).
    """
    if not isinstance(value, str) or not value or not isinstance(field, str) or not field:
        return None
    data_type = _data_type(field)
    if data_type is None:
        return None
    if data_type == "date_of_birth":
        if current_year is None:
            raise ValueError("a date of birth is checked against current_year: pass it")
        return normalize_dob(value, current_year=current_year) or None
    return _NORMALIZERS[data_type](value) or None


_NORMALIZERS: dict[str, Callable[[str], str | None]] = {
    "email": normalize_email,
    "phone": normalize_phone,
    "gender": normalize_gender,
    "first_name": normalize_name,
    "last_name": normalize_name,
    "city": normalize_city,
    "state": normalize_state,
    "country": normalize_country,
    "external_id": normalize_external_id,
    "zip_code": normalize_zip,
}


def sha256_hex(value: str) -> str:
    """sha256_with_dependencies_new ``sha256_main``: SHA-256 of the UTF-8 encoding, lowercase hex.

    Like upstream's ``str2rstr``, surrogate pairs are combined and lone surrogates are encoded as
    3 bytes each.
    """
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError:
        joined = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
        data = joined.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


def _split_param_builder_hash(value: str) -> str | None:
    """``isAlreadyNormalizedAndHashedByParamBuilder``: ``<sha256 or md5 hex>.<appendix>``, where the
    appendix is a language token or any 8 characters. Returns the hex part, else None."""
    last_dot = value.rfind(".")
    if last_dot == -1:
        return None
    suffix = value[last_dot + 1 :]
    if suffix in SUPPORTED_LANGUAGE_TOKENS or _utf16_length(suffix) == _APPENDIX_LENGTH_V2:
        digest = value[:last_dot]
        if _SHA256_OR_MD5_RE.fullmatch(digest):
            return digest
    return None


def is_prehashed(value: str) -> bool:
    """What ``getNormalizedAndHashedPII`` passes through without normalizing: a SHA-256 or MD5
    hex digest, bare or with a builder appendix (after trimming)."""
    trimmed = _js_trim(value)
    return bool(_SHA256_OR_MD5_RE.fullmatch(trimmed)) or (
        _split_param_builder_hash(trimmed) is not None
    )


def _hash_one(
    field: str,
    value: object,
    *,
    with_appendix: bool,
    version: str,
    current_year: int | None,
) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    trimmed = _js_trim(value)
    if _SHA256_OR_MD5_RE.fullmatch(trimmed):
        digest = trimmed.lower()
        return f"{digest}.{appendix(APPENDIX_NO_CHANGE, version)}" if with_appendix else digest
    if _split_param_builder_hash(trimmed) is not None:
        # Upstream returns such a value untouched, appendix and case included: it is what
        # Meta's own SDK sends, so it is sent as it is whether or not appendices are on.
        return trimmed
    normalized = normalize(field, value, current_year=current_year)
    if normalized is None:
        return None
    digest = sha256_hex(normalized)
    return f"{digest}.{appendix(APPENDIX_NET_NEW, version)}" if with_appendix else digest


def hash_pii(
    field: str,
    value: str | Sequence[str],
    *,
    with_appendix: bool = False,
    version: str = PARAM_BUILDER_VERSION,
    current_year: int | None = None,
) -> str | list[str] | None:
    """``getNormalizedAndHashedPII``: normalize then SHA-256 (lowercase hex); None when dropped.

    Input that is already a digest (64 or 32 hex characters after trimming) passes through
    lowercased and is never hashed twice. A digest already carrying a builder appendix
    (``<hex>.<appendix>``) is returned as upstream returns it: trimmed, otherwise untouched (its
    case and appendix kept), whatever ``with_appendix`` says.

    ``with_appendix`` appends the builder's ``.<appendix>`` suffix (see ``appendix``); off by
    default because the tag sends plain 64-hex, which Meta accepts.

    A list/tuple is hashed element-wise, dropping rejected values and duplicates (first kept), as
    the nodejs SDK's ``UserData.normalize()`` does around the builder.
    """
    if isinstance(value, list | tuple):
        hashed = (
            _hash_one(
                field, item, with_appendix=with_appendix, version=version, current_year=current_year
            )
            for item in value
        )
        # A dict keeps the first of each and checks a duplicate in constant time.
        return list(dict.fromkeys(one for one in hashed if one is not None))
    return _hash_one(
        field, value, with_appendix=with_appendix, version=version, current_year=current_year
    )


# ---------------------------------------------------------------------------------------------
# AppendixProvider.js
# ---------------------------------------------------------------------------------------------

_VERSION_RE = re.compile(r"[0-9]+(?:\.[0-9]+){2}")


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def appendix(
    appendix_type: int,
    version: str = PARAM_BUILDER_VERSION,
    *,
    language_index: int = NODEJS_LANGUAGE_INDEX,
) -> str:
    """``getAppendixInfo``: base64url (unpadded) of ``[0x01, language, type, major, minor, patch]``.

    ``appendix_type`` is one of the ``APPENDIX_*`` constants; anything else counts as
    ``APPENDIX_NO_CHANGE``. A version that is not ``N.N.N`` with each part <= 255 yields the bare
    language token (``"BA"`` for nodejs).
    """
    language_token = _base64url(bytes([language_index]))
    if not isinstance(version, str) or not _VERSION_RE.fullmatch(version):
        return language_token
    parts = version.split(".")
    if any(len(part.lstrip("0")) > 3 for part in parts):
        return language_token
    major, minor, patch = (int(part) for part in parts)
    if major > 255 or minor > 255 or patch > 255:
        return language_token
    kind = (
        appendix_type
        if type(appendix_type) is int and appendix_type in _APPENDIX_NEW_TYPES
        else APPENDIX_NO_CHANGE
    )
    return _base64url(bytes([_DEFAULT_FORMAT, language_index, kind, major, minor, patch]))


# ---------------------------------------------------------------------------------------------
# ParamBuilder.js: host -> eTLD+1 -> subdomain index
# ---------------------------------------------------------------------------------------------

_IPV4_RE = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
_IPV6_SEGMENT_RE = re.compile(r"[0-9a-fA-F]{1,4}")


def extract_host(value: str | None) -> str | None:
    """``_extractHostFromHttpHost``: drop a scheme and a port; unbracket an IPv6 literal."""
    if not value:
        return None
    if "://" in value:
        value = value.split("://")[1]
    pos_colon = value.rfind(":")
    pos_bracket = value.rfind("]")
    if pos_colon == -1:
        return value
    # No right bracket (not IPv6), or the colon comes after it: a port separator.
    if pos_bracket == -1 or pos_colon > pos_bracket:
        value = value[:pos_colon]
    if len(value) >= 2 and value[0] == "[" and value[-1] == "]":
        return value[1:-1]
    return value


def _is_ipv6_address(value: str) -> bool:
    """``_isIPv6Address`` (deliberately loose: a lone hex word such as ``cafe`` passes)."""
    parts = value.split(":")
    if len(parts) > 8:
        return False
    empty_parts = 0
    for i, part in enumerate(parts):
        if not part:
            if i > 0:
                empty_parts += 1
                if empty_parts > 1:
                    return False
        elif not _IPV6_SEGMENT_RE.fullmatch(part):
            return False
    return True


def _is_ip_address(value: str) -> bool:
    return _IPV4_RE.fullmatch(value) is not None or _is_ipv6_address(value)


def etld_plus_one(host: str | None, domains: Iterable[str] = ()) -> str | None:
    """``_computeETLDPlus1ForHost`` without a resolver object: the cookie domain for ``host``.

    An IP host is its own eTLD+1 (IPv6 bracketed). Otherwise the first of ``domains`` that equals
    the host or is a dot-suffix of it; otherwise the host minus its first label when it has more
    than two labels (``a.b.example.com`` -> ``b.example.com``), else the host itself.
    """
    hostname = extract_host(host)
    if not hostname:
        return None
    if _is_ip_address(hostname):
        return f"[{hostname}]" if ":" in hostname else hostname
    for raw in domains:
        domain = extract_host(raw)
        # Upstream concatenates a null entry into ".null".
        if hostname == domain or hostname.endswith(
            "." + (domain if domain is not None else "null")
        ):
            return domain
    if len(hostname.split(".")) > 2:
        return hostname[hostname.index(".") + 1 :]
    return hostname


def subdomain_index(etld_plus_one: str | None) -> int:
    """The ``<subdomainIndex>`` of fbc/fbp: ``com`` = 0, ``example.com`` = 1, ... ; 0 for an IP
    host or no host (``etld_plus_1.split('.').length - 1``)."""
    if not etld_plus_one:
        return 0
    bare = etld_plus_one
    if len(bare) >= 2 and bare[0] == "[" and bare[-1] == "]":
        bare = bare[1:-1]
    if _is_ip_address(bare):
        return 0
    return len(etld_plus_one.split(".")) - 1


# ---------------------------------------------------------------------------------------------
# ParamBuilder.js: _fbc / _fbp
# ---------------------------------------------------------------------------------------------

_DIGITS_RE = re.compile(r"[0-9]+")
_APPENDIX_CHARS_RE = re.compile(r"[A-Za-z0-9_-]+")


def _is_valid_appendix(value: str) -> bool:
    """``_validateAppendix``: a v1 language token, or a v2 8-character base64url appendix."""
    length = _utf16_length(value)
    if length == _APPENDIX_LENGTH_V1:
        return value in SUPPORTED_LANGUAGE_TOKENS
    if length == _APPENDIX_LENGTH_V2:
        if not _APPENDIX_CHARS_RE.fullmatch(value):
            return False
        decoded = base64.b64decode(value.replace("-", "+").replace("_", "/"))
        return (
            len(decoded) == 6
            and decoded[0] == _DEFAULT_FORMAT
            and 1 <= decoded[1] <= len(SUPPORTED_LANGUAGE_TOKENS)
        )
    return False


def is_valid_fbp_fbc(value: object) -> bool:
    """``_preprocessCookie``'s check: ``fb.<digits>.<digits>.<payload>[.<appendix>]``."""
    if not isinstance(value, str) or not value:
        return False
    segments = value.split(".")
    if not _MIN_COOKIE_SEGMENTS <= len(segments) <= _MAX_COOKIE_SEGMENTS:
        return False
    if len(segments) == _MAX_COOKIE_SEGMENTS and not _is_valid_appendix(segments[-1]):
        return False
    return (
        segments[0] == "fb"
        and _DIGITS_RE.fullmatch(segments[1]) is not None
        and _DIGITS_RE.fullmatch(segments[2]) is not None
        and len(segments[3]) > 0
    )


def fbp_random_payload(unit: float) -> int:
    """The builder's fbp payload from a uniform ``unit`` in [0, 1): ``floor(unit * 2147483647)``."""
    return math.floor(unit * _FBP_RANDOM_RANGE)


def _with_suffix(value: str, suffix: str | None) -> str:
    return f"{value}.{suffix}" if suffix else value


def make_fbp(index: int, now_ms: int, random_int: int, *, appendix: str | None = None) -> str:
    """A new _fbp: ``fb.<index>.<now ms>.<random>`` (``.<appendix>`` appended when given)."""
    return _with_suffix(f"fb.{index}.{now_ms}.{random_int}", appendix)


def make_fbc(index: int, now_ms: int, fbclid: str, *, appendix: str | None = None) -> str:
    """A new _fbc: ``fb.<index>.<now ms>.<fbclid>``; the click id is used exactly as given."""
    return _with_suffix(f"fb.{index}.{now_ms}.{fbclid}", appendix)


def _existing_cookie(value: str | None, with_appendix: bool, version: str) -> str | None:
    """A valid existing cookie, kept byte-for-byte; with appendices on, a 4-segment one gains the
    NO_CHANGE appendix (``_updateCookieWithLanguageToken``)."""
    if not is_valid_fbp_fbc(value):
        return None
    assert isinstance(value, str)
    if with_appendix and len(value.split(".")) == _MIN_COOKIE_SEGMENTS:
        return f"{value}.{appendix(APPENDIX_NO_CHANGE, version)}"
    return value


def fbc_from(
    existing_cookie: str | None,
    fbclid: str | None,
    index: int,
    now_ms: int,
    *,
    with_appendix: bool = False,
    version: str = PARAM_BUILDER_VERSION,
) -> str | None:
    """The fbc to send, as ``processRequest`` decides it.

    ``fbclid`` comes from the request's query (else the Referer's query); ``existing_cookie`` is
    the ``_fbc`` cookie. A valid existing cookie whose payload equals ``fbclid`` (or any valid one
    when there is no fbclid) is kept byte-for-byte; otherwise a new one is made from ``fbclid``.
    None when there is neither.
    """
    existing = _existing_cookie(existing_cookie, with_appendix, version)
    if not fbclid:
        return existing
    if existing is None:
        suffix = appendix(APPENDIX_NET_NEW, version) if with_appendix else None
        return make_fbc(index, now_ms, fbclid, appendix=suffix)
    if existing.split(".")[3] != fbclid:
        suffix = appendix(APPENDIX_MODIFIED_NEW, version) if with_appendix else None
        return make_fbc(index, now_ms, fbclid, appendix=suffix)
    return existing


def fbp_from(
    existing_cookie: str | None,
    index: int,
    now_ms: int,
    random_int: int,
    *,
    with_appendix: bool = False,
    version: str = PARAM_BUILDER_VERSION,
) -> str:
    """The fbp to send: a valid ``_fbp`` cookie as is, else a new one (``processRequest``)."""
    existing = _existing_cookie(existing_cookie, with_appendix, version)
    if existing is not None:
        return existing
    suffix = appendix(APPENDIX_NET_NEW, version) if with_appendix else None
    return make_fbp(index, now_ms, random_int, appendix=suffix)
