-- Completions no longer queue on their job's row.
--
-- Until now every completion locked the job row up front and counted `jobs.remaining` down, so
-- the completions of one job ran one at a time, and behind each `add_tasks` batch. With 1,000
-- agents on one big job, completions waited 56 ms on average for that row while the executor
-- was adding tasks, and the pooled connections they held starved the claims (docs/benchmarks.md,
-- "Scheduler at scale").
--
-- Only a task without dependents (a sink) can be the last of its job to finish: a task with a
-- dependent leaves that dependent unfinished when it completes. So only a sink's completion
-- locks the job row (before its task, in the same order as cancel, add_tasks and fail) and
-- then looks for an unfinished task of the job; the other completions touch neither the job row
-- nor a counter. `add_tasks` locks the existing tasks it links to (FOR KEY SHARE, which a
-- completion's FOR UPDATE waits for and vice versa), so a prerequisite cannot complete unseen
-- while a new dependent is linked to it. Cancel locks tasks in id order, as completions lock a
-- task and then its (later) dependents.
--
-- Lock order: job row (sink completions, add_tasks, fail, cancel), task rows by id, stream rows.

ALTER TABLE jobs DROP COLUMN remaining;


-- the sink's check: is any task of the job unfinished?
CREATE INDEX tasks_unfinished ON tasks (job_id) WHERE state IN ('pending', 'ready', 'leased');

CREATE OR REPLACE FUNCTION tiffin_end_job(p_job UUID, p_state TEXT, p_error TEXT) RETURNS BOOLEAN
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
             ORDER BY id
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
-- The stream's counter is updated last: that row is shared by every claim and completion of the
-- stream, so it is held only from that update to the commit.
CREATE OR REPLACE FUNCTION tiffin_claim(p_agent TEXT, p_kinds TEXT[], p_lease_ms BIGINT)
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
            RETURN QUERY
                UPDATE tasks t SET state = 'leased', attempt = t.attempt + 1, agent = p_agent,
                       lease_expires_at = now() + p_lease_ms * interval '1 millisecond',
                       started_at = coalesce(t.started_at, now())
                 WHERE t.id = v_id
                RETURNING t.id, t.job_id, t.key, t.kind, s.tenant, t.attempt, t.max_attempts,
                          t.lease_expires_at, t.payload;
            UPDATE streams SET running = running + 1 WHERE id = s.id;
            RETURN;
        END IF;
    END LOOP;
END $$;

-- Completes the current attempt of a task; readies dependents; a sink's completion ends the job
-- when nothing else is unfinished. o_status: ok | lost | cancelled
CREATE OR REPLACE FUNCTION tiffin_complete(p_task BIGINT, p_attempt INTEGER, p_output JSONB)
RETURNS TABLE (o_status TEXT, o_job_state TEXT, o_ready BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    v_job UUID; v_state TEXT; v_attempt INTEGER; v_exp TIMESTAMPTZ; v_stream BIGINT;
    v_jstate TEXT; v_n BIGINT; v_kinds TEXT; v_sink BOOLEAN;
    v_dep BIGINT; v_dstate TEXT; v_dkind TEXT; v_ready TEXT[] := '{}';
BEGIN
    -- A task that has a dependent keeps it (deps rows go only with their tasks); one without
    -- may gain one meanwhile, which only makes the job lock below unnecessary.
    SELECT t.job_id, NOT EXISTS (SELECT 1 FROM deps d WHERE d.prereq_id = p_task)
      INTO v_job, v_sink
      FROM tasks t WHERE t.id = p_task;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'lost'::text, NULL::text, 0::bigint; RETURN;
    END IF;
    IF v_sink THEN
        PERFORM 1 FROM jobs WHERE id = v_job FOR NO KEY UPDATE;
    END IF;
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
    -- Dependents one by one, in id order, by primary key: a join of `deps` and `tasks` is
    -- planned from statistics that lag a growing queue (on a new database the planner picked
    -- a scan of every unfinished task, 150 ms a completion at 100,000 tasks).
    FOR v_dep IN SELECT d.task_id FROM deps d WHERE d.prereq_id = p_task ORDER BY d.task_id LOOP
        UPDATE tasks t SET waiting = t.waiting - 1,
               state = CASE WHEN t.waiting = 1 THEN 'ready' ELSE t.state END,
               ready_at = CASE WHEN t.waiting = 1 THEN now() ELSE t.ready_at END
         WHERE t.id = v_dep AND t.state = 'pending'
        RETURNING t.state, t.kind INTO v_dstate, v_dkind;
        IF FOUND AND v_dstate = 'ready' THEN
            v_ready := v_ready || v_dkind;
        END IF;
    END LOOP;
    -- payload `kind:count,…`: each process wakes at most that many idle agents per kind
    SELECT coalesce(sum(n), 0), string_agg(k || ':' || n, ',')
      INTO v_n, v_kinds
      FROM (SELECT k, count(*) AS n FROM unnest(v_ready) AS u(k) GROUP BY k ORDER BY k) c;
    IF v_n > 0 THEN
        PERFORM pg_notify('tiffin_taskdb_ready', v_kinds);
    END IF;
    IF v_sink AND NOT EXISTS (
        SELECT 1 FROM tasks
         WHERE job_id = v_job AND state IN ('pending', 'ready', 'leased')
    ) THEN
        UPDATE jobs SET state = 'succeeded', finished_at = now()
         WHERE id = v_job AND state = 'running';
    END IF;
    SELECT j.state INTO v_jstate FROM jobs j WHERE j.id = v_job;
    UPDATE streams SET running = running - 1 WHERE id = v_stream;
    RETURN QUERY SELECT 'ok'::text, v_jstate, v_n;
END $$;

