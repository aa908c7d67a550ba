"""Turning a gateway request body into validated, identified events ready to publish."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pydantic

from shared.events import EVENT_TYPES, ChargerEvent, derive_event_id, parse_event, routing_key
from shared.http import Problem, errors_of
from shared.jsonutil import format_ts

MAX_BATCH = 1000


@dataclass(slots=True)
class Accepted:
    event_id: str
    type: str
    routing_key: str
    body: dict[str, Any]
    encoded: bytes  # the body as published

    @property
    def type_label(self) -> str:
        return self.type if self.type in EVENT_TYPES else "unknown"


def _identify(raw: dict[str, Any], event: ChargerEvent, received_at: str) -> Accepted:
    event_id = event.eventId or derive_event_id(raw)
    body = event.model_dump(mode="json", exclude_none=True)
    body["eventId"] = event_id
    body["ts"] = format_ts(event.ts) if event.ts is not None else received_at
    body["receivedAt"] = received_at
    return Accepted(event_id, event.type, routing_key(event), body, orjson.dumps(body))


def accept_events(data: Any) -> tuple[list[Accepted], bool]:
    """Validate one event or a batch; returns the events and whether it was a batch.
    Any invalid event refuses the whole request, with one error entry per problem."""
    is_batch = isinstance(data, list)
    raws = data if is_batch else [data]
    if is_batch and not 1 <= len(raws) <= MAX_BATCH:
        raise Problem(400, "Invalid batch", f"a batch holds 1 to {MAX_BATCH} events, this one {len(raws)}",
                      errors=[{"loc": [], "msg": f"expected 1 to {MAX_BATCH} events"}])
    received_at = format_ts(datetime.now(UTC))
    accepted, errors = [], []
    for index, raw in enumerate(raws):
        prefix = (index,) if is_batch else ()
        if not isinstance(raw, dict):
            errors.append({"loc": list(prefix), "msg": "an event must be a JSON object"})
            continue
        try:
            accepted.append(_identify(raw, parse_event(raw), received_at))
        except pydantic.ValidationError as exc:
            errors.extend(errors_of(exc, prefix))
    if errors:
        raise Problem(400, "Invalid event", "one or more events are not valid; nothing was accepted", errors=errors)
    return accepted, is_batch
