-- Durable throughput: no claim or completion waits on a row that every other one also writes.
--
-- With PostgreSQL's default durability a transaction holds its row locks until its commit
-- record is flushed to disk. Every claim and completion used to update its stream's `running`
-- counter, and every sink completion locked its job row, so all claims and completions of a
-- stream (and all sink completions of a job) queued behind one another's flushes: 140 / 360 /
-- 258 claim+complete per second at 1 / 8 / 32 workers on one disk (docs/benchmarks.md).
--
-- 1. `running` becomes a base (`streams.running`, still kept by the rare paths: fail, cancel,
--    expiry) plus deltas in `stream_running`, one row per (stream, shard). Claims and
--    completions add to a shard no other transaction holds (SKIP LOCKED), or create one, so
--    they do not wait for each other's commits. The policy reads base + sum of shards.
-- 2. `tiffin_claim_batch` claims up to N tasks in one transaction (one commit for all).
-- 3. `tiffin_complete_many` completes several tasks in one transaction and takes no job lock;
--    the job is ended afterwards by `tiffin_finish_jobs`, in its own statement, which locks the
--    job row only when no unfinished task is left. Two racing last completions both commit
--    before they check, and the later check sees both, so at least one ends the job. A crash
--    between the two statements leaves a running job with nothing unfinished:
--    `tiffin_finish_orphaned_jobs` (run by the housekeeper's `requeue_expired`) ends it.
--
-- Lock order stays: job row, task rows by id, stream rows; shard rows come last, by stream id.

CREATE TABLE stream_running (
    stream_id BIGINT NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    shard     INTEGER NOT NULL,
    n         BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (stream_id, shard)
) WITH (fillfactor = 50, autovacuum_vacuum_scale_factor = 0,
        autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0);

-- the housekeeper's repair: running jobs, few among many ended ones
CREATE INDEX jobs_running ON jobs (seq) WHERE state = 'running';

-- Adds p_n to the running count of a stream, on a shard no other transaction holds (the
-- lowest free one); when every shard is held, on this server process's own (made if missing),
-- which may wait. So the shards grow to the number of transactions that overlap.
CREATE FUNCTION tiffin_add_running(p_stream BIGINT, p_n BIGINT) RETURNS VOID
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE stream_running r SET n = r.n + p_n
     WHERE r.stream_id = p_stream
       AND r.shard = (SELECT f.shard FROM stream_running f WHERE f.stream_id = p_stream
                       ORDER BY f.shard LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED);
    IF NOT FOUND THEN
        INSERT INTO stream_running AS r (stream_id, shard, n)
        VALUES (p_stream, pg_backend_pid() % 64, p_n)
        ON CONFLICT (stream_id, shard) DO UPDATE SET n = r.n + EXCLUDED.n;
    END IF;
END $$;

-- Claims up to p_max ready tasks of the given kinds. Streams get tasks one at a time by the
-- policy (unmet reservation, then running / multiplier, then the longest wait at the start of
-- the batch, then stream id), counting the tasks already given in this batch; inside a stream,
-- oldest job, nearest the root, insertion order. Rows come back by stream id, then claim order.
CREATE FUNCTION tiffin_claim_batch(p_agent TEXT, p_kinds TEXT[], p_lease_ms BIGINT,
                                   p_max INTEGER)
RETURNS TABLE (o_task BIGINT, o_job UUID, o_key TEXT, o_kind TEXT, o_tenant TEXT,
               o_attempt INTEGER, o_max_attempts INTEGER, o_expires TIMESTAMPTZ, o_payload JSONB)
LANGUAGE plpgsql AS $$
DECLARE
    v_sid BIGINT[]; v_tenant TEXT[]; v_run FLOAT8[]; v_res FLOAT8[]; v_mult FLOAT8[];
    v_old TIMESTAMPTZ[]; v_avail INTEGER[]; v_quota INTEGER[];
    v_n INTEGER; v_best INTEGER; v_better BOOLEAN; v_got BIGINT;
    v_claimed_sid BIGINT[] := '{}'; v_claimed_n BIGINT[] := '{}';
BEGIN
    IF p_max < 1 THEN
        RETURN;
    END IF;
    -- claimable streams with up to p_max claimable tasks each (by the "ready" index)
    SELECT array_agg(c.id ORDER BY c.id), array_agg(c.tenant ORDER BY c.id),
           array_agg(c.running ORDER BY c.id), array_agg(c.reserved ORDER BY c.id),
           array_agg(c.priority_multiplier ORDER BY c.id), array_agg(c.oldest ORDER BY c.id),
           array_agg(c.avail ORDER BY c.id)
      INTO v_sid, v_tenant, v_run, v_res, v_mult, v_old, v_avail
      FROM (SELECT st.id, st.tenant, st.reserved::float8 AS reserved, st.priority_multiplier,
                   (st.running + coalesce((SELECT sum(r.n) FROM stream_running r
                                            WHERE r.stream_id = st.id), 0))::float8 AS running,
                   o.oldest, o.avail
              FROM streams st
             CROSS JOIN LATERAL (
                   SELECT min(x.ready_at) AS oldest, count(*)::integer AS avail
                     FROM (SELECT t.ready_at FROM tasks t
                            WHERE t.stream_id = st.id AND t.state = 'ready'
                              AND t.not_before <= now()
                            ORDER BY t.ready_at LIMIT p_max) x
             ) o
             WHERE st.kind = ANY (p_kinds) AND o.avail > 0) c;
    IF v_sid IS NULL THEN
        RETURN;
    END IF;
    v_n := array_length(v_sid, 1);
    v_quota := array_fill(0, ARRAY[v_n]);
    -- hand out the batch one task at a time, as that many single claims would
    FOR k IN 1..p_max LOOP
        v_best := NULL;
        FOR i IN 1..v_n LOOP
            CONTINUE WHEN v_avail[i] = 0;
            IF v_best IS NULL THEN
                v_better := TRUE;
            ELSIF greatest(v_res[i] - v_run[i], 0) <> greatest(v_res[v_best] - v_run[v_best], 0) THEN
                v_better := greatest(v_res[i] - v_run[i], 0) > greatest(v_res[v_best] - v_run[v_best], 0);
            ELSIF v_run[i] / v_mult[i] <> v_run[v_best] / v_mult[v_best] THEN
                v_better := v_run[i] / v_mult[i] < v_run[v_best] / v_mult[v_best];
            ELSIF v_old[i] <> v_old[v_best] THEN
                v_better := v_old[i] < v_old[v_best];
            ELSE
                v_better := v_sid[i] < v_sid[v_best];
            END IF;
            IF v_better THEN
                v_best := i;
            END IF;
        END LOOP;
        EXIT WHEN v_best IS NULL;
        v_quota[v_best] := v_quota[v_best] + 1;
        v_run[v_best] := v_run[v_best] + 1;
        v_avail[v_best] := v_avail[v_best] - 1;
    END LOOP;
    FOR i IN 1..v_n LOOP
        CONTINUE WHEN v_quota[i] = 0;
        RETURN QUERY
            WITH pick AS (
                SELECT t.id FROM tasks t
                 WHERE t.stream_id = v_sid[i] AND t.state = 'ready' AND t.not_before <= now()
                 ORDER BY t.job_seq, t.depth, t.id
                 LIMIT v_quota[i] FOR UPDATE SKIP LOCKED
            ), upd AS (
                UPDATE tasks t SET state = 'leased', attempt = t.attempt + 1, agent = p_agent,
                       lease_expires_at = now() + p_lease_ms * interval '1 millisecond',
                       started_at = coalesce(t.started_at, now())
                  FROM pick WHERE t.id = pick.id
                RETURNING t.id, t.job_id, t.key, t.kind, t.attempt, t.max_attempts,
                          t.lease_expires_at, t.payload, t.job_seq, t.depth
            )
            SELECT u.id, u.job_id, u.key, u.kind, v_tenant[i], u.attempt, u.max_attempts,
                   u.lease_expires_at, u.payload
              FROM upd u ORDER BY u.job_seq, u.depth, u.id;
        GET DIAGNOSTICS v_got = ROW_COUNT;
        IF v_got > 0 THEN
            v_claimed_sid := v_claimed_sid || v_sid[i];
            v_claimed_n := v_claimed_n || v_got;
        END IF;
    END LOOP;
    -- counters last (they are the only rows another claim may wait for), by stream id
    FOR i IN 1..coalesce(array_length(v_claimed_sid, 1), 0) LOOP
        PERFORM tiffin_add_running(v_claimed_sid[i], v_claimed_n[i]);
    END LOOP;
END $$;

-- The single claim of older binaries: the same policy, now reading the sharded counters.
CREATE OR REPLACE FUNCTION tiffin_claim(p_agent TEXT, p_kinds TEXT[], p_lease_ms BIGINT)
RETURNS TABLE (o_task BIGINT, o_job UUID, o_key TEXT, o_kind TEXT, o_tenant TEXT,
               o_attempt INTEGER, o_max_attempts INTEGER, o_expires TIMESTAMPTZ, o_payload JSONB)
LANGUAGE sql AS $$
    SELECT * FROM tiffin_claim_batch(p_agent, p_kinds, p_lease_ms, 1)
$$;

-- Completes the current attempts of several tasks in one transaction and readies the
-- dependents whose last prerequisite they were. Takes no job lock: the caller ends the jobs of
-- completed sinks (o_sink) with tiffin_finish_jobs after this commits. One row per input, in
-- input order. o_status: ok | lost | cancelled; o_ready: dependents this task made ready;
-- o_job_state: the job's state as this transaction sees it (read without a lock).
CREATE FUNCTION tiffin_complete_many(p_tasks BIGINT[], p_attempts INTEGER[], p_outputs JSONB[])
RETURNS TABLE (o_status TEXT, o_job UUID, o_sink BOOLEAN, o_ready BIGINT, o_job_state TEXT)
LANGUAGE plpgsql AS $$
DECLARE
    r RECORD; v_n INTEGER; v_pos INTEGER;
    v_status TEXT[]; v_jobs UUID[]; v_sinks BOOLEAN[]; v_ready BIGINT[];
    v_done BIGINT[] := '{}'; v_sid BIGINT[] := '{}'; v_sn BIGINT[] := '{}';
    v_dstate TEXT; v_dkind TEXT; v_ready_kinds TEXT[] := '{}'; v_payload TEXT;
BEGIN
    v_n := coalesce(array_length(p_tasks, 1), 0);
    IF v_n = 0 THEN
        RETURN;
    END IF;
    v_status := array_fill('lost'::text, ARRAY[v_n]);
    v_jobs := array_fill(NULL::uuid, ARRAY[v_n]);
    v_sinks := array_fill(FALSE, ARRAY[v_n]);
    v_ready := array_fill(0::bigint, ARRAY[v_n]);
    -- lock the tasks in id order (as cancel and add_tasks do), then judge each lease
    FOR r IN
        SELECT t.id, t.job_id, t.state, t.attempt, t.lease_expires_at, t.stream_id, u.pos,
               u.attempt AS want, u.output,
               NOT EXISTS (SELECT 1 FROM deps d WHERE d.prereq_id = t.id) AS sink
          FROM unnest(p_tasks, p_attempts, p_outputs) WITH ORDINALITY AS u(id, attempt, output, pos)
          JOIN tasks t ON t.id = u.id
         ORDER BY t.id, u.pos
           FOR UPDATE OF t
    LOOP
        v_jobs[r.pos] := r.job_id;
        IF r.attempt <> r.want THEN
            CONTINUE;
        ELSIF r.state = 'cancelled' THEN
            v_status[r.pos] := 'cancelled';
            CONTINUE;
        ELSIF r.state <> 'leased' OR r.lease_expires_at < now() OR r.id = ANY (v_done) THEN
            CONTINUE;
        END IF;
        UPDATE tasks SET state = 'done', output = r.output, finished_at = now() WHERE id = r.id;
        v_status[r.pos] := 'ok';
        v_sinks[r.pos] := r.sink;
        v_done := v_done || r.id;
        v_pos := array_position(v_sid, r.stream_id);
        IF v_pos IS NULL THEN
            v_sid := v_sid || r.stream_id;
            v_sn := v_sn || (-1)::bigint;
        ELSE
            v_sn[v_pos] := v_sn[v_pos] - 1;
        END IF;
    END LOOP;
    -- Dependents one by one, in id order, by primary key (see migration 0004), each counted
    -- down by how many of its prerequisites this batch finished. Readiness is credited to the
    -- batch task with the highest id among them.
    FOR r IN
        SELECT d.task_id, count(*) AS n, max(d.prereq_id) AS last_prereq
          FROM deps d WHERE d.prereq_id = ANY (v_done)
         GROUP BY d.task_id ORDER BY d.task_id
    LOOP
        UPDATE tasks t SET waiting = t.waiting - r.n,
               state = CASE WHEN t.waiting = r.n THEN 'ready' ELSE t.state END,
               ready_at = CASE WHEN t.waiting = r.n THEN now() ELSE t.ready_at END
         WHERE t.id = r.task_id AND t.state = 'pending'
        RETURNING t.state, t.kind INTO v_dstate, v_dkind;
        IF FOUND AND v_dstate = 'ready' THEN
            v_ready_kinds := v_ready_kinds || v_dkind;
            v_pos := array_position(p_tasks, r.last_prereq);
            v_ready[v_pos] := v_ready[v_pos] + 1;
        END IF;
    END LOOP;
    -- one notification for the batch, `kind:count,…`: each process wakes that many agents
    SELECT string_agg(k || ':' || c, ',' ORDER BY k) INTO v_payload
      FROM (SELECT k, count(*) AS c FROM unnest(v_ready_kinds) AS u(k) GROUP BY k) g;
    IF v_payload IS NOT NULL THEN
        PERFORM pg_notify('tiffin_taskdb_ready', v_payload);
    END IF;
    FOR r IN SELECT s.sid, s.n FROM unnest(v_sid, v_sn) AS s(sid, n) ORDER BY s.sid LOOP
        PERFORM tiffin_add_running(r.sid, r.n);
    END LOOP;
    RETURN QUERY SELECT v_status[i], v_jobs[i], v_sinks[i], v_ready[i], j.state
                   FROM generate_series(1, v_n) AS i LEFT JOIN jobs j ON j.id = v_jobs[i]
                  ORDER BY i;
END $$;

-- Ends each given running job that has no unfinished task as succeeded, locking a job row only
-- when its tasks are all finished; returns every given job's state afterwards (by job id).
-- Run after the completions it follows have committed.
CREATE FUNCTION tiffin_finish_jobs(p_jobs UUID[])
RETURNS TABLE (o_job UUID, o_state TEXT)
LANGUAGE plpgsql AS $$
DECLARE
    v_job UUID;
BEGIN
    FOR v_job IN SELECT DISTINCT j FROM unnest(p_jobs) AS u(j) WHERE j IS NOT NULL ORDER BY 1 LOOP
        IF NOT EXISTS (SELECT 1 FROM tasks t
                        WHERE t.job_id = v_job AND t.state IN ('pending', 'ready', 'leased')) THEN
            PERFORM 1 FROM jobs WHERE id = v_job AND state = 'running' FOR NO KEY UPDATE;
            -- checked again under the lock: add_tasks may have added work meanwhile
            IF FOUND AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.job_id = v_job
                                        AND t.state IN ('pending', 'ready', 'leased')) THEN
                UPDATE jobs SET state = 'succeeded', finished_at = now()
                 WHERE id = v_job AND state = 'running';
            END IF;
        END IF;
        RETURN QUERY SELECT j.id, j.state FROM jobs j WHERE j.id = v_job;
    END LOOP;
END $$;

-- Ends running jobs whose last completion committed but whose end did not (the process or the
-- server stopped between the two). Returns how many it ended.
CREATE FUNCTION tiffin_finish_orphaned_jobs() RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    v_jobs UUID[];
    v_n BIGINT;
BEGIN
    SELECT array_agg(j.id) INTO v_jobs FROM jobs j
     WHERE j.state = 'running'
       AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.job_id = j.id
                          AND t.state IN ('pending', 'ready', 'leased'));
    IF v_jobs IS NULL THEN
        RETURN 0;
    END IF;
    SELECT count(*) INTO v_n FROM tiffin_finish_jobs(v_jobs) WHERE o_state = 'succeeded';
    RETURN v_n;
END $$;
