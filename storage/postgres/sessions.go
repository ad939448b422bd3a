package postgres

import (
	"context"
	"time"

	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/internal/sqlrow"
)

const sessionColumns = `id, user_id, kind, auth_time, amr, created_at, last_seen_at, idle_expires_at, absolute_expires_at`

func scanSession(row rowScanner) (storage.Session, error) {
	var x storage.Session
	err := row.Scan(sessionDest(&x)...)
	utcSession(&x)
	return x, err
}

// sessionDest is where the sessionColumns of a row go (then utcSession).
func sessionDest(x *storage.Session) []any {
	return []any{&x.ID, &x.UserID, &x.Kind, &x.AuthTime, &x.AMR, &x.CreatedAt, &x.LastSeenAt,
		&x.IdleExpiresAt, &x.AbsoluteExpiresAt}
}

func utcSession(x *storage.Session) {
	x.AuthTime, x.CreatedAt, x.LastSeenAt = utc(x.AuthTime), utc(x.CreatedAt), utc(x.LastSeenAt)
	x.IdleExpiresAt, x.AbsoluteExpiresAt = utc(x.IdleExpiresAt), utc(x.AbsoluteExpiresAt)
}

// CreateSession stores a browser's login with its audit events, in one
// statement.
func (s *Store) CreateSession(ctx context.Context, x storage.Session, audit ...storage.AuditEvent) error {
	args := []any{x.ID, x.UserID, x.Kind, x.AuthTime, list(x.AMR), x.CreatedAt, x.LastSeenAt, x.IdleExpiresAt, x.AbsoluteExpiresAt}
	auditCTE, args := auditsAfter("created", args, audit)
	_, err := s.pool.Exec(ctx, `WITH created AS (
			INSERT INTO sessions (`+sessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id
		)`+auditCTE+`
		SELECT 1`, args...)
	if err != nil {
		return dbError("create session", err)
	}
	return nil
}

// GetSession finds a session; ErrNotFound once either expiry has passed.
func (s *Store) GetSession(ctx context.Context, id string, now time.Time) (storage.Session, error) {
	x, err := scanSession(s.pool.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE id = $1 AND idle_expires_at > $2 AND absolute_expires_at > $2`, id, now))
	if err != nil {
		return storage.Session{}, notFoundOr("get session", err)
	}
	return x, nil
}

// GetSessionAndUser is GetSession and GetUser of its agent in one query.
func (s *Store) GetSessionAndUser(ctx context.Context, id string, now time.Time) (storage.Session, storage.User, error) {
	var x storage.Session
	u, err := scanUser(sqlrow.Suffix(s.pool.QueryRow(ctx, `SELECT `+sqlrow.Qualified("u.", userColumns)+`, `+
		sqlrow.Qualified("s.", sessionColumns)+` FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.id = $1 AND s.idle_expires_at > $2 AND s.absolute_expires_at > $2`, id, now), sessionDest(&x)...))
	if err != nil {
		return storage.Session{}, storage.User{}, notFoundOr("get session and user", err)
	}
	utcSession(&x)
	return x, u, nil
}

// TouchSession records activity and pushes the idle expiry, never beyond the
// absolute one. An expired session is not revived: ErrNotFound.
func (s *Store) TouchSession(ctx context.Context, id string, now, idleExpiresAt time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE sessions
		SET last_seen_at = $2, idle_expires_at = LEAST($3::timestamptz, absolute_expires_at)
		WHERE id = $1 AND idle_expires_at > $2 AND absolute_expires_at > $2`, id, now, idleExpiresAt)
	return requireOne("touch session", tag, err)
}

// DeleteSession removes one session; a missing one is not an error (logout
// twice is fine).
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id = $1`, id); err != nil {
		return dbError("delete session", err)
	}
	return nil
}

// DeleteUserSessions removes every session of an agent.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID); err != nil {
		return dbError("delete user sessions", err)
	}
	return nil
}

const challengeColumns = `id, kind, answer_hash, binding_hash, created_at, expires_at`

// TakeChallenge consumes the challenge and reads the throttle in one
// statement: the DELETE in a WITH clause runs whether or not a row comes
// out of it, and the outer joins give one row in every case.
func (s *Store) TakeChallenge(ctx context.Context, id, key string, now time.Time) (*storage.Challenge, storage.Throttle, error) {
	var (
		cID, kind, answerHash, bindingHash *string
		createdAt, expiresAt               *time.Time
		thKey                              *string
		failures                           *int
		lastFailureAt, lockedAt            *time.Time
	)
	err := s.pool.QueryRow(ctx, `WITH taken AS (
			DELETE FROM challenges WHERE id = $1 RETURNING `+challengeColumns+`
		)
		SELECT t.id, t.kind, t.answer_hash, t.binding_hash, t.created_at, t.expires_at,
			th.key, th.failures, th.last_failure_at, th.locked_at
		FROM (SELECT $2::text AS key) AS k
			LEFT JOIN taken t ON true
			LEFT JOIN throttles th ON th.key = k.key`, id, key).Scan(
		&cID, &kind, &answerHash, &bindingHash, &createdAt, &expiresAt, &thKey, &failures, &lastFailureAt, &lockedAt)
	if err != nil {
		return nil, storage.Throttle{}, dbError("take challenge", err)
	}
	th := storage.Throttle{Key: key}
	if thKey != nil {
		th.Failures, th.LastFailureAt, th.LockedAt = *failures, utc(*lastFailureAt), utcPtr(lockedAt)
	}
	if cID == nil || !expiresAt.After(now) {
		return nil, th, nil
	}
	return &storage.Challenge{ID: *cID, Kind: *kind, AnswerHash: *answerHash, BindingHash: *bindingHash,
		CreatedAt: utc(*createdAt), ExpiresAt: utc(*expiresAt)}, th, nil
}

// ConsumeChallenge deletes the challenge and returns it. One DELETE ...
// RETURNING: of concurrent callers only the one whose delete took the row gets
// it. An expired challenge is deleted too, and reported as ErrNotFound.
func (s *Store) ConsumeChallenge(ctx context.Context, id string, now time.Time) (storage.Challenge, error) {
	var c storage.Challenge
	err := s.pool.QueryRow(ctx, `DELETE FROM challenges WHERE id = $1 RETURNING `+challengeColumns, id).
		Scan(&c.ID, &c.Kind, &c.AnswerHash, &c.BindingHash, &c.CreatedAt, &c.ExpiresAt)
	if err != nil {
		return storage.Challenge{}, notFoundOr("consume challenge", err)
	}
	if !c.ExpiresAt.After(now) {
		return storage.Challenge{}, notFound("consume challenge: expired")
	}
	c.CreatedAt, c.ExpiresAt = utc(c.CreatedAt), utc(c.ExpiresAt)
	return c, nil
}

// ChallengeReceipt reads the receipt.
func (s *Store) ChallengeReceipt(ctx context.Context, id string, now time.Time) (bool, error) {
	var found bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM challenge_receipts WHERE id = $1 AND expires_at > $2)`,
		id, now).Scan(&found)
	if err != nil {
		return false, dbError("read challenge receipt", err)
	}
	return found, nil
}
