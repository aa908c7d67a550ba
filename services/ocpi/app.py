"""The OCPI service's routes and background work. Every OCPI module is listed in MODULES: its
routes are served under /ocpi/2.2.1/<identifier> and its roles listed in the version details."""
from __future__ import annotations

from services.ocpi import cdrs, commands, credentials, locations, partners, sessions, tariffs, tokens, versions
from services.ocpi.client import http_session_ctx
from services.ocpi.modules import OcpiModule
from services.ocpi.push import push_relay_ctx
from services.ocpi.transport import ocpi_middleware
from shared.openapi import Fragment
from shared.periodic import every

MODULES: tuple[OcpiModule, ...] = (
    credentials.MODULE,
    locations.MODULE,
    tariffs.MODULE,
    tokens.MODULE,
    commands.MODULE,
    sessions.MODULE,
    cdrs.MODULE,
)

API = Fragment("ocpi", (
    *versions.operations(MODULES),
    *(operation for module in MODULES for operation in module.operations),
    *partners.API.operations,
), "OCPI 2.2.1, the CPO side (envelope answers; Authorization: Token), and its partners (/v1/ocpi)")

MIDDLEWARES = (ocpi_middleware,)
TASKS = (
    http_session_ctx, push_relay_ctx, tokens.authorization_desk_ctx, tokens.authorizers_announcer, commands.timeout_sweeper,
    every("ocpi session patches", sessions.patch_sweep_seconds, sessions.sweep_patches),
    every("ocpi cdrs", cdrs.issue_seconds, cdrs.issue_cdrs),
)
