-- Clearing what load sharing set (CONTRACT section 13): a charger whose site has no limit any more
-- (the limit was removed, or the charger moved to a site without one) is sent ClearChargingProfile
-- for each profile of ours it may hold, once, recorded beside the profiles sent.
ALTER TABLE load_profiles ADD COLUMN action text NOT NULL DEFAULT 'SetChargingProfile'
    CHECK (action IN ('SetChargingProfile', 'ClearChargingProfile'));
ALTER TABLE load_profiles ALTER COLUMN limit_w DROP NOT NULL, ALTER COLUMN rate_unit DROP NOT NULL,
    ALTER COLUMN limit_value DROP NOT NULL;
ALTER TABLE load_profiles ADD CONSTRAINT load_profiles_a_set_has_its_limit
    CHECK (action = 'ClearChargingProfile' OR (limit_w IS NOT NULL AND rate_unit IS NOT NULL AND limit_value IS NOT NULL));

-- Its site lost its limit, it moved, or it booted: what it holds of ours is looked at (and cleared
-- unless its site has a limit).
ALTER TABLE load_chargers ADD COLUMN clear_due boolean NOT NULL DEFAULT false;
CREATE INDEX load_chargers_clear_due ON load_chargers (charge_point_id) WHERE clear_due;
