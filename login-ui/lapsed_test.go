package loginui

import (
	"net/http"
	"net/url"
	"testing"
)

// endRestrictedSessions ends every session, as the 30 minutes of a
// restricted session running out do.
func endRestrictedSessions(e *env) {
	e.accounts.mu.Lock()
	defer e.accounts.mu.Unlock()
	for k := range e.accounts.sessions {
		delete(e.accounts.sessions, k)
	}
}

var newPassword = url.Values{"current": {provisional}, "new": {"nouveau12"}, "confirmation": {"nouveau12"}}

const changeLapsedNotice = "Votre mot de passe n'a pas été modifié : votre session a expiré. Connectez-vous à nouveau avec votre mot de passe provisoire."

// TestForcedChangeAfterItsSessionEndedSaysWhy: a forced change posted once
// its restricted session has ended (three passwords typed) is not made, and
// the login page says so and what to do, for the same request while it
// lives, without it once it lapsed too (« Demande de connexion expirée »
// would hide the notice).
func TestForcedChangeAfterItsSessionEndedSaysWhy(t *testing.T) {
	for _, lapsed := range []bool{false, true} {
		e := newEnv(t)
		b, id, form := changingBrowser(t, e)
		endRestrictedSessions(e)
		want := "/login?authRequestID=" + id + "&info=change_lapsed"
		if lapsed {
			e.requests.mu.Lock()
			delete(e.requests.requests, id)
			e.requests.mu.Unlock()
			want = "/login?info=change_lapsed"
		}
		res := b.submit(form, "/login/change", newPassword)
		wantRedirect(t, res, want)
		if len(e.accounts.forcedCalls) != 0 {
			t.Fatal("a change was made without its session")
		}
		p := b.get(want)
		wantStatus(t, p, http.StatusOK)
		wantContains(t, p, changeLapsedNotice)
		p.input(t, "password")
	}
}

// TestForcedChangeMadeByTheFirstClickIsNotToldLapsed: the first click of a
// double click made the change and ended the restricted session before
// the second was read. The second must not say that nothing was changed:
// the provisional password is spent. It goes to the login page as before.
// Nor does a form whose agent field was not signed for this browser learn
// anything.
func TestForcedChangeMadeByTheFirstClickIsNotToldLapsed(t *testing.T) {
	e := newEnv(t)
	b, id, form := changingBrowser(t, e)
	e.accounts.mu.Lock()
	u := e.accounts.users[agentID]
	u.PendingPasswordChange = false
	e.accounts.users[agentID] = u
	e.accounts.mu.Unlock()
	endRestrictedSessions(e)
	wantRedirect(t, b.submit(form, "/login/change", newPassword), "/login?authRequestID="+id)

	e2 := newEnv(t)
	_, id2, form2 := changingBrowser(t, e2)
	endRestrictedSessions(e2)
	other := e2.browser()
	other.get("/login/password")
	for _, agent := range []string{"", agentID, agentID + ".00", findAgentField(t, form2)} {
		res := other.post("/login/change?authRequestID="+id2, url.Values{
			"csrf": {other.cookie("idp_csrf")}, "agent": {agent}, "current": {provisional}, "new": {"nouveau12"}, "confirmation": {"nouveau12"}})
		wantRedirect(t, res, "/login?authRequestID="+id2)
	}
}

// findAgentField is the agent field of the forced change form p.
func findAgentField(t *testing.T, p *page) string {
	t.Helper()
	for _, in := range findAll(p.doc, "input") {
		if attr(in, "name") == "agent" {
			return attr(in, "value")
		}
	}
	t.Fatal("the forced change form names no agent")
	return ""
}

// TestForcedChangeSavedThoughTheRequestLapsedSaysSo: the change was made
// but the auth request lapsed while the agent chose the password (30
// minutes from /authorize, and the mail may take an hour). Not only
// « Demande de connexion expirée » (the agent, believing the change failed,
// would try the provisional password again): the secure space, where the
// applications are, says the password was changed; with
// login.relogin_after_change, the login page says it.
func TestForcedChangeSavedThoughTheRequestLapsedSaysSo(t *testing.T) {
	for _, relogin := range []bool{false, true} {
		e := newEnv(t, func(c *Config) { c.ReloginAfterChange = relogin })
		b, id, form := changingBrowser(t, e)
		e.requests.mu.Lock()
		delete(e.requests.requests, id)
		e.requests.mu.Unlock()
		res := b.submit(form, "/login/change", newPassword)
		if len(e.accounts.forcedCalls) != 1 {
			t.Fatalf("forced change not made: %v", e.accounts.forcedCalls)
		}
		if relogin {
			wantRedirect(t, res, "/login?info=password_changed")
			wantContains(t, b.get("/login?info=password_changed"), "Votre mot de passe a été modifié. Connectez-vous avec votre nouveau mot de passe.")
			continue
		}
		wantRedirect(t, res, "/espace?info=password_changed")
		p := b.get("/espace?info=password_changed")
		wantStatus(t, p, http.StatusOK)
		wantContains(t, p, "Votre mot de passe a été modifié.", "Portail RSA")
	}
}
