package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caf-extranet/idp/storage"
)

const authRequestColumns = `id, client_id, redirect_uri, state, nonce, scopes, response_type, response_mode,
	code_challenge, code_challenge_method, prompt, max_age, login_hint, ui_locales,
	user_id, session_id, auth_time, amr, done, created_at, expires_at`

func scanAuthRequest(row rowScanner) (storage.AuthRequest, error) {
	var r storage.AuthRequest
	err := row.Scan(&r.ID, &r.ClientID, &r.RedirectURI, &r.State, &r.Nonce, &r.Scopes, &r.ResponseType,
		&r.ResponseMode, &r.CodeChallenge, &r.CodeChallengeMethod, &r.Prompt, &r.MaxAge, &r.LoginHint,
		&r.UILocales, &r.UserID, &r.SessionID, &r.AuthTime, &r.AMR, &r.Done, &r.CreatedAt, &r.ExpiresAt)
	r.AuthTime, r.CreatedAt, r.ExpiresAt = utc(r.AuthTime), utc(r.CreatedAt), utc(r.ExpiresAt)
	return r, err
}

// CreateAuthRequest stores r.
func (s *Store) CreateAuthRequest(ctx context.Context, r storage.AuthRequest) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO auth_requests (`+authRequestColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`,
		r.ID, r.ClientID, r.RedirectURI, r.State, r.Nonce, list(r.Scopes), r.ResponseType, r.ResponseMode,
		r.CodeChallenge, r.CodeChallengeMethod, list(r.Prompt), r.MaxAge, r.LoginHint, r.UILocales,
		r.UserID, r.SessionID, r.AuthTime, list(r.AMR), r.Done, r.CreatedAt, r.ExpiresAt)
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

// CompleteAuthRequest records who authenticated and sets Done.
func (s *Store) CompleteAuthRequest(ctx context.Context, id, userID, sessionID string, authTime time.Time, amr []string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE auth_requests
		SET user_id = $2, session_id = $3, auth_time = $4, amr = $5, done = true WHERE id = $1`,
		id, userID, sessionID, authTime, list(amr))
	return requireOne("complete auth request", tag, err)
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

// ConsumeAuthCode marks the code used and returns its auth request. The code
// row is locked first, so of concurrent callers exactly one sees it unused;
// the others, like any later replay, revoke the grant's tokens, record the
// reuse on the code (see CreateTokens) and get ErrAlreadyUsed (all committed
// although the call fails).
func (s *Store) ConsumeAuthCode(ctx context.Context, codeHash string, now time.Time) (storage.AuthRequest, error) {
	var req storage.AuthRequest
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		var (
			requestID string
			expiresAt time.Time
			usedAt    *time.Time
		)
		err := tx.QueryRow(ctx, `SELECT auth_request_id, expires_at, used_at
			FROM auth_codes WHERE code_hash = $1 FOR UPDATE`, codeHash).Scan(&requestID, &expiresAt, &usedAt)
		if err != nil {
			return notFoundOr("consume auth code", err)
		}
		if usedAt != nil {
			// Recorded so that CreateTokens refuses the grant: the first
			// exchange may not have stored its tokens yet. Committed with
			// the revocation, under the grant lock that CreateTokens takes.
			if _, err := tx.Exec(ctx, `UPDATE auth_codes SET reused_at = $2
				WHERE code_hash = $1 AND reused_at IS NULL`, codeHash, now); err != nil {
				return dbError("consume auth code: record reuse", err)
			}
			if err := revokeGrant(ctx, tx, requestID); err != nil {
				return err
			}
			return commitThenFail(errAlreadyUsed("consume auth code"))
		}
		if !expiresAt.After(now) {
			return notFound("consume auth code: expired")
		}
		if _, err := tx.Exec(ctx, `UPDATE auth_codes SET used_at = $2 WHERE code_hash = $1`, codeHash, now); err != nil {
			return dbError("consume auth code", err)
		}
		req, err = scanAuthRequest(tx.QueryRow(ctx, `SELECT `+authRequestColumns+`
			FROM auth_requests WHERE id = $1`, requestID))
		if errors.Is(err, pgx.ErrNoRows) {
			// Rolled back: the code stays unused, but without its request it
			// can never be exchanged anyway.
			return notFound("consume auth code: auth request gone")
		}
		if err != nil {
			return dbError("consume auth code", err)
		}
		return nil
	})
	if err != nil {
		return storage.AuthRequest{}, err
	}
	return req, nil
}
