-- Reservations that hold (issue 28): a stream's reservation pins live agents of the registry
-- (pin.rs). What the pinned agents do while the stream has nothing ready: 'serve-others' (claim
-- other streams' tasks) or 'wait' (claim nothing).
ALTER TABLE streams ADD COLUMN reserved_idle TEXT NOT NULL DEFAULT 'serve-others'
    CHECK (reserved_idle IN ('serve-others', 'wait'));
