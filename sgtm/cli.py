"""The `sgtm` command: serve | validate | emulate | test | diff | audit | schema | plugins | dlq."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import msgspec

from sgtm import __version__
from sgtm.config import ContainerSpec, load_containers
from sgtm.limits import ServerLimits, limits_from_env
from sgtm.plugins import PluginError, Registry, load_registry
from sgtm.yamlsource import ConfigErrors

if TYPE_CHECKING:
    from sgtm.record import TrafficRecorder


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sgtm", description="Server-side tagging container.")
    parser.add_argument("--version", action="version", version=f"sgtm {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the tagging server")
    serve.add_argument(
        "-c", "--config", action="append", required=True, help="container file or directory"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--role",
        choices=["all", "ingest", "deliver"],
        default="all",
        help="all: ingest and deliver; ingest: answer hits and store their requests;"
        " deliver: send what is stored (serves only /healthz, /readyz, /metrics)",
    )
    serve.add_argument("--log-level", default=os.environ.get("SGTM_LOG_LEVEL", "info"))
    serve.add_argument(
        "--record",
        metavar="FILE",
        default=None,
        help="append incoming tagging requests to FILE as `sgtm emulate --requests` lines",
    )
    serve.add_argument(
        "--record-max-bytes",
        type=int,
        default=None,
        help="stop recording when FILE reaches this size (default 256 MiB)",
    )
    serve.add_argument(
        "--watch",
        action="store_true",
        help="reload the containers when their files change (SIGHUP always reloads)",
    )
    serve.add_argument(
        "--watch-interval",
        default="1s",
        help="how often --watch looks at the files (default 1s; a change is loaded once the"
        " files held still for one interval)",
    )

    validate = commands.add_parser("validate", help="check container files; print every error")
    validate.add_argument("paths", nargs="+")

    emulate = commands.add_parser("emulate", help="run a container on recorded input, send nothing")
    emulate.add_argument("-c", "--config", action="append", required=True)
    source = emulate.add_mutually_exclusive_group(required=True)
    source.add_argument("--requests", help="NDJSON file of requests ('-' for stdin)")
    source.add_argument("--events", help="NDJSON file of event data dicts ('-' for stdin)")
    source.add_argument("--url", help="a single request's path and query (or full URL)")
    emulate.add_argument("--method", default=None)
    emulate.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    emulate.add_argument("--body", default="")
    emulate.add_argument("--ip", default="127.0.0.1")
    emulate.add_argument("--host", default=None, help="Host header / container to use")
    emulate.add_argument("--now", default=None, help="fixed clock: epoch seconds or ISO 8601")
    emulate.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the ids clients and tags generate (default: 0 with --now, else random)",
    )
    emulate.add_argument("--pretty", action="store_true", help="indented JSON")

    commands.add_parser("schema", help="print the JSON Schema of container files")

    plugins = commands.add_parser("plugins", help="list installed plugins and their types")
    plugins.add_argument("--json", action="store_true")

    from sgtm import audit, diff, dlq, history, scenarios

    audit.add_parser(commands)
    dlq.add_parser(commands)
    history.add_parser(commands)
    scenarios.add_parser(commands)
    diff.add_parser(commands)

    args = parser.parse_args(argv)
    try:
        handler = {
            "serve": cmd_serve,
            "validate": cmd_validate,
            "emulate": cmd_emulate,
            "schema": cmd_schema,
            "plugins": cmd_plugins,
            "audit": audit.run,
            "dlq": dlq.run,
            "trace": history.run,
            "test": scenarios.run,
            "diff": diff.run,
        }[args.command]
        return handler(args)
    except PluginError as exc:
        print(f"sgtm: {exc}", file=sys.stderr)
        return 2


def _load(paths: list[str], reg: Registry | None = None) -> list[ContainerSpec] | None:
    try:
        specs = load_containers(list(paths), reg or load_registry())
    except ConfigErrors as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return None
    for spec in specs:
        for warning in spec.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    return specs


def cmd_validate(args: argparse.Namespace) -> int:
    specs = _load(args.paths)
    if specs is None:
        return 1
    for spec in specs:
        hosts = ", ".join(spec.hosts) or "(default)"
        counts = f"{len(spec.clients)} client(s), {len(spec.tags)} tag(s)"
        print(f"ok: {spec.file}: container '{spec.name}' for {hosts}: {counts}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from sgtm import logs
    from sgtm.app import create_app

    try:
        limits = limits_from_env()
    except ValueError as exc:
        print(f"sgtm serve: {exc}", file=sys.stderr)
        return 2
    recorder = _recorder(args)
    if isinstance(recorder, str):
        print(f"sgtm serve: {recorder}", file=sys.stderr)
        return 2
    from sgtm.delivery.policy import parse_duration
    from sgtm.reload import ReloadOptions, defer_sighup, files_version

    try:
        interval = parse_duration(args.watch_interval)
    except ValueError as exc:
        print(f"sgtm serve: --watch-interval: {exc}", file=sys.stderr)
        return 2
    if interval <= 0:
        print("sgtm serve: --watch-interval: must be more than 0", file=sys.stderr)
        return 2
    defer_sighup()  # a SIGHUP while starting is acted on once the server listens
    version = files_version(args.config)  # before loading: see ReloadOptions.version
    plugins = load_registry()
    specs = _load(args.config, plugins)
    if specs is None:
        return 1
    problem = asyncio.run(_store_problem(specs))
    if problem is not None:
        # One clear line rather than a traceback from each worker's startup.
        print(f"sgtm serve: delivery store unavailable: {problem}", file=sys.stderr)
        return 1
    # Refusals above are plain lines on stderr; from here on, logs are JSON lines.
    logs.setup(args.log_level)
    options = uvicorn_options(args.host, args.port, limits)
    _raise_open_files_limit()
    if args.workers > 1:
        os.environ["SGTM_CONFIG"] = os.pathsep.join(str(Path(p).resolve()) for p in args.config)
        os.environ["SGTM_LOG_LEVEL"] = args.log_level
        os.environ["SGTM_ROLE"] = args.role
        os.environ["SGTM_WATCH"] = str(interval) if args.watch else ""
        config = uvicorn.Config(
            "sgtm.app:app_from_env", factory=True, workers=args.workers, **options
        )
        from sgtm.workers import ReloadingWorkers

        with contextlib.suppress(KeyboardInterrupt):
            ReloadingWorkers(config, sockets=[config.bind_socket()]).run()
    else:
        watch = interval if args.watch else None
        reload = ReloadOptions(tuple(args.config), watch=watch, version=version, registry=plugins)
        app = create_app(specs, limits=limits, role=args.role, reload=reload, recorder=recorder)
        uvicorn.run(app, **options)
    return 0


def _recorder(args: argparse.Namespace) -> TrafficRecorder | str | None:
    """The `--record` writer, None without it, or why it cannot be."""
    from sgtm.record import DEFAULT_MAX_BYTES, TrafficRecorder

    if args.record is None:
        return None if args.record_max_bytes is None else "--record-max-bytes needs --record"
    if args.workers > 1:
        return "--record writes from one process: use it with --workers 1"
    if args.role == "deliver":
        return "--record records the hits a server answers: not with --role deliver"
    try:
        open(args.record, "ab").close()
    except OSError as exc:
        return f"--record: {exc}"
    max_bytes = args.record_max_bytes if args.record_max_bytes is not None else DEFAULT_MAX_BYTES
    if max_bytes <= 0:
        return "--record-max-bytes: expected a positive number of bytes"
    return TrafficRecorder(args.record, max_bytes)


def uvicorn_options(host: str, port: int, limits: ServerLimits) -> dict[str, Any]:
    """How `sgtm serve` runs uvicorn (tests run the same server in-process with these)."""
    return {
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": False,
        "proxy_headers": False,  # trusted proxies are per container, decided by sgtm itself
        "server_header": False,
        "timeout_graceful_shutdown": 15,
        # uvicorn's httptools protocol with header and write deadlines and caps (sgtm/protocol.py);
        # named by path so --workers processes load it too. No route speaks WebSocket.
        "http": "sgtm.protocol:SgtmHttpProtocol",
        "ws": "none",
        "timeout_keep_alive": limits.keepalive_timeout,
        "limit_concurrency": limits.max_connections or None,
        "backlog": limits.backlog,
    }


def _raise_open_files_limit() -> None:
    """Lift the soft open-files limit to the hard one (as Go programs do at start): a container's
    soft limit can be 1024, fewer than SGTM_MAX_CONNECTIONS plus the store's and vendors'."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        # If refused, the soft limit stays and SGTM_MAX_CONNECTIONS may need lowering (docs).
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def _store_problem(specs: list[ContainerSpec]) -> str | None:
    """Why the containers' delivery store cannot be opened, or None when it can."""
    from sgtm.composition import open_store, store_for
    from sgtm.delivery.base import DeliveryUnavailable

    store = open_store(store_for(specs))
    try:
        await store.open()
    except DeliveryUnavailable as exc:
        return str(exc)
    await store.close()
    return None


def _parse_now(value: str | None) -> float:
    from sgtm.emulate import parse_now

    return time.time() if value is None else parse_now(value)


def seed_for(now: str | None, seed: int | None) -> int:
    """The seed of generated ids: as given, else fixed when the clock is (`--now`), so the same
    input prints the same bytes; else random."""
    if seed is not None:
        return seed
    return 0 if now is not None else secrets.randbits(64)


def _open(path: str) -> TextIO:
    return sys.stdin if path == "-" else open(path, encoding="utf-8")


def cmd_emulate(args: argparse.Namespace) -> int:
    from sgtm.emulate import Emulator, InputError, RequestLine, ndjson, request_lines

    specs = _load(args.config)
    if specs is None:
        return 1
    try:
        now = _parse_now(args.now)
    except ValueError:
        print(f"sgtm emulate: --now: not a time: {args.now!r}", file=sys.stderr)
        return 2
    emulator = Emulator(specs, now, seed_for(args.now, args.seed))
    out = sys.stdout
    # The output is UTF-8 JSON: written as the encoder's bytes, into one reused buffer, when
    # stdout has a binary layer (not when tests capture it as text). Decoding each line to str
    # for the text layer to encode it again cost more than the encoding itself.
    binary = getattr(out, "buffer", None)
    if binary is not None:
        out.flush()
    encoder = msgspec.json.Encoder()
    buffer = bytearray()

    def write(result: dict[str, Any]) -> None:
        data: bytes | bytearray
        if args.pretty:
            data = msgspec.json.format(encoder.encode(result), indent=2) + b"\n"
        else:
            encoder.encode_into(result, buffer)
            buffer.extend(b"\n")
            data = buffer
        if binary is not None:
            binary.write(data)
        else:
            out.write(data.decode())

    async def run() -> None:
        if args.url is not None:
            headers = {}
            for raw in args.header:
                name, sep, value = raw.partition(":")
                if not sep:
                    raise InputError(f"--header {raw!r}: expected 'Name: value'")
                headers[name.strip()] = value.strip()
            method = args.method or ("POST" if args.body else "GET")
            line = RequestLine(
                url=args.url,
                method=method,
                headers=headers,
                body=args.body,
                ip=args.ip,
                host=args.host,
            )
            write(await emulator.request(line))
            return
        if args.requests is not None:
            with _open(args.requests) as handle:
                for line in request_lines(handle):
                    write(await emulator.request(line))
            return
        with _open(args.events) as handle:
            for number, value in ndjson(handle):
                if not isinstance(value, dict):
                    raise InputError(f"line {number}: an event must be a JSON object")
                write(await emulator.events([value], args.host))

    try:
        asyncio.run(run())
    except InputError as exc:
        print(f"sgtm emulate: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"sgtm emulate: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from sgtm.schema import container_schema

    sys.stdout.write(
        msgspec.json.format(
            msgspec.json.encode(container_schema(load_registry())), indent=2
        ).decode()
        + "\n"
    )
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from sgtm.plugin import CONTRACT_VERSION

    reg = load_registry()
    if args.json:
        rows = [
            msgspec.structs.asdict(p) if isinstance(p, msgspec.Struct) else vars(p)
            for p in reg.plugins
        ]
        listing = {"sgtm": __version__, "contract": CONTRACT_VERSION, "plugins": rows}
        sys.stdout.write(msgspec.json.encode(listing).decode() + "\n")
        return 0
    print(f"sgtm {__version__}, plugin contract {CONTRACT_VERSION}")
    for plugin in reg.plugins:
        print(f"{plugin.name} {plugin.version}")
        for label, names in (
            ("clients", plugin.client_types),
            ("tags", plugin.tag_types),
            ("variables", plugin.variable_types),
        ):
            if names:
                print(f"  {label}: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
