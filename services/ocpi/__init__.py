"""OCPI service: the CPMS as a CPO to eMSPs and hubs, OCPI 2.2.1 (CONTRACT section 12)."""
from pathlib import Path

from services.ocpi.app import API, MIDDLEWARES, TASKS
from services.ocpi.consumers import CONSUMERS
from shared.config import OcpiSettings
from shared.service import Relay, ServiceSpec

SERVICE = ServiceSpec(name="ocpi", schema="ocpi", migrations=Path(__file__).parent / "migrations", settings=OcpiSettings,
                      api=API, consumers=CONSUMERS, relays=(Relay(),), tasks=TASKS, middlewares=MIDDLEWARES)
