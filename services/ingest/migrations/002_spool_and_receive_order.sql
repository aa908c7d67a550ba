-- Events the broker could not confirm in time, committed here before the gateway got its 202;
-- the spool relay publishes them (same eventIds) once the broker is back, oldest first. It has
-- the outbox's shape (and shares its id sequence), so the same relay publishes it.
CREATE TABLE spool (LIKE outbox INCLUDING ALL);

-- The archive keeps each event's receive order and what was wrong with it.
ALTER TABLE events ADD COLUMN receive_order bigint NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN anomalies text[] NOT NULL DEFAULT '{}';
CREATE INDEX events_with_anomalies ON events (charge_point_id, received_at) WHERE anomalies <> '{}';
