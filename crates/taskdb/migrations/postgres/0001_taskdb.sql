-- TaskDB schema for PostgreSQL. Logged tables only: a crash or restart loses nothing committed.

CREATE TABLE streams (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant              TEXT NOT NULL,
    kind                TEXT NOT NULL,
    priority_multiplier DOUBLE PRECISION NOT NULL DEFAULT 1 CHECK (priority_multiplier > 0),
    reserved            INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    -- leased tasks; maintained in the same transaction as every claim/complete/fail/expire/cancel
    running             BIGINT NOT NULL DEFAULT 0,
    UNIQUE (tenant, kind)
);

CREATE TABLE jobs (
    id          UUID PRIMARY KEY,
    seq         BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,  -- age order for "oldest job first"
    tenant      TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'running'
                CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled', 'timed_out')),
    remaining   BIGINT NOT NULL DEFAULT 0,                   -- tasks not done: O(1) completion
    meta        JSONB NOT NULL DEFAULT 'null',
    output      JSONB,
    error       TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ,
    deadline    TIMESTAMPTZ
);
CREATE INDEX jobs_tenant ON jobs (tenant, seq);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state <> 'running';
CREATE INDEX jobs_deadline ON jobs (deadline) WHERE state = 'running' AND deadline IS NOT NULL;

CREATE TABLE tasks (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id           UUID NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    key              TEXT NOT NULL,
    kind             TEXT NOT NULL,
    stream_id        BIGINT NOT NULL REFERENCES streams (id),
    job_seq          BIGINT NOT NULL,
    depth            INTEGER NOT NULL,
    state            TEXT NOT NULL
                     CHECK (state IN ('pending', 'ready', 'leased', 'done', 'failed', 'cancelled')),
    waiting          INTEGER NOT NULL,                       -- unfinished prerequisites
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
    payload          JSONB NOT NULL,
    output           JSONB,
    error            TEXT,
    agent            TEXT,
    ready_at         TIMESTAMPTZ,
    not_before       TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
    lease_expires_at TIMESTAMPTZ,
    started_at       TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at      TIMESTAMPTZ,
    UNIQUE (job_id, key)
);
-- claim order inside a stream: oldest job, nearest the root, insertion order
CREATE INDEX tasks_claim ON tasks (stream_id, job_seq, depth, id) WHERE state = 'ready';
-- fair-share tie-break: the stream whose oldest ready task waited longest
CREATE INDEX tasks_ready_age ON tasks (stream_id, ready_at) WHERE state = 'ready';
CREATE INDEX tasks_lease ON tasks (lease_expires_at) WHERE state = 'leased';

CREATE TABLE deps (
    prereq_id BIGINT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    task_id   BIGINT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    PRIMARY KEY (prereq_id, task_id)
);
CREATE INDEX deps_task ON deps (task_id);

-- Lock order everywhere: job row, then task rows, then stream rows (by id). Claims skip locked
-- tasks, so they only ever wait on stream rows, which nobody holds while waiting for anything.

-- Ends a running job (failed / cancelled / timed_out) and cancels its unfinished tasks.
CREATE FUNCTION tiffin_end_job(p_job UUID, p_state TEXT, p_error TEXT) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
DECLARE
    r RECORD;
BEGIN
    UPDATE jobs SET state = p_state, error = coalesce(error, p_error), finished_at = now()
     WHERE id = p_job AND state = 'running';
    IF NOT FOUND THEN
        RETURN FALSE;
    END IF;
    FOR r IN
        WITH old AS (
            SELECT id, stream_id, state FROM tasks
             WHERE job_id = p_job AND state IN ('pending', 'ready', 'leased')
             FOR UPDATE
        ), upd AS (
            UPDATE tasks t SET state = 'cancelled', finished_at = now()
              FROM old WHERE t.id = old.id
            RETURNING old.stream_id AS sid, old.state AS old_state
        )
        SELECT sid, count(*) AS n FROM upd WHERE old_state = 'leased' GROUP BY sid ORDER BY sid
    LOOP
        UPDATE streams SET running = running - r.n WHERE id = r.sid;
    END LOOP;
    RETURN TRUE;
END $$;

-- Claims the best ready task of the given kinds: streams in policy order, first unlocked task.
CREATE FUNCTION tiffin_claim(p_agent TEXT, p_kinds TEXT[], p_lease_ms BIGINT)
RETURNS TABLE (o_task BIGINT, o_job UUID, o_key TEXT, o_kind TEXT, o_tenant TEXT,
               o_attempt INTEGER, o_max_attempts INTEGER, o_expires TIMESTAMPTZ, o_payload JSONB)
LANGUAGE plpgsql AS $$
DECLARE
    s RECORD;
    v_id BIGINT;
BEGIN
    FOR s IN
        SELECT st.id, st.tenant FROM streams st
        CROSS JOIN LATERAL (
            SELECT t.ready_at AS oldest FROM tasks t
             WHERE t.stream_id = st.id AND t.state = 'ready' AND t.not_before <= now()
             ORDER BY t.ready_at LIMIT 1
        ) o
        WHERE st.kind = ANY (p_kinds)
        ORDER BY greatest(st.reserved - st.running, 0) DESC,
                 st.running::float8 / st.priority_multiplier,
                 o.oldest, st.id
    LOOP
        SELECT t.id INTO v_id FROM tasks t
         WHERE t.stream_id = s.id AND t.state = 'ready' AND t.not_before <= now()
         ORDER BY t.job_seq, t.depth, t.id
         LIMIT 1 FOR UPDATE SKIP LOCKED;
        IF FOUND THEN
            UPDATE streams SET running = running + 1 WHERE id = s.id;
            RETURN QUERY
                UPDATE tasks t SET state = 'leased', attempt = t.attempt + 1, agent = p_agent,
                       lease_expires_at = now() + p_lease_ms * interval '1 millisecond',
                       started_at = coalesce(t.started_at, now())
                 WHERE t.id = v_id
                RETURNING t.id, t.job_id, t.key, t.kind, s.tenant, t.attempt, t.max_attempts,
                          t.lease_expires_at, t.payload;
            RETURN;
        END IF;
    END LOOP;
END $$;

-- Completes the current attempt of a task; readies dependents; completes the job at 0 remaining.
-- o_status: ok | lost | cancelled
CREATE FUNCTION tiffin_complete(p_task BIGINT, p_attempt INTEGER, p_output JSONB)
RETURNS TABLE (o_status TEXT, o_job_state TEXT, o_ready BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    v_job UUID; v_state TEXT; v_attempt INTEGER; v_exp TIMESTAMPTZ; v_stream BIGINT;
    v_jstate TEXT; v_n BIGINT; v_kinds TEXT;
BEGIN
    SELECT t.job_id INTO v_job FROM tasks t WHERE t.id = p_task;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'lost'::text, NULL::text, 0::bigint; RETURN;
    END IF;
    PERFORM 1 FROM jobs WHERE id = v_job FOR UPDATE;
    SELECT t.state, t.attempt, t.lease_expires_at, t.stream_id
      INTO v_state, v_attempt, v_exp, v_stream
      FROM tasks t WHERE t.id = p_task FOR UPDATE;
    IF v_attempt <> p_attempt THEN
        RETURN QUERY SELECT 'lost'::text, NULL::text, 0::bigint; RETURN;
    ELSIF v_state = 'cancelled' THEN
        RETURN QUERY SELECT 'cancelled'::text, NULL::text, 0::bigint; RETURN;
    ELSIF v_state <> 'leased' OR v_exp < now() THEN
        RETURN QUERY SELECT 'lost'::text, NULL::text, 0::bigint; RETURN;
    END IF;
    UPDATE tasks SET state = 'done', output = p_output, finished_at = now()
     WHERE id = p_task;
    WITH r AS (
        UPDATE tasks t SET waiting = t.waiting - 1,
               state = CASE WHEN t.waiting = 1 THEN 'ready' ELSE t.state END,
               ready_at = CASE WHEN t.waiting = 1 THEN now() ELSE t.ready_at END
          FROM deps d
         WHERE d.prereq_id = p_task AND t.id = d.task_id AND t.state = 'pending'
        RETURNING t.state AS st, t.kind AS k
    )
    -- payload `kind:count,…`: each process wakes at most that many idle agents per kind
    SELECT coalesce(sum(n), 0), string_agg(k || ':' || n, ',')
      INTO v_n, v_kinds
      FROM (SELECT k, count(*) AS n FROM r WHERE st = 'ready' GROUP BY k) c;
    IF v_n > 0 THEN
        PERFORM pg_notify('tiffin_taskdb_ready', v_kinds);
    END IF;
    UPDATE jobs j SET remaining = j.remaining - 1,
           state = CASE WHEN j.remaining = 1 AND j.state = 'running' THEN 'succeeded' ELSE j.state END,
           finished_at = CASE WHEN j.remaining = 1 AND j.state = 'running' THEN now()
                              ELSE j.finished_at END
     WHERE j.id = v_job
    RETURNING j.state INTO v_jstate;
    UPDATE streams SET running = running - 1 WHERE id = v_stream;
    RETURN QUERY SELECT 'ok'::text, v_jstate, v_n;
END $$;

-- Fails the current attempt. p_expired: called by the housekeeper for an expired lease.
-- o_status: retrying | job_failed | lost | cancelled
CREATE FUNCTION tiffin_fail(p_task BIGINT, p_attempt INTEGER, p_error TEXT, p_permanent BOOLEAN,
                            p_backoff_ms BIGINT, p_expired BOOLEAN)
RETURNS TABLE (o_status TEXT, o_not_before TIMESTAMPTZ)
LANGUAGE plpgsql AS $$
DECLARE
    v_job UUID; v_state TEXT; v_attempt INTEGER; v_max INTEGER; v_exp TIMESTAMPTZ;
    v_stream BIGINT; v_key TEXT; v_kind TEXT; v_nb TIMESTAMPTZ;
BEGIN
    SELECT t.job_id INTO v_job FROM tasks t WHERE t.id = p_task;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'lost'::text, NULL::timestamptz; RETURN;
    END IF;
    PERFORM 1 FROM jobs WHERE id = v_job FOR UPDATE;
    SELECT t.state, t.attempt, t.max_attempts, t.lease_expires_at, t.stream_id, t.key, t.kind
      INTO v_state, v_attempt, v_max, v_exp, v_stream, v_key, v_kind
      FROM tasks t WHERE t.id = p_task FOR UPDATE;
    IF v_attempt <> p_attempt THEN
        RETURN QUERY SELECT 'lost'::text, NULL::timestamptz; RETURN;
    ELSIF v_state = 'cancelled' THEN
        RETURN QUERY SELECT 'cancelled'::text, NULL::timestamptz; RETURN;
    ELSIF v_state <> 'leased' OR (v_exp < now()) <> p_expired THEN
        RETURN QUERY SELECT 'lost'::text, NULL::timestamptz; RETURN;
    END IF;
    IF NOT p_permanent AND v_attempt < v_max THEN
        v_nb := now() + p_backoff_ms * interval '1 millisecond';
        UPDATE tasks SET state = 'ready', error = p_error, lease_expires_at = NULL,
               ready_at = now(), not_before = v_nb
         WHERE id = p_task;
        UPDATE streams SET running = running - 1 WHERE id = v_stream;
        PERFORM pg_notify('tiffin_taskdb_ready', v_kind || ':1');
        RETURN QUERY SELECT 'retrying'::text, v_nb; RETURN;
    END IF;
    -- cancels every unfinished task, this one included (fixing stream counters), then marks
    -- this one failed
    PERFORM tiffin_end_job(v_job, 'failed',
                           format('task %s (%s) failed: %s', v_key, v_kind, p_error));
    UPDATE tasks SET state = 'failed', error = p_error, finished_at = now() WHERE id = p_task;
    RETURN QUERY SELECT 'job_failed'::text, NULL::timestamptz;
END $$;

-- Makes expired leases with attempts left ready again. Safe concurrently (SKIP LOCKED).
CREATE FUNCTION tiffin_requeue_expired() RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    r RECORD; v_total BIGINT := 0; v_kinds TEXT;
BEGIN
    FOR r IN
        WITH exp AS (
            SELECT id FROM tasks
             WHERE state = 'leased' AND lease_expires_at < now() AND attempt < max_attempts
             FOR UPDATE SKIP LOCKED
        ), upd AS (
            UPDATE tasks t SET state = 'ready', ready_at = now(), not_before = now(),
                   lease_expires_at = NULL, error = 'lease expired'
              FROM exp WHERE t.id = exp.id
            RETURNING t.stream_id AS sid, t.kind AS k
        )
        SELECT sid, min(k) AS k, count(*) AS n FROM upd GROUP BY sid ORDER BY sid
    LOOP
        UPDATE streams SET running = running - r.n WHERE id = r.sid;
        v_total := v_total + r.n;
        v_kinds := concat_ws(',', v_kinds, r.k || ':' || r.n);
    END LOOP;
    IF v_total > 0 THEN
        PERFORM pg_notify('tiffin_taskdb_ready', v_kinds);
    END IF;
    RETURN v_total;
END $$;
