-- The receipts of CAPTCHA challenges solved, for the request they guarded
-- (« Mot de passe oublié ? ») once accepted: the same form posted again by
-- the same browser moments later, the second click of a double click on
-- « Valider », finds its challenge spent by the first and gets the same
-- answer instead of « la vérification du texte a échoué ». The id is an HMAC
-- of the challenge, the browser, the address and the answer, so that only
-- that form names it. A receipt lives two minutes; the purge deletes it.
CREATE TABLE challenge_receipts (
    id         TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX challenge_receipts_expires_at_idx ON challenge_receipts (expires_at);
