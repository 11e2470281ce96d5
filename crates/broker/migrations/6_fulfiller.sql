-- Who fulfilled each request (from RequestFulfilled): an order someone else fulfilled is lost,
-- not done.
ALTER TABLE requests ADD COLUMN fulfiller TEXT;
-- When the mirror last heard of each request (seconds since the epoch), so requests long
-- closed are forgotten and the table stays bounded whatever the market sends.
ALTER TABLE requests ADD COLUMN noted_at INTEGER NOT NULL DEFAULT 0;
