-- The scheduler's functions now have one current definition, in src/postgres/functions.sql,
-- applied after these migrations on every connect. The two no code calls any more go:
-- `tiffin_claim` (single claims go through tiffin_claim_batch) and `tiffin_complete`
-- (completions go through tiffin_complete_many).
DROP FUNCTION IF EXISTS tiffin_claim(TEXT, TEXT[], BIGINT);
DROP FUNCTION IF EXISTS tiffin_complete(BIGINT, INTEGER, JSONB);
