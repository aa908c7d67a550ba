"""Sessions service."""
from pathlib import Path

from services.sessions.app import setup
from services.sessions.openapi import FRAGMENT
from shared.app import ServiceSpec

SERVICE = ServiceSpec(name="sessions", schema="sessions", migrations=Path(__file__).parent / "migrations", setup=setup, openapi=FRAGMENT)
