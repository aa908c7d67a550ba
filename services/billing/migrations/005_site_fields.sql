-- A site's own fields beyond its name: the IANA time zone its tariffs' times of day, dates and
-- weekdays are read in (the sites that existed were priced in UTC, and stay so until changed),
-- where it is as an OCPI Location says it (coordinates as OCPI's decimal strings, kept as given),
-- whether it is published to roaming partners, and its grid connection's limit.
ALTER TABLE sites
    ADD COLUMN time_zone    text NOT NULL DEFAULT 'UTC',
    ADD COLUMN address      text,
    ADD COLUMN city         text,
    ADD COLUMN postal_code  text,
    ADD COLUMN country      text CHECK (country ~ '^[A-Z]{3}$'),
    ADD COLUMN latitude     text,
    ADD COLUMN longitude    text,
    ADD COLUMN publish      boolean NOT NULL DEFAULT true,
    ADD COLUMN max_power_kw numeric CHECK (max_power_kw > 0),
    ADD CONSTRAINT sites_coordinates_whole CHECK ((latitude IS NULL) = (longitude IS NULL));
