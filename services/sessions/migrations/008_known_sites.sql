-- The sites billing announced: a site id in a filter or a token is checked against them.
CREATE TABLE sites (
    site_id    uuid PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL
);
