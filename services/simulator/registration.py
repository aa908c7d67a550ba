"""Registering simulated chargers through the operator API, so their handshakes pass: each one
created with its secret (`POST /v1/chargers`), or, when it exists, given the secret again
(`PUT .../secret`) and switched on; both assign the site when one is given."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from uuid import UUID

import aiohttp

CONCURRENT_REQUESTS = 8


class RegistrationFailed(Exception):
    """The operator API refused a charger (a wrong token, an unknown site, a bad id or secret)."""


@dataclass
class Registered:
    created: int = 0
    updated: int = 0


async def register(api: str, admin_token: str, charge_point_ids: list[str], secret: str, *,
                   site_id: UUID | None = None) -> Registered:
    """Register every charger; idempotent: run it again and nothing but the secret is written."""
    done = Registered()
    slots = asyncio.Semaphore(CONCURRENT_REQUESTS)
    headers = {"Authorization": f"Bearer {admin_token}"}
    async with aiohttp.ClientSession(base_url=api.rstrip("/") + "/", headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=30)) as http:

        async def one(charge_point_id: str) -> None:
            async with slots:
                if await _create(http, charge_point_id, secret, site_id):
                    done.created += 1
                else:
                    await _update(http, charge_point_id, secret, site_id)
                    done.updated += 1

        await asyncio.gather(*(one(charge_point_id) for charge_point_id in charge_point_ids))
    return done


async def _create(http: aiohttp.ClientSession, charge_point_id: str, secret: str, site_id: UUID | None) -> bool:
    """True when created, False when it existed."""
    body = {"chargePointId": charge_point_id, "secret": secret, **({"siteId": str(site_id)} if site_id else {})}
    async with http.post("v1/chargers", json=body) as answer:
        if answer.status == 409:
            return False
        await _expect(answer, charge_point_id, 201)
        return True


async def _update(http: aiohttp.ClientSession, charge_point_id: str, secret: str, site_id: UUID | None) -> None:
    path = f"v1/chargers/{charge_point_id}"
    async with http.put(f"{path}/secret", json={"secret": secret}) as answer:
        charger = await _expect(answer, charge_point_id, 200)
    if not charger.get("isActive", True):
        async with http.put(f"{path}/active", json={"isActive": True}) as answer:
            await _expect(answer, charge_point_id, 200)
    if site_id is not None:
        async with http.put(f"{path}/site", json={"siteId": str(site_id)}) as answer:
            await _expect(answer, charge_point_id, 200)


async def _expect(answer: aiohttp.ClientResponse, charge_point_id: str, status: int) -> dict:
    body = await answer.json(content_type=None) if answer.content_length != 0 else {}
    if answer.status != status:
        detail = body.get("detail") if isinstance(body, dict) else None
        raise RegistrationFailed(f"{charge_point_id}: {answer.method} {answer.url.path} answered {answer.status}"
                                 + (f": {detail}" if detail else ""))
    return body if isinstance(body, dict) else {}
