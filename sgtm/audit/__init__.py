"""`sgtm audit`: which personal data each tag sends, hashed or in clear, under which consent.

Computed, not declared (docs/privacy.md): every tag runs on probe events and probe requests that
carry a canary in every personal-data field (`canaries`), with its triggers and consent lifted
(`probe`); the canaries are then looked for in the requests the tag built (`search`) and the
findings reported per container and tag (`report`). Tags need no code of their own for this.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import msgspec

from sgtm.audit import probe, report
from sgtm.audit.canaries import Canaries
from sgtm.audit.report import ContainerReport, Rule
from sgtm.audit.search import needles
from sgtm.config import ContainerSpec
from sgtm.plugin import PersonalData


async def audit(specs: list[ContainerSpec], extra: list[PersonalData]) -> list[ContainerReport]:
    """The report of each container. `extra`: what plugins registered (`register_personal_data`)."""
    canaries = Canaries.build(extra)
    search = needles(canaries.fields)
    categories = canaries.categories()
    return [report.build(await probe.run(spec, canaries), search, categories) for spec in specs]


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "audit", help="which personal data each tag sends, hashed or in clear, under which consent"
    )
    parser.add_argument("paths", nargs="+", help="container files or directories")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--deny",
        action="append",
        default=[],
        metavar="RULE",
        help="fail (exit 1) when a tag sends this: clear:email, sha256:phone, ungated:ip, sent:*",
    )


def run(args: argparse.Namespace) -> int:
    from sgtm.cli import _load
    from sgtm.plugins import load_registry

    reg = load_registry()
    extra = reg.personal_data
    categories = Canaries.build(extra).categories()
    try:
        rules = [Rule.parse(raw, categories) for raw in args.deny]
    except ValueError as exc:
        print(f"sgtm audit: {exc}", file=sys.stderr)
        return 2
    specs = _load(args.paths, reg)
    if specs is None:
        return 1
    reports = asyncio.run(audit(specs, extra))
    if args.json:
        sys.stdout.write(msgspec.json.encode(report.as_json(reports)).decode() + "\n")
    else:
        sys.stdout.write(report.text(reports))
    problems = report.violations(reports, rules)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0
