"""Queues the OCPI service consumes: its copy of the operators (for /v1/ocpi), and the domain
messages of what it publishes to partners (sites, chargers, connectors, tariffs)."""
from __future__ import annotations

from shared.operators import copy_of_operators
from shared.topology import OCPI_OPERATORS

CONSUMERS = (
    copy_of_operators("ocpi", OCPI_OPERATORS),
)
