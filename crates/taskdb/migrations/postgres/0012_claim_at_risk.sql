-- The claim learns whether a job is at risk of missing its due time (src/postgres/functions.sql,
-- policy.rs `at_risk`): tiffin_claim_batch takes the assumed task time as an eighth argument.
-- The seven-argument version goes, so that calls cannot be ambiguous between the two.
DROP FUNCTION IF EXISTS tiffin_claim_batch(TEXT, TEXT[], BIGINT, INTEGER, BIGINT, BIGINT, BIGINT);
