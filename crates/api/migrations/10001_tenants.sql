-- The API's tenant tables (docs/architecture.md, "Tenants"). They live in the TaskDB's database
-- (PostgreSQL, or the embedded SQLite file), so their versions start at 10001, clear of the
-- TaskDB's, and each crate's migrator ignores the other's rows. One dialect for both backends.
--
-- This baseline is the schema the API created inline before it had migrations (tables, then
-- the added tenant columns and the id index): on a database that already has it, every
-- statement is a no-op.

CREATE TABLE IF NOT EXISTS api_tenants (
    name TEXT PRIMARY KEY,
    id TEXT,
    concurrent_proofs BIGINT NOT NULL,
    exec_cycle_limit BIGINT NOT NULL,
    cycle_budget BIGINT NOT NULL,
    cycle_usage BIGINT NOT NULL DEFAULT 0,
    priority DOUBLE PRECISION NOT NULL DEFAULT 1,
    created_ms BIGINT NOT NULL,
    storage_quota BIGINT NOT NULL DEFAULT 21474836480,
    storage_usage BIGINT NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX IF NOT EXISTS api_tenants_id ON api_tenants (id);

-- Every stored input, uploaded receipt and image reference, charged to its tenant's storage
-- usage; `pending` while its upload is in flight (tenants/blob_usage.rs).
CREATE TABLE IF NOT EXISTS api_blobs (
    tenant TEXT NOT NULL,
    key TEXT NOT NULL,
    size BIGINT NOT NULL,
    pending BOOLEAN NOT NULL,
    created_ms BIGINT NOT NULL,
    used_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant, key));
CREATE INDEX IF NOT EXISTS api_blobs_used ON api_blobs (used_ms);

CREATE TABLE IF NOT EXISTS api_keys (
    hash TEXT PRIMARY KEY,
    tenant TEXT NOT NULL REFERENCES api_tenants(name) ON DELETE CASCADE,
    label TEXT NOT NULL,
    created_ms BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS api_keys_tenant ON api_keys (tenant);

CREATE TABLE IF NOT EXISTS api_images (
    image_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    PRIMARY KEY (image_id, tenant));

CREATE TABLE IF NOT EXISTS api_sessions (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    charged BOOLEAN NOT NULL DEFAULT FALSE,
    created_ms BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS api_sessions_uncharged ON api_sessions (charged);

-- The image each unfinished session runs: a reference that keeps the image's blob.
CREATE TABLE IF NOT EXISTS api_session_images (
    session_id TEXT PRIMARY KEY,
    image_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS api_session_images_image ON api_session_images (image_id);
