"""Every service this distribution can run, by name, in the order `cpms run all` wires them."""
from __future__ import annotations

from services.billing import SERVICE as BILLING
from services.commands import SERVICE as COMMANDS
from services.gateway import metrics as _gateway_metrics  # noqa: F401  every process registers every family (docs/metrics.md)
from services.ingest import SERVICE as INGEST
from services.ocpi import SERVICE as OCPI
from services.sessions import SERVICE as SESSIONS
from shared.app import ServiceSpec

SERVICES: dict[str, ServiceSpec] = {spec.name: spec for spec in (INGEST, SESSIONS, BILLING, COMMANDS, OCPI)}
