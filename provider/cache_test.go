package provider

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

// countingClients is a store whose clients live in a map and whose GetClient
// calls are counted.
type countingClients struct {
	storage.Store
	mu      sync.Mutex
	clients map[string]storage.Client
	reads   int
}

func (s *countingClients) GetClient(_ context.Context, id string) (storage.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	c, ok := s.clients[id]
	if !ok {
		return storage.Client{}, storage.ErrNotFound
	}
	return c, nil
}

func (s *countingClients) set(c storage.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[c.ID] = c
}

func (s *countingClients) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.clients, id)
}

func (s *countingClients) readCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

type testClock struct{ t time.Time }

func (c *testClock) now() time.Time { return c.t }

func TestClientCache(t *testing.T) {
	ctx := context.Background()
	store := &countingClients{clients: map[string]storage.Client{}}
	clk := &testClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	cache := newClientCache(store, clk.now, 10*time.Second)

	// A client never seen is read from the store; an unknown one is not
	// remembered, so registering it makes it usable at once.
	if _, err := cache.get(ctx, "app"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown client: %v", err)
	}
	store.set(storage.Client{ID: "app", Name: "v1"})
	c, err := cache.get(ctx, "app")
	if err != nil || c.Name != "v1" {
		t.Fatalf("client registered after a miss: %+v, %v", c, err)
	}

	// Within the TTL, every request is served from memory.
	before := store.readCount()
	for range 100 {
		if _, err := cache.get(ctx, "app"); err != nil {
			t.Fatal(err)
		}
	}
	if n := store.readCount() - before; n != 0 {
		t.Fatalf("%d store reads within the TTL, want 0", n)
	}

	// A change made elsewhere is seen once the TTL has run out.
	store.set(storage.Client{ID: "app", Name: "v2"})
	clk.t = clk.t.Add(9 * time.Second)
	if c, _ := cache.get(ctx, "app"); c.Name != "v1" {
		t.Fatalf("before the TTL: %q, want the cached v1", c.Name)
	}
	clk.t = clk.t.Add(time.Second)
	if c, _ := cache.get(ctx, "app"); c.Name != "v2" {
		t.Fatalf("after the TTL: %q, want v2", c.Name)
	}

	// A removed client disappears after the TTL, and stays gone.
	store.remove("app")
	clk.t = clk.t.Add(10 * time.Second)
	for range 2 {
		if _, err := cache.get(ctx, "app"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("removed client: %v", err)
		}
	}

	// A clock set back does not extend an entry's life.
	store.set(storage.Client{ID: "app", Name: "v3"})
	if c, _ := cache.get(ctx, "app"); c.Name != "v3" {
		t.Fatalf("re-registered: %q", c.Name)
	}
	store.set(storage.Client{ID: "app", Name: "v4"})
	clk.t = clk.t.Add(-time.Minute)
	if c, _ := cache.get(ctx, "app"); c.Name != "v4" {
		t.Fatalf("after the clock went back: %q, want a fresh read", c.Name)
	}
}

func TestClientCacheStoreError(t *testing.T) {
	boom := errors.New("database down")
	store := &failingClients{err: boom}
	cache := newClientCache(store, time.Now, time.Minute)
	if _, err := cache.get(context.Background(), "app"); !errors.Is(err, boom) {
		t.Fatalf("got %v, want the store's error", err)
	}
	if len(cache.entries) != 0 {
		t.Fatal("an error was cached")
	}
}

type failingClients struct {
	storage.Store
	err error
}

func (s *failingClients) GetClient(context.Context, string) (storage.Client, error) {
	return storage.Client{}, s.err
}
