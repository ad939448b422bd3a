-- Initial PostgreSQL schema. Table names are unqualified so that the
-- connection's search_path decides the schema (tests get one schema each).
-- schema_migrations itself is created by the store before any migration runs.

CREATE TABLE users (
    id                      text PRIMARY KEY,
    email                   text NOT NULL,
    name                    text NOT NULL DEFAULT '',
    organisation            text NOT NULL DEFAULT '',
    password_hash           text NOT NULL DEFAULT '',
    pending_password_change boolean NOT NULL DEFAULT false,
    disabled                boolean NOT NULL DEFAULT false,
    created_at              timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL
);
-- The store writes storage.NormaliseEmail(email); uniqueness is on that form.
CREATE UNIQUE INDEX users_email_key ON users (email);

CREATE TABLE clients (
    id                        text PRIMARY KEY,
    name                      text NOT NULL DEFAULT '',
    secret_hash               text NOT NULL DEFAULT '',
    public                    boolean NOT NULL DEFAULT false,
    redirect_uris             text[] NOT NULL DEFAULT '{}',
    post_logout_redirect_uris text[] NOT NULL DEFAULT '{}',
    home_url                  text NOT NULL DEFAULT '',
    allow_refresh             boolean NOT NULL DEFAULT false,
    created_at                timestamptz NOT NULL
);

CREATE TABLE auth_requests (
    id                    text PRIMARY KEY,
    client_id             text NOT NULL,
    redirect_uri          text NOT NULL DEFAULT '',
    state                 text NOT NULL DEFAULT '',
    nonce                 text NOT NULL DEFAULT '',
    scopes                text[] NOT NULL DEFAULT '{}',
    response_type         text NOT NULL DEFAULT '',
    response_mode         text NOT NULL DEFAULT '',
    code_challenge        text NOT NULL DEFAULT '',
    code_challenge_method text NOT NULL DEFAULT '',
    prompt                text[] NOT NULL DEFAULT '{}',
    max_age               bigint,
    login_hint            text NOT NULL DEFAULT '',
    ui_locales            text NOT NULL DEFAULT '',
    user_id               text NOT NULL DEFAULT '',
    session_id            text NOT NULL DEFAULT '',
    auth_time             timestamptz NOT NULL,
    amr                   text[] NOT NULL DEFAULT '{}',
    done                  boolean NOT NULL DEFAULT false,
    created_at            timestamptz NOT NULL,
    expires_at            timestamptz NOT NULL
);
CREATE INDEX auth_requests_expires_at_idx ON auth_requests (expires_at);

-- No foreign key to auth_requests: the code must outlive its auth request so
-- that a replayed code can still be recognised and its grant revoked.
CREATE TABLE auth_codes (
    code_hash       text PRIMARY KEY,
    auth_request_id text NOT NULL,
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz
);
CREATE INDEX auth_codes_expires_at_idx ON auth_codes (expires_at);

CREATE TABLE access_tokens (
    id         text PRIMARY KEY,
    grant_id   text NOT NULL,
    client_id  text NOT NULL,
    user_id    text NOT NULL,
    scopes     text[] NOT NULL DEFAULT '{}',
    audience   text[] NOT NULL DEFAULT '{}',
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    revoked    boolean NOT NULL DEFAULT false
);
CREATE INDEX access_tokens_grant_id_idx ON access_tokens (grant_id);
CREATE INDEX access_tokens_user_id_idx ON access_tokens (user_id);
CREATE INDEX access_tokens_expires_at_idx ON access_tokens (expires_at);
-- Purge deletes revoked tokens; a partial index keeps that cheap.
CREATE INDEX access_tokens_revoked_idx ON access_tokens (id) WHERE revoked;

CREATE TABLE refresh_tokens (
    id         text PRIMARY KEY,
    token_hash text NOT NULL,
    grant_id   text NOT NULL,
    client_id  text NOT NULL,
    user_id    text NOT NULL,
    scopes     text[] NOT NULL DEFAULT '{}',
    audience   text[] NOT NULL DEFAULT '{}',
    amr        text[] NOT NULL DEFAULT '{}',
    auth_time  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    -- Set when the token is exchanged for a new pair; presenting it again is
    -- a reuse that revokes the family.
    rotated_at timestamptz,
    revoked    boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX refresh_tokens_token_hash_key ON refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_grant_id_idx ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_user_id_idx ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);
CREATE INDEX refresh_tokens_revoked_idx ON refresh_tokens (id) WHERE revoked;

CREATE TABLE sessions (
    id                  text PRIMARY KEY,
    user_id             text NOT NULL,
    kind                text NOT NULL,
    auth_time           timestamptz NOT NULL,
    amr                 text[] NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL,
    last_seen_at        timestamptz NOT NULL,
    idle_expires_at     timestamptz NOT NULL,
    absolute_expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
-- Purge looks for sessions past either expiry: one index on the earlier one.
CREATE INDEX sessions_expiry_idx ON sessions (LEAST(idle_expires_at, absolute_expires_at));

CREATE TABLE challenges (
    id           text PRIMARY KEY,
    kind         text NOT NULL,
    answer_hash  text NOT NULL,
    binding_hash text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX challenges_expires_at_idx ON challenges (expires_at);

CREATE TABLE recovery_jobs (
    id              text PRIMARY KEY,
    email           text NOT NULL,
    client_ip       text NOT NULL DEFAULT '',
    auth_request_id text NOT NULL DEFAULT '',
    requested_at    timestamptz NOT NULL,
    -- Lease: the job belongs to one worker until then (NULL: never claimed).
    claimed_until   timestamptz
);
CREATE INDEX recovery_jobs_requested_at_idx ON recovery_jobs (requested_at);

CREATE TABLE provisional_passwords (
    user_id    text PRIMARY KEY,
    hash       text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX provisional_passwords_expires_at_idx ON provisional_passwords (expires_at);

CREATE TABLE outbox (
    id              text PRIMARY KEY,
    to_address      text NOT NULL,
    subject         text NOT NULL DEFAULT '',
    text_body       text NOT NULL DEFAULT '',
    html_body       text NOT NULL DEFAULT '',
    status          text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    sent_at         timestamptz
);
CREATE INDEX outbox_status_next_attempt_at_idx ON outbox (status, next_attempt_at);
CREATE INDEX outbox_created_at_idx ON outbox (created_at);
CREATE INDEX outbox_sent_at_idx ON outbox (sent_at) WHERE status = 'sent';

-- Fixed-window rate-limit counters. window_end lets the purge drop counters
-- whose window is over (the next hit would start afresh anyway), so that keys
-- such as client addresses do not pile up.
CREATE TABLE counters (
    key          text PRIMARY KEY,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    count        bigint NOT NULL
);
CREATE INDEX counters_window_end_idx ON counters (window_end);

CREATE TABLE signing_keys (
    id                    text PRIMARY KEY,
    -- Insertion order, to break ties between keys created in the same
    -- microsecond.
    seq                   bigserial NOT NULL,
    algorithm             text NOT NULL,
    private_key_encrypted bytea NOT NULL,
    public_key_jwk        bytea NOT NULL,
    created_at            timestamptz NOT NULL,
    not_before            timestamptz NOT NULL
);
CREATE INDEX signing_keys_order_idx ON signing_keys (created_at, seq);

CREATE TABLE secrets (
    name       text PRIMARY KEY,
    value      bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_events (
    id         bigserial PRIMARY KEY,
    time       timestamptz NOT NULL,
    type       text NOT NULL,
    user_id    text NOT NULL DEFAULT '',
    email      text NOT NULL DEFAULT '',
    client_ip  text NOT NULL DEFAULT '',
    user_agent text NOT NULL DEFAULT '',
    detail     text NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_time_idx ON audit_events (time, id);
CREATE INDEX audit_events_email_time_idx ON audit_events (email, time, id);
