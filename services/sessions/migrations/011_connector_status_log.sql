-- Every connector status a charger reported (once per event), so a session's charging periods
-- can tell charging from parked.
CREATE TABLE connector_status_log (
    charge_point_id text NOT NULL,
    connector_id    integer NOT NULL,
    ts              timestamptz NOT NULL,
    receive_order   bigint NOT NULL,
    event_id        text NOT NULL,
    status          text NOT NULL,
    PRIMARY KEY (charge_point_id, connector_id, ts, receive_order, event_id)
);
-- The session a connector's status may end the parking of: its charger's latest ended one.
CREATE INDEX sessions_by_charger_end ON sessions (charge_point_id, ended_at DESC) WHERE ended_at IS NOT NULL;
