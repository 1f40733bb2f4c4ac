"""SQLite store: the embedded default, one file under ./var (or $SGTM_DATA_DIR).

One writer thread owns the connection and commits in groups: every operation submitted while the
previous transaction was being written waits in a queue, and the next transaction runs them all
under one COMMIT and so one fsync (should one fail, the group runs again with a savepoint per
operation, so it rolls back alone). Many requests share an fsync, and nothing touches SQLite on
the event loop.

WAL with synchronous=FULL: a commit is on disk when `enqueue` returns, so an acknowledged event
survives a crash of the process and of the machine; group commit makes that fsync cheap.

Several processes (`sgtm serve --workers N`) may share the file: SQLite serializes their write
transactions (busy_timeout), and leasing keeps them from sending the same job twice. A leased
job's `due` is set to the end of its lease, so a crashed worker's jobs become due again by
themselves; at start, jobs leased by processes of this machine that no longer exist are released
at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import queue
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sgtm.delivery.base import DeliveryUnavailable
from sgtm.delivery.store import (
    DEFAULT_HISTORY_RETENTION,
    MAX_PREVIEWS,
    MAX_TRACES,
    DeadLetter,
    Job,
    NewJob,
    Outcome,
    PreviewData,
    Retry,
    decode_history,
    decode_outcome,
    decode_payload,
    decode_response,
    encode,
    latest,
    preview_session,
)

log = logging.getLogger("sgtm.delivery.sqlite")

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    lane TEXT NOT NULL,
    due REAL NOT NULL,
    owner TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    payload BLOB NOT NULL,
    history BLOB
);
CREATE INDEX IF NOT EXISTS outbox_lane_due ON outbox (lane, due);
CREATE INDEX IF NOT EXISTS outbox_lane_created ON outbox (lane, created);
CREATE INDEX IF NOT EXISTS outbox_owner ON outbox (owner) WHERE owner != '';
CREATE TABLE IF NOT EXISTS lanes (
    lane TEXT PRIMARY KEY,
    depth INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS dead (
    id INTEGER PRIMARY KEY,
    lane TEXT NOT NULL,
    container TEXT NOT NULL,
    tag TEXT NOT NULL,
    tag_type TEXT NOT NULL,
    created REAL NOT NULL,
    died REAL NOT NULL,
    attempts INTEGER NOT NULL,
    reason TEXT NOT NULL,
    payload BLOB NOT NULL,
    response BLOB,
    history BLOB
);
CREATE INDEX IF NOT EXISTS dead_died ON dead (died);
CREATE INDEX IF NOT EXISTS dead_tag ON dead (tag, died);
CREATE TABLE IF NOT EXISTS schedule (
    lane TEXT PRIMARY KEY,
    next_flush REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    event_id TEXT NOT NULL,
    job TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    at REAL NOT NULL,
    outcome BLOB NOT NULL,
    PRIMARY KEY (event_id, job)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS history_transaction ON history (transaction_id)
    WHERE transaction_id != '';
CREATE INDEX IF NOT EXISTS history_at ON history (at);
CREATE TABLE IF NOT EXISTS preview (
    id TEXT PRIMARY KEY,
    expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS preview_trace (
    seq INTEGER PRIMARY KEY,
    session TEXT NOT NULL,
    trace BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS preview_trace_session ON preview_trace (session, seq);
CREATE TABLE IF NOT EXISTS preview_delivery (
    ref TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    outcome BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS preview_delivery_session ON preview_delivery (session);
CREATE TABLE IF NOT EXISTS dedupe (
    key TEXT PRIMARY KEY,
    expires REAL NOT NULL
) WITHOUT ROWID;
"""

FILE_NAME = "sgtm.db"
MAX_GROUP = 512  # operations per transaction; a bound on how long one commit can take
MAX_ROWS = 128  # rows bound by one statement (5 columns: 640 variables, under SQLite's 999)
# Under load, how long a durable write waits for others to share its commit. A durable commit
# costs this process about 250 us of CPU (the fsync, SQLite's WAL work and the writer's turns of
# the GIL, taken from the event loop) and 2-3 ms of waiting; a group takes in what arrived during
# the previous commit, which at a few hundred hits a second is one or two hits. Waiting a little
# longer when hits came together last time makes the groups several times larger (so the CPU per
# hit several times smaller) for a few ms more on each answer; a lone hit never waits.
COMMIT_LINGER = 0.004


class _Op:
    __slots__ = ("durable", "fn", "future", "loop")

    def __init__(
        self,
        fn: Callable[[sqlite3.Connection], Any],
        future: asyncio.Future[Any],
        loop: asyncio.AbstractEventLoop,
        durable: bool,
    ) -> None:
        self.fn = fn
        self.future = future
        self.loop = loop
        self.durable = durable


def _resolve(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def _resolve_all(results: list[tuple[_Op, Any, BaseException | None]]) -> None:
    for op, value, error in results:
        _resolve(op.future, value, error)


# Owners of the stores open in this process. A lease whose owner has this process's pid but is
# not one of them was left by an earlier process that had the same pid (a restarted container
# is pid 1 again); one that is, belongs to a store still at work here (a tool reading the outbox
# beside a server in one process) and is never taken from it.
_OPEN_OWNERS: set[str] = set()


class SqliteStore:
    name = "sqlite"

    def __init__(
        self,
        directory: str | Path,
        *,
        owner: str | None = None,
        busy_timeout: float = 10.0,
        synchronous: str = "FULL",
        history: float = DEFAULT_HISTORY_RETENTION,
    ) -> None:
        self.directory = Path(directory)
        self.history_retention = history  # seconds; 0 keeps no delivery history
        self.path = self.directory / FILE_NAME
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.busy_timeout = busy_timeout
        self.synchronous = synchronous
        self._ops: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._last_dedupe_sweep = 0.0
        self._durable = True  # the connection starts with synchronous=FULL
        self._shared = False  # the last durable group had more than one durable write

    # -- the writer thread ----------------------------------------------------------------

    async def open(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryUnavailable(f"cannot create {self.directory}: {exc}") from exc
        ready: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="sgtm-sqlite", daemon=True
        )
        self._thread.start()
        error = await asyncio.to_thread(ready.get)
        if error is not None:
            self._thread.join()
            self._thread = None
            raise DeliveryUnavailable(f"cannot open {self.path}: {error}") from error
        _OPEN_OWNERS.add(self.owner)
        await self._call(self._release_dead_owners)

    async def close(self) -> None:
        if self._thread is None:
            return
        self._ops.put(None)
        await asyncio.to_thread(self._thread.join)
        self._thread = None
        _OPEN_OWNERS.discard(self.owner)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
        conn.executescript(SCHEMA)
        return conn

    def _run(self, ready: queue.SimpleQueue[BaseException | None]) -> None:
        try:
            conn = self._connect()
        except (sqlite3.Error, OSError) as exc:
            ready.put(exc)
            return
        ready.put(None)
        stopping = False
        while not stopping:
            first = self._ops.get()
            if first is None:
                break
            if first.durable and self._shared:
                time.sleep(COMMIT_LINGER)  # one wake-up for all that come meanwhile
            group = [first]
            while len(group) < MAX_GROUP:
                try:
                    op = self._ops.get_nowait()
                except queue.Empty:
                    break
                if op is None:
                    stopping = True
                    break
                group.append(op)
            if first.durable:
                self._shared = sum(op.durable for op in group) > 1
            self._run_group(conn, group)
        conn.close()

    def _run_group(self, conn: sqlite3.Connection, group: list[_Op]) -> None:
        durable = any(op.durable for op in group)
        if durable != self._durable:
            # WAL + NORMAL syncs at checkpoints only; FULL syncs the WAL on every commit.
            level = self.synchronous if durable else "NORMAL"
            conn.execute(f"PRAGMA synchronous={level}")
            self._durable = durable
        # First without a savepoint per operation: each statement costs this thread a turn of
        # the GIL, which an event loop busy with hits hands back only every few milliseconds.
        # Should an operation fail, the group runs again with one, so it rolls back alone.
        results = self._transaction(conn, group, savepoints=False)
        if results is None:
            results = self._transaction(conn, group, savepoints=True)
        assert results is not None
        self._hand_back(
            [
                (op, value, DeliveryUnavailable(f"store error: {error}"))
                if isinstance(error, sqlite3.Error)
                else (op, value, error)
                for op, value, error in results
            ]
        )

    def _transaction(
        self, conn: sqlite3.Connection, group: list[_Op], *, savepoints: bool
    ) -> list[tuple[_Op, Any, BaseException | None]] | None:
        """The group's results, committed; None when an operation failed without savepoints
        (the transaction is rolled back)."""
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            failure = DeliveryUnavailable(f"store busy or unavailable: {exc}")
            return [(op, None, failure) for op in group]
        results: list[tuple[_Op, Any, BaseException | None]] = []
        inserts = None if savepoints else [op.fn for op in group if isinstance(op.fn, _Insert)]
        for op in group:
            if savepoints:
                conn.execute("SAVEPOINT op")
            try:
                if inserts is not None and isinstance(op.fn, _Insert):
                    # Every enqueue of the group in a few statements, where the first one stood;
                    # the others have nothing left to write.
                    if inserts:
                        _Insert.run_all(conn, inserts)
                        inserts = []
                    value = None
                else:
                    value = op.fn(conn)
            except Exception as exc:
                if not savepoints:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    return None
                conn.execute("ROLLBACK TO op")
                results.append((op, None, exc))
            else:
                results.append((op, value, None))
            if savepoints:
                conn.execute("RELEASE op")
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            # Disk full, I/O error: nothing of this group is durable, and every caller hears so.
            log.error("store commit failed: %s", exc)
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            failure = DeliveryUnavailable(f"store cannot commit: {exc}")
            return [(op, None, failure) for op, _, _ in results]
        return results

    @staticmethod
    def _hand_back(results: list[tuple[_Op, Any, BaseException | None]]) -> None:
        """Resolve the group's futures with one wake-up per event loop, not one per operation:
        each wake-up is a write to the loop's self-pipe and a turn of the GIL."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Op, Any, BaseException | None]]] = {}
        for result in results:
            by_loop.setdefault(result[0].loop, []).append(result)
        for loop, batch in by_loop.items():
            loop.call_soon_threadsafe(_resolve_all, batch)

    async def _call(self, fn: Callable[[sqlite3.Connection], T], *, durable: bool = False) -> T:
        """Run `fn` in the writer's next transaction. `durable`: the commit is fsynced before
        this returns. Others (leases, outcomes) may be lost by a power cut, which only means a
        job is sent again with its same idempotency key, so they skip the fsync."""
        if self._thread is None:
            raise DeliveryUnavailable("store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._ops.put(_Op(fn, future, loop, durable))
        return await future

    # -- outbox ---------------------------------------------------------------------------

    async def enqueue(self, jobs: list[NewJob]) -> None:
        await self._call(
            _Insert([(j.lane, j.due, j.created, j.payload) for j in jobs]), durable=True
        )

    async def lanes(self) -> list[str]:
        def run(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute("SELECT lane FROM lanes WHERE depth > 0 ORDER BY lane")
            return [row[0] for row in rows]

        return await self._call(run)

    async def lease(self, lane: str, now: float, limit: int, lease_for: float) -> list[Job]:
        owner = self.owner

        def run(conn: sqlite3.Connection) -> list[Job]:
            rows = conn.execute(
                "UPDATE outbox SET due = ?, owner = ? WHERE id IN ("
                " SELECT id FROM outbox WHERE lane = ? AND due <= ? ORDER BY due LIMIT ?)"
                " RETURNING id, created, attempts, payload, history",
                (now + lease_for, owner, lane, now, limit),
            ).fetchall()
            rows.sort(key=lambda r: r[0])
            return [
                Job(
                    id=str(r[0]),
                    lane=lane,
                    created=r[1],
                    attempts=r[2],
                    payload=r[3],
                    history=decode_history(r[4]),
                )
                for r in rows
            ]

        return await self._call(run)

    async def next_due(self, lane: str) -> float | None:
        def run(conn: sqlite3.Connection) -> float | None:
            row = conn.execute("SELECT MIN(due) FROM outbox WHERE lane = ?", (lane,)).fetchone()
            return None if row is None else row[0]

        return await self._call(run)

    async def settle(
        self,
        done: list[Job],
        retry: list[Retry],
        dead: list[DeadLetter],
        outcomes: Sequence[Outcome] = (),
    ) -> None:
        owner = self.owner
        history = (
            [(o.event_id, o.job, o.transaction_id, o.at, encode(o)) for o in outcomes]
            if self.history_retention > 0
            else []
        )
        previews = [
            (o.preview, preview_session(o.preview), encode(o), preview_session(o.preview))
            for o in outcomes
            if o.preview
        ]
        retries = [
            (r.due, r.job.attempts, encode(r.job.history), int(r.job.id), owner) for r in retry
        ]

        delivered: dict[str, list[tuple[int]]] = {}
        for job in done:
            delivered.setdefault(job.lane, []).append((int(job.id),))

        def run(conn: sqlite3.Connection) -> None:
            removed: dict[str, int] = {}
            for lane, ids in delivered.items():
                # Delivered is delivered, whoever holds the lease now.
                count = _execute_rows(conn, "DELETE FROM outbox WHERE id IN ({})", "?", ids)
                removed[lane] = -count
            # A retry or a dead letter only from the lease holder: if our lease ran out and
            # another engine took the job, it owns the outcome.
            conn.executemany(
                "UPDATE outbox SET due = ?, owner = '', attempts = ?, history = ?"
                " WHERE id = ? AND owner = ?",
                retries,
            )
            for letter in dead:
                cur = conn.execute(
                    "DELETE FROM outbox WHERE id = ? AND owner = ?", (int(letter.id), owner)
                )
                if cur.rowcount:
                    _insert_dead(conn, letter)
                    removed[letter.lane] = removed.get(letter.lane, 0) - 1
            _add_depth(conn, removed.items())
            if history:
                _execute_rows(
                    conn,
                    "INSERT OR REPLACE INTO history (event_id, job, transaction_id, at, outcome)"
                    " VALUES {}",
                    "(?, ?, ?, ?, ?)",
                    history,
                )
            if previews:
                conn.executemany(
                    "INSERT OR REPLACE INTO preview_delivery (ref, session, outcome)"
                    " SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM preview WHERE id = ?)",
                    previews,
                )

        await self._call(run)

    async def release(self, jobs: list[Job], now: float) -> None:
        owner = self.owner
        rows = [(now, int(j.id), owner) for j in jobs]

        def run(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE outbox SET due = ?, owner = '' WHERE id = ? AND owner = ?", rows
            )

        await self._call(run)

    async def hasten(self, lane: str, now: float) -> int:
        def run(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "UPDATE outbox SET due = ? WHERE lane = ? AND due > ? AND owner = ''",
                (now, lane, now),
            )
            return cur.rowcount

        return await self._call(run)

    async def expire(self, lane: str, created_before: float, now: float, limit: int = 1000) -> int:
        def run(conn: sqlite3.Connection) -> int:
            rows = conn.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE lane = ?"
                " AND created < ? AND (owner = '' OR due <= ?) LIMIT ?)"
                " RETURNING id, created, attempts, payload, history",
                (lane, created_before, now, limit),
            ).fetchall()
            for row in rows:
                payload = decode_payload(row[3])
                history = decode_history(row[4])
                reason = f"max_age: not delivered within its max age ({len(history)} attempts)"
                _insert_dead(
                    conn,
                    DeadLetter(
                        id=str(row[0]),
                        lane=lane,
                        container=payload.container,
                        tag=payload.tag,
                        tag_type=payload.tag_type,
                        created=row[1],
                        died=now,
                        attempts=row[2],
                        reason=reason,
                        payload=row[3],
                        history=history,
                    ),
                )
            _add_depth(conn, [(lane, -len(rows))])
            return len(rows)

        return await self._call(run)

    async def depth(self) -> dict[str, int]:
        def run(conn: sqlite3.Connection) -> dict[str, int]:
            return dict(conn.execute("SELECT lane, depth FROM lanes").fetchall())

        return await self._call(run)

    async def forget_lanes(self, lanes: list[str]) -> list[str]:
        def run(conn: sqlite3.Connection) -> list[str]:
            # The writer thread runs this and every enqueue one at a time: a lane without a
            # job here has none, and an enqueue after it writes the row again. The outbox is
            # asked too (one index probe), not only the depth counter.
            removed: list[str] = []
            for start in range(0, len(lanes), MAX_ROWS):
                chunk = lanes[start : start + MAX_ROWS]
                sql = _rows_sql(_FORGET_LANES, "?", len(chunk))
                removed += [row[0] for row in conn.execute(sql, chunk).fetchall()]
            _execute_rows(
                conn, "DELETE FROM schedule WHERE lane IN ({})", "?", [(lane,) for lane in removed]
            )
            return removed

        return await self._call(run)

    def _release_dead_owners(self, conn: sqlite3.Connection) -> int:
        """Release leases held by processes of this host that are gone (a crash, SIGKILL)."""
        host = socket.gethostname()
        released = 0
        for (owner,) in conn.execute("SELECT DISTINCT owner FROM outbox WHERE owner != ''"):
            parts = owner.split(":")
            if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
                continue
            pid = int(parts[1])
            if owner in _OPEN_OWNERS or (pid != os.getpid() and _process_exists(pid)):
                continue  # a store open in this process, or another live worker of this machine
            cur = conn.execute(
                "UPDATE outbox SET due = ?, owner = '' WHERE owner = ?", (time.time(), owner)
            )
            released += cur.rowcount
        if released:
            log.info("released %d deliveries leased by a stopped process", released)
        return released

    # -- scheduled flush ------------------------------------------------------------------

    async def get_schedule(self, lane: str) -> float | None:
        def run(conn: sqlite3.Connection) -> float | None:
            row = conn.execute("SELECT next_flush FROM schedule WHERE lane = ?", (lane,)).fetchone()
            return None if row is None else float(row[0])

        return await self._call(run)

    async def set_schedule(self, lane: str, at: float) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO schedule (lane, next_flush) VALUES (?, ?)"
                " ON CONFLICT (lane) DO UPDATE SET next_flush = excluded.next_flush",
                (lane, at),
            )

        await self._call(run, durable=True)

    # -- dead letters ---------------------------------------------------------------------

    async def dead_letters(
        self, *, tag: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        where, args = _dead_filter(tag=tag, since=since)

        def run(conn: sqlite3.Connection) -> list[DeadLetter]:
            rows = conn.execute(
                f"SELECT {_DEAD_COLUMNS} FROM dead {where} ORDER BY died DESC, id DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
            return [_dead_from_row(r) for r in rows]

        return await self._call(run)

    async def dead_letter(self, id: str) -> DeadLetter | None:
        if not _row_id(id):
            return None

        def run(conn: sqlite3.Connection) -> DeadLetter | None:
            row = conn.execute(
                f"SELECT {_DEAD_COLUMNS} FROM dead WHERE id = ?", (int(id),)
            ).fetchone()
            return None if row is None else _dead_from_row(row)

        return await self._call(run)

    async def replay(self, *, ids: list[str] | None, tag: str | None, now: float) -> int:
        if ids is not None and not all(_row_id(i) for i in ids):
            return 0
        where, args = _dead_filter(tag=tag, ids=ids)

        def run(conn: sqlite3.Connection) -> int:
            rows = conn.execute(
                f"DELETE FROM dead {where} RETURNING lane, payload", args
            ).fetchall()
            conn.executemany(
                "INSERT INTO outbox (lane, due, created, payload) VALUES (?, ?, ?, ?)",
                [(lane, now, now, payload) for lane, payload in rows],
            )
            per_lane: dict[str, int] = {}
            for lane, _ in rows:
                per_lane[lane] = per_lane.get(lane, 0) + 1
            _add_depth(conn, per_lane.items())
            return len(rows)

        return await self._call(run, durable=True)

    async def purge(self, before: float) -> int:
        def run(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM dead WHERE died < ?", (before,)).rowcount

        return await self._call(run, durable=True)

    # -- delivery history and preview sessions -------------------------------------------

    async def history(
        self, *, event_id: str | None = None, transaction_id: str | None = None, limit: int = 200
    ) -> list[Outcome]:
        if event_id is not None:
            where, key = "event_id = ?", event_id
        elif transaction_id:
            # Every delivery of the events of that transaction, as Redis keeps them.
            where = "event_id IN (SELECT event_id FROM history WHERE transaction_id = ?)"
            key = transaction_id
        else:
            return []

        def run(conn: sqlite3.Connection) -> list[Outcome]:
            rows = conn.execute(
                f"SELECT outcome FROM history WHERE {where} ORDER BY at LIMIT ?", (key, limit)
            ).fetchall()
            return latest([decode_outcome(r[0]) for r in rows])

        return await self._call(run)

    async def prune(self, now: float) -> int:
        cutoff = now - self.history_retention

        def run(conn: sqlite3.Connection) -> int:
            removed = conn.execute("DELETE FROM history WHERE at < ?", (cutoff,)).rowcount
            ended = conn.execute("SELECT id FROM preview WHERE expires <= ?", (now,)).fetchall()
            for (id,) in ended:
                _end_preview(conn, id)
            return removed + len(ended)

        return await self._call(run)

    async def preview_open(self, id: str, expires: float, now: float) -> None:
        def run(conn: sqlite3.Connection) -> None:
            ended = conn.execute("SELECT id FROM preview WHERE expires <= ?", (now,)).fetchall()
            for (gone,) in ended:
                _end_preview(conn, gone)
            live = conn.execute("SELECT id FROM preview ORDER BY expires").fetchall()
            for (oldest,) in live[: max(0, len(live) - MAX_PREVIEWS + 1)]:
                _end_preview(conn, oldest)
            conn.execute("INSERT INTO preview (id, expires) VALUES (?, ?)", (id, expires))

        await self._call(run, durable=True)

    async def preview_expires(self, id: str, now: float) -> float | None:
        def run(conn: sqlite3.Connection) -> float | None:
            row = conn.execute(
                "SELECT expires FROM preview WHERE id = ? AND expires > ?", (id, now)
            ).fetchone()
            return None if row is None else float(row[0])

        return await self._call(run)

    async def preview_add(self, id: str, trace: bytes) -> None:
        def run(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "INSERT INTO preview_trace (session, trace)"
                " SELECT ?, ? WHERE EXISTS (SELECT 1 FROM preview WHERE id = ?)",
                (id, trace, id),
            )
            if cur.rowcount:
                conn.execute(
                    "DELETE FROM preview_trace WHERE session = ? AND seq <= ("
                    " SELECT seq FROM preview_trace WHERE session = ?"
                    " ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                    (id, id, MAX_TRACES),
                )

        await self._call(run)

    async def preview_read(self, id: str, now: float) -> PreviewData | None:
        def run(conn: sqlite3.Connection) -> PreviewData | None:
            row = conn.execute(
                "SELECT expires FROM preview WHERE id = ? AND expires > ?", (id, now)
            ).fetchone()
            if row is None:
                return None
            traces = conn.execute(
                "SELECT trace FROM preview_trace WHERE session = ? ORDER BY seq", (id,)
            ).fetchall()
            deliveries = conn.execute(
                "SELECT ref, outcome FROM preview_delivery WHERE session = ?", (id,)
            ).fetchall()
            return PreviewData(
                expires=float(row[0]),
                traces=[t[0] for t in traces],
                deliveries={ref: decode_outcome(o) for ref, o in deliveries},
            )

        return await self._call(run)

    # -- dedupe ---------------------------------------------------------------------------

    async def seen(self, key: str, ttl: float) -> bool:
        now = time.time()
        sweep = now - self._last_dedupe_sweep > 60
        if sweep:
            self._last_dedupe_sweep = now

        def run(conn: sqlite3.Connection) -> bool:
            if sweep:
                conn.execute("DELETE FROM dedupe WHERE expires <= ?", (now,))
            # One statement: insert, or take over an expired key; no change means seen.
            cur = conn.execute(
                "INSERT INTO dedupe (key, expires) VALUES (?, ?) ON CONFLICT (key) DO UPDATE"
                " SET expires = excluded.expires WHERE dedupe.expires <= ?",
                (key, now + ttl, now),
            )
            return cur.rowcount == 0

        return await self._call(run, durable=True)

    async def forget(self, keys: list[str]) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.executemany("DELETE FROM dedupe WHERE key = ?", [(key,) for key in keys])

        await self._call(run, durable=True)


_DEAD_COLUMNS = (
    "id, lane, container, tag, tag_type, created, died, attempts, reason, payload, response,"
    " history"
)


def _dead_filter(
    *, tag: str | None = None, since: float | None = None, ids: list[str] | None = None
) -> tuple[str, tuple[Any, ...]]:
    clauses: list[str] = []
    args: list[Any] = []
    if tag is not None:
        clauses.append("tag = ?")
        args.append(tag)
    if since is not None:
        clauses.append("died >= ?")
        args.append(since)
    if ids is not None:
        clauses.append(f"id IN ({','.join('?' * len(ids))})" if ids else "0")
        args.extend(int(i) for i in ids)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), tuple(args)


def _dead_from_row(row: tuple[Any, ...]) -> DeadLetter:
    return DeadLetter(
        id=str(row[0]),
        lane=row[1],
        container=row[2],
        tag=row[3],
        tag_type=row[4],
        created=row[5],
        died=row[6],
        attempts=row[7],
        reason=row[8],
        payload=row[9],
        response=decode_response(row[10]),
        history=decode_history(row[11]),
    )


def _insert_dead(conn: sqlite3.Connection, letter: DeadLetter) -> None:
    conn.execute(
        "INSERT INTO dead (lane, container, tag, tag_type, created, died, attempts, reason,"
        " payload, response, history) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            letter.lane,
            letter.container,
            letter.tag,
            letter.tag_type,
            letter.created,
            letter.died,
            letter.attempts,
            letter.reason,
            letter.payload,
            encode(letter.response) if letter.response is not None else None,
            encode(letter.history),
        ),
    )


_FORGET_LANES = (
    "DELETE FROM lanes WHERE lane IN ({}) AND depth <= 0"
    " AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.lane = lanes.lane) RETURNING lane"
)


class _Insert:
    """An enqueue's outbox rows. The writer inserts the rows of every enqueue of a group
    together (`run_all`), so a group costs a few statements whatever its size."""

    __slots__ = ("rows",)

    def __init__(self, rows: list[tuple[str, float, float, bytes]]) -> None:
        self.rows = rows

    def __call__(self, conn: sqlite3.Connection) -> None:
        self.run_all(conn, [self])

    @staticmethod
    def run_all(conn: sqlite3.Connection, inserts: list[_Insert]) -> None:
        rows = [row for insert in inserts for row in insert.rows]
        _execute_rows(
            conn, "INSERT INTO outbox (lane, due, created, payload) VALUES {}", "(?, ?, ?, ?)", rows
        )
        per_lane: dict[str, int] = {}
        for row in rows:
            per_lane[row[0]] = per_lane.get(row[0], 0) + 1
        _add_depth(conn, per_lane.items())


@functools.lru_cache(maxsize=64)
def _rows_sql(template: str, row: str, count: int) -> str:
    return template.format(", ".join([row] * count))


def _execute_rows(
    conn: sqlite3.Connection, template: str, row: str, rows: Sequence[tuple[Any, ...]]
) -> int:
    """Run `template` ("... VALUES {}", "... IN ({})") for all `rows`, `row` ("(?, ?)", "?")
    standing for each, with a few statements of up to MAX_ROWS rows (a power of two, so few
    texts to prepare); the rows changed. Not `executemany`, which steps once per row: each step
    hands the GIL to the event loop and waits to get it back, and under load the wait costs
    this thread (and the loop) far more than the row."""
    changed = 0
    start = 0
    while start < len(rows):
        count = min(MAX_ROWS, 1 << ((len(rows) - start).bit_length() - 1))
        params = [value for r in rows[start : start + count] for value in r]
        changed += conn.execute(_rows_sql(template, row, count), params).rowcount
        start += count
    return changed


def _add_depth(conn: sqlite3.Connection, changes: Iterable[tuple[str, int]]) -> None:
    added: list[tuple[str, int]] = []
    removed: list[tuple[str, int, int]] = []
    for lane, n in changes:
        if n > 0:
            added.append((lane, n))
        elif n < 0:
            removed.append((lane, n, n))
    # Additions (every enqueue) in one statement, not a step per lane (each step a turn of the
    # GIL for the writer): the new row's depth is what is added, so `excluded.depth` is it.
    _execute_rows(
        conn,
        "INSERT INTO lanes (lane, depth) VALUES {}"
        " ON CONFLICT (lane) DO UPDATE SET depth = MAX(depth + excluded.depth, 0)",
        "(?, ?)",
        added,
    )
    if removed:
        conn.executemany(
            "INSERT INTO lanes (lane, depth) VALUES (?, MAX(?, 0))"
            " ON CONFLICT (lane) DO UPDATE SET depth = MAX(depth + ?, 0)",
            removed,
        )


def _row_id(id: str) -> bool:
    """Whether a dead letter id someone typed can be one: SQLite row ids are 64-bit."""
    return id.isascii() and id.isdigit() and int(id) < 2**63


def _end_preview(conn: sqlite3.Connection, id: str) -> None:
    conn.execute("DELETE FROM preview WHERE id = ?", (id,))
    conn.execute("DELETE FROM preview_trace WHERE session = ?", (id,))
    conn.execute("DELETE FROM preview_delivery WHERE session = ?", (id,))


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
