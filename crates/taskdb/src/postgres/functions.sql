-- The PostgreSQL scheduler's functions, as they are now: the one definition of each
-- (docs/architecture.md, "Claim order" and "TaskDB"). Applied after the table migrations on
-- every connect, idempotently (CREATE OR REPLACE, under an advisory lock), by
-- `PostgresTaskDb::from_pool` (postgres.rs). The migrations in migrations/postgres/ own the tables; the
-- functions they once defined are replaced by these, and the ones no longer called were
-- dropped (0011). A change of a function's arguments or result type needs a migration that
-- drops the old one first.

-- What p_served of service, as of p_at, is worth at p_now (policy.rs `decayed`). The exponent
-- is clamped: PostgreSQL's exp() raises an error on underflow rather than returning 0.
-- date_part, not extract: it stays in float8 (extract computes a numeric).
CREATE OR REPLACE FUNCTION tiffin_decayed(p_served FLOAT8, p_at TIMESTAMPTZ, p_now TIMESTAMPTZ,
                               p_half_life_ms BIGINT) RETURNS FLOAT8
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_served <= 0 THEN 0::float8
           ELSE p_served * exp(greatest(-700::float8,
                    -ln(2::float8) * greatest(date_part('epoch', p_now - p_at), 0)
                    * 1000 / greatest(p_half_life_ms, 1)))
           END
$$;

-- Adds p_n claimed tasks to a stream: p_n running and p_n tasks of service, on a shard no
-- other transaction holds (as tiffin_add_running does for running alone).
CREATE OR REPLACE FUNCTION tiffin_add_claimed(p_stream BIGINT, p_n BIGINT, p_half_life_ms BIGINT)
RETURNS VOID
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE stream_running r
       SET n = r.n + p_n,
           served = tiffin_decayed(r.served, r.served_at, now(), p_half_life_ms) + p_n,
           served_at = greatest(r.served_at, now())
     WHERE r.stream_id = p_stream
       AND r.shard = (SELECT f.shard FROM stream_running f WHERE f.stream_id = p_stream
                       ORDER BY f.shard LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED);
    IF NOT FOUND THEN
        INSERT INTO stream_running AS r (stream_id, shard, n, served, served_at)
        VALUES (p_stream, pg_backend_pid() % 64, p_n, p_n, now())
        ON CONFLICT (stream_id, shard) DO UPDATE
           SET n = r.n + EXCLUDED.n,
               served = tiffin_decayed(r.served, r.served_at, now(), p_half_life_ms)
                        + EXCLUDED.served,
               served_at = greatest(r.served_at, now());
    END IF;
END $$;

-- Adds p_n to the running count of a stream, on a shard no other transaction holds (the
-- lowest free one); when every shard is held, on this server process's own (made if missing),
-- which may wait. So the shards grow to the number of transactions that overlap.
CREATE OR REPLACE FUNCTION tiffin_add_running(p_stream BIGINT, p_n BIGINT) RETURNS VOID
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

-- The stream the claimer p_agent is pinned to among streams of p_kinds, and whether it waits
-- when that stream has nothing ready; no row when it is not pinned.
CREATE OR REPLACE FUNCTION tiffin_pin_of(p_agent TEXT, p_kinds TEXT[], p_alive_ms BIGINT)
RETURNS TABLE (o_stream BIGINT, o_wait BOOLEAN)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_base TEXT := regexp_replace(p_agent, '/[^/]*$', '');
    v_taken TEXT[] := '{}';
    v_ids TEXT[];
    r RECORD;
BEGIN
    FOR r IN SELECT s.id, s.kind, s.reserved, s.reserved_idle FROM streams s
              WHERE s.reserved > 0 ORDER BY s.id LOOP
        SELECT array_agg(x.id ORDER BY x.first_seen, x.id) INTO v_ids
          FROM (SELECT a.id, a.first_seen FROM agents a
                 WHERE a.last_seen >= now() - p_alive_ms * interval '1 millisecond'
                   AND a.kinds ? r.kind AND NOT (a.id = ANY (v_taken))
                 ORDER BY a.first_seen, a.id LIMIT r.reserved) x;
        CONTINUE WHEN v_ids IS NULL;
        IF p_agent = ANY (v_ids) OR v_base = ANY (v_ids) THEN
            IF r.kind = ANY (p_kinds) THEN
                o_stream := r.id;
                o_wait := r.reserved_idle = 'wait';
                RETURN NEXT;
            END IF;
            RETURN;
        END IF;
        v_taken := v_taken || v_ids;
    END LOOP;
END $$;

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

-- Fails the current attempt. p_expired: called by the housekeeper for an expired lease.
-- o_status: retrying | job_failed | lost | cancelled
CREATE OR REPLACE FUNCTION tiffin_fail(p_task BIGINT, p_attempt INTEGER, p_error TEXT, p_permanent BOOLEAN,
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
CREATE OR REPLACE FUNCTION tiffin_requeue_expired() RETURNS BIGINT
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

CREATE OR REPLACE FUNCTION tiffin_claim_batch(p_agent TEXT, p_kinds TEXT[], p_lease_ms BIGINT,
                                   p_max INTEGER, p_half_life_ms BIGINT DEFAULT 300000,
                                   p_max_work BIGINT DEFAULT NULL,
                                   p_alive_ms BIGINT DEFAULT 30000,
                                   p_assumed_task_ms BIGINT DEFAULT 60000)
RETURNS TABLE (o_task BIGINT, o_job UUID, o_key TEXT, o_kind TEXT, o_tenant TEXT,
               o_attempt INTEGER, o_max_attempts INTEGER, o_expires TIMESTAMPTZ, o_payload JSONB)
LANGUAGE plpgsql AS $$
DECLARE
    v_sid BIGINT[]; v_tenant TEXT[]; v_run FLOAT8[]; v_res FLOAT8[]; v_mult FLOAT8[];
    v_srv FLOAT8[]; v_share FLOAT8[]; v_old TIMESTAMPTZ[]; v_avail INTEGER[]; v_quota INTEGER[];
    v_n INTEGER; v_best INTEGER; v_better BOOLEAN; v_got BIGINT;
    v_claimed_sid BIGINT[] := '{}'; v_claimed_n BIGINT[] := '{}';
    v_pin BIGINT; v_wait BOOLEAN := FALSE; v_pi INTEGER;
    v_hjob UUID; v_hdue TIMESTAMPTZ; v_kind TEXT; v_left BIGINT; v_secs FLOAT8;
BEGIN
    IF p_max < 1 THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM streams WHERE reserved > 0) THEN
        SELECT p.o_stream, p.o_wait INTO v_pin, v_wait
          FROM tiffin_pin_of(p_agent, p_kinds, p_alive_ms) p;
    END IF;
    -- claimable streams with up to p_max claimable tasks each (by the "ready" index)
    SELECT array_agg(c.id ORDER BY c.id), array_agg(c.tenant ORDER BY c.id),
           array_agg(c.running ORDER BY c.id), array_agg(c.reserved ORDER BY c.id),
           array_agg(c.priority_multiplier ORDER BY c.id), array_agg(c.served ORDER BY c.id),
           array_agg(round(c.served / c.priority_multiplier * 1e6) ORDER BY c.id),
           array_agg(c.oldest ORDER BY c.id), array_agg(c.avail ORDER BY c.id)
      INTO v_sid, v_tenant, v_run, v_res, v_mult, v_srv, v_share, v_old, v_avail
      FROM (SELECT st.id, st.tenant, st.reserved::float8 AS reserved, st.priority_multiplier,
                   (st.running + sr.n)::float8 AS running, sr.served, o.oldest, o.avail
              FROM streams st
             CROSS JOIN LATERAL (
                   SELECT coalesce(sum(r.n), 0) AS n,
                          coalesce(sum(tiffin_decayed(r.served, r.served_at, now(),
                                                      p_half_life_ms)), 0)::float8 AS served
                     FROM stream_running r WHERE r.stream_id = st.id
             ) sr
             CROSS JOIN LATERAL (
                   SELECT min(x.ready_at) AS oldest, count(*)::integer AS avail
                     FROM (SELECT t.ready_at FROM tasks t
                            WHERE t.stream_id = st.id AND t.state = 'ready'
                              AND t.not_before <= now()
                              AND (p_max_work IS NULL OR t.work IS NULL OR t.work <= p_max_work)
                            ORDER BY t.ready_at LIMIT p_max) x
             ) o
             WHERE st.kind = ANY (p_kinds) AND o.avail > 0) c;
    IF v_sid IS NULL THEN
        RETURN;
    END IF;
    v_n := array_length(v_sid, 1);
    -- A stream whose most urgent claimable job is at risk of missing its due time counts its
    -- weight 4 times (policy.rs `at_risk`, `BORROW_WEIGHT`): its unfinished tasks at the
    -- kind's mean time over its last 20 finished tasks (else p_assumed_task_ms) against the
    -- time left. Streams without due jobs cost one indexed lookup.
    FOR i IN 1..v_n LOOP
        SELECT t.job_id, t.job_due, t.kind INTO v_hjob, v_hdue, v_kind FROM tasks t
         WHERE t.stream_id = v_sid[i] AND t.state = 'ready' AND t.not_before <= now()
           AND (p_max_work IS NULL OR t.work IS NULL OR t.work <= p_max_work)
           AND t.job_due IS NOT NULL
         ORDER BY t.job_due LIMIT 1;
        CONTINUE WHEN NOT FOUND;
        SELECT count(*) INTO v_left FROM tasks u
         WHERE u.job_id = v_hjob AND u.state IN ('pending', 'ready', 'leased');
        SELECT avg(date_part('epoch', d.finished_at - d.started_at)) INTO v_secs
          FROM (SELECT f.finished_at, f.started_at FROM tasks f
                 WHERE f.kind = v_kind AND f.state = 'done' AND f.started_at IS NOT NULL
                 ORDER BY f.finished_at DESC LIMIT 20) d;
        IF date_part('epoch', v_hdue - now())
           <= v_left * coalesce(v_secs, p_assumed_task_ms / 1000.0) THEN
            v_mult[i] := v_mult[i] * 4;
            v_share[i] := round(v_srv[i] / v_mult[i] * 1e6);
        END IF;
    END LOOP;
    v_pi := array_position(v_sid, v_pin);
    IF v_pin IS NOT NULL AND v_pi IS NULL AND v_wait THEN
        RETURN; -- pinned, nothing of its reservation ready, and told to wait
    END IF;
    v_quota := array_fill(0, ARRAY[v_n]);
    -- hand out the batch one task at a time, as that many single claims would
    FOR k IN 1..p_max LOOP
        v_best := NULL;
        -- a pinned agent: its reservation's tasks while there are any, then by its idle rule
        IF v_pi IS NOT NULL THEN
            IF v_avail[v_pi] > 0 THEN
                v_best := v_pi;
            ELSIF v_wait THEN
                EXIT;
            END IF;
        END IF;
        FOR i IN 1..v_n LOOP
            EXIT WHEN v_best = v_pi;
            CONTINUE WHEN v_avail[i] = 0;
            IF v_best IS NULL THEN
                v_better := TRUE;
            ELSIF greatest(v_res[i] - v_run[i], 0) <> greatest(v_res[v_best] - v_run[v_best], 0) THEN
                v_better := greatest(v_res[i] - v_run[i], 0) > greatest(v_res[v_best] - v_run[v_best], 0);
            ELSIF v_share[i] <> v_share[v_best] THEN
                v_better := v_share[i] < v_share[v_best];
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
        v_srv[v_best] := v_srv[v_best] + 1;
        v_share[v_best] := round(v_srv[v_best] / v_mult[v_best] * 1e6);
        v_avail[v_best] := v_avail[v_best] - 1;
    END LOOP;
    FOR i IN 1..v_n LOOP
        CONTINUE WHEN v_quota[i] = 0;
        RETURN QUERY
            WITH pick AS (
                SELECT t.id FROM tasks t
                 WHERE t.stream_id = v_sid[i] AND t.state = 'ready' AND t.not_before <= now()
                   AND (p_max_work IS NULL OR t.work IS NULL OR t.work <= p_max_work)
                 ORDER BY t.job_due, t.job_priority DESC, t.job_seq, t.depth, t.id
                 LIMIT v_quota[i] FOR UPDATE SKIP LOCKED
            ), upd AS (
                UPDATE tasks t SET state = 'leased', attempt = t.attempt + 1, agent = p_agent,
                       lease_expires_at = now() + p_lease_ms * interval '1 millisecond',
                       started_at = coalesce(t.started_at, now())
                  FROM pick WHERE t.id = pick.id
                RETURNING t.id, t.job_id, t.key, t.kind, t.attempt, t.max_attempts,
                          t.lease_expires_at, t.payload, t.job_due, t.job_priority, t.job_seq,
                          t.depth
            )
            SELECT u.id, u.job_id, u.key, u.kind, v_tenant[i], u.attempt, u.max_attempts,
                   u.lease_expires_at, u.payload
              FROM upd u ORDER BY u.job_due, u.job_priority DESC, u.job_seq, u.depth, u.id;
        GET DIAGNOSTICS v_got = ROW_COUNT;
        IF v_got > 0 THEN
            v_claimed_sid := v_claimed_sid || v_sid[i];
            v_claimed_n := v_claimed_n || v_got;
        END IF;
    END LOOP;
    -- counters last (they are the only rows another claim may wait for), by stream id
    FOR i IN 1..coalesce(array_length(v_claimed_sid, 1), 0) LOOP
        PERFORM tiffin_add_claimed(v_claimed_sid[i], v_claimed_n[i], p_half_life_ms);
    END LOOP;
END $$;

-- Completes the current attempts of several tasks in one transaction and readies the
-- dependents whose last prerequisite they were. Takes no job lock: the caller ends the jobs of
-- completed sinks (o_sink) with tiffin_finish_jobs after this commits. One row per input, in
-- input order. o_status: ok | lost | cancelled; o_ready: dependents this task made ready;
-- o_job_state: the job's state as this transaction sees it (read without a lock).
CREATE OR REPLACE FUNCTION tiffin_complete_many(p_tasks BIGINT[], p_attempts INTEGER[], p_outputs JSONB[])
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
CREATE OR REPLACE FUNCTION tiffin_finish_jobs(p_jobs UUID[])
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
CREATE OR REPLACE FUNCTION tiffin_finish_orphaned_jobs() RETURNS BIGINT
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
