"""Commands service: operators' commands for chargers, delivered once through the gateway."""
from pathlib import Path

from services.commands.app import API, dispatcher_ctx
from services.commands.consumers import CONSUMERS
from shared.config import CommandsSettings
from shared.service import ServiceSpec

SERVICE = ServiceSpec(name="commands", schema="commands", migrations=Path(__file__).parent / "migrations", settings=CommandsSettings,
    api=API,
                      consumers=CONSUMERS, tasks=(dispatcher_ctx,))
