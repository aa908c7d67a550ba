-- What a connector is (CONTRACT 12), as the operator describes it: OCPI's connector fields, for
-- roaming Locations and for the power a site may give it (CONTRACT 13). Independent of the
-- status rows, so a site can be described before its chargers first report.
CREATE TABLE connector_specs (
    charge_point_id    text NOT NULL,
    connector_id       integer NOT NULL CHECK (connector_id >= 1),
    standard           text,
    format             text,
    power_type         text,
    max_voltage        integer,
    max_amperage       integer,
    max_electric_power integer,  -- W
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (charge_point_id, connector_id)
);
