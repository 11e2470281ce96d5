-- The backlog report (TaskDb::backlog): the work a task declares (NULL when unknown), and the
-- recently finished tasks of a kind found by index, newest first, for their mean duration.
ALTER TABLE tasks ADD COLUMN work INTEGER;
CREATE INDEX tasks_done_recent ON tasks (kind, finished_at) WHERE state = 'done';
