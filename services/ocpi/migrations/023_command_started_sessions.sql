-- A partner's START_SESSION names the token and the EVSE it is for; the session it started is
-- matched to it (the same partner's token uid at that charger and connector, within the command's
-- lifetime) and claims it once: its Session and CDR say auth_method COMMAND and carry the
-- command's authorization_reference (mod_sessions.asciidoc, AuthMethod enum).
ALTER TABLE commands ADD COLUMN token_uid text;        -- lower-cased, as tokens.uid_key
ALTER TABLE commands ADD COLUMN connector_id integer;  -- the OCPP connector, NULL when the location stood for its charger
ALTER TABLE commands ADD COLUMN authorization_reference text;
ALTER TABLE commands ADD COLUMN session_id uuid UNIQUE; -- the session it started, once one claimed it
CREATE INDEX commands_starting ON commands (charge_point_id, token_uid, created_at)
    WHERE command = 'START_SESSION' AND session_id IS NULL;

ALTER TABLE roaming_sessions ADD COLUMN authorization_reference text;
-- When any message of the session first reached us, by our clock.
ALTER TABLE roaming_sessions ADD COLUMN heard_at timestamptz NOT NULL DEFAULT now();
