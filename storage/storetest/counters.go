package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

func counterBehaviours() []behaviour {
	return []behaviour{
		{"CountsWithinWindowAndResets", testCounterWindow},
		{"ConcurrentHitsCountedOnce", testCounterRace},
	}
}

func testCounterWindow(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	hit := func(key string, at time.Duration, want int64) {
		t.Helper()
		got, err := s.HitCounter(ctx, key, time.Minute, now.Add(at))
		mustOK(t, err, "HitCounter")
		if got != want {
			t.Errorf("HitCounter(%s) at +%v = %d, want %d", key, at, got, want)
		}
	}
	hit("login:agent@example.fr", 0, 1)
	hit("login:agent@example.fr", 10*time.Second, 2)
	hit("login:agent@example.fr", 20*time.Second, 3)
	hit("login:192.0.2.7", 20*time.Second, 1) // keys are independent
	// The window that began at +0 ended at +60 s: a new one begins at the
	// first hit after it, +61 s, and lasts until +121 s (windows are not
	// aligned on the clock's minutes).
	hit("login:agent@example.fr", 61*time.Second, 1)
	hit("login:agent@example.fr", 120*time.Second, 2)
	hit("login:agent@example.fr", 122*time.Second, 1)
	hit("login:192.0.2.7", 30*time.Second, 2)
}

func testCounterRace(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	const n = 50
	counts := make([]int64, n)
	errs := race(n, func(i int) error {
		var err error
		counts[i], err = s.HitCounter(ctx, "recovery:192.0.2.7", time.Hour, now)
		return err
	})
	seen := make(map[int64]int)
	for i, err := range errs {
		mustOK(t, err, fmt.Sprintf("HitCounter in goroutine %d", i))
		seen[counts[i]]++
	}
	for c := int64(1); c <= n; c++ {
		if seen[c] != 1 {
			t.Errorf("count %d returned %d times, want exactly once (all counts: %v)", c, seen[c], counts)
		}
	}
	got, err := s.HitCounter(ctx, "recovery:192.0.2.7", time.Hour, now)
	mustOK(t, err, "HitCounter after the race")
	if got != n+1 {
		t.Errorf("HitCounter after %d concurrent hits = %d, want %d", n, got, n+1)
	}
}
