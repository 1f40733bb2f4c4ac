"""sgtm.kit.http: the pieces vendor tags share for URLs, answers and batched requests."""

from __future__ import annotations

import pytest

from sgtm.kit.http import batch_request, http_url, json_or_none
from sgtm.plugin import Outbound


def job(n: int) -> Outbound:
    return Outbound(
        method="POST",
        url="https://vendor.example/events",
        headers={"Authorization": "Bearer {{secret.TOKEN}}"},
        body=b'{"one": %d}' % n,
        destination="acct-1",
        idempotency_key=f"key-{n}",
        timeout=7.5,
        batch_item={"n": n},
        batch_key="client-1",
    )


def test_a_batch_of_several_carries_the_first_requests_envelope_and_no_single_job_identity():
    jobs = [job(1), job(2)]
    merged = batch_request(jobs, b'{"all": [1, 2]}')
    assert merged.body == b'{"all": [1, 2]}'
    assert (merged.method, merged.url, merged.destination, merged.timeout, merged.batch_key) == (
        "POST",
        "https://vendor.example/events",
        "acct-1",
        7.5,
        "client-1",
    )
    assert merged.headers == jobs[0].headers and merged.headers is not jobs[0].headers
    assert merged.idempotency_key is None and merged.batch_item is None


def test_a_batch_of_one_keeps_its_idempotency_key_and_item():
    merged = batch_request([job(3)], b"{}")
    assert merged.idempotency_key == "key-3" and merged.batch_item == {"n": 3}


@pytest.mark.parametrize("value", ["ftp://vendor.example", "https://", "javascript:alert(1)", ""])
def test_settings_urls_must_be_http_with_a_host(value: str):
    with pytest.raises(ValueError, match="endpoint"):
        http_url("endpoint", value)


@pytest.mark.parametrize("body", [b"", b"<html>502</html>", b'{"cut": "a', b"\xff\xfe"])
def test_answers_that_are_not_json_read_as_none(body: bytes):
    assert json_or_none(body) is None
