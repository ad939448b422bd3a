package account

import (
	"context"
	"errors"
	"fmt"

	"github.com/caf-extranet/idp/account/policy"
	"github.com/caf-extranet/idp/mail"
	"github.com/caf-extranet/idp/storage"
)

// CompleteForcedChange sets the personal password of an agent who logged in
// with a provisional one. current must be that provisional password. Every
// problem is reported at once in a *ChangeError; ErrNotPending when there is
// nothing left to change (already changed elsewhere, or the provisional
// password expired). On success the provisional password is consumed, the
// pending flag cleared, every session and token of the agent revoked and the
// notification queued, in one transaction: of two concurrent submissions,
// even on two instances, exactly one makes the change. The other also gets
// nil if it asked for the same password (see madeMeanwhile).
func (s *Service) CompleteForcedChange(ctx context.Context, userID, current, newPassword, confirmation string, meta Meta) (err error) {
	ctx, end := s.attempt(ctx)
	defer func() { err = end(err) }()
	now := s.now()
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return fmt.Errorf("account: forced change of %s: %w", userID, err)
	}
	if !u.PendingPasswordChange || u.Disabled {
		return ErrNotPending
	}
	prov, err := s.store.GetProvisionalPassword(ctx, u.ID, now)
	if errors.Is(err, storage.ErrNotFound) {
		return ErrNotPending
	}
	if err != nil {
		return fmt.Errorf("account: provisional password of %s: %w", u.ID, err)
	}
	keys := keysFor("change", u.Email, meta.ClientIP)
	charged, err := s.admit(ctx, keys)
	if err != nil {
		return err
	}
	settled := false // a verdict on the current password settles the charge
	defer func() {
		if !settled {
			s.refund(ctx, keys, charged)
		}
	}()
	ce := &ChangeError{Violations: s.policy.Check(newPassword, confirmation, current, u.Email)}
	ok, err := s.verifyBounded(ctx, current, prov.Hash)
	if err != nil {
		return err
	}
	ctx = checked(ctx)
	ce.CurrentWrong, settled = !ok, true
	if ce.CurrentWrong {
		s.failed(ctx, keys, charged)
	} else {
		s.succeeded(ctx, keys, charged) // proved: a weak new password is no guess
	}
	if ce.CurrentWrong || len(ce.Violations) > 0 {
		s.audit(ctx, "password.change_refused", u, meta, "forced")
		return ce
	}
	err = s.savePassword(ctx, u, newPassword, storage.PasswordChange{ExpectProvisionalHash: prov.Hash})
	if errors.Is(err, storage.ErrConflict) {
		made, err := s.madeMeanwhile(ctx, u.ID, newPassword, "forced")
		if err != nil || made {
			return err
		}
		return ErrNotPending
	}
	if err != nil {
		return err
	}
	s.unlockAfterRecovery(ctx, u.Email)
	s.audit(ctx, "password.changed", u, meta, "forced")
	return nil
}

// ChangePassword is the voluntary change « Mettre à jour votre mot de passe »:
// e-mail, current password (personal, or an outstanding provisional one),
// new password and confirmation. An unknown e-mail, a disabled account and a
// wrong current password all report CurrentWrong, after the same work. Of
// two concurrent submissions with the same current password, one makes the
// change; the other gets nil if it asked for the same password (see
// madeMeanwhile).
func (s *Service) ChangePassword(ctx context.Context, email, current, newPassword, confirmation string, meta Meta) (err error) {
	ctx, end := s.attempt(ctx)
	defer func() { err = end(err) }()
	now := s.now()
	email = storage.NormaliseEmail(email)
	u, err := s.store.GetUserByEmail(ctx, email)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("account: looking up %q: %w", email, err)
	}
	known := err == nil
	keys := keysFor("change", email, meta.ClientIP)
	// A lock, this form's or the login's, holds here as at login: only the
	// provisional password may prove the current one until the recovery
	// completes (a locked counter no longer delays, so the personal password
	// must not be tried at all).
	charged, err := s.admit(ctx, keys)
	if err != nil {
		return err
	}
	changeLocked := charged.locked()
	settled := false // a verdict on the current password settles the charge
	defer func() {
		if !settled {
			s.refund(ctx, keys, charged)
		}
	}()
	loginLocked, err := s.isLocked(ctx, keysFor("login", email, meta.ClientIP))
	if err != nil {
		return err
	}
	locked := changeLocked || loginLocked
	ce := &ChangeError{Violations: s.policy.Check(newPassword, confirmation, current, email)}

	var precondition storage.PasswordChange
	matched := false
	// Two hashes whatever the address (the personal password or a dummy,
	// then the provisional one or a dummy), unless the first matched: the
	// time taken must not tell an address with a provisional password
	// outstanding from an unknown one.
	if known && u.PasswordHash != "" && !locked {
		ok, err := s.verifyBounded(ctx, current, u.PasswordHash)
		if err != nil {
			return err
		}
		if ok {
			matched, precondition = true, storage.PasswordChange{ExpectPasswordHash: u.PasswordHash}
		}
	} else if err := s.dummyVerifies(ctx, current, 1); err != nil {
		return err
	}
	ctx = checked(ctx)
	if !matched {
		provHash := ""
		if known {
			prov, err := s.store.GetProvisionalPassword(ctx, u.ID, now)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("account: provisional password of %s: %w", u.ID, err)
			}
			provHash = prov.Hash
		}
		if provHash == "" {
			if err := s.dummyVerifies(ctx, current, 1); err != nil {
				return err
			}
		} else {
			ok, err := s.verifyBounded(ctx, current, provHash)
			if err != nil {
				return err
			}
			if ok {
				matched, precondition = true, storage.PasswordChange{ExpectProvisionalHash: provHash}
			}
		}
	}
	ce.CurrentWrong, settled = !matched || u.Disabled, true
	if ce.CurrentWrong {
		s.failed(ctx, keys, charged)
	} else {
		s.succeeded(ctx, keys, charged) // proved: a weak new password is no guess
	}
	if ce.CurrentWrong || len(ce.Violations) > 0 {
		s.audit(ctx, "password.change_refused", storage.User{ID: u.ID, Email: email}, meta, "voluntary")
		return ce
	}
	err = s.savePassword(ctx, u, newPassword, precondition)
	if errors.Is(err, storage.ErrConflict) {
		made, err := s.madeMeanwhile(ctx, u.ID, newPassword, "voluntary")
		if err != nil || made {
			return err
		}
		// Changed concurrently to another password: the current password
		// typed is no longer current.
		return &ChangeError{CurrentWrong: true}
	}
	if err != nil {
		return err
	}
	s.unlockAfterRecovery(ctx, u.Email)
	s.audit(ctx, "password.changed", u, meta, "voluntary")
	return nil
}

// madeMeanwhile tells whether the change a form asked for, whose
// precondition a concurrent change took, was made all the same: the agent,
// still enabled and no longer pending, now has newPassword. That is the
// second click of a double click on « Valider », the first having won: it
// must go on as the first did, not report a current password that was
// right a moment ago as wrong, nor a provisional password as expired. Only
// a submission whose current password was verified gets here, so the
// answer tells nothing to one that could not prove it (its extra hash is
// spent only then as well).
func (s *Service) madeMeanwhile(ctx context.Context, userID, newPassword, form string) (bool, error) {
	u, err := s.store.GetUser(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("account: re-reading %s after a concurrent change: %w", userID, err)
	}
	if u.Disabled || u.PendingPasswordChange || u.PasswordHash == "" {
		return false, nil
	}
	same, err := s.verifyBounded(ctx, newPassword, u.PasswordHash)
	if err != nil || !same {
		return false, err
	}
	s.log.InfoContext(ctx, "password change submitted twice: the other submission made it", "user_id", u.ID, "form", form)
	return true, nil
}

// savePassword hashes the new password and runs the one change transaction.
func (s *Service) savePassword(ctx context.Context, u storage.User, newPassword string, c storage.PasswordChange) error {
	now := s.now()
	hash, err := s.hasher.Hash(ctx, policy.Normalize(newPassword))
	if err != nil {
		return fmt.Errorf("account: hashing new password: %w", err)
	}
	note := mail.PasswordChanged(s.cfg.Portal, u.Email, u.Name, now, now)
	c.UserID, c.NewHash, c.Notification, c.Now = u.ID, hash, &note, now
	if err := s.store.ChangePassword(ctx, c); err != nil {
		return fmt.Errorf("account: saving password of %s: %w", u.ID, err)
	}
	s.wakeMailer()
	return nil
}

// verifyBounded verifies a typed password, refusing over-long input before it
// reaches the hasher.
func (s *Service) verifyBounded(ctx context.Context, typed, hash string) (bool, error) {
	if typed == "" || len(typed) > maxPasswordBytes {
		return false, s.dummyVerifies(ctx, "", 1)
	}
	ok, _, err := s.hasher.Verify(ctx, policy.Normalize(typed), hash)
	if err != nil {
		return false, fmt.Errorf("account: verifying password: %w", err)
	}
	return ok, nil
}
