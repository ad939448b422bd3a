package cluster

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage/postgres/pgtest"
)

// TestDatabaseRestartDuringAFlow: PostgreSQL goes away in the middle of
// logins (a proxy between the instances and the server stops, dropping every
// connection). Meanwhile every request fails cleanly, nothing is half
// written, readiness says not ready; when the database is back the
// instances recover by themselves.
func TestDatabaseRestartDuringAFlow(t *testing.T) {
	t.Parallel()
	direct, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := startDBProxy(t, direct.Host)
	proxied := *direct
	proxied.Host = proxy.addr
	c := startCluster(t, proxied.String(), 2)
	c.addAgent(agentEmail, agentPassword)
	secret := c.addClient()
	rp := c.newRP(t, secret)

	// Before the outage: one browser holds a code not yet exchanged, another
	// is on the login page of a pending auth request.
	first := c.newBrowser(t)
	code := c.loginForCode(first, rp, agentEmail, agentPassword)
	codeVerifier := rp.pkce
	second := c.newBrowser(t)
	loginPage := second.follow(nodeB, second.get(nodeA, rp.authURL()))
	loginPage.mustContain("Mot de passe oublié ?")
	secondState, secondVerifier := rp.state, rp.pkce
	exchange := func(i int) (int, map[string]any) {
		t.Helper()
		status, body, err := c.tokenCall(i, secret, url.Values{"grant_type": {"authorization_code"},
			"code": {code}, "redirect_uri": {redirectURI}, "code_verifier": {codeVerifier}})
		if err != nil {
			t.Fatal(err)
		}
		return status, body
	}

	proxy.stop()
	for i, nd := range c.nodes {
		if s := readyStatus(nd); s != http.StatusServiceUnavailable {
			t.Fatalf("readyz of %s during the outage: %d, want 503", nd.name, s)
		}
		// The login page of the pending request: the technical error page.
		p := second.get(i, loginPage.url.String())
		wantErrorPage(t, p)
		// The login form posted: an error page, no session.
		p = second.submit(i, loginPage, "/login", map[string]string{"email": agentEmail, "password": agentPassword})
		wantErrorPage(t, p)
		if setsCookie(p, "idp_session") {
			t.Fatal("a session cookie was handed out while the database was down")
		}
		// A new authorization: an error, never a login page for a request
		// that could not be stored.
		p = c.newBrowser(t).get(i, rp.oauth.AuthCodeURL("s"))
		if p.status < 400 && !strings.Contains(p.header.Get("Location"), "error=server_error") {
			t.Fatalf("authorize during the outage: status %d, location %q", p.status, p.header.Get("Location"))
		}
		// The token endpoint: server_error in JSON (a temporary fault, not
		// a dead code), never a token.
		status, body := exchange(i)
		if status != http.StatusInternalServerError || body["access_token"] != nil || body["error"] != "server_error" {
			t.Fatalf("code exchange during the outage: %d %v, want 500 server_error", status, body)
		}
	}

	// PostgreSQL comes back after a pause; nobody restarts the instances.
	time.Sleep(time.Second)
	proxy.start()
	for _, nd := range c.nodes {
		waitReady(t, nd, 30*time.Second, c.logs)
	}

	// The code from before: exchangeable at most once, on either instance.
	successes := 0
	for i := range c.nodes {
		if status, body := exchange(i); status == http.StatusOK && body["access_token"] != nil {
			successes++
		}
	}
	if successes > 1 {
		t.Fatalf("the code from before the outage was exchanged %d times", successes)
	}

	// The interrupted login picks up where it was: no session was left
	// behind by the failed attempt, so the form again, then a code.
	p := second.get(nodeB, loginPage.url.String())
	p.mustContain("Mot de passe oublié ?")
	p = second.submit(nodeA, p, "/login", map[string]string{"email": agentEmail, "password": agentPassword})
	if p.status != http.StatusFound {
		t.Fatalf("login after recovery: status %d: %.800s", p.status, p.text())
	}
	rp.state, rp.pkce = secondState, secondVerifier
	if _, _, err := rp.on(nodeB).exchange(rp.code(p.location())); err != nil {
		t.Fatalf("exchange after recovery: %v", err)
	}

	// A fresh login on each instance works.
	for i := range c.nodes {
		b := c.newBrowser(t)
		p := b.follow(i, b.get(i, rp.authURL()))
		p = b.submit(i, p, "/login", map[string]string{"email": agentEmail, "password": agentPassword})
		if p.status != http.StatusFound {
			t.Fatalf("fresh login on %s after recovery: status %d: %.800s", c.nodes[i].name, p.status, p.text())
		}
		if _, _, err := rp.on(i).exchange(rp.code(p.location())); err != nil {
			t.Fatalf("fresh exchange on %s after recovery: %v", c.nodes[i].name, err)
		}
	}
	if logs := c.logs(); strings.Contains(logs, "panic") {
		t.Fatalf("an instance panicked:\n%s", logs)
	}
}

// wantErrorPage: a clean HTML error page, the technical one.
func wantErrorPage(t *testing.T, p *page) {
	t.Helper()
	if p.status < 500 || !strings.HasPrefix(p.header.Get("Content-Type"), "text/html") {
		t.Fatalf("%s during the outage: status %d, %s: %.500s", p.url, p.status, p.header.Get("Content-Type"), p.body)
	}
	p.mustContain("Une erreur technique est survenue")
}

func setsCookie(p *page, name string) bool {
	for _, sc := range p.header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, name+"=") {
			return true
		}
	}
	return false
}
