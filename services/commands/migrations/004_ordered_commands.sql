-- A command another service ordered (`command.ordered`) is answered when final (`command.answered`).
ALTER TABLE commands ADD COLUMN answer_wanted boolean NOT NULL DEFAULT false;
