-- Who fulfilled each request (from RequestFulfilled): an order someone else fulfilled is lost,
-- not done.
ALTER TABLE requests ADD COLUMN fulfiller TEXT;
