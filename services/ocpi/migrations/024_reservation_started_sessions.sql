-- A partner's RESERVE_NOW names the token and the EVSE it is for, like a START_SESSION: the session
-- the reservation let start claims it once and says auth_method COMMAND with its
-- authorization_reference (mod_sessions.asciidoc, AuthMethod enum: "StartSession or ReserveNow").
-- The reservation holds from its creation to its expiry_date, or until the partner's next accepted
-- RESERVE_NOW or CANCEL_RESERVATION of the same reservation_id (which replaces or ends it).
ALTER TABLE commands ADD COLUMN reservation_id text;        -- the partner's, of RESERVE_NOW and CANCEL_RESERVATION
ALTER TABLE commands ADD COLUMN reserved_until timestamptz; -- RESERVE_NOW's expiry_date

DROP INDEX commands_starting;
CREATE INDEX commands_starting ON commands (charge_point_id, token_uid, created_at)
    WHERE command IN ('START_SESSION', 'RESERVE_NOW') AND session_id IS NULL;
CREATE INDEX commands_of_reservation ON commands (partner_id, reservation_id, created_at) WHERE reservation_id IS NOT NULL;
