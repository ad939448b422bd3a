package provider

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

// hangingKeysStore: once hung, a read of the keys never answers; it ends
// only when its caller's context does (a database that hangs).
type hangingKeysStore struct {
	*fuzzStore
	hung atomic.Bool
}

func (s *hangingKeysStore) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	if s.hung.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.fuzzStore.ListSigningKeys(ctx)
}

// TestKeyReloadsThatHangAreLogged: with a database that hangs, a reload
// outlives the request's client that gave up, ends at its own deadline and
// the fault is logged (ended by each client's cancellation, it said nothing
// of the database and was never reported).
func TestKeyReloadsThatHangAreLogged(t *testing.T) {
	st := &hangingKeysStore{fuzzStore: newFuzzStore()}
	var mu sync.Mutex
	var warns []string
	p, keysDue := keyFaultProvider(t, st, warnRecorder{&mu, &warns}, &mu)
	fetch(t, p.Handler(), http.MethodGet, fuzzIssuer+"/keys")
	keysDue()
	p.keys.readTimeout = 50 * time.Millisecond
	st.hung.Store(true)
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond) // the client, or its proxy, gives up
		_, _ = p.keys.signingKey(ctx)
		cancel()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(warns) == 0 {
		t.Errorf("reloads hung on the database, their clients gone: nothing logged")
	}
}
