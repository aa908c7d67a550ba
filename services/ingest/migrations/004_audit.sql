-- The audit trail: every accepted operator write of every service, as `audit.recorded` tells it.
CREATE TABLE audit (
    entry_id   uuid PRIMARY KEY,
    at         timestamptz NOT NULL,
    actor      text NOT NULL,
    role       text NOT NULL,
    method     text NOT NULL,
    path       text NOT NULL,
    entity     text NOT NULL,
    entity_id  text,
    before     jsonb,
    after      jsonb
);
CREATE INDEX audit_by_time ON audit (at DESC, entry_id DESC);
CREATE INDEX audit_by_entity ON audit (entity, entity_id, at DESC);
CREATE INDEX audit_by_actor ON audit (actor, at DESC);
