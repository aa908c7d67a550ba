-- What the sessions service last announced of a charger's connection (charger.connection-changed):
-- `online` by the fleet view's rule (CONTRACT section 8) and when. A change of that rule, whether
-- by an event (ChargerConnected, ChargerDisconnected, any event heard) or by silence (nothing heard
-- within CPMS_CHARGER_OFFLINE_AFTER_SECONDS, as behind the reference gateway), is announced once.
ALTER TABLE chargers ADD COLUMN announced_online boolean;
ALTER TABLE chargers ADD COLUMN announced_at timestamptz;
