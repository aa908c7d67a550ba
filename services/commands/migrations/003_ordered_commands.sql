-- A command another service ordered (`command.ordered`: the ocpi service's commands of roaming
-- partners) has its outcome announced (`command.finished`) when it is Acked or Failed.
ALTER TABLE commands ADD COLUMN announce boolean NOT NULL DEFAULT false;
