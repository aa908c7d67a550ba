"""What an OCPI module brings to this platform: its identifier, the interface roles it implements
(listed in the version details) and its routes under /ocpi/2.2.1/<identifier>."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.openapi import Body, Operation

InterfaceRole = Literal["SENDER", "RECEIVER"]
# An OCPI answer, for the OpenAPI document: the envelope (transport_and_format.asciidoc, "Response format").
ENVELOPE = Body({
    "type": "object", "required": ["status_code", "timestamp"],
    "properties": {"data": {}, "status_code": {"type": "integer"}, "status_message": {"type": "string"},
                   "timestamp": {"type": "string", "format": "date-time"}},
})


@dataclass(frozen=True)
class OcpiModule:
    identifier: str  # "locations": its endpoint is /ocpi/2.2.1/locations
    roles: tuple[InterfaceRole, ...]
    operations: tuple[Operation, ...]
