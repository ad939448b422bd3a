-- The subject of the id_token_hint a relying application sent with an auth
-- request (OIDC Core 3.1.2.1): the application asks about that agent, so
-- the session of another agent in the same browser must not complete the
-- request silently (prompt=none gets login_required, otherwise the login
-- page asks). '' when the request carried no hint, and for requests created
-- before this migration.
ALTER TABLE auth_requests ADD COLUMN id_token_hint_subject TEXT NOT NULL DEFAULT '';
