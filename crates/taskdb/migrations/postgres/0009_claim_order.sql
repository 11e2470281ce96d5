-- The claim order (issue 28; docs/architecture.md, "Claim order"). This file holds the live
-- `tiffin_claim_batch`.
--
-- 1. Fair share by recent service: the claim compares what each stream has been served
-- lately, weighted by its multiplier, instead of what it runs at this instant.
--
-- With one agent, every stream has 0 running whenever the agent frees up, so the old order fell
-- to "longest wait" and an earlier backlog won every claim until it drained. Now each claim
-- charges its stream one task of service; service decays (halved every half-life, passed in by
-- the binary: TaskDB's `Config::service_half_life`), and the stream with the least
-- `served / priority_multiplier` goes next (after unmet reservations). A stream never served
-- has 0 and goes first.
--
-- Service is kept beside the running deltas of migration 0005, on the same shard rows, so a
-- claim still writes no row another claim must wait for. A shard stores its service as of
-- `served_at`; readers decay each shard to now() and sum (decay is linear, so the sum of the
-- decayed shards is the decayed sum).
--
-- 2. The agent's work limit: an agent passes the most work a task may declare (`tasks.work`;
-- the workflow: a segment's 2^po2 cycles, from `--max-po2`) and never gets a larger task; a
-- task that declares no work fits every agent. Larger tasks are skipped where the claim reads
-- the ready tasks, so an agent with a small limit walks past them (a cost only when many
-- ready tasks are too large for it).
--
-- 3. Inside a stream (one tenant's tasks of one kind): the job due first (`jobs.due`; none
-- comes last), then the higher job priority, then the oldest job, nearest the root, insertion
-- order. The claim reads them from the tasks (copied from the job when a task is inserted) by
-- the "ready" index, rebuilt here in that order. Building it blocks writes to `tasks` for as
-- long as it takes (seconds per million tasks).
--
-- This file supersedes 0005's `tiffin_claim_batch` (dropped here; it took neither the
-- half-life nor a work limit). `tiffin_claim` (0005) calls the one below with the defaults.

ALTER TABLE stream_running
    ADD COLUMN served FLOAT8 NOT NULL DEFAULT 0,
    ADD COLUMN served_at TIMESTAMPTZ NOT NULL DEFAULT '1970-01-01 00:00:00+00';

-- What p_served of service, as of p_at, is worth at p_now (policy.rs `decayed`). The exponent
-- is clamped: PostgreSQL's exp() raises an error on underflow rather than returning 0.
-- date_part, not extract: it stays in float8 (extract computes a numeric).
CREATE FUNCTION tiffin_decayed(p_served FLOAT8, p_at TIMESTAMPTZ, p_now TIMESTAMPTZ,
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
CREATE FUNCTION tiffin_add_claimed(p_stream BIGINT, p_n BIGINT, p_half_life_ms BIGINT)
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

ALTER TABLE jobs
    ADD COLUMN due TIMESTAMPTZ,
    ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks
    ADD COLUMN job_due TIMESTAMPTZ,
    ADD COLUMN job_priority INTEGER NOT NULL DEFAULT 0;
DROP INDEX tasks_claim;
-- claim order inside a stream: due first (NULL last), higher priority, oldest job, nearest the
-- root, insertion order
CREATE INDEX tasks_claim ON tasks (stream_id, job_due, job_priority DESC, job_seq, depth, id)
    WHERE state = 'ready';

DROP FUNCTION tiffin_claim_batch(TEXT, TEXT[], BIGINT, INTEGER);

-- Claims up to p_max ready tasks of the given kinds. Streams get tasks one at a time by the
-- policy (policy.rs): unmet reservation first, then the least recent service per unit of weight
-- (in steps of a millionth of a task, SHARE_RESOLUTION), then the longest wait at the start of
-- the batch, then stream id; each task given in this batch counts as running and served for
-- the next. Inside a stream: the job due first, the higher job priority, the oldest job,
-- nearest the root, insertion order. Only tasks whose
-- declared work is at most p_max_work (when given) count. Rows come back by stream id, then
-- claim order.
CREATE FUNCTION tiffin_claim_batch(p_agent TEXT, p_kinds TEXT[], p_lease_ms BIGINT,
                                   p_max INTEGER, p_half_life_ms BIGINT DEFAULT 300000,
                                   p_max_work BIGINT DEFAULT NULL)
RETURNS TABLE (o_task BIGINT, o_job UUID, o_key TEXT, o_kind TEXT, o_tenant TEXT,
               o_attempt INTEGER, o_max_attempts INTEGER, o_expires TIMESTAMPTZ, o_payload JSONB)
LANGUAGE plpgsql AS $$
DECLARE
    v_sid BIGINT[]; v_tenant TEXT[]; v_run FLOAT8[]; v_res FLOAT8[]; v_mult FLOAT8[];
    v_srv FLOAT8[]; v_share FLOAT8[]; v_old TIMESTAMPTZ[]; v_avail INTEGER[]; v_quota INTEGER[];
    v_n INTEGER; v_best INTEGER; v_better BOOLEAN; v_got BIGINT;
    v_claimed_sid BIGINT[] := '{}'; v_claimed_n BIGINT[] := '{}';
BEGIN
    IF p_max < 1 THEN
        RETURN;
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
