package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/caf-extranet/idp/config"
	"github.com/caf-extranet/idp/storage"
)

// forgotFrom submits « Mot de passe oublié ? » for agentEmail from a browser
// whose requests carry X-Forwarded-For: xff. The page is the confirmation,
// or « Trop de tentatives » past the client's quota (the audit events tell
// which client was counted).
func forgotFrom(t *testing.T, e *testEnv, xff string) {
	t.Helper()
	b := newBrowser(t, e.issuer)
	b.client.Transport = &recordingTransport{header: http.Header{"X-Forwarded-For": {xff}}}
	p := requestRecovery(t, b, b.get("/login"), agentEmail, journeyCaptcha)
	if p.Status == http.StatusTooManyRequests {
		p.mustContain("Trop de tentatives")
	} else {
		p.mustContain("Si cette adresse correspond à un compte")
	}
}

// recoveryIPs lists the client IP of each recovery event, oldest first, as
// "type ip".
func recoveryIPs(t *testing.T, e *testEnv) []string {
	t.Helper()
	evs, err := e.srv.store.ListAudit(e.ctx, storage.AuditFilter{Email: agentEmail})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Type == "recovery.requested" || evs[i].Type == "recovery.throttled" {
			out = append(out, evs[i].Type+" "+evs[i].ClientIP)
		}
	}
	return out
}

// TestClientIPFromTrustedProxy: behind a trusted proxy (the test's loopback
// address) the client is the rightmost X-Forwarded-For hop that is not a
// trusted proxy itself; what a client writes to the left of it cannot move
// it out of its per-IP recovery quota.
func TestClientIPFromTrustedProxy(t *testing.T) {
	e := newEnv(t, sqliteURL(t), func(c *config.Config) {
		withJourneyCaptcha(c)
		c.HTTP.TrustedProxies = []string{"127.0.0.1", "10.0.0.0/8"}
		c.Recovery.MaxRequestsPerIPPerHour = 1
	})
	e.addAgent(agentEmail, "Claire Dupont", "", agentPass)
	forgotFrom(t, e, "203.0.113.9, 10.0.0.7")           // client, then an inner proxy
	forgotFrom(t, e, "198.51.100.66, 203.0.113.9")      // a forged hop on the left changes nothing
	forgotFrom(t, e, "192.0.2.44")                      // another client: its own quota
	forgotFrom(t, e, "not-an-ip, 192.0.2.45, 10.1.2.3") // garbage left of the client is ignored
	got := recoveryIPs(t, e)
	want := []string{
		"recovery.requested 203.0.113.9", "recovery.throttled 203.0.113.9",
		"recovery.requested 192.0.2.44", "recovery.requested 192.0.2.45",
	}
	if !equalStrings(got, want) {
		t.Fatalf("recovery events: %v\nwant %v", got, want)
	}
	// The proxy's request id is kept when it is plain, replaced otherwise.
	if id := requestIDFor(t, e, "lb-7f3a.42"); id != "lb-7f3a.42" {
		t.Errorf("a trusted proxy's request id became %q", id)
	}
	if id := requestIDFor(t, e, "bad id\"with quotes"); id == "" || strings.ContainsAny(id, " \"") {
		t.Errorf("a malformed request id was kept: %q", id)
	}
}

// requestIDFor sends X-Request-Id: id and returns the one answered.
func requestIDFor(t *testing.T, e *testEnv, id string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/healthz", nil)
	req.Header.Set("X-Request-Id", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("X-Request-Id")
}

// TestXForwardedForIgnoredFromUntrustedPeer: when the peer is not a trusted
// proxy its X-Forwarded-For is ignored: the client is the peer, and
// changing the header does not escape the per-IP quota.
func TestXForwardedForIgnoredFromUntrustedPeer(t *testing.T) {
	e := newEnv(t, sqliteURL(t), func(c *config.Config) {
		withJourneyCaptcha(c)
		c.HTTP.TrustedProxies = []string{"10.0.0.0/8"} // not the test's loopback address
		c.Recovery.MaxRequestsPerIPPerHour = 1
	})
	e.addAgent(agentEmail, "Claire Dupont", "", agentPass)
	forgotFrom(t, e, "203.0.113.9")
	forgotFrom(t, e, "198.51.100.66")
	got := recoveryIPs(t, e)
	want := []string{"recovery.requested 127.0.0.1", "recovery.throttled 127.0.0.1"}
	if !equalStrings(got, want) {
		t.Fatalf("recovery events: %v\nwant %v", got, want)
	}
	if id := requestIDFor(t, e, "chosen-by-the-client"); id == "chosen-by-the-client" || id == "" {
		t.Errorf("an untrusted peer chose the request id: %q", id)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestClientIPRule covers the rule's edge cases directly.
func TestClientIPRule(t *testing.T) {
	proxies, err := parseProxies([]string{"10.0.0.0/8", " 2001:db8::/32 ", "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"untrusted peer, header ignored", "198.51.100.7:4000", []string{"203.0.113.1"}, "198.51.100.7"},
		{"trusted peer, one hop", "10.0.0.1:4000", []string{"203.0.113.1"}, "203.0.113.1"},
		{"trusted peer, chain of proxies", "10.0.0.1:4000", []string{"203.0.113.1, 192.0.2.1, 10.9.9.9"}, "203.0.113.1"},
		{"several headers are one list", "10.0.0.1:4000", []string{"198.51.100.1", "203.0.113.1, 10.2.2.2"}, "203.0.113.1"},
		{"trusted peer without header", "10.0.0.1:4000", nil, "10.0.0.1"},
		{"only proxies in the header", "10.0.0.1:4000", []string{"10.3.3.3, 192.0.2.1"}, "10.0.0.1"},
		{"garbage stops the walk", "10.0.0.1:4000", []string{"203.0.113.1, junk"}, "10.0.0.1"},
		{"IPv6 proxy", "[2001:db8::1]:4000", []string{"2001:db9::5"}, "2001:db9::5"},
		{"IPv4-mapped peer", "[::ffff:10.0.0.1]:4000", []string{"203.0.113.1"}, "203.0.113.1"},
		{"IPv4-mapped client", "10.0.0.1:4000", []string{"::ffff:203.0.113.1"}, "203.0.113.1"},
	}
	for _, tc := range cases {
		r, _ := http.NewRequest(http.MethodGet, "http://idp.example/", nil)
		r.RemoteAddr = tc.remote
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := proxies.clientIP(r); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if _, err := parseProxies([]string{"10.0.0.0/33"}); err == nil {
		t.Error("an invalid CIDR was accepted")
	}
}
