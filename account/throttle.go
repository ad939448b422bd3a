package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"time"

	"github.com/caf-extranet/idp/storage"
)

// Throttling of password guesses (NIST SP 800-63B §5.2.2): after a few free
// failures each further attempt must wait a growing delay; an account that
// reaches lockAfter consecutive failures is locked until a successful
// recovery. The state is in the database, so attempts spread over several
// instances count together. Keys are the typed e-mail (known or not, so the
// answer never tells whether an account exists) and the client's address
// (ClientKey).
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

// ErrThrottled: too many recent failures (or, for RequestRecovery, requests
// from the client's address); the attempt was not even checked.
var ErrThrottled = errors.New("account: too many attempts, try again later")

// throttleKeys names the counters an attempt is charged to.
type throttleKeys struct {
	account string // "" when the attempt names no account
	ip      string
}

// keysFor names an attempt's counters. The account's is the form's own
// (kind: login, change); the address's is shared by both forms, each a
// password oracle: a spray through both together meets one count.
func keysFor(kind, email, ip string) throttleKeys {
	k := throttleKeys{ip: "password:ip:" + ClientKey(ip)}
	if email != "" {
		k.account = kind + ":account:" + keyPart(storage.NormaliseEmail(email))
	}
	return k
}

// keyPart is what a key takes of its caller's input: s, or past
// maxEmailBytes its SHA-256. PostgreSQL's index on the keys refuses a row
// over a third of a page (about 2.7 kB): a 5 kB address typed into a form,
// or passed by any other caller, must not make the attempt a database
// error. Every account's key is still its address, and one long input
// still has one key, so that its attempts count together; a short input
// that happens to read as such a hash only shares the count of an address
// nobody has.
func keyPart(s string) string {
	if len(s) <= maxEmailBytes {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ClientKey is the name of a client address in every per-address counter
// (the password attempts' here, the recovery requests', the login pages'
// CAPTCHA counters): an IPv4 address is itself, an IPv6 one its /64. An
// IPv6 client holds at least a /64 (usually a /56 or /48) and picks the low
// 64 bits freely: keyed by the full address, each counter would be reset by
// changing them. An IPv4-mapped address is its IPv4 address, so that one
// client has one key however its address was written. Anything that is no
// address (an admin command's "cli") names itself (keyPart). Only the keys
// use it: the audit trail and the logs keep the full address.
func ClientKey(clientIP string) string {
	a, err := netip.ParseAddr(clientIP)
	if err != nil {
		return keyPart(clientIP)
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}

// TooSoon reports whether an attempt at now comes within delay of the last
// failure. No delay is never too soon: a concurrent attempt charged at a
// later instant than this one's reading of the clock (or another instance
// whose clock is ahead) leaves a last failure after now, which must not
// refuse an attempt the free failures allow.
func TooSoon(lastFailure, now time.Time, delay time.Duration) bool {
	return delay > 0 && now.Sub(lastFailure) < delay
}

// addressTooSoon reports whether an attempt at now comes within the delay
// that its address's failures (forgotten one per AddressDecay) bring.
func addressTooSoon(th storage.Throttle, now time.Time) bool {
	return TooSoon(th.LastFailureAt, now, ThrottleDelay(th.DecayedAt(now, AddressDecay), ipFreeFailure))
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

// addressLimit is how many attempts may be in flight from one address:
// as many as its free failures leave, so that guesses sent together meet
// the delays as if they came in turn, and past them a few at a time (as
// many as the delay lets through in turn would be one: four keeps an
// office whose typos used its free failures from queueing its logins one
// by one). A reservation lapses after a minute: longer than an attempt's
// budget (DefaultAttemptBudget), so that only those of an instance that
// died mid-attempt do.
var addressLimit = storage.AttemptLimit{Free: ipFreeFailure, PastFree: 4, Every: AddressDecay, Life: addressReservationLife}

// addressReservationLife is addressLimit.Life (DefaultAttemptBudget is a
// third of it).
const addressReservationLife = time.Minute

// admit refuses an attempt that comes too soon after failures and counts
// the attempt it lets through, before its password is checked, so that
// attempts sent together are judged one after the other, each against what
// the ones before it left, rather than all against the state before any of
// them failed:
//
//   - on its address's key, as an attempt in flight (a reservation of its
//     own): the failures plus the attempts in flight stay within the
//     address's free failures (past them, addressLimit.PastFree at a time).
//     Guesses sent together from one address at many accounts thus meet
//     its delays as if they came in turn, while the logins of a large
//     office behind that address, in flight together at nine in the
//     morning, are no failures: they only wait for room, which their
//     successes give back at once;
//   - on its account's key, as a failure: a compare-and-set on the state
//     read; a lost one is judged again.
//
// An attempt refused for want of room waits for it, within its budget
// (Config.AttemptBudget): the attempts before it are settled in turn, and
// guesses among them soon bring the address's delay, which then refuses it.
// One refused by its account's delay within a second of another's charge
// waits (settleWait) for that one's verdict. Either is judged again, as of
// its arrival, once there may be room, or if its account's key changed: in
// turn, it would have come after them.
//
// The caller settles the charge: a failure keeps the account's and counts
// one on the address (failed); a success resets the account's key
// (succeeded); no verdict refunds both (refund).
//
// It reports a locked account: then only a provisional password may be tried
// (the lock stays until the recovery completes), and the account's delay no
// longer applies, so that a stranger who locked the account cannot also keep
// its owner from the recovery; a provisional password is not guessable.
func (s *Service) admit(ctx context.Context, k throttleKeys) (c charge, err error) {
	now := s.now()
	keys := []string{k.ip}
	if k.account != "" {
		keys = append(keys, k.account) // one read for both
	}
	reservation := ""
	defer func() {
		if err != nil && reservation != "" {
			s.settleAddress(ctx, k, reservation, false)
		}
	}()
	// Waiting for room is waiting in line (the office's logins queued behind
	// a full house), for as long as the attempt's budget; waiting for an
	// account's verdict is not, and gets a second.
	room, settle := waiter{budget: s.cfg.AttemptBudget}, waiter{budget: settleWait}
	for tries := 0; tries < chargeTries; {
		states, err := s.store.GetThrottles(ctx, keys...)
		if err != nil {
			return charge{}, fmt.Errorf("account: reading throttle: %w", err)
		}
		ip := states[0]
		if addressTooSoon(ip, now) {
			return charge{}, ErrThrottled
		}
		if reservation == "" {
			id := rand.Text()
			// Written whatever becomes of the request: a reservation made
			// but not reported would never be settled.
			write, done := settling(ctx)
			th, _, ok, err := s.store.ReserveAttempt(write, k.ip, id, addressLimit, now)
			done()
			if err != nil {
				// The reservation may have been written and its answer lost:
				// ended, it keeps no room from the address (ending one never
				// written does nothing).
				s.settleAddress(ctx, k, id, false)
				return charge{}, fmt.Errorf("account: reserving attempt: %w", err)
			}
			if !ok {
				// The address's room is taken by attempts in flight: try
				// again once one may have been settled.
				if err := room.pause(ctx); err != nil {
					return charge{}, err
				}
				continue
			}
			reservation = id
			// Failures settled since the read may have brought the delay.
			if addressTooSoon(th, now) {
				return charge{}, ErrThrottled
			}
		}
		if k.account == "" {
			return charge{reservation: reservation}, nil
		}
		acct := states[1]
		if acct.LockedAt == nil && TooSoon(acct.LastFailureAt, now, ThrottleDelay(acct.Failures, freeFailures)) {
			if err := s.awaitChange(ctx, &settle, k.account, acct, now.Add(settleWait).Sub(acct.LastFailureAt)); err != nil {
				return charge{}, err
			}
			tries++
			continue // judged again, as of its arrival, after the one before it
		}
		write, done := settling(ctx) // as the reservation
		charged, ok, err := s.store.ChargeThrottle(write, k.account, acct, acct.Failures+1, lockAfter, now)
		done()
		if err != nil {
			// A charge written whose answer was lost stays: nothing tells it
			// from another attempt's made from the same count at the same
			// instant, and counting one failure too many is the safe side.
			return charge{}, fmt.Errorf("account: charging throttle: %w", err)
		}
		if !ok {
			tries++
			continue // another attempt was charged meanwhile: judge again
		}
		if acct.LockedAt == nil && charged.LockedAt != nil {
			s.log.WarnContext(ctx, "account locked after consecutive failures: only a recovery unlocks it", "failures", charged.Failures)
		}
		return charge{account: charged, accountBefore: acct, reservation: reservation}, nil
	}
	return charge{}, ErrThrottled
}

// settling is the context of a throttle write that must be made whatever
// becomes of the request (a reservation, a charge, their settlement): not
// the browser's to cancel nor the attempt's budget's to end, or a charge
// made would never be settled, but bounded by settleTimeout of its own, so
// that a database that hangs does not hold the attempt for ever.
func settling(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
}

// settleTimeout bounds one throttle write made on settling's context: the
// few an attempt makes after checkedLimit (its settlement, a reset or a
// refund, its audit event) still end within the server's write timeout.
const settleTimeout = 5 * time.Second

// settleWait bounds how long an attempt that its account's delay refuses
// waits for the attempt before it to be settled. That one may still be in
// flight: the agent clicked « Valider » twice after some typos, and the
// first click's right password is being checked. When they come in turn,
// its success resets the count and the second is checked; it must not be
// refused for a failure that never was. A second or so covers a hash queued
// behind a full house of logins.
const settleWait = time.Second

// waiter paces an attempt's waits for the attempts before it: pauses
// doubling from 20 ms to 100 ms, and to 250 ms after a second of waiting,
// each drawn between half and all of its step, so that an agent is answered
// soon after the one before settles, agents waiting together for room do
// not all come back at once, and a guess sent with many others, or an
// office's login queued for long, costs a few reads a second.
type waiter struct {
	budget, step, waited time.Duration
}

// pause waits for the next step, or returns ErrThrottled once the budget is
// spent (ctx's error if it ends first).
func (w *waiter) pause(ctx context.Context) error {
	if w.budget <= 0 {
		return ErrThrottled
	}
	longest := 100 * time.Millisecond
	if w.waited >= time.Second {
		longest = 250 * time.Millisecond
	}
	w.step = min(max(2*w.step, 20*time.Millisecond), longest)
	d := min(w.step/2+mrand.N(w.step/2+1), w.budget)
	w.budget -= d
	w.waited += d
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// awaitChange waits, for at most within (and what w has left), for key to
// change from seen (a success reset it, an attempt was refunded or
// charged): nil if it changed, and the attempt is judged again. A key that
// stays as it was (the attempt before failed, or is not done) gets
// ErrThrottled.
func (s *Service) awaitChange(ctx context.Context, w *waiter, key string, seen storage.Throttle, within time.Duration) error {
	w.budget = min(w.budget, within)
	for {
		if err := w.pause(ctx); err != nil {
			return err
		}
		th, err := s.store.GetThrottle(ctx, key)
		if err != nil {
			return fmt.Errorf("account: reading throttle: %w", err)
		}
		if th.Failures != seen.Failures || !th.LastFailureAt.Equal(seen.LastFailureAt) ||
			(th.LockedAt == nil) != (seen.LockedAt == nil) {
			return nil
		}
	}
}

// charge is admit's charge of an attempt to its account's key: the key's
// state after it and before it (what a refund puts back), and the attempt's
// reservation on its address.
type charge struct {
	account, accountBefore storage.Throttle
	reservation            string
}

// locked reports whether the account was locked when the attempt came.
func (c charge) locked() bool { return c.accountBefore.LockedAt != nil }

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
func (s *Service) failed(ctx context.Context, k throttleKeys, c charge) {
	s.settleAddress(ctx, k, c.reservation, true)
}

// succeeded settles the charge of an attempt whose password was right: the
// account's failures are forgotten, the address's are left alone (one
// success must not hide a spray over many accounts).
func (s *Service) succeeded(ctx context.Context, k throttleKeys, c charge) {
	s.settleAddress(ctx, k, c.reservation, false)
	s.resetAccount(ctx, k)
}

// settleAddress ends the attempt's reservation on its address, counting a
// failure if it failed.
func (s *Service) settleAddress(ctx context.Context, k throttleKeys, reservation string, failed bool) {
	ctx, done := settling(ctx)
	defer done()
	if err := s.store.SettleAttempt(ctx, k.ip, reservation, failed, AddressDecay, s.now()); err != nil {
		s.log.ErrorContext(ctx, "throttle not recorded", "err", err)
	}
}

// refund takes back the charge of an attempt that reached no verdict (the
// browser left during the hash, a database error) or of a provisional
// password's success: it was no failure, and the agent's own aborted or
// provisional logins must neither add up nor restart the delay.
func (s *Service) refund(ctx context.Context, k throttleKeys, c charge) {
	if c.reservation != "" {
		s.settleAddress(ctx, k, c.reservation, false)
	}
	if k.account == "" || c.account.Key == "" {
		return
	}
	ctx, done := settling(ctx)
	defer done()
	if err := s.store.RefundThrottle(ctx, k.account, c.account, c.accountBefore); err != nil {
		s.log.ErrorContext(ctx, "throttle not refunded", "err", err)
	}
}

// resetAccount forgets an account's failures: it settles the charge of an
// attempt whose password was right, and ends a recovery. The address's
// count is left alone.
func (s *Service) resetAccount(ctx context.Context, k throttleKeys) {
	if k.account == "" {
		return
	}
	ctx, done := settling(ctx)
	defer done()
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
