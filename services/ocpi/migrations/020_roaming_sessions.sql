-- Sessions started with a partner's token (Sessions module, SENDER; CONTRACT section 12): what the
-- sessions and billing services said of each (the newest of each kind wins), the OCPI Session it
-- makes, and what the partner was last sent of it.
CREATE TABLE roaming_sessions (
    session_id         uuid PRIMARY KEY,             -- the CPMS session; Session.id
    partner_id         uuid REFERENCES partners ON DELETE SET NULL,  -- the partner with the token's party
    token              jsonb NOT NULL,               -- the partner's token: countryCode, partyId, uid, type, contractId
    charge_point_id    text,                         -- null until the sessions service names it
    connector_id       integer,
    started_at         timestamptz,
    ended_at           timestamptz,
    energy_wh          numeric NOT NULL DEFAULT 0,
    progress_sequence  integer NOT NULL DEFAULT 0,   -- the newest session.progress applied
    revision           integer NOT NULL DEFAULT 0,   -- the newest session.finalized applied (0: going)
    cost_sequence      integer NOT NULL DEFAULT 0,   -- the newest session.cost-so-far applied
    priced_revision    integer NOT NULL DEFAULT 0,   -- the newest session.priced applied
    currency           text,
    tariff_id          uuid,
    figures            jsonb,                        -- billing's figures of the newest price (so far, or final)
    figures_digest     text,                         -- of the final figures, to tell a change
    figures_changed_at timestamptz,                  -- when the final figures last changed: a CDR waits for calm
    site               jsonb,                        -- billing's first word of the session's site (its Location)
    connector          jsonb,                        -- the first word of what its connector is (standard, format, powerType)
    location           jsonb,                        -- where it is: location_id, evse_uid, connector_id, cdr_location
    session            jsonb,                        -- the OCPI Session as it stands
    sent               jsonb,                        -- the OCPI Session as the partner was last sent it
    sent_at            timestamptz,
    last_updated       timestamptz NOT NULL,
    cdr_digest         text                          -- the figures_digest the session's current CDR states
);
CREATE INDEX roaming_sessions_by_partner ON roaming_sessions (partner_id, last_updated, session_id);
CREATE INDEX roaming_sessions_unsent ON roaming_sessions (sent_at) WHERE session IS DISTINCT FROM sent;
CREATE INDEX roaming_sessions_cdr_due ON roaming_sessions (figures_changed_at)
    WHERE priced_revision > 0 AND revision > 0 AND figures_digest IS DISTINCT FROM cdr_digest;

-- Every CDR sent (CDRs module, SENDER): never changed once made; a re-priced session's CDR is
-- credited (`credited_by`) by a credit CDR and followed by a new one. `seq` pages them in the
-- order they were made.
CREATE TABLE cdrs (
    cdr_id              text PRIMARY KEY,
    seq                 bigserial UNIQUE,
    session_id          uuid NOT NULL,
    partner_id          uuid REFERENCES partners ON DELETE SET NULL,
    credit              boolean NOT NULL,
    credit_reference_id text,
    credited_by         text,
    body                jsonb NOT NULL,
    last_updated        timestamptz NOT NULL
);
CREATE INDEX cdrs_by_session ON cdrs (session_id, seq);
CREATE INDEX cdrs_by_partner ON cdrs (partner_id, last_updated, seq);
