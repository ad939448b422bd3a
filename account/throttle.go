package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caf-extranet/idp/storage"
)

// Throttling of password guesses (NIST SP 800-63B §5.2.2): after a few free
// failures each further attempt must wait a growing delay; an account that
// reaches lockAfter consecutive failures is locked until a successful
// recovery. The state is in the database, so attempts spread over several
// instances count together. Keys are the typed e-mail (known or not, so the
// answer never tells whether an account exists) and the client IP.
const (
	freeFailures  = 5
	ipFreeFailure = 30 // an office behind one NAT address shares it
	maxDelay      = 15 * time.Minute
	lockAfter     = 100
	// AddressDecay: an address's key forgets one failure per period since
	// its last one. Its failures are its agents' typos as much as an
	// attacker's guesses: an office making one an hour must never add up
	// to a delay for everyone, while a spray from one address still meets
	// growing delays past the free ones.
	AddressDecay = 10 * time.Minute
)

// ErrThrottled: too many recent failures; the attempt was not even checked.
var ErrThrottled = errors.New("account: too many failed attempts, try again later")

// throttleKeys names the counters an attempt is charged to.
type throttleKeys struct {
	account string // "" when the attempt names no account
	ip      string
}

func keysFor(kind, email, ip string) throttleKeys {
	k := throttleKeys{ip: kind + ":ip:" + ip}
	if email != "" {
		k.account = kind + ":account:" + storage.NormaliseEmail(email)
	}
	return k
}

// TooSoon reports whether an attempt at now comes within delay of the last
// failure. No delay is never too soon: a concurrent attempt charged at a
// later instant than this one's reading of the clock (or another instance
// whose clock is ahead) leaves a last failure after now, which must not
// refuse an attempt the free failures allow.
func TooSoon(lastFailure, now time.Time, delay time.Duration) bool {
	return delay > 0 && now.Sub(lastFailure) < delay
}

// ThrottleDelay is how long an attempt must wait after n consecutive
// failures once `free` of them are used: 1 s, 2 s, 4 s... capped at 15
// minutes. The login pages apply the same rule to wrong CAPTCHA answers.
func ThrottleDelay(n, free int) time.Duration {
	if n < free {
		return 0
	}
	shift := min(n-free, 20)
	return min(time.Second<<shift, maxDelay)
}

// chargeTries bounds how often admit re-reads a count that a concurrent
// attempt on the same account changed between its read and its charge. Each
// retry means another attempt was charged or a success reset the count, and
// past the free failures the delay refuses the rest: the bound only guards
// against an endless interleaving. It is generous because the agent's own
// logins may interleave so (two browsers, one slow machine): 10 proved too
// few under load in the bench's test.
const chargeTries = 64

// admit refuses an attempt that comes too soon after failures, and charges
// the attempt it lets through to the account's key as a failure before the
// password is checked: attempts sent together are judged one after the
// other, each against the count the ones before it left, rather than all
// against the count before any of them failed. The charge is a
// compare-and-set on the state read; a lost one is judged again. The caller
// settles it: a failure keeps it (and charges the address, failed); a
// success resets the account's key; no verdict refunds it. An attempt the
// account's delay refuses right after another's charge first waits for that
// one's verdict (awaitSettlement): in turn, it would have come after it.
//
// The address's key is only read here and charged on failure: charged in
// advance, the logins of a large office behind one address, in flight
// together at nine in the morning, would count against it. So guesses sent
// together from one address at many accounts get past the address's free
// failures at once; each still meets its account's.
//
// It reports a locked account: then only a provisional password may be tried
// (the lock stays until the recovery completes), and the account's delay no
// longer applies, so that a stranger who locked the account cannot also keep
// its owner from the recovery; a provisional password is not guessable.
func (s *Service) admit(ctx context.Context, k throttleKeys) (charge, error) {
	now := s.now()
	keys := []string{k.ip}
	if k.account != "" {
		keys = append(keys, k.account) // one read for both
	}
	waited := false
	for range chargeTries {
		states, err := s.store.GetThrottles(ctx, keys...)
		if err != nil {
			return charge{}, fmt.Errorf("account: reading throttle: %w", err)
		}
		ip := states[0]
		if TooSoon(ip.LastFailureAt, now, ThrottleDelay(ip.DecayedAt(now, AddressDecay), ipFreeFailure)) {
			return charge{}, ErrThrottled
		}
		if k.account == "" {
			return charge{}, nil
		}
		acct := states[1]
		if acct.LockedAt == nil && TooSoon(acct.LastFailureAt, now, ThrottleDelay(acct.Failures, freeFailures)) {
			if waited {
				return charge{}, ErrThrottled
			}
			waited = true
			settled, err := s.awaitSettlement(ctx, k.account, acct, now)
			if err != nil {
				return charge{}, err
			}
			if !settled {
				return charge{}, ErrThrottled
			}
			continue // judged again, as of its arrival, after the one before it
		}
		// Written whatever becomes of the request: a charge made but not
		// reported would never be settled.
		charged, ok, err := s.store.ChargeThrottle(context.WithoutCancel(ctx), k.account, acct, acct.Failures+1, lockAfter, now)
		if err != nil {
			return charge{}, fmt.Errorf("account: charging throttle: %w", err)
		}
		if !ok {
			continue // another attempt was charged meanwhile: judge again
		}
		if acct.LockedAt == nil && charged.LockedAt != nil {
			s.log.WarnContext(ctx, "account locked after consecutive failures: only a recovery unlocks it", "failures", charged.Failures)
		}
		return charge{account: charged, accountBefore: acct, locked: acct.LockedAt != nil}, nil
	}
	return charge{}, ErrThrottled
}

// settleWait bounds how long an attempt that its account's delay refuses
// waits for the attempt charged just before it to be settled. That one may
// still be in flight: the agent clicked « Valider » twice after some typos,
// and the first click's right password is being checked. When they come in
// turn, its success resets the count and the second is checked; it must not
// be refused for a failure that never was. A second or so covers a hash
// queued behind a full house of logins.
const settleWait = time.Second

// awaitSettlement waits, within settleWait of the charge it saw, for the
// account's key to change from seen (a success reset it, an abandoned
// attempt was refunded, another was charged): true if it changed, and the
// attempt is judged again. A key that stays as it was (the attempt before
// failed, or is not done) leaves the refusal standing. The waits double, so
// an agent is answered soon after the attempt before settles, and a guess
// sent with many others costs a few reads at most.
func (s *Service) awaitSettlement(ctx context.Context, key string, seen storage.Throttle, now time.Time) (bool, error) {
	left := min(settleWait-now.Sub(seen.LastFailureAt), settleWait)
	for step := 20 * time.Millisecond; left > 0; step *= 2 {
		d := min(step, left)
		left -= d
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return false, ctx.Err()
		case <-timer.C:
		}
		th, err := s.store.GetThrottle(ctx, key)
		if err != nil {
			return false, fmt.Errorf("account: reading throttle: %w", err)
		}
		if th.Failures != seen.Failures || !th.LastFailureAt.Equal(seen.LastFailureAt) || (th.LockedAt == nil) != (seen.LockedAt == nil) {
			return true, nil
		}
	}
	return false, nil
}

// charge is admit's charge of an attempt to its account's key: the key's
// state after it and before it (what a refund puts back), and whether the
// account was locked.
type charge struct {
	account, accountBefore storage.Throttle
	locked                 bool
}

// isLocked reads whether the account's key is locked, without charging it.
func (s *Service) isLocked(ctx context.Context, k throttleKeys) (bool, error) {
	if k.account == "" {
		return false, nil
	}
	th, err := s.store.GetThrottle(ctx, k.account)
	if err != nil {
		return false, fmt.Errorf("account: reading throttle: %w", err)
	}
	return th.LockedAt != nil, nil
}

// failed settles the charge of an attempt whose password was wrong: it
// stays on the account's key, and the address's key counts it too. Like
// the other settlements it is written even if the browser has gone.
func (s *Service) failed(ctx context.Context, k throttleKeys) {
	ctx = context.WithoutCancel(ctx)
	if _, err := s.store.AddDecayingFailure(ctx, k.ip, AddressDecay, s.now()); err != nil {
		s.log.ErrorContext(ctx, "throttle not recorded", "err", err)
	}
}

// refund takes back the charge of an attempt that reached no verdict (the
// browser left during the hash, a database error) or of a provisional
// password's success: it was no failure, and the agent's own aborted or
// provisional logins must neither add up nor restart the delay.
func (s *Service) refund(ctx context.Context, k throttleKeys, c charge) {
	if k.account == "" || c.account.Key == "" {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if err := s.store.RefundThrottle(ctx, k.account, c.account, c.accountBefore); err != nil {
		s.log.ErrorContext(ctx, "throttle not refunded", "err", err)
	}
}

// resetAccount forgets an account's failures: it settles the charge of an
// attempt whose password was right, and ends a recovery. The address's
// count is left alone: one success must not hide a spray over many
// accounts.
func (s *Service) resetAccount(ctx context.Context, k throttleKeys) {
	if k.account == "" {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if err := s.store.ResetThrottle(ctx, k.account); err != nil {
		s.log.ErrorContext(ctx, "throttle not reset", "err", err)
	}
}

// unlockAfterRecovery clears every lock of an account once the agent has
// proved control of the mailbox and set a new password.
func (s *Service) unlockAfterRecovery(ctx context.Context, email string) {
	for _, kind := range []string{"login", "change"} {
		s.resetAccount(ctx, keysFor(kind, email, ""))
	}
}
