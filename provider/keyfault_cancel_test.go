package provider

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/caf-extranet/idp/storage"
)

type warnRecorder struct {
	mu    *sync.Mutex
	warns *[]string
}

func (w warnRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (w warnRecorder) Handle(_ context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		s := r.Message
		r.Attrs(func(a slog.Attr) bool { s += " " + a.String(); return true })
		w.mu.Lock()
		*w.warns = append(*w.warns, s)
		w.mu.Unlock()
	}
	return nil
}
func (w warnRecorder) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w warnRecorder) WithGroup(string) slog.Handler      { return w }

// ctxKeysStore answers a done context's error first, as pgx does.
type ctxKeysStore struct{ *faultyKeysStore }

func (s ctxKeysStore) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.faultyKeysStore.ListSigningKeys(ctx)
}

// TestKeyFaultAfterACancelledReloadIsLogged: the reload falls to whichever
// request comes when the cache is due; one whose browser has left still
// reloads (on a context of its own), and the real fault that follows is
// logged.
func TestKeyFaultAfterACancelledReloadIsLogged(t *testing.T) {
	fk := &faultyKeysStore{fuzzStore: newFuzzStore()}
	st := ctxKeysStore{fk}
	var mu sync.Mutex
	var warns []string
	p, keysDue := keyFaultProvider(t, st, warnRecorder{&mu, &warns}, &mu)
	fetch(t, p.Handler(), http.MethodGet, fuzzIssuer+"/keys")
	keysDue()
	gone, cancel := context.WithCancel(context.Background())
	cancel() // the browser left as its request reloaded the keys
	if _, err := p.keys.signingKey(gone); err != nil {
		t.Fatal(err)
	}
	fk.fail(errors.New("connection refused"))
	keysDue() // due again, now that the database fails
	for range 10 {
		if _, err := p.keys.signingKey(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, w := range warns {
		if strings.Contains(w, "connection refused") {
			return
		}
	}
	t.Errorf("database fault never logged; warnings: %q", warns)
}
