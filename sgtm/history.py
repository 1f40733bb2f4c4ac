"""The per-event delivery history: what became of each request the tags built for an event.

The delivery engine records every outcome (delivered, retrying, dead) by the event's id and
transaction id in the store, with the settlement that made it, for `delivery.history` (24 h by
default). `GET /_sgtm/api/events/<event_id>` and `sgtm trace EVENT_ID` read it; both render it
with `deliveries` below.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import msgspec

from sgtm.delivery.store import Outcome, Store
from sgtm.dlq import DlqError, iso_time, open_from_configs

MAX_KEY = 256  # longer event or transaction ids are refused before the store is asked


def deliveries(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """One entry per delivery of the event (its latest state), oldest first."""
    return [
        {
            "tag": o.tag,
            "container": o.container,
            "event_id": o.event_id,
            "state": o.state,
            "attempts": o.attempts,
            "status": o.status or None,
            "at": iso_time(o.at),
        }
        for o in outcomes
    ]


def check_key(key: str) -> str | None:
    """Why an id typed by someone cannot be looked up (None when it can)."""
    if not key or len(key) > MAX_KEY:
        return f"an id has 1 to {MAX_KEY} characters"
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        return "an id has no control characters"
    return None


async def event_history(store: Store, event_id: str) -> dict[str, Any]:
    return {"event_id": event_id, "deliveries": deliveries(await store.history(event_id=event_id))}


async def transaction_history(store: Store, transaction_id: str) -> dict[str, Any]:
    found = await store.history(transaction_id=transaction_id)
    return {"transaction_id": transaction_id, "deliveries": deliveries(found)}


def add_parser(commands: Any) -> None:
    trace = commands.add_parser(
        "trace", help="what became of an event's deliveries (the delivery history)"
    )
    trace.add_argument("event_id", help="the event's id (or, with --transaction, an order id)")
    trace.add_argument(
        "-c", "--config", action="append", default=[], help="container file or directory"
    )
    trace.add_argument(
        "--transaction", action="store_true", help="look up a transaction_id instead"
    )
    trace.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    problem = check_key(args.event_id)
    try:
        if problem is not None:
            raise DlqError(problem)
        return asyncio.run(_run(args))
    except DlqError as exc:
        print(f"sgtm trace: {exc}", file=sys.stderr)
        return 2


async def _run(args: argparse.Namespace) -> int:
    async with open_from_configs(args.config) as store:
        if args.transaction:
            found = await transaction_history(store, args.event_id)
        else:
            found = await event_history(store, args.event_id)
    if args.json:
        sys.stdout.write(msgspec.json.encode(found).decode() + "\n")
    elif not found["deliveries"]:
        sys.stdout.write("no deliveries recorded for this id (kept for delivery.history)\n")
    else:
        sys.stdout.write(_table(found["deliveries"]))
    return 0 if found["deliveries"] else 1


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [("AT (UTC)", "EVENT", "TAG", "STATE", "TRIES", "STATUS")]
    for d in rows:
        tag = f"{d['container']}/{d['tag']}"
        status = str(d["status"] or "-")
        lines.append((d["at"], d["event_id"], tag, d["state"], str(d["attempts"]), status))
    widths = [max(len(r[i]) for r in lines) for i in range(len(lines[0]))]
    text = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in lines]
    return "\n".join(text) + "\n"
