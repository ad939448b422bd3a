// Package account holds the agent-account rules shared by the login pages and
// the admin commands: authentication against the personal and provisional
// passwords, the recovery procedure, the password change, sessions. It speaks
// neither HTTP nor SQL: the store, the hasher, the policy and the clock are
// injected.
package account

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/caf-extranet/idp/account/policy"
	"github.com/caf-extranet/idp/mail"
	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/passhash"
)

// ErrInvalidCredentials covers unknown e-mail, wrong password and disabled
// account alike: the caller must not be able to tell them apart.
var ErrInvalidCredentials = errors.New("account: invalid credentials")

// ErrNotPending: the forced change was asked for an agent who has no
// provisional password to replace (already changed, or expired).
var ErrNotPending = errors.New("account: no password change pending")

// ChangeError lists everything wrong with a password-change form at once.
type ChangeError struct {
	CurrentWrong bool
	Violations   []policy.Violation
}

func (e *ChangeError) Error() string { return "account: password change refused" }

// Meta describes the request behind an action, for the audit trail and the
// throttles.
type Meta struct {
	ClientIP      string
	UserAgent     string
	AuthRequestID string
}

// Login is a successful authentication.
type Login struct {
	User storage.User
	// Provisional: the agent used a provisional password and must now choose
	// a personal one before anything else.
	Provisional bool
}

// Config holds the account rules' settings.
type Config struct {
	ProvisionalLength         int
	ProvisionalTTL            time.Duration
	MaxMailsPerAccountPerHour int
	MaxRequestsPerIPPerHour   int
	SessionIdle               time.Duration
	SessionAbsolute           time.Duration
	Portal                    mail.Portal
	// RecoveryGather is how long a woken recovery worker waits before
	// claiming (0: 20 ms), so that a burst of requests is claimed together.
	RecoveryGather time.Duration
}

// Service implements the account rules.
type Service struct {
	store  storage.Store
	hasher *passhash.Hasher
	policy policy.Policy
	cfg    Config
	now    func() time.Time
	log    *slog.Logger
	// wakeMailer nudges the outbox sender after a mail was queued.
	wakeMailer func()
	// recoveryWake nudges this instance's recovery worker.
	recoveryWake chan struct{}
}

// New builds the service. wakeMailer may be nil.
func New(store storage.Store, hasher *passhash.Hasher, pol policy.Policy, cfg Config, now func() time.Time, log *slog.Logger, wakeMailer func()) *Service {
	if wakeMailer == nil {
		wakeMailer = func() {}
	}
	return &Service{
		store: store, hasher: hasher, policy: pol, cfg: cfg, now: now, log: log,
		wakeMailer: wakeMailer, recoveryWake: make(chan struct{}, 1),
	}
}

// Policy is the active password policy.
func (s *Service) Policy() policy.Policy { return s.policy }

// User returns an agent by id.
func (s *Service) User(ctx context.Context, id string) (storage.User, error) {
	return s.store.GetUser(ctx, id)
}
