-- The network's sessions newest first (GET /v1/sessions), and by the idTag that started them.
CREATE INDEX sessions_newest_first ON sessions (sort_at DESC, session_id DESC);
CREATE INDEX sessions_by_id_tag ON sessions ((coalesce(id_tag, end_id_tag)), sort_at DESC, session_id DESC);
