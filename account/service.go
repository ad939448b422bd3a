// Package account holds the agent-account rules shared by the login pages and
// the admin commands: authentication against the personal and provisional
// passwords, the recovery procedure, the password change, sessions. It speaks
// neither HTTP nor SQL: the store, the hasher, the policy and the clock are
// injected.
package account

import (
	"context"
	"errors"
	"fmt"
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

// ErrBusy: the attempt did not get its password checked within its budget
// (Config.AttemptBudget), the instance's hashes being queued behind more
// attempts than it can check in that time. It reached no verdict and counts
// nothing; it is the answer for every address alike.
var ErrBusy = errors.New("account: too busy to check the password in time")

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
	// AttemptBudget bounds a password attempt (login or change form) from
	// its admission by the throttles to its verdict; 0, or more than
	// DefaultAttemptBudget: DefaultAttemptBudget.
	AttemptBudget time.Duration
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

// DefaultAttemptBudget is the budget of a password attempt. An attempt
// holds a reservation on its address (addressLimit) that lapses after
// addressLimit.Life: ended well before that, an attempt never outlives its
// reservation, however long the queue for the hashes; and its answer comes
// while the browser still waits (the server's write timeout is a minute).
const DefaultAttemptBudget = addressReservationLife / 3

// New builds the service. wakeMailer may be nil.
func New(store storage.Store, hasher *passhash.Hasher, pol policy.Policy, cfg Config, now func() time.Time, log *slog.Logger, wakeMailer func()) *Service {
	if wakeMailer == nil {
		wakeMailer = func() {}
	}
	if cfg.AttemptBudget <= 0 || cfg.AttemptBudget > DefaultAttemptBudget {
		cfg.AttemptBudget = DefaultAttemptBudget
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

// attempt bounds a password attempt by its budget. end turns the budget's
// end into ErrBusy (a deadline of ctx's own stays what it is): a caller
// returns end(err).
//
// The attempt's context also carries the one its work goes on with once its
// first hash has run (checked): no longer the browser's to cancel nor the
// budget's to end, but still bounded, by checkedLimit from the attempt's
// start.
func (s *Service) attempt(ctx context.Context) (actx context.Context, end func(error) error) {
	base, cancelAfter := context.WithTimeout(context.WithoutCancel(ctx), checkedLimit)
	after := &checkedContext{}
	after.Context = context.WithValue(base, checkedKey{}, after) // checked(after) is after
	actx, cancel := context.WithTimeout(context.WithValue(ctx, checkedKey{}, after), s.cfg.AttemptBudget)
	return actx, func(err error) error {
		cancel()
		cancelAfter()
		if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return fmt.Errorf("%w: %w", ErrBusy, err)
		}
		return err
	}
}

// checkedLimit bounds a password attempt from its start, whatever becomes of
// its browser: shorter than its address reservation's life, so that the
// reservation never lapses under it, and than the server's write timeout
// (a minute) by the few settling writes that may follow (settleTimeout
// each), so that its answer can still be written. Reached after the
// first hash (a hash queue half a minute long, a database that hangs), the
// attempt ends without a verdict, as a shed one.
const checkedLimit = addressReservationLife * 2 / 3

// checkedKey is the key of the context an attempt goes on with once
// checked (attempt), a *checkedContext.
type checkedKey struct{}

// checkedContext is the context an attempt goes on with once checked.
type checkedContext struct{ context.Context }

// checked is the context of an attempt whose first hash has run: the guess
// has been checked against the agent's hash (or the dummy's work done, which
// must look the same), so the attempt now reaches its verdict and is
// counted, whether the browser leaves or the budget ends. Otherwise a guess
// could be checked for free: leave once one hash's time has passed without
// a success (a right password would have logged in by then), and the
// attempt would be refunded as one without a verdict. Only an attempt still
// waiting for its first hash is shed.
func checked(ctx context.Context) context.Context {
	if after, ok := ctx.Value(checkedKey{}).(*checkedContext); ok {
		return after
	}
	return context.WithoutCancel(ctx) // not within an attempt: nothing bounds it but its caller
}

// dummyVerifies costs n hashes, as many as the path it stands for, and
// fails as a real Verify would if ctx ends while the first waits for a
// slot; the others run on checked(ctx), as a real path's second would.
func (s *Service) dummyVerifies(ctx context.Context, password string, n int) error {
	for range n {
		if err := s.hasher.DummyVerify(ctx, password); err != nil {
			return fmt.Errorf("account: hashing: %w", err)
		}
		ctx = checked(ctx)
	}
	return nil
}
