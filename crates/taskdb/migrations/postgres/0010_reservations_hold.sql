-- Reservations that hold (issue 28; docs/architecture.md, "Claim order"). A stream's
-- reservation of N pins N live agents of the registry (pin.rs `pin_agents`): reservations in
-- stream id order each take the first N agents (by first report, then id) that reported within
-- p_alive_ms, serve the stream's kind and no earlier reservation took. A claimer names itself
-- `<agent>/<slot>`; every slot of a pinned agent is pinned. While its stream has claimable
-- work a pinned agent takes only that stream's tasks; when it has none the agent serves the
-- others by the fair share ('serve-others', the default) or claims nothing ('wait',
-- `streams.reserved_idle`). Nothing else is stored: the pins follow the registry, so an agent
-- that stops reporting hands its pin on once it is no longer live.
--
-- This file supersedes 0009's `tiffin_claim_batch` (dropped here; it took no liveness window).
-- When no stream has a reservation the claim reads no agent.

ALTER TABLE streams ADD COLUMN reserved_idle TEXT NOT NULL DEFAULT 'serve-others'
    CHECK (reserved_idle IN ('serve-others', 'wait'));

DROP FUNCTION tiffin_claim_batch(TEXT, TEXT[], BIGINT, INTEGER, BIGINT, BIGINT);

-- The stream the claimer p_agent is pinned to among streams of p_kinds, and whether it waits
-- when that stream has nothing ready; no row when it is not pinned.
CREATE FUNCTION tiffin_pin_of(p_agent TEXT, p_kinds TEXT[], p_alive_ms BIGINT)
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

CREATE FUNCTION tiffin_claim_batch(p_agent TEXT, p_kinds TEXT[], p_lease_ms BIGINT,
                                   p_max INTEGER, p_half_life_ms BIGINT DEFAULT 300000,
                                   p_max_work BIGINT DEFAULT NULL,
                                   p_alive_ms BIGINT DEFAULT 30000)
RETURNS TABLE (o_task BIGINT, o_job UUID, o_key TEXT, o_kind TEXT, o_tenant TEXT,
               o_attempt INTEGER, o_max_attempts INTEGER, o_expires TIMESTAMPTZ, o_payload JSONB)
LANGUAGE plpgsql AS $$
DECLARE
    v_sid BIGINT[]; v_tenant TEXT[]; v_run FLOAT8[]; v_res FLOAT8[]; v_mult FLOAT8[];
    v_srv FLOAT8[]; v_share FLOAT8[]; v_old TIMESTAMPTZ[]; v_avail INTEGER[]; v_quota INTEGER[];
    v_n INTEGER; v_best INTEGER; v_better BOOLEAN; v_got BIGINT;
    v_claimed_sid BIGINT[] := '{}'; v_claimed_n BIGINT[] := '{}';
    v_pin BIGINT; v_wait BOOLEAN := FALSE; v_pi INTEGER;
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
