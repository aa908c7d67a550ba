-- Partners' tokens (Tokens module, RECEIVER; CONTRACT section 12): the Token objects eMSPs push
-- (PUT, PATCH), hand over with a command, or answer a real-time authorization with. The ocpi
-- service owns this copy and announces each change to the sessions service (token.partner-changed).
-- Keys as OCPI's CiStrings: case-insensitive (country_code, party_id upper; uid lower in uid_key).
CREATE TABLE tokens (
    country_code text NOT NULL,
    party_id     text NOT NULL,
    uid_key      text NOT NULL,
    type         text NOT NULL,
    partner_id   uuid NOT NULL REFERENCES partners ON DELETE CASCADE,  -- who pushed it
    token        jsonb NOT NULL,                                       -- the Token object as stored
    last_updated timestamptz NOT NULL,
    PRIMARY KEY (country_code, party_id, uid_key, type)
);

-- The partners that answer real-time authorization, as last announced (realtime-authorizers).
CREATE TABLE realtime_authorizers (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    parties   jsonb NOT NULL,
    at        timestamptz NOT NULL
);
