-- Newest-wins rules order one charger's events by (ts, receive order, eventId): CONTRACT section 1.
ALTER TABLE chargers ADD COLUMN boot_order bigint NOT NULL DEFAULT 0;
ALTER TABLE chargers ADD COLUMN clock_skew_seconds double precision;  -- its newest plausible ts minus our receipt
ALTER TABLE chargers ADD COLUMN clock_skew_order bigint;
ALTER TABLE connectors ADD COLUMN receive_order bigint NOT NULL DEFAULT 0;
ALTER TABLE meter_samples ADD COLUMN receive_order bigint NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN start_order bigint NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN end_order bigint NOT NULL DEFAULT 0;

-- Money has moved: billing decides it and tells us what it billed; the session shows that.
ALTER TABLE sessions ADD COLUMN priced_energy_wh numeric;   -- the energy of the price we hold
ALTER TABLE sessions ADD COLUMN billed_energy_wh numeric;   -- from the settlement once Submitted/Confirmed
ALTER TABLE sessions ADD COLUMN billed_amount numeric;
ALTER TABLE sessions ADD COLUMN billed_currency text;
