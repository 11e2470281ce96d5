-- The backlog report (TaskDb::backlog): the work a task declares (NULL when unknown; adding a
-- column without a default rewrites nothing), and the recently finished tasks of a kind found
-- by index, newest first, for their mean duration. The index is partial: a task enters it once,
-- when it completes, so claims, heartbeats and failures do not maintain it. On a large tasks
-- table, building it blocks writes for as long as the build takes (seconds per million tasks).
ALTER TABLE tasks ADD COLUMN work BIGINT;
CREATE INDEX tasks_done_recent ON tasks (kind, finished_at) WHERE state = 'done';
