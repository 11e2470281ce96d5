-- The journal the preflight produced (the proof's journal: execution is deterministic), kept so
-- a batch can be sized by journal bytes and aggregated without downloading every receipt first.
ALTER TABLE orders ADD COLUMN journal BLOB;
