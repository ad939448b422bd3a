package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/internal/sqlrow"
)

const authRequestColumns = `id, client_id, redirect_uri, state, nonce, scopes, response_type, response_mode,
	code_challenge, code_challenge_method, prompt, max_age, login_hint, ui_locales,
	user_id, session_id, auth_time, amr, done, created_at, expires_at, browser_binding, id_token_hint_subject`

func scanAuthRequest(row rowScanner) (storage.AuthRequest, error) {
	var r storage.AuthRequest
	err := row.Scan(&r.ID, &r.ClientID, &r.RedirectURI, &r.State, &r.Nonce, &r.Scopes, &r.ResponseType,
		&r.ResponseMode, &r.CodeChallenge, &r.CodeChallengeMethod, &r.Prompt, &r.MaxAge, &r.LoginHint,
		&r.UILocales, &r.UserID, &r.SessionID, &r.AuthTime, &r.AMR, &r.Done, &r.CreatedAt, &r.ExpiresAt, &r.BrowserBinding, &r.IDTokenHintSubject)
	r.AuthTime, r.CreatedAt, r.ExpiresAt = utc(r.AuthTime), utc(r.CreatedAt), utc(r.ExpiresAt)
	return r, err
}

// CreateAuthRequest stores r.
func (s *Store) CreateAuthRequest(ctx context.Context, r storage.AuthRequest) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO auth_requests (`+authRequestColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)`,
		r.ID, r.ClientID, r.RedirectURI, r.State, r.Nonce, list(r.Scopes), r.ResponseType, r.ResponseMode,
		r.CodeChallenge, r.CodeChallengeMethod, list(r.Prompt), r.MaxAge, r.LoginHint, r.UILocales,
		r.UserID, r.SessionID, r.AuthTime, list(r.AMR), r.Done, r.CreatedAt, r.ExpiresAt, r.BrowserBinding, r.IDTokenHintSubject)
	if err != nil {
		return dbError("create auth request", err)
	}
	return nil
}

// GetAuthRequest finds an auth request; ErrNotFound once it has expired.
func (s *Store) GetAuthRequest(ctx context.Context, id string, now time.Time) (storage.AuthRequest, error) {
	r, err := scanAuthRequest(s.pool.QueryRow(ctx, `SELECT `+authRequestColumns+`
		FROM auth_requests WHERE id = $1 AND expires_at > $2`, id, now))
	if err != nil {
		return storage.AuthRequest{}, notFoundOr("get auth request", err)
	}
	return r, nil
}

// CompleteAuthRequest records who authenticated and sets Done, once: a done
// request is completed again only for the agent that completed it.
func (s *Store) CompleteAuthRequest(ctx context.Context, id, userID, sessionID string, authTime time.Time, amr []string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE auth_requests
		SET user_id = $2, session_id = $3, auth_time = $4, amr = $5, done = true
		WHERE id = $1 AND (NOT done OR user_id = $2)`,
		id, userID, sessionID, authTime, list(amr))
	return requireOne("complete auth request", tag, err)
}

// CreateAuthRequestWithCode stores a completed request and its code in one
// statement.
func (s *Store) CreateAuthRequestWithCode(ctx context.Context, r storage.AuthRequest, c storage.AuthCode) error {
	_, err := s.pool.Exec(ctx, `WITH request AS (
		INSERT INTO auth_requests (`+authRequestColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)
		RETURNING id
	) INSERT INTO auth_codes (code_hash, auth_request_id, expires_at) SELECT $24, id, $25 FROM request`,
		r.ID, r.ClientID, r.RedirectURI, r.State, r.Nonce, list(r.Scopes), r.ResponseType, r.ResponseMode,
		r.CodeChallenge, r.CodeChallengeMethod, list(r.Prompt), r.MaxAge, r.LoginHint, r.UILocales,
		r.UserID, r.SessionID, r.AuthTime, list(r.AMR), r.Done, r.CreatedAt, r.ExpiresAt, r.BrowserBinding,
		r.IDTokenHintSubject, c.CodeHash, c.ExpiresAt)
	if err != nil {
		return dbError("create auth request with code", err)
	}
	return nil
}

// CompleteAuthRequestWithCode completes a live request and stores its code in
// one statement: the code is inserted only if the update found the request.
func (s *Store) CompleteAuthRequestWithCode(ctx context.Context, id, userID, sessionID string, authTime time.Time, amr []string, c storage.AuthCode, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `WITH request AS (
		UPDATE auth_requests SET user_id = $2, session_id = $3, auth_time = $4, amr = $5, done = true
		WHERE id = $1 AND expires_at > $6 AND (NOT done OR user_id = $2)
		RETURNING id
	) INSERT INTO auth_codes (code_hash, auth_request_id, expires_at) SELECT $7, id, $8 FROM request`,
		id, userID, sessionID, authTime, list(amr), now, c.CodeHash, c.ExpiresAt)
	return requireOne("complete auth request with code", tag, err)
}

// DeleteAuthRequest removes an auth request; deleting a missing one is not an
// error (the purge may have been first).
func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM auth_requests WHERE id = $1`, id); err != nil {
		return dbError("delete auth request", err)
	}
	return nil
}

// SaveAuthCode stores an authorization code's hash.
func (s *Store) SaveAuthCode(ctx context.Context, c storage.AuthCode) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO auth_codes (code_hash, auth_request_id, expires_at) VALUES ($1, $2, $3)`,
		c.CodeHash, c.AuthRequestID, c.ExpiresAt)
	if err != nil {
		return dbError("save auth code", err)
	}
	return nil
}

// AuthRequestByCode finds the code's auth request without consuming the
// code: a plain read, one query in the usual case. Only a replay writes (see
// recordReplay). Reuse is checked before expiry: a code replayed after it
// expired still revokes its grant.
func (s *Store) AuthRequestByCode(ctx context.Context, codeHash string, now time.Time) (storage.AuthRequest, storage.UserAccess, error) {
	const what = "auth request by code"
	var (
		expiresAt time.Time
		usedAt    *time.Time
		access    storage.UserAccess
	)
	// The join finds nothing for an unknown code, for a code already
	// exchanged, whose request the exchange deleted, and for a request whose
	// agent is gone: the code's own row tells them apart. The agent and its
	// habilitation come in the same read: the token request needs them.
	row := s.pool.QueryRow(ctx, `SELECT c.expires_at, c.used_at, `+sqlrow.Qualified("r.", authRequestColumns)+`, `+userAccessColumns+`
		FROM auth_codes c JOIN auth_requests r ON r.id = c.auth_request_id
			JOIN users u ON u.id = r.user_id
			LEFT JOIN habilitations h
				ON h.user_id = u.id AND h.client_id = r.client_id AND (h.until IS NULL OR h.until > $2)
		WHERE c.code_hash = $1`, codeHash, now)
	r, err := scanAuthRequest(sqlrow.Then(sqlrow.Prefix(row, &expiresAt, &usedAt), func(rest sqlrow.Scanner) error {
		var err error
		access, err = scanUserAccess(rest, "")
		return err
	}))
	if errors.Is(err, pgx.ErrNoRows) {
		r = storage.AuthRequest{} // zero: the request or its agent is gone
		err = s.pool.QueryRow(ctx, `SELECT expires_at, used_at FROM auth_codes WHERE code_hash = $1`,
			codeHash).Scan(&expiresAt, &usedAt)
	}
	if err != nil {
		return storage.AuthRequest{}, storage.UserAccess{}, notFoundOr(what, err)
	}
	switch {
	case usedAt != nil:
		return storage.AuthRequest{}, storage.UserAccess{}, s.withTx(ctx, func(tx pgx.Tx) error { return recordReplay(ctx, tx, codeHash, now, what) })
	case !expiresAt.After(now):
		return storage.AuthRequest{}, storage.UserAccess{}, notFound(what + ": code expired")
	case r.ID == "":
		return storage.AuthRequest{}, storage.UserAccess{}, notFound(what + ": auth request gone")
	}
	if access.Habilitation != nil {
		access.Habilitation.ClientID = r.ClientID
	}
	return r, access, nil
}

// exchangeCode redeems a code ($1) at $2 for its auth request $3, deletes
// the request and stores the access token, all in one statement, hence one
// round trip and one transaction. Every insert reads from redeemed, so
// nothing is written unless the code was. The casts type the parameters,
// which a SELECT list does not take from the INSERT's columns.
const exchangeCode = `WITH redeemed AS (
	UPDATE auth_codes SET used_at = $2
	WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 AND auth_request_id = $3
		AND EXISTS (SELECT 1 FROM auth_requests WHERE id = $3)
	RETURNING auth_request_id
), request_deleted AS (
	DELETE FROM auth_requests WHERE id IN (SELECT auth_request_id FROM redeemed)
), access_token AS (
	INSERT INTO access_tokens (` + accessTokenColumns + `)
	SELECT $4::text, auth_request_id, $5::text, $6::text, $7::text[], $8::text[], $9::timestamptz, $10::timestamptz
	FROM redeemed
)`

// exchangeCodeRefresh also stores the refresh token.
const exchangeCodeRefresh = exchangeCode + `, refresh_token AS (
	INSERT INTO refresh_tokens (` + refreshTokenColumns + `)
	SELECT $11::text, $12::text, auth_request_id, $13::text, $14::text, $15::text[], $16::text[], $17::text[],
		$18::timestamptz, $19::timestamptz, $20::timestamptz
	FROM redeemed
)`

// ExchangeAuthCode redeems the code, stores the tokens and deletes the auth
// request in one statement, after sharing the agent's row (one round trip). Of concurrent exchanges of one code, the first
// to update the code's row wins; the others wait for its row lock and, the
// winner committed, find the code used: their UPDATE changes nothing, so
// they write nothing, and recordReplay, in statements that see the winner's
// tokens, revokes them.
func (s *Store) ExchangeAuthCode(ctx context.Context, codeHash string, at storage.AccessToken, rt *storage.RefreshToken, now time.Time) error {
	const what = "exchange auth code"
	if rt != nil && rt.GrantID != at.GrantID {
		return fmt.Errorf("postgres: %s: refresh token of grant %q, access token of grant %q", what, rt.GrantID, at.GrantID)
	}
	query := exchangeCode
	args := []any{codeHash, now, at.GrantID, at.ID, at.ClientID, at.UserID, list(at.Scopes), list(at.Audience),
		at.ExpiresAt, at.CreatedAt}
	if rt != nil {
		query = exchangeCodeRefresh
		args = append(args, rt.ID, rt.TokenHash, rt.ClientID, rt.UserID, list(rt.Scopes), list(rt.Audience),
			list(rt.AMR), rt.AuthTime, rt.ExpiresAt, rt.CreatedAt)
	}
	// The agent's row is shared first, as a rotation does: a password
	// change, a disabling or a revocation of the agent's tokens (which
	// update or lock that row first) then either waits for these tokens and
	// revokes them, or comes first and deletes the request, which this
	// statement then no longer finds.
	b := &pgx.Batch{}
	b.Queue(shareUserQuery, at.UserID)
	b.Queue(query+` SELECT count(*) FROM redeemed`, args...)
	var redeemed int64
	if err := (batchRow{s.pool.SendBatch(ctx, b), 1}).Scan(&redeemed); err != nil {
		return dbError(what, err)
	}
	if redeemed == 1 {
		return nil
	}
	// Rare: a replay racing the winner, or a code unknown, expired or
	// without its request (recordReplay then writes nothing).
	return s.withTx(ctx, func(tx pgx.Tx) error { return recordReplay(ctx, tx, codeHash, now, what) })
}

// recordReplay handles a code presented after it was exchanged: it records
// the reuse on the code, revokes the grant's tokens and returns a
// commitThenFail ErrAlreadyUsed. A code that is not used (unknown, or unused
// but not redeemable) gets ErrNotFound, with nothing written.
func recordReplay(ctx context.Context, tx pgx.Tx, codeHash string, now time.Time, what string) error {
	var grantID string
	err := tx.QueryRow(ctx, `UPDATE auth_codes SET reused_at = coalesce(reused_at, $2)
		WHERE code_hash = $1 AND used_at IS NOT NULL RETURNING auth_request_id`, codeHash, now).Scan(&grantID)
	if err != nil {
		return notFoundOr(what, err)
	}
	if err := revokeGrant(ctx, tx, grantID); err != nil {
		return err
	}
	return commitThenFail(errAlreadyUsed(what))
}
