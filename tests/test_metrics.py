"""Counters: labels are one key whatever order a call site passes them in, and the cache of
sorted keys stays bounded whatever label values arrive."""

from __future__ import annotations

from sgtm import metrics


def test_label_order_does_not_make_two_series() -> None:
    metrics.inc("sgtm_test_total", a="1", b="2")
    metrics.inc("sgtm_test_total", b="2", a="1")
    assert metrics.value("sgtm_test_total", a="1", b="2") == 2
    assert 'sgtm_test_total{a="1",b="2"} 2' in metrics.render()


def test_the_key_cache_is_bounded() -> None:
    for n in range(metrics._MAX_KEYS + 500):
        metrics.inc("sgtm_test_bounded_total", reason=str(n))
    assert len(metrics._keys) <= metrics._MAX_KEYS
    assert metrics.value("sgtm_test_bounded_total", reason=str(metrics._MAX_KEYS + 499)) == 1
    for key in [k for k in metrics._counters if k[0] == "sgtm_test_bounded_total"]:
        del metrics._counters[key]
    metrics._keys.clear()
