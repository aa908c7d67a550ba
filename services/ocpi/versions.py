"""The version information endpoint (version_information_endpoint.asciidoc): the versions this
platform speaks (2.2.1) and, for it, every module's endpoint with its interface role."""
from __future__ import annotations

from aiohttp import web

from services.ocpi.modules import ANSWERS, OcpiModule
from services.ocpi.transport import BASE, PREFIX, VERSION, base_url, ok
from shared.openapi import Operation

async def get_versions(request: web.Request) -> web.Response:
    return ok([{"version": VERSION, "url": f"{base_url(request)}{BASE}"}])


def endpoints(base: str, modules: tuple[OcpiModule, ...]) -> list[dict[str, str]]:
    return [{"identifier": m.identifier, "role": role, "url": f"{base}{BASE}/{m.identifier}"} for m in modules for role in m.roles]


def operations(modules: tuple[OcpiModule, ...]) -> tuple[Operation, ...]:
    """The two routes of the version information endpoint, listing `modules`."""

    async def get_version_details(request: web.Request) -> web.Response:
        return ok({"version": VERSION, "endpoints": endpoints(base_url(request), modules)})

    return (
        Operation("GET", f"{PREFIX}/versions", get_versions, "OCPI: the versions this platform speaks", "ocpi", ANSWERS),
        Operation("GET", BASE, get_version_details, "OCPI: the 2.2.1 endpoints and their roles", "ocpi", ANSWERS),
    )
