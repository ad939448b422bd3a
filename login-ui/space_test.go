package loginui

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
)

func TestSecureSpaceNeedsActiveSession(t *testing.T) {
	e := newEnv(t)
	wantRedirect(t, e.browser().get("/espace"), "/login")
}

func TestSecureSpaceAndLogout(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	wantRedirect(t, b.loginAs(agentPassword), "/espace")
	space := b.get("/espace")
	wantStatus(t, space, http.StatusOK)
	wantContains(t, space, "Camille Martin", agentEmail, "Mairie de Lille", "Portail RSA", "Statistiques")
	links := findAll(space.doc, "a")
	if !slices.ContainsFunc(links, func(a *htmlNode) bool { return attr(a, "href") == "https://rsa.example/" && text(a) == "Portail RSA" }) {
		t.Error("no link to the application's home")
	}
	if !slices.ContainsFunc(links, func(a *htmlNode) bool {
		return attr(a, "href") == "/login/password" && text(a) == "Mettre à jour votre mot de passe"
	}) {
		t.Error("no « Mettre à jour votre mot de passe »")
	}
	cookie := b.cookie(SessionCookieName(false))

	res := b.submit(space, "/logout", nil)
	wantRedirect(t, res, "/login?info=logged_out")
	if c := sessionCookieOf(t, res.resp); c.MaxAge >= 0 {
		t.Error("session cookie not cleared")
	}
	if _, err := e.accounts.Session(t.Context(), cookie); err == nil {
		t.Fatal("session still alive after logout")
	}
	wantContains(t, b.get("/login?info=logged_out"), "Vous êtes déconnecté.")
	wantRedirect(t, b.get("/espace"), "/login")

	// The old cookie, replayed, opens nothing.
	b.setCookie(SessionCookieName(false), cookie)
	wantRedirect(t, b.get("/espace"), "/login")
}

func TestLogoutNeedsCSRF(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.loginAs(agentPassword)
	wantStatus(t, b.post("/logout", url.Values{}), http.StatusForbidden)
	wantStatus(t, b.get("/espace"), http.StatusOK)
}
