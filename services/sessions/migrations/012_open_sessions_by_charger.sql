-- A charger's sessions that have neither ended nor been closed: what close_by_rules reads on every
-- batch. Without it the planner combined the open sessions of every charger with the given
-- chargers' whole histories (O(sessions per charger) a batch; 25,000 index entries for 50
-- chargers of 500 sessions each, against 50 with it).
CREATE INDEX sessions_open_by_charger ON sessions (charge_point_id) WHERE ended_at IS NULL AND closed_at IS NULL;
