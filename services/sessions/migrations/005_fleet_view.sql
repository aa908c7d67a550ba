-- The fleet view: when a charger was last heard of by our clock (an event or a handshake), and its
-- failed handshakes (an unregistered charger that keeps trying shows up with its count).
ALTER TABLE chargers ADD COLUMN last_received_at timestamptz;
ALTER TABLE chargers ADD COLUMN last_handshake_at timestamptz;
ALTER TABLE chargers ADD COLUMN auth_failures integer NOT NULL DEFAULT 0;
ALTER TABLE chargers ADD COLUMN last_auth_failure_at timestamptz;
CREATE INDEX chargers_by_site ON chargers (site_id, charge_point_id);
