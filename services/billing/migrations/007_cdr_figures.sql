-- What an OCPI 2.2.1 CDR states of a session's price (services/billing/cdr_figures.py): its totals
-- and their costs, its charging periods, the tariff as OCPI writes it. The settlement carries the
-- figures of the price it bills, so a roaming partner's CDR is the settlement to the cent.
ALTER TABLE session_prices ADD COLUMN figures jsonb;
ALTER TABLE settlements ADD COLUMN figures jsonb;
