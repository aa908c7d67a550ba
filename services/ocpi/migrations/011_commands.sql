-- Commands partners sent us (Commands module, RECEIVER; CONTRACT section 12): each is ordered from
-- the commands service (idempotency key `ocpi:<command_id>`), and its CommandResult is POSTed to the
-- partner's response_url (through the push outbox) once the charger answered, or TIMEOUT once
-- `timeout_at` passed without an outcome.
CREATE TABLE commands (
    command_id      uuid PRIMARY KEY,
    partner_id      uuid NOT NULL REFERENCES partners ON DELETE CASCADE,
    command         text NOT NULL,
    response_url    text NOT NULL,
    charge_point_id text NOT NULL,
    result          text,                  -- the CommandResultType sent, once sent
    timeout_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX commands_waiting ON commands (timeout_at) WHERE result IS NULL;

-- OCPI's reservation_id (a partner's CiString(36)) as OCPP 1.6's integer reservationId.
CREATE TABLE reservations (
    partner_id          uuid NOT NULL REFERENCES partners ON DELETE CASCADE,
    reservation_id      text NOT NULL,
    ocpp_reservation_id integer GENERATED ALWAYS AS IDENTITY UNIQUE,
    charge_point_id     text NOT NULL,
    PRIMARY KEY (partner_id, reservation_id)
);
