package provider

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/caf-extranet/idp/storage"
)

// clientCacheTTL bounds how long an instance trusts a client it has read
// when no change reaches it: changes themselves are seen within a second
// (changeWatcher drops the cache when the clients' generation moves). The
// TTL is the safety net for a change the generations cannot show, such as a
// database restored from a backup. A token request reads its client two or
// three times; clients change a few times a year. A client never seen is
// read at once, so a new registration works immediately everywhere.
const clientCacheTTL = 5 * time.Minute

// clientCache keeps the registered clients an instance has read. Only
// clients that exist are kept, so unknown ids (anyone can send them) cost a
// query each but no memory.
type clientCache struct {
	store storage.Store
	now   func() time.Time
	ttl   time.Duration

	mu      sync.RWMutex
	entries map[string]cachedClient
	// epoch counts invalidations: a read that began before one may have
	// seen the client as it was before the change, so it is not kept.
	epoch uint64
}

type cachedClient struct {
	c      storage.Client
	loaded time.Time
}

func newClientCache(store storage.Store, now func() time.Time, ttl time.Duration) *clientCache {
	return &clientCache{store: store, now: now, ttl: ttl, entries: map[string]cachedClient{}}
}

// get returns the client, from memory when it was read less than ttl ago.
// The slices of the returned record are shared: callers only read them.
func (c *clientCache) get(ctx context.Context, id string) (storage.Client, error) {
	// No client id holds invalid UTF-8 or a NUL byte (idp client add refuses
	// them); PostgreSQL would answer such a lookup with an error, not "none".
	if !utf8.ValidString(id) || strings.ContainsRune(id, 0) {
		return storage.Client{}, storage.ErrNotFound
	}
	now := c.now()
	c.mu.RLock()
	e, ok := c.entries[id]
	epoch := c.epoch
	c.mu.RUnlock()
	if ok && now.Sub(e.loaded) < c.ttl && !now.Before(e.loaded) {
		return e.c, nil
	}
	cl, err := c.store.GetClient(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		c.mu.Lock()
		delete(c.entries, id)
		c.mu.Unlock()
		return storage.Client{}, err
	case err != nil:
		return storage.Client{}, err
	}
	c.mu.Lock()
	if c.epoch == epoch {
		c.entries[id] = cachedClient{c: cl, loaded: now}
	}
	c.mu.Unlock()
	return cl, nil
}

// invalidate forgets every client: the next request for each reads it again.
func (c *clientCache) invalidate() {
	c.mu.Lock()
	clear(c.entries)
	c.epoch++
	c.mu.Unlock()
}
