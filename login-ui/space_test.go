package loginui

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/caf-extranet/idp/storage"
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

// TestLoggedOutNoticeNeverShownToALiveSession: the page of a logout stays in
// the tab's history; the agent logs in again from it, then goes back or
// reloads that tab. « Vous êtes déconnecté. » would then be shown while the
// session goes on, and on a shared PC the agent would leave it to the next
// person. The page goes on as without the notice: to the secure space.
func TestLoggedOutNoticeNeverShownToALiveSession(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	wantRedirect(t, b.loginAs(agentPassword), "/espace")
	wantRedirect(t, b.get("/login?info=logged_out"), "/espace")
	wantRedirect(t, b.get("/login?info=change_lapsed"), "/espace")

	// With an auth request whose prompt=login shows the form to a live
	// session, the form comes without the notice.
	id := e.addAuthRequest(func(ar *storage.AuthRequest) { ar.Prompt = []string{"login"} })
	p := b.get("/login?authRequestID=" + id + "&info=logged_out")
	wantStatus(t, p, http.StatusOK)
	if strings.Contains(p.text(), "Vous êtes déconnecté.") {
		t.Error("« Vous êtes déconnecté. » shown to a live session")
	}
}
