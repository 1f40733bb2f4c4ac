"""The `delivery:` sections of container files: durations, overrides, positioned errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sgtm.composition import routes_for, store_for
from sgtm.config import load_containers, load_text
from sgtm.delivery.policy import lane_policy, parse_duration
from sgtm.plugins import Registry
from sgtm.yamlsource import ConfigErrors
from tests.delivery.helpers import AuthTag, BatchTag, PlainTag
from tests.installed import registry


def test_durations():
    assert parse_duration("500ms") == 0.5
    assert parse_duration("30s") == 30
    assert parse_duration("15m") == 900
    assert parse_duration("6h") == 21600
    assert parse_duration("1d") == 86400
    assert parse_duration(2.5) == 2.5
    assert parse_duration("2") == 2
    for bad in ("soon", "-1s", "1w", True, None):
        with pytest.raises(ValueError):
            parse_duration(bad)


def reg() -> Registry:
    base = registry()
    tags = {**base.tags, "test_plain": PlainTag(), "test_batch": BatchTag(), "test_auth": AuthTag()}
    return Registry(clients=base.clients, tags=tags, variables=base.variables)


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        load_text(textwrap.dedent(text), "shop.yaml", reg(), environ={})
    return [str(e) for e in info.value.errors]


def test_tag_overrides_apply_over_the_tag_type():
    spec = load_text(
        textwrap.dedent(
            """\
            version: 1
            delivery: {max_age: 2h}
            tags:
              - name: b
                type: test_batch
                delivery:
                  max_items: 2
                  linger: 250ms
                  flush_every: 15m
                  rate_limit: {requests: 120, per: 1m}
                  concurrency: 3
                  timeout: 5s
              - name: p
                type: test_plain
            """
        ),
        "shop.yaml",
        reg(),
        environ={},
    )
    routes = routes_for([spec])
    b = routes[("shop", "b")].policy
    assert (b.batching.max_items, b.batching.linger, b.batching.flush_every) == (2, 0.25, 900)
    assert (b.rate_limit.requests, b.rate_limit.per) == (120, 60)
    assert (b.concurrency, b.timeout, b.max_age, b.batched) == (3, 5, 7200, True)
    p = routes[("shop", "p")].policy
    assert p == lane_policy(PlainTag(), None, 7200)
    assert p.batching.max_items == 1 and not p.batched


def test_bad_delivery_values_are_positioned():
    assert errors(
        """\
        version: 1
        delivery: {store: sqlite, max_age: forever}
        tags:
          - name: p
            type: test_plain
            delivery:
              max_items: 5
              timeout: 0s
          - name: b
            type: test_batch
            delivery: {max_items: 10, rate_limit: {requests: 0, per: 1m}}
          - name: c
            type: test_plain
            delivery: {colour: red}
        """
    ) == [
        "shop.yaml:8:16: tags[0].delivery.timeout: must be more than zero",
        "shop.yaml:7:18: tags[0].delivery.max_items: tag type 'test_plain' does not batch:"
        " it cannot merge requests",
        "shop.yaml:11:27: tags[1].delivery.max_items: tag type 'test_batch' allows at most 4"
        " per request",
        "shop.yaml:11:54: tags[1].delivery.rate_limit.requests: must be at least 1",
        "shop.yaml:14:16: tags[2].delivery.colour: unknown key",
        "shop.yaml:2:36: delivery.max_age: expected a duration like 500ms, 30s, 15m or 6h,"
        " got 'forever'",
    ]


def test_redis_needs_a_url_and_auth_tags_fixed_settings():
    found = errors(
        """\
        version: 1
        delivery: {store: redis}
        variables:
          secret: {type: constant, value: abc}
        tags:
          - name: a
            type: test_auth
            settings: {token_url: "https://auth.example/token", client_secret: "{{secret}}"}
        """
    )
    assert any(e.startswith("shop.yaml:2:") and "delivery.url: required" in e for e in found)
    assert any(
        e.startswith("shop.yaml:8:") and "obtains credentials at run time" in e for e in found
    )


def test_containers_must_agree_on_the_store(tmp_path: Path):
    (tmp_path / "a.yaml").write_text("version: 1\nhosts: [a.example]\ndelivery: {path: /tmp/x}\n")
    (tmp_path / "b.yaml").write_text(
        "version: 1\nhosts: [b.example]\ndelivery: {store: redis, url: 'redis://:pw@h:6379'}\n"
    )
    (tmp_path / "c.yaml").write_text("version: 1\nhosts: [c.example]\n")
    with pytest.raises(ConfigErrors) as info:
        load_containers([tmp_path], reg())
    (error,) = [str(e) for e in info.value.errors]
    assert error.startswith(f"{tmp_path / 'b.yaml'}:3:")
    assert "differs from" in error and str(tmp_path / "a.yaml") in error
    assert "pw" not in error  # the Redis password is not printed


def test_default_store_is_var_or_sgtm_data_dir(tmp_path, monkeypatch):
    spec = load_text("version: 1\n", "shop.yaml", reg(), environ={})
    monkeypatch.delenv("SGTM_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert store_for([spec]).path == str(tmp_path / "var")
    monkeypatch.setenv("SGTM_DATA_DIR", "/srv/sgtm")
    assert store_for([spec]).path == "/srv/sgtm"
