-- When the CPMS's own gateway last reported the charger's WebSocket closed (ChargerDisconnected),
-- by our clock: the charger is offline from then until it is heard again (CONTRACT section 11).
ALTER TABLE chargers ADD COLUMN disconnected_at timestamptz;
