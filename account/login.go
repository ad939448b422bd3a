package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caf-extranet/idp/account/policy"
	"github.com/caf-extranet/idp/storage"
)

// maxPasswordBytes bounds what reaches the hasher: a 1 MB "password" must not
// cost more than a normal one.
const maxPasswordBytes = 1024

// Authenticate checks an e-mail and a password: the personal password first,
// then the provisional one. Every failure (unknown e-mail, wrong password,
// disabled account) is ErrInvalidCredentials and costs the same two hash
// computations, so neither the answer nor its timing tells them apart.
//
// A personal-password login cancels an outstanding provisional password (a
// stranger's recovery request must never lock the real agent out, nor leave a
// usable password behind). A provisional-password login marks the agent
// "pending password change".
func (s *Service) Authenticate(ctx context.Context, email, password string, meta Meta) (Login, error) {
	email = storage.NormaliseEmail(email)
	now := s.now()
	keys := keysFor("login", email, meta.ClientIP)
	locked, failures, err := s.checkThrottle(ctx, keys)
	if err != nil {
		if errors.Is(err, ErrThrottled) {
			s.audit(ctx, "login.throttled", storage.User{Email: email}, meta, "")
		}
		return Login{}, err
	}
	login, err := s.authenticate(ctx, email, password, locked, meta, now)
	switch {
	case errors.Is(err, ErrInvalidCredentials):
		s.recordFailure(ctx, keys)
	case err == nil && !login.Provisional && failures:
		s.resetAccount(ctx, keys)
	}
	return login, err
}

// authenticate is Authenticate after the throttle. A locked account accepts
// only its provisional password (the way out of the lock is the recovery).
func (s *Service) authenticate(ctx context.Context, email, password string, locked bool, meta Meta, now time.Time) (Login, error) {
	if password == "" || len(password) > maxPasswordBytes {
		s.hasher.DummyVerify(ctx, "")
		s.hasher.DummyVerify(ctx, "")
		s.audit(ctx, "login.failure", storage.User{Email: email}, meta, "malformed password")
		return Login{}, ErrInvalidCredentials
	}
	pw := policy.Normalize(password)

	u, err := s.store.GetUserByEmail(ctx, email)
	if errors.Is(err, storage.ErrNotFound) {
		s.hasher.DummyVerify(ctx, pw)
		s.hasher.DummyVerify(ctx, pw)
		s.audit(ctx, "login.failure", storage.User{Email: email}, meta, "unknown account")
		return Login{}, ErrInvalidCredentials
	}
	if err != nil {
		return Login{}, fmt.Errorf("account: looking up %q: %w", email, err)
	}

	personalOK := false
	if u.PasswordHash != "" && !locked {
		ok, needsRehash, err := s.hasher.Verify(ctx, pw, u.PasswordHash)
		if err != nil {
			return Login{}, fmt.Errorf("account: verifying password of %s: %w", u.ID, err)
		}
		personalOK = ok
		if ok && !u.Disabled {
			if err := s.afterPersonalLogin(ctx, &u, pw, needsRehash); err != nil {
				return Login{}, err
			}
			s.audit(ctx, "login.success", u, meta, "")
			return Login{User: u}, nil
		}
	} else {
		s.hasher.DummyVerify(ctx, pw)
	}

	provisionalOK := false
	prov, err := s.store.GetProvisionalPassword(ctx, u.ID, now)
	switch {
	case err == nil:
		ok, _, verr := s.hasher.Verify(ctx, pw, prov.Hash)
		if verr != nil {
			return Login{}, fmt.Errorf("account: verifying provisional password of %s: %w", u.ID, verr)
		}
		provisionalOK = ok
	case errors.Is(err, storage.ErrNotFound):
		s.hasher.DummyVerify(ctx, pw)
	default:
		return Login{}, fmt.Errorf("account: provisional password of %s: %w", u.ID, err)
	}

	if provisionalOK && !u.Disabled {
		if !u.PendingPasswordChange {
			if err := s.store.SetPendingPasswordChange(ctx, u.ID, true, now); err != nil {
				return Login{}, fmt.Errorf("account: marking %s pending: %w", u.ID, err)
			}
			u.PendingPasswordChange = true
		}
		s.audit(ctx, "login.provisional", u, meta, "")
		return Login{User: u, Provisional: true}, nil
	}
	reason := "wrong password"
	if u.Disabled && (personalOK || provisionalOK) {
		reason = "disabled account"
	}
	s.audit(ctx, "login.failure", u, meta, reason)
	return Login{}, ErrInvalidCredentials
}

// afterPersonalLogin cancels an outstanding provisional password, clears the
// pending flag it may have set, and rehashes when the parameters changed.
func (s *Service) afterPersonalLogin(ctx context.Context, u *storage.User, pw string, needsRehash bool) error {
	now := s.now()
	// Read first: most logins have nothing to cancel, and a read does not
	// queue behind SQLite's one writer as a DELETE does.
	_, err := s.store.GetProvisionalPassword(ctx, u.ID, time.Time{})
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return fmt.Errorf("account: looking up provisional password of %s: %w", u.ID, err)
	default:
		if err := s.store.DeleteProvisionalPassword(ctx, u.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
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
		Time: s.now(), Type: typ, UserID: u.ID, Email: u.Email,
		ClientIP: meta.ClientIP, UserAgent: meta.UserAgent, Detail: detail,
	}
}

// audit appends to the audit trail. A failure is logged, not returned: the
// agent's action has happened and must not be undone by the trail.
func (s *Service) audit(ctx context.Context, typ string, u storage.User, meta Meta, detail string) {
	if err := s.store.AppendAudit(ctx, s.auditEvent(typ, u, meta, detail)); err != nil {
		s.log.ErrorContext(ctx, "audit event lost", "type", typ, "user_id", u.ID, "err", err)
	}
}
