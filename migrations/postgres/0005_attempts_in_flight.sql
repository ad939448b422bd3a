-- The password attempts in flight from an address: reserved before their
-- hash, deleted with their verdict. Guesses sent together from one address
-- at many accounts are then held to its free failures as if they came in
-- turn, while the logins of an office behind that address, which succeed,
-- never count as failures. Each reservation is a row of its own, so that
-- one never settled (an instance that died mid-hash) lapses by itself, and
-- a late settlement ends only its own. The purge deletes the old ones.
CREATE TABLE attempts_in_flight (
    id          text PRIMARY KEY,
    key         text NOT NULL,
    reserved_at timestamptz NOT NULL
);
CREATE INDEX attempts_in_flight_key_idx ON attempts_in_flight (key, reserved_at);
CREATE INDEX attempts_in_flight_purge_idx ON attempts_in_flight (reserved_at);
