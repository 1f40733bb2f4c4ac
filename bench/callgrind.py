"""Instructions per request, counted by valgrind's callgrind: the before/after figure that does
not move with the machine's load.

    .venv/bin/python bench/callgrind.py                  # ingest mix and emulate, this tree
    .venv/bin/python bench/callgrind.py --what ingest    # one of them
    PYTHONPATH=/tmp/before .venv/bin/python bench/callgrind.py   # another copy of sgtm/, plugins/

`ingest`: the request mix of bench/ingest.py through the ASGI app of `sgtm serve` in process
(bench/ingest_profile.py: create_app on bench/ingest.yaml, logs at info to /dev/null, no sockets).
`emulate`: `sgtm emulate -c bench/ingest.yaml --requests` on the GA4 corpus (bench/emulate.py).
Each is run under callgrind twice, with a small and a large number of requests; the difference
of the two totals divided by the difference of the counts is the figure, so start-up (imports,
config load, warm-up) cancels. Callgrind runs the code about 50x slower: about a minute each.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from emulate import corpus_lines  # noqa: E402

_COLLECTED = re.compile(rb"Collected\s*:\s*(\d+)")


def instructions(argv: list[str], cwd: Path) -> int:
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        cwd=cwd,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(
            f"callgrind run failed ({done.returncode}):\n{done.stderr.decode()[-2000:]}"
        )
    return int(found.group(1))


def per_request(make_argv, small: int, large: int, cwd: Path) -> float:
    return (instructions(make_argv(large), cwd) - instructions(make_argv(small), cwd)) / (
        large - small
    )


def ingest(small: int, large: int) -> float:
    def argv(count: int) -> list[str]:
        return [
            sys.executable,
            str(HERE / "ingest_profile.py"),
            "--requests",
            str(count),
            "--apps",
            "sgtm",
            "--warmup",
            "120",
        ]

    return per_request(argv, small, large, HERE.parent)


def emulate(small: int, large: int, workdir: Path) -> float:
    lines = corpus_lines()

    def argv(count: int) -> list[str]:
        path = workdir / f"requests-{count}.ndjson"
        path.write_text("\n".join(lines[i % len(lines)] for i in range(count)) + "\n")
        config = str(HERE / "ingest.yaml")
        return [sys.executable, "-m", "sgtm", "emulate", "-c", config, "--now", "1767225600",
                "--requests", str(path)]  # fmt: skip

    # Run outside the repository, so that PYTHONPATH (if given) decides what is imported.
    return per_request(argv, small, large, workdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", choices=("ingest", "emulate", "both"), default="both")
    parser.add_argument("--small", type=int, default=120)
    parser.add_argument("--large", type=int, default=600)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result: dict[str, float] = {}
    if args.what in ("ingest", "both"):
        result["ingest_instructions_per_request"] = ingest(args.small, args.large)
    if args.what in ("emulate", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            result["emulate_instructions_per_request"] = emulate(args.small, args.large, Path(tmp))
    if args.json:
        print(json.dumps(result))
        return
    for name, value in result.items():
        print(f"{name}: {value / 1e6:.3f} M")


if __name__ == "__main__":
    main()
