package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caf-extranet/idp/account/policy"
	"github.com/caf-extranet/idp/storage"
)

// maxPasswordBytes bounds what reaches the hasher: a 1 MB "password" must not
// cost more than a normal one.
const maxPasswordBytes = 1024

// LogIn checks an e-mail and a password, the personal password first, then
// the provisional one, and opens the browser's session (a password-change
// session after a provisional password): the session and the login's audit
// event are one write. It returns the session's cookie value.
//
// Every failure (unknown e-mail, wrong password, disabled account) is
// ErrInvalidCredentials and costs the same two hash computations, so
// neither the answer nor its timing tells them apart. A personal-password
// login cancels an outstanding provisional password (a stranger's recovery
// request must never lock the real agent out, nor leave a usable password
// behind). A provisional-password login marks the agent "pending password
// change".
func (s *Service) LogIn(ctx context.Context, email, password string, meta Meta) (Login, string, storage.Session, error) {
	login, event, err := s.verify(ctx, email, password, meta)
	if err != nil {
		return Login{}, "", storage.Session{}, err
	}
	kind := storage.SessionActive
	if login.Provisional {
		kind = storage.SessionPasswordChange
	}
	cookie, sess, err := s.startSession(ctx, login.User.ID, kind, s.now(), event)
	if err != nil {
		// The password was right and its consequences (throttle reset,
		// provisional password cancelled, pending flag) are written: the
		// trail says so even though no session could follow, the browser
		// gone included.
		actx, done := settling(ctx)
		defer done()
		s.appendAudit(actx, event)
		return Login{}, "", storage.Session{}, err
	}
	return login, cookie, sess, nil
}

// verify is LogIn's check of the password, behind the login throttle. The
// success's audit event is returned unwritten: it goes with the session.
func (s *Service) verify(ctx context.Context, email, password string, meta Meta) (_ Login, _ storage.AuditEvent, err error) {
	ctx, end := s.attempt(ctx)
	defer func() { err = end(err) }()
	email = storage.NormaliseEmail(email)
	now := s.now()
	keys := keysFor("login", email, meta.ClientIP)
	charged, err := s.admit(ctx, keys)
	if err != nil {
		if errors.Is(err, ErrThrottled) {
			s.audit(ctx, "login.throttled", storage.User{Email: email}, meta, "")
		}
		return Login{}, storage.AuditEvent{}, err
	}
	login, event, err := s.authenticate(ctx, email, password, charged.locked(), meta, now)
	switch {
	case errors.Is(err, ErrInvalidCredentials):
		s.failed(ctx, keys, charged)
	case err == nil && !login.Provisional:
		s.succeeded(ctx, keys, charged)
	default:
		// No verdict, or a provisional password: the attempt was no
		// failure, but the count before it, and a lock, stay until the
		// recovery completes.
		s.refund(ctx, keys, charged)
	}
	return login, event, err
}

// authenticate is verify after the throttle. A locked account accepts
// only its provisional password (the way out of the lock is the recovery).
// The agent and its provisional password are read together, before the
// hashes: a provisional password issued while the personal one is being
// checked is not cancelled by this login, as one issued just after it.
func (s *Service) authenticate(ctx context.Context, email, password string, locked bool, meta Meta, now time.Time) (Login, storage.AuditEvent, error) {
	if password == "" || len(password) > maxPasswordBytes {
		if err := s.dummyVerifies(ctx, "", 2); err != nil {
			return Login{}, storage.AuditEvent{}, err
		}
		ctx = checked(ctx)
		s.audit(ctx, "login.failure", storage.User{Email: email}, meta, "malformed password")
		return Login{}, storage.AuditEvent{}, ErrInvalidCredentials
	}
	pw := policy.Normalize(password)

	u, prov, err := s.store.GetUserWithProvisional(ctx, email)
	if errors.Is(err, storage.ErrNotFound) {
		if err := s.dummyVerifies(ctx, pw, 2); err != nil {
			return Login{}, storage.AuditEvent{}, err
		}
		ctx = checked(ctx)
		s.audit(ctx, "login.failure", storage.User{Email: email}, meta, "unknown account")
		return Login{}, storage.AuditEvent{}, ErrInvalidCredentials
	}
	if err != nil {
		return Login{}, storage.AuditEvent{}, fmt.Errorf("account: looking up %q: %w", email, err)
	}

	personalOK := false
	if u.PasswordHash != "" && !locked {
		ok, needsRehash, err := s.hasher.Verify(ctx, pw, u.PasswordHash)
		if err != nil {
			return Login{}, storage.AuditEvent{}, fmt.Errorf("account: verifying password of %s: %w", u.ID, err)
		}
		ctx = checked(ctx)
		personalOK = ok
		if ok && !u.Disabled {
			provHash := ""
			if prov != nil {
				provHash = prov.Hash
			}
			if err := s.afterPersonalLogin(ctx, &u, provHash, pw, needsRehash); err != nil {
				return Login{}, storage.AuditEvent{}, err
			}
			return Login{User: u}, s.auditEvent("login.success", u, meta, ""), nil
		}
	} else if err := s.dummyVerifies(ctx, pw, 1); err != nil {
		return Login{}, storage.AuditEvent{}, err
	} else {
		ctx = checked(ctx)
	}

	provisionalOK := false
	if prov != nil && prov.ExpiresAt.After(now) {
		ok, _, err := s.hasher.Verify(ctx, pw, prov.Hash)
		if err != nil {
			return Login{}, storage.AuditEvent{}, fmt.Errorf("account: verifying provisional password of %s: %w", u.ID, err)
		}
		provisionalOK = ok
	} else if err := s.dummyVerifies(ctx, pw, 1); err != nil {
		return Login{}, storage.AuditEvent{}, err
	}

	if provisionalOK && !u.Disabled {
		if !u.PendingPasswordChange {
			if err := s.store.SetPendingPasswordChange(ctx, u.ID, true, now); err != nil {
				return Login{}, storage.AuditEvent{}, fmt.Errorf("account: marking %s pending: %w", u.ID, err)
			}
			u.PendingPasswordChange = true
		}
		return Login{User: u, Provisional: true}, s.auditEvent("login.provisional", u, meta, ""), nil
	}
	reason := "wrong password"
	if u.Disabled && (personalOK || provisionalOK) {
		reason = "disabled account"
	}
	s.audit(ctx, "login.failure", u, meta, reason)
	return Login{}, storage.AuditEvent{}, ErrInvalidCredentials
}

// afterPersonalLogin cancels the provisional password the agent had when
// the login read it (provHash, expired or not; one issued since stays),
// clears the pending flag it may have set, and rehashes when the parameters
// changed.
func (s *Service) afterPersonalLogin(ctx context.Context, u *storage.User, provHash, pw string, needsRehash bool) error {
	now := s.now()
	if provHash != "" {
		if err := s.store.DeleteProvisionalPassword(ctx, u.ID, provHash); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("account: cancelling provisional password of %s: %w", u.ID, err)
		}
	}
	if u.PendingPasswordChange {
		if err := s.store.SetPendingPasswordChange(ctx, u.ID, false, now); err != nil {
			return fmt.Errorf("account: clearing pending flag of %s: %w", u.ID, err)
		}
		u.PendingPasswordChange = false
	}
	if needsRehash {
		newHash, err := s.hasher.Hash(ctx, pw)
		if err != nil {
			return fmt.Errorf("account: rehashing: %w", err)
		}
		// A concurrent change wins; the old parameters then stay one more login.
		if err := s.store.UpdatePasswordHash(ctx, u.ID, u.PasswordHash, newHash, now); err == nil {
			u.PasswordHash = newHash
		} else if !errors.Is(err, storage.ErrConflict) {
			return fmt.Errorf("account: storing rehash: %w", err)
		}
	}
	return nil
}

// auditEvent is an event of the audit trail, for AppendAudit or a write
// that records it with what it tells.
func (s *Service) auditEvent(typ string, u storage.User, meta Meta, detail string) storage.AuditEvent {
	return storage.AuditEvent{
		Time: s.now(), Type: typ, UserID: u.ID, Email: auditEmail(u.Email),
		ClientIP: meta.ClientIP, UserAgent: meta.UserAgent, Detail: detail,
	}
}

// auditEmail is the address as the trail records it: one longer than any
// account's is cut, marked with « … ». PostgreSQL's index on the trail's
// addresses refuses a row over a third of a page, and the event would be
// lost, with the write it goes with (a recovery request's job).
func auditEmail(email string) string {
	if len(email) <= maxEmailBytes {
		return email
	}
	return strings.ToValidUTF8(email[:maxEmailBytes], "") + "…"
}

// audit appends to the audit trail. A failure is logged, not returned: the
// agent's action has happened and must not be undone by the trail.
func (s *Service) audit(ctx context.Context, typ string, u storage.User, meta Meta, detail string) {
	s.appendAudit(ctx, s.auditEvent(typ, u, meta, detail))
}

// appendAudit writes e on its own; a failure is logged, never the caller's.
func (s *Service) appendAudit(ctx context.Context, e storage.AuditEvent) {
	if err := s.store.AppendAudit(ctx, e); err != nil {
		s.log.ErrorContext(ctx, "audit event lost", "type", e.Type, "user_id", e.UserID, "err", err)
	}
}
