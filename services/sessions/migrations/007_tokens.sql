-- Who may charge: the token list (idTags, case-insensitive as OCPP's CiString20), every version of
-- each token by the time it was written (a session's authorization is its idTag's status at the
-- session's start, so a later change never rewrites it), and each session's authorization.
CREATE TABLE tokens (
    id_tag_key              text PRIMARY KEY,          -- lower(idTag)
    id_tag                  text NOT NULL,             -- as the operator wrote it
    status                  text NOT NULL,
    expires_at              timestamptz,
    parent_id_tag           text,
    site_ids                uuid[],
    max_concurrent_sessions int,
    note                    text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tokens_by_status ON tokens (status, id_tag_key);

CREATE TABLE token_versions (
    id_tag_key              text NOT NULL,
    valid_from              timestamptz NOT NULL,
    version                 bigserial,
    deleted                 boolean NOT NULL DEFAULT false,
    status                  text,
    expires_at              timestamptz,
    parent_id_tag           text,
    site_ids                uuid[],
    max_concurrent_sessions int,
    PRIMARY KEY (id_tag_key, valid_from, version)
);

ALTER TABLE sessions ADD COLUMN "authorization" text;
ALTER TABLE sessions ADD COLUMN stop_requested_at timestamptz;
CREATE INDEX sessions_by_tag_start ON sessions ((lower(id_tag)), started_at) WHERE started_at IS NOT NULL;
