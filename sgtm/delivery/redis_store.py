"""Redis store: one outbox shared by several instances behind a load balancer.

The same model as the SQLite store, so both pass one behavioural test suite: per lane a sorted
set of job ids by due time; leasing a job (a Lua script, atomic) moves its due time to the end of
the lease and records the owner, so the jobs of an instance that dies become due again for the
others when their leases run out (the guarantee consumer groups give with XAUTOCLAIM, plus
delayed retries, which streams lack). Retries and dead letters are settled only by the lease
holder; a delivery is deleted by whoever delivered it.

Every key shares the hash tag `{prefix}`, so the scripts stay valid on a Redis Cluster.
Durability is Redis's: run it with `appendonly yes` (`appendfsync everysec` loses at most a
second of acknowledged events if the Redis host itself crashes; `always` loses none).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

from sgtm.delivery.base import DeliveryUnavailable
from sgtm.delivery.policy import redact_url
from sgtm.delivery.store import (
    DEFAULT_HISTORY_RETENTION,
    MAX_PREVIEWS,
    MAX_TRACES,
    PREVIEW_LIFE,
    Attempt,
    DeadLetter,
    Job,
    NewJob,
    Outcome,
    PreviewData,
    Retry,
    decode_outcome,
    decode_payload,
    encode,
    latest,
    preview_session,
)

log = logging.getLogger("sgtm.delivery.redis")


class _Record(msgspec.Struct, array_like=True):
    lane: str
    created: float
    attempts: int
    payload: bytes
    history: list[Attempt] = []


_record_decoder = msgspec.msgpack.Decoder(_Record)
_dead_decoder = msgspec.msgpack.Decoder(DeadLetter)

# KEYS: due, jobs, owners. ARGV: now, limit, lease_until, owner.
_LEASE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local out = {}
for _, id in ipairs(ids) do
  local blob = redis.call('HGET', KEYS[2], id)
  if blob then
    redis.call('ZADD', KEYS[1], ARGV[3], id)
    redis.call('HSET', KEYS[3], id, ARGV[4])
    table.insert(out, id)
    table.insert(out, blob)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
"""

# KEYS: due, created, jobs, owners, lanes. ARGV: lane, ids...
_ACK = """
local n = 0
for i = 2, #ARGV do
  if redis.call('HDEL', KEYS[3], ARGV[i]) == 1 then
    n = n + 1
  end
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
  redis.call('HDEL', KEYS[4], ARGV[i])
end
if n > 0 then redis.call('HINCRBY', KEYS[5], ARGV[1], -n) end
return n
"""

# KEYS: due, jobs, owners. ARGV: owner, then (id, due, record) triples.
_RETRY = """
for i = 2, #ARGV, 3 do
  if redis.call('HGET', KEYS[3], ARGV[i]) == ARGV[1] then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2])
    redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i])
    redis.call('HDEL', KEYS[3], ARGV[i])
  end
end
return 0
"""

# KEYS: due, created, jobs, owners, lanes, dead, died.
# ARGV: lane, owner ('' = only unleased jobs, or leases that ended before `now`), now,
# then (id, died, dead letter) triples.
_DEAD = """
local n = 0
for i = 4, #ARGV, 3 do
  local id = ARGV[i]
  local holder = redis.call('HGET', KEYS[4], id)
  local mine
  if ARGV[2] == '' then
    local due = redis.call('ZSCORE', KEYS[1], id)
    mine = (not holder) or (due and tonumber(due) <= tonumber(ARGV[3]))
  else
    mine = holder == ARGV[2]
  end
  if mine and redis.call('HDEL', KEYS[3], id) == 1 then
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('HDEL', KEYS[4], id)
    redis.call('HSET', KEYS[6], id, ARGV[i + 2])
    redis.call('ZADD', KEYS[7], ARGV[i + 1], id)
    n = n + 1
  end
end
if n > 0 then redis.call('HINCRBY', KEYS[5], ARGV[1], -n) end
return n
"""

# KEYS: due, owners. ARGV: now. Jobs waiting for a retry become due now.
_HASTEN = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
local n = 0
for _, id in ipairs(ids) do
  if not redis.call('HGET', KEYS[2], id) then
    redis.call('ZADD', KEYS[1], ARGV[1], id)
    n = n + 1
  end
end
return n
"""

# KEYS: owners, due. ARGV: now, (id, owner) pairs. Leases given back at shutdown.
_RELEASE = """
for i = 2, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('ZADD', KEYS[2], ARGV[1], ARGV[i])
  end
end
return 0
"""

# KEYS: lanes, schedule, then each lane's due set. ARGV: the lanes (in KEYS' order).
# A lane whose depth is 0 and whose due set is empty has no job: its field goes, with its
# schedule. Atomic with the enqueue pipeline, which writes the field again.
_FORGET_LANES = """
local out = {}
for i = 1, #ARGV do
  local depth = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if depth <= 0 and redis.call('ZCARD', KEYS[i + 2]) == 0 then
    if redis.call('HDEL', KEYS[1], ARGV[i]) == 1 then
      table.insert(out, ARGV[i])
    end
    redis.call('HDEL', KEYS[2], ARGV[i])
  end
end
return out
"""
FORGET_LANES_AT_ONCE = 500  # lanes per script call: one call never holds Redis for long


class RedisStore:
    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "sgtm",
        owner: str | None = None,
        history: float = DEFAULT_HISTORY_RETENTION,
    ) -> None:
        self.url = url
        self.history_retention = history  # seconds; 0 keeps no delivery history
        self.prefix = prefix
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self._base = "{" + prefix + "}"
        self._redis: aioredis.Redis | None = None
        self._scripts: dict[str, Any] = {}
        self._pending: list[tuple[list[NewJob], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    # -- keys -----------------------------------------------------------------------------

    def _key(self, *parts: str) -> str:
        return ":".join((self._base, *parts))

    @property
    def _jobs(self) -> str:
        return self._key("jobs")

    @property
    def _owners(self) -> str:
        return self._key("owners")

    @property
    def _lanes(self) -> str:
        return self._key("lanes")

    def _due(self, lane: str) -> str:
        return self._key("due", lane)

    def _created(self, lane: str) -> str:
        return self._key("created", lane)

    # -- connection -----------------------------------------------------------------------

    async def open(self) -> None:
        self._redis = aioredis.Redis.from_url(
            self.url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30
        )
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            await self._redis.aclose()
            self._redis = None
            raise DeliveryUnavailable(f"redis {redact_url(self.url)}: {exc}") from exc
        for name, source in (
            ("lease", _LEASE),
            ("ack", _ACK),
            ("retry", _RETRY),
            ("dead", _DEAD),
            ("hasten", _HASTEN),
            ("release", _RELEASE),
            ("forget_lanes", _FORGET_LANES),
        ):
            self._scripts[name] = self._redis.register_script(source)
        try:
            config = await self._redis.config_get("appendonly")
            if config.get("appendonly") != "yes":
                log.warning(
                    "redis runs without appendonly: a Redis crash loses acknowledged events"
                )
        except RedisError:
            pass  # CONFIG is often disabled on managed Redis

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    @property
    def r(self) -> Any:  # redis-py's command types are too loose to help (bytes | str | ...)
        if self._redis is None:
            raise DeliveryUnavailable("store is not open")
        return self._redis

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self._scripts[name](keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise DeliveryUnavailable(f"redis: {exc}") from exc

    # -- outbox ---------------------------------------------------------------------------

    async def enqueue(self, jobs: list[NewJob]) -> None:
        # Group commit, as with SQLite: submits that arrive while a pipeline is in flight go
        # together in the next one, so many requests share one round trip.
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((jobs, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending())
        await future

    async def _write_pending(self) -> None:
        while self._pending:
            group, self._pending = self._pending, []
            error: BaseException | None = None
            try:
                await self._write([job for jobs, _ in group for job in jobs])
            except DeliveryUnavailable as exc:
                error = exc
            for _, future in group:
                if future.done():
                    continue
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(None)

    async def _write(self, jobs: list[NewJob]) -> None:
        pipe = self.r.pipeline(transaction=True)
        per_lane: dict[str, int] = {}
        records: dict[str, bytes] = {}
        for job in jobs:
            id = _new_id()
            records[id] = encode(_Record(job.lane, job.created, 0, job.payload))
            pipe.zadd(self._due(job.lane), {id: job.due})
            pipe.zadd(self._created(job.lane), {id: job.created})
            per_lane[job.lane] = per_lane.get(job.lane, 0) + 1
        if records:
            pipe.hset(self._jobs, mapping=records)
        for lane, count in per_lane.items():
            pipe.hincrby(self._lanes, lane, count)
        try:
            await pipe.execute()
        except (RedisError, OSError) as exc:
            raise DeliveryUnavailable(f"redis: {exc}") from exc

    async def lanes(self) -> list[str]:
        try:
            depths = await self.r.hgetall(self._lanes)
        except (RedisError, OSError) as exc:
            raise DeliveryUnavailable(f"redis: {exc}") from exc
        return sorted(k.decode() for k, depth in depths.items() if int(depth) > 0)

    async def lease(self, lane: str, now: float, limit: int, lease_for: float) -> list[Job]:
        flat = await self._run(
            "lease",
            [self._due(lane), self._jobs, self._owners],
            [now, limit, now + lease_for, self.owner],
        )
        jobs = []
        for i in range(0, len(flat), 2):
            record = _record_decoder.decode(flat[i + 1])
            jobs.append(
                Job(
                    id=flat[i].decode(),
                    lane=lane,
                    created=record.created,
                    attempts=record.attempts,
                    payload=record.payload,
                    history=record.history,
                )
            )
        jobs.sort(key=lambda j: j.id)
        return jobs

    async def next_due(self, lane: str) -> float | None:
        try:
            first = await self.r.zrange(self._due(lane), 0, 0, withscores=True)
        except (RedisError, OSError) as exc:
            raise DeliveryUnavailable(f"redis: {exc}") from exc
        return float(first[0][1]) if first else None

    async def settle(
        self,
        done: list[Job],
        retry: list[Retry],
        dead: list[DeadLetter],
        outcomes: Sequence[Outcome] = (),
    ) -> None:
        # One round trip: every lane's scripts in one pipeline (each script is atomic; outcomes
        # of different jobs need not be atomic together).
        calls: list[tuple[str, list[str], list[Any]]] = []
        by_lane: dict[str, list[str]] = {}
        for job in done:
            by_lane.setdefault(job.lane, []).append(job.id)
        for lane, ids in by_lane.items():
            keys = [self._due(lane), self._created(lane), self._jobs, self._owners, self._lanes]
            calls.append(("ack", keys, [lane, *ids]))
        retries: dict[str, list[Any]] = {}
        for r in retry:
            job = r.job
            record = encode(_Record(job.lane, job.created, job.attempts, job.payload, job.history))
            retries.setdefault(job.lane, []).extend([job.id, r.due, record])
        for lane, args in retries.items():
            calls.append(
                ("retry", [self._due(lane), self._jobs, self._owners], [self.owner, *args])
            )
        calls += self._dead_calls(dead, self.owner, time.time())
        await self._pipeline(calls, self._outcome_commands(outcomes) if outcomes else None)

    def _outcome_commands(self, outcomes: Sequence[Outcome]) -> Callable[[Any], None]:
        """Commands that record outcomes: per event a hash of its deliveries (and per
        transaction the set of its event ids) that expires after the retention; per preview
        session a hash of delivery states that lives no longer than a session can."""
        retention = max(1, int(self.history_retention))
        keep = self.history_retention > 0

        def add(pipe: Any) -> None:
            for outcome in outcomes:
                blob = encode(outcome)
                if keep:
                    events = self._key("history", "event", outcome.event_id)
                    pipe.hset(events, outcome.job, blob)
                    pipe.expire(events, retention)
                    if outcome.transaction_id:
                        orders = self._key("history", "transaction", outcome.transaction_id)
                        pipe.sadd(orders, outcome.event_id)
                        pipe.expire(orders, retention)
                if outcome.preview:
                    states = self._preview_key(preview_session(outcome.preview), "deliveries")
                    pipe.hset(states, outcome.preview, blob)
                    pipe.expire(states, int(PREVIEW_LIFE))

        return add

    def _dead_calls(
        self, letters: list[DeadLetter], owner: str, now: float
    ) -> list[tuple[str, list[str], list[Any]]]:
        by_lane: dict[str, list[Any]] = {}
        for letter in letters:
            by_lane.setdefault(letter.lane, []).extend([letter.id, letter.died, encode(letter)])
        calls: list[tuple[str, list[str], list[Any]]] = []
        for lane, args in by_lane.items():
            keys = [
                self._due(lane),
                self._created(lane),
                self._jobs,
                self._owners,
                self._lanes,
                self._key("dead"),
                self._key("died"),
            ]
            calls.append(("dead", keys, [lane, owner, now, *args]))
        return calls

    async def _dead(self, letters: list[DeadLetter], owner: str, now: float) -> int:
        return sum(
            int(moved) for moved in await self._pipeline(self._dead_calls(letters, owner, now))
        )

    async def _pipeline(
        self,
        calls: list[tuple[str, list[str], list[Any]]],
        extra: Callable[[Any], None] | None = None,
    ) -> list[Any]:
        """Run scripts (name, keys, args), then the commands `extra` adds, in one round trip.
        By hash: a server that lost its script cache (restarted) has them loaded again and the
        calls run again, which the scripts allow (a second run finds the work done and changes
        nothing; `extra`'s commands only set values)."""
        if not calls and extra is None:
            return []
        for attempt in (1, 2):
            pipe = self.r.pipeline(transaction=False)
            for name, keys, args in calls:
                pipe.evalsha(self._scripts[name].sha, len(keys), *keys, *args)
            if extra is not None:
                extra(pipe)
            try:
                return list(await pipe.execute())
            except NoScriptError:
                if attempt == 2:
                    raise DeliveryUnavailable("redis: scripts not loaded") from None
                await self._load_scripts()
            except (RedisError, OSError) as exc:
                raise DeliveryUnavailable(f"redis: {exc}") from exc
        raise AssertionError("unreachable")

    async def _load_scripts(self) -> None:
        try:
            for script in self._scripts.values():
                script.sha = await self.r.script_load(script.script)
        except (RedisError, OSError) as exc:
            raise DeliveryUnavailable(f"redis: {exc}") from exc

    async def release(self, jobs: list[Job], now: float) -> None:
        by_lane: dict[str, list[Any]] = {}
        for job in jobs:
            by_lane.setdefault(job.lane, []).extend([job.id, self.owner])
        for lane, args in by_lane.items():
            await self._run("release", [self._owners, self._due(lane)], [now, *args])

    async def hasten(self, lane: str, now: float) -> int:
        return int(await self._run("hasten", [self._due(lane), self._owners], [now]))

    async def expire(self, lane: str, created_before: float, now: float, limit: int = 1000) -> int:
        # Candidates oldest first, skipping jobs under a live lease (the script checks again).
        ids: list[bytes] = []
        offset = 0
        try:
            while len(ids) < limit:
                page = await self.r.zrangebyscore(
                    self._created(lane), "-inf", f"({created_before}", start=offset, num=limit
                )
                if not page:
                    break
                offset += len(page)
                owners = await self.r.hmget(self._owners, page)
                dues = await self.r.zmscore(self._due(lane), page)
                ids += [
                    i
                    for i, owner, due in zip(page, owners, dues, strict=True)
                    if owner is None or (due is not None and due <= now)
                ][: limit - len(ids)]
            if not ids:
                return 0
            blobs = await self.r.hmget(self._jobs, ids)
        except (RedisError, OSError) as exc:
            raise DeliveryUnavailable(f"redis: {exc}") from exc
        letters = []
        for raw_id, blob in zip(ids, blobs, strict=True):
            if blob is None:
                continue
            record = _record_decoder.decode(blob)
            payload = decode_payload(record.payload)
            letters.append(
                DeadLetter(
                    id=raw_id.decode(),
                    lane=lane,
                    container=payload.container,
                    tag=payload.tag,
                    tag_type=payload.tag_type,
                    created=record.created,
                    died=now,
                    attempts=record.attempts,
                    reason=(
                        "max_age: not delivered within its max age"
                        f" ({len(record.history)} attempts)"
                    ),
                    payload=record.payload,
                    history=record.history,
                )
            )
        return await self._dead(letters, "", now)

    async def depth(self) -> dict[str, int]:
        try:
            raw = await self.r.hgetall(self._lanes)
        except (RedisError, OSError) as exc:
            raise DeliveryUnavailable(f"redis: {exc}") from exc
        return {k.decode(): max(0, int(v)) for k, v in raw.items()}

    async def forget_lanes(self, lanes: list[str]) -> list[str]:
        removed: list[str] = []
        for start in range(0, len(lanes), FORGET_LANES_AT_ONCE):
            chunk = lanes[start : start + FORGET_LANES_AT_ONCE]
            keys = [self._lanes, self._key("schedule"), *map(self._due, chunk)]
            removed += [lane.decode() for lane in await self._run("forget_lanes", keys, chunk)]
        return removed

    # -- scheduled flush ------------------------------------------------------------------

    async def get_schedule(self, lane: str) -> float | None:
        try:
            value = await self.r.hget(self._key("schedule"), lane)
        except (RedisError, OSError) as exc:
            raise DeliveryUnavailable(f"redis: {exc}") from exc
        return None if value is None else float(value)

    async def set_schedule(self, lane: str, at: float) -> None:
        try:
            await self.r.hset(self._key("schedule"), lane, repr(at))
        except (RedisError, OSError) as exc:
            raise DeliveryUnavailable(f"redis: {exc}") from exc

    # -- dead letters ---------------------------------------------------------------------

    async def _dead_scan(self, since: float | None, page: int = 500) -> Any:
        """Dead letters newest first, a page at a time."""
        offset = 0
        low = "-inf" if since is None else since
        while True:
            ids = await self.r.zrevrangebyscore(
                self._key("died"), "+inf", low, start=offset, num=page
            )
            if not ids:
                return
            blobs = await self.r.hmget(self._key("dead"), ids)
            for raw_id, blob in zip(ids, blobs, strict=True):
                if blob is not None:
                    letter = _dead_decoder.decode(blob)
                    letter.id = raw_id.decode()
                    yield letter
            offset += page

    async def dead_letters(
        self, *, tag: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        out: list[DeadLetter] = []
        try:
            async for letter in self._dead_scan(since):
                if tag is None or letter.tag == tag:
                    out.append(letter)
                    if len(out) >= limit:
                        break
        except (RedisError, OSError) as exc:
            raise DeliveryUnavailable(f"redis: {exc}") from exc
        return out

    async def dead_letter(self, id: str) -> DeadLetter | None:
        try:
            blob = await self.r.hget(self._key("dead"), id)
        except (RedisError, OSError) as exc:
            raise DeliveryUnavailable(f"redis: {exc}") from exc
        if blob is None:
            return None
        letter = _dead_decoder.decode(blob)
        letter.id = id
        return letter

    async def replay(self, *, ids: list[str] | None, tag: str | None, now: float) -> int:
        if ids is not None:
            letters = [x for x in [await self.dead_letter(i) for i in ids] if x is not None]
            if tag is not None:
                letters = [x for x in letters if x.tag == tag]
        else:
            letters = await self.dead_letters(tag=tag, limit=10**9)
        if not letters:
            return 0
        pipe = self.r.pipeline(transaction=True)
        per_lane: dict[str, int] = {}
        records: dict[str, bytes] = {}
        for letter in letters:
            id = _new_id()
            records[id] = encode(_Record(letter.lane, now, 0, letter.payload))
            pipe.zadd(self._due(letter.lane), {id: now})
            pipe.zadd(self._created(letter.lane), {id: now})
            per_lane[letter.lane] = per_lane.get(letter.lane, 0) + 1
            pipe.hdel(self._key("dead"), letter.id)
            pipe.zrem(self._key("died"), letter.id)
        pipe.hset(self._jobs, mapping=records)
        for lane, count in per_lane.items():
            pipe.hincrby(self._lanes, lane, count)
        try:
            await pipe.execute()
        except (RedisError, OSError) as exc:
            raise DeliveryUnavailable(f"redis: {exc}") from exc
        return len(letters)

    async def purge(self, before: float) -> int:
        removed = 0
        try:
            while True:
                ids = await self.r.zrangebyscore(
                    self._key("died"), "-inf", f"({before}", start=0, num=1000
                )
                if not ids:
                    return removed
                pipe = self.r.pipeline(transaction=True)
                pipe.hdel(self._key("dead"), *ids)
                pipe.zrem(self._key("died"), *ids)
                await pipe.execute()
                removed += len(ids)
        except (RedisError, OSError) as exc:
            raise DeliveryUnavailable(f"redis: {exc}") from exc

    # -- delivery history and preview sessions -------------------------------------------

    def _preview_key(self, id: str, part: str) -> str:
        return self._key("preview", id, part)

    async def history(
        self, *, event_id: str | None = None, transaction_id: str | None = None, limit: int = 200
    ) -> list[Outcome]:
        try:
            if event_id is not None:
                events = [event_id]
            elif transaction_id:
                found = await self.r.smembers(self._key("history", "transaction", transaction_id))
                events = sorted(e.decode() for e in found)[:limit]
            else:
                return []
            outcomes: list[Outcome] = []
            for event in events:
                blobs = await self.r.hvals(self._key("history", "event", event))
                outcomes += [decode_outcome(b) for b in blobs]
        except (RedisError, OSError) as exc:
            raise DeliveryUnavailable(f"redis: {exc}") from exc
        return latest(outcomes)[:limit]

    async def prune(self, now: float) -> int:
        # History expires by itself (a TTL per event); ended sessions' keys go here.
        try:
            ended = await self.r.zrangebyscore(self._key("previews"), "-inf", now)
            if ended:
                await self._end_previews([i.decode() for i in ended])
        except (RedisError, OSError) as exc:
            raise DeliveryUnavailable(f"redis: {exc}") from exc
        return len(ended)

    async def _end_previews(self, ids: list[str]) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.zrem(self._key("previews"), *ids)
        for id in ids:
            pipe.delete(self._preview_key(id, "traces"), self._preview_key(id, "deliveries"))
        await pipe.execute()

    async def preview_open(self, id: str, expires: float, now: float) -> None:
        previews = self._key("previews")
        try:
            ended = await self.r.zrangebyscore(previews, "-inf", now)
            live = await self.r.zrangebyscore(previews, f"({now}", "+inf")
            ended += live[: max(0, len(live) - MAX_PREVIEWS + 1)]
            if ended:
                await self._end_previews([i.decode() for i in ended])
            await self.r.zadd(previews, {id: expires})
        except (RedisError, OSError) as exc:
            raise DeliveryUnavailable(f"redis: {exc}") from exc

    async def preview_expires(self, id: str, now: float) -> float | None:
        try:
            expires = await self.r.zscore(self._key("previews"), id)
        except (RedisError, OSError) as exc:
            raise DeliveryUnavailable(f"redis: {exc}") from exc
        return None if expires is None or expires <= now else float(expires)

    async def preview_add(self, id: str, trace: bytes) -> None:
        expires = await self.preview_expires(id, time.time())
        if expires is None:
            return
        traces = self._preview_key(id, "traces")
        try:
            pipe = self.r.pipeline(transaction=True)
            pipe.rpush(traces, trace)
            pipe.ltrim(traces, -MAX_TRACES, -1)
            pipe.expireat(traces, int(expires) + 1)
            await pipe.execute()
        except (RedisError, OSError) as exc:
            raise DeliveryUnavailable(f"redis: {exc}") from exc

    async def preview_read(self, id: str, now: float) -> PreviewData | None:
        expires = await self.preview_expires(id, now)
        if expires is None:
            return None
        try:
            traces = await self.r.lrange(self._preview_key(id, "traces"), 0, -1)
            states = await self.r.hgetall(self._preview_key(id, "deliveries"))
        except (RedisError, OSError) as exc:
            raise DeliveryUnavailable(f"redis: {exc}") from exc
        return PreviewData(
            expires=expires,
            traces=list(traces),
            deliveries={ref.decode(): decode_outcome(blob) for ref, blob in states.items()},
        )

    # -- dedupe ---------------------------------------------------------------------------

    async def seen(self, key: str, ttl: float) -> bool:
        try:
            fresh = await self.r.set(
                self._key("dedupe", key), b"1", nx=True, px=max(1, int(ttl * 1000))
            )
        except (RedisError, OSError) as exc:
            raise DeliveryUnavailable(f"redis: {exc}") from exc
        return not fresh

    async def forget(self, keys: list[str]) -> None:
        if not keys:
            return
        try:
            await self.r.delete(*(self._key("dedupe", key) for key in keys))
        except (RedisError, OSError) as exc:
            raise DeliveryUnavailable(f"redis: {exc}") from exc


_sequence = itertools.count()


def _new_id() -> str:
    """Sortable by creation (milliseconds, then this process's order), unique across instances
    (random suffix)."""
    return f"{int(time.time() * 1000):013d}{next(_sequence) % 10**8:08d}{os.urandom(3).hex()}"
