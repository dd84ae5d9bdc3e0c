-- Write keys are public by design (they sit in every page that sends events), so the dashboard
-- shows them at any time with ready snippets; secret keys stay stored as hashes only. Write keys
-- issued before this migration have no `plain` until they are rotated.
-- A `revoked_at` in the future is a rotation's grace period: the key works until then.
ALTER TABLE api_keys ADD COLUMN plain TEXT CHECK (plain IS NULL OR kind = 'write');
