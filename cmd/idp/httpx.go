package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/caf-extranet/idp/migrations"
	"github.com/caf-extranet/idp/storage"
)

// trustedProxies decides which peer may tell us the client's address.
type trustedProxies []netip.Prefix

func parseProxies(list []string) (trustedProxies, error) {
	var out trustedProxies
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("http.trusted_proxies: %q is neither an IP nor a CIDR", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// fromProxy tells whether the request's peer is a trusted proxy.
func (t trustedProxies) fromProxy(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	return err == nil && t.trusted(peer)
}

func (t trustedProxies) trusted(a netip.Addr) bool {
	for _, p := range t {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// clientIP is the peer's address, or, when the peer is a trusted proxy, the
// nearest address in X-Forwarded-For that is not itself a trusted proxy (the
// rightmost-untrusted rule: a client cannot forge its way past our proxies).
func (t trustedProxies) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	// Without the zone: it is not part of the address, and one client must
	// have one key in the throttles.
	peer = peer.Unmap().WithZone("")
	if !t.trusted(peer) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		// A zone ("fe80::1%anything") is free text no proxy writes: a hop
		// carrying one is as unreadable as garbage.
		if err != nil || a.Zone() != "" {
			break
		}
		if !t.trusted(a) {
			return a.Unmap().String()
		}
	}
	return peer.String()
}

// observe is the outermost handler. It gives each request an id (returned
// in X-Request-Id and added to every line logged with the request's
// context), logs one line per request and counts it in the metrics. The line
// never carries the query string nor the body (codes, tokens, passwords
// travel there). A trusted proxy's X-Request-Id is kept, so that its logs
// and ours share the id.
func observe(log *slog.Logger, m *metrics, proxies trustedProxies, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !proxies.fromProxy(r) || !validRequestID(id) {
			id = storage.NewID()[:16]
		}
		w.Header().Set("X-Request-Id", id)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		inner, route := withRouteSlot(r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
		next.ServeHTTP(rec, inner)
		elapsed := time.Since(start)
		m.observeRequest(route.template, r.Method, rec.status, elapsed.Seconds())
		level := slog.LevelInfo
		switch route.template {
		case "/healthz", "/readyz", "/metrics":
			level = slog.LevelDebug // probes and scrapes every few seconds
		case "/.well-known/openid-configuration", "/keys", "/static/style.css":
			// Public documents every client library fetches and caches:
			// served from memory, logged only when something goes wrong.
			if rec.status < 400 {
				level = slog.LevelDebug
			}
		}
		if !log.Enabled(r.Context(), level) {
			return
		}
		log.LogAttrs(r.Context(), level, "request",
			slog.String("request_id", id), slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.String("route", route.template),
			slog.Int("status", rec.status), slog.Duration("duration", elapsed),
			slog.String("client_ip", proxies.clientIP(r)))
	})
}

// validRequestID accepts a forwarded request id only if it is short and
// plain: it goes into our logs.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// statusRecorder remembers the status code a handler answered.
type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// defaultCertCheck is how often the certificate files are looked at.
const defaultCertCheck = 10 * time.Second

// certReloader serves the certificate from disk, reloading it when the
// files change (looked at, during a handshake, at most every checkEvery),
// so that a renewed certificate is picked up without a restart. A pair that
// does not load (the key not yet replaced, say) leaves the previous one in
// service and is tried again at the next check.
type certReloader struct {
	certFile, keyFile string
	checkEvery        time.Duration
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	version string // modification times and sizes of both files
	checked time.Time
}

func newCertReloader(certFile, keyFile string, checkEvery time.Duration, log *slog.Logger) (*certReloader, error) {
	if checkEvery <= 0 {
		checkEvery = defaultCertCheck
	}
	c := &certReloader{certFile: certFile, keyFile: keyFile, checkEvery: checkEvery, log: log}
	v, err := c.fileVersion()
	if err != nil {
		return nil, err
	}
	if err := c.load(v); err != nil {
		return nil, err
	}
	return c, nil
}

// fileVersion identifies the files' current contents without reading them.
func (c *certReloader) fileVersion() (string, error) {
	var v strings.Builder
	for _, f := range []struct{ key, path string }{{"tls.cert_file", c.certFile}, {"tls.key_file", c.keyFile}} {
		st, err := os.Stat(f.path)
		if err != nil {
			return "", fmt.Errorf("%s: %w", f.key, err)
		}
		fmt.Fprintf(&v, "%d/%d;", st.ModTime().UnixNano(), st.Size())
	}
	return v.String(), nil
}

func (c *certReloader) load(version string) error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	c.cert, c.version = &cert, version
	return nil
}

func (c *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.checked) >= c.checkEvery {
		c.checked = time.Now()
		if v, err := c.fileVersion(); err == nil && v != c.version {
			if err := c.load(v); err != nil {
				c.log.Error("tls certificate reload failed; keeping the previous one", "err", err)
			} else {
				c.log.Info("tls certificate reloaded")
			}
		}
	}
	return c.cert, nil
}

// latestMigration is the schema version this binary expects.
func latestMigration(databaseURL string) (int, error) {
	engine := migrations.Postgres
	if strings.HasPrefix(databaseURL, "sqlite:") {
		engine = migrations.SQLite
	}
	return migrations.Latest(engine)
}
