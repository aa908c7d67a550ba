"""SQL of the sessions schema, by what it keeps: `chargers` (their state, connectors, status log
and the registry's facts), `sessions` (their facts, samples, finalization and billed figures),
`tokens` (who may charge), `partner_tokens` (roaming partners' tokens), `retention` (what may be
let go) and `load` (site power limits)."""
from services.sessions.store import chargers, load, partner_tokens, retention, sessions, tokens

SCHEMA = "sessions"

__all__ = ["SCHEMA", "chargers", "load", "partner_tokens", "retention", "sessions", "tokens"]
