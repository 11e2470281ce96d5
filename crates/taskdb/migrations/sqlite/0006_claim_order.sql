-- The claim order (issue 28; docs/architecture.md, "Claim order").
--
-- Fair share by recent service: each claim charges its stream one task of service,
-- kept as `served` as of `served_at` (microseconds since the Unix epoch) and decayed by the
-- reader (policy.rs `decayed`). The claim ranks streams by served / priority_multiplier instead
-- of what they run at this instant. SQLite has one writer, so the stream row holds it directly.
ALTER TABLE streams ADD COLUMN served REAL NOT NULL DEFAULT 0;
ALTER TABLE streams ADD COLUMN served_at INTEGER NOT NULL DEFAULT 0;
