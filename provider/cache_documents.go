package provider

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// documentCache serves the discovery document and the key set (JWKS) from
// memory: every relying application fetches them, and the library would
// build and encode them again for each request. Both are rendered again
// whenever the key manager loaded a new set of keys (a rotation, a pruning,
// or its periodic reload), so they are never staler than the key manager
// itself: the key set is those keys, and discovery lists their algorithms
// (SignatureAlgorithms).
type documentCache struct {
	keys *keyManager
	// The endpoints' paths, set once the library's router exists.
	discoveryPath, keysPath string

	mu        sync.RWMutex
	discovery cachedDocument
	keySet    cachedDocument
}

// cachedDocument is a document and the key manager's slice of keys it was
// rendered from (reload always makes a new slice).
type cachedDocument struct {
	doc *renderedDocument
	of  *op.Key
}

// renderedDocument is a successful response of the library, kept whole.
type renderedDocument struct {
	header http.Header
	body   []byte
}

func newDocumentCache(keys *keyManager) *documentCache {
	return &documentCache{keys: keys}
}

func (c *documentCache) setPaths(discovery, keys string) {
	c.discoveryPath, c.keysPath = discovery, keys
}

// intercept is an op.HttpInterceptor: it runs inside the library's router,
// after its CORS handling, so the cached answers carry the same CORS headers
// as the library's.
func (c *documentCache) intercept(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		switch r.URL.Path {
		case c.discoveryPath:
			c.serve(w, r, next, &c.discovery, ownDiscovery)
		case c.keysPath:
			c.serve(w, r, next, &c.keySet, nil)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// serve answers with the document cached in slot, rendering it again (and
// correcting it with adjust, if any) when the key manager's keys changed.
// With no keys at all (an instance whose database failed before it read
// any; with keys held, a fault serves them: keyManager.current) the last
// document served is kept, or the library answers, its discovery corrected
// like any other.
func (c *documentCache) serve(w http.ResponseWriter, r *http.Request, next http.Handler, slot *cachedDocument, adjust func([]byte) ([]byte, error)) {
	var of *op.Key // the keys the document is made from; nil: none
	if pubs, err := c.keys.publicKeys(r.Context()); err == nil && len(pubs) > 0 {
		of = &pubs[0]
	}
	c.mu.RLock()
	d, changed := slot.doc, of != nil && slot.of != of
	c.mu.RUnlock()
	if d == nil || changed {
		rec := render(next, r)
		if d = rec.document(); d == nil {
			rec.replay(w, r) // the library's error, as it made it
			return
		}
		adjusted(d, adjust)
		// Kept only while the keys it was made from (of) are still the key
		// manager's, and fresh: one made without keys, or while they fell
		// due (the change watcher invalidated them meanwhile) and could not
		// be read again, is served once.
		if of == nil || !c.keys.freshFrom(of) {
			d.serve(w, r)
			return
		}
		c.mu.Lock()
		*slot = cachedDocument{doc: d, of: of}
		c.mu.Unlock()
	}
	d.serve(w, r)
}

// adjusted corrects d with adjust, if any; a body adjust cannot read is
// left as the library made it.
func adjusted(d *renderedDocument, adjust func([]byte) ([]byte, error)) {
	if adjust == nil {
		return
	}
	if body, err := adjust(d.body); err == nil {
		d.body = body
	}
}

// serve writes the document.
func (d *renderedDocument) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	for k, v := range d.header {
		h[k] = append([]string(nil), v...) // the cached slices stay untouched
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(d.body)
	}
}

// render runs the library's handler into memory (as a GET: a HEAD is
// answered from the same document).
func render(next http.Handler, r *http.Request) *documentRecorder {
	rec := &documentRecorder{header: http.Header{}, status: http.StatusOK}
	get := r.Clone(r.Context())
	get.Method = http.MethodGet
	next.ServeHTTP(rec, get)
	return rec
}

// document is what may be cached of a rendered answer: a 200 with a body,
// and only the document's own headers (those the outer handlers set on the
// real response, CORS and security headers, are theirs to set each time).
// nil otherwise.
func (d *documentRecorder) document() *renderedDocument {
	if d.status != http.StatusOK || d.body.Len() == 0 {
		return nil
	}
	header := http.Header{}
	for _, k := range []string{"Content-Type", "Cache-Control"} {
		if v := d.header.Values(k); len(v) > 0 {
			header[k] = v
		}
	}
	return &renderedDocument{header: header, body: bytes.Clone(d.body.Bytes())}
}

// replay writes an answer that was not cached as the library made it.
func (d *documentRecorder) replay(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	for k, v := range d.header {
		h[k] = v
	}
	w.WriteHeader(d.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(d.body.Bytes())
	}
}

// documentRecorder is the http.ResponseWriter render captures into.
type documentRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (d *documentRecorder) Header() http.Header         { return d.header }
func (d *documentRecorder) WriteHeader(status int)      { d.status = status }
func (d *documentRecorder) Write(b []byte) (int, error) { return d.body.Write(b) }

// ownDiscovery corrects the library's discovery document to what this
// provider does: the code flow only (the library lists the implicit flow,
// the JWT bearer grant and a device authorization endpoint whatever the
// provider serves), and the response modes it answers in, errors included
// (query, fragment and form post). A client library choosing from the
// document must not pick what would then be refused.
func ownDiscovery(body []byte) ([]byte, error) {
	var d oidc.DiscoveryConfiguration
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, err
	}
	d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	d.ResponseModesSupported = []string{string(oidc.ResponseModeQuery), string(oidc.ResponseModeFragment), string(oidc.ResponseModeFormPost)}
	d.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
	d.DeviceAuthorizationEndpoint = ""
	return json.Marshal(&d)
}
