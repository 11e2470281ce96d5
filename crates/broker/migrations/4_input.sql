-- The input the preflight uploaded to the cluster, and its SHA-256: the proof uses that same
-- input, so a requestor cannot serve one input to the preflight and another after the lock.
ALTER TABLE orders ADD COLUMN input_id TEXT;
ALTER TABLE orders ADD COLUMN input_sha256 BLOB;
