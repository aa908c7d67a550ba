-- Site power limits (CONTRACT section 13): the sessions service shares a site's grid limit, so the
-- limits set before it did are announced once, through the outbox, like every new one.
INSERT INTO outbox (exchange, routing_key, message_id, body)
SELECT 'domain', 'site.power-limit-changed', gen_random_uuid()::text,
       jsonb_build_object('siteId', site_id, 'maxPowerKw', max_power_kw::text, 'at', updated_at)
FROM sites WHERE max_power_kw IS NOT NULL ORDER BY updated_at;
