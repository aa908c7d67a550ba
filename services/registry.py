"""Every service this distribution can run, by name, in the order `cpms run all` wires them."""
from __future__ import annotations

from services.ingest import SERVICE as INGEST
from shared.app import ServiceSpec

SERVICES: dict[str, ServiceSpec] = {spec.name: spec for spec in (INGEST,)}
