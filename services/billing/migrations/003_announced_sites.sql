-- Sites are announced (`site.created`) so that other services can check a site id they are given.
-- The sites that existed before are announced once, through the outbox, like every new one.
INSERT INTO outbox (exchange, routing_key, message_id, body)
SELECT 'domain', 'site.created', gen_random_uuid()::text,
       jsonb_build_object('siteId', site_id, 'name', name, 'at', created_at)
FROM sites ORDER BY created_at;
