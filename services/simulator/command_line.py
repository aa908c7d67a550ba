"""`cpms simulate`: its arguments, the registration it may do first, and the summary it prints."""
from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import re
import signal
import sys
from uuid import UUID

import aiohttp

from services.simulator.charger import Behaviour, Tally
from services.simulator.fleet import Fleet, simulate
from services.simulator.registration import RegistrationFailed, register
from shared.ocpp_commands import CSMS_ACTIONS


def _count(minimum: int):
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    return parse


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0 or math.isnan(value):
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _linger(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be 0 or more (inf: until interrupted)")
    return value


def _text(pattern: re.Pattern, low: int, high: int, what: str):
    def parse(text: str) -> str:
        if not low <= len(text) <= high or not pattern.match(text):
            raise argparse.ArgumentTypeError(f"{what}, {low} to {high} characters")
        return text

    return parse


def _gateway_url(text: str) -> str:
    if not text.startswith(("ws://", "wss://")):
        raise argparse.ArgumentTypeError("a ws:// or wss:// URL, e.g. ws://localhost:8080/ocpp16")
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Behaviour()
    where = parser.add_argument_group("the gateway and the chargers")
    where.add_argument("--url", type=_gateway_url, default="ws://127.0.0.1:8080/ocpp16",
                       help="the gateway's OCPP 1.6J endpoint; each charger's id is appended (default %(default)s)")
    where.add_argument("--chargers", type=_count(1), default=1, help="how many chargers (default %(default)s)")
    where.add_argument("--prefix", type=_text(re.compile(r"^[A-Za-z0-9._:*@+-]*$"), 0, 48, "letters, digits or ._:*@+-"),
                       default="SIM-", help="charger ids are PREFIX001, PREFIX002, ... (default %(default)s)")
    where.add_argument("--secret", type=_text(re.compile(r"^.*$"), 8, 128, "any text"), default="devsecret",
                       help="every charger's secret, sent as the HTTP Basic password (default %(default)s)")
    where.add_argument("--concurrency", type=_count(1), default=None, help="chargers connected at a time (default: all)")
    what = parser.add_argument_group("what each charger does")
    what.add_argument("--sessions", type=_count(0), default=defaults.sessions, help="sessions per charger (default %(default)s)")
    what.add_argument("--connectors", type=_count(1), default=defaults.connectors, help="connectors per charger (default %(default)s)")
    what.add_argument("--energy-wh", type=_count(1), default=defaults.energy_wh, help="energy of each session in Wh (default %(default)s)")
    what.add_argument("--power-w", type=_seconds, default=defaults.max_power_w,
                      help="the power a car draws when no charging profile limits it (default %(default)s)")
    what.add_argument("--meter-interval", type=_seconds, default=defaults.meter_interval,
                      help="seconds between MeterValues (default %(default)s)")
    what.add_argument("--speed", type=_seconds, default=defaults.speed,
                      help="energy time runs this many times faster than the clock (default %(default)s: "
                           "10 kWh at 11 kW in about 9 s)")
    what.add_argument("--id-tag", type=_text(re.compile(r"^.+$"), 1, 20, "any text"), default=defaults.id_tag,
                      help="the idTag of the planned sessions (default %(default)s)")
    what.add_argument("--rate-unit", choices=["Power", "Current", "Current,Power"], default=defaults.rate_unit,
                      help="ChargingScheduleAllowedChargingRateUnit: the units of charging profiles accepted (default %(default)s)")
    what.add_argument("--linger", type=_linger, default=defaults.linger,
                      help="seconds to stay connected after the sessions, answering commands (inf: until interrupted)")
    registration = parser.add_argument_group("registering the chargers first (operator API)")
    registration.add_argument("--register", action="store_true",
                              help="register each charger with --secret (an existing one gets the secret again)")
    registration.add_argument("--api", default="http://127.0.0.1:8081", help="the CPMS's base URL (default %(default)s)")
    registration.add_argument("--admin-token", default=os.environ.get("CPMS_ADMIN_TOKEN", "devadmin"),
                              help="an operator token of role operator or more (default: $CPMS_ADMIN_TOKEN, else devadmin)")
    registration.add_argument("--site", type=UUID, default=None, help="assign the chargers to this site (with --register)")
    parser.add_argument("--verbose", action="store_true", help="log every OCPP message")


def fleet_of(args: argparse.Namespace) -> Fleet:
    return Fleet(url=args.url, chargers=args.chargers, secret=args.secret, prefix=args.prefix, concurrency=args.concurrency)


def behaviour_of(args: argparse.Namespace) -> Behaviour:
    return Behaviour(
        connectors=args.connectors, sessions=args.sessions, energy_wh=args.energy_wh, max_power_w=args.power_w,
        meter_interval=args.meter_interval, speed=args.speed, id_tag=args.id_tag, rate_unit=args.rate_unit, linger=args.linger,
    )


def summary(tally: Tally) -> str:
    lines = [
        f"chargers: {tally.chargers_connected} connected, {tally.chargers_refused} refused at the handshake, "
        f"{tally.chargers_failed} failed",
        f"sessions: {tally.sessions_started} started, {tally.sessions_stopped} stopped, {tally.sessions_refused} refused; "
        f"{tally.energy_wh / 1000:.3f} kWh sent",
        f"calls to the central system: {tally.calls_sent} sent, {tally.calls_errored} answered with a CallError, "
        f"{tally.calls_unanswered} unanswered",
        f"commands answered: {tally.commands_answered + tally.commands_errored} "
        f"({tally.commands_errored} with a CallError)",
    ]
    received = [f"{action} {tally.commands[action]}" for action in CSMS_ACTIONS if tally.commands[action]]
    if received:
        lines.append("  " + ", ".join(received))
    return "\n".join(lines)


def succeeded(tally: Tally) -> bool:
    """Every charger connected and every session started was stopped."""
    return not (tally.chargers_refused or tally.chargers_failed) and tally.sessions_stopped == tally.sessions_started


async def _simulate(args: argparse.Namespace) -> Tally:
    fleet = fleet_of(args)
    if args.register:
        registered = await register(args.api, args.admin_token, fleet.charger_ids, fleet.secret, site_id=args.site)
        print(f"registered: {registered.created} created, {registered.updated} given the secret again", flush=True)
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stopping.set)
    return await simulate(fleet, behaviour_of(args), stopping=stopping)


def main(args: argparse.Namespace) -> int:
    """Run the simulation; the exit code is 0 when every charger connected and every session ended."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("ocpp").setLevel(logging.INFO if args.verbose else logging.ERROR)
    if args.site is not None and not args.register:
        print("cpms simulate: --site needs --register", file=sys.stderr)
        return 2
    try:
        tally = asyncio.run(_simulate(args))
    except (RegistrationFailed, aiohttp.ClientError) as exc:
        print(f"cpms simulate: registration failed: {exc}", file=sys.stderr)
        return 1
    print(summary(tally), flush=True)
    return 0 if succeeded(tally) else 1
