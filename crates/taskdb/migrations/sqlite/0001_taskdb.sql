-- TaskDB schema for SQLite (embedded mode). Times are microseconds since the Unix epoch.

CREATE TABLE streams (
    id                  INTEGER PRIMARY KEY,
    tenant              TEXT NOT NULL,
    kind                TEXT NOT NULL,
    priority_multiplier REAL NOT NULL DEFAULT 1 CHECK (priority_multiplier > 0),
    reserved            INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    running             INTEGER NOT NULL DEFAULT 0,
    UNIQUE (tenant, kind)
);

CREATE TABLE jobs (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    tenant      TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'running'
                CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled', 'timed_out')),
    remaining   INTEGER NOT NULL DEFAULT 0,
    meta        TEXT NOT NULL,
    output      TEXT,
    error       TEXT,
    created_at  INTEGER NOT NULL,
    finished_at INTEGER,
    deadline    INTEGER
);
CREATE INDEX jobs_tenant ON jobs (tenant, seq);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state <> 'running';
CREATE INDEX jobs_deadline ON jobs (deadline) WHERE state = 'running' AND deadline IS NOT NULL;

CREATE TABLE tasks (
    id               INTEGER PRIMARY KEY,
    job_seq          INTEGER NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE,
    key              TEXT NOT NULL,
    kind             TEXT NOT NULL,
    stream_id        INTEGER NOT NULL REFERENCES streams (id),
    depth            INTEGER NOT NULL,
    state            TEXT NOT NULL
                     CHECK (state IN ('pending', 'ready', 'leased', 'done', 'failed', 'cancelled')),
    waiting          INTEGER NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
    payload          TEXT NOT NULL,
    output           TEXT,
    error            TEXT,
    agent            TEXT,
    ready_at         INTEGER,
    not_before       INTEGER NOT NULL DEFAULT 0,
    lease_expires_at INTEGER,
    started_at       INTEGER,
    created_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    UNIQUE (job_seq, key)
);
CREATE INDEX tasks_claim ON tasks (stream_id, job_seq, depth, id) WHERE state = 'ready';
CREATE INDEX tasks_ready_age ON tasks (stream_id, ready_at) WHERE state = 'ready';
CREATE INDEX tasks_lease ON tasks (lease_expires_at) WHERE state = 'leased';

CREATE TABLE deps (
    prereq_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    task_id   INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    PRIMARY KEY (prereq_id, task_id)
) WITHOUT ROWID;
CREATE INDEX deps_task ON deps (task_id);
