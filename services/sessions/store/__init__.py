"""SQL of the sessions schema, by what it keeps: `chargers` (their state, connectors, status log
and the registry's facts), `sessions` (their facts, samples, finalization and billed figures),
`tokens` (who may charge), `partner_tokens` (roaming partners' tokens) and `retention` (what may
be let go)."""
from services.sessions.store import chargers, partner_tokens, retention, sessions, tokens

SCHEMA = "sessions"

__all__ = ["SCHEMA", "chargers", "partner_tokens", "retention", "sessions", "tokens"]
