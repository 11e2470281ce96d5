-- The proving speed the broker measured with its calibration proof (kHz), kept across restarts
-- so a restart does not prove it again.
CREATE TABLE calibration (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    khz INTEGER NOT NULL,
    measured_at INTEGER NOT NULL
);
