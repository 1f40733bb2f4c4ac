"""Hot reload under load: GA4 hits/s through `sgtm serve` while it reloads, against the same server
not reloading, in one run.

    .venv/bin/python bench/reload.py [--duration 8] [--rounds 3] [--every 0.25] [--json]

Starts `sgtm serve` (one worker) on the ingest benchmark's container (bench/ingest.py: the GA4
client, three dry-run tags with transformations and templated settings) copied to a temp
directory, and drives it with ingest.py's load generator (wrk when on PATH, else its asyncio
generator) in alternating windows: quiet (no reload), then reloading (the file rewritten between
two versions and SIGHUP sent every `--every` seconds), `--rounds` times. Prints req/s and p99 per
window kind, the ratio reloading/quiet, how many reloads the server logged and how long each took
(load and validation on a thread, swap), and any failed request (exit 1 when one failed).
The figures are ratios from one run; on 2 cores the generator and the server share the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import ingest  # noqa: E402


def load(server: ingest.Server, mix: list[Any], wrk: str | None, seconds: float) -> dict[str, Any]:
    if wrk is not None:
        return ingest.wrk_load(wrk, server.host, 32, 1, seconds)
    return ingest.python_load(server.host, mix, 32, seconds)


def reloading(config: Path, pid: int, every: float, stop: threading.Event) -> int:
    """Rewrite the container between two versions and SIGHUP the server until `stop`."""
    versions = [ingest.CONTAINER_YAML, ingest.CONTAINER_YAML + "# version B\n"]
    sent = 0
    while not stop.wait(every):
        sent += 1
        temporary = config.with_suffix(".tmp")
        temporary.write_text(versions[sent % 2])
        os.replace(temporary, config)
        os.kill(pid, signal.SIGHUP)
    return sent


def reload_times(log: Path) -> list[float]:
    times = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"config reloaded"' in line:
            times.append(float(json.loads(line)["ms"]))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="hits/s while reloading vs quiet")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per window")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--every", type=float, default=0.25, help="seconds between SIGHUPs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    wrk = shutil.which("wrk")
    mix = ingest.build_mix()
    workdir = Path(tempfile.mkdtemp(prefix="sgtm-reload-bench-"))
    config = workdir / "ingest.yaml"
    config.write_text(ingest.CONTAINER_YAML)
    log_path = workdir / "sgtm.log"
    # At info (the default level): the reload lines say how long each took.
    env = {**os.environ, "SGTM_DATA_DIR": str(workdir / "var"), "SGTM_LOG_LEVEL": "info"}
    sgtm = str(Path(sys.executable).parent / "sgtm")
    server = ingest.Server("sgtm", [sgtm, "serve", "-c", str(workdir)], env, "/readyz", log_path)
    results: dict[str, list[dict[str, Any]]] = {"quiet": [], "reloading": []}
    signals = 0
    try:
        server.start()
        assert server.proc is not None
        load(server, mix, wrk, 2.0)  # warm-up
        for _ in range(args.rounds):
            results["quiet"].append(load(server, mix, wrk, args.duration))
            stop = threading.Event()
            with ThreadPoolExecutor(1) as pool:
                sending = pool.submit(reloading, config, server.proc.pid, args.every, stop)
                results["reloading"].append(load(server, mix, wrk, args.duration))
                stop.set()
                signals += sending.result()
        time.sleep(1.0)  # the last reload's line
    finally:
        server.stop()
    times = reload_times(log_path)
    failed = sum(r["non_2xx_3xx"] + r["socket_errors"] for rs in results.values() for r in rs)

    def median(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in results[kind])

    report = {
        "loadgen": "wrk" if wrk else "python",
        "rounds": args.rounds,
        "duration": args.duration,
        "quiet_rps": [round(r["rps"]) for r in results["quiet"]],
        "reloading_rps": [round(r["rps"]) for r in results["reloading"]],
        "rps_ratio": median("reloading", "rps") / median("quiet", "rps"),
        "p99_ms": {"quiet": median("quiet", "p99_ms"), "reloading": median("reloading", "p99_ms")},
        "sighups": signals,
        "reloads_logged": len(times),
        "reload_ms": {
            "median": statistics.median(times) if times else None,
            "max": max(times) if times else None,
        },
        "failed_requests": failed,
    }
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:16} {value}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
