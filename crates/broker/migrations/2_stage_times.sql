-- When each order passed each stage (milliseconds since the epoch, JSON), for latency figures.
ALTER TABLE orders ADD COLUMN times TEXT NOT NULL DEFAULT '{}';
