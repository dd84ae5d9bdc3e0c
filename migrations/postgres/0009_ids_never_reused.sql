-- Ids are never reused (issue 16). On PostgreSQL every table whose id something refers to
-- already takes it from a sequence (BIGSERIAL or GENERATED ALWAYS AS IDENTITY), and a sequence
-- never hands a value out twice, even after deletes or rolled-back inserts; SQLite needed
-- AUTOINCREMENT (migrations/sqlite/0009). What both need: deliveries still waiting for a
-- channel that is gone, or that is not their project's, end here; from now on deleting a
-- channel ends them (collector/src/store/delivery.rs).
UPDATE deliveries SET status = 'dead', last_error = 'the channel was deleted',
    lease_owner = NULL, lease_until = NULL
WHERE status IN ('pending', 'failed')
  AND NOT EXISTS (SELECT 1 FROM notification_channels c
                  WHERE c.id = deliveries.channel_id AND c.project_id = deliveries.project_id);
