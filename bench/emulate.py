"""`sgtm emulate` requests per second of CPU on the GA4 corpus.

    .venv/bin/python bench/emulate.py [--requests 10000] [--rounds 3] [--config bench/ingest.yaml]

The requests of tests/ga4_corpus (real gtag.js hits, GETs and batched POSTs) are repeated to
`--requests` NDJSON lines and run through `sgtm emulate --requests` in a child process, its
output thrown away. The figure is requests per second of the child's CPU, with the CPU of a run
of one line (start-up: imports, config load) subtracted, so it is the pipeline's rate alone. The
container is the ingest benchmark's (bench/ingest.yaml: the `ga4` client, three templated tags),
so every request runs claim, parse, triggers, transformations, variables and builds, traced.

To compare code from before a change, copy its `sgtm/` and `plugins/` (as `sgtm_plugins/`) to a
directory and pass `--before that/dir`: each round then runs both, interleaved, and the ratio
after/before is printed per round.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CORPUS = ROOT / "tests" / "ga4_corpus"


def corpus_lines() -> list[str]:
    lines = []
    for path in sorted(CORPUS.glob("*.json")):
        request = json.loads(path.read_text())["request"]
        lines.append(json.dumps(request))
    return lines


def child_cpu(args: list[str], env: dict[str, str], cwd: Path) -> float:
    """CPU seconds (user + system) of one child run. It runs outside the repository, so that
    `python -m sgtm` imports what PYTHONPATH names, not the tree in the current directory."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(args, env=env, cwd=cwd, stdout=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def rate(config: Path, many: Path, one: Path, count: int, pythonpath: str | None) -> float:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    config = config.resolve()
    base = [sys.executable, "-m", "sgtm", "emulate", "-c", str(config), "--now", "1767225600"]
    startup = child_cpu([*base, "--requests", str(one)], env, many.parent)
    total = child_cpu([*base, "--requests", str(many)], env, many.parent)
    return (count - 1) / max(total - startup, 1e-9)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--config", type=Path, default=HERE / "ingest.yaml")
    parser.add_argument("--before", help="PYTHONPATH holding the code to compare with")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    lines = corpus_lines()
    with tempfile.TemporaryDirectory() as tmp:
        many, one = Path(tmp, "many.ndjson"), Path(tmp, "one.ndjson")
        many.write_text("\n".join(lines[i % len(lines)] for i in range(args.requests)) + "\n")
        one.write_text(lines[0] + "\n")
        after: list[float] = []
        before: list[float] = []
        for _ in range(args.rounds):
            if args.before:
                before.append(rate(args.config, many, one, args.requests, args.before))
            after.append(rate(args.config, many, one, args.requests, None))
            if not args.json:
                line = f"emulate  {after[-1]:8.0f} req/s of CPU"
                if args.before:
                    line += f"   before {before[-1]:8.0f}   ratio {after[-1] / before[-1]:.2f}"
                print(line, flush=True)
    result: dict[str, object] = {"requests": args.requests, "rate": statistics.median(after)}
    if args.before:
        result["before"] = statistics.median(before)
        result["ratios"] = [round(a / b, 3) for a, b in zip(after, before, strict=True)]
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"median {result['rate']:.0f} req/s"
            + (f", ratios {result['ratios']}" if args.before else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
