-- Vacuum the queue tables continuously instead of after 20 % of them has changed.
--
-- Every claim and completion leaves a dead task version behind, and its entry stays in the
-- partial "ready" indexes until vacuum removes it. Claims and wake-up probes walk those
-- indexes from the head, where the dead entries pile up: with the default thresholds a
-- 100,000-segment job made each pick cost ~1 ms and each probe up to 166 ms, and the
-- scheduler simulation lost a tenth of its agents' time to it (docs/benchmarks.md,
-- "Scheduler at scale"). A fixed threshold keeps the heads short at any table size; no cost
-- delay lets a vacuum finish before the next is due.
ALTER TABLE tasks SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000,
                       autovacuum_vacuum_insert_scale_factor = 0,
                       autovacuum_vacuum_insert_threshold = 10000,
                       autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);
ALTER TABLE deps SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000,
                      autovacuum_vacuum_cost_delay = 0);
-- A few rows updated by every claim/completion: their versions pile up the same way.
ALTER TABLE jobs SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
                      autovacuum_vacuum_cost_delay = 0);
ALTER TABLE streams SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
                         autovacuum_vacuum_cost_delay = 0);
