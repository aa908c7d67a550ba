-- Operator commands for chargers, their delivery attempts to the gateway, and the charger
-- acknowledgements the gateway reports (kept on their own so an ack may arrive first).
CREATE TABLE commands (
    command_id         uuid PRIMARY KEY,
    type               text NOT NULL,
    charge_point_id    text NOT NULL,
    idempotency_key    text NOT NULL UNIQUE,
    fingerprint        text NOT NULL,
    payload            jsonb NOT NULL,
    status             text NOT NULL CHECK (status IN ('Queued', 'Sent', 'Acked', 'Failed')),
    response           jsonb,
    error              text,
    attempts           integer NOT NULL DEFAULT 0,
    gateway_command_id text,
    acked_at           timestamptz,
    -- null until the dispatch message arrived; then the time from which a dispatcher may take it
    due_at             timestamptz,
    -- a dispatcher holds the command until lease_until; lease_owner names that claim
    lease_until        timestamptz,
    lease_owner        uuid,
    expires_at         timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX commands_open ON commands (due_at) WHERE status IN ('Queued', 'Sent');
CREATE INDEX commands_newest ON commands (created_at DESC, command_id DESC);
CREATE INDEX commands_charger_newest ON commands (charge_point_id, created_at DESC, command_id DESC);
CREATE INDEX commands_gateway_id ON commands (charge_point_id, gateway_command_id) WHERE gateway_command_id IS NOT NULL;

-- One row per request sent (or being sent) to the gateway; written before the send, so a row
-- without finished_at after its lease ran out means the process died mid-send.
CREATE TABLE attempts (
    command_id  uuid NOT NULL REFERENCES commands (command_id),
    attempt     integer NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    result      text CHECK (result IN ('acked', 'rejected', 'unavailable', 'timeout', 'unknown')),
    http_status integer,
    error       text,
    PRIMARY KEY (command_id, attempt)
);

CREATE TABLE acks (
    charge_point_id text NOT NULL,
    unique_id       text NOT NULL,
    command_type    text NOT NULL,
    acked_at        timestamptz NOT NULL,
    event_id        text NOT NULL,
    PRIMARY KEY (charge_point_id, unique_id)
);
