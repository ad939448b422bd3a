-- Habilitations, login throttling, and what the purge and the reuse
-- detection of authorization codes need. Same conventions as 0001.

-- Restricted clients admit only habilitated agents; existing clients stay
-- open to every active agent.
ALTER TABLE clients ADD COLUMN restricted INTEGER NOT NULL DEFAULT 0;

-- One row per (agent, client). The primary key serves the lookup and the
-- listing by agent; the second index the listing by client (in agent order)
-- and the deletion of a client's habilitations.
CREATE TABLE habilitations (
    user_id    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    roles      TEXT NOT NULL DEFAULT '[]',
    until      INTEGER, -- NULL: no end
    granted_at INTEGER NOT NULL,
    granted_by TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (user_id, client_id)
) STRICT;
CREATE INDEX habilitations_client_user_idx ON habilitations (client_id, user_id);

-- Consecutive login failures per key.
CREATE TABLE throttles (
    key             TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL,
    last_failure_at INTEGER NOT NULL,
    locked_at       INTEGER -- NULL: not locked
) STRICT;
-- The purge forgets unlocked keys only.
CREATE INDEX throttles_purge_idx ON throttles (last_failure_at) WHERE locked_at IS NULL;

-- Set when a used code is presented again: the grant is refused tokens from
-- then on, even if the legitimate exchange had not stored them yet.
ALTER TABLE auth_codes ADD COLUMN reused_at INTEGER;
CREATE INDEX auth_codes_auth_request_id_idx ON auth_codes (auth_request_id);

-- Deleting a client revokes its tokens.
CREATE INDEX access_tokens_client_id_idx ON access_tokens (client_id);
CREATE INDEX refresh_tokens_client_id_idx ON refresh_tokens (client_id);

-- window_end lets the purge drop counters whose window is over (the next hit
-- would start afresh anyway). Counters written before it existed get a day,
-- longer than any window in use, so that none is cut short.
ALTER TABLE counters ADD COLUMN window_end INTEGER NOT NULL DEFAULT 0;
UPDATE counters SET window_end = window_start + 86400000;
CREATE INDEX counters_window_end_idx ON counters (window_end);
