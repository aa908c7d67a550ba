-- Registered chargers and their secret hashes (never the secret itself).
CREATE TABLE chargers (
    charge_point_id text PRIMARY KEY,
    secret_hash     text NOT NULL,
    is_active       boolean NOT NULL DEFAULT true,
    site_id         uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Failed handshakes per charger id (known or not), for throttling guessers.
CREATE TABLE auth_failures (
    charge_point_id   text PRIMARY KEY,
    failures          integer NOT NULL,
    window_started_at timestamptz NOT NULL
);

-- Every event the gateway sent, once, as it came (plus eventId, ts and receivedAt).
CREATE TABLE events (
    event_id        text PRIMARY KEY,
    type            text NOT NULL,
    charge_point_id text NOT NULL,
    ts              timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,
    body            jsonb NOT NULL
);
CREATE INDEX events_charger_ts ON events (charge_point_id, ts);
