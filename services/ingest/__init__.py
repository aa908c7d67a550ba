"""Ingest service: charger auth, event intake, raw archive, charger registration, operators and
the audit trail; on the command line, `cpms seed-charger` and `cpms operator create`."""
from pathlib import Path

from services.ingest import command_line, metrics, retention
from services.ingest.app import API, SPOOL, publisher_ctx, verified_secrets_memory
from services.ingest.consumers import CONSUMERS
from shared.config import IngestSettings
from shared.service import Relay, ServiceSpec

SERVICE = ServiceSpec(
    name="ingest", schema="ingest", migrations=Path(__file__).parent / "migrations", settings=IngestSettings,
    api=API, consumers=CONSUMERS,
    relays=(Relay(), Relay(SPOOL, on_backlog=metrics.SPOOL_DEPTH.set)), tasks=(publisher_ctx, *retention.TASKS),
    commands=command_line.COMMANDS, shared_memory=verified_secrets_memory,
    takes_gateway_events=True, waits_for_copies=True,
)
