-- The agent whose provisional password a mail carries ('' for every other
-- mail): a newer provisional password, a personal one, or the account
-- disabled ends the pending mails that carry an older one, which the agent
-- would type and see refused.
ALTER TABLE outbox ADD COLUMN provisional_for TEXT NOT NULL DEFAULT '';
CREATE INDEX outbox_provisional_for_pending_idx ON outbox (provisional_for) WHERE status = 'pending' AND provisional_for <> '';
