package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

func throttleBehaviours() []behaviour {
	return []behaviour{
		{"CountsAndLocksOnce", testThrottleCountAndLock},
		{"UnknownKeyIsZero", testThrottleUnknown},
		{"ResetForgets", testThrottleReset},
		{"ZeroLockAfterNeverLocks", testThrottleNoLock},
		{"ConcurrentFailuresAllCountedOneLock", testThrottleRace},
		{"ChargeOnlyTheCountRead", testThrottleCharge},
		{"ConcurrentChargesOneWinner", testThrottleChargeRace},
		{"RefundTakesBackOneUnlocked", testThrottleRefund},
		{"DecayingForgetsOnePerPeriod", testThrottleDecay},
		{"ReserveWithinTheFreeFailures", testReserveAttempt},
		{"ReservePastTheFreeOneAtATime", testReservePastFree},
		{"ReservationsOutliveNotTheirLife", testReservationLife},
		{"ConcurrentReservationsHeldToTheFree", testReserveRace},
		{"SettleEndsAReservation", testSettleAttempt},
	}
}

// addFailure counts one more failure on key as the account service does:
// a ChargeThrottle on the state read, read again when another charge came
// first.
func addFailure(ctx context.Context, s storage.Store, key string, lockAfter int, now time.Time) (storage.Throttle, error) {
	for {
		th, err := s.GetThrottle(ctx, key)
		if err != nil {
			return storage.Throttle{}, err
		}
		charged, ok, err := s.ChargeThrottle(ctx, key, th, th.Failures+1, lockAfter, now)
		if err != nil || ok {
			return charged, err
		}
	}
}

// assertThrottle compares a throttle with the expected state.
func assertThrottle(t *testing.T, what string, got storage.Throttle, key string, failures int, last time.Time, lockedAt *time.Time) {
	t.Helper()
	assertSame(t, what, got, storage.Throttle{Key: key, Failures: failures, LastFailureAt: last, LockedAt: lockedAt})
}

func testThrottleCountAndLock(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	const key, lockAfter = "login:agent@example.fr", 3
	at := func(i int) time.Time { return now.Add(time.Duration(i)*time.Minute + 456*time.Microsecond) }

	for i := 1; i < lockAfter; i++ {
		th, err := addFailure(ctx, s, key, lockAfter, at(i))
		mustOK(t, err, fmt.Sprintf("addFailure %d", i))
		assertThrottle(t, fmt.Sprintf("after failure %d", i), th, key, i, at(i), nil)
	}
	th, err := addFailure(ctx, s, "login:192.0.2.7", lockAfter, at(9))
	mustOK(t, err, "addFailure on another key")
	assertThrottle(t, "another key", th, "login:192.0.2.7", 1, at(9), nil)

	// The failure that reaches lockAfter locks, at its own time.
	lockTime := at(lockAfter)
	th, err = addFailure(ctx, s, key, lockAfter, lockTime)
	mustOK(t, err, "addFailure reaching the lock")
	assertThrottle(t, "failure reaching the lock", th, key, lockAfter, lockTime, &lockTime)
	// Later failures still count, and the lock keeps its first time.
	th, err = addFailure(ctx, s, key, lockAfter, at(10))
	mustOK(t, err, "addFailure after the lock")
	assertThrottle(t, "failure after the lock", th, key, lockAfter+1, at(10), &lockTime)

	got, err := s.GetThrottle(ctx, key)
	mustOK(t, err, "GetThrottle")
	assertThrottle(t, "GetThrottle", got, key, lockAfter+1, at(10), &lockTime)
	got, err = s.GetThrottle(ctx, "login:192.0.2.7")
	mustOK(t, err, "GetThrottle other key")
	assertThrottle(t, "GetThrottle other key", got, "login:192.0.2.7", 1, at(9), nil)

	// GetThrottles answers in the order asked, whatever the order of the
	// rows, a key without state included.
	for _, keys := range [][]string{{key, "login:192.0.2.7", "login:nobody"}, {"login:nobody", "login:192.0.2.7", key}} {
		all, err := s.GetThrottles(ctx, keys...)
		mustOK(t, err, "GetThrottles")
		if len(all) != 3 {
			t.Fatalf("GetThrottles(%v): %d states, want 3", keys, len(all))
		}
		for i, k := range keys {
			switch k {
			case key:
				assertThrottle(t, "GetThrottles locked key", all[i], key, lockAfter+1, at(10), &lockTime)
			case "login:192.0.2.7":
				assertThrottle(t, "GetThrottles other key", all[i], k, 1, at(9), nil)
			default:
				assertThrottle(t, "GetThrottles unknown key", all[i], k, 0, time.Time{}, nil)
			}
		}
	}
	if none, err := s.GetThrottles(ctx); err != nil || len(none) != 0 {
		t.Fatalf("GetThrottles(): %v, %v; want nothing", none, err)
	}
}

func testThrottleUnknown(t *testing.T, s storage.Store) {
	got, err := s.GetThrottle(t.Context(), "login:personne@example.fr")
	mustOK(t, err, "GetThrottle of a key without failures")
	assertThrottle(t, "unknown key", got, "login:personne@example.fr", 0, time.Time{}, nil)
}

func testThrottleReset(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	for i := range 3 {
		_, err := addFailure(ctx, s, "login:a", 2, now.Add(time.Duration(i)*time.Second))
		mustOK(t, err, "addFailure a")
	}
	_, err := addFailure(ctx, s, "login:b", 2, now)
	mustOK(t, err, "addFailure b")

	mustOK(t, s.ResetThrottle(ctx, "login:a"), "ResetThrottle of a locked key")
	got, err := s.GetThrottle(ctx, "login:a")
	mustOK(t, err, "GetThrottle after reset")
	assertThrottle(t, "after reset", got, "login:a", 0, time.Time{}, nil)
	mustOK(t, s.ResetThrottle(ctx, "login:a"), "ResetThrottle again")
	mustOK(t, s.ResetThrottle(ctx, "login:inconnu"), "ResetThrottle of an unknown key")

	// Counting starts afresh: the lock comes back only at lockAfter.
	th, err := addFailure(ctx, s, "login:a", 2, now.Add(time.Minute))
	mustOK(t, err, "addFailure after reset")
	assertThrottle(t, "first failure after reset", th, "login:a", 1, now.Add(time.Minute), nil)
	got, err = s.GetThrottle(ctx, "login:b")
	mustOK(t, err, "GetThrottle b")
	assertThrottle(t, "untouched key", got, "login:b", 1, now, nil)
}

func testThrottleNoLock(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	var th storage.Throttle
	for i := range 5 {
		var err error
		th, err = addFailure(ctx, s, "login:a", 0, now.Add(time.Duration(i)*time.Second))
		mustOK(t, err, "addFailure with lockAfter 0")
	}
	assertThrottle(t, "five failures, lockAfter 0", th, "login:a", 5, now.Add(4*time.Second), nil)
}

// Failures raced from many goroutines (instances) are each counted once, and
// exactly the one reaching lockAfter sets the lock.
func testThrottleRace(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	const n, lockAfter, key = 50, 20, "login:agent@example.fr"
	states := make([]storage.Throttle, n)
	errs := race(n, func(i int) error {
		var err error
		// Each goroutine has its own clock reading, to tell whose lock it is.
		states[i], err = addFailure(ctx, s, key, lockAfter, now.Add(time.Duration(i)*time.Millisecond))
		return err
	})
	seen := make(map[int]int)
	locker := -1
	for i, err := range errs {
		mustOK(t, err, fmt.Sprintf("addFailure in goroutine %d", i))
		th := states[i]
		seen[th.Failures]++
		switch {
		case th.Failures < lockAfter && th.LockedAt != nil:
			t.Errorf("goroutine %d: Failures %d < %d but LockedAt %v", i, th.Failures, lockAfter, *th.LockedAt)
		case th.Failures >= lockAfter && th.LockedAt == nil:
			t.Errorf("goroutine %d: Failures %d >= %d but not locked", i, th.Failures, lockAfter)
		}
		if th.Failures == lockAfter {
			locker = i
		}
	}
	for c := 1; c <= n; c++ {
		if seen[c] != 1 {
			t.Errorf("Failures %d returned %d times, want exactly once", c, seen[c])
		}
	}
	if t.Failed() || locker < 0 {
		t.FailNow()
	}
	lockTime := now.Add(time.Duration(locker) * time.Millisecond)
	for i, th := range states {
		if th.LockedAt != nil && !canonTime(*th.LockedAt).Equal(canonTime(lockTime)) {
			t.Errorf("goroutine %d: LockedAt %v, want %v (the time of goroutine %d, which reached %d)",
				i, *th.LockedAt, lockTime, locker, lockAfter)
		}
	}
	got, err := s.GetThrottle(ctx, key)
	mustOK(t, err, "GetThrottle after the race")
	if got.Failures != n || got.LockedAt == nil || !canonTime(*got.LockedAt).Equal(canonTime(lockTime)) {
		t.Errorf("after %d concurrent failures: Failures %d, LockedAt %v; want %d, %v", n, got.Failures, got.LockedAt, n, lockTime)
	}
}

// testThrottleCharge: ChargeThrottle takes a charge only when the key
// still holds the state given (count and time), sets the count given, and
// locks once lockAfter is reached; a key without state takes the insert, at 1.
func testThrottleCharge(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	const key = "login:account:agent@example.fr"
	at := func(i int) time.Time { return now.Add(time.Duration(i) * time.Second) }

	th, ok, err := s.ChargeThrottle(ctx, key, storage.Throttle{Key: key}, 1, 3, at(0))
	if err != nil || !ok {
		t.Fatalf("charge of a key without state: ok=%v err=%v", ok, err)
	}
	assertThrottle(t, "after the first charge", th, key, 1, at(0), nil)

	for name, stale := range map[string]storage.Throttle{
		"an older count":                         {Key: key, Failures: 0, LastFailureAt: at(0)},
		"an older time":                          {Key: key, Failures: 1},
		"no state, read before the first charge": {Key: key},
	} {
		_, ok, err := s.ChargeThrottle(ctx, key, stale, 2, 3, at(1))
		mustOK(t, err, "stale charge: "+name)
		if ok {
			t.Fatalf("a charge on a stale state (%s) was taken", name)
		}
	}
	got, err := s.GetThrottle(ctx, key)
	mustOK(t, err, "GetThrottle")
	assertSame(t, "stale charges write nothing", got, th)

	th, ok, err = s.ChargeThrottle(ctx, key, th, 2, 3, at(2))
	if err != nil || !ok {
		t.Fatalf("a charge on the current state: ok=%v err=%v", ok, err)
	}
	assertThrottle(t, "second charge", th, key, 2, at(2), nil)
	th, ok, err = s.ChargeThrottle(ctx, key, th, 3, 3, at(3))
	if err != nil || !ok {
		t.Fatalf("third charge: ok=%v err=%v", ok, err)
	}
	locked := at(3)
	assertThrottle(t, "the charge that reaches lockAfter", th, key, 3, at(3), &locked)
}

// testThrottleChargeRace: of several charges on the same state, from
// connections of their own, exactly one is taken.
func testThrottleChargeRace(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	const key = "login:account:race@example.fr"
	read, err := addFailure(ctx, s, key, 0, now)
	mustOK(t, err, "addFailure")
	const n = 12
	var wg sync.WaitGroup
	var taken atomic.Int32
	for range n {
		wg.Go(func() {
			_, ok, err := s.ChargeThrottle(ctx, key, read, 2, 0, now.Add(time.Second))
			if err != nil {
				t.Errorf("ChargeThrottle: %v", err)
			} else if ok {
				taken.Add(1)
			}
		})
	}
	wg.Wait()
	if taken.Load() != 1 {
		t.Fatalf("%d of %d charges on the same state were taken, want 1", taken.Load(), n)
	}
	th, err := s.GetThrottle(ctx, key)
	mustOK(t, err, "GetThrottle")
	if th.Failures != 2 {
		t.Fatalf("failures = %d after one taken charge, want 2", th.Failures)
	}
}

// testThrottleRefund: RefundThrottle puts a key still holding the charge
// back to its state before; after a later charge it only takes one failure
// off; it leaves a locked key as it is and ignores a key without state.
func testThrottleRefund(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	mustOK(t, s.RefundThrottle(ctx, "login:ip:192.0.2.99", storage.Throttle{Failures: 1, LastFailureAt: now}, storage.Throttle{}),
		"RefundThrottle of a key without state")
	const key, locking = "login:ip:192.0.2.1", "login:account:locked@example.fr"
	before, err := addFailure(ctx, s, key, 0, now)
	mustOK(t, err, "addFailure")
	charged, ok, err := s.ChargeThrottle(ctx, key, before, 7, 0, now.Add(time.Minute))
	if err != nil || !ok {
		t.Fatalf("ChargeThrottle: %v %v", ok, err)
	}
	mustOK(t, s.RefundThrottle(ctx, key, charged, before), "RefundThrottle")
	th, err := s.GetThrottle(ctx, key)
	mustOK(t, err, "GetThrottle")
	assertSame(t, "a key still holding the charge, refunded", th, before)

	// A charge after ours: ours only takes one off, and the later time stays.
	charged, ok, err = s.ChargeThrottle(ctx, key, before, 2, 0, now.Add(time.Minute))
	if err != nil || !ok {
		t.Fatalf("ChargeThrottle again: %v %v", ok, err)
	}
	later, ok, err := s.ChargeThrottle(ctx, key, charged, 3, 0, now.Add(2*time.Minute))
	if err != nil || !ok {
		t.Fatalf("the later charge: %v %v", ok, err)
	}
	mustOK(t, s.RefundThrottle(ctx, key, charged, before), "RefundThrottle after a later charge")
	th, err = s.GetThrottle(ctx, key)
	mustOK(t, err, "GetThrottle")
	assertThrottle(t, "a refund after a later charge", th, key, 2, later.LastFailureAt, nil)

	locked, err := addFailure(ctx, s, locking, 1, now)
	mustOK(t, err, "addFailure locking")
	mustOK(t, s.RefundThrottle(ctx, locking, locked, storage.Throttle{}), "RefundThrottle locked")
	th, err = s.GetThrottle(ctx, locking)
	mustOK(t, err, "GetThrottle locked")
	assertSame(t, "a locked key after a refund", th, locked)
}

// testThrottleDecay: AddDecayingFailure forgets one failure per whole period
// since the last one, never goes below one for the failure it counts, and
// decays nothing when the last failure is ahead of now; Throttle.DecayedAt
// reads the same count.
func testThrottleDecay(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	const key, every = "login:ip:192.0.2.1", 10 * time.Minute
	for i := range 3 {
		th, err := s.AddDecayingFailure(ctx, key, every, now)
		mustOK(t, err, "AddDecayingFailure")
		if th.Failures != i+1 {
			t.Fatalf("failure %d at once: count %d", i+1, th.Failures)
		}
	}
	th, err := s.GetThrottle(ctx, key)
	mustOK(t, err, "GetThrottle")
	if got := th.DecayedAt(now.Add(25*time.Minute), every); got != 1 {
		t.Fatalf("DecayedAt 25 min later: %d, want 3 - 2 = 1", got)
	}
	later := now.Add(25 * time.Minute)
	th, err = s.AddDecayingFailure(ctx, key, every, later)
	mustOK(t, err, "AddDecayingFailure 25 min later")
	assertThrottle(t, "25 min later", th, key, 2, later, nil)
	th, err = s.AddDecayingFailure(ctx, key, every, later.Add(5*time.Hour))
	mustOK(t, err, "AddDecayingFailure hours later")
	if th.Failures != 1 {
		t.Fatalf("hours later: count %d, want 1", th.Failures)
	}
	th, err = s.AddDecayingFailure(ctx, key, every, later.Add(4*time.Hour))
	mustOK(t, err, "AddDecayingFailure with a clock behind")
	if th.Failures != 2 {
		t.Fatalf("a clock behind the last failure: count %d, want 2 (nothing decayed)", th.Failures)
	}
}

const (
	reserveEvery = 10 * time.Minute
	reserveLife  = time.Minute
)

// testReserveAttempt: an address with no failures takes as many attempts in
// flight as its free failures, then none until one is settled; a
// reservation leaves the failures and their time alone.
func testReserveAttempt(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	const key = "login:ip:192.0.2.10"
	for i := range 3 {
		th, ok, err := s.ReserveAttempt(ctx, key, 3, reserveEvery, reserveLife, now)
		if err != nil || !ok {
			t.Fatalf("reservation %d of 3 free: %v %v", i+1, ok, err)
		}
		if th.InFlight != i+1 || th.Failures != 0 || !th.InFlightAt.Equal(now) {
			t.Fatalf("reservation %d: %+v, want %d in flight at %v and no failure", i+1, th, i+1, now)
		}
	}
	if _, ok, err := s.ReserveAttempt(ctx, key, 3, reserveEvery, reserveLife, now); err != nil || ok {
		t.Fatalf("a fourth reservation with 3 free: %v %v, want refused", ok, err)
	}
	mustOK(t, s.SettleAttempt(ctx, key, false, reserveEvery, now), "SettleAttempt")
	if _, ok, err := s.ReserveAttempt(ctx, key, 3, reserveEvery, reserveLife, now); err != nil || !ok {
		t.Fatalf("a reservation after one settled: %v %v", ok, err)
	}
	// Charged with failures: the count is the decayed count of failures.
	const failing = "login:ip:192.0.2.11"
	for range 2 {
		_, err := s.AddDecayingFailure(ctx, failing, reserveEvery, now)
		mustOK(t, err, "AddDecayingFailure")
	}
	th, ok, err := s.ReserveAttempt(ctx, failing, 3, reserveEvery, reserveLife, now)
	if err != nil || !ok {
		t.Fatalf("reservation with 2 failures of 3 free: %v %v", ok, err)
	}
	assertSame(t, "a reservation's key", th, storage.Throttle{Key: failing, Failures: 2, LastFailureAt: now, InFlight: 1, InFlightAt: now})
	if _, ok, err := s.ReserveAttempt(ctx, failing, 3, reserveEvery, reserveLife, now); err != nil || ok {
		t.Fatalf("2 failures and 1 in flight of 3 free: %v %v, want refused", ok, err)
	}
	// One period later one failure is left: room for two in flight.
	later := now.Add(reserveEvery)
	mustOK(t, s.SettleAttempt(ctx, failing, false, reserveEvery, later), "SettleAttempt")
	for i := range 2 {
		if _, ok, err := s.ReserveAttempt(ctx, failing, 3, reserveEvery, reserveLife, later); err != nil || !ok {
			t.Fatalf("reservation %d after the decay: %v %v", i+1, ok, err)
		}
	}
	if _, ok, err := s.ReserveAttempt(ctx, failing, 3, reserveEvery, reserveLife, later); err != nil || ok {
		t.Fatalf("1 decayed failure and 2 in flight of 3 free: %v %v, want refused", ok, err)
	}
}

// testReservePastFree: an address past its free failures has one attempt
// in flight at a time.
func testReservePastFree(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	const key = "login:ip:192.0.2.20"
	for range 5 {
		_, err := s.AddDecayingFailure(ctx, key, reserveEvery, now)
		mustOK(t, err, "AddDecayingFailure")
	}
	if _, ok, err := s.ReserveAttempt(ctx, key, 3, reserveEvery, reserveLife, now); err != nil || !ok {
		t.Fatalf("the first reservation past the free failures: %v %v", ok, err)
	}
	if _, ok, err := s.ReserveAttempt(ctx, key, 3, reserveEvery, reserveLife, now); err != nil || ok {
		t.Fatalf("a second one in flight past the free failures: %v %v, want refused", ok, err)
	}
	mustOK(t, s.SettleAttempt(ctx, key, true, reserveEvery, now.Add(time.Second)), "SettleAttempt failed")
	th, err := s.GetThrottle(ctx, key)
	mustOK(t, err, "GetThrottle")
	assertSame(t, "after a failed attempt", th, storage.Throttle{Key: key, Failures: 6, LastFailureAt: now.Add(time.Second), InFlightAt: now})
	if _, ok, err := s.ReserveAttempt(ctx, key, 3, reserveEvery, reserveLife, now.Add(time.Second)); err != nil || !ok {
		t.Fatalf("a reservation once the one in flight settled: %v %v", ok, err)
	}
}

// testReservationLife: reservations older than their life no longer count
// (an instance died before settling them).
func testReservationLife(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	const key = "login:ip:192.0.2.30"
	if _, ok, err := s.ReserveAttempt(ctx, key, 1, reserveEvery, reserveLife, now); err != nil || !ok {
		t.Fatalf("reservation: %v %v", ok, err)
	}
	if _, ok, err := s.ReserveAttempt(ctx, key, 1, reserveEvery, reserveLife, now.Add(reserveLife-time.Millisecond)); err != nil || ok {
		t.Fatalf("within the life of the first: %v %v, want refused", ok, err)
	}
	th, ok, err := s.ReserveAttempt(ctx, key, 1, reserveEvery, reserveLife, now.Add(reserveLife))
	if err != nil || !ok {
		t.Fatalf("once the first outlived its life: %v %v", ok, err)
	}
	if th.InFlight != 1 {
		t.Fatalf("in flight after a stale reservation: %d, want 1 (the stale one forgotten)", th.InFlight)
	}
	if got := th.LiveInFlight(now.Add(2*reserveLife), reserveLife); got != 0 {
		t.Fatalf("LiveInFlight a life later: %d, want 0", got)
	}
}

// testReserveRace: reservations sent together on a fresh key are held to
// the free failures.
func testReserveRace(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	const key, n, free = "login:ip:192.0.2.40", 20, 5
	var wg sync.WaitGroup
	var taken atomic.Int32
	for range n {
		wg.Go(func() {
			_, ok, err := s.ReserveAttempt(ctx, key, free, reserveEvery, reserveLife, now)
			if err != nil {
				t.Errorf("ReserveAttempt: %v", err)
			} else if ok {
				taken.Add(1)
			}
		})
	}
	wg.Wait()
	if taken.Load() != free {
		t.Fatalf("%d of %d simultaneous reservations taken, want the %d free", taken.Load(), n, free)
	}
}

// testSettleAttempt: a failure settled on a key without state counts one;
// a success settled there writes nothing; settling never goes below zero,
// and a charge or a decaying failure leaves the attempts in flight alone.
func testSettleAttempt(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	mustOK(t, s.SettleAttempt(ctx, "login:ip:192.0.2.50", false, reserveEvery, now), "SettleAttempt success without state")
	th, err := s.GetThrottle(ctx, "login:ip:192.0.2.50")
	mustOK(t, err, "GetThrottle")
	assertSame(t, "a success settled without state", th, storage.Throttle{Key: "login:ip:192.0.2.50"})
	const key = "login:ip:192.0.2.51"
	mustOK(t, s.SettleAttempt(ctx, key, true, reserveEvery, now), "SettleAttempt failure without state")
	mustOK(t, s.SettleAttempt(ctx, key, false, reserveEvery, now), "SettleAttempt with none in flight")
	th, err = s.GetThrottle(ctx, key)
	mustOK(t, err, "GetThrottle")
	assertSame(t, "a failure settled without state", th, storage.Throttle{Key: key, Failures: 1, LastFailureAt: now})
	if _, ok, err := s.ReserveAttempt(ctx, key, 30, reserveEvery, reserveLife, now); err != nil || !ok {
		t.Fatalf("ReserveAttempt: %v %v", ok, err)
	}
	th, err = s.AddDecayingFailure(ctx, key, reserveEvery, now.Add(time.Second))
	mustOK(t, err, "AddDecayingFailure")
	assertSame(t, "a decaying failure with one in flight", th, storage.Throttle{Key: key, Failures: 2,
		LastFailureAt: now.Add(time.Second), InFlight: 1, InFlightAt: now})
}
