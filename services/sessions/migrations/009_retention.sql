-- Retention: a session whose samples were pruned (its money settled long ago) keeps its
-- finalization as it was; the prune finds the candidates by this index.
ALTER TABLE sessions ADD COLUMN samples_pruned_at timestamptz;
CREATE INDEX sessions_prunable ON sessions (finalized_at) WHERE status = 'Finalized' AND samples_pruned_at IS NULL;
