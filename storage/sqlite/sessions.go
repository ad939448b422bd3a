package sqlite

import (
	"context"
	"time"

	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/internal/sqlrow"
)

const sessionColumns = `id, user_id, kind, auth_time, amr, created_at, last_seen_at, idle_expires_at, absolute_expires_at`

func scanSession(row rowScanner) (storage.Session, error) {
	var s storage.Session
	err := row.Scan(sessionDest(&s)...)
	return s, err
}

// sessionDest is where the sessionColumns of a row go.
func sessionDest(s *storage.Session) []any {
	return []any{&s.ID, &s.UserID, &s.Kind, (*msTime)(&s.AuthTime), (*jsonList)(&s.AMR),
		(*msTime)(&s.CreatedAt), (*msTime)(&s.LastSeenAt), (*msTime)(&s.IdleExpiresAt),
		(*msTime)(&s.AbsoluteExpiresAt)}
}

// CreateSession stores sess with its audit events.
func (s *Store) CreateSession(ctx context.Context, sess storage.Session, audit ...storage.AuditEvent) error {
	return s.withAudit(ctx, audit, func(q querier) error {
		return exec(ctx, q, "create session", `INSERT INTO sessions (`+sessionColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sess.ID, sess.UserID, sess.Kind, ms(sess.AuthTime), jsonList(sess.AMR), ms(sess.CreatedAt),
			ms(sess.LastSeenAt), ms(sess.IdleExpiresAt), ms(sess.AbsoluteExpiresAt))
	})
}

// GetSession finds a live session; ErrNotFound once either expiry has passed.
func (s *Store) GetSession(ctx context.Context, id string, now time.Time) (storage.Session, error) {
	sess, err := scanSession(s.r.QueryRowContext(ctx, `SELECT `+sessionColumns+`
		FROM sessions WHERE id = ? AND idle_expires_at > ? AND absolute_expires_at > ?`, id, ms(now), ms(now)))
	if err != nil {
		return storage.Session{}, dbError("get session", err)
	}
	return sess, nil
}

// GetSessionAndUser is GetSession and GetUser of its agent in one query.
func (s *Store) GetSessionAndUser(ctx context.Context, id string, now time.Time) (storage.Session, storage.User, error) {
	var sess storage.Session
	u, err := scanUser(sqlrow.Suffix(s.r.QueryRowContext(ctx, `SELECT `+sqlrow.Qualified("u.", userColumns)+`, `+
		sqlrow.Qualified("s.", sessionColumns)+` FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.id = ? AND s.idle_expires_at > ? AND s.absolute_expires_at > ?`, id, ms(now), ms(now)),
		sessionDest(&sess)...))
	if err != nil {
		return storage.Session{}, storage.User{}, dbError("get session and user", err)
	}
	return sess, u, nil
}

// TouchSession records activity and pushes the idle expiry, never beyond the
// absolute one. A session already expired is not revived: ErrNotFound, as for
// an unknown one.
func (s *Store) TouchSession(ctx context.Context, id string, now, idleExpiresAt time.Time) error {
	return s.write(ctx, func(q querier) error {
		return execOne(ctx, q, "touch session", `UPDATE sessions
			SET last_seen_at = ?1, idle_expires_at = min(?2, absolute_expires_at)
			WHERE id = ?3 AND idle_expires_at > ?1 AND absolute_expires_at > ?1`,
			ms(now), ms(idleExpiresAt), id)
	})
}

// DeleteSession removes a session; deleting a missing one is not an error
// (logging out twice is harmless).
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	return exec(ctx, s.w, "delete session", `DELETE FROM sessions WHERE id = ?`, id)
}

// DeleteUserSessions removes every session of an agent.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) error {
	return exec(ctx, s.w, "delete user sessions", `DELETE FROM sessions WHERE user_id = ?`, userID)
}
