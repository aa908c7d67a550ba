-- Sessions that close themselves: the newest of a session's events by (ts, receive order), and
-- the rule that closed it when its charger never ended it (ChargerRebooted, NextTransaction, Stale).
ALTER TABLE sessions ADD COLUMN last_event_at timestamptz;
ALTER TABLE sessions ADD COLUMN last_event_order bigint NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN closed_rule text;
UPDATE sessions SET last_event_at = coalesce(ended_at, started_at, first_seen_at);
CREATE INDEX sessions_open ON sessions (last_event_at) WHERE ended_at IS NULL AND closed_at IS NULL;
