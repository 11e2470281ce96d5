-- The claim order (issue 28; docs/architecture.md, "Claim order").
--
-- Fair share by recent service: each claim charges its stream one task of service,
-- kept as `served` as of `served_at` (microseconds since the Unix epoch) and decayed by the
-- reader (policy.rs `decayed`). The claim ranks streams by served / priority_multiplier instead
-- of what they run at this instant. SQLite has one writer, so the stream row holds it directly.
ALTER TABLE streams ADD COLUMN served REAL NOT NULL DEFAULT 0;
ALTER TABLE streams ADD COLUMN served_at INTEGER NOT NULL DEFAULT 0;

-- Inside a stream: the job due first, then the higher job priority, then the oldest job,
-- nearest the root, insertion order. `jobs.due` is NULL without a due time; the tasks carry a
-- copy for the "ready" index, with "none" stored as the largest integer so it sorts last.
ALTER TABLE jobs ADD COLUMN due INTEGER;
ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN job_due INTEGER NOT NULL DEFAULT 9223372036854775807;
ALTER TABLE tasks ADD COLUMN job_priority INTEGER NOT NULL DEFAULT 0;
DROP INDEX tasks_claim;
CREATE INDEX tasks_claim ON tasks (stream_id, job_due, job_priority DESC, job_seq, depth, id)
    WHERE state = 'ready';
