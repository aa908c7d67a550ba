"""Billing service: sites, tariffs, pricing and settlements."""
from pathlib import Path

from services.billing.app import API, settlement_gauge
from services.billing.consumers import CONSUMERS
from shared.config import BillingSettings
from shared.service import ServiceSpec

SERVICE = ServiceSpec(name="billing", schema="billing", migrations=Path(__file__).parent / "migrations", settings=BillingSettings,
    api=API,
                      consumers=CONSUMERS, tasks=(settlement_gauge,), waits_for_copies=True)
