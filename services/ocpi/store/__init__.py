"""SQL of the ocpi schema, one module per table group."""
from services.ocpi.store import cdrs, locations, partners, push, sessions, tariffs  # noqa: F401

SCHEMA = "ocpi"
