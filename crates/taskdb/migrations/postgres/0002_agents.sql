-- Agents report themselves every heartbeat period (TaskDb::agent_seen), busy or idle.
CREATE TABLE agents (
    id         TEXT PRIMARY KEY,
    kinds      JSONB NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX agents_last_seen ON agents (last_seen);
