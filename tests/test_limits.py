"""Server limits from the environment (sgtm/limits.py): defaults, overrides, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from sgtm.limits import ENV, ServerLimits, limits_from_env
from tests.cli import run_cli

ROOT = Path(__file__).resolve().parent.parent


def test_defaults() -> None:
    assert limits_from_env({}) == ServerLimits()
    assert limits_from_env({"SGTM_BODY_TIMEOUT": "  "}) == ServerLimits()
    limits = ServerLimits()
    assert (limits.header_timeout, limits.body_timeout, limits.keepalive_timeout) == (10, 30, 5)
    assert (limits.max_body_bytes, limits.max_header_bytes) == (1024 * 1024, 64 * 1024)


def test_overrides() -> None:
    env = {
        "SGTM_HEADER_TIMEOUT": "2s",
        "SGTM_BODY_TIMEOUT": "1m",
        "SGTM_KEEPALIVE_TIMEOUT": "750ms",
        "SGTM_WRITE_TIMEOUT": "2m",
        "SGTM_MIN_WRITE_RATE": "4096",
        "SGTM_MAX_PIPELINED": "1",
        "SGTM_MAX_BODY_BYTES": "65536",
        "SGTM_MAX_HEADER_BYTES": "16384",
        "SGTM_MAX_CONNECTIONS": "0",
        "SGTM_BACKLOG": "512",
    }
    assert limits_from_env(env) == ServerLimits(
        header_timeout=2.0,
        body_timeout=60.0,
        keepalive_timeout=0.75,
        write_timeout=120.0,
        min_write_rate=4096,
        max_pipelined=1,
        max_body_bytes=65536,
        max_header_bytes=16384,
        max_connections=0,
        backlog=512,
    )
    assert set(env) == set(ENV.values())


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SGTM_HEADER_TIMEOUT", "soon", "expected a duration"),
        ("SGTM_HEADER_TIMEOUT", "0", "must be more than 0"),
        ("SGTM_BODY_TIMEOUT", "-5s", "expected a duration"),
        ("SGTM_KEEPALIVE_TIMEOUT", "5 minutes", "expected a duration"),
        ("SGTM_MAX_BODY_BYTES", "1MB", "expected a whole number"),
        ("SGTM_MAX_BODY_BYTES", "1e6", "expected a whole number"),
        ("SGTM_MAX_BODY_BYTES", "0", "must be more than 0"),
        ("SGTM_MAX_HEADER_BYTES", "-1", "expected a whole number"),
        ("SGTM_MAX_CONNECTIONS", "many", "expected a whole number"),
        ("SGTM_WRITE_TIMEOUT", "0s", "must be more than 0"),
        ("SGTM_WRITE_TIMEOUT", "never", "expected a duration"),
        ("SGTM_MAX_PIPELINED", "0", "must be more than 0"),
        ("SGTM_MIN_WRITE_RATE", "0", "must be more than 0"),
        ("SGTM_MIN_WRITE_RATE", "1KiB", "expected a whole number"),
        ("SGTM_MAX_PIPELINED", "1.5", "expected a whole number"),
        ("SGTM_BACKLOG", "\uff11\uff12", "expected a whole number"),  # full-width digits
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{name}: .*{message}"):
        limits_from_env({name: value})


def test_serve_refuses_to_start_on_a_bad_limit() -> None:
    done = run_cli(
        "serve",
        "-c",
        str(ROOT / "config" / "example.yaml"),
        env={"PATH": "/usr/bin:/bin", "SGTM_BODY_TIMEOUT": "forever"},
    )
    assert done.returncode == 2
    assert done.stderr.strip().endswith(
        "sgtm serve: SGTM_BODY_TIMEOUT: expected a duration like 500ms, 30s, 15m or 6h,"
        " got 'forever'"
    )


def test_operations_doc_lists_every_limit_with_its_default() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    defaults = ServerLimits()
    for field, name in ENV.items():
        value = getattr(defaults, field)
        if field.endswith("_timeout"):
            shown = f"`{value:g}s`"
        elif field.endswith("_bytes"):
            shown = f"{value // 1024 // 1024} MiB" if value >= 1 << 20 else f"{value // 1024} KiB"
        else:
            shown = f"`{value}`"
        rows = [line for line in text.splitlines() if line.startswith("|") and f"`{name}`" in line]
        assert len(rows) == 1, name
        assert f"| {shown}" in rows[0], (name, shown, rows[0])
