package provider

import (
	"context"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caf-extranet/idp/storage"
)

// originCacheTTL: the safety net behind changeWatcher, which drops the
// origins within a second of a change to the clients (see clientCacheTTL).
const originCacheTTL = 5 * time.Minute

// originCache holds the origins of the registered redirect URIs.
type originCache struct {
	store storage.Store
	now   func() time.Time

	mu      sync.Mutex
	loaded  time.Time
	origins map[string]bool
	// stale is set by invalidate without waiting for mu, which a listing
	// holds while it reads the clients: the next check lists them again.
	stale atomic.Bool
}

func (c *originCache) allowed(ctx context.Context, origin string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stale.Swap(false) || c.origins == nil || c.now().Sub(c.loaded) > originCacheTTL {
		clients, err := c.store.ListClients(ctx)
		if err != nil {
			return false
		}
		c.origins = map[string]bool{}
		for _, cl := range clients {
			for _, uri := range cl.RedirectURIs {
				if u, err := url.Parse(uri); err == nil && u.Scheme != "" && u.Host != "" {
					c.origins[u.Scheme+"://"+u.Host] = true
				}
			}
		}
		c.loaded = c.now()
	}
	return c.origins[origin]
}

// invalidate makes the next CORS check list the clients again. It does not
// wait for a listing under way: that one's result, which may predate the
// change, serves only the check that asked for it.
func (c *originCache) invalidate() { c.stale.Store(true) }
