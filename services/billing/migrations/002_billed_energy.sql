-- What a settlement bills: the energy beside the amount, so "money has moved" carries both.
ALTER TABLE settlements ADD COLUMN energy_wh numeric;
UPDATE settlements s SET energy_wh = p.energy_wh FROM session_prices p WHERE p.session_id = s.session_id;
-- The newest energy sessions reported once the price could no longer follow it.
ALTER TABLE session_prices ADD COLUMN latest_energy_wh numeric;
