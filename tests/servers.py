"""Real servers on loopback for integration tests: a fake vendor and `sgtm serve` itself.

The fake vendor is `sgtm.testing`'s (a real uvicorn server in a thread that records every request
and answers from a script), the one plugin authors use too. `SgtmProcess` runs the real CLI in a
subprocess and keeps its stderr (the JSON logs).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from sgtm.testing.vendor import FakeVendor, Received, Reply, free_port

__all__ = [
    "ROOT",
    "SGTM",
    "FakeVendor",
    "Received",
    "Reply",
    "SgtmProcess",
    "free_port",
    "wait_until",
]

ROOT = Path(__file__).resolve().parent.parent
SGTM = str(Path(sys.executable).parent / "sgtm")


def wait_until(check: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    """Poll `check()` until it returns something truthy, and return it; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g}s")
        time.sleep(0.02)
    return value


class SgtmProcess:
    """`sgtm serve` in a subprocess on a free loopback port."""

    def __init__(self, config: str | Path, env: dict[str, str] | None = None, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stderr_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"sgtm-{self.port}.log"
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in stop()
        env = dict(env or {})
        # The outbox belongs to the config: a server restarted on the same config file finds
        # what the previous one acknowledged, and tests with other configs never share it.
        key = hashlib.sha256(str(Path(config).resolve()).encode()).hexdigest()[:16]
        default_dir = Path(tempfile.gettempdir()) / f"sgtm-data-{key}"
        self.data_dir = env.setdefault("SGTM_DATA_DIR", str(default_dir))
        self.proc = subprocess.Popen(
            [SGTM, "serve", "-c", str(config), "--port", str(self.port), *extra],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            cwd=str(ROOT),
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sgtm serve exited {self.proc.returncode}: {self.logs()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"sgtm serve did not become ready: {self.logs()}")

    def logs(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.logs().splitlines() if line.startswith("{")]

    def wait_for_log(self, match: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """The first JSON log record `match` accepts, once the server has written it."""
        return wait_until(lambda: next(filter(match, self.log_records()), None), what)

    def stop(self, sig: int | None = None) -> int:
        if self.proc.poll() is None:
            if sig is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()
        return self.proc.returncode

    def __enter__(self) -> SgtmProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
