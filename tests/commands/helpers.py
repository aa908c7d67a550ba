"""Command bodies as an operator sends them, and waiting for a command's outcome."""
from __future__ import annotations

from typing import Any

from tests.support import eventually, unique_id

FINAL = ("Acked", "Failed")


def remote_start(cp: str | None = None, *, key: str | None = None, id_tag: str = "TAG-0001", **payload: Any) -> dict:
    return {
        "type": "RemoteStartTransaction",
        "chargePointId": cp or unique_id(),
        "idempotencyKey": key or unique_id("key"),
        "payload": {"idTag": id_tag, **payload},
    }


def command(type_: str, payload: dict, cp: str | None = None) -> dict:
    return {"type": type_, "chargePointId": cp or unique_id(), "idempotencyKey": unique_id("key"), "payload": payload}


async def create(api, body: dict, query: str = "") -> dict:
    status, created = await api.admin("POST", f"/v1/commands{query}", body)
    assert status == 202, created
    return created


async def outcome(api, command_id: str, *, timeout: float = 20.0) -> dict:
    async def probe():
        status, body = await api.admin("GET", f"/v1/commands/{command_id}")
        assert status == 200, body
        return body if body["status"] in FINAL else None

    return await eventually(probe, timeout=timeout)


def gateway_body(body: dict) -> dict:
    """What the reference gateway must receive for an operator's command body."""
    return {k: body[k] for k in ("type", "chargePointId", "idempotencyKey", "payload")}
