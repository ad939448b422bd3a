package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/caf-extranet/idp/account"
)

// TestAuthRequestBelongsToItsBrowser: an auth request id is no bearer
// credential. Someone who starts a login at an application and sends the
// provider's own link /login?authRequestID=… to an agent gets nothing from the
// agent's session or login; the library's callback, which would have given a
// code for any completed request, is gone; the browser that started the
// request still completes it.
func TestAuthRequestBelongsToItsBrowser(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, _, rp1, rp2 := twoApps(t, dbURL)
		e.addAgent("mallory@partenaire.fr", "Mallory", "Ailleurs", "secret34")
		victim := newBrowser(t, e.issuer)
		rp1.mustExchange(rp1.callback(login(t, victim, victim.get(rp1.authURL()), agentEmail, agentPass).Location()))

		attacker := newBrowser(t, e.issuer)
		start := attacker.get(rp2.authURL())
		id := start.URL.Query().Get("authRequestID")
		if id == "" {
			t.Fatalf("no auth request id in %s", start.URL)
		}

		// The victim's single sign-on session does not complete it.
		v := victim.get("/login?authRequestID=" + id)
		if v.Status != http.StatusBadRequest || v.Location() != "" {
			t.Fatalf("the victim's browser on the attacker's request: status %d, location %q", v.Status, v.Location())
		}
		v.mustContain("Demande de connexion expirée")
		// Nor does a login from a browser without a session: it is not even
		// offered the form.
		stranger := newBrowser(t, e.issuer)
		if p := stranger.get("/login?authRequestID=" + id); p.Status != http.StatusBadRequest || strings.Contains(p.Body, `name="password"`) {
			t.Fatalf("another browser was offered the login form of the request: status %d", p.Status)
		}
		if p := attacker.get("/authorize/callback?id=" + id); p.Status != http.StatusNotFound {
			t.Fatalf("/authorize/callback: status %d, location %q; want 404", p.Status, p.Location())
		}

		// Its own browser completes it, for its own agent.
		li := rp2.mustExchange(rp2.callback(login(t, attacker, attacker.get("/login?authRequestID="+id), "mallory@partenaire.fr", "secret34").Location()))
		if li.claims["email"] != "mallory@partenaire.fr" {
			t.Fatalf("the request's own browser got tokens for %v", li.claims["email"])
		}
		// Completed, it stays its agent's: the victim's session cannot take
		// it over (its code would otherwise follow).
		if p := victim.get("/login?authRequestID=" + id); p.Location() != "" {
			t.Fatalf("the victim completed the attacker's finished request: %s", p.Location())
		}
	})
}

// TestPasswordChangeEndsCodesNotExchanged: a code issued before a password
// change is refused after it, like the tokens issued before it.
func TestPasswordChangeEndsCodesNotExchanged(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, _, rp1, _ := twoApps(t, dbURL)
		b := newBrowser(t, e.issuer)
		code := rp1.callback(login(t, b, b.get(rp1.authURL()), agentEmail, agentPass).Location())
		if err := e.srv.accounts.ChangePassword(e.ctx, agentEmail, agentPass, "nouveau34", "nouveau34", account.Meta{}); err != nil {
			t.Fatal(err)
		}
		_, err := rp1.exchange(code)
		if err == nil || !strings.Contains(err.Error(), "invalid_grant") {
			t.Fatalf("exchange of a code issued before the password change: %v; want invalid_grant", err)
		}
	})
}

// TestLoginFormPostedTwice: « Valider » clicked twice; the second POST leaves
// with the cookies the browser had before the first answer came, and the
// browser shows the second answer: it too goes back to the application
// with a code (its agent is the one that completed the request).
func TestLoginFormPostedTwice(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, _, rp1, _ := twoApps(t, dbURL)
		b := newBrowser(t, e.issuer)
		f := b.get(rp1.authURL()).form("Valider").set("Adresse e-mail", agentEmail).set("Mot de passe", agentPass)
		again := newBrowser(t, e.issuer)
		u, _ := url.Parse(e.issuer)
		again.client.Jar.SetCookies(u, b.client.Jar.Cookies(u))
		again.client.Jar.SetCookies(&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/login"}, b.client.Jar.Cookies(&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/login"}))
		first, second := b.submit(f), again.submit(f)
		for name, p := range map[string]*page{"first": first, "second": second} {
			if p.Status != http.StatusFound || !strings.Contains(p.Location(), "code=") {
				t.Fatalf("%s POST: status %d, location %q: %.200s", name, p.Status, p.Location(), p.text())
			}
		}
		rp1.mustExchange(rp1.callback(second.Location()))
	})
}

// TestPromptNoneWithoutCookies: silent sign-in from a browser context that
// keeps no cookie of the provider (a cross-site iframe) gets login_required
// at once from /authorize.
func TestPromptNoneWithoutCookies(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, _, rp1, _ := twoApps(t, dbURL)
		b := newBrowser(t, e.issuer)
		b.client.Jar = nil
		p := b.get(rp1.authURL(oauth2.SetAuthURLParam("prompt", "none")))
		if !strings.HasPrefix(p.Location(), app1Redirect) || !strings.Contains(p.Location(), "error=login_required") || p.URL.Path != "/authorize" {
			t.Fatalf("prompt=none without cookies: status %d at %s, location %q", p.Status, p.URL.Path, p.Location())
		}
	})
}

// TestCrossSitePostToAuthorizeLeavesOtherTabsAlone: an application sends the
// browser to /authorize by a cross-site POST, which carries none of the
// provider's SameSite=Lax cookies; what its answer sets must not break the
// login form open in another tab.
func TestCrossSitePostToAuthorizeLeavesOtherTabsAlone(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, _, rp1, rp2 := twoApps(t, dbURL)
		b := newBrowser(t, e.issuer)
		f := b.get(rp1.authURL()).form("Valider").set("Adresse e-mail", agentEmail).set("Mot de passe", agentPass)

		au, _ := url.Parse(rp2.authURL())
		req, _ := http.NewRequest(http.MethodPost, e.issuer+"/authorize", strings.NewReader(au.RawQuery))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		noCookies := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noCookies.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("POST /authorize: status %d", resp.StatusCode)
		}
		for _, c := range resp.Cookies() { // the browser keeps them, each for its path
			path := c.Path
			if path == "" {
				path = "/"
			}
			b.client.Jar.SetCookies(&url.URL{Scheme: "http", Host: strings.TrimPrefix(e.issuer, "http://"), Path: path}, []*http.Cookie{c})
		}
		out := b.submit(f)
		if !strings.Contains(out.Location(), "code=") {
			t.Fatalf("the other tab's login: status %d: %.200s", out.Status, out.text())
		}
	})
}

// TestDeniedReturnBelongsToItsBrowser: /login/denied, which ends a request
// with access_denied and its state, answers only the request's browser.
func TestDeniedReturnBelongsToItsBrowser(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, _, rp1, _ := twoApps(t, dbURL)
		victim := newBrowser(t, e.issuer)
		p := victim.get(rp1.authURL())
		id := p.URL.Query().Get("authRequestID")
		if d := newBrowser(t, e.issuer).get("/login/denied?authRequestID=" + id); d.Location() != "" {
			t.Fatalf("another browser ended the request: %q", d.Location())
		}
		if out := login(t, victim, p, agentEmail, agentPass); !strings.Contains(out.Location(), "code=") {
			t.Fatalf("the victim's login after it: status %d: %.100s", out.Status, out.text())
		}
	})
}
