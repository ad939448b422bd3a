package main

import (
	"net/http"
	"strings"
	"testing"

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
