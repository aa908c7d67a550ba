"""SQL of the ocpi schema, one module per table group."""
from services.ocpi.store import cdrs, partners, push, sessions  # noqa: F401

SCHEMA = "ocpi"
