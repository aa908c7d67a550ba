-- The reference gateway makes transaction ids from its clock, so a (charger, transactionId) pair
-- comes back after about three years: each use is a session of its own, numbered by `era`.
-- Every TransactionStarted of a session is kept by eventId, so two starts of one id on two
-- connectors (two cars started in one second) show as a conflict instead of merging silently.
ALTER TABLE sessions ADD COLUMN era integer NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN starts jsonb NOT NULL DEFAULT '{}';
ALTER TABLE sessions DROP CONSTRAINT sessions_charge_point_id_transaction_id_key;
ALTER TABLE sessions ADD CONSTRAINT sessions_transaction_era UNIQUE (charge_point_id, transaction_id, era);
