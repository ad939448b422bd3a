package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/caf-extranet/idp/storage"
)

const authRequestColumns = `id, client_id, redirect_uri, state, nonce, scopes, response_type, response_mode,
	code_challenge, code_challenge_method, prompt, max_age, login_hint, ui_locales,
	user_id, session_id, auth_time, amr, done, created_at, expires_at`

func scanAuthRequest(row rowScanner) (storage.AuthRequest, error) {
	var r storage.AuthRequest
	err := row.Scan(&r.ID, &r.ClientID, &r.RedirectURI, &r.State, &r.Nonce, (*jsonList)(&r.Scopes),
		&r.ResponseType, &r.ResponseMode, &r.CodeChallenge, &r.CodeChallengeMethod, (*jsonList)(&r.Prompt),
		&r.MaxAge, &r.LoginHint, &r.UILocales, &r.UserID, &r.SessionID, (*msTime)(&r.AuthTime),
		(*jsonList)(&r.AMR), &r.Done, (*msTime)(&r.CreatedAt), (*msTime)(&r.ExpiresAt))
	return r, err
}

// CreateAuthRequest stores r.
func (s *Store) CreateAuthRequest(ctx context.Context, r storage.AuthRequest) error {
	return exec(ctx, s.w, "create auth request", `INSERT INTO auth_requests (`+authRequestColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.ClientID, r.RedirectURI, r.State, r.Nonce, jsonList(r.Scopes), r.ResponseType, r.ResponseMode,
		r.CodeChallenge, r.CodeChallengeMethod, jsonList(r.Prompt), r.MaxAge, r.LoginHint, r.UILocales,
		r.UserID, r.SessionID, ms(r.AuthTime), jsonList(r.AMR), boolInt(r.Done), ms(r.CreatedAt), ms(r.ExpiresAt))
}

// GetAuthRequest finds an auth request; ErrNotFound once it has expired.
func (s *Store) GetAuthRequest(ctx context.Context, id string, now time.Time) (storage.AuthRequest, error) {
	r, err := scanAuthRequest(s.r.QueryRowContext(ctx, `SELECT `+authRequestColumns+`
		FROM auth_requests WHERE id = ? AND expires_at > ?`, id, ms(now)))
	if err != nil {
		return storage.AuthRequest{}, dbError("get auth request", err)
	}
	return r, nil
}

// CompleteAuthRequest records who authenticated and sets Done.
func (s *Store) CompleteAuthRequest(ctx context.Context, id, userID, sessionID string, authTime time.Time, amr []string) error {
	return execOne(ctx, s.w, "complete auth request", `UPDATE auth_requests
		SET user_id = ?, session_id = ?, auth_time = ?, amr = ?, done = 1 WHERE id = ?`,
		userID, sessionID, ms(authTime), jsonList(amr), id)
}

// DeleteAuthRequest removes an auth request; deleting a missing one is not an
// error (the purge may have been first).
func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	return exec(ctx, s.w, "delete auth request", `DELETE FROM auth_requests WHERE id = ?`, id)
}

// SaveAuthCode stores an authorization code's hash.
func (s *Store) SaveAuthCode(ctx context.Context, c storage.AuthCode) error {
	return exec(ctx, s.w, "save auth code",
		`INSERT INTO auth_codes (code_hash, auth_request_id, expires_at) VALUES (?, ?, ?)`,
		c.CodeHash, c.AuthRequestID, ms(c.ExpiresAt))
}

// ConsumeAuthCode marks the code used and returns its auth request, in one
// write transaction: of concurrent callers (in this process or another one on
// the same file) exactly one sees the code unused; the others, like any later
// replay, revoke the grant's tokens, record the reuse on the code (see
// CreateTokens) and get ErrAlreadyUsed (all committed although the call
// fails). Reuse is checked before expiry: a code
// replayed after it expired still revokes its grant.
func (s *Store) ConsumeAuthCode(ctx context.Context, codeHash string, now time.Time) (storage.AuthRequest, error) {
	var req storage.AuthRequest
	err := s.writeTx(ctx, func(tx *txConn) error {
		var (
			requestID string
			expiresAt int64
			usedAt    sql.NullInt64
		)
		err := tx.QueryRowContext(ctx, `SELECT auth_request_id, expires_at, used_at
			FROM auth_codes WHERE code_hash = ?`, codeHash).Scan(&requestID, &expiresAt, &usedAt)
		if err != nil {
			return dbError("consume auth code", err)
		}
		if usedAt.Valid {
			// Recorded so that CreateTokens refuses the grant: the first
			// exchange may not have stored its tokens yet.
			if err := exec(ctx, tx, "consume auth code: record reuse",
				`UPDATE auth_codes SET reused_at = ? WHERE code_hash = ? AND reused_at IS NULL`,
				ms(now), codeHash); err != nil {
				return err
			}
			if err := revokeGrant(ctx, tx, requestID); err != nil {
				return err
			}
			return commitAndFail(alreadyUsed("consume auth code"))
		}
		if expiresAt <= ms(now) {
			return notFound("consume auth code: expired")
		}
		req, err = scanAuthRequest(tx.QueryRowContext(ctx, `SELECT `+authRequestColumns+`
			FROM auth_requests WHERE id = ?`, requestID))
		if errors.Is(err, sql.ErrNoRows) {
			// Nothing written: without its request the code can never be
			// exchanged anyway.
			return notFound("consume auth code: auth request gone")
		}
		if err != nil {
			return dbError("consume auth code", err)
		}
		return exec(ctx, tx, "consume auth code",
			`UPDATE auth_codes SET used_at = ? WHERE code_hash = ?`, ms(now), codeHash)
	})
	if err != nil {
		return storage.AuthRequest{}, err
	}
	return req, nil
}
