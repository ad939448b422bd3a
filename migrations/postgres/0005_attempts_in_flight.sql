-- An address's key also counts the password attempts in flight from it
-- (reserved before their hash, settled with their verdict): guesses sent
-- together from one address at many accounts are then held to its free
-- failures as if they came in turn, while the logins of an office behind
-- that address, which succeed, never count as failures. A reservation older
-- than a minute (an instance that died mid-hash) no longer counts.
ALTER TABLE throttles ADD COLUMN in_flight integer NOT NULL DEFAULT 0;
ALTER TABLE throttles ADD COLUMN in_flight_at timestamptz; -- NULL: never reserved
