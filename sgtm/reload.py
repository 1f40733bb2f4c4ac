"""Hot reload of `sgtm serve`'s containers (docs/operations.md, "Reloading").

`LiveContainers.current` is the one reference to the config being served: a `ContainerSet`
(one version of the files: its containers and the host router over them). A request reads it
once, when it arrives, and keeps that container to its end, so a reload never mixes two versions
in one answer. `Reloader` makes a new set: the files are read, hashed and validated on a thread
(never on the event loop); an invalid version is logged with every error, positioned as
`sgtm validate` prints them, and the old one keeps serving; a valid one replaces the routes of
the delivery engine and the set in one synchronous step. Triggers: SIGHUP, and with `--watch`
a poll of the files' names, sizes and modification times.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from sgtm.composition import routes_for, store_for
from sgtm.config import ContainerSpec, config_files, load_containers
from sgtm.container import Container, DedupeStore
from sgtm.delivery.base import Delivery
from sgtm.delivery.engine import DeliveryEngine
from sgtm.ingress import HostRouter
from sgtm.metrics import Metrics
from sgtm.plugins import Registry, load_registry
from sgtm.yamlsource import ConfigError, ConfigErrors

log = logging.getLogger("sgtm.reload")

VERSION_INFO = "sgtm_config_version_info"
RELOADS = "sgtm_config_reload_total"
LAST_FAILURE = "sgtm_config_last_reload_failure_timestamp_seconds"
LAST_SUCCESS = "sgtm_config_last_reload_success_timestamp_seconds"


@dataclass(frozen=True, slots=True, eq=False)
class ContainerSet:
    """One version of the config, as served: never changed once built."""

    version: str
    containers: tuple[Container, ...]
    router: HostRouter
    by_name: Mapping[str, Container]

    @property
    def specs(self) -> list[ContainerSpec]:
        return [c.spec for c in self.containers]


def container_set(
    specs: Sequence[ContainerSpec],
    version: str,
    delivery: Delivery,
    dedupe: DedupeStore,
    metrics: Metrics,
    previous: ContainerSet | None = None,
) -> ContainerSet:
    containers = tuple(
        Container(spec, delivery, dedupe, metrics=metrics, log_refusals=True) for spec in specs
    )
    if previous is not None:
        for container in containers:
            before = previous.by_name.get(container.name)
            if before is not None:
                # Senders' rates (token buckets) are the sender's, not the version's: a reload
                # must not hand every rate-limited sender a full bucket.
                container.limiter = before.limiter
    by_name = {c.name: c for c in containers}
    return ContainerSet(version, containers, HostRouter(containers), by_name)


class LiveContainers:
    """The swap point: `current` is replaced whole, never changed in place."""

    def __init__(self, current: ContainerSet) -> None:
        self.current = current


def files_version(paths: Sequence[str | Path]) -> str:
    """A short hash of the container files' names and bytes (what `sgtm_config_version_info`
    shows): equal files give equal versions on every instance."""
    digest = hashlib.sha256()
    for file in config_files(list(paths)):
        try:
            data = file.read_bytes()
        except OSError:
            data = b"\0unreadable"
        digest.update(f"{file.name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:12]


def load_version(
    paths: Sequence[str | Path], registry: Registry, environ: Mapping[str, str] | None = None
) -> tuple[list[ContainerSpec], str]:
    """The containers and their version (blocking: run it on a thread). The files are hashed
    before and after loading; a file written meanwhile is loaded again, so the version always
    names what was loaded. ConfigErrors when invalid."""
    env = dict(environ) if environ is not None else None
    for _ in range(3):
        before = files_version(paths)
        specs = load_containers(list(paths), registry, env)
        if files_version(paths) == before:
            return specs, before
    error = ConfigError(str(paths[0]), 1, 1, "", "the files kept changing while being loaded")
    raise ConfigErrors([error])


def snapshot(paths: Sequence[str | Path]) -> tuple[tuple[str, int, int], ...]:
    """What `--watch` compares: each container file's path, size and modification time."""
    out = []
    for file in config_files(list(paths)):
        try:
            stat = file.stat()
        except OSError:
            out.append((str(file), -1, -1))
            continue
        out.append((str(file), stat.st_size, stat.st_mtime_ns))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ReloadOptions:
    """Where `sgtm serve` reloads its containers from, and what starts a reload."""

    paths: tuple[str | Path, ...]
    watch: float | None = None  # poll the files every this many seconds; None: SIGHUP only
    environ: Mapping[str, str] | None = None  # ${ENV} substitution (default: os.environ)
    registry: Registry | None = None  # the plugins the server loaded with (default: installed)
    sighup: bool = True  # only a process's main thread can take signals
    # The version loaded, hashed before loading it (else when the server is built): a file
    # written while it loaded then makes the next reload load it again.
    version: str = ""


class Reloader:
    def __init__(
        self,
        live: LiveContainers,
        options: ReloadOptions,
        delivery: Delivery,
        dedupe: DedupeStore,
        metrics: Metrics,
        on_swap: Callable[[ContainerSet], None] | None = None,
    ) -> None:
        self.live = live
        self.metrics = metrics
        self.on_swap = on_swap  # what else follows the config (the alerter's rules)
        self.registry = options.registry or load_registry()
        self.options = options
        self.delivery = delivery
        self.dedupe = dedupe
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._again = False

    async def reload(self, why: str = "requested") -> bool:
        """Load the files again and serve them if they are valid; False when they are not (the
        errors are logged, the old version keeps serving). One reload at a time."""
        async with self._lock:
            return await self._reload(why)

    async def _reload(self, why: str) -> bool:
        started = time.monotonic()
        old = self.live.current
        try:
            specs, version = await asyncio.to_thread(
                load_version, self.options.paths, self.registry, self.options.environ
            )
        except ConfigErrors as exc:
            return self._failed(why, old, [str(error) for error in exc.errors])
        except Exception as exc:  # a plugin failing to load, an unreadable directory
            return self._failed(why, old, [f"{type(exc).__name__}: {exc}"])
        if version == old.version:
            self.metrics.inc(RELOADS, result="unchanged")
            log.info("config unchanged", extra={"version": version, "trigger": why})
            return True
        engine = self.delivery if isinstance(self.delivery, DeliveryEngine) else None
        try:
            new = container_set(specs, version, self.delivery, self.dedupe, self.metrics, old)
            routes = routes_for(specs) if engine is not None else None
        except Exception as exc:
            return self._failed(why, old, [f"{type(exc).__name__}: {exc}"])
        stores = store_for(old.specs), store_for(specs)
        # From here to the swap nothing awaits: routes and containers change together.
        try:
            handed_back = (
                engine.reroute(routes) if engine is not None and routes is not None else []
            )
        except ValueError as exc:
            return self._failed(why, old, [str(exc)])
        self.live.current = new
        if self.on_swap is not None:
            self.on_swap(new)
        self.show_version(version)
        self.metrics.inc(RELOADS, result="success")
        self.metrics.gauge(LAST_SUCCESS, time.time())
        log.info(
            "config reloaded",
            extra={
                "version": version,
                "previous": old.version,
                "trigger": why,
                "containers": len(new.containers),
                "ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        if stores[0] != stores[1]:
            log.warning(
                "delivery store settings changed: they apply after a restart; this process"
                " keeps its store",
                extra={"store": stores[0].describe(), "configured": stores[1].describe()},
            )
        if engine is not None:
            await engine.release_retired(handed_back)
        return True

    def _failed(self, why: str, old: ContainerSet, errors: list[str]) -> bool:
        self.metrics.inc(RELOADS, result="failure")
        self.metrics.gauge(LAST_FAILURE, time.time())
        log.error(
            "config reload failed: version %s keeps serving",
            old.version,
            extra={"version": old.version, "trigger": why, "errors": errors},
        )
        return False

    def request(self, why: str) -> None:
        """Start a reload from the event loop's thread (a signal handler); one that arrives
        while another runs makes one more after it, so the last change is always seen."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._requested(why))
        else:
            self._again = True

    async def _requested(self, why: str) -> None:
        while True:
            self._again = False
            await self.reload(why)
            if not self._again:
                return

    async def _watch(self, interval: float) -> None:
        """Reload when the files' snapshot changed and then held still for one interval (an
        editor's save in several writes is loaded once, whole)."""
        paths = self.options.paths
        seen = await asyncio.to_thread(snapshot, paths)
        # A change between loading and this first look shows in the version (hashed before
        # loading), not in the snapshot: load it now rather than miss it.
        if await asyncio.to_thread(files_version, paths) != self.live.current.version:
            await self.reload("watch")
        pending = None
        while True:
            await asyncio.sleep(interval)
            try:
                now = await asyncio.to_thread(snapshot, paths)
            except OSError as exc:
                log.warning("--watch: cannot list the config: %s", exc)
                continue
            if now == seen:
                pending = None
            elif now == pending:
                seen, pending = now, None
                await self.reload("watch")
            else:
                pending = now

    def show_version(self, version: str) -> None:
        """The live version as an info metric: one series, the live one."""
        self.metrics.clear(VERSION_INFO)
        self.metrics.gauge(VERSION_INFO, 1.0, version=version)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """SIGHUP (in the main thread) and the watcher, for the server's lifetime."""
        loop = self.loop = asyncio.get_running_loop()
        self.show_version(self.live.current.version)
        # The version served was loaded at start; 0: no reload has failed (so a rule can
        # compare the two from the first scrape).
        self.metrics.gauge(LAST_SUCCESS, time.time())
        self.metrics.gauge(LAST_FAILURE, 0.0)
        on_signal = self.options.sighup and threading.current_thread() is threading.main_thread()
        if on_signal:
            loop.add_signal_handler(signal.SIGHUP, self.request, "SIGHUP")
            if _early_sighup.is_set():  # one came while the server was starting
                _early_sighup.clear()
                self.request("SIGHUP")
        watcher = None
        if self.options.watch:
            watcher = loop.create_task(self._watch(self.options.watch), name="sgtm-watch")
        try:
            yield
        finally:
            if on_signal:
                loop.remove_signal_handler(signal.SIGHUP)
                signal.signal(signal.SIGHUP, signal.SIG_IGN)  # shutting down: nothing to reload
            for task in (watcher, self._task):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task


_early_sighup = threading.Event()


def defer_sighup() -> None:
    """Until the server's reloader listens, remember a SIGHUP instead of dying of it (its default
    action): the reloader acts on it once it starts."""

    def remember(signum: int, frame: FrameType | None) -> None:
        _early_sighup.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGHUP, remember)
