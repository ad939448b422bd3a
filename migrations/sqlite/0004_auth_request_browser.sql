-- An auth request belongs to the browser that sent it to /authorize: the
-- login pages complete it only for that browser (a hash of its random
-- cookie). Without it, anyone who obtained a request's id could have sent a
-- victim to /login?authRequestID=… and had the victim's login complete the
-- attacker's request. '' for requests created before this migration.
ALTER TABLE auth_requests ADD COLUMN browser_binding TEXT NOT NULL DEFAULT '';

-- Revoking an agent's tokens (password change, disabling) deletes its
-- completed requests, so that their codes not yet exchanged die with them.
CREATE INDEX auth_requests_user_done_idx ON auth_requests (user_id) WHERE done = 1;
