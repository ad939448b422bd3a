package main

import (
	"context"
	"errors"
	"time"

	"github.com/caf-extranet/idp/mail"
	"github.com/caf-extranet/idp/storage"
)

// observedStore is the store every component of `idp serve` gets: it
// forwards everything, and counts the domain events that pass through it
// (audit events, mails queued, tokens issued, replays detected). The
// components stay unaware of metrics, and a method added to the contract is
// forwarded by the embedding without a change here.
type observedStore struct {
	storage.Store
	m *metrics
}

func (s *observedStore) AppendAudit(ctx context.Context, e storage.AuditEvent) error {
	s.m.auditEvent(e.Type, e.Detail)
	return s.Store.AppendAudit(ctx, e)
}

// The recovery jobs' writes carry audit events: counted as AppendAudit's.
// Over its limit, the enqueue writes neither the job nor its events.
func (s *observedStore) EnqueueRecoveryJob(ctx context.Context, key string, window time.Duration, max int64, j storage.RecoveryJob, audit ...storage.AuditEvent) (int64, error) {
	n, err := s.Store.EnqueueRecoveryJob(ctx, key, window, max, j, audit...)
	if n <= max {
		s.countAudit(err, audit)
	}
	return n, err
}

func (s *observedStore) DeleteRecoveryJobs(ctx context.Context, ids []string, audit ...storage.AuditEvent) error {
	err := s.Store.DeleteRecoveryJobs(ctx, ids, audit...)
	s.countAudit(err, audit)
	return err
}

// A login's event comes with its session.
func (s *observedStore) CreateSession(ctx context.Context, x storage.Session, audit ...storage.AuditEvent) error {
	err := s.Store.CreateSession(ctx, x, audit...)
	s.countAudit(err, audit)
	return err
}

func (s *observedStore) countAudit(err error, audit []storage.AuditEvent) {
	if err != nil {
		return
	}
	for _, e := range audit {
		s.m.auditEvent(e.Type, e.Detail)
	}
}

func (s *observedStore) EnqueueMail(ctx context.Context, m storage.OutboxMail) error {
	err := s.Store.EnqueueMail(ctx, m)
	if err == nil {
		s.m.mailsQueued.WithLabelValues(mailKind(m)).Inc()
	}
	return err
}

func (s *observedStore) IssueProvisionalPassword(ctx context.Context, p storage.ProvisionalIssue) error {
	err := s.Store.IssueProvisionalPassword(ctx, p)
	if err == nil {
		s.m.mailsQueued.WithLabelValues(mailKind(p.Mail)).Inc()
	}
	return err
}

func (s *observedStore) ChangePassword(ctx context.Context, c storage.PasswordChange) error {
	err := s.Store.ChangePassword(ctx, c)
	if err == nil && c.Notification != nil {
		s.m.mailsQueued.WithLabelValues(mailKind(*c.Notification)).Inc()
	}
	return err
}

func (s *observedStore) ExchangeAuthCode(ctx context.Context, codeHash string, at storage.AccessToken, rt *storage.RefreshToken, now time.Time) error {
	err := s.Store.ExchangeAuthCode(ctx, codeHash, at, rt, now)
	switch {
	case err == nil:
		s.m.tokens.WithLabelValues("access", "authorization_code").Inc()
		if rt != nil {
			s.m.tokens.WithLabelValues("refresh", "authorization_code").Inc()
		}
	case errors.Is(err, storage.ErrAlreadyUsed):
		// A replay that raced the winning exchange: the read let it through.
		s.m.tokenReuse.WithLabelValues("authorization_code").Inc()
	}
	return err
}

func (s *observedStore) RotateRefreshToken(ctx context.Context, oldHash string, at storage.AccessToken, rt storage.RefreshToken, now time.Time) error {
	err := s.Store.RotateRefreshToken(ctx, oldHash, at, rt, now)
	switch {
	case err == nil:
		s.m.tokens.WithLabelValues("access", "refresh_token").Inc()
		s.m.tokens.WithLabelValues("refresh", "refresh_token").Inc()
	case errors.Is(err, storage.ErrAlreadyUsed):
		s.m.tokenReuse.WithLabelValues("refresh_token").Inc()
	}
	return err
}

func (s *observedStore) GetRefreshToken(ctx context.Context, tokenHash string, now time.Time) (storage.RefreshToken, error) {
	t, err := s.Store.GetRefreshToken(ctx, tokenHash, now)
	if errors.Is(err, storage.ErrAlreadyUsed) {
		s.m.tokenReuse.WithLabelValues("refresh_token").Inc()
	}
	return t, err
}

func (s *observedStore) AuthRequestByCode(ctx context.Context, codeHash string, now time.Time) (storage.AuthRequest, storage.UserAccess, error) {
	ar, access, err := s.Store.AuthRequestByCode(ctx, codeHash, now)
	if errors.Is(err, storage.ErrAlreadyUsed) {
		s.m.tokenReuse.WithLabelValues("authorization_code").Inc()
	}
	return ar, access, err
}

// mailKind names an outbox mail for the metrics by its subject, the one
// thing that tells the kinds apart.
func mailKind(m storage.OutboxMail) string {
	switch m.Subject {
	case mail.SubjectPassword:
		return "provisional_password"
	case mail.SubjectPasswordChanged:
		return "password_changed"
	}
	return "other"
}
