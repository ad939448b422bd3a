package account_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caf-extranet/idp/account"
	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/passhash"
)

func TestLoginThrottleGrowsAndForgets(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		f.agent("claire@mairie.fr", "secret12")
		for i := range 5 {
			if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", "mauvais", meta); !errors.Is(err, account.ErrInvalidCredentials) {
				t.Fatalf("failure %d: %v", i+1, err)
			}
		}
		// The sixth attempt, at once, is not even checked: even the right password waits.
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", "secret12", meta); !errors.Is(err, account.ErrThrottled) {
			t.Fatalf("attempt right after 5 failures: %v", err)
		}
		// The same for an address nobody has: the answer tells nothing.
		for range 5 {
			_, _ = logIn(f.svc, f.ctx, "inconnu@mairie.fr", "mauvais", meta)
		}
		if _, err := logIn(f.svc, f.ctx, "inconnu@mairie.fr", "x", meta); !errors.Is(err, account.ErrThrottled) {
			t.Fatalf("unknown address after 5 failures: %v", err)
		}
		f.advance(2 * time.Second)
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", "secret12", meta); err != nil {
			t.Fatalf("after the delay: %v", err)
		}
		// A success forgets the account's failures.
		for range 5 {
			_, _ = logIn(f.svc, f.ctx, "claire@mairie.fr", "mauvais", meta)
		}
		f.advance(2 * time.Second)
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", "secret12", meta); err != nil {
			t.Fatalf("after a success and 5 new failures: %v", err)
		}
	})
}

func TestLoginThrottlePerIP(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		f.agent("claire@mairie.fr", "secret12")
		spray := account.Meta{ClientIP: "203.0.113.66"}
		for i := range 30 { // one failure on each of 30 addresses: no account is throttled
			_, _ = logIn(f.svc, f.ctx, string(rune('a'+i%26))+"x@mairie.fr", "mauvais", spray)
		}
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", "secret12", spray); !errors.Is(err, account.ErrThrottled) {
			t.Fatalf("from a spraying IP: %v", err)
		}
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", "secret12", meta); err != nil {
			t.Fatalf("from another IP: %v", err)
		}
	})
}

// TestLockAfterHundredFailures: NIST SP 800-63B — after 100 consecutive
// failures only a successful recovery unlocks the account; the owner can
// always recover, whatever a stranger did.
func TestLockAfterHundredFailures(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		u := f.agent("claire@mairie.fr", "secret12")
		for i := range 100 {
			f.advance(16 * time.Minute) // past any delay; each attempt is checked
			ip := account.Meta{ClientIP: "198.51.100." + string(rune('0'+i%10))}
			if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", "mauvais", ip); !errors.Is(err, account.ErrInvalidCredentials) {
				t.Fatalf("failure %d: %v", i+1, err)
			}
		}
		f.advance(16 * time.Minute)
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", "secret12", meta); !errors.Is(err, account.ErrInvalidCredentials) {
			t.Fatalf("locked account accepted its personal password: %v", err)
		}
		p := f.recover("claire@mairie.fr")
		l, err := logIn(f.svc, f.ctx, "claire@mairie.fr", p, meta)
		if err != nil || !l.Provisional {
			t.Fatalf("provisional login on a locked account: %v", err)
		}
		if err := f.svc.CompleteForcedChange(f.ctx, u.ID, p, "nouveau2026", "nouveau2026", meta); err != nil {
			t.Fatal(err)
		}
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", "nouveau2026", meta); err != nil {
			t.Fatalf("after the recovery: %v", err)
		}
	})
}

func TestChangeFormThrottle(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		f.agent("claire@mairie.fr", "secret12")
		for range 5 {
			err := f.svc.ChangePassword(f.ctx, "claire@mairie.fr", "mauvais", "nouveau2026", "nouveau2026", meta)
			var ce *account.ChangeError
			if !errors.As(err, &ce) || !ce.CurrentWrong {
				t.Fatalf("wrong current password: %v", err)
			}
		}
		if err := f.svc.ChangePassword(f.ctx, "claire@mairie.fr", "secret12", "nouveau2026", "nouveau2026", meta); !errors.Is(err, account.ErrThrottled) {
			t.Fatalf("sixth change attempt at once: %v", err)
		}
		f.advance(2 * time.Second)
		if err := f.svc.ChangePassword(f.ctx, "claire@mairie.fr", "secret12", "nouveau2026", "nouveau2026", meta); err != nil {
			t.Fatalf("after the delay: %v", err)
		}
	})
}

// TestChangeFormLockRefusesThePersonalPassword: once the change form's
// counter is locked, the voluntary change no longer checks the personal
// password at all (the lock no longer delays, so checking it would leave
// guesses unlimited), as the login does; the recovery unlocks it.
func TestChangeFormLockRefusesThePersonalPassword(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		f.agent("claire@mairie.fr", "secret12")
		n := 0
		change := func(current string) error {
			n++ // a new address each time: the per-address counter stays out of it
			m := account.Meta{ClientIP: fmt.Sprintf("10.1.%d.%d", n/250, n%250)}
			return f.svc.ChangePassword(f.ctx, "claire@mairie.fr", current, "nouveau2026", "nouveau2026", m)
		}
		for range 100 {
			f.advance(16 * time.Minute)
			if err := change("mauvais"); err == nil || errors.Is(err, account.ErrThrottled) {
				t.Fatalf("a wrong password before the lock: %v", err)
			}
		}
		for i := range 3 {
			before := f.hasher.Derivations()
			err := change("secret12")
			var ce *account.ChangeError
			if !errors.As(err, &ce) || !ce.CurrentWrong {
				t.Fatalf("the right personal password on a locked counter (try %d): %v; want CurrentWrong", i, err)
			}
			if got := f.hasher.Derivations() - before; got != 2 {
				t.Fatalf("a refused change on a locked counter cost %d derivations, want 2 (dummies)", got)
			}
		}
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", "secret12", meta); err != nil {
			t.Fatalf("the change form's lock reached the login: %v", err)
		}
	})
}

// TestChangeFormCostsTheSameForEveryAddress: a refused voluntary change
// costs two derivations whether the address is unknown, known, or known with
// a provisional password outstanding (which anyone can cause through « Mot de
// passe oublié ? »), so that its time tells nothing.
func TestChangeFormCostsTheSameForEveryAddress(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		f.agent("claire@mairie.fr", "secret12")
		f.agent("paul@mairie.fr", "secret34")
		if err := f.svc.RequestRecovery(f.ctx, "paul@mairie.fr", meta, storage.ChallengeReceipt{}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.ProcessRecoveryJobs(f.ctx); err != nil {
			t.Fatal(err)
		}
		for _, email := range []string{"inconnu@mairie.fr", "claire@mairie.fr", "paul@mairie.fr"} {
			f.advance(time.Hour)
			before := f.hasher.Derivations()
			err := f.svc.ChangePassword(f.ctx, email, "mauvais1", "nouveau2026", "nouveau2026", meta)
			var ce *account.ChangeError
			if !errors.As(err, &ce) || !ce.CurrentWrong {
				t.Fatalf("%s: %v; want CurrentWrong", email, err)
			}
			if got := f.hasher.Derivations() - before; got != 2 {
				t.Errorf("%s: a refused change cost %d derivations, want 2", email, got)
			}
		}
	})
}

// TestBurstOfGuessesIsJudgedInTurn: wrong passwords sent all at once, to
// two instances and from as many addresses, are judged one after the other:
// the free failures are checked, the rest refused unchecked, as when they
// come in turn. (Read, hash, then count let every one of them be checked.)
func TestBurstOfGuessesIsJudgedInTurn(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		f.agent("claire@mairie.fr", "secret12")
		instances := []*account.Service{f.svc, f.instance()}
		const n = 40
		var checked, throttled atomic.Int32
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				m := account.Meta{ClientIP: fmt.Sprintf("10.2.0.%d", i)}
				_, err := logIn(instances[i%2], f.ctx, "claire@mairie.fr", fmt.Sprintf("essai%d", i), m)
				switch {
				case errors.Is(err, account.ErrInvalidCredentials):
					checked.Add(1)
				case errors.Is(err, account.ErrThrottled):
					throttled.Add(1)
				default:
					t.Errorf("guess %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		if checked.Load() < 1 || checked.Load() > 5 {
			t.Fatalf("%d of %d simultaneous guesses were checked (%d throttled), want at most the 5 free failures",
				checked.Load(), n, throttled.Load())
		}
		// The owner, after the delay, still gets in.
		f.advance(time.Hour)
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", "secret12", meta); err != nil {
			t.Fatalf("the owner after the burst: %v", err)
		}
	})
}

// chargeThenCancel cancels the login's context right after its attempt is
// charged: the browser left while its password was being checked.
type chargeThenCancel struct {
	storage.Store
	cancel context.CancelFunc
}

func (c chargeThenCancel) ChargeThrottle(ctx context.Context, key string, expect storage.Throttle, failures, lockAfter int, now time.Time) (storage.Throttle, bool, error) {
	th, ok, err := c.Store.ChargeThrottle(ctx, key, expect, failures, lockAfter, now)
	c.cancel()
	return th, ok, err
}

// TestAbortedLoginsDoNotAddUp: an attempt charged but never judged (the
// browser went away during the hash) is taken back, so that an agent's
// aborted logins never delay the next one.
func TestAbortedLoginsDoNotAddUp(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		f.agent("claire@mairie.fr", "secret12")
		for i := range 8 {
			ctx, cancel := context.WithCancel(f.ctx)
			svc := f.serviceOn(chargeThenCancel{f.st, cancel})
			if _, err := logIn(svc, ctx, "claire@mairie.fr", "secret12", meta); !errors.Is(err, context.Canceled) {
				t.Fatalf("aborted login %d: %v, want context.Canceled", i, err)
			}
		}
		th, err := f.st.GetThrottle(f.ctx, "login:account:claire@mairie.fr")
		if err != nil {
			t.Fatal(err)
		}
		if th.Failures != 0 {
			t.Fatalf("%d failures counted after 8 aborted logins, want 0", th.Failures)
		}
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", "secret12", meta); err != nil {
			t.Fatalf("the login after them: %v", err)
		}
	})
}

// TestAbortedLoginDoesNotRestartTheDelay: after typos whose delay has
// passed, a login the browser abandons is refunded with its time: the next
// one is not delayed.
func TestAbortedLoginDoesNotRestartTheDelay(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		f.agent("claire@mairie.fr", "secret12")
		for range 8 {
			f.advance(time.Minute)
			if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", "mauvais", meta); !errors.Is(err, account.ErrInvalidCredentials) {
				t.Fatal(err)
			}
		}
		f.advance(time.Minute) // the delay after 8 failures (8 s) has passed
		ctx, cancel := context.WithCancel(f.ctx)
		svc := f.serviceOn(chargeThenCancel{f.st, cancel})
		if _, err := logIn(svc, ctx, "claire@mairie.fr", "secret12", meta); !errors.Is(err, context.Canceled) {
			t.Fatalf("aborted login: %v", err)
		}
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", "secret12", meta); err != nil {
			t.Fatalf("the login right after the aborted one: %v", err)
		}
	})
}

// TestProvisionalLoginsDoNotAddUp: logging in again and again with a
// provisional password (new browsers, the change not done yet) counts no
// failure.
func TestProvisionalLoginsDoNotAddUp(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		f.agent("claire@mairie.fr", "secret12")
		p := f.recover("claire@mairie.fr")
		for i := range 8 {
			if l, err := logIn(f.svc, f.ctx, "claire@mairie.fr", p, meta); err != nil || !l.Provisional {
				t.Fatalf("provisional login %d: %+v %v", i+1, l, err)
			}
		}
	})
}

// TestOfficeLoginsDoNotCountAgainstIt: an office's successful logins, many
// at once from its one address, are all let in and leave its count as it
// was.
func TestOfficeLoginsDoNotCountAgainstIt(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		office := account.Meta{ClientIP: "198.51.100.8"}
		const n = 40
		for i := range n {
			f.agent(fmt.Sprintf("agent%d@mairie.fr", i), "secret12")
		}
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if _, err := logIn(f.svc, f.ctx, fmt.Sprintf("agent%d@mairie.fr", i), "secret12", office); err != nil {
					t.Errorf("agent %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		th, err := f.st.GetThrottle(f.ctx, "password:ip:198.51.100.8")
		if err != nil {
			t.Fatal(err)
		}
		if th.Failures != 0 {
			t.Fatalf("the office's count after %d successful logins: %d failures", n, th.Failures)
		}
	})
}

// TestOfficeTyposDoNotAddUp: an office behind one address makes a typo
// every 20 minutes all day (40 of them, by 40 agents): its address's count
// forgets them as they age, and a colleague's right password right after
// the last one still gets in.
func TestOfficeTyposDoNotAddUp(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		office := account.Meta{ClientIP: "198.51.100.7"}
		f.agent("collegue@mairie.fr", "secret12")
		for i := range 40 {
			email := fmt.Sprintf("agent%d@mairie.fr", i)
			f.agent(email, "secret34")
			f.advance(20 * time.Minute)
			if _, err := logIn(f.svc, f.ctx, email, "typo", office); !errors.Is(err, account.ErrInvalidCredentials) {
				t.Fatalf("typo %d: %v", i+1, err)
			}
		}
		if _, err := logIn(f.svc, f.ctx, "collegue@mairie.fr", "secret12", office); err != nil {
			t.Fatalf("a colleague right after the day's 40th typo: %v", err)
		}
	})
}

// TestSprayFromOneAddressIsDelayed: wrong passwords for many accounts from
// one address, in quick succession, meet the address's delay past its
// free failures, decay or not.
func TestSprayFromOneAddressIsDelayed(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		attacker := account.Meta{ClientIP: "203.0.113.66"}
		for i := range 30 {
			f.advance(time.Second)
			if _, err := logIn(f.svc, f.ctx, fmt.Sprintf("cible%d@mairie.fr", i), "devine", attacker); !errors.Is(err, account.ErrInvalidCredentials) {
				t.Fatalf("guess %d: %v", i+1, err)
			}
		}
		f.advance(500 * time.Millisecond)
		if _, err := logIn(f.svc, f.ctx, "cible99@mairie.fr", "devine", attacker); !errors.Is(err, account.ErrThrottled) {
			t.Fatalf("the 31st guess from the address half a second later: %v, want ErrThrottled", err)
		}
	})
}

// TestSprayFromOneIPv6NetworkIsDelayed: an IPv6 client holds a whole /64
// (usually a /56 or /48). Keyed by the full 128-bit address, the address's
// counter would be reset by changing the interface identifier, and a spray
// over many accounts never delayed: the /64 counts as one address. The next
// /64 is another client (a carrier gives each device its own).
func TestSprayFromOneIPv6NetworkIsDelayed(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		f.agent("claire@mairie.fr", "secret12")
		for i := range 30 { // one failure on each of 30 accounts, each from a new address of one /64
			m := account.Meta{ClientIP: fmt.Sprintf("2001:db8:1:2::%x", i+1)}
			if _, err := logIn(f.svc, f.ctx, fmt.Sprintf("agent%d@mairie.fr", i), "mauvais", m); !errors.Is(err, account.ErrInvalidCredentials) {
				t.Fatalf("guess %d: %v", i+1, err)
			}
		}
		m := account.Meta{ClientIP: "2001:db8:1:2:a:b:c:d"}
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", "secret12", m); !errors.Is(err, account.ErrThrottled) {
			t.Fatalf("the 31st attempt of a spray from one IPv6 /64 was checked (%v): the address counter never sees the spray", err)
		}
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", "secret12", account.Meta{ClientIP: "2001:db8:1:3::1"}); err != nil {
			t.Fatalf("from the next /64: %v", err)
		}
	})
}

// TestClientKey: what names a client address in the per-address counters.
func TestClientKey(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"203.0.113.66", "203.0.113.66"},
		{"::ffff:203.0.113.66", "203.0.113.66"}, // IPv4-mapped: the IPv4 client
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:DB8:1:2:0:0:0:7", "2001:db8:1:2::/64"}, // however it is written
		{"fe80::1%eth0", "fe80::/64"},
		{"cli", "cli"}, // the admin commands
		{"", ""},
	} {
		if got := account.ClientKey(c.in); got != c.want {
			t.Errorf("ClientKey(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// Whatever a caller passes, the key stays within what the index takes,
	// one per input.
	long := strings.Repeat("x", 5000)
	if k := account.ClientKey(long); len(k) > 254 || k != account.ClientKey(long) || k == account.ClientKey(long+"y") {
		t.Errorf("ClientKey of 5000 bytes: %d bytes, %.40q…", len(k), k)
	}
}

// TestOverlongAddressIsAnUnknownOne: the account rules take an address
// longer than any account's (from an admin command, or a caller that did
// not bound it) as an unknown one, on both engines: its attempts fail,
// count on one key and meet the delay, its recovery request is recorded
// and dropped, and the audit trail keeps each event with the address cut.
// On PostgreSQL its 5 kB throttle key was too large for the index of the
// throttles, and the address for the trail's: the attempt was an error.
func TestOverlongAddressIsAnUnknownOne(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		raw := make([]byte, 2500)
		_, _ = rand.Read(raw)
		long := hex.EncodeToString(raw) + "@mairie.fr" // 5010 bytes, incompressible
		for i := range 5 {
			if _, err := logIn(f.svc, f.ctx, long, "mauvais", meta); !errors.Is(err, account.ErrInvalidCredentials) {
				t.Fatalf("login %d: %v", i+1, err)
			}
		}
		if _, err := logIn(f.svc, f.ctx, long, "mauvais", meta); !errors.Is(err, account.ErrThrottled) {
			t.Fatalf("sixth login at once: %v, want ErrThrottled", err)
		}
		var ce *account.ChangeError
		if err := f.svc.ChangePassword(f.ctx, long, "mauvais", "nouveau12", "nouveau12", meta); !errors.As(err, &ce) || !ce.CurrentWrong {
			t.Fatalf("voluntary change: %v, want the current password wrong", err)
		}
		if err := f.svc.RequestRecovery(f.ctx, long, meta, storage.ChallengeReceipt{}); err != nil {
			t.Fatalf("recovery request: %v", err)
		}
		if _, err := f.svc.ProcessRecoveryJobs(f.ctx); err != nil {
			t.Fatal(err)
		}

		events, err := f.st.ListAudit(f.ctx, storage.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		cut := long[:254] + "…"
		got := map[string]int{}
		for _, e := range events {
			if e.Email == cut {
				got[e.Type]++
			}
		}
		want := map[string]int{"login.failure": 5, "login.throttled": 1, "password.change_refused": 1,
			"recovery.requested": 1, "recovery.ignored": 1}
		if !maps.Equal(got, want) {
			t.Fatalf("events of the address in the trail, cut to 254 bytes: %v, want %v", got, want)
		}
	})
}

// reservedButLost writes the reservation and then fails, as when the
// database committed it and the answer was lost.
type reservedButLost struct{ storage.Store }

func (r reservedButLost) ReserveAttempt(ctx context.Context, key, id string, limit storage.AttemptLimit, now time.Time) (storage.Throttle, int, bool, error) {
	if _, _, _, err := r.Store.ReserveAttempt(ctx, key, id, limit, now); err != nil {
		return storage.Throttle{}, 0, false, err
	}
	return storage.Throttle{}, 0, false, errors.New("connection reset by peer")
}

// TestLostReservationAnswersKeepNoRoom: logins whose reservation was
// written but its answer lost fail, and leave the address its room.
func TestLostReservationAnswersKeepNoRoom(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		f.agent("claire@mairie.fr", "secret12")
		lossy := f.serviceOn(reservedButLost{f.st})
		for i := range 31 {
			if _, err := logIn(lossy, f.ctx, "claire@mairie.fr", "secret12", meta); err == nil {
				t.Fatalf("login %d with its reservation's answer lost succeeded", i+1)
			}
		}
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", "secret12", meta); err != nil {
			t.Fatalf("a right password from the address after 31 lost answers: %v", err)
		}
	})
}

// sprayVerdicts counts a spray's guesses by outcome.
type sprayVerdicts struct{ checked, throttled atomic.Int32 }

func (v *sprayVerdicts) count(t *testing.T, i int, err error) {
	var ce *account.ChangeError
	switch {
	case errors.Is(err, account.ErrInvalidCredentials), errors.As(err, &ce) && ce.CurrentWrong:
		v.checked.Add(1)
	case errors.Is(err, account.ErrThrottled):
		v.throttled.Add(1)
	default:
		t.Errorf("guess %d: %v", i, err)
	}
}

// maxSprayChecked is what a spray sent together from one address may have
// checked: its 30 free failures, and the 3 more that its room past them
// (4 in flight) may let through while its last free failures are judged.
// In turn it would be 30.
const maxSprayChecked = 33

// TestSpraySentTogetherIsHeldToTheFreeFailures: a spray of one guess at
// each of 120 accounts, sent together from one address to two instances,
// half through the login form and half through the voluntary change form
// (a password oracle too), has about the address's 30 free failures
// checked, as when they come in turn; the rest wait for room, then meet the
// delay.
func TestSpraySentTogetherIsHeldToTheFreeFailures(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		attacker := account.Meta{ClientIP: "203.0.113.67"}
		instances := []*account.Service{f.svc, f.instance()}
		const n = 120
		var v sprayVerdicts
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				email := fmt.Sprintf("cible%d@mairie.fr", i)
				svc := instances[i%2]
				if i%4 < 2 {
					_, err := logIn(svc, f.ctx, email, "devine", attacker)
					v.count(t, i, err)
				} else {
					v.count(t, i, svc.ChangePassword(f.ctx, email, "devine", "nouveau12", "nouveau12", attacker))
				}
			})
		}
		wg.Wait()
		if v.checked.Load() < 30 || v.checked.Load() > maxSprayChecked {
			t.Fatalf("%d of %d simultaneous guesses from one address were checked (%d throttled), want its 30 free failures (at most %d)",
				v.checked.Load(), n, v.throttled.Load(), maxSprayChecked)
		}
		th, err := f.st.GetThrottle(f.ctx, "password:ip:203.0.113.67")
		if err != nil {
			t.Fatal(err)
		}
		if th.Failures != int(v.checked.Load()) {
			t.Fatalf("the address after the spray: %+v, want %d failures", th, v.checked.Load())
		}
	})
}

// slowLogins makes each login last as long as a real one (a production
// hash under load, about 30 ms), which the fixture's light hash
// parameters do not.
type slowLogins struct{ storage.Store }

func (s slowLogins) GetUserWithProvisional(ctx context.Context, email string) (storage.User, *storage.ProvisionalPassword, error) {
	time.Sleep(30 * time.Millisecond)
	return s.Store.GetUserWithProvisional(ctx, email)
}

// saturatedLogins makes each login last as long as a real one on an
// instance whose cores are all hashing: two at a time, 30 ms each.
type saturatedLogins struct {
	storage.Store
	cores chan struct{}
}

func (s saturatedLogins) GetUserWithProvisional(ctx context.Context, email string) (storage.User, *storage.ProvisionalPassword, error) {
	s.cores <- struct{}{}
	time.Sleep(30 * time.Millisecond)
	<-s.cores
	return s.Store.GetUserWithProvisional(ctx, email)
}

// officeLogsInTogether has n agents of the office log in at once with
// their right password through st (f's store, wrapped to make each login
// last as long as a real one), and fails the test for any refused.
func officeLogsInTogether(t *testing.T, f *fixture, office account.Meta, n int, st storage.Store) {
	for i := range n {
		f.agent(fmt.Sprintf("agent%d@mairie.fr", i), "secret12")
	}
	svc := f.serviceOn(st)
	var refused atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := logIn(svc, f.ctx, fmt.Sprintf("agent%d@mairie.fr", i), "secret12", office); err != nil {
				refused.Add(1)
				t.Errorf("agent %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if refused.Load() > 0 {
		t.Fatalf("%d of %d agents of the office refused with their right password", refused.Load(), n)
	}
}

// TestOfficeNearItsLimitStillLogsIn: an office whose address is one typo
// short of its delays has little room for attempts in flight; its agents
// logging in together all get in, each waiting for room.
func TestOfficeNearItsLimitStillLogsIn(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		office := account.Meta{ClientIP: "198.51.100.9"}
		for range 29 {
			if _, err := f.st.AddDecayingFailure(f.ctx, "password:ip:198.51.100.9", account.AddressDecay, f.clock()); err != nil {
				t.Fatal(err)
			}
		}
		officeLogsInTogether(t, f, office, 30, slowLogins{f.st})
	})
}

// TestOfficePastItsFreeFailuresStillLogsIn: an office whose typos used its
// address's free failures, the last one minutes ago (its delay over), logs
// in together: all get in.
func TestOfficePastItsFreeFailuresStillLogsIn(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		office := account.Meta{ClientIP: "198.51.100.10"}
		for range 31 {
			if _, err := f.st.AddDecayingFailure(f.ctx, "password:ip:198.51.100.10", account.AddressDecay, f.clock()); err != nil {
				t.Fatal(err)
			}
		}
		f.advance(5 * time.Minute)
		officeLogsInTogether(t, f, office, 30, slowLogins{f.st})
	})
}

// TestOfficeQueuedPastASecondStillLogsIn: 120 agents of one office log in
// at once on an instance that checks two passwords at a time: the last
// wait almost two seconds, well past their turn for room on the address
// (30 in flight), and all get in.
func TestOfficeQueuedPastASecondStillLogsIn(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		officeLogsInTogether(t, f, account.Meta{ClientIP: "198.51.100.11"}, 120,
			saturatedLogins{Store: f.st, cores: make(chan struct{}, 2)})
	})
}

// TestThrottleSharedByInstances: failures spread over two instances count
// together, since the counters live in the database.
func TestThrottleSharedByInstances(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		f.agent("claire@mairie.fr", "secret12")
		a, b := f.svc, f.instance()
		for i := range 5 {
			svc := a
			if i%2 == 1 {
				svc = b
			}
			if _, err := logIn(svc, f.ctx, "claire@mairie.fr", "mauvais", meta); !errors.Is(err, account.ErrInvalidCredentials) {
				t.Fatalf("failure %d: %v", i+1, err)
			}
		}
		for _, svc := range []*account.Service{a, b} {
			if _, err := logIn(svc, f.ctx, "claire@mairie.fr", "secret12", meta); !errors.Is(err, account.ErrThrottled) {
				t.Fatalf("after 5 failures spread over two instances: %v", err)
			}
		}
	})
}

// TestTooSoon: within the delay is too soon; no delay never is, even when
// the last failure is after now (a concurrent attempt charged a moment
// later, another instance's clock ahead).
func TestTooSoon(t *testing.T) {
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		last  time.Time
		delay time.Duration
		want  bool
	}{
		{now.Add(-time.Second), 2 * time.Second, true},
		{now.Add(-3 * time.Second), 2 * time.Second, false},
		{now.Add(time.Millisecond), 0, false},
		{now.Add(time.Millisecond), time.Second, true},
		{time.Time{}, 0, false},
	} {
		if got := account.TooSoon(c.last, now, c.delay); got != c.want {
			t.Errorf("TooSoon(last %v, delay %v) = %v, want %v", c.last.Sub(now), c.delay, got, c.want)
		}
	}
}

// pausedAfterCharge holds a login once its attempt is charged, until
// resume is closed: its password is still being checked.
type pausedAfterCharge struct {
	storage.Store
	once    *sync.Once
	charged chan<- struct{}
	resume  <-chan struct{}
}

func (p pausedAfterCharge) ChargeThrottle(ctx context.Context, key string, expect storage.Throttle, failures, lockAfter int, now time.Time) (storage.Throttle, bool, error) {
	th, ok, err := p.Store.ChargeThrottle(ctx, key, expect, failures, lockAfter, now)
	p.once.Do(func() { close(p.charged) })
	<-p.resume
	return th, ok, err
}

// afterRead calls read once a login has read its counters.
type afterRead struct {
	storage.Store
	read func()
}

func (a afterRead) GetThrottles(ctx context.Context, keys ...string) ([]storage.Throttle, error) {
	th, err := a.Store.GetThrottles(ctx, keys...)
	a.read()
	return th, err
}

// TestDoubleClickAfterTyposLogsIn: after typos whose delay has passed, the
// agent clicks « Valider » twice with the right password, and the second
// POST reads the account's counter while the first is being checked. It
// waits for the first's verdict and logs in too, rather than being refused
// for a failure that never was (the browser shows the second answer).
func TestDoubleClickAfterTyposLogsIn(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		f.agent("claire@mairie.fr", "secret12")
		for range 6 {
			f.advance(time.Minute)
			if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", "mauvais", meta); !errors.Is(err, account.ErrInvalidCredentials) {
				t.Fatal(err)
			}
		}
		f.advance(time.Minute) // the delay after 6 failures (2 s) has passed
		charged, resume := make(chan struct{}), make(chan struct{})
		first := f.serviceOn(pausedAfterCharge{Store: f.st, once: new(sync.Once), charged: charged, resume: resume})
		var release sync.Once
		second := f.serviceOn(afterRead{Store: f.st, read: func() { release.Do(func() { close(resume) }) }})
		var firstErr error
		done := make(chan struct{})
		go func() { defer close(done); _, firstErr = logIn(first, f.ctx, "claire@mairie.fr", "secret12", meta) }()
		<-charged
		_, secondErr := logIn(second, f.ctx, "claire@mairie.fr", "secret12", meta)
		<-done
		if firstErr != nil {
			t.Fatalf("first click: %v", firstErr)
		}
		if secondErr != nil {
			t.Fatalf("second click, sent while the first was checked: %v, want logged in", secondErr)
		}
	})
}

// queuedPastTheBudget answers each lookup of an agent only once the
// attempt's budget has ended, as when the instance's hashes are queued
// behind more attempts than it can check in that time: the hashes then find
// their budget spent.
type queuedPastTheBudget struct{ storage.Store }

func (q queuedPastTheBudget) GetUserWithProvisional(ctx context.Context, email string) (storage.User, *storage.ProvisionalPassword, error) {
	<-ctx.Done()
	return q.Store.GetUserWithProvisional(context.WithoutCancel(ctx), email)
}

func (q queuedPastTheBudget) GetUserByEmail(ctx context.Context, email string) (storage.User, error) {
	<-ctx.Done()
	return q.Store.GetUserByEmail(context.WithoutCancel(ctx), email)
}

// TestAttemptsPastTheirBudgetAreShedAlike: an attempt whose password is not
// checked within its budget (shorter than its address reservation's life)
// gets ErrBusy, for a known address, an unknown one or a wrong password
// alike, through both forms; it ran no hash and counted nothing, on the
// account or on the address.
func TestAttemptsPastTheirBudgetAreShedAlike(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		f.agent("claire@mairie.fr", "secret12")
		hasher := passhash.NewHasher(passhash.Params{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}, 4)
		queued := f.serviceWith(queuedPastTheBudget{f.st}, hasher, 20*time.Millisecond)
		// More than the address's free failures, and than the account's.
		for i := range 40 {
			email, password := "claire@mairie.fr", "mauvais1"
			switch i % 4 {
			case 1:
				password = "secret12"
			case 2:
				email = "inconnu@mairie.fr"
			}
			var err error
			if i%4 == 3 {
				err = queued.ChangePassword(f.ctx, email, password, "nouveau12", "nouveau12", meta)
			} else {
				_, err = logIn(queued, f.ctx, email, password, meta)
			}
			if !errors.Is(err, account.ErrBusy) {
				t.Fatalf("attempt %d (%s, %s) past its budget: %v, want ErrBusy", i, email, password, err)
			}
		}
		if n := hasher.Derivations(); n != 0 {
			t.Errorf("%d hashes ran for attempts past their budget", n)
		}
		// Nothing was counted: the agent logs in at once from the address.
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", "secret12", meta); err != nil {
			t.Fatalf("right password after the shed attempts: %v", err)
		}
		if _, err := logIn(f.svc, f.ctx, "inconnu@mairie.fr", "mauvais1", meta); !errors.Is(err, account.ErrInvalidCredentials) {
			t.Fatalf("an unknown address from the same address then: %v, want ErrInvalidCredentials (no delay)", err)
		}
	})
}

// TestRefusalsCostTheSameForAgentsWithCheaperHashes: an agent whose stored
// hash was made with cheaper parameters than the instance's (imported from
// a legacy directory, or hashed before password.hash.* was raised) is
// refused, by the login and by the voluntary change, at the cost of an
// address without an account: the time taken does not tell who has one.
func TestRefusalsCostTheSameForAgentsWithCheaperHashes(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		u := f.agent("importe@mairie.fr", "secret12")
		legacy, err := passhash.NewHasher(passhash.Params{MemoryKiB: 256, Iterations: 1, Parallelism: 1}, 1).Hash(f.ctx, "ancien12")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.st.UpdatePasswordHash(f.ctx, u.ID, u.PasswordHash, legacy, f.clock()); err != nil {
			t.Fatal(err)
		}
		n := 0
		work := func(refuse func(m account.Meta) error) uint64 {
			n++
			f.advance(16 * time.Minute) // past any delay: every attempt is checked
			before := f.hasher.Work()
			if err := refuse(account.Meta{ClientIP: fmt.Sprintf("198.51.100.%d", n)}); err == nil {
				t.Fatal("a wrong password was accepted")
			}
			return f.hasher.Work() - before
		}
		for _, form := range []struct {
			name   string
			refuse func(email string, m account.Meta) error
		}{
			{"login", func(email string, m account.Meta) error {
				_, err := logIn(f.svc, f.ctx, email, "mauvais1", m)
				return err
			}},
			{"change", func(email string, m account.Meta) error {
				return f.svc.ChangePassword(f.ctx, email, "mauvais1", "nouveau2026", "nouveau2026", m)
			}},
		} {
			unknown := work(func(m account.Meta) error { return form.refuse("inconnu@mairie.fr", m) })
			imported := work(func(m account.Meta) error { return form.refuse("importe@mairie.fr", m) })
			if unknown == 0 || imported != unknown {
				t.Errorf("%s: a refusal cost %d KiB-passes for the agent with a cheaper hash, %d for an unknown address", form.name, imported, unknown)
			}
		}
		// The old password still opens the account, which is then rehashed.
		if _, err := logIn(f.svc, f.ctx, "importe@mairie.fr", "ancien12", meta); err != nil {
			t.Fatalf("the legacy hash's password: %v", err)
		}
	})
}

// TestLoginLeftDuringItsFirstHashIsCounted: a guess whose first hash has
// started is checked (a right password would log in a hash's time later),
// so leaving then must not make it free: it reaches its verdict and counts,
// as a guess that stayed does.
func TestLoginLeftDuringItsFirstHashIsCounted(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		f.agent("claire@mairie.fr", "secret12")
		// Hashes of several milliseconds: time to leave during the first.
		hasher := passhash.NewHasher(passhash.Params{MemoryKiB: 16 * 1024, Iterations: 2, Parallelism: 1}, 1)
		svc := f.serviceWith(f.st, hasher, 0)
		const guesses = 3 // within the free failures: no delay in the way
		for i := range guesses {
			ctx, leave := leaveDuringFirstHash(f.ctx, hasher)
			_, err := logIn(svc, ctx, "claire@mairie.fr", "mauvais1", meta)
			leave()
			if !errors.Is(err, account.ErrInvalidCredentials) {
				t.Fatalf("guess %d, left during its first hash: %v, want its verdict (ErrInvalidCredentials)", i+1, err)
			}
		}
		th, err := f.st.GetThrottle(f.ctx, "login:account:claire@mairie.fr")
		if err != nil {
			t.Fatal(err)
		}
		if th.Failures != guesses {
			t.Fatalf("%d guesses checked and left, %d failures counted", guesses, th.Failures)
		}
	})
}

// slowBetweenTheHashes answers the read between the change form's two
// hashes only after the attempt's budget (50 ms in the test) has passed,
// as a long queue for the second hash would.
type slowBetweenTheHashes struct{ storage.Store }

func (s slowBetweenTheHashes) GetProvisionalPassword(ctx context.Context, userID string, now time.Time) (storage.ProvisionalPassword, error) {
	time.Sleep(80 * time.Millisecond)
	return s.Store.GetProvisionalPassword(ctx, userID, now)
}

// TestChangeCheckedPastItsBudgetIsCounted: a voluntary change whose current
// password was checked against the agent's hash, and whose budget then ends
// before its second hash, still reaches its verdict and counts: shedding it
// then would check guesses for free.
func TestChangeCheckedPastItsBudgetIsCounted(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		f.agent("claire@mairie.fr", "secret12")
		svc := f.serviceWith(slowBetweenTheHashes{f.st}, f.hasher, 50*time.Millisecond)
		const guesses = 3
		for i := range guesses {
			before := f.hasher.Derivations()
			err := svc.ChangePassword(f.ctx, "claire@mairie.fr", "mauvais1", "nouveau12", "nouveau12", meta)
			var ce *account.ChangeError
			if !errors.As(err, &ce) || !ce.CurrentWrong || f.hasher.Derivations()-before != 2 {
				t.Fatalf("guess %d, its budget spent after its first hash: %v after %d hashes, want CurrentWrong after 2",
					i+1, err, f.hasher.Derivations()-before)
			}
		}
		th, err := f.st.GetThrottle(f.ctx, "change:account:claire@mairie.fr")
		if err != nil {
			t.Fatal(err)
		}
		if th.Failures != guesses {
			t.Fatalf("%d wrong current passwords checked, %d failures counted", guesses, th.Failures)
		}
	})
}

// deadlineRecorder records the deadline of the contexts reaching the store
// calls an attempt makes after its first hash: the read of the provisional
// password (change form) and the failure's audit event (login form).
type deadlineRecorder struct {
	storage.Store
	mu    sync.Mutex
	seen  map[string]bool
	bound map[string]time.Time
}

func (d *deadlineRecorder) record(what string, ctx context.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dl, ok := ctx.Deadline()
	d.seen[what] = true
	if ok {
		d.bound[what] = dl
	}
}

func (d *deadlineRecorder) GetProvisionalPassword(ctx context.Context, userID string, now time.Time) (storage.ProvisionalPassword, error) {
	d.record("change: provisional password read", ctx)
	return d.Store.GetProvisionalPassword(ctx, userID, now)
}

func (d *deadlineRecorder) AppendAudit(ctx context.Context, e storage.AuditEvent) error {
	if e.Type == "login.failure" {
		d.record("login: failure's audit event", ctx)
	}
	return d.Store.AppendAudit(ctx, e)
}

// TestCheckedAttemptStaysBounded: an attempt whose first hash ran goes on
// after the browser left or its budget ended (checked), but not without any
// bound: it never outlives its address reservation (a minute), and its
// answer comes within the server's write timeout (a minute). Without a
// deadline, a hung database call or a long hash queue after the first hash
// would keep the attempt, its goroutine and its pool connection forever.
func TestCheckedAttemptStaysBounded(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		f.agent("claire@mairie.fr", "secret12")
		rec := &deadlineRecorder{Store: f.st, seen: map[string]bool{}, bound: map[string]time.Time{}}
		svc := f.serviceWith(rec, f.hasher, 0)
		start := time.Now()
		_ = svc.ChangePassword(f.ctx, "claire@mairie.fr", "mauvais1", "nouveau12", "nouveau12", meta)
		_, _ = logIn(svc, f.ctx, "claire@mairie.fr", "mauvais1", meta)
		limit := start.Add(time.Minute)
		for _, what := range []string{"change: provisional password read", "login: failure's audit event"} {
			if !rec.seen[what] {
				t.Fatalf("%s: not reached", what)
			}
			dl, ok := rec.bound[what]
			switch {
			case !ok:
				t.Errorf("%s, after the first hash: no deadline at all (a hung call never ends)", what)
			case dl.After(limit):
				t.Errorf("%s: deadline %v after the attempt's start, past the reservation's minute", what, dl.Sub(start))
			}
		}
	})
}

// TestLoginLeftDuringARightFirstHashIsAudited: a right password whose
// first hash was running when the browser left reaches its verdict
// (checked): the account's failures are forgotten, a pending provisional
// password would be cancelled. No session follows, the browser being gone,
// but the trail records the success, written on a context of its own.
func TestLoginLeftDuringARightFirstHashIsAudited(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		f.agent("claire@mairie.fr", "secret12")
		hasher := passhash.NewHasher(passhash.Params{MemoryKiB: 16 * 1024, Iterations: 2, Parallelism: 1}, 1)
		svc := f.serviceWith(f.st, hasher, 0)
		for range 2 {
			if _, err := logIn(svc, f.ctx, "claire@mairie.fr", "mauvais1", meta); !errors.Is(err, account.ErrInvalidCredentials) {
				t.Fatal(err)
			}
		}
		ctx, leave := leaveDuringFirstHash(f.ctx, hasher)
		_, err := logIn(svc, ctx, "claire@mairie.fr", "secret12", meta)
		leave()
		th, gerr := f.st.GetThrottle(f.ctx, "login:account:claire@mairie.fr")
		if gerr != nil {
			t.Fatal(gerr)
		}
		if th.Failures != 0 {
			t.Fatalf("a right password left during its first hash was not settled as a success (err %v, %d failures)", err, th.Failures)
		}
		events, aerr := f.st.ListAudit(f.ctx, storage.AuditFilter{Email: "claire@mairie.fr"})
		if aerr != nil {
			t.Fatal(aerr)
		}
		for _, e := range events {
			if e.Type == "login.success" {
				return
			}
		}
		t.Errorf("a right password left during its first hash reset the failures (login err: %v) but the trail has no login.success", err)
	})
}

// leaveDuringFirstHash is a browser's context that ends as soon as hasher's
// next derivation has started: the browser leaves during the attempt's first
// hash. The hashes must last long enough for that (several milliseconds).
func leaveDuringFirstHash(parent context.Context, hasher *passhash.Hasher) (context.Context, context.CancelFunc) {
	ctx, leave := context.WithCancel(parent)
	started := hasher.Derivations()
	go func() {
		for hasher.Derivations() == started && ctx.Err() == nil {
			time.Sleep(50 * time.Microsecond)
		}
		leave()
	}()
	return ctx, leave
}

func hasAudit(t *testing.T, f *fixture, email, typ, detail string) bool {
	t.Helper()
	events, err := f.st.ListAudit(f.ctx, storage.AuditFilter{Email: email})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.Type == typ && (detail == "" || e.Detail == detail) {
			return true
		}
	}
	return false
}

// TestUnknownAddressLeftDuringFirstHashIsAudited: an unknown address's
// attempt left during its first (dummy) hash reaches its verdict, is
// counted, and is in the audit trail, as a known address's is.
func TestUnknownAddressLeftDuringFirstHashIsAudited(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		hasher := passhash.NewHasher(passhash.Params{MemoryKiB: 16 * 1024, Iterations: 2, Parallelism: 1}, 1)
		svc := f.serviceWith(f.st, hasher, 0)
		ctx, leave := leaveDuringFirstHash(f.ctx, hasher)
		_, err := logIn(svc, ctx, "inconnu@mairie.fr", "mauvais1", meta)
		leave()
		if !errors.Is(err, account.ErrInvalidCredentials) {
			t.Fatalf("unknown address left during its first hash: %v, want its verdict", err)
		}
		if !hasAudit(t, f, "inconnu@mairie.fr", "login.failure", "unknown account") {
			t.Error("verdict reached and counted, but no login.failure in the trail (audited on the cancelled context)")
		}
	})
}

// slowReset holds ResetThrottle past the attempt's budget: the time the
// verdict's settlement takes, as a busy database would.
type slowReset struct{ storage.Store }

func (s slowReset) ResetThrottle(ctx context.Context, key string) error {
	time.Sleep(80 * time.Millisecond)
	return s.Store.ResetThrottle(ctx, key)
}

// TestForcedChangeCheckedGoesOn: the forced change goes on once its hash
// ran, as the voluntary one does: a wrong provisional password whose browser
// left during the hash is counted and its refusal audited; a right one whose
// budget ends while its success is settled still makes the change.
func TestForcedChangeCheckedGoesOn(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		u := f.agent("claire@mairie.fr", "secret12")
		p := f.recover("claire@mairie.fr")
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", p, meta); err != nil {
			t.Fatal(err)
		}
		// Wrong provisional password, browser gone during the hash.
		hasher := passhash.NewHasher(passhash.Params{MemoryKiB: 16 * 1024, Iterations: 2, Parallelism: 1}, 1)
		slowHashes := f.serviceWith(f.st, hasher, 0)
		ctx, leave := leaveDuringFirstHash(f.ctx, hasher)
		err := slowHashes.CompleteForcedChange(ctx, u.ID, "mauvais1", "nouveau12", "nouveau12", meta)
		leave()
		var ce *account.ChangeError
		if !errors.As(err, &ce) || !ce.CurrentWrong {
			t.Fatalf("wrong provisional password left during its hash: %v, want CurrentWrong", err)
		}
		if !hasAudit(t, f, "claire@mairie.fr", "password.change_refused", "forced") {
			t.Error("forced change checked and counted as a failure, but its refusal is not in the trail")
		}
		// Right provisional password, budget spent while its success settled.
		svc := f.serviceWith(slowReset{f.st}, f.hasher, 50*time.Millisecond)
		err = svc.CompleteForcedChange(f.ctx, u.ID, p, "nouveau12", "nouveau12", meta)
		if errors.Is(err, account.ErrBusy) {
			t.Errorf("right provisional password, verdict settled (throttle reset), then ErrBusy: %v", err)
		} else if err != nil {
			t.Errorf("right provisional password: %v", err)
		}
	})
}

// settleRecorder records whether the settlement writes an attempt makes
// after its verdict carry any deadline.
type settleRecorder struct {
	storage.Store
	mu       sync.Mutex
	deadline map[string]bool
}

func (s *settleRecorder) rec(what string, ctx context.Context) {
	_, ok := ctx.Deadline()
	s.mu.Lock()
	s.deadline[what] = ok
	s.mu.Unlock()
}

func (s *settleRecorder) SettleAttempt(ctx context.Context, key, id string, failed bool, every time.Duration, now time.Time) error {
	s.rec("SettleAttempt", ctx)
	return s.Store.SettleAttempt(ctx, key, id, failed, every, now)
}

// TestSettlementStaysBounded: the verdict's settlement is written whatever
// becomes of the request, but within a deadline of its own: a database that
// hangs does not hold the attempt (its goroutine, its pool connection, the
// browser's answer) for ever.
func TestSettlementStaysBounded(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		f.agent("claire@mairie.fr", "secret12")
		rec := &settleRecorder{Store: f.st, deadline: map[string]bool{}}
		svc := f.serviceWith(rec, f.hasher, 0)
		if _, err := logIn(svc, f.ctx, "claire@mairie.fr", "mauvais1", meta); !errors.Is(err, account.ErrInvalidCredentials) {
			t.Fatal(err)
		}
		if ok, seen := rec.deadline["SettleAttempt"]; !seen || !ok {
			t.Errorf("the failure's settlement, after the first hash: no deadline at all (seen %v)", seen)
		}
	})
}
