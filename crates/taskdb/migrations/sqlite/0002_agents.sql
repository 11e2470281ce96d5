-- Agents report themselves every heartbeat period (TaskDb::agent_seen), busy or idle.
-- Times are microseconds since the Unix epoch.
CREATE TABLE agents (
    id         TEXT PRIMARY KEY,
    kinds      TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
);
CREATE INDEX agents_last_seen ON agents (last_seen);
