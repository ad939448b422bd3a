package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestUnknownPathsGetAFrenchPage: any address an agent may type or follow
// (a bookmark of the logout, a trailing slash, a form replayed on a page
// that only has GET) gets a French page with lang="fr", the status kept:
// 404 where nothing is, 405 (with Allow) on a page's path with another
// method. The OIDC library answered them with Go's English plain-text
// "404 page not found". Its own endpoints answer as before.
func TestUnknownPathsGetAFrenchPage(t *testing.T) {
	e := newEnv(t, sqliteURL(t), nil)
	do := func(method, path string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, e.issuer+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	for _, c := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{http.MethodGet, "/nimporte/quoi", http.StatusNotFound, ""},
		{http.MethodGet, "/login/", http.StatusNotFound, ""},
		{http.MethodGet, "/espace/", http.StatusNotFound, ""},
		{http.MethodGet, "/authorize/callback?id=x", http.StatusNotFound, ""},
		{http.MethodGet, "/logout", http.StatusMethodNotAllowed, "POST"},
		{http.MethodPost, "/espace", http.StatusMethodNotAllowed, "GET"},
		{http.MethodPost, "/", http.StatusMethodNotAllowed, "GET"},
		{http.MethodPut, "/login", http.StatusMethodNotAllowed, "GET, POST"},
	} {
		resp, body := do(c.method, c.path)
		what := c.method + " " + c.path
		if resp.StatusCode != c.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(body, `<html lang="fr">`) {
			t.Errorf("%s: %d %s %.200q, want %d and a French HTML page", what, resp.StatusCode, resp.Header.Get("Content-Type"), body, c.status)
			continue
		}
		title := map[int]string{http.StatusNotFound: "Page introuvable", http.StatusMethodNotAllowed: "Page non disponible"}[c.status]
		if !strings.Contains(body, title) || !strings.Contains(body, `href="/login"`) {
			t.Errorf("%s: the page says neither %q nor leads to the portal:\n%s", what, title, body)
		}
		if got := resp.Header.Get("Allow"); got != c.allow {
			t.Errorf("%s: Allow %q, want %q", what, got, c.allow)
		}
		if resp.Header.Get("Content-Security-Policy") == "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: the page lacks the security headers: %v", what, resp.Header)
		}
	}

	// The library's endpoints are its own, its errors included.
	for _, c := range []struct {
		method, path string
		status       int
		contentType  string
	}{
		{http.MethodGet, "/.well-known/openid-configuration", http.StatusOK, "application/json"},
		{http.MethodGet, "/keys", http.StatusOK, "application/json"},
		{http.MethodPost, "/oauth/token", http.StatusBadRequest, "application/json"},
		{http.MethodGet, "/oauth/token", http.StatusBadRequest, "application/json"},
		{http.MethodGet, "/userinfo", http.StatusUnauthorized, ""},
		{http.MethodGet, "/healthz", http.StatusOK, "text/plain"},
	} {
		resp, body := do(c.method, c.path)
		if resp.StatusCode != c.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), c.contentType) ||
			strings.Contains(body, "<html") {
			t.Errorf("%s %s: %d %s %.200q, want %d %s", c.method, c.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, c.status, c.contentType)
		}
	}
}

// TestSiteRootLeadsToTheLoginPage: the procedure's first step is « L'agent
// se connecte sur le Portail Extranet via l'adresse services.caf.fr »: the
// bare address leads to the login page, and for a live session on to the
// secure space.
func TestSiteRootLeadsToTheLoginPage(t *testing.T) {
	e := newEnv(t, sqliteURL(t), nil)
	e.addAgent(agentEmail, "Claire Dupont", "Mairie de Lyon", agentPass)
	b := newBrowser(t, e.issuer)
	p := b.get("/")
	if p.Status != http.StatusOK || p.URL.Path != "/login" {
		t.Fatalf("GET / ends at %s with %d %q, want the login page", p.URL.Path, p.Status, strings.TrimSpace(p.Body))
	}
	p.mustContain("Mot de passe oublié ?")
	b.submit(p.form("Valider").set("Adresse e-mail", agentEmail).set("Mot de passe", agentPass))
	if p := b.get("/"); p.Status != http.StatusOK || p.URL.Path != "/espace" {
		t.Fatalf("GET / with a session ends at %s with %d, want the secure space", p.URL.Path, p.Status)
	}
}
