"""The `cpms` command: run services, migrate, handle dead letters, simulate chargers, and the
commands each service adds (`ServiceSpec.commands`: ingest's seed-charger and operator create)."""
from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import json
import logging
import os
import signal
import sys

from aiohttp import web

from services.catalogue import SERVICES
from services.gateway import create_gateway_app
from services.simulator import command_line as simulator
from shared import db, dead_letters, workers
from shared.app import ON_FATAL, create_app
from shared.broker import Broker
from shared.config import CommonSettings, GatewaySettings, Settings, parse_listen_addr
from shared.errors import Conflict
from shared.logs import configure_logging
from shared.service import Command
from shared.startup import EXIT_REFUSED, DependencyRefused, wait_for

log = logging.getLogger("cpms")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cpms", description="Charge point management system core")
    parser.add_argument("--version", action="version", version=f"cpms {importlib.metadata.version('cpms-core')}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run every service in one process, or one service")
    run.add_argument("service", choices=["all", *SERVICES, "gateway"], help="'all' or one service name")
    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("service", nargs="*", choices=[[], *SERVICES], help="default: every service")
    groups: dict[str, argparse._SubParsersAction] = {}
    for command in (command for spec in SERVICES.values() for command in spec.commands):
        if len(command.words) == 1:
            parser_of = commands.add_parser(command.words[0], help=command.help)
        else:
            if command.words[0] not in groups:
                groups[command.words[0]] = commands.add_parser(command.words[0], help=command.group_help).add_subparsers(
                    dest="action", required=True)
            parser_of = groups[command.words[0]].add_parser(command.words[1], help=command.help)
        command.arguments(parser_of)
        parser_of.set_defaults(service_command=command)
    dlq = commands.add_parser("dlq", help="dead letters: list, show, replay, purge").add_subparsers(dest="action", required=True)
    dlq.add_parser("list", help="messages waiting in each dead-letter queue")
    show = dlq.add_parser("show", help="the dead letters of a queue, with why they failed (left in place)")
    show.add_argument("queue", help="a queue, e.g. sessions.charger-events")
    show.add_argument("--limit", type=int, default=20)
    replay = dlq.add_parser("replay", help="put dead letters back on their queue (through its inbox: nothing applies twice)")
    replay.add_argument("queue")
    replay.add_argument("--id", dest="message_id", default=None, help="only the message with this id")
    purge = dlq.add_parser("purge", help="drop the dead letters of a queue")
    purge.add_argument("queue")
    purge.add_argument("--yes", action="store_true", help="really drop them")
    simulator.add_arguments(commands.add_parser(
        "simulate", help="play OCPP 1.6J chargers against a gateway, for demos and load",
        description="OCPP 1.6J chargers that boot, charge (Authorize, StartTransaction, MeterValues, StopTransaction) "
                    "and answer every command of OCPP 1.6; prints a summary at the end"))
    return parser


def run(service: str) -> None:
    if service == "gateway":
        run_gateway()
        return
    services = list(SERVICES.values()) if service == "all" else [SERVICES[service]]
    settings = (Settings if service == "all" else SERVICES[service].settings).from_env()
    configure_logging(settings.log_level)
    if settings.workers > 1 and not workers.is_worker():
        shared_bytes = sum(spec.shared_memory(settings) for spec in services if spec.shared_memory)
        sys.exit(workers.supervise(["run", service], settings.workers, settings.consumer_workers, shared_bytes=shared_bytes))
    host, port = parse_listen_addr(settings.listen_addr_of(service))
    _install_uvloop()
    role = workers.role()
    log.info("starting", extra={"service": service, "listen": f"{host}:{port}" if role != "consumers" else None, "role": role})
    app = create_app(settings, services, public=list(SERVICES.values()), consumers=role != "http")
    # What start-up allocated (modules, models, the app) lives as long as the process: leave it out
    # of the collector's full passes. Measured under load: a full collection paused the event loop
    # (and every request in it) for about 50 ms before, and for 3 to 6 ms after.
    gc.freeze()
    exit_code = 0

    def stop(code: int) -> None:  # start-up failed for good after the process began listening
        nonlocal exit_code
        exit_code = code
        os.kill(os.getpid(), signal.SIGTERM)  # aiohttp's own graceful shutdown

    app[ON_FATAL] = stop
    if role == "consumers":
        asyncio.run(_run_without_port(app))
        sys.exit(exit_code)
    _warn_if_the_kernel_caps(settings.listen_backlog)
    listeners = [(app, host, port, True)]
    if service == "all":  # `make run` accepts chargers: the gateway on its own port, calling this process's API
        gateway_host, gateway_port = parse_listen_addr(settings.gateway_listen_addr)
        base_url = settings.base_url or f"http://127.0.0.1:{port}"
        listeners.append((create_gateway_app(settings, base_url=base_url), gateway_host, gateway_port, False))
    asyncio.run(_serve(listeners, settings, reuse_port=workers.is_worker()))
    sys.exit(exit_code)


def run_gateway() -> None:
    """`cpms run gateway`: the OCPP gateway alone, calling ingest at CPMS_BASE_URL with CPMS_API_KEY
    (the reference gateway's own variables). One process; run more of them to scale out."""
    settings = GatewaySettings.from_env()
    configure_logging(settings.log_level)
    host, port = parse_listen_addr(settings.gateway_listen_addr)
    base_url = settings.base_url or "http://127.0.0.1:8081"
    log.info("starting", extra={"service": "gateway", "listen": f"{host}:{port}", "ingest": base_url})
    _install_uvloop()
    _warn_if_the_kernel_caps(settings.listen_backlog)
    asyncio.run(_serve([(create_gateway_app(settings, base_url=base_url), host, port, True)], settings, reuse_port=False))


def _install_uvloop() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # optional speed-up
        pass


async def _serve(listeners: list[tuple[web.Application, str, int, bool]], settings: CommonSettings, *, reuse_port: bool) -> None:
    """Serve each app on its address until SIGTERM or SIGINT, then stop them: the gateway's
    chargers first (their calls answered through the API, which still listens), then all.
    An app that is not `required` (the gateway beside `cpms run all`) is left out when its port is
    taken: a reference gateway may hold :8080 on this machine, and works as before."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    runners: list[web.AppRunner] = []
    try:
        for app, host, port, required in listeners:
            runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=30,
                                   keepalive_timeout=settings.keepalive_timeout_seconds)
            runners.append(runner)
            await runner.setup()
            try:
                await web.TCPSite(runner, host, port, reuse_port=reuse_port or None, backlog=settings.listen_backlog).start()
            except OSError as exc:
                if required:
                    raise
                log.error(f"the OCPP gateway is not served: {host}:{port} is taken ({exc.strerror}); "
                          "set CPMS_GATEWAY_LISTEN_ADDR to a free address")
                runners.remove(runner)
                await runner.cleanup()
        await stopping.wait()
    finally:
        # The gateway's chargers first (no new ones; the calls in flight answered through the API,
        # which still listens; then 1001), then everything at once: the API stops listening as soon
        # as no charger's call needs it.
        for runner in runners[1:]:
            for site in list(runner.sites):
                await site.stop()
            await runner.app.shutdown()
        await asyncio.gather(*(runner.cleanup() for runner in reversed(runners)))


def _warn_if_the_kernel_caps(backlog: int, somaxconn: str = "/proc/sys/net/core/somaxconn") -> None:
    """The kernel shortens any accept queue to net.core.somaxconn: say so when it shortens ours."""
    try:
        cap = int(open(somaxconn).read())
    except (OSError, ValueError):  # not Linux: nothing to read
        return
    if backlog > cap:
        log.warning("CPMS_LISTEN_BACKLOG is above the kernel's net.core.somaxconn, which caps the accept queue; "
                    "raise the sysctl to use it all", extra={"listen_backlog": backlog, "somaxconn": cap})


async def _run_without_port(app: web.Application) -> None:
    """A consumers worker: the app's start-up and shutdown (its consumers, relays and tasks), no listener."""
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stopping.set)
    try:
        await stopping.wait()
    finally:
        await runner.cleanup()


async def migrate(settings: CommonSettings, names: list[str], *, out=sys.stdout) -> None:
    await wait_for("database", settings.database_url, lambda: db.ensure_database(settings.database_url))
    pool = await db.create_pool(settings.database_url, max_size=2)
    try:
        for name in names or list(SERVICES):
            spec = SERVICES[name]
            applied = await db.migrate(pool, spec.schema, spec.migrations)
            print(f"{name}: {len(applied)} migration(s) applied" + (f" ({', '.join(applied)})" if applied else ""), file=out)
    finally:
        await pool.close()


async def service_command(settings: CommonSettings, command: Command, args: argparse.Namespace) -> None:
    """A service's own command, against the database with every migration applied."""
    if command.check is not None:
        command.check(args)
    await migrate(settings, [], out=sys.stderr if command.stdout_alone else sys.stdout)
    conn = await db.connect(settings.database_url)
    try:
        output = await command.run(conn, args)
    finally:
        await conn.close()
    print(output)


async def dead_letter_command(settings: CommonSettings, args: argparse.Namespace) -> None:
    queue = dead_letters.queue_named(args.queue, settings.amqp_prefix) if args.action != "list" else None
    if args.action == "purge" and not args.yes:
        print(f"cpms dlq purge: this drops every dead letter of {queue.key}; add --yes to do it", file=sys.stderr)
        sys.exit(2)
    broker = Broker(settings.amqp_url, settings.amqp_prefix, publish_timeout=settings.publish_timeout_seconds)
    await wait_for("broker", settings.amqp_url, broker.connect)
    try:
        if args.action == "list":
            for key, depth in (await dead_letters.depths(broker)).items():
                print(f"{key}.dlq\t{depth}")
        elif args.action == "show":
            for letter in await dead_letters.peek(broker, queue, limit=args.limit):
                print(json.dumps({"messageId": letter.message_id, "routingKey": letter.routing_key, "reason": letter.reason,
                                  "deadLetteredAt": letter.dead_lettered_at, "body": letter.body.decode("utf-8", "replace")}))
        elif args.action == "replay":
            def progress(done: int, total: int) -> None:
                if done == total or done % 100 == 0:
                    print(f"replayed {done}/{total}", file=sys.stderr, flush=True)

            count = await dead_letters.replay(broker, queue, message_id=args.message_id, progress=progress)
            print(f"{count} message(s) replayed to {queue.key}")
        elif args.action == "purge":
            print(f"{await dead_letters.purge(broker, queue)} message(s) dropped from {queue.key}.dlq")
    finally:
        await broker.close()


def main(argv: list[str] | None = None) -> None:
    try:
        _main(argv)
    except DependencyRefused as exc:  # a wrong password or role: one clear line, no traceback
        log.error(str(exc))
        sys.exit(EXIT_REFUSED)


def _main(argv: list[str] | None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "run":
        run(args.service)
        return
    if args.command == "simulate":
        sys.exit(simulator.main(args))
    settings = CommonSettings.from_env()
    configure_logging(settings.log_level)
    if args.command == "migrate":
        asyncio.run(migrate(settings, args.service))
    elif args.command == "dlq":
        try:
            asyncio.run(dead_letter_command(settings, args))
        except dead_letters.UnknownQueue as exc:
            print(f"cpms dlq: {exc}", file=sys.stderr)
            sys.exit(2)
    else:
        command = args.service_command
        try:
            asyncio.run(service_command(settings, command, args))
        except (ValueError, Conflict) as exc:
            print(f"cpms {' '.join(command.words)}: {exc}", file=sys.stderr)
            sys.exit(2)


if __name__ == "__main__":
    main()
