"""Queues the OCPI service consumes: its copy of the operators (for /v1/ocpi), and the domain
messages of what it publishes to partners (sites, chargers, connectors, tariffs)."""
from __future__ import annotations

from services.ocpi import sessions
from services.ocpi.push import wakes_push
from shared.operators import copy_of_operators
from shared.service import Consumes
from shared.topology import OCPI_OPERATORS, OCPI_SESSIONS

CONSUMERS = (
    copy_of_operators("ocpi", OCPI_OPERATORS),
    # Partners' sessions: their progress, end and prices (sessions and billing), pushed as Sessions.
    Consumes(OCPI_SESSIONS, sessions.apply_and_push, after_commit=wakes_push, takes_settings=True),
)
