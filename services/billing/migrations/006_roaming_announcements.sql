-- Roaming publishes sites and tariffs (`site.changed`, `tariff.changed`): the ones that existed
-- before are announced once, through the outbox, like every new one.
INSERT INTO outbox (exchange, routing_key, message_id, body)
SELECT 'domain', 'site.changed', gen_random_uuid()::text,
       jsonb_build_object('siteId', site_id, 'name', name, 'timeZone', time_zone, 'address', address, 'city', city,
                          'postalCode', postal_code, 'country', country, 'latitude', latitude, 'longitude', longitude,
                          'publish', publish, 'at', updated_at)
FROM sites ORDER BY created_at;
INSERT INTO outbox (exchange, routing_key, message_id, body)
SELECT 'domain', 'tariff.changed', gen_random_uuid()::text,
       jsonb_build_object('tariffId', tariff_id, 'siteId', site_id, 'currency', currency, 'ocpi', ocpi,
                          'activeFrom', active_from, 'activeUntil', active_until,
                          'at', greatest(created_at, coalesce(active_until, created_at)))
FROM tariffs ORDER BY created_at;
