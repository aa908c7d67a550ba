"""Ingest on the `cpms` command line: `cpms seed-charger` registers a charger (or gives it a new
secret), `cpms operator create` makes a named operator and prints its token, this once."""
from __future__ import annotations

import argparse
from uuid import UUID

import asyncpg

from services.ingest import charger_registry, operator_accounts, secrets
from services.ingest.models import CreateOperator, RegisterCharger
from shared.openapi import ROLES
from shared.service import Command


def _charger_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--id", required=True, dest="charge_point_id")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--site", type=UUID, default=None, help="site id to assign")


def _check_charger(args: argparse.Namespace) -> None:
    RegisterCharger(chargePointId=args.charge_point_id, secret=args.secret, siteId=args.site)  # same rules as the API


async def seed_charger(conn: asyncpg.Connection, args: argparse.Namespace) -> str:
    await charger_registry.register(conn, args.charge_point_id, secrets.hash_secret(args.secret), args.site, replace=True)
    return f"charger {args.charge_point_id} registered"


def _operator_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True)
    parser.add_argument("--role", required=True, choices=ROLES)


def _check_operator(args: argparse.Namespace) -> None:
    CreateOperator(name=args.name, role=args.role)  # same rules as the API


async def create_operator(conn: asyncpg.Connection, args: argparse.Namespace) -> str:
    _, token, _ = await operator_accounts.create(conn, args.name, args.role)
    return token  # the only time it is shown; the services learn of it through the broker


COMMANDS = (
    Command(("seed-charger",), "register a charger (or reset its secret)", _charger_arguments, seed_charger,
            check=_check_charger),
    Command(("operator", "create"), "create an operator and print its token (shown this once)", _operator_arguments,
            create_operator, check=_check_operator, group_help="named operator tokens", stdout_alone=True),
)
