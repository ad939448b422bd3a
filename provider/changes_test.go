package provider

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/sqlite"
)

// fakeGenerations answers the watcher with what the test sets.
type fakeGenerations struct {
	g   storage.ChangeGenerations
	err error
}

func (f *fakeGenerations) ChangeGenerations(context.Context) (storage.ChangeGenerations, error) {
	return f.g, f.err
}

// The watcher drops the caches at its first read, then only those whose
// generation moved; a failed read drops nothing and forgets nothing.
func TestChangeWatcherDropsWhatMoved(t *testing.T) {
	ctx := t.Context()
	gens := &fakeGenerations{g: storage.ChangeGenerations{Clients: 4, SigningKeys: 9}}
	var clients, keys int
	w := &changeWatcher{store: gens, log: slog.New(slog.DiscardHandler),
		onClients: []func(){func() { clients++ }}, onKeys: []func(){func() { keys++ }}}
	step := func(what string, wantClients, wantKeys int, wantErr bool) {
		t.Helper()
		clients, keys = 0, 0
		if err := w.check(ctx); (err != nil) != wantErr {
			t.Fatalf("%s: check error %v, want error=%v", what, err, wantErr)
		}
		if clients != wantClients || keys != wantKeys {
			t.Fatalf("%s: dropped clients %d times and keys %d times, want %d and %d", what, clients, keys, wantClients, wantKeys)
		}
	}
	step("first read", 1, 1, false)
	step("nothing moved", 0, 0, false)
	gens.g.Clients = 5
	step("clients moved", 1, 0, false)
	gens.g.SigningKeys = 10
	step("keys moved", 0, 1, false)
	gens.err = errors.New("database down")
	gens.g = storage.ChangeGenerations{Clients: 6, SigningKeys: 11}
	step("database down", 0, 0, true)
	gens.err = nil
	step("database back, both moved meanwhile", 1, 1, false)
	// A database restored from an older backup has smaller numbers: they
	// moved all the same.
	gens.g = storage.ChangeGenerations{Clients: 2, SigningKeys: 11}
	step("clients went back", 1, 0, false)
}

// blockingClients is a store whose GetClient answers what it held when the
// read began, but only once released: a read that crosses a change.
type blockingClients struct {
	countingClients
	started, release chan struct{}
}

func (s *blockingClients) GetClient(ctx context.Context, id string) (storage.Client, error) {
	c, err := s.countingClients.GetClient(ctx, id)
	s.started <- struct{}{}
	<-s.release
	return c, err
}

// A read that began before an invalidation returns what it read but is not
// kept: the change that caused the invalidation may have come after it.
func TestClientCacheKeepsNoReadThatCrossedAnInvalidation(t *testing.T) {
	store := &blockingClients{countingClients: countingClients{clients: map[string]storage.Client{}},
		started: make(chan struct{}), release: make(chan struct{})}
	store.set(storage.Client{ID: "app", Name: "v1"})
	cache := newClientCache(store, time.Now, time.Hour)
	var wg sync.WaitGroup
	wg.Go(func() {
		if c, err := cache.get(context.Background(), "app"); err != nil || c.Name != "v1" {
			t.Errorf("read under way: %+v, %v", c, err)
		}
	})
	<-store.started // it has read v1
	store.set(storage.Client{ID: "app", Name: "v2"})
	cache.invalidate()
	close(store.release)
	wg.Wait()

	store.started = make(chan struct{}, 1)
	c, err := cache.get(context.Background(), "app")
	if err != nil || c.Name != "v2" {
		t.Fatalf("after the invalidation: %+v, %v; want v2 read again", c, err)
	}
}

// Changes made by another process on the same database (here a second
// store on the SQLite file, as `idp client remove` or `idp keys rotate`
// would be) reach this instance's caches at the watcher's next read, while
// its clock stands still: the triggers, not the TTLs, carry them.
func TestChangesMadeElsewhereReachTheCaches(t *testing.T) {
	ctx := t.Context()
	clk := &testClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	p, _, other, elsewhere := twoInstances(t, clk.now)
	if err := p.changes.check(ctx); err != nil {
		t.Fatal(err)
	}

	app := storage.Client{ID: "portail", Name: "Portail", RedirectURIs: []string{"https://portail.example.fr/cb"}, CreatedAt: clk.t}
	if err := elsewhere.CreateClient(ctx, app); err != nil {
		t.Fatal(err)
	}
	if _, err := p.storage.GetClientByClientID(ctx, "portail"); err != nil {
		t.Fatalf("a client registered elsewhere is not read at once: %v", err)
	}
	if !p.origins.allowed(ctx, "https://portail.example.fr") {
		t.Fatal("the new client's origin is not allowed")
	}
	kids := func() []string {
		keys, err := p.keys.publicKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, k := range keys {
			ids = append(ids, k.ID())
		}
		return ids
	}
	if n := len(kids()); n != 1 {
		t.Fatalf("%d keys published, want 1", n)
	}

	// Elsewhere: the client goes, and the keys are rotated.
	if err := elsewhere.DeleteClient(ctx, "portail"); err != nil {
		t.Fatal(err)
	}
	if rotated, err := other.RotateKeys(ctx, true); err != nil || !rotated {
		t.Fatalf("rotation elsewhere: %v, %v", rotated, err)
	}
	// Until the watcher reads, this instance serves what it cached: that is
	// the cache doing its work, and shows the read below is what changes it.
	if _, err := p.storage.GetClientByClientID(ctx, "portail"); err != nil {
		t.Fatalf("before the watcher's read: %v, want the cached client", err)
	}
	if n := len(kids()); n != 1 {
		t.Fatalf("before the watcher's read: %d keys, want the cached 1", n)
	}

	if err := p.changes.check(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := p.storage.GetClientByClientID(ctx, "portail"); err == nil {
		t.Fatalf("a client removed elsewhere is still served: %v", c.GetID())
	}
	if p.origins.allowed(ctx, "https://portail.example.fr") {
		t.Fatal("the removed client's origin is still allowed")
	}
	if n := len(kids()); n != 2 {
		t.Fatalf("after a rotation elsewhere: %d keys published, want 2", n)
	}
}

// holdingStore holds its next ListSigningKeys or ListClients, once armed,
// after it has read: a read that crosses a change made meanwhile.
type holdingStore struct {
	*sqlite.Store
	mu               sync.Mutex
	armed            bool
	started, release chan struct{}
}

func (h *holdingStore) arm() {
	h.mu.Lock()
	h.armed, h.started, h.release = true, make(chan struct{}), make(chan struct{})
	h.mu.Unlock()
}

func (h *holdingStore) hold() {
	h.mu.Lock()
	armed := h.armed
	h.armed = false
	h.mu.Unlock()
	if armed {
		close(h.started)
		<-h.release
	}
}

func (h *holdingStore) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	keys, err := h.Store.ListSigningKeys(ctx)
	h.hold()
	return keys, err
}

func (h *holdingStore) ListClients(ctx context.Context) ([]storage.Client, error) {
	clients, err := h.Store.ListClients(ctx)
	h.hold()
	return clients, err
}

// twoInstances are two providers on one SQLite file with the clock now, the
// first over a holding store.
func twoInstances(t *testing.T, now func() time.Time) (mine *Provider, held *holdingStore, other *Provider, elsewhere *sqlite.Store) {
	t.Helper()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "idp.db")
	open := func() *sqlite.Store {
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	held, elsewhere = &holdingStore{Store: open()}, open()
	cfg := Config{Issuer: "https://connexion.example.fr", CodeTTL: time.Minute, AccessTTL: 15 * time.Minute,
		IDTokenTTL: 15 * time.Minute, RefreshTTL: time.Hour, AuthRequestTTL: 30 * time.Minute, KeyAlgorithm: "ES256",
		CryptoKey: [32]byte{1}, KeyEncryptionKey: [32]byte{2}, SessionCookieName: "idp_session"}
	var err error
	if mine, err = New(ctx, held, cfg, now, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if other, err = New(ctx, elsewhere, cfg, now, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	return mine, held, other, elsewhere
}

// A key reload that read the table before a rotation, and ends after the
// reload that followed the rotation's invalidation, does not put the old
// key set back.
func TestKeyReloadAcrossAnInvalidationKeepsTheNewerSet(t *testing.T) {
	ctx := t.Context()
	p, held, other, _ := twoInstances(t, time.Now)
	held.arm()
	done := make(chan error)
	go func() { done <- p.keys.reload(ctx) }() // reads one key, then waits
	<-held.started
	if rotated, err := other.RotateKeys(ctx, true); err != nil || !rotated {
		t.Fatalf("rotation elsewhere: %v, %v", rotated, err)
	}
	p.keys.invalidate()
	if err := p.keys.reload(ctx); err != nil { // reads both keys
		t.Fatal(err)
	}
	close(held.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	keys, err := p.keys.publicKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("%d keys published after the older reload ended last, want the 2 of the newer one", len(keys))
	}
}

// Dropping the CORS origins does not wait for a listing under way, and that
// listing, begun before the change, is not kept.
func TestOriginsInvalidatedDuringAListing(t *testing.T) {
	ctx := t.Context()
	p, held, _, elsewhere := twoInstances(t, time.Now)
	held.arm()
	done := make(chan bool)
	go func() { done <- p.origins.allowed(ctx, "https://portail.example.fr") }()
	<-held.started // listed no client
	app := storage.Client{ID: "portail", Name: "Portail", RedirectURIs: []string{"https://portail.example.fr/cb"}, CreatedAt: time.Now()}
	if err := elsewhere.CreateClient(ctx, app); err != nil {
		t.Fatal(err)
	}
	invalidated := make(chan struct{})
	go func() { p.origins.invalidate(); close(invalidated) }()
	select {
	case <-invalidated:
	case <-time.After(5 * time.Second):
		t.Fatal("invalidate waited for the listing under way")
	}
	close(held.release)
	if <-done {
		t.Fatal("the listing begun before the client existed allowed its origin")
	}
	if !p.origins.allowed(ctx, "https://portail.example.fr") {
		t.Fatal("after the invalidation, the new client's origin is still refused")
	}
}
