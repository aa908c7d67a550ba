-- Retention of the archive: the prune deletes by receipt time, oldest first, through this index,
-- and never past the horizon the sessions service last announced.
CREATE INDEX events_received_at ON events (received_at);
CREATE TABLE retention_horizon (
    id           boolean PRIMARY KEY DEFAULT true CHECK (id),
    keep_from    timestamptz NOT NULL,
    announced_at timestamptz NOT NULL
);
