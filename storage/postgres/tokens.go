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
	if _, err := s.pool.Exec(ctx, `UPDATE access_tokens SET revoked = true WHERE id = $1`, id); err != nil && !unstorable(err) {
		return dbError("revoke access token", err)
	}
	return nil
}

// GetRefreshToken finds an active refresh token by hash: a plain read, one
// query in the usual case, since RotateRefreshToken decides again under its
// locks. Only a replay writes: a rotated token (rotation is never undone)
// has its family revoked, committed, and the call gets ErrAlreadyUsed.
func (s *Store) GetRefreshToken(ctx context.Context, tokenHash string, now time.Time) (storage.RefreshToken, error) {
	const what = "get refresh token"
	st, err := scanRefreshState(s.pool.QueryRow(ctx, `SELECT `+refreshTokenColumns+`, rotated_at, revoked
		FROM refresh_tokens WHERE token_hash = $1`, tokenHash))
	if err != nil {
		return storage.RefreshToken{}, notFoundOr(what, err)
	}
	// Rotated is checked before revoked and expired: a replay is worth
	// revoking even when the token itself is no longer usable.
	switch {
	case st.rotatedAt != nil:
		return storage.RefreshToken{}, s.withTx(ctx, func(tx pgx.Tx) error {
			if err := revokeGrant(ctx, tx, st.token.GrantID); err != nil {
				return err
			}
			return commitThenFail(errAlreadyUsed(what))
		})
	case st.revoked || !st.token.ExpiresAt.After(now):
		return storage.RefreshToken{}, notFound(what)
	}
	return st.token, nil
}

// rotateRefreshToken retires the token $1 at $2, if it is usable and of the
// grant $3 and the agent $4, and stores the new pair, in one statement: both
// inserts read from rotated, so nothing is written unless the old token was.
// The casts type the parameters, which a SELECT list does not take from the
// INSERT's columns.
const rotateRefreshToken = `WITH rotated AS (
	UPDATE refresh_tokens SET rotated_at = $2
	WHERE token_hash = $1 AND grant_id = $3 AND user_id = $4
		AND rotated_at IS NULL AND NOT revoked AND expires_at > $2
	RETURNING grant_id
), access_token AS (
	INSERT INTO access_tokens (` + accessTokenColumns + `)
	SELECT $5::text, grant_id, $6::text, $4::text, $7::text[], $8::text[], $9::timestamptz, $10::timestamptz
	FROM rotated
), refresh_token AS (
	INSERT INTO refresh_tokens (` + refreshTokenColumns + `)
	SELECT $11::text, $12::text, grant_id, $13::text, $4::text, $14::text[], $15::text[], $16::text[],
		$17::timestamptz, $18::timestamptz, $19::timestamptz
	FROM rotated
)
SELECT count(*) FROM rotated`

// RotateRefreshToken retires oldHash and stores the new pair. The usual case
// (a usable token, and a pair of its own grant and agent, as the provider
// always asks) costs one round trip: a batch of three statements that
// PostgreSQL runs as one implicit transaction (pgx ends the pipeline with a
// single Sync, or sends one multi-statement query with the simple protocol:
// committed when all succeed, rolled back when one fails), so the locks the
// first two take are held until the third is committed. They are
// lockRefreshToken's, in its order, and the third statement, a separate one,
// takes its snapshot once they are granted:
//
//  1. the grant's advisory lock: a revocation of the family (revokeGrant,
//     for a replay or RevokeGrant) holds it from before its updates until
//     its commit. If the revocation got it first, the rotation waits, then
//     finds the token revoked and writes nothing. If the rotation got it
//     first, the revocation's updates wait for the rotation's commit, and
//     their snapshots see (and revoke) the new pair.
//  2. the agent's row, shared: ChangePassword and SetUserDisabled update it
//     before revoking the agent's tokens, with the same two outcomes.
//  3. the token's row, by the conditional UPDATE: of concurrent rotations the
//     first wins; the others wait for its row lock and, their condition
//     evaluated again on the committed row, find it rotated and write
//     nothing.
//
// When nothing was written (a replay, a token revoked, expired or unknown, or
// a pair of another grant or agent than the token's), rotateLocked decides
// in a transaction of its own, as before: a replay revokes the family
// (committed) and gets ErrAlreadyUsed; the losers of a race are replays.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, at storage.AccessToken, rt storage.RefreshToken, now time.Time) error {
	const what = "rotate refresh token"
	if at.GrantID != rt.GrantID || at.UserID != rt.UserID {
		return s.rotateLocked(ctx, oldHash, at, rt, now)
	}
	b := &pgx.Batch{}
	b.Queue(lockGrantQuery, grantLockSpace, rt.GrantID)
	b.Queue(shareUserQuery, rt.UserID)
	b.Queue(rotateRefreshToken, oldHash, now, rt.GrantID, rt.UserID,
		at.ID, at.ClientID, list(at.Scopes), list(at.Audience), at.ExpiresAt, at.CreatedAt,
		rt.ID, rt.TokenHash, rt.ClientID, list(rt.Scopes), list(rt.Audience), list(rt.AMR),
		rt.AuthTime, rt.ExpiresAt, rt.CreatedAt)
	var rotated int64
	if err := (batchRow{s.pool.SendBatch(ctx, b), 2}).Scan(&rotated); err != nil {
		return dbError(what, err)
	}
	if rotated == 1 {
		return nil
	}
	return s.rotateLocked(ctx, oldHash, at, rt, now)
}

// batchRow is the row of a batch's last statement, after skip statements
// without rows (locks, settings); Scan reads the batch up to its end (the
// commit or the rollback) and returns its first error.
type batchRow struct {
	br   pgx.BatchResults
	skip int
}

func (r batchRow) Scan(dest ...any) (err error) {
	defer func() {
		if cerr := r.br.Close(); err == nil {
			err = cerr
		}
	}()
	for range r.skip {
		if _, err := r.br.Exec(); err != nil {
			return err
		}
	}
	return r.br.QueryRow().Scan(dest...)
}

// rotateLocked is the rotation in a transaction that reads the token's grant
// and agent before locking them (lockRefreshToken), for whatever
// RotateRefreshToken's batch did not settle.
func (s *Store) rotateLocked(ctx context.Context, oldHash string, at storage.AccessToken, rt storage.RefreshToken, now time.Time) error {
	return s.withTx(ctx, func(tx pgx.Tx) error {
		const what = "rotate refresh token"
		if err := lockRefreshToken(ctx, tx, oldHash, now, what); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET rotated_at = $2 WHERE token_hash = $1`, oldHash, now); err != nil {
			return dbError(what, err)
		}
		if err := insertAccessToken(ctx, tx, at); err != nil {
			return err
		}
		return insertRefreshToken(ctx, tx, rt)
	})
}

// lockRefreshToken locks a refresh token inside tx and decides whether it is
// usable: nil when it is, ErrNotFound when unknown, revoked or expired; when
// already rotated, it revokes the family and returns a commitThenFail
// ErrAlreadyUsed.
//
// Before the token row it locks the grant (advisory lock) and shares the
// user row, in RotateRefreshToken's order (see there why a new pair then
// cannot slip past a concurrent revocation), so that nothing deadlocks.
func lockRefreshToken(ctx context.Context, tx pgx.Tx, tokenHash string, now time.Time, what string) error {
	var grantID, userID string
	err := tx.QueryRow(ctx, `SELECT grant_id, user_id FROM refresh_tokens WHERE token_hash = $1`, tokenHash).
		Scan(&grantID, &userID)
	if err != nil {
		return notFoundOr(what, err)
	}
	if err := lockGrant(ctx, tx, grantID); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, shareUserQuery, userID); err != nil {
		return dbError(what, err)
	}
	st, err := scanRefreshState(tx.QueryRow(ctx, `SELECT `+refreshTokenColumns+`, rotated_at, revoked
		FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE`, tokenHash))
	if err != nil {
		return notFoundOr(what, err)
	}
	// Checked before revoked and expired: a replay is worth revoking even
	// when the token itself is no longer usable.
	if st.rotatedAt != nil {
		if err := revokeGrant(ctx, tx, st.token.GrantID); err != nil {
			return err
		}
		return commitThenFail(errAlreadyUsed(what))
	}
	if st.revoked || !st.token.ExpiresAt.After(now) {
		return notFound(what)
	}
	return nil
}

// RevokeGrant revokes every access and refresh token of a grant.
func (s *Store) RevokeGrant(ctx context.Context, grantID string) error {
	return s.withTx(ctx, func(tx pgx.Tx) error { return revokeGrant(ctx, tx, grantID) })
}

// RevokeUserTokens revokes every token of an agent.
//
// The agent's row is locked first, as SetUserDisabled and ChangePassword do
// by updating it: a rotation holds that row shared until it commits, so the
// revocation either waits and sees the new pair, or comes first and the
// rotation then finds its token revoked.
func (s *Store) RevokeUserTokens(ctx context.Context, userID string) error {
	return s.withTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, userID); err != nil {
			return dbError("revoke user tokens", err)
		}
		return revokeUserTokens(ctx, tx, userID)
	})
}

// grantLockSpace is the first key of the two-key advisory locks that
// serialise work on one grant (the second is a hash of the grant id; a
// collision only costs some waiting).
const grantLockSpace int32 = 0x69647067 // "idpg"

// lockGrantQuery takes the grant ($2) lock in space $1 until the transaction
// ends.
const lockGrantQuery = `SELECT pg_advisory_xact_lock($1, hashtext($2))`

// shareUserQuery shares the agent's row ($1) until the transaction ends (a
// missing agent locks nothing and is not an error).
const shareUserQuery = `SELECT 1 FROM users WHERE id = $1 FOR SHARE`

// lockGrant takes the grant's transaction-level advisory lock.
func lockGrant(ctx context.Context, q querier, grantID string) error {
	if _, err := q.Exec(ctx, lockGrantQuery, grantLockSpace, grantID); err != nil {
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
	// The codes not yet exchanged go with their completed requests (a code
	// whose request is gone is refused).
	if _, err := q.Exec(ctx, `DELETE FROM auth_requests WHERE user_id = $1 AND done`, userID); err != nil {
		return dbError("revoke user auth requests", err)
	}
	if _, err := q.Exec(ctx, `UPDATE access_tokens SET revoked = true WHERE user_id = $1 AND NOT revoked`, userID); err != nil {
		return dbError("revoke user access tokens", err)
	}
	if _, err := q.Exec(ctx, `UPDATE refresh_tokens SET revoked = true WHERE user_id = $1 AND NOT revoked`, userID); err != nil {
		return dbError("revoke user refresh tokens", err)
	}
	return nil
}
