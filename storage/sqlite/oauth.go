package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/internal/sqlrow"
)

const authRequestColumns = `id, client_id, redirect_uri, state, nonce, scopes, response_type, response_mode,
	code_challenge, code_challenge_method, prompt, max_age, login_hint, ui_locales,
	user_id, session_id, auth_time, amr, done, created_at, expires_at, browser_binding, id_token_hint_subject`

func scanAuthRequest(row rowScanner) (storage.AuthRequest, error) {
	var r storage.AuthRequest
	err := row.Scan(&r.ID, &r.ClientID, &r.RedirectURI, &r.State, &r.Nonce, (*jsonList)(&r.Scopes),
		&r.ResponseType, &r.ResponseMode, &r.CodeChallenge, &r.CodeChallengeMethod, (*jsonList)(&r.Prompt),
		&r.MaxAge, &r.LoginHint, &r.UILocales, &r.UserID, &r.SessionID, (*msTime)(&r.AuthTime),
		(*jsonList)(&r.AMR), &r.Done, (*msTime)(&r.CreatedAt), (*msTime)(&r.ExpiresAt), &r.BrowserBinding, &r.IDTokenHintSubject)
	return r, err
}

// CreateAuthRequest stores r.
func (s *Store) CreateAuthRequest(ctx context.Context, r storage.AuthRequest) error {
	return s.write(ctx, func(q querier) error { return insertAuthRequest(ctx, q, r) })
}

func insertAuthRequest(ctx context.Context, q querier, r storage.AuthRequest) error {
	return exec(ctx, q, "create auth request", `INSERT INTO auth_requests (`+authRequestColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.ClientID, r.RedirectURI, r.State, r.Nonce, jsonList(r.Scopes), r.ResponseType, r.ResponseMode,
		r.CodeChallenge, r.CodeChallengeMethod, jsonList(r.Prompt), r.MaxAge, r.LoginHint, r.UILocales,
		r.UserID, r.SessionID, ms(r.AuthTime), jsonList(r.AMR), boolInt(r.Done), ms(r.CreatedAt), ms(r.ExpiresAt),
		r.BrowserBinding, r.IDTokenHintSubject)
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

// CompleteAuthRequest records who authenticated and sets Done, once: a done
// request is completed again only for the agent that completed it.
func (s *Store) CompleteAuthRequest(ctx context.Context, id, userID, sessionID string, authTime time.Time, amr []string) error {
	return execOne(ctx, s.w, "complete auth request", `UPDATE auth_requests
		SET user_id = ?, session_id = ?, auth_time = ?, amr = ?, done = 1
		WHERE id = ? AND (done = 0 OR user_id = ?)`,
		userID, sessionID, ms(authTime), jsonList(amr), id, userID)
}

// CreateAuthRequestWithCode stores a completed request and its code in one
// transaction.
func (s *Store) CreateAuthRequestWithCode(ctx context.Context, r storage.AuthRequest, c storage.AuthCode) error {
	return s.writeTx(ctx, func(tx *txConn) error {
		if err := insertAuthRequest(ctx, tx, r); err != nil {
			return err
		}
		return insertAuthCode(ctx, tx, c)
	})
}

// CompleteAuthRequestWithCode completes a live request and stores its code in
// one transaction.
func (s *Store) CompleteAuthRequestWithCode(ctx context.Context, id, userID, sessionID string, authTime time.Time, amr []string, c storage.AuthCode, now time.Time) error {
	return s.writeTx(ctx, func(tx *txConn) error {
		if err := execOne(ctx, tx, "complete auth request", `UPDATE auth_requests
			SET user_id = ?, session_id = ?, auth_time = ?, amr = ?, done = 1
			WHERE id = ? AND expires_at > ? AND (done = 0 OR user_id = ?)`,
			userID, sessionID, ms(authTime), jsonList(amr), id, ms(now), userID); err != nil {
			return err
		}
		return insertAuthCode(ctx, tx, c)
	})
}

// DeleteAuthRequest removes an auth request; deleting a missing one is not an
// error (the purge may have been first).
func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	return exec(ctx, s.w, "delete auth request", `DELETE FROM auth_requests WHERE id = ?`, id)
}

// SaveAuthCode stores an authorization code's hash.
func (s *Store) SaveAuthCode(ctx context.Context, c storage.AuthCode) error {
	return s.write(ctx, func(q querier) error { return insertAuthCode(ctx, q, c) })
}

func insertAuthCode(ctx context.Context, q querier, c storage.AuthCode) error {
	return exec(ctx, q, "save auth code",
		`INSERT INTO auth_codes (code_hash, auth_request_id, expires_at) VALUES (?, ?, ?)`,
		c.CodeHash, c.AuthRequestID, ms(c.ExpiresAt))
}

// AuthRequestByCode finds the code's auth request on the read pool, without
// consuming the code. Only a replay writes (see recordReplay). Reuse is
// checked before expiry: a code replayed after it expired still revokes its
// grant.
func (s *Store) AuthRequestByCode(ctx context.Context, codeHash string, now time.Time) (storage.AuthRequest, storage.UserAccess, error) {
	const what = "auth request by code"
	var (
		expiresAt int64
		usedAt    sql.NullInt64
		access    storage.UserAccess
	)
	// The usual case, a code not yet exchanged, is one read, with the agent
	// and its habilitation that the token request needs. The join finds
	// nothing for an unknown code, for a code already exchanged, whose
	// request the exchange deleted, and for a request whose agent is gone:
	// the code's own row tells them apart.
	row := s.r.QueryRowContext(ctx, `SELECT c.expires_at, c.used_at, `+sqlrow.Qualified("r.", authRequestColumns)+`, `+userAccessColumns+`
		FROM auth_codes c JOIN auth_requests r ON r.id = c.auth_request_id
			JOIN users u ON u.id = r.user_id
			LEFT JOIN habilitations h
				ON h.user_id = u.id AND h.client_id = r.client_id AND (h.until IS NULL OR h.until > ?)
		WHERE c.code_hash = ?`, ms(now), codeHash)
	r, err := scanAuthRequest(sqlrow.Then(sqlrow.Prefix(row, &expiresAt, &usedAt), func(rest sqlrow.Scanner) error {
		var err error
		access, err = scanUserAccess(rest, "")
		return err
	}))
	if errors.Is(err, sql.ErrNoRows) {
		r = storage.AuthRequest{} // zero: the request or its agent is gone
		err = s.r.QueryRowContext(ctx, `SELECT expires_at, used_at FROM auth_codes WHERE code_hash = ?`,
			codeHash).Scan(&expiresAt, &usedAt)
	}
	if err != nil {
		return storage.AuthRequest{}, storage.UserAccess{}, dbError(what, err)
	}
	switch {
	case usedAt.Valid:
		return storage.AuthRequest{}, storage.UserAccess{}, s.writeTx(ctx, func(tx *txConn) error { return recordReplay(ctx, tx, codeHash, now, what) })
	case expiresAt <= ms(now):
		return storage.AuthRequest{}, storage.UserAccess{}, notFound(what + ": code expired")
	case r.ID == "":
		return storage.AuthRequest{}, storage.UserAccess{}, notFound(what + ": auth request gone")
	}
	if access.Habilitation != nil {
		access.Habilitation.ClientID = r.ClientID
	}
	return r, access, nil
}

// ExchangeAuthCode redeems the code, stores the tokens and deletes the auth
// request in one write transaction. The write lock serialises it with every
// other exchange or replay of the code (in this process or another one on
// the same file): the first sees the code unused and redeems it; a later one
// finds it used, and its revocation sees the tokens the first committed.
func (s *Store) ExchangeAuthCode(ctx context.Context, codeHash string, at storage.AccessToken, rt *storage.RefreshToken, now time.Time) error {
	if rt != nil && rt.GrantID != at.GrantID {
		return fmt.Errorf("sqlite: exchange auth code: refresh token of grant %q, access token of grant %q", rt.GrantID, at.GrantID)
	}
	return s.writeTx(ctx, func(tx *txConn) error {
		res, err := tx.ExecContext(ctx, `UPDATE auth_codes SET used_at = ?
			WHERE code_hash = ? AND used_at IS NULL AND expires_at > ? AND auth_request_id = ?
			AND EXISTS (SELECT 1 FROM auth_requests WHERE id = auth_codes.auth_request_id)`,
			ms(now), codeHash, ms(now), at.GrantID)
		if err != nil {
			return dbError("exchange auth code", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return dbError("exchange auth code", err)
		}
		if n == 0 {
			// Redeemed meanwhile (or unknown, expired, request gone: then
			// recordReplay finds nothing and nothing is written).
			return recordReplay(ctx, tx, codeHash, now, "exchange auth code")
		}
		if err := insertAccessToken(ctx, tx, at); err != nil {
			return err
		}
		if rt != nil {
			if err := insertRefreshToken(ctx, tx, *rt); err != nil {
				return err
			}
		}
		return exec(ctx, tx, "exchange auth code: delete auth request",
			`DELETE FROM auth_requests WHERE id = ?`, at.GrantID)
	})
}

// recordReplay handles a code presented after it was exchanged: it records
// the reuse on the code, revokes the grant's tokens and returns a
// commitAndFail ErrAlreadyUsed. A code that is not used (unknown, or unused
// but not redeemable) gets ErrNotFound, with nothing written.
func recordReplay(ctx context.Context, tx *txConn, codeHash string, now time.Time, what string) error {
	var grantID string
	err := tx.QueryRowContext(ctx, `UPDATE auth_codes SET reused_at = coalesce(reused_at, ?)
		WHERE code_hash = ? AND used_at IS NOT NULL RETURNING auth_request_id`, ms(now), codeHash).Scan(&grantID)
	if err != nil {
		return dbError(what, err)
	}
	if err := revokeGrant(ctx, tx, grantID); err != nil {
		return err
	}
	return commitAndFail(alreadyUsed(what))
}
