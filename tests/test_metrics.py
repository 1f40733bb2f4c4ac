"""Counters: labels are one key whatever order a call site passes them in, and the cache of
sorted keys stays bounded whatever label values arrive."""

from __future__ import annotations

from sgtm import metrics
from sgtm.metrics import Metrics


def test_label_order_does_not_make_two_series() -> None:
    counts = Metrics()
    counts.inc("sgtm_test_total", a="1", b="2")
    counts.inc("sgtm_test_total", b="2", a="1")
    assert counts.value("sgtm_test_total", a="1", b="2") == 2
    assert 'sgtm_test_total{a="1",b="2"} 2' in counts.render()


def test_the_key_cache_is_bounded() -> None:
    counts = Metrics()
    for n in range(metrics._MAX_KEYS + 500):
        counts.inc("sgtm_test_bounded_total", reason=str(n))
    assert len(metrics._keys) <= metrics._MAX_KEYS
    assert counts.value("sgtm_test_bounded_total", reason=str(metrics._MAX_KEYS + 499)) == 1
    assert counts.value("sgtm_test_bounded_total", reason="0") == 1
