"""SQL of the ocpi schema, one module per table group."""
from services.ocpi.store import partners, push, tokens  # noqa: F401

SCHEMA = "ocpi"
