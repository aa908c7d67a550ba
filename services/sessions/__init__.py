"""Sessions service: live charger state, connectors, sessions and their finalization."""
from pathlib import Path

from services.sessions import connections, retention, roaming, site_load
from services.sessions.app import API, stale_sweeper
from services.sessions.consumers import CONSUMERS
from shared.config import SessionsSettings
from shared.realtime_authorization import realtime_authorizer_ctx
from shared.service import ServiceSpec

SERVICE = ServiceSpec(
    name="sessions", schema="sessions", migrations=Path(__file__).parent / "migrations", settings=SessionsSettings,
    api=API, consumers=CONSUMERS, tasks=(stale_sweeper, *retention.TASKS, realtime_authorizer_ctx, roaming.realtime_judge_ctx,
           roaming.lost_questions_sweeper, site_load.balancer, connections.silence_watch),
)
