-- Copies of what roaming publishes as OCPI Locations and Tariffs: sites and tariffs (billing),
-- which site each charger is at (billing), connectors' statuses and specs and whether each charger
-- is connected (sessions). Each row keeps the time of the fact it holds (newest wins, whatever order
-- the messages come in) and `last_updated`: when our copy last changed (OCPI's last_updated).
CREATE TABLE sites (
    site_id      uuid PRIMARY KEY,
    name         text NOT NULL,
    time_zone    text NOT NULL,
    address      text,
    city         text,
    postal_code  text,
    country      text,
    latitude     text,
    longitude    text,
    publish      boolean NOT NULL,
    changed_at   timestamptz NOT NULL,  -- the site's own fields, as of
    last_updated timestamptz NOT NULL   -- the Location, EVSEs and tariffs included
);
CREATE INDEX sites_by_last_updated ON sites (last_updated, site_id);

CREATE TABLE chargers (
    charge_point_id text PRIMARY KEY,
    site_id         uuid,
    site_at         timestamptz,
    online          boolean,       -- NULL: never connected or left through the CPMS's gateway
    connection_at   timestamptz
);
CREATE INDEX chargers_by_site ON chargers (site_id);

CREATE TABLE connectors (
    charge_point_id    text NOT NULL,
    connector_id       integer NOT NULL,
    status             text,
    error_code         text,
    status_at          timestamptz,
    status_order       bigint,
    status_event_id    text,
    standard           text,
    format             text,
    power_type         text,
    max_voltage        integer,
    max_amperage       integer,
    max_electric_power integer,
    specs_at           timestamptz,
    last_updated       timestamptz NOT NULL,
    PRIMARY KEY (charge_point_id, connector_id)
);

CREATE TABLE tariffs (
    tariff_id    uuid PRIMARY KEY,
    site_id      uuid NOT NULL,
    currency     text NOT NULL,
    ocpi         jsonb NOT NULL,
    active_from  timestamptz NOT NULL,
    active_until timestamptz,
    changed_at   timestamptz NOT NULL,
    last_updated timestamptz NOT NULL
);
CREATE INDEX tariffs_by_last_updated ON tariffs (last_updated, tariff_id);
CREATE INDEX tariffs_by_site ON tariffs (site_id);
