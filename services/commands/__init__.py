"""Commands service: operators' commands for chargers, delivered once through the gateway."""
from pathlib import Path

from services.commands.app import setup
from services.commands.openapi import FRAGMENT
from shared.app import ServiceSpec

SERVICE = ServiceSpec(name="commands", schema="commands", migrations=Path(__file__).parent / "migrations", setup=setup, openapi=FRAGMENT)
