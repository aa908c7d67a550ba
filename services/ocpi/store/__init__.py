"""SQL of the ocpi schema, one module per table group."""
<<<<<<< HEAD
from services.ocpi.store import partners, push, tokens  # noqa: F401
=======
from services.ocpi.store import locations, partners, push, tariffs  # noqa: F401
>>>>>>> ocpi-core

SCHEMA = "ocpi"
