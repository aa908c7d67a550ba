"""Ingest service: charger auth, event intake, raw archive, charger registration."""
from pathlib import Path

from services.ingest.app import setup
from services.ingest.openapi import FRAGMENT
from shared.app import ServiceSpec

SERVICE = ServiceSpec(name="ingest", schema="ingest", migrations=Path(__file__).parent / "migrations", setup=setup, openapi=FRAGMENT)
