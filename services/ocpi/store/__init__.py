"""SQL of the ocpi schema, one module per table group."""
from services.ocpi.store import cdrs, commands, locations, partners, push, sessions, tariffs, tokens  # noqa: F401

SCHEMA = "ocpi"
