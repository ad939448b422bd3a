package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/caf-extranet/idp/storage"
)

const accessTokenColumns = `id, grant_id, client_id, user_id, scopes, audience, expires_at, created_at`

func scanAccessToken(row rowScanner) (storage.AccessToken, error) {
	var at storage.AccessToken
	err := row.Scan(&at.ID, &at.GrantID, &at.ClientID, &at.UserID, (*jsonList)(&at.Scopes),
		(*jsonList)(&at.Audience), (*msTime)(&at.ExpiresAt), (*msTime)(&at.CreatedAt))
	return at, err
}

const refreshTokenColumns = `id, token_hash, grant_id, client_id, user_id, scopes, audience, amr,
	auth_time, expires_at, created_at`

func scanRefreshToken(row rowScanner) (storage.RefreshToken, error) {
	var rt storage.RefreshToken
	err := row.Scan(&rt.ID, &rt.TokenHash, &rt.GrantID, &rt.ClientID, &rt.UserID, (*jsonList)(&rt.Scopes),
		(*jsonList)(&rt.Audience), (*jsonList)(&rt.AMR), (*msTime)(&rt.AuthTime), (*msTime)(&rt.ExpiresAt),
		(*msTime)(&rt.CreatedAt))
	return rt, err
}

func insertAccessToken(ctx context.Context, q querier, at storage.AccessToken) error {
	return exec(ctx, q, "create access token", `INSERT INTO access_tokens (`+accessTokenColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		at.ID, at.GrantID, at.ClientID, at.UserID, jsonList(at.Scopes), jsonList(at.Audience),
		ms(at.ExpiresAt), ms(at.CreatedAt))
}

func insertRefreshToken(ctx context.Context, q querier, rt storage.RefreshToken) error {
	return exec(ctx, q, "create refresh token", `INSERT INTO refresh_tokens (`+refreshTokenColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		rt.ID, rt.TokenHash, rt.GrantID, rt.ClientID, rt.UserID, jsonList(rt.Scopes), jsonList(rt.Audience),
		jsonList(rt.AMR), ms(rt.AuthTime), ms(rt.ExpiresAt), ms(rt.CreatedAt))
}

// CreateTokens stores an access token and, when rt is not nil, a refresh
// token, in one transaction. Tokens issued for a code go through
// ExchangeAuthCode instead, which redeems the code with them.
func (s *Store) CreateTokens(ctx context.Context, at storage.AccessToken, rt *storage.RefreshToken) error {
	return s.writeTx(ctx, func(tx *txConn) error {
		if err := insertAccessToken(ctx, tx, at); err != nil {
			return err
		}
		if rt == nil {
			return nil
		}
		return insertRefreshToken(ctx, tx, *rt)
	})
}

// GetAccessToken finds a live access token: ErrNotFound for unknown, revoked
// or expired.
func (s *Store) GetAccessToken(ctx context.Context, id string, now time.Time) (storage.AccessToken, error) {
	at, err := scanAccessToken(s.r.QueryRowContext(ctx, `SELECT `+accessTokenColumns+`
		FROM access_tokens WHERE id = ? AND revoked = 0 AND expires_at > ?`, id, ms(now)))
	if err != nil {
		return storage.AccessToken{}, dbError("get access token", err)
	}
	return at, nil
}

// RevokeAccessToken revokes one access token; revoking an unknown one is not
// an error (RFC 7009 answers the same for unknown tokens).
func (s *Store) RevokeAccessToken(ctx context.Context, id string) error {
	return exec(ctx, s.w, "revoke access token", `UPDATE access_tokens SET revoked = 1 WHERE id = ?`, id)
}

// refreshState is what reuse detection needs of a stored refresh token.
type refreshState struct {
	token     storage.RefreshToken
	expiresAt int64
	rotated   bool
	revoked   bool
}

func readRefreshState(ctx context.Context, q querier, tokenHash string) (refreshState, error) {
	var (
		st        refreshState
		rotatedAt sql.NullInt64
	)
	err := q.QueryRowContext(ctx, `SELECT `+refreshTokenColumns+`, rotated_at, revoked
		FROM refresh_tokens WHERE token_hash = ?`, tokenHash).Scan(
		&st.token.ID, &st.token.TokenHash, &st.token.GrantID, &st.token.ClientID, &st.token.UserID,
		(*jsonList)(&st.token.Scopes), (*jsonList)(&st.token.Audience), (*jsonList)(&st.token.AMR),
		(*msTime)(&st.token.AuthTime), (*msTime)(&st.token.ExpiresAt), (*msTime)(&st.token.CreatedAt),
		&rotatedAt, &st.revoked)
	st.rotated = rotatedAt.Valid
	st.expiresAt = ms(st.token.ExpiresAt)
	return st, err
}

// GetRefreshToken finds an active refresh token by hash. Presenting a token
// already rotated is a replay: its whole family is revoked and the caller gets
// ErrAlreadyUsed. Reuse is checked first, so a replay is caught even when the
// family was revoked already or the token has since expired.
func (s *Store) GetRefreshToken(ctx context.Context, tokenHash string, now time.Time) (storage.RefreshToken, error) {
	// The common case only reads: a plain read is enough, since rotation and
	// revocation never come undone.
	st, err := readRefreshState(ctx, s.r, tokenHash)
	if err != nil {
		return storage.RefreshToken{}, dbError("get refresh token", err)
	}
	if st.rotated {
		if err := s.writeTx(ctx, func(tx *txConn) error { return revokeGrant(ctx, tx, st.token.GrantID) }); err != nil {
			return storage.RefreshToken{}, err
		}
		return storage.RefreshToken{}, alreadyUsed("get refresh token")
	}
	if st.revoked || st.expiresAt <= ms(now) {
		return storage.RefreshToken{}, notFound("get refresh token")
	}
	return st.token, nil
}

// RotateRefreshToken retires oldHash and stores the new pair, in one write
// transaction: of concurrent rotations exactly one succeeds, and the others,
// like any later replay, revoke the family (committed) and get
// ErrAlreadyUsed.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, at storage.AccessToken, rt storage.RefreshToken, now time.Time) error {
	return s.writeTx(ctx, func(tx *txConn) error {
		// The common case in one statement: the token is live and retired
		// here. Reading the whole row first (as the rare cases below must)
		// cost as much as the rest of the transaction.
		err := execOne(ctx, tx, "rotate refresh token", `UPDATE refresh_tokens SET rotated_at = ?
			WHERE token_hash = ? AND rotated_at IS NULL AND revoked = 0 AND expires_at > ?`,
			ms(now), oldHash, ms(now))
		if err == nil {
			if err := insertAccessToken(ctx, tx, at); err != nil {
				return err
			}
			return insertRefreshToken(ctx, tx, rt)
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		// Unknown, rotated already (a replay), revoked or expired.
		st, err := readRefreshState(ctx, tx, oldHash)
		if err != nil {
			return dbError("rotate refresh token", err)
		}
		if st.rotated {
			if err := revokeGrant(ctx, tx, st.token.GrantID); err != nil {
				return err
			}
			return commitAndFail(alreadyUsed("rotate refresh token"))
		}
		// Revoked or expired (the statement above saw it so, under the
		// same write lock).
		return notFound("rotate refresh token")
	})
}

// RevokeGrant revokes every access and refresh token of a grant.
func (s *Store) RevokeGrant(ctx context.Context, grantID string) error {
	return s.writeTx(ctx, func(tx *txConn) error { return revokeGrant(ctx, tx, grantID) })
}

// RevokeUserTokens revokes every token of an agent.
func (s *Store) RevokeUserTokens(ctx context.Context, userID string) error {
	return s.writeTx(ctx, func(tx *txConn) error { return revokeUserTokens(ctx, tx, userID) })
}

func revokeGrant(ctx context.Context, tx *txConn, grantID string) error {
	if err := exec(ctx, tx, "revoke grant: access tokens",
		`UPDATE access_tokens SET revoked = 1 WHERE grant_id = ? AND revoked = 0`, grantID); err != nil {
		return err
	}
	return exec(ctx, tx, "revoke grant: refresh tokens",
		`UPDATE refresh_tokens SET revoked = 1 WHERE grant_id = ? AND revoked = 0`, grantID)
}

func revokeUserTokens(ctx context.Context, tx *txConn, userID string) error {
	// The codes not yet exchanged go with their completed requests (a code
	// whose request is gone is refused).
	if err := exec(ctx, tx, "revoke user tokens: completed auth requests",
		`DELETE FROM auth_requests WHERE user_id = ? AND done = 1`, userID); err != nil {
		return err
	}
	if err := exec(ctx, tx, "revoke user tokens: access tokens",
		`UPDATE access_tokens SET revoked = 1 WHERE user_id = ? AND revoked = 0`, userID); err != nil {
		return err
	}
	return exec(ctx, tx, "revoke user tokens: refresh tokens",
		`UPDATE refresh_tokens SET revoked = 1 WHERE user_id = ? AND revoked = 0`, userID)
}
