-- Sites, their tariff history, which charger belongs to which site, the price of every
-- finalized session, and one settlement per priced session.
CREATE TABLE sites (
    site_id       uuid PRIMARY KEY,
    name          text NOT NULL,
    payout_wallet text,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX sites_by_created ON sites (created_at DESC, site_id DESC);

-- A tariff is in force for sessions started in [active_from, active_until); a new tariff
-- closes the previous one at its own creation time, so history is never rewritten.
CREATE TABLE tariffs (
    tariff_id     uuid PRIMARY KEY,
    site_id       uuid NOT NULL REFERENCES sites,
    price_per_kwh numeric NOT NULL CHECK (price_per_kwh > 0),
    currency      text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    active_from   timestamptz NOT NULL,
    active_until  timestamptz CHECK (active_until IS NULL OR active_until >= active_from),
    created_at    timestamptz NOT NULL
);
CREATE UNIQUE INDEX tariffs_one_active_per_site ON tariffs (site_id) WHERE active_until IS NULL;
CREATE INDEX tariffs_by_site ON tariffs (site_id, active_from DESC, tariff_id DESC);

CREATE TABLE charger_sites (
    charge_point_id text PRIMARY KEY,
    site_id         uuid NOT NULL REFERENCES sites,
    assigned_at     timestamptz NOT NULL
);

-- The last finalization revision applied per session, and what it came to.
CREATE TABLE session_prices (
    session_id        uuid PRIMARY KEY,
    charge_point_id   text NOT NULL,
    revision          integer,  -- NULL until a first revision is applied
    energy_wh         numeric,
    tariff_id         uuid REFERENCES tariffs,
    cost_amount       numeric,
    currency          text,
    priced_at         timestamptz,
    not_priced_reason text,
    updated_at        timestamptz NOT NULL
);

CREATE TABLE settlements (
    settlement_id   uuid PRIMARY KEY,
    session_id      uuid NOT NULL UNIQUE REFERENCES session_prices,
    charge_point_id text NOT NULL,
    site_id         uuid NOT NULL REFERENCES sites,
    amount          numeric NOT NULL CHECK (amount >= 0),
    currency        text NOT NULL,
    wallet          text,
    status          text NOT NULL CHECK (status IN ('Pending', 'Submitted', 'Confirmed', 'Failed')),
    chain           text,
    tx_hash         text,
    external_ref    text,
    error           text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX settlements_by_created ON settlements (created_at DESC, settlement_id DESC);
CREATE INDEX settlements_by_status ON settlements (status, created_at DESC, settlement_id DESC);
CREATE INDEX settlements_by_site ON settlements (site_id, created_at DESC, settlement_id DESC);
