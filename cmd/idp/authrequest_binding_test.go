package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/caf-extranet/idp/account"
	"github.com/caf-extranet/idp/storage"
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

// bindingCookies counts the cookies binding an auth request to browser b
// that it would send to the login pages.
func bindingCookies(t *testing.T, b *browser) int {
	t.Helper()
	u, err := url.Parse(b.origin + "/login")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range b.client.Jar.Cookies(u) {
		if strings.HasPrefix(c.Name, "idp_ar_") {
			n++
		}
	}
	return n
}

// bindingMaxAge is the Max-Age a response gave the binding cookie of
// request id (-1 when it set none).
func bindingMaxAge(t *testing.T, p *page, id string) int {
	t.Helper()
	for _, c := range (&http.Response{Header: p.Header}).Cookies() {
		if c.Name == "idp_ar_"+id {
			return c.MaxAge
		}
	}
	return -1
}

// TestBindingCookiesEndWithTheirRequests: the cookie that binds an auth
// request to its browser is set only when the request waits on the login
// pages: single sign-on, answered at once, sets none, nor does an answer of
// /authorize itself (prompt=none without a session). The answer to the
// application (a code, or access_denied from « Retourner à l'application »)
// shortens it to two minutes. Kept for the request's whole lifetime (30
// minutes), one per request, they piled up in the browser and were all sent
// to every login page: an agent's applications checking the session now and
// then would soon have their login pages refused by a proxy's header limit
// (8 KB at nginx's default).
func TestBindingCookiesEndWithTheirRequests(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil)
		e.addAgent(agentEmail, "Claire Dupont", "Mairie de Lyon", agentPass)
		secret1 := e.addClient("app1", app1Redirect, false)
		secret3 := e.addClient("app3", app3Redirect, false)
		if err := e.srv.store.SetClientRestricted(e.ctx, "app3", true); err != nil {
			t.Fatal(err)
		}
		rp1 := newRP(t, e, "app1", secret1, app1Redirect)
		rp3 := newRP(t, e, "app3", secret3, app3Redirect)
		b := newBrowser(t, e.issuer)

		// A silent check without a session is answered by /authorize.
		silent := b.get(rp1.authURL(oauth2.SetAuthURLParam("prompt", "none")))
		if !strings.Contains(silent.Location(), "error=login_required") {
			t.Fatalf("prompt=none without a session: %d %q", silent.Status, silent.Location())
		}
		if n := bindingCookies(t, b); n != 0 {
			t.Fatalf("after prompt=none answered by /authorize: %d binding cookies, want 0", n)
		}

		p := b.get(rp1.authURL())
		id := p.URL.Query().Get("authRequestID")
		if n := bindingCookies(t, b); n != 1 {
			t.Fatalf("a request on the login page: %d binding cookies, want 1", n)
		}
		out := login(t, b, p, agentEmail, agentPass)
		rp1.mustExchange(rp1.callback(out.Location()))
		if age := bindingMaxAge(t, out, id); age != 120 {
			t.Fatalf("the code's answer gave the binding Max-Age %d, want 120", age)
		}
		for range 5 {
			sso := b.get(rp1.authURL())
			if len(sso.Header.Values("Set-Cookie")) != 0 {
				t.Fatalf("single sign-on set cookies: %q", sso.Header.Values("Set-Cookie"))
			}
			rp1.mustExchange(rp1.callback(sso.Location()))
		}
		if n := bindingCookies(t, b); n != 1 {
			t.Fatalf("after 5 single sign-ons: %d binding cookies, want the login's only", n)
		}

		// Not habilitated for app3: the page explaining it keeps the
		// binding as it was, which « Retourner à l'application » needs; the
		// answer then shortens it.
		denied := b.get(rp3.authURL())
		deniedID := denied.URL.Query().Get("authRequestID")
		if denied.Status != http.StatusForbidden || bindingMaxAge(t, denied, deniedID) != -1 {
			t.Fatalf("app3 without a habilitation: status %d, binding Max-Age %d", denied.Status, bindingMaxAge(t, denied, deniedID))
		}
		back := b.get(findLink(t, denied, "Retourner à l'application"))
		if !strings.Contains(back.Location(), "error=access_denied") {
			t.Fatalf("going back: %d %q", back.Status, back.Location())
		}
		if age := bindingMaxAge(t, back, deniedID); age != 120 {
			t.Fatalf("access_denied's answer gave the binding Max-Age %d, want 120", age)
		}
	})
}

// TestAnsweredRequestStaysItsBrowsers: within the binding's two minutes
// after the answer, the request's own browser still goes on with it: « Valider »
// clicked again once the first answer has come back (the application is
// slow), the forced-change form posted again, the back button to the login
// page. (Found by review: clearing the binding with the answer sent them to
// « Demande de connexion expirée ».)
func TestAnsweredRequestStaysItsBrowsers(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, withTestCaptcha)
		e.addAgent(agentEmail, "Claire Dupont", "Mairie de Lyon", agentPass)
		secret1 := e.addClient("app1", app1Redirect, false)
		rp1 := newRP(t, e, "app1", secret1, app1Redirect)
		wantCode := func(what string, p *page) {
			t.Helper()
			if p.Status != http.StatusFound || !strings.Contains(p.Location(), "code=") {
				t.Fatalf("%s: status %d at %s, location %q: %.200s", what, p.Status, p.URL, p.Location(), p.text())
			}
		}

		b := newBrowser(t, e.issuer)
		start := b.get(rp1.authURL())
		id := start.URL.Query().Get("authRequestID")
		f := start.form("Valider").set("Adresse e-mail", agentEmail).set("Mot de passe", agentPass)
		wantCode("first POST", b.submit(f))
		second := b.submit(f)
		wantCode("the login form posted again after its answer", second)
		back := b.get("/login?authRequestID=" + id)
		wantCode("the login page of the answered request", back)
		rp1.mustExchange(rp1.callback(back.Location()))

		// The forced change after « Mot de passe oublié ? ».
		r := newBrowser(t, e.issuer)
		requestRecovery(t, r, r.get(rp1.authURL()), agentEmail, testCaptcha)
		e.deliverMail()
		provisional := e.provisionalPassword(agentEmail)
		change := login(t, r, r.get(rp1.authURL()), agentEmail, provisional)
		change.mustContain("Par mesure de sécurité, veuillez maintenant personnaliser votre mot de passe.")
		cf := change.form("Valider").set("Mot de passe actuel", provisional).
			set("Nouveau mot de passe", "nouveau2026").set("Confirmation mot de passe", "nouveau2026")
		wantCode("the forced change", r.submit(cf))
		wantCode("the forced change posted again after its answer", r.submit(cf))
	})
}

// TestSingleSignOnRequestBoundToNoBrowser: a request completed by single
// sign-on at /authorize is stored with a binding no browser holds, so that
// the login pages treat it as another browser's, not as a request from
// before bindings (open to any browser).
func TestSingleSignOnRequestBoundToNoBrowser(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, _, rp1, _ := twoApps(t, dbURL)
		b := newBrowser(t, e.issuer)
		rp1.signIn(t, b)
		sso := b.get(rp1.authURL())
		code := rp1.callback(sso.Location())
		ar, _, err := e.srv.store.AuthRequestByCode(e.ctx, storage.HashSecret(code), e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if ar.BrowserBinding == "" {
			t.Fatal("a request completed by single sign-on was stored without a binding")
		}
		for name, br := range map[string]*browser{"its browser": b, "another browser": newBrowser(t, e.issuer)} {
			if p := br.get("/login?authRequestID=" + ar.ID); p.Status != http.StatusBadRequest || p.Location() != "" {
				t.Fatalf("%s on the login page of a request completed by single sign-on: status %d, location %q", name, p.Status, p.Location())
			}
		}
	})
}
