package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caf-extranet/idp/storage"
)

const accessTokenColumns = `id, grant_id, client_id, user_id, scopes, audience, expires_at, created_at`

const refreshTokenColumns = `id, token_hash, grant_id, client_id, user_id, scopes, audience, amr,
	auth_time, expires_at, created_at`

func scanAccessToken(row rowScanner) (storage.AccessToken, error) {
	var t storage.AccessToken
	err := row.Scan(&t.ID, &t.GrantID, &t.ClientID, &t.UserID, &t.Scopes, &t.Audience, &t.ExpiresAt, &t.CreatedAt)
	t.ExpiresAt, t.CreatedAt = utc(t.ExpiresAt), utc(t.CreatedAt)
	return t, err
}

// refreshState is a refresh token with the columns that decide whether it
// may still be used.
type refreshState struct {
	token     storage.RefreshToken
	rotatedAt *time.Time
	revoked   bool
}

func scanRefreshState(row rowScanner) (refreshState, error) {
	var st refreshState
	t := &st.token
	err := row.Scan(&t.ID, &t.TokenHash, &t.GrantID, &t.ClientID, &t.UserID, &t.Scopes, &t.Audience, &t.AMR,
		&t.AuthTime, &t.ExpiresAt, &t.CreatedAt, &st.rotatedAt, &st.revoked)
	t.AuthTime, t.ExpiresAt, t.CreatedAt = utc(t.AuthTime), utc(t.ExpiresAt), utc(t.CreatedAt)
	return st, err
}

func insertAccessToken(ctx context.Context, q querier, t storage.AccessToken) error {
	_, err := q.Exec(ctx, `INSERT INTO access_tokens (`+accessTokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		t.ID, t.GrantID, t.ClientID, t.UserID, list(t.Scopes), list(t.Audience), t.ExpiresAt, t.CreatedAt)
	if err != nil {
		return dbError("create access token", err)
	}
	return nil
}

func insertRefreshToken(ctx context.Context, q querier, t storage.RefreshToken) error {
	_, err := q.Exec(ctx, `INSERT INTO refresh_tokens (`+refreshTokenColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		t.ID, t.TokenHash, t.GrantID, t.ClientID, t.UserID, list(t.Scopes), list(t.Audience), list(t.AMR),
		t.AuthTime, t.ExpiresAt, t.CreatedAt)
	if err != nil {
		return dbError("create refresh token", err)
	}
	return nil
}

// CreateTokens stores an access token and, when rt is not nil, a refresh
// token, in one transaction. Tokens issued for a code go through
// ExchangeAuthCode instead, which redeems the code with them.
func (s *Store) CreateTokens(ctx context.Context, at storage.AccessToken, rt *storage.RefreshToken) error {
	if rt == nil {
		return insertAccessToken(ctx, s.pool, at)
	}
	return s.withTx(ctx, func(tx pgx.Tx) error {
		if err := insertAccessToken(ctx, tx, at); err != nil {
			return err
		}
		return insertRefreshToken(ctx, tx, *rt)
	})
}

// GetAccessToken returns ErrNotFound for unknown, revoked or expired tokens.
func (s *Store) GetAccessToken(ctx context.Context, id string, now time.Time) (storage.AccessToken, error) {
	t, err := scanAccessToken(s.pool.QueryRow(ctx, `SELECT `+accessTokenColumns+`
		FROM access_tokens WHERE id = $1 AND NOT revoked AND expires_at > $2`, id, now))
	if err != nil {
		return storage.AccessToken{}, notFoundOr("get access token", err)
	}
	return t, nil
}

// RevokeAccessToken revokes one access token; an unknown id is not an error
// (revocation answers the same for unknown tokens, RFC 7009).
func (s *Store) RevokeAccessToken(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE access_tokens SET revoked = true WHERE id = $1`, id); err != nil {
		return dbError("revoke access token", err)
	}
	return nil
}

// GetRefreshToken finds an active refresh token by hash. A rotated one is a
// replay: its family is revoked (committed) and the call gets ErrAlreadyUsed.
func (s *Store) GetRefreshToken(ctx context.Context, tokenHash string, now time.Time) (storage.RefreshToken, error) {
	var st refreshState
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		var err error
		st, err = lockRefreshToken(ctx, tx, tokenHash, now, "get refresh token")
		return err
	})
	if err != nil {
		return storage.RefreshToken{}, err
	}
	return st.token, nil
}

// RotateRefreshToken retires oldHash and stores the new pair in one
// transaction. The old token's row is locked first, so of concurrent
// rotations exactly one wins; the others find it rotated, revoke the family
// (the winner's new pair included) and get ErrAlreadyUsed.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, at storage.AccessToken, rt storage.RefreshToken, now time.Time) error {
	return s.withTx(ctx, func(tx pgx.Tx) error {
		const what = "rotate refresh token"
		if _, err := lockRefreshToken(ctx, tx, oldHash, now, what); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET rotated_at = $2 WHERE token_hash = $1`, oldHash, now); err != nil {
			return dbError("rotate refresh token", err)
		}
		if err := insertAccessToken(ctx, tx, at); err != nil {
			return err
		}
		return insertRefreshToken(ctx, tx, rt)
	})
}

// lockRefreshToken reads and locks a refresh token inside tx and decides
// whether it is usable: ErrNotFound when unknown, revoked or expired; when
// already rotated, it revokes the family and returns a commitThenFail
// ErrAlreadyUsed.
//
// Before the token row it locks the grant (advisory lock) and shares the
// user row, always in this order so that nothing deadlocks: a rotation then
// cannot slip a new pair past a concurrent revocation, whether a replay of
// another token of the family (grant lock) or ChangePassword and
// SetUserDisabled (they update the user row first).
func lockRefreshToken(ctx context.Context, tx pgx.Tx, tokenHash string, now time.Time, what string) (refreshState, error) {
	var grantID, userID string
	err := tx.QueryRow(ctx, `SELECT grant_id, user_id FROM refresh_tokens WHERE token_hash = $1`, tokenHash).
		Scan(&grantID, &userID)
	if err != nil {
		return refreshState{}, notFoundOr(what, err)
	}
	if err := lockGrant(ctx, tx, grantID); err != nil {
		return refreshState{}, err
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR SHARE`, userID); err != nil {
		return refreshState{}, dbError(what, err)
	}
	st, err := scanRefreshState(tx.QueryRow(ctx, `SELECT `+refreshTokenColumns+`, rotated_at, revoked
		FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE`, tokenHash))
	if err != nil {
		return refreshState{}, notFoundOr(what, err)
	}
	// Checked before revoked and expired: a replay is worth revoking even
	// when the token itself is no longer usable.
	if st.rotatedAt != nil {
		if err := revokeGrant(ctx, tx, st.token.GrantID); err != nil {
			return refreshState{}, err
		}
		return refreshState{}, commitThenFail(errAlreadyUsed(what))
	}
	if st.revoked || !st.token.ExpiresAt.After(now) {
		return refreshState{}, notFound(what)
	}
	return st, nil
}

// RevokeGrant revokes every access and refresh token of a grant.
func (s *Store) RevokeGrant(ctx context.Context, grantID string) error {
	return s.withTx(ctx, func(tx pgx.Tx) error { return revokeGrant(ctx, tx, grantID) })
}

// RevokeUserTokens revokes every token of an agent.
func (s *Store) RevokeUserTokens(ctx context.Context, userID string) error {
	return s.withTx(ctx, func(tx pgx.Tx) error { return revokeUserTokens(ctx, tx, userID) })
}

// grantLockSpace is the first key of the two-key advisory locks that
// serialise work on one grant (the second is a hash of the grant id; a
// collision only costs some waiting).
const grantLockSpace int32 = 0x69647067 // "idpg"

// lockGrant takes the grant's transaction-level advisory lock.
func lockGrant(ctx context.Context, q querier, grantID string) error {
	if _, err := q.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, grantLockSpace, grantID); err != nil {
		return dbError("lock grant", err)
	}
	return nil
}

// revokeGrant must run inside a transaction (it takes the grant lock, held
// until commit, so that a concurrent rotation cannot slip a new pair past it).
func revokeGrant(ctx context.Context, q querier, grantID string) error {
	if err := lockGrant(ctx, q, grantID); err != nil {
		return err
	}
	if _, err := q.Exec(ctx, `UPDATE access_tokens SET revoked = true WHERE grant_id = $1 AND NOT revoked`, grantID); err != nil {
		return dbError("revoke grant access tokens", err)
	}
	if _, err := q.Exec(ctx, `UPDATE refresh_tokens SET revoked = true WHERE grant_id = $1 AND NOT revoked`, grantID); err != nil {
		return dbError("revoke grant refresh tokens", err)
	}
	return nil
}

func revokeUserTokens(ctx context.Context, q querier, userID string) error {
	if _, err := q.Exec(ctx, `UPDATE access_tokens SET revoked = true WHERE user_id = $1 AND NOT revoked`, userID); err != nil {
		return dbError("revoke user access tokens", err)
	}
	if _, err := q.Exec(ctx, `UPDATE refresh_tokens SET revoked = true WHERE user_id = $1 AND NOT revoked`, userID); err != nil {
		return dbError("revoke user refresh tokens", err)
	}
	return nil
}
