-- What the chargers reported about themselves, plus what the registry (ingest, billing) told us.
CREATE TABLE chargers (
    charge_point_id   text PRIMARY KEY,
    vendor            text,
    model             text,
    firmware_version  text,
    ocpp_version      text,
    booted_at         timestamptz,          -- ts of the boot whose fields are shown (newest wins)
    boot_event_id     text,
    last_seen_at      timestamptz,
    last_heartbeat_at timestamptz,
    registered        boolean NOT NULL DEFAULT false,
    is_active         boolean NOT NULL DEFAULT false,
    active_at         timestamptz,          -- `at` of the registry message isActive came from
    site_id           uuid,
    site_at           timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- The newest status per connector, by the charger's own ts (event id breaks ties).
CREATE TABLE connectors (
    charge_point_id text NOT NULL,
    connector_id    integer NOT NULL,
    status          text NOT NULL,
    error_code      text NOT NULL,
    status_at       timestamptz NOT NULL,
    event_id        text NOT NULL,
    PRIMARY KEY (charge_point_id, connector_id)
);

-- One row per (chargePointId, transactionId): the start and end facts as reported, and the
-- finalization derived from them and the samples whenever a fact arrives.
CREATE TABLE sessions (
    session_id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    charge_point_id   text NOT NULL,
    transaction_id    bigint NOT NULL,
    first_seen_at     timestamptz NOT NULL,  -- smallest ts of any fact of this transaction
    connector_hint    integer,               -- from samples, for a session whose start never came
    -- start fact
    connector_id      integer,
    id_tag            text,
    meter_start_wh    bigint,
    started_at        timestamptz,
    start_event_id    text,
    -- end fact
    ended_at          timestamptz,
    meter_stop_wh     bigint,
    reason            text,
    end_id_tag        text,
    end_event_id      text,
    closed_at         timestamptz,           -- an operator force-finalized it before any end came
    -- derived
    status            text NOT NULL DEFAULT 'Active' CHECK (status IN ('Active', 'Finalized')),
    energy_wh         numeric,
    energy_source     text,
    is_estimated      boolean NOT NULL DEFAULT false,
    finalized_at      timestamptz,
    revision          integer NOT NULL DEFAULT 0,
    finalized_digest  jsonb,                 -- what the last published finalization said
    -- from billing
    tariff_id         uuid,
    cost_amount       numeric,
    cost_currency     text,
    priced_at         timestamptz,
    priced_revision   integer,
    settlement_status text,
    settlement_at     timestamptz,
    sort_at           timestamptz GENERATED ALWAYS AS (coalesce(started_at, first_seen_at)) STORED,
    UNIQUE (charge_point_id, transaction_id)
);
CREATE INDEX sessions_by_charger ON sessions (charge_point_id, sort_at DESC, session_id DESC);

-- Energy samples of a transaction, in Wh, each with its own ts; (event, position) makes them unique.
CREATE TABLE meter_samples (
    session_id uuid NOT NULL,
    event_id   text NOT NULL,
    position   integer NOT NULL,
    ts         timestamptz NOT NULL,
    measurand  text NOT NULL CHECK (measurand IN ('Register', 'Interval')),
    value_wh   numeric NOT NULL,
    PRIMARY KEY (session_id, event_id, position)
);
