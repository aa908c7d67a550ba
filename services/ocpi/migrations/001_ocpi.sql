-- OCPI partners (eMSPs, hubs) and the push outbox to them (CONTRACT section 12).
-- A partner's token to us (token A until it registers, then token C) is kept as its SHA-256 only
-- (256 random bits: no slow hash needed); its token to us is looked up by that hash. The token we
-- use to call the partner (its token B, or the C it gave us) must be sent, so it is kept as given.
CREATE TABLE partners (
    partner_id     uuid PRIMARY KEY,
    name           text NOT NULL UNIQUE,
    status         text NOT NULL CHECK (status IN ('PENDING', 'REGISTERED', 'UNREGISTERED')),
    token_hash     text UNIQUE,             -- NULL once unregistered: no token of it works
    token_kind     text CHECK (token_kind IN ('A', 'C')),
    their_token    text,                    -- what we send in Authorization to the partner
    versions_url   text,
    version        text,
    endpoints      jsonb NOT NULL DEFAULT '[]',  -- [{identifier, role, url}] of the partner's version details
    roles          jsonb NOT NULL DEFAULT '[]',  -- the partner's CredentialsRoles
    registered_at  timestamptz,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);

-- What to send to each partner, in id order per partner; written in the transaction of the change.
-- `path` is relative to the partner's endpoint of `module` (read when it is sent, so a partner that
-- moved its endpoints is sent to where it is now).
CREATE TABLE push_outbox (
    id          bigserial PRIMARY KEY,
    partner_id  uuid NOT NULL REFERENCES partners ON DELETE CASCADE,
    module      text NOT NULL,
    object_key  text NOT NULL,
    method      text NOT NULL CHECK (method IN ('PUT', 'PATCH', 'POST', 'DELETE')),
    path        text NOT NULL,
    body        jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX push_outbox_by_partner ON push_outbox (partner_id, id);

-- When each partner's next push may be tried, after a failure, and why it failed.
CREATE TABLE push_state (
    partner_id     uuid PRIMARY KEY REFERENCES partners ON DELETE CASCADE,
    failures       integer NOT NULL DEFAULT 0,
    retry_at       timestamptz,
    last_error     text,
    last_sent_at   timestamptz,
    refused        bigint NOT NULL DEFAULT 0  -- pushes the partner refused for good (2xxx, 4xx), dropped
);
