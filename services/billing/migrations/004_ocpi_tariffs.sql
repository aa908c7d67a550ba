-- Tariffs as OCPI 2.2.1 writes them: every tariff keeps its OCPI form (prices as decimal strings,
-- exact); price_per_kwh stays for a tariff that is nothing more than a price per kWh, else NULL.
ALTER TABLE tariffs ADD COLUMN ocpi jsonb;
ALTER TABLE tariffs ALTER COLUMN price_per_kwh DROP NOT NULL;
UPDATE tariffs SET ocpi = jsonb_build_object(
    'currency', currency,
    'elements', jsonb_build_array(jsonb_build_object('price_components', jsonb_build_array(
        jsonb_build_object('type', 'ENERGY', 'price', price_per_kwh::text, 'step_size', 1)))));
ALTER TABLE tariffs ALTER COLUMN ocpi SET NOT NULL;
