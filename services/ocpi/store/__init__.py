"""SQL of the ocpi schema, one module per table group."""
from services.ocpi.store import commands, locations, partners, push, tariffs, tokens  # noqa: F401

SCHEMA = "ocpi"
