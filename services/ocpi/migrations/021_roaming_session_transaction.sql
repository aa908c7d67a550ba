-- The OCPP transactionId of a partner's session (from session.progress and session.finalized), so
-- the partner's STOP_SESSION can be ordered as the charger's RemoteStopTransaction.
ALTER TABLE roaming_sessions ADD COLUMN transaction_id integer;
