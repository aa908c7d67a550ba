-- Operators (CONTRACT section 10): ingest decides who they are (its table is the original);
-- every other schema keeps a copy from `operator.changed`, so each process checks a token in its
-- own schema. Tokens are stored as their SHA-256 only (they are 256 random bits: no slow hash
-- is needed to make guessing hopeless); a revoked operator keeps its row, with revoked_at.
CREATE TABLE operators (
    name        text PRIMARY KEY,
    role        text NOT NULL,
    token_hash  text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL,
    changed_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
