-- Vacuum the queue tables continuously instead of after 20 % of them has changed.
--
-- Every claim and completion leaves a dead task version behind, and its entry stays in the
-- partial "ready" indexes until vacuum removes it. Claims walk those indexes from the head,
-- where the dead entries pile up: with the default thresholds and no other vacuum, each claim
-- of a 30,000-segment job with 1,000 agents cost ~18 ms instead of ~0.1 ms (docs/benchmarks.md,
-- "Scheduler at scale"). The housekeeper vacuums these tables every pass (TaskDb::vacuum),
-- since autovacuum visits a database only once per autovacuum_naptime; these thresholds are
-- the backstop when no housekeeper runs, and keep the planner's statistics fresh.
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
