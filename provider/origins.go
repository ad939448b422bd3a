package provider

import (
	"context"
	"net/url"
	"sync"
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
}

func (c *originCache) allowed(ctx context.Context, origin string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.origins == nil || c.now().Sub(c.loaded) > originCacheTTL {
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

// invalidate forgets the origins: the next CORS check lists the clients
// again. Taking the lock waits for a listing under way, whose result may
// predate the change.
func (c *originCache) invalidate() {
	c.mu.Lock()
	c.origins = nil
	c.mu.Unlock()
}
