-- Two clocks (CONTRACT section 1): the gateway stamps boots and heartbeats, the charger its
-- sessions, and the two are routinely seconds or minutes apart. Where they meet, receive order
-- decides: a boot received after a session's first event closes it (ChargerRebooted), lastSeenAt is
-- the ts of the last event received; and a session goes Stale by our clock, not the charger's.
ALTER TABLE chargers ADD COLUMN last_boot_order bigint;     -- the receive order of its last boot received
ALTER TABLE chargers ADD COLUMN last_seen_order bigint;     -- the receive order of the event last_seen_at is from
ALTER TABLE sessions ADD COLUMN first_event_order bigint;   -- the receive order of its first event received
ALTER TABLE sessions ADD COLUMN last_received_at timestamptz;  -- when its last event was received, by our clock

UPDATE chargers SET last_boot_order = boot_order WHERE booted_at IS NOT NULL;
-- The best the sessions already known can tell: their start's order, and their newest event's time.
UPDATE sessions SET first_event_order = CASE WHEN start_order > 0 THEN least(start_order, last_event_order) ELSE last_event_order END,
                    last_received_at = last_event_at
WHERE last_event_at IS NOT NULL;

DROP INDEX sessions_open;
CREATE INDEX sessions_open ON sessions (last_received_at) WHERE ended_at IS NULL AND closed_at IS NULL;
