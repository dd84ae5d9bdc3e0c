-- The latest delivery each inbound source received, so the dashboard can show whether Stripe or
-- GitHub reach it and why the last one was refused (docs/inbound-webhooks.md).
ALTER TABLE inbound_sources ADD COLUMN last_delivery_at INTEGER;  -- unix milliseconds
ALTER TABLE inbound_sources ADD COLUMN last_status      INTEGER;  -- the HTTP status answered
ALTER TABLE inbound_sources ADD COLUMN last_error       TEXT;     -- the refusal's message
