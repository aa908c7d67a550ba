-- Site power limits (CONTRACT section 13): the sessions service shares each site's grid limit among
-- its Active sessions and keeps what it needs for that here.

-- Each site's limit as billing decides it (newest `at` wins), and when its shares are next due.
CREATE TABLE site_limits (
    site_id       uuid PRIMARY KEY,
    max_power_w   integer CHECK (max_power_w > 0),   -- null: no limit
    limit_at      timestamptz NOT NULL,
    due_at        timestamptz,                        -- recompute from then on; null: nothing to do
    computed_at   timestamptz,
    idle_w        integer,                            -- the TxDefaultProfile an idle connector was given
    measured_w    integer,                            -- what its Active sessions drew at the last computation
    over_limit    boolean NOT NULL DEFAULT false
);
CREATE INDEX site_limits_due ON site_limits (due_at) WHERE due_at IS NOT NULL;

-- The `Power.Active.Import` readings of a transaction, in W: what a session draws.
CREATE TABLE power_readings (
    session_id  uuid NOT NULL,
    event_id    text NOT NULL,
    position    integer NOT NULL,
    ts          timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    watts       numeric NOT NULL,
    PRIMARY KEY (session_id, event_id, position)
);
CREATE INDEX power_readings_newest ON power_readings (session_id, ts DESC);

-- What load sharing knows of a charger: the charging-rate unit its profiles take (read once with
-- GetConfiguration), when it last booted (profiles accepted before then may be gone), and whether
-- it is flagged: it rejected a profile, or drew over its share, so it is counted at its maximum.
CREATE TABLE load_chargers (
    charge_point_id text PRIMARY KEY,
    rate_unit       text CHECK (rate_unit IN ('W', 'A')),
    unit_asked_at   timestamptz,
    booted_at       timestamptz,
    default_due     boolean NOT NULL DEFAULT false,  -- booted: its fail-safe TxDefaultProfile goes out again
    flagged_at      timestamptz,
    flag_reason     text
);

-- Every charging profile sent for a site's limit and what became of it. `limit_w` is the share in W;
-- `limit_value` what was sent in `rate_unit` (rounded down to 0.1).
CREATE TABLE load_profiles (
    profile_id      uuid PRIMARY KEY,
    site_id         uuid NOT NULL,
    charge_point_id text NOT NULL,
    connector_id    integer NOT NULL,
    purpose         text NOT NULL CHECK (purpose IN ('TxProfile', 'TxDefaultProfile')),
    session_id      uuid,
    transaction_id  bigint,
    limit_w         integer NOT NULL,
    rate_unit       text NOT NULL,
    limit_value     numeric NOT NULL,
    status          text NOT NULL DEFAULT 'Pending'
                    CHECK (status IN ('Pending', 'Accepted', 'Rejected', 'NotDelivered', 'Unknown')),
    error           text,
    sent_at         timestamptz NOT NULL DEFAULT now(),
    answered_at     timestamptz
);
CREATE INDEX load_profiles_by_site ON load_profiles (site_id, sent_at DESC);
CREATE INDEX load_profiles_by_charger ON load_profiles (charge_point_id, purpose, sent_at DESC);

-- The share each Active session was given at its site's last computation.
CREATE TABLE load_shares (
    session_id  uuid PRIMARY KEY,
    site_id     uuid NOT NULL,
    cap_w       integer NOT NULL,
    share_w     integer NOT NULL,
    computed_at timestamptz NOT NULL
);
CREATE INDEX load_shares_by_site ON load_shares (site_id);
