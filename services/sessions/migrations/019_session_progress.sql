-- A going session's progress is announced (`session.progress`) at its start and then at most every
-- CPMS_SESSION_PROGRESS_SECONDS: how many times so far, and when last.
ALTER TABLE sessions ADD COLUMN progress_sequence integer NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN progress_at timestamptz;
