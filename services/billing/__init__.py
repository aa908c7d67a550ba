"""Billing service."""
from pathlib import Path

from services.billing.app import setup
from services.billing.openapi import FRAGMENT
from shared.app import ServiceSpec

SERVICE = ServiceSpec(name="billing", schema="billing", migrations=Path(__file__).parent / "migrations", setup=setup, openapi=FRAGMENT)
