-- Initial SQLite schema.
--
-- Conventions (storage/sqlite relies on them):
--   * times are INTEGER unix milliseconds, UTC;
--   * string lists are JSON arrays in TEXT;
--   * booleans are INTEGER 0/1;
--   * tables are STRICT so that a wrongly typed value fails loudly instead of
--     being stored under SQLite's loose type affinity.
-- schema_migrations itself is created by the store before any migration runs.
--
-- There are no foreign keys between records, as in the PostgreSQL schema:
-- agents are disabled, never deleted, and a deleted client or auth request
-- must not take with it the rows (codes, tokens) that reuse detection needs.

CREATE TABLE users (
    id                      TEXT PRIMARY KEY,
    email                   TEXT NOT NULL,
    name                    TEXT NOT NULL DEFAULT '',
    organisation            TEXT NOT NULL DEFAULT '',
    password_hash           TEXT NOT NULL DEFAULT '',
    pending_password_change INTEGER NOT NULL DEFAULT 0,
    disabled                INTEGER NOT NULL DEFAULT 0,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
) STRICT;
-- The store writes storage.NormaliseEmail(email); uniqueness is on that form.
-- The index also serves ListUsers' ORDER BY email.
CREATE UNIQUE INDEX users_email_key ON users (email);

CREATE TABLE clients (
    id                        TEXT PRIMARY KEY,
    name                      TEXT NOT NULL DEFAULT '',
    secret_hash               TEXT NOT NULL DEFAULT '',
    public                    INTEGER NOT NULL DEFAULT 0,
    redirect_uris             TEXT NOT NULL DEFAULT '[]',
    post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]',
    home_url                  TEXT NOT NULL DEFAULT '',
    allow_refresh             INTEGER NOT NULL DEFAULT 0,
    created_at                INTEGER NOT NULL
) STRICT;

CREATE TABLE auth_requests (
    id                    TEXT PRIMARY KEY,
    client_id             TEXT NOT NULL,
    redirect_uri          TEXT NOT NULL DEFAULT '',
    state                 TEXT NOT NULL DEFAULT '',
    nonce                 TEXT NOT NULL DEFAULT '',
    scopes                TEXT NOT NULL DEFAULT '[]',
    response_type         TEXT NOT NULL DEFAULT '',
    response_mode         TEXT NOT NULL DEFAULT '',
    code_challenge        TEXT NOT NULL DEFAULT '',
    code_challenge_method TEXT NOT NULL DEFAULT '',
    prompt                TEXT NOT NULL DEFAULT '[]',
    max_age               INTEGER, -- NULL: max_age not sent
    login_hint            TEXT NOT NULL DEFAULT '',
    ui_locales            TEXT NOT NULL DEFAULT '',
    user_id               TEXT NOT NULL DEFAULT '',
    session_id            TEXT NOT NULL DEFAULT '',
    auth_time             INTEGER NOT NULL,
    amr                   TEXT NOT NULL DEFAULT '[]',
    done                  INTEGER NOT NULL DEFAULT 0,
    created_at            INTEGER NOT NULL,
    expires_at            INTEGER NOT NULL
) STRICT;
CREATE INDEX auth_requests_expires_at_idx ON auth_requests (expires_at);

-- No foreign key to auth_requests: the code must outlive its auth request so
-- that a replayed code can still be recognised and its grant revoked.
CREATE TABLE auth_codes (
    code_hash       TEXT PRIMARY KEY,
    auth_request_id TEXT NOT NULL,
    expires_at      INTEGER NOT NULL,
    used_at         INTEGER -- NULL until exchanged
) STRICT;
CREATE INDEX auth_codes_expires_at_idx ON auth_codes (expires_at);

CREATE TABLE access_tokens (
    id         TEXT PRIMARY KEY,
    grant_id   TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    scopes     TEXT NOT NULL DEFAULT '[]',
    audience   TEXT NOT NULL DEFAULT '[]',
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX access_tokens_grant_id_idx ON access_tokens (grant_id);
CREATE INDEX access_tokens_user_id_idx ON access_tokens (user_id);
CREATE INDEX access_tokens_expires_at_idx ON access_tokens (expires_at);
-- Purge deletes revoked tokens; a partial index keeps that from scanning.
CREATE INDEX access_tokens_revoked_idx ON access_tokens (revoked) WHERE revoked = 1;

CREATE TABLE refresh_tokens (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    grant_id   TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    scopes     TEXT NOT NULL DEFAULT '[]',
    audience   TEXT NOT NULL DEFAULT '[]',
    amr        TEXT NOT NULL DEFAULT '[]',
    auth_time  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    -- Set when the token is exchanged for a new pair; presenting it again is
    -- a reuse that revokes the family.
    rotated_at INTEGER,
    revoked    INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE UNIQUE INDEX refresh_tokens_token_hash_key ON refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_grant_id_idx ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_user_id_idx ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);
CREATE INDEX refresh_tokens_revoked_idx ON refresh_tokens (revoked) WHERE revoked = 1;

CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL,
    kind                TEXT NOT NULL,
    auth_time           INTEGER NOT NULL,
    amr                 TEXT NOT NULL DEFAULT '[]',
    created_at          INTEGER NOT NULL,
    last_seen_at        INTEGER NOT NULL,
    idle_expires_at     INTEGER NOT NULL,
    absolute_expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
-- Purge looks for sessions past either expiry: one index on the earlier one
-- (the store's purge query uses this exact expression).
CREATE INDEX sessions_expiry_idx ON sessions (min(idle_expires_at, absolute_expires_at));

CREATE TABLE challenges (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    answer_hash  TEXT NOT NULL,
    binding_hash TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX challenges_expires_at_idx ON challenges (expires_at);

CREATE TABLE recovery_jobs (
    id              TEXT PRIMARY KEY,
    email           TEXT NOT NULL,
    client_ip       TEXT NOT NULL DEFAULT '',
    auth_request_id TEXT NOT NULL DEFAULT '',
    requested_at    INTEGER NOT NULL,
    -- Lease: the job belongs to one worker until then (0: never claimed).
    claimed_until   INTEGER NOT NULL DEFAULT 0
) STRICT;
-- Claiming walks the jobs oldest first, skipping the leased ones (few: at
-- most a batch per worker).
CREATE INDEX recovery_jobs_claim_idx ON recovery_jobs (requested_at, claimed_until);

CREATE TABLE provisional_passwords (
    user_id    TEXT PRIMARY KEY,
    hash       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX provisional_passwords_expires_at_idx ON provisional_passwords (expires_at);

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    to_address      TEXT NOT NULL,
    subject         TEXT NOT NULL DEFAULT '',
    text_body       TEXT NOT NULL DEFAULT '',
    html_body       TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
) STRICT;
CREATE INDEX outbox_status_next_attempt_at_idx ON outbox (status, next_attempt_at);
-- ListMails, newest first: these indexes end with the rowid, the tie-breaker.
CREATE INDEX outbox_created_at_idx ON outbox (created_at);
CREATE INDEX outbox_status_created_at_idx ON outbox (status, created_at);
CREATE INDEX outbox_sent_at_idx ON outbox (sent_at) WHERE status = 'sent';

-- Fixed-window rate-limit counters.
CREATE TABLE counters (
    key          TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL
) STRICT;

CREATE TABLE signing_keys (
    -- Insertion order, to break ties between keys created in the same
    -- millisecond. A rowid alias: SQLite assigns it.
    seq                   INTEGER PRIMARY KEY,
    id                    TEXT NOT NULL UNIQUE,
    algorithm             TEXT NOT NULL,
    private_key_encrypted BLOB NOT NULL,
    public_key_jwk        BLOB NOT NULL,
    created_at            INTEGER NOT NULL,
    not_before            INTEGER NOT NULL
) STRICT;
CREATE INDEX signing_keys_order_idx ON signing_keys (created_at, seq);

CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;

CREATE TABLE audit_events (
    -- A rowid alias; AUTOINCREMENT so that an id is never reused after the
    -- newest rows were purged.
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    time       INTEGER NOT NULL,
    type       TEXT NOT NULL,
    user_id    TEXT NOT NULL DEFAULT '',
    email      TEXT NOT NULL DEFAULT '',
    client_ip  TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    detail     TEXT NOT NULL DEFAULT ''
) STRICT;
-- An index on (time) holds the rowid too, so it serves ORDER BY time, id.
CREATE INDEX audit_events_time_idx ON audit_events (time);
CREATE INDEX audit_events_email_time_idx ON audit_events (email, time);
