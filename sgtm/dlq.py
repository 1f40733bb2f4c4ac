"""`sgtm dlq`: inspect, replay and purge dead letters.

The store is the one the container files name (`-c PATH`, only their `delivery:` sections are
read, so no vendor secret needs to be set), else $SGTM_DATA_DIR, else ./var. Replayed deliveries
go back to the outbox with a fresh max age and their original idempotency key; a running server
sends them within its poll interval.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from sgtm import placeholders
from sgtm.composition import open_store
from sgtm.config import delivery_store
from sgtm.delivery.base import DeliveryUnavailable
from sgtm.delivery.policy import StoreSpec, parse_duration, store_spec
from sgtm.delivery.store import DeadLetter, Store
from sgtm.yamlsource import ConfigErrors


class DlqError(Exception):
    pass


def add_parser(commands: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c", "--config", action="append", default=[], help="container file or directory"
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")
    dlq = commands.add_parser("dlq", help="inspect, replay and purge dead letters")
    actions = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = actions.add_parser("list", parents=[common], help="dead letters, newest first")
    listing.add_argument("--tag")
    listing.add_argument("--since", help="a duration ago (2h, 30m) or a date (2026-01-31T12:00)")
    listing.add_argument("--limit", type=int, default=100)
    show = actions.add_parser("show", parents=[common], help="one dead letter in full")
    show.add_argument("id")
    replay = actions.add_parser("replay", parents=[common], help="send dead letters again")
    replay.add_argument("--tag")
    replay.add_argument("--id", action="append", dest="ids", help="repeatable")
    replay.add_argument("--all", action="store_true", help="every dead letter")
    purge = actions.add_parser("purge", parents=[common], help="delete old dead letters")
    purge.add_argument("--before", required=True, help="a duration ago (7d) or a date")


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except DlqError as exc:
        print(f"sgtm dlq: {exc}", file=sys.stderr)
        return 2


def store_from_configs(paths: list[str]) -> StoreSpec:
    """The store named by the containers' `delivery:` sections (which must agree), read by the
    config loader itself: only those sections, so no vendor secret needs to be set."""
    try:
        return delivery_store(list(paths)) if paths else store_spec(None)
    except ConfigErrors as exc:
        raise DlqError("\n".join(str(e) for e in exc.errors)) from None


def parse_when(text: str, now: float) -> float:
    """A duration ago ("2h", "7d"), an ISO 8601 date-time (UTC unless it says), or epoch seconds."""
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DlqError(f"not a time: {text!r} (use 2h, 7d or 2026-01-31T12:00)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


@contextlib.asynccontextmanager
async def open_from_configs(paths: list[str]) -> AsyncIterator[Store]:
    """The open store the containers name (`sgtm dlq`, `sgtm trace`); DlqError when there is
    none."""
    spec = store_from_configs(paths)
    if spec.kind == "sqlite" and not (Path(spec.path) / "sgtm.db").exists():
        raise DlqError(f"no store at {spec.path} (set -c or SGTM_DATA_DIR)")
    store = open_store(spec)
    try:
        await store.open()
    except DeliveryUnavailable as exc:
        raise DlqError(str(exc)) from None
    try:
        yield store
    finally:
        await store.close()


async def _run(args: argparse.Namespace) -> int:
    async with open_from_configs(args.config) as store:
        return await _command(args, store)


async def _command(args: argparse.Namespace, store: Store) -> int:
    now = time.time()
    out = sys.stdout
    if args.dlq_command == "list":
        since = parse_when(args.since, now) if args.since else None
        letters = await store.dead_letters(tag=args.tag, since=since, limit=args.limit)
        if args.json:
            out.write(msgspec.json.encode([summary(x) for x in letters]).decode() + "\n")
        elif not letters:
            out.write("no dead letters\n")
        else:
            out.write(_table(letters))
        return 0
    if args.dlq_command == "show":
        letter = await store.dead_letter(args.id)
        if letter is None:
            raise DlqError(f"no dead letter {args.id!r}")
        if args.json:
            out.write(msgspec.json.encode(details(letter)).decode() + "\n")
        else:
            out.write(_describe(letter))
        return 0
    if args.dlq_command == "replay":
        if not (args.tag or args.ids or args.all):
            raise DlqError("replay what? give --id ID, --tag TAG or --all")
        count = await store.replay(ids=args.ids, tag=args.tag, now=now)
        if args.json:
            out.write(msgspec.json.encode({"replayed": count}).decode() + "\n")
        else:
            out.write(f"replayed {count} dead letter(s): back in the outbox\n")
        return 0 if count or args.all or args.tag else 1
    if args.dlq_command == "purge":
        count = await store.purge(parse_when(args.before, now))
        if args.json:
            out.write(msgspec.json.encode({"purged": count}).decode() + "\n")
        else:
            out.write(f"purged {count} dead letter(s)\n")
        return 0
    raise DlqError(f"unknown command {args.dlq_command!r}")


def iso_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def summary(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id,
        "died": iso_time(letter.died),
        "created": iso_time(letter.created),
        "container": letter.container,
        "tag": letter.tag,
        "tag_type": letter.tag_type,
        "lane": letter.lane,
        "attempts": letter.attempts,
        "status": letter.response.status if letter.response else None,
        "reason": letter.reason,
    }


def _body(data: bytes) -> Any:
    try:
        return msgspec.json.decode(data) if data else ""
    except msgspec.DecodeError:
        pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode()}


def _shown(data: bytes) -> bytes:
    """A stored body with its placeholders in display form (see `details`)."""
    if b"{{" not in data:
        return data
    text = data.decode("utf-8", "surrogateescape")
    return placeholders.for_display(text).encode("utf-8", "surrogateescape")


def _shown_value(value: Any) -> Any:
    """A stored JSON value (a batch item: part of the body) with its placeholders in display
    form."""
    if value is None:
        return None
    return msgspec.json.decode(_shown(msgspec.json.encode(value)))


def details(letter: DeadLetter) -> dict[str, Any]:
    """One dead letter as an operator sees it (`sgtm dlq show`, the admin API). Its request's
    secret and credential placeholders are shown without their nonce (`{{secret.NAME}}`): the
    nonce is what lets the engine fill a placeholder, so it stays with the job, and the stored
    request never held the secret itself."""
    request = letter.outbound()
    response = letter.response
    shown = placeholders.for_display
    return {
        **summary(letter),
        "request": {
            "method": request.method,
            "url": shown(request.url),
            "headers": {name: shown(value) for name, value in request.headers.items()},
            "body": _body(_shown(request.body)),
            "idempotency_key": request.idempotency_key,
            "batch_item": _shown_value(request.batch_item),
        },
        "response": (
            None
            if response is None
            else {
                "status": response.status,
                "headers": response.headers,
                "body": _body(response.body),
            }
        ),
        "history": [
            {"at": iso_time(a.at), "status": a.status, "error": a.error, "ms": a.ms}
            for a in letter.history
        ],
    }


def _table(letters: list[DeadLetter]) -> str:
    rows = [("ID", "DIED (UTC)", "TAG", "TRIES", "STATUS", "REASON")]
    for x in letters:
        status = str(x.response.status) if x.response else "-"
        reason = x.reason if len(x.reason) <= 60 else x.reason[:57] + "..."
        tag = f"{x.container}/{x.tag}"
        rows.append((x.id, iso_time(x.died), tag, str(x.attempts), status, reason))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def _describe(letter: DeadLetter) -> str:
    d = details(letter)
    request, response = d["request"], d["response"]

    def block(value: Any) -> str:
        text = (
            value
            if isinstance(value, str)
            else msgspec.json.format(msgspec.json.encode(value), indent=2).decode()
        )
        return "\n".join("    " + line for line in text.splitlines()) or "    (empty)"

    lines = [
        f"dead letter {letter.id}",
        f"  tag:        {letter.container}/{letter.tag} ({letter.tag_type})",
        f"  lane:       {letter.lane}",
        f"  created:    {d['created']}",
        f"  died:       {d['died']}  after {letter.attempts} attempt(s)",
        f"  reason:     {letter.reason}",
        f"  idempotency key: {request['idempotency_key']}",
        "",
        f"request: {request['method']} {request['url']}",
        *(f"  {k}: {v}" for k, v in request["headers"].items()),
        "  body:",
        block(request["body"]),
    ]
    if response is not None:
        lines += [
            "",
            f"last response: {response['status']}",
            *(f"  {k}: {v}" for k, v in response["headers"].items()),
            "  body:",
            block(response["body"]),
        ]
    lines += ["", "attempts:"]
    lines += [
        f"  {a['at']}  {a['status'] or 'no response'}  {a['ms']} ms  {a['error']}".rstrip()
        for a in d["history"]
    ] or ["  (none recorded)"]
    return "\n".join(lines) + "\n"
