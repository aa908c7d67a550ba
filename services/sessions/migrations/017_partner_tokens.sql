-- Roaming partners' tokens (OCPI 2.2.1 Token), copied from the ocpi service's `token.partner-changed`:
-- an idTag that is not on the operators' list and is a partner token's uid is authorized by that
-- token (its `valid` and `whitelist`). Keys as OCPI's CiStrings: case-insensitive.
CREATE TABLE partner_tokens (
    country_code text NOT NULL,          -- upper case
    party_id     text NOT NULL,          -- upper case
    uid_key      text NOT NULL,          -- lower(uid)
    type         text NOT NULL,
    uid          text NOT NULL,          -- as the partner wrote it
    contract_id  text NOT NULL,
    valid        boolean NOT NULL,
    whitelist    text NOT NULL CHECK (whitelist IN ('ALWAYS', 'ALLOWED', 'ALLOWED_OFFLINE', 'NEVER')),
    group_id     text,
    last_updated timestamptz NOT NULL,
    copied_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (country_code, party_id, uid_key, type)
);
CREATE INDEX partner_tokens_by_uid ON partner_tokens (uid_key);

-- The partners that answer real-time authorization (the whole set, newest `at` wins): an unknown
-- idTag is asked about only while it is not empty.
CREATE TABLE realtime_authorizers (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    parties   jsonb NOT NULL,
    at        timestamptz NOT NULL
);

-- A session started with a partner's token keeps whose it is ({countryCode, partyId, uid, type,
-- contractId}: OCPI's CdrToken) and the partner's verdict on it, from the stored token or from a
-- real-time authorization (asked at `realtime_asked_at`; 'Unknown': no partner knows the idTag).
ALTER TABLE sessions ADD COLUMN partner_token jsonb;
ALTER TABLE sessions ADD COLUMN partner_verdict text;
ALTER TABLE sessions ADD COLUMN realtime_asked_at timestamptz;
CREATE INDEX sessions_waiting_for_realtime ON sessions (realtime_asked_at)
    WHERE realtime_asked_at IS NOT NULL AND partner_verdict IS NULL;
