-- `Idempotency-Key`s of session creates (tenants/idempotency.rs): one row per (tenant, key)
-- with the request body's digest; the session is NULL while the first request runs.
CREATE TABLE IF NOT EXISTS api_idempotency (
    tenant TEXT NOT NULL,
    key TEXT NOT NULL,
    digest TEXT NOT NULL,
    session TEXT,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant, key));
