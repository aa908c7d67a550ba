"""Sessions service: live charger state, connectors, sessions and their finalization."""
from pathlib import Path

from services.sessions import retention, site_load
from services.sessions.app import API, stale_sweeper
from services.sessions.consumers import CONSUMERS
from shared.config import SessionsSettings
from shared.service import ServiceSpec

SERVICE = ServiceSpec(
    name="sessions", schema="sessions", migrations=Path(__file__).parent / "migrations", settings=SessionsSettings,
    api=API, consumers=CONSUMERS, tasks=(stale_sweeper, *retention.TASKS, site_load.balancer),
)
