package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/caf-extranet/idp/config"
)

// checkJourneyHeaders: every answer of the journey — each page (login,
// forgot, sent, change, password, espace, the error pages), each redirect,
// the token, userinfo, discovery and JWKS answers — carries the security
// headers; nothing but the stylesheet may be cached; no HTML page holds an
// inline script; no HSTS with an http issuer.
func checkJourneyHeaders(t *testing.T, j *journey) {
	seen := map[string]bool{}
	for _, r := range j.responses.all() {
		where := r.Method + " " + r.Path + " (" + http.StatusText(r.Status) + ")"
		seen[r.Path] = true
		checkSecurityHeaders(t, where, r.Header)
		if got := r.Header.Get("Strict-Transport-Security"); got != "" {
			t.Errorf("%s: HSTS %q with an http issuer", where, got)
		}
		cc := r.Header.Get("Cache-Control")
		switch {
		case r.Path == "/static/style.css":
			if !strings.Contains(cc, "max-age") || strings.Contains(cc, "no-store") {
				t.Errorf("%s: the stylesheet should be cacheable, Cache-Control %q", where, cc)
			}
		case cc != "no-store":
			t.Errorf("%s: Cache-Control %q, want no-store", where, cc)
		}
		if r.Body != "" {
			checkNoInlineScript(t, where, r.Body)
		}
	}
	for _, path := range []string{
		"/login", "/login/forgot", "/login/forgot/sent", "/login/change", "/login/password", "/espace", "/logout",
		"/authorize", "/oauth/token", "/userinfo", "/keys",
		"/.well-known/openid-configuration", "/static/style.css",
	} {
		if !seen[path] {
			t.Errorf("the journey never received an answer from %s", path)
		}
	}
	// The error pages were among them: the expired login, the unknown client.
	var expired, unknownClient bool
	for _, r := range j.responses.all() {
		isHTML := strings.HasPrefix(r.Header.Get("Content-Type"), "text/html")
		expired = expired || r.Path == "/login" && r.Query == "authRequestID=inconnu" && isHTML
		unknownClient = unknownClient || r.Path == "/authorize" && r.Status >= 400 && isHTML
	}
	if !expired || !unknownClient {
		t.Errorf("error pages seen: expired login %v, unknown client %v", expired, unknownClient)
	}
}

// TestHSTSWithHTTPSIssuer: with an https issuer, every answer (pages, the
// token endpoint's errors, health) carries Strict-Transport-Security.
func TestHSTSWithHTTPSIssuer(t *testing.T) {
	e := newEnv(t, sqliteURL(t), func(c *config.Config) {
		c.Issuer = "https://" + strings.TrimPrefix(c.Issuer, "http://")
	})
	for _, path := range []string{"/login", "/login/forgot", "/login/password", "/.well-known/openid-configuration", "/healthz"} {
		resp := e.get(path)
		resp.Body.Close()
		if got := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") {
			t.Errorf("GET %s: Strict-Transport-Security %q", path, got)
		}
		checkSecurityHeaders(t, "GET "+path, resp.Header)
	}
	resp, err := http.PostForm(e.issuer+"/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 || resp.Header.Get("Strict-Transport-Security") == "" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("token error: status %d, HSTS %q, Cache-Control %q", resp.StatusCode,
			resp.Header.Get("Strict-Transport-Security"), resp.Header.Get("Cache-Control"))
	}
}

// checkSecurityHeaders asserts the headers every answer needs.
func checkSecurityHeaders(t *testing.T, where string, h http.Header) {
	t.Helper()
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: Content-Security-Policy %q lacks %q", where, csp, want)
		}
	}
	for _, banned := range []string{"unsafe-inline", "unsafe-eval", "*"} {
		if strings.Contains(csp, banned) {
			t.Errorf("%s: Content-Security-Policy %q allows %s", where, csp, banned)
		}
	}
	want := map[string]string{
		"Referrer-Policy":        "no-referrer",
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %s %q, want %q", where, k, got, v)
		}
	}
	if h.Get("X-Request-Id") == "" {
		t.Errorf("%s: no X-Request-Id", where)
	}
}

// checkNoInlineScript: the pages must work under the CSP, so they hold no
// script element and no event-handler attribute.
func checkNoInlineScript(t *testing.T, where, body string) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	for _, n := range findAll(doc, func(n *html.Node) bool { return n.Type == html.ElementNode }) {
		if n.Data == "script" {
			t.Errorf("%s: a <script> element", where)
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(strings.ToLower(a.Key), "on") || strings.HasPrefix(strings.TrimSpace(strings.ToLower(a.Val)), "javascript:") {
				t.Errorf("%s: inline script in <%s %s=%q>", where, n.Data, a.Key, a.Val)
			}
		}
	}
}
