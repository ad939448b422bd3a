package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

func challengeBehaviours() []behaviour {
	return []behaviour{
		{"ConsumeOnce", testChallengeConsumeOnce},
		{"ExpiredIsDeleted", testChallengeExpired},
		{"ConcurrentConsumersOneWinner", testChallengeRace},
		{"Counted", testChallengeCounted},
		{"TakeWithItsThrottle", testChallengeTake},
		{"ConcurrentTakersOneWinner", testChallengeTakeRace},
		{"ReceiptUntilItsExpiry", testChallengeReceipt},
	}
}

// testChallengeReceipt: a queued recovery job records its receipt, which
// is there until its expiry, excluded; one recorded again keeps the later
// expiry; an unknown one, or one whose job the count dropped, is not there.
func testChallengeReceipt(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	has := func(id string, at time.Time) bool {
		t.Helper()
		ok, err := s.ChallengeReceipt(ctx, id, at)
		mustOK(t, err, "ChallengeReceipt "+id)
		return ok
	}
	withReceipt := func(jobID, id string, expires time.Time) storage.RecoveryJob {
		j := newRecoveryJob(jobID, "agent@example.fr", now)
		j.Receipt = storage.ChallengeReceipt{ID: id, ExpiresAt: expires}
		return j
	}
	expires := now.Add(2 * time.Minute)
	mustOK(t, enqueue(s, ctx, withReceipt("job-r1", "receipt-1", expires)), "EnqueueRecoveryJob with a receipt")
	if !has("receipt-1", now) || !has("receipt-1", expires.Add(-time.Millisecond)) {
		t.Error("receipt not there before its expiry")
	}
	if has("receipt-1", expires) || has("receipt-unknown", now) {
		t.Error("a receipt at its expiry, or an unknown one, is there")
	}
	// Recorded again: the later expiry stands, whichever comes second.
	mustOK(t, enqueue(s, ctx, withReceipt("job-r2", "receipt-1", expires.Add(time.Minute))), "receipt later")
	mustOK(t, enqueue(s, ctx, withReceipt("job-r3", "receipt-1", expires)), "receipt earlier")
	if !has("receipt-1", expires.Add(30*time.Second)) || has("receipt-1", expires.Add(time.Minute)) {
		t.Error("a receipt recorded again does not keep the later expiry")
	}
	// Over the count nothing is queued, and no receipt either: the request
	// was not accepted.
	const key = "recovery:ip:192.0.2.77"
	for i, id := range []string{"receipt-counted", "receipt-dropped"} {
		n, err := s.EnqueueRecoveryJob(ctx, key, time.Hour, 1, withReceipt(fmt.Sprintf("job-c%d", i), id, expires), newAuditEvent("recovery.requested", "agent@example.fr", now))
		mustOK(t, err, "EnqueueRecoveryJob counted")
		if n != int64(i+1) {
			t.Fatalf("count %d, want %d", n, i+1)
		}
	}
	if !has("receipt-counted", now) || has("receipt-dropped", now) {
		t.Error("a receipt follows its job: recorded when queued, not when dropped")
	}
}

// testChallengeTake: TakeChallenge spends the challenge and gives it back
// with the throttle's state; an unknown, spent or expired challenge is nil,
// and the throttle comes all the same (zero with its key when unset).
func testChallengeTake(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	const key = "captcha:wrong:192.0.2.7"
	live := newChallenge("ch-live", now.Add(17*time.Microsecond))
	addChallenge(t, s, live)

	c, th, err := s.TakeChallenge(ctx, "ch-live", key, now)
	mustOK(t, err, "TakeChallenge")
	if c == nil {
		t.Fatal("TakeChallenge: no challenge, want the live one")
	}
	assertSame(t, "challenge taken", *c, live)
	assertSame(t, "throttle never set", th, storage.Throttle{Key: key})

	wrong, err := addFailure(ctx, s, key, 0, now.Add(time.Second))
	mustOK(t, err, "addFailure")
	wrong, err = addFailure(ctx, s, key, 2, now.Add(2*time.Second))
	mustOK(t, err, "addFailure locking")
	for _, id := range []string{"ch-live", "ch-unknown", ""} {
		c, th, err = s.TakeChallenge(ctx, id, key, now.Add(3*time.Second))
		mustOK(t, err, "TakeChallenge "+id)
		if c != nil {
			t.Fatalf("TakeChallenge %q: %+v, want none", id, *c)
		}
		assertSame(t, "throttle with "+id, th, wrong)
	}
	if wrong.Failures != 2 || wrong.LockedAt == nil {
		t.Fatalf("throttle after two failures: %+v", wrong)
	}
	fresh := newChallenge("ch-fresh", now.Add(4*time.Second))
	addChallenge(t, s, fresh)
	c, th, err = s.TakeChallenge(ctx, "ch-fresh", key, now.Add(5*time.Second))
	mustOK(t, err, "TakeChallenge with both")
	if c == nil {
		t.Fatal("TakeChallenge with a throttle set: no challenge, want the fresh one")
	}
	assertSame(t, "challenge taken with its throttle", *c, fresh)
	assertSame(t, "throttle taken with the challenge", th, wrong)

	old := newChallenge("ch-old", now)
	addChallenge(t, s, old)
	c, th, err = s.TakeChallenge(ctx, "ch-old", key, old.ExpiresAt)
	mustOK(t, err, "TakeChallenge expired")
	if c != nil {
		t.Fatalf("TakeChallenge of an expired challenge: %+v, want none", *c)
	}
	assertSame(t, "throttle with an expired challenge", th, wrong)
	_, err = s.ConsumeChallenge(ctx, "ch-old", now)
	wantErr(t, err, storage.ErrNotFound, "ConsumeChallenge after an expired take (deleted all the same)")
}

// testChallengeTakeRace: of concurrent takers of one challenge, one gets it.
func testChallengeTakeRace(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addChallenge(t, s, newChallenge("ch-1", now))
	var mu sync.Mutex
	got := 0
	const key = "captcha:wrong:192.0.2.7"
	errs := race(8, func(int) error {
		c, th, err := s.TakeChallenge(ctx, "ch-1", key, now)
		if err == nil && th.Key != key {
			return fmt.Errorf("throttle of key %q, want %q", th.Key, key)
		}
		if c != nil {
			mu.Lock()
			got++
			mu.Unlock()
		}
		return err
	})
	for i, err := range errs {
		mustOK(t, err, fmt.Sprintf("TakeChallenge %d", i))
	}
	if got != 1 {
		t.Fatalf("%d takers got the challenge, want 1", got)
	}
}

// testChallengeCounted: CreateCountedChallenge counts on the same counter as
// HitCounter and stores the challenge only while the count is within max.
func testChallengeCounted(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	const key, window, max = "captcha:new:192.0.2.7", time.Hour, 2
	for i, want := range []int64{1, 2, 3} {
		c := newChallenge(fmt.Sprintf("counted-%d", i), now)
		n, err := s.CreateCountedChallenge(ctx, key, window, max, c, now)
		mustOK(t, err, "CreateCountedChallenge")
		if n != want {
			t.Fatalf("hit %d: count %d, want %d", i+1, n, want)
		}
		got, err := s.ConsumeChallenge(ctx, c.ID, now)
		if n <= max {
			mustOK(t, err, "ConsumeChallenge of a counted challenge within max")
			assertSame(t, "counted challenge", got, c)
		} else {
			wantErr(t, err, storage.ErrNotFound, "the challenge of a hit over max")
		}
	}
	n, err := s.HitCounter(ctx, key, window, now)
	mustOK(t, err, "HitCounter")
	if n != 4 {
		t.Fatalf("HitCounter after three counted challenges: %d, want 4", n)
	}
	// A new window counts from 1 again, and stores.
	later := now.Add(window)
	c := newChallenge("counted-later", later)
	n, err = s.CreateCountedChallenge(ctx, key, window, max, c, later)
	mustOK(t, err, "CreateCountedChallenge in a new window")
	if n != 1 {
		t.Fatalf("first hit of a new window: %d, want 1", n)
	}
	_, err = s.ConsumeChallenge(ctx, c.ID, later)
	mustOK(t, err, "ConsumeChallenge in a new window")
}

func testChallengeConsumeOnce(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	image := newChallenge("ch-1", now)
	question := newChallenge("ch-2", now.Add(789*time.Microsecond))
	question.Kind = storage.ChallengeQuestion
	addChallenge(t, s, image)
	addChallenge(t, s, question)

	got, err := s.ConsumeChallenge(ctx, "ch-1", now.Add(time.Minute))
	mustOK(t, err, "ConsumeChallenge")
	assertSame(t, "image challenge", got, image)
	_, err = s.ConsumeChallenge(ctx, "ch-1", now.Add(time.Minute))
	wantErr(t, err, storage.ErrNotFound, "ConsumeChallenge a second time")

	got, err = s.ConsumeChallenge(ctx, "ch-2", now.Add(time.Minute))
	mustOK(t, err, "ConsumeChallenge question")
	assertSame(t, "question challenge", got, question)
	_, err = s.ConsumeChallenge(ctx, "ch-unknown", now)
	wantErr(t, err, storage.ErrNotFound, "ConsumeChallenge unknown")
}

func testChallengeExpired(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	c := newChallenge("ch-1", now)
	addChallenge(t, s, c)
	_, err := s.ConsumeChallenge(ctx, c.ID, c.ExpiresAt.Add(time.Second))
	wantErr(t, err, storage.ErrNotFound, "ConsumeChallenge expired")
	// It was deleted: even at a time when it was valid, it is gone.
	_, err = s.ConsumeChallenge(ctx, c.ID, now)
	wantErr(t, err, storage.ErrNotFound, "ConsumeChallenge after an expired attempt")
}

func testChallengeRace(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	c := newChallenge("ch-1", now)
	addChallenge(t, s, c)
	got := make([]storage.Challenge, 20)
	errs := race(20, func(i int) error {
		var err error
		got[i], err = s.ConsumeChallenge(ctx, c.ID, now.Add(time.Second))
		return err
	})
	w := oneWinner(t, "ConsumeChallenge", errs, storage.ErrNotFound)
	assertSame(t, fmt.Sprintf("challenge returned to the winner %d", w), got[w], c)
}
