"""Event envelopes: ingest publishes the events of the requests that arrive together as one
persistent message, so the broker stores, replicates and delivers one message per group instead
of one per event. Consumers unpack an envelope into one `Message` per event, keyed by its eventId,
so the inbox, duplicates and dead-lettering stay per event."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

CONTENT_TYPE = "application/vnd.cpms.events+json"
ROUTING_KEY = "charger.events"  # every type but CommandAck, which the commands service takes alone
HEADER_COUNT = "x-cpms-events"


def pack(bodies: Sequence[bytes]) -> bytes:
    """The envelope of already-encoded event bodies: `{"events": [...]}`."""
    return b'{"events":[' + b",".join(bodies) + b"]}"


def events_of(body: Any) -> list[dict[str, Any]]:
    """The events of a decoded envelope; ValueError when it is not one."""
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, list) or not events:
        raise ValueError('an envelope is {"events": [...]} with at least one event')
    for index, event in enumerate(events):
        if not isinstance(event, dict) or not isinstance(event.get("eventId"), str) or not event["eventId"]:
            raise ValueError(f"event {index} of the envelope is not an object with an eventId")
        if not isinstance(event.get("type"), str):
            raise ValueError(f"event {index} of the envelope has no type")
    return events
