package account

import (
	"context"
	"fmt"
	"time"

	"github.com/caf-extranet/idp/storage"
)

// passwordChangeSessionLifetime bounds the restricted session that only
// unlocks the change form.
const passwordChangeSessionLifetime = 30 * time.Minute

// touchEvery: a session's last activity is written at most this often, so a
// busy SSO session does not cost a write per request.
const touchEvery = time.Minute

// StartSession opens a session for the agent and returns the cookie value.
// Only its hash is stored.
func (s *Service) StartSession(ctx context.Context, userID, kind string, authTime time.Time) (string, storage.Session, error) {
	return s.startSession(ctx, userID, kind, authTime)
}

// startSession is StartSession writing the audit events with the session.
func (s *Service) startSession(ctx context.Context, userID, kind string, authTime time.Time, audit ...storage.AuditEvent) (string, storage.Session, error) {
	now := s.now()
	raw := storage.NewSecret()
	absolute := now.Add(s.cfg.SessionAbsolute)
	if kind == storage.SessionPasswordChange {
		absolute = now.Add(passwordChangeSessionLifetime)
	}
	idle := now.Add(s.cfg.SessionIdle)
	if idle.After(absolute) {
		idle = absolute
	}
	sess := storage.Session{
		ID: storage.HashSecret(raw), UserID: userID, Kind: kind,
		AuthTime: authTime, AMR: []string{"pwd"},
		CreatedAt: now, LastSeenAt: now, IdleExpiresAt: idle, AbsoluteExpiresAt: absolute,
	}
	if err := s.store.CreateSession(ctx, sess, audit...); err != nil {
		return "", storage.Session{}, fmt.Errorf("account: creating session: %w", err)
	}
	return raw, sess, nil
}

// Session returns the live session behind a cookie value (storage.ErrNotFound
// when unknown or expired) and records the activity.
func (s *Service) Session(ctx context.Context, cookieValue string) (storage.Session, error) {
	if cookieValue == "" || len(cookieValue) > 128 {
		return storage.Session{}, storage.ErrNotFound
	}
	now := s.now()
	sess, err := s.store.GetSession(ctx, storage.HashSecret(cookieValue), now)
	if err != nil {
		return storage.Session{}, err
	}
	return sess, s.touch(ctx, sess, now)
}

// SessionAndUser is Session and the session's agent, in one read:
// storage.ErrNotFound as well when the agent is gone.
func (s *Service) SessionAndUser(ctx context.Context, cookieValue string) (storage.Session, storage.User, error) {
	if cookieValue == "" || len(cookieValue) > 128 {
		return storage.Session{}, storage.User{}, storage.ErrNotFound
	}
	now := s.now()
	sess, u, err := s.store.GetSessionAndUser(ctx, storage.HashSecret(cookieValue), now)
	if err != nil {
		return storage.Session{}, storage.User{}, err
	}
	return sess, u, s.touch(ctx, sess, now)
}

// touch pushes the idle expiry of a session in use, at most once per
// touchEvery (a write each time a page is shown would be wasted).
func (s *Service) touch(ctx context.Context, sess storage.Session, now time.Time) error {
	if now.Sub(sess.LastSeenAt) < touchEvery {
		return nil
	}
	if err := s.store.TouchSession(ctx, sess.ID, now, now.Add(s.cfg.SessionIdle)); err != nil {
		return fmt.Errorf("account: touching session: %w", err)
	}
	return nil
}

// EndSession deletes the session behind a cookie value.
func (s *Service) EndSession(ctx context.Context, cookieValue string) error {
	if cookieValue == "" {
		return nil
	}
	return s.store.DeleteSession(ctx, storage.HashSecret(cookieValue))
}
