"""Envelopes: several messages of one routing key published as one persistent message, so the
broker stores, replicates and delivers one message per group instead of one per message. Ingest
packs the events of the requests that arrive together; outbox relays pack what a round finds.
Consumers unpack an envelope into its messages, each with its own id, so the inbox, duplicates
and dead-lettering stay per message."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

CONTENT_TYPE = "application/vnd.cpms.envelope+json"
HEADER_COUNT = "x-cpms-messages"
EVENTS_ROUTING_KEY = "charger.events"  # charger events of every type but CommandAck, which travels apart


def pack(messages: Sequence[tuple[str, bytes]]) -> bytes:
    """`{"messages": [{"id": ..., "body": ...}, ...]}` of (message id, encoded JSON body) pairs."""
    return b'{"messages":[' + b",".join(
        b'{"id":' + orjson.dumps(message_id) + b',"body":' + body + b"}" for message_id, body in messages
    ) + b"]}"


def unpack(envelope: Any) -> list[tuple[str, dict[str, Any]]]:
    """The (message id, body) pairs of a decoded envelope; ValueError when it is not one."""
    messages = envelope.get("messages") if isinstance(envelope, dict) else None
    if not isinstance(messages, list) or not messages:
        raise ValueError('an envelope is {"messages": [...]} with at least one message')
    unpacked = []
    for index, message in enumerate(messages):
        message_id = message.get("id") if isinstance(message, dict) else None
        if not isinstance(message_id, str) or not message_id or not isinstance(message.get("body"), dict):
            raise ValueError(f"message {index} of the envelope is not an object with an id and a body object")
        unpacked.append((message_id, message["body"]))
    return unpacked
