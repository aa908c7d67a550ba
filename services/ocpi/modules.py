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

# What every OCPI route may answer, each an envelope: 2001 on 400 (and 413), 401 for a wrong token,
# 2000/2003/2004 on 404, 2000 on 405 (transport_and_format.asciidoc, status_codes.asciidoc).
ANSWERS = {status: ENVELOPE for status in (200, 400, 401, 404, 405, 413)}


@dataclass(frozen=True)
class OcpiModule:
    identifier: str  # "locations": its endpoint is /ocpi/2.2.1/locations
    roles: tuple[InterfaceRole, ...]
    operations: tuple[Operation, ...]
