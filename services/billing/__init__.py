"""Billing service."""
from pathlib import Path

from services.billing.app import setup
from shared.app import ServiceSpec

SERVICE = ServiceSpec(name="billing", schema="billing", migrations=Path(__file__).parent / "migrations", setup=setup)
