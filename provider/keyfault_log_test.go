package provider

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
)

type warnCounter struct {
	n *atomic.Int64
}

func (w warnCounter) Enabled(_ context.Context, l slog.Level) bool { return true }
func (w warnCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		w.n.Add(1)
	}
	return nil
}
func (w warnCounter) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w warnCounter) WithGroup(string) slog.Handler      { return w }

// TestKeyFaultIsLoggedOncePerStreak: through a database fault the keys
// held serve every request; the fault is logged once, not once per key set,
// discovery or signature, as the change watcher logs its own.
func TestKeyFaultIsLoggedOncePerStreak(t *testing.T) {
	st := &faultyKeysStore{fuzzStore: newFuzzStore()}
	var mu sync.Mutex
	var warns atomic.Int64
	p, keysDue := keyFaultProvider(t, st, warnCounter{&warns}, &mu)
	h := p.Handler()
	fetch(t, h, http.MethodGet, fuzzIssuer+"/keys")
	st.fail(errors.New("connection refused"))
	keysDue()
	warns.Store(0)
	const requests = 50
	for range requests {
		if rec := fetch(t, h, http.MethodGet, fuzzIssuer+"/keys"); rec.Code != http.StatusOK {
			t.Fatalf("key set through the fault: %d", rec.Code)
		}
		if _, err := p.keys.signingKey(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := warns.Load(); n > 1 {
		t.Errorf("one fault, %d requests: %d warnings logged (want one per streak, as changeWatcher)", requests, n)
	}
}
