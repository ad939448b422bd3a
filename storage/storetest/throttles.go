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
		{"ReserveWithinTheRoom", testReserveAttempt},
		{"ReservePastTheFree", testReservePastFree},
		{"ReservationsLapseOneByOne", testReservationLife},
		{"ConcurrentReservationsHeldToTheRoom", testReserveRace},
		{"SettleEndsItsOwnReservation", testSettleAttempt},
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

var reserveLimit = storage.AttemptLimit{Free: 3, PastFree: 1, Every: 10 * time.Minute, Life: time.Minute}

// reserve reserves attempt id on key and checks whether it was taken.
func reserve(t *testing.T, s storage.Store, key, id string, limit storage.AttemptLimit, now time.Time, want bool) (storage.Throttle, int) {
	t.Helper()
	th, inFlight, ok, err := s.ReserveAttempt(t.Context(), key, id, limit, now)
	mustOK(t, err, "ReserveAttempt "+id)
	if ok != want {
		t.Fatalf("reservation %s at %v: taken %v, want %v (%d in flight, %+v)", id, now, ok, want, inFlight, th)
	}
	return th, inFlight
}

// testReserveAttempt: an address takes as many attempts in flight as its
// free failures leave (decayed), then none until one is settled; a
// reservation leaves the failures and their time alone.
func testReserveAttempt(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	const key = "password:ip:192.0.2.10"
	for i := range 3 {
		th, n := reserve(t, s, key, fmt.Sprintf("a%d", i), reserveLimit, now, true)
		if n != i+1 {
			t.Fatalf("reservation %d: %d in flight", i+1, n)
		}
		assertSame(t, "a key without failures", th, storage.Throttle{Key: key})
	}
	reserve(t, s, key, "a3", reserveLimit, now, false)
	mustOK(t, s.SettleAttempt(ctx, key, "a0", false, reserveLimit.Every, now), "SettleAttempt")
	reserve(t, s, key, "a4", reserveLimit, now, true)
	th, err := s.GetThrottle(ctx, key)
	mustOK(t, err, "GetThrottle")
	assertSame(t, "reservations and a success settled", th, storage.Throttle{Key: key})

	const failing = "password:ip:192.0.2.11"
	for range 2 {
		_, err := s.AddDecayingFailure(ctx, failing, reserveLimit.Every, now)
		mustOK(t, err, "AddDecayingFailure")
	}
	th, n := reserve(t, s, failing, "b0", reserveLimit, now, true)
	assertSame(t, "a key with failures, reserved", th, storage.Throttle{Key: failing, Failures: 2, LastFailureAt: now})
	if n != 1 {
		t.Fatalf("in flight: %d, want 1", n)
	}
	reserve(t, s, failing, "b1", reserveLimit, now, false)
	// One period later one failure is left: room for two.
	later := now.Add(reserveLimit.Every)
	reserve(t, s, failing, "b2", reserveLimit, later.Add(-reserveLimit.Life/2), true)
	reserve(t, s, failing, "b3", reserveLimit, later.Add(-reserveLimit.Life/2), false)
}

// testReservePastFree: past its free failures an address has PastFree
// attempts in flight; a failure settled counts.
func testReservePastFree(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	const key = "password:ip:192.0.2.20"
	for range 5 {
		_, err := s.AddDecayingFailure(ctx, key, reserveLimit.Every, now)
		mustOK(t, err, "AddDecayingFailure")
	}
	limit := reserveLimit
	limit.PastFree = 2
	reserve(t, s, key, "c0", limit, now, true)
	reserve(t, s, key, "c1", limit, now, true)
	reserve(t, s, key, "c2", limit, now, false)
	mustOK(t, s.SettleAttempt(ctx, key, "c0", true, limit.Every, now.Add(time.Second)), "SettleAttempt failed")
	th, err := s.GetThrottle(ctx, key)
	mustOK(t, err, "GetThrottle")
	assertSame(t, "after a failed attempt", th, storage.Throttle{Key: key, Failures: 6, LastFailureAt: now.Add(time.Second)})
	reserve(t, s, key, "c3", limit, now.Add(time.Second), true)
}

// testReservationLife: a reservation never settled (an instance died
// mid-hash) lapses after its life, by itself, even while the address keeps
// reserving; its late settlement ends no other.
func testReservationLife(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	const key = "password:ip:192.0.2.30"
	limit := storage.AttemptLimit{Free: 2, PastFree: 1, Every: 10 * time.Minute, Life: time.Minute}
	reserve(t, s, key, "leaked", limit, now, true)
	// A busy address: one attempt every 10 s, each settled.
	for i := range 6 {
		at := now.Add(time.Duration(i+1) * 10 * time.Second)
		reserve(t, s, key, fmt.Sprintf("busy%d", i), limit, at, true)
		mustOK(t, s.SettleAttempt(ctx, key, fmt.Sprintf("busy%d", i), false, limit.Every, at), "SettleAttempt")
	}
	// Within the leaked one's life: room for one only.
	at := now.Add(limit.Life - time.Millisecond)
	reserve(t, s, key, "d0", limit, at, true)
	reserve(t, s, key, "d1", limit, at, false)
	mustOK(t, s.SettleAttempt(ctx, key, "d0", false, limit.Every, at), "SettleAttempt d0")
	// Its life over: room for two.
	at = now.Add(limit.Life)
	reserve(t, s, key, "e0", limit, at, true)
	reserve(t, s, key, "e1", limit, at, true)
	reserve(t, s, key, "e2", limit, at, false)
	// The leaked one's late settlement (and a second one of e0's) ends
	// neither e0's nor e1's.
	mustOK(t, s.SettleAttempt(ctx, key, "leaked", false, limit.Every, at), "the leaked one's late settlement")
	reserve(t, s, key, "e3", limit, at, false)
	mustOK(t, s.SettleAttempt(ctx, key, "e0", false, limit.Every, at), "SettleAttempt e0")
	mustOK(t, s.SettleAttempt(ctx, key, "e0", false, limit.Every, at), "SettleAttempt e0 again")
	reserve(t, s, key, "e4", limit, at, true)
	reserve(t, s, key, "e5", limit, at, false)
	// The purge forgets reservations long past any life.
	purgeAt := at.Add(storage.ReservationForgetAfter + time.Second)
	_, err := s.PurgeExpired(ctx, purgeAt, time.Time{}, time.Time{})
	mustOK(t, err, "PurgeExpired")
	forever := limit
	forever.Life = 10 * storage.ReservationForgetAfter
	reserve(t, s, key, "f0", forever, purgeAt, true)
	reserve(t, s, key, "f1", forever, purgeAt, true)
	reserve(t, s, key, "f2", forever, purgeAt, false)
}

// testReserveRace: reservations sent together are held to the room
// (several rounds: one overtaking another is a matter of timing).
func testReserveRace(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	const n = 40
	limit := storage.AttemptLimit{Free: 5, PastFree: 1, Every: 10 * time.Minute, Life: time.Minute}
	for round := range 10 {
		key := fmt.Sprintf("password:ip:192.0.2.%d", 100+round)
		var wg sync.WaitGroup
		var taken atomic.Int32
		gate := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-gate
				_, _, ok, err := s.ReserveAttempt(ctx, key, fmt.Sprintf("r%d-%d", round, i), limit, now)
				if err != nil {
					t.Errorf("ReserveAttempt: %v", err)
				} else if ok {
					taken.Add(1)
				}
			})
		}
		close(gate)
		wg.Wait()
		if taken.Load() != int32(limit.Free) {
			t.Fatalf("round %d: %d of %d simultaneous reservations taken, want the %d free", round, taken.Load(), n, limit.Free)
		}
	}
}

// testSettleAttempt: a failure settled on a key without state counts one;
// a success settled there writes nothing; a settlement of an unknown
// reservation is no error.
func testSettleAttempt(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	mustOK(t, s.SettleAttempt(ctx, "password:ip:192.0.2.50", "unknown", false, reserveLimit.Every, now), "SettleAttempt success without state")
	th, err := s.GetThrottle(ctx, "password:ip:192.0.2.50")
	mustOK(t, err, "GetThrottle")
	assertSame(t, "a success settled without state", th, storage.Throttle{Key: "password:ip:192.0.2.50"})
	const key = "password:ip:192.0.2.51"
	mustOK(t, s.SettleAttempt(ctx, key, "unknown", true, reserveLimit.Every, now), "SettleAttempt failure without state")
	th, err = s.GetThrottle(ctx, key)
	mustOK(t, err, "GetThrottle")
	assertSame(t, "a failure settled without state", th, storage.Throttle{Key: key, Failures: 1, LastFailureAt: now})
}
