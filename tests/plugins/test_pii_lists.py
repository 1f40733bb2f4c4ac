"""A list of personal data in a hit costs what its first few values cost (issue #8).

Every tag that hashes a list of emails or phones keeps at most ten distinct digests and reads
no more than forty values: a hit listing thousands of addresses cost one normalization, one
SHA-256 and one scan of the digests so far per value (quadratic), about 250 normal hits' CPU
for ~4,900 emails. `Unread` values stand past the bound: touching one fails the test.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
import pytest
from sgtm_plugins.ga4 import user_data as ga4_user_data
from sgtm_plugins.ga4_mp import payload as ga4_mp_payload
from sgtm_plugins.meta_capi.server_event import build_user_data
from sgtm_plugins.meta_capi.settings import MetaCapiSettings
from sgtm_plugins.tiktok.payload import user as tiktok_user
from sgtm_plugins.tiktok.settings import TikTokSettings

from sgtm.kit.hashing import LOOKED_AT_PER_KEPT, distinct

CAP = 10
LOOKED_AT = CAP * LOOKED_AT_PER_KEPT


class Unread(str):
    """A value past the bound: any method call on it (strip, lower, encode...) fails."""

    def __getattribute__(self, name: str) -> Any:
        raise AssertionError(f"a value past the bound was read ({name})")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def emails(count: int) -> list[str]:
    return [f"user{n}@shop.example" for n in range(count)]


def flood(head: list[str], total: int = 5_000) -> list[str]:
    """`head`, then values that must never be read, up to `total`."""
    return head + [Unread(f"late{n}@shop.example") for n in range(total - len(head))]


# -- the helper ---------------------------------------------------------------------------------


def test_distinct_keeps_the_first_of_each_in_order_up_to_the_limit() -> None:
    assert distinct(["b", "a", "b", None, "c"], lambda v: v, 10) == ["b", "a", "c"]
    assert distinct(map(str, range(100)), lambda v: v, 3) == ["0", "1", "2"]
    assert distinct([], lambda v: v, 3) == []


def test_distinct_stops_reading_once_full_or_past_the_bound() -> None:
    seen: list[int] = []

    def one(value: int) -> str | None:
        seen.append(value)
        return None if value % 2 else str(value)  # every other value is rejected

    assert distinct(range(10_000), one, 5) == ["0", "2", "4", "6", "8"]
    assert seen == list(range(9))
    seen.clear()
    assert distinct(range(10_000), lambda v: seen.append(v) or None, 5) == []
    assert len(seen) == 5 * LOOKED_AT_PER_KEPT


def test_distinct_of_repeats_reads_only_the_bound() -> None:
    reads = 0

    def one(value: str) -> str:
        nonlocal reads
        reads += 1
        return value

    assert distinct(["same"] * 100_000, one, CAP) == ["same"]
    assert reads == LOOKED_AT


# -- each tag -----------------------------------------------------------------------------------


def test_ga4_tag_em_parameter_keeps_ten_emails_and_reads_forty() -> None:
    encoded = ga4_user_data.encode({"email_address": flood(emails(LOOKED_AT))})
    assert encoded is not None
    tokens = encoded.split("~")
    assert tokens[0] == "tv.1" and len(tokens) == 1 + CAP
    first = ga4_user_data.base64url(sha("user0@shop.example"))
    assert tokens[1] == f"em.{first}"


def test_ga4_tag_repeats_of_one_email_give_one_token() -> None:
    encoded = ga4_user_data.encode({"email_address": flood(["Ana@Shop.example"] * LOOKED_AT)})
    assert encoded is not None and encoded.count("em.") == 1


def test_ga4_mp_user_data_keeps_ten_per_field_and_reads_forty() -> None:
    phones = [f"+55119{n:08d}" for n in range(LOOKED_AT)]
    data = ga4_mp_payload.user_data(
        {"user_data": {"email_address": flood(emails(LOOKED_AT)), "phone_number": flood(phones)}},
        None,
    )
    assert data["sha256_email_address"] == [sha(e) for e in emails(CAP)]
    assert data["sha256_phone_number"] == [sha(p) for p in phones[:CAP]]


def test_ga4_mp_addresses_are_cut_before_they_are_normalized() -> None:
    entry = {"first_name": "Ana", "country": "BR"}
    poisoned = {"first_name": Unread("Late"), "country": Unread("BR")}
    address = [entry] * LOOKED_AT + [poisoned] * 5_000
    data = ga4_mp_payload.user_data({"user_data": {"address": address}}, None)
    assert len(data["address"]) == CAP
    assert data["address"][0] == {"sha256_first_name": sha("ana"), "country": "BR"}


def test_meta_capi_keeps_ten_per_field_and_reads_forty() -> None:
    settings = msgspec.convert({"pixel_id": "123", "access_token": "tok"}, MetaCapiSettings)
    event = {"user_data": {"email_address": flood(emails(LOOKED_AT))}}
    data = build_user_data(event, settings, 1_790_000_000_000, 2026)
    assert data["em"] == [sha(e) for e in emails(CAP)]


def test_meta_capi_list_of_repeats_and_rejects() -> None:
    settings = msgspec.convert({"pixel_id": "123", "access_token": "tok"}, MetaCapiSettings)
    event = {"user_data": {"email_address": ["", "no-at-sign"] * 10 + ["a@b.example"] * 10}}
    data = build_user_data(event, settings, 1_790_000_000_000, 2026)
    assert data["em"] == [sha("a@b.example")]


@pytest.mark.parametrize("key", ["email_address", "phone_number"])
def test_tiktok_keeps_ten_per_field_and_reads_forty(key: str) -> None:
    settings = msgspec.convert(
        {"pixel_code": "C4A1B2C3D4E5F6G7H8I9", "access_token": "tt"}, TikTokSettings
    )
    head = emails(LOOKED_AT) if key == "email_address" else [f"+55119{n:08d}" for n in range(50)]
    out = tiktok_user({"user_data": {key: flood(head[:LOOKED_AT])}}, settings, {})
    field = "email" if key == "email_address" else "phone"
    assert len(out[field]) == CAP
    assert out[field][0] == sha(head[0])
