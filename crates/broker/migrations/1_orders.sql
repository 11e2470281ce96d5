-- Orders the broker has looked at: every committed one (the source of truth from the lock on)
-- and skipped ones with their code.
CREATE TABLE orders (
    key TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    request BLOB NOT NULL,
    signature BLOB NOT NULL,
    state TEXT NOT NULL,
    cycles INTEGER NOT NULL DEFAULT 0,
    lock_price TEXT NOT NULL DEFAULT '0',
    expiry INTEGER NOT NULL,
    session_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    updated_at INTEGER NOT NULL
);
CREATE INDEX orders_state ON orders (state);

-- The last block whose market events have been read.
CREATE TABLE cursor (
    chain_id INTEGER PRIMARY KEY,
    block INTEGER NOT NULL
);

-- A local mirror of the market's events, so checks need no RPC and a race can find the
-- request a lock was for.
CREATE TABLE requests (
    request_id TEXT PRIMARY KEY,
    request BLOB,
    locker TEXT,
    fulfilled INTEGER NOT NULL DEFAULT 0
);
