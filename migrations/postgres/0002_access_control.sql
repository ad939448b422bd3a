-- Habilitations, login throttling, and what the purge and the reuse
-- detection of authorization codes need.

-- Restricted clients admit only habilitated agents; existing clients stay
-- open to every active agent.
ALTER TABLE clients ADD COLUMN restricted boolean NOT NULL DEFAULT false;

-- One row per (agent, client). The primary key serves the lookup and the
-- listing by agent; the second index the listing by client (in agent order)
-- and the deletion of a client's habilitations. No foreign keys, as in 0001:
-- the store checks the agent and the client when granting.
CREATE TABLE habilitations (
    user_id    text NOT NULL,
    client_id  text NOT NULL,
    roles      text[] NOT NULL DEFAULT '{}',
    until      timestamptz, -- NULL: no end
    granted_at timestamptz NOT NULL,
    granted_by text NOT NULL DEFAULT '',
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX habilitations_client_user_idx ON habilitations (client_id, user_id);

-- Consecutive login failures per key.
CREATE TABLE throttles (
    key             text PRIMARY KEY,
    failures        integer NOT NULL,
    last_failure_at timestamptz NOT NULL,
    locked_at       timestamptz -- NULL: not locked
);
-- The purge forgets unlocked keys only.
CREATE INDEX throttles_purge_idx ON throttles (last_failure_at) WHERE locked_at IS NULL;

-- Set when a used code is presented again: the grant is refused tokens from
-- then on, even if the legitimate exchange had not stored them yet.
ALTER TABLE auth_codes ADD COLUMN reused_at timestamptz;
CREATE INDEX auth_codes_auth_request_id_idx ON auth_codes (auth_request_id);

-- Deleting a client revokes its tokens.
CREATE INDEX access_tokens_client_id_idx ON access_tokens (client_id);
CREATE INDEX refresh_tokens_client_id_idx ON refresh_tokens (client_id);
