-- What each price component of the tariff billed, as billing priced it (session.priced).
ALTER TABLE sessions ADD COLUMN cost_breakdown jsonb;
