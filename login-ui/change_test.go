package loginui

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/caf-extranet/idp/account"
	"github.com/caf-extranet/idp/account/policy"
	"github.com/caf-extranet/idp/storage"
)

// changingBrowser has logged in with the provisional password for a new
// auth request, and stands on the forced change form.
func changingBrowser(t *testing.T, e *env) (b *browser, id string, form *page) {
	t.Helper()
	id = e.addAuthRequest(nil)
	b = e.browser()
	p := b.get("/login?authRequestID=" + id)
	wantRedirect(t, b.submit(p, "/login", url.Values{"email": {agentEmail}, "password": {provisional}}), "/login/change?authRequestID="+id)
	form = b.get("/login/change?authRequestID=" + id)
	wantStatus(t, form, http.StatusOK)
	return b, id, form
}

var everyViolation = []policy.Violation{
	policy.TooShort, policy.TooLong, policy.NoLowercase, policy.NoUppercase, policy.NoDigit, policy.NoSymbol,
	policy.Forbidden, policy.ContainsEmail, policy.SameAsCurrent, policy.ConfirmationMismatch,
}

// The messages expected next to « Nouveau mot de passe », in the order of
// everyViolation (the confirmation mismatch goes next to the confirmation).
var newPasswordMessages = []string{
	"Le nouveau mot de passe doit contenir au moins 6 caractères.",
	"Le nouveau mot de passe doit contenir au plus 20 caractères.",
	"Le nouveau mot de passe doit contenir au moins une lettre minuscule.",
	"Le nouveau mot de passe doit contenir au moins une lettre majuscule.",
	"Le nouveau mot de passe doit contenir au moins un chiffre.",
	"Le nouveau mot de passe doit contenir au moins un caractère spécial (ni lettre ni chiffre).",
	"Ce mot de passe est trop courant. Veuillez en choisir un autre.",
	"Le nouveau mot de passe ne doit pas contenir votre adresse e-mail.",
	"Le nouveau mot de passe doit être différent du mot de passe actuel.",
}

func wantNoPasswordKept(t *testing.T, p *page) {
	t.Helper()
	for _, in := range findAll(p.doc, "input") {
		if attr(in, "type") == "password" && hasAttr(in, "value") {
			t.Errorf("password field %q kept a value", attr(in, "name"))
		}
	}
}

func TestForcedChangeShowsEveryProblemAtItsField(t *testing.T) {
	e := newEnv(t)
	b, id, form := changingBrowser(t, e)
	e.accounts.forcedErr = &account.ChangeError{CurrentWrong: true, Violations: everyViolation}
	res := b.submit(form, "/login/change", url.Values{"current": {"faux"}, "new": {"x"}, "confirmation": {"y"}})
	wantStatus(t, res, http.StatusOK)
	if got := res.fieldErrors(t, "current"); !slices.Equal(got, []string{"Le mot de passe actuel est incorrect. Saisissez le mot de passe provisoire reçu par e-mail."}) {
		t.Errorf("current: %q", got)
	}
	if got := res.fieldErrors(t, "new"); !slices.Equal(got, newPasswordMessages) {
		t.Errorf("new:\n%q\nwant\n%q", got, newPasswordMessages)
	}
	if got := res.fieldErrors(t, "confirmation"); !slices.Equal(got, []string{"La confirmation ne correspond pas au nouveau mot de passe."}) {
		t.Errorf("confirmation: %q", got)
	}
	if n := len(res.summary()); n != len(everyViolation)+1 {
		t.Errorf("summary has %d lines", n)
	}
	wantNoPasswordKept(t, res)
	wantContains(t, res, "Par mesure de sécurité, veuillez maintenant personnaliser votre mot de passe.")
	if len(e.requests.completions()) != 0 {
		t.Fatal("completed despite the errors")
	}
	if action := attr(res.form(t, "/login/change"), "action"); action != "/login/change?authRequestID="+id {
		t.Errorf("form action %q lost the auth request", action)
	}
}

func TestForcedChangeSuccessRenewsSessionAndCompletes(t *testing.T) {
	e := newEnv(t)
	b, id, form := changingBrowser(t, e)
	old := b.cookie(SessionCookieName(false))
	res := b.submit(form, "/login/change", url.Values{"current": {provisional}, "new": {"nouveau1"}, "confirmation": {"nouveau1"}})
	wantRedirect(t, res, e.requests.CallbackURL(id))
	fresh := sessionCookieOf(t, res.resp).Value
	if fresh == "" || fresh == old {
		t.Fatal("session cookie not renewed")
	}
	if _, err := e.accounts.Session(t.Context(), old); err == nil {
		t.Fatal("the restricted session survived")
	}
	s, err := e.accounts.Session(t.Context(), fresh)
	if err != nil || s.Kind != storage.SessionActive {
		t.Fatalf("new session %+v %v", s, err)
	}
	got := e.requests.completions()
	if len(got) != 1 || got[0].AuthRequestID != id || got[0].Session.ID != s.ID {
		t.Fatalf("completions %+v", got)
	}
	// The agent now reaches the secure space.
	wantStatus(t, b.get("/espace"), http.StatusOK)
}

func TestForcedChangeWithoutAuthRequestGoesToSecureSpace(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.get("/login")
	wantRedirect(t, b.post("/login", url.Values{"csrf": {b.cookie("idp_csrf")}, "email": {agentEmail}, "password": {provisional}}), "/login/change")
	res := b.post("/login/change", url.Values{"csrf": {b.cookie("idp_csrf")}, "current": {provisional}, "new": {"nouveau1"}, "confirmation": {"nouveau1"}})
	wantRedirect(t, res, "/espace")
}

func TestForcedChangeThenRelogin(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ReloginAfterChange = true })
	b, id, form := changingBrowser(t, e)
	res := b.submit(form, "/login/change", url.Values{"current": {provisional}, "new": {"nouveau1"}, "confirmation": {"nouveau1"}})
	wantRedirect(t, res, "/login?authRequestID="+id+"&info=password_changed")
	if c := sessionCookieOf(t, res.resp); c.MaxAge >= 0 {
		t.Errorf("session cookie not cleared: %+v", c)
	}
	if e.accounts.sessionCount() != 0 || len(e.requests.completions()) != 0 {
		t.Fatal("a session or a completion was left")
	}
	p := b.get(res.resp.Header.Get("Location"))
	wantStatus(t, p, http.StatusOK)
	wantContains(t, p, "Votre mot de passe a été modifié. Connectez-vous avec votre nouveau mot de passe.")
	p.input(t, "password")
}

func TestForcedChangeNeedsChangeSession(t *testing.T) {
	e := newEnv(t)
	id := e.addAuthRequest(nil)
	wantRedirect(t, e.browser().get("/login/change?authRequestID="+id), "/login?authRequestID="+id)
	b := e.browser()
	b.loginAs(agentPassword)
	wantRedirect(t, b.get("/login/change?authRequestID="+id), "/login?authRequestID="+id)
	res := b.post("/login/change?authRequestID="+id, url.Values{"csrf": {b.cookie("idp_csrf")}, "current": {agentPassword}, "new": {"nouveau1"}, "confirmation": {"nouveau1"}})
	wantRedirect(t, res, "/login?authRequestID="+id)
	if len(e.accounts.forcedCalls) != 0 {
		t.Fatal("forced change without a change session")
	}
}

func TestForcedChangeNotPending(t *testing.T) {
	e := newEnv(t)
	b, id, form := changingBrowser(t, e)
	e.accounts.forcedErr = account.ErrNotPending
	res := b.submit(form, "/login/change", url.Values{"current": {provisional}, "new": {"nouveau1"}, "confirmation": {"nouveau1"}})
	wantStatus(t, res, http.StatusOK)
	wantContains(t, res, "Votre mot de passe provisoire a expiré")
	if !slices.ContainsFunc(findAll(res.doc, "a"), func(a *htmlNode) bool {
		return attr(a, "href") == "/login/forgot?authRequestID="+id && text(a) == "Mot de passe oublié ?"
	}) {
		t.Error("no link to « Mot de passe oublié ? »")
	}
	if c := sessionCookieOf(t, res.resp); c.MaxAge >= 0 {
		t.Error("session cookie not cleared")
	}
	if e.accounts.sessionCount() != 0 {
		t.Error("the restricted session survived")
	}
}

// TestForcedChangeMadeMeanwhileGoesToTheLoginPage: the second click of a
// double click on « Valider » finds nothing left to change, the first
// having made the change and ended the restricted session while the second
// was on its way. Its answer must neither say the provisional password
// expired nor clear the session cookie, which the first answer may have
// set to the new session: the login page decides, for the same request.
func TestForcedChangeMadeMeanwhileGoesToTheLoginPage(t *testing.T) {
	e := newEnv(t)
	b, id, form := changingBrowser(t, e)
	e.accounts.forcedErr, e.accounts.changedMeanwhile = account.ErrNotPending, true
	res := b.submit(form, "/login/change", url.Values{"current": {provisional}, "new": {"nouveau1"}, "confirmation": {"nouveau1"}})
	wantRedirect(t, res, "/login?authRequestID="+id)
	if c := res.resp.Header.Values("Set-Cookie"); slices.ContainsFunc(c, func(v string) bool {
		return strings.HasPrefix(v, SessionCookieName(false)+"=")
	}) {
		t.Errorf("the answer touched the session cookie: %q", c)
	}
}

// cancelButton is the forced change page's « Annuler »: a submit button of a
// form of its own posting to /logout (no JavaScript), whose action it
// returns.
func cancelButton(t *testing.T, p *page) string {
	t.Helper()
	for _, f := range findAll(p.doc, "form") {
		if !strings.HasPrefix(attr(f, "action"), "/logout") {
			continue
		}
		if !slices.ContainsFunc(findAll(f, "button"), func(b *htmlNode) bool {
			return attr(b, "type") == "submit" && text(b) == "Annuler"
		}) {
			t.Fatalf("the form posting to %s has no « Annuler » button", attr(f, "action"))
		}
		return attr(f, "action")
	}
	t.Fatalf("the forced change page has no way to end the restricted session (no form posting to /logout):\n%s", p.text())
	return ""
}

// TestForcedChangePageOffersAWayOut: on a shared office PC, an agent who
// logged in with a provisional password and left the forced change form
// leaves its restricted session behind for up to 30 minutes. While it
// lives, every way to the login form (GET /login with or without an auth
// request, /espace) leads to that agent's change form: the next agent at the
// PC could not log in. « Annuler » ends the restricted session and returns
// to the login page, for the same auth request if there was one.
func TestForcedChangePageOffersAWayOut(t *testing.T) {
	t.Run("without an auth request", func(t *testing.T) {
		e := newEnv(t)
		b := e.browser()
		wantRedirect(t, b.loginAs(provisional), "/login/change")
		change := b.get("/login/change")
		wantStatus(t, change, http.StatusOK)
		wantRedirect(t, b.get("/login"), "/login/change")
		wantRedirect(t, b.get("/espace"), "/login/change")
		if action := cancelButton(t, change); action != "/logout" {
			t.Errorf("« Annuler » posts to %q", action)
		}
		res := b.submit(change, "/logout", nil)
		wantRedirect(t, res, "/login?info=logged_out")
		if e.accounts.sessionCount() != 0 {
			t.Error("the restricted session survived « Annuler »")
		}
		login := b.get("/login")
		wantStatus(t, login, http.StatusOK)
		login.input(t, "password")
	})
	t.Run("with an auth request", func(t *testing.T) {
		e := newEnv(t)
		b, id, change := changingBrowser(t, e)
		wantRedirect(t, b.get("/login?authRequestID="+id), "/login/change?authRequestID="+id)
		if action := cancelButton(t, change); action != "/logout?authRequestID="+id {
			t.Errorf("« Annuler » posts to %q, losing the auth request", action)
		}
		res := b.submit(change, "/logout", nil)
		wantRedirect(t, res, "/login?authRequestID="+id+"&info=logged_out")
		login := b.get(res.resp.Header.Get("Location"))
		wantStatus(t, login, http.StatusOK)
		wantContains(t, login, "Vous êtes déconnecté.")
		login.input(t, "password")
		if len(e.requests.completions()) != 0 {
			t.Error("« Annuler » completed the auth request")
		}
	})
}

func TestForcedChangeOverlongPasswordNeverReachesService(t *testing.T) {
	e := newEnv(t)
	b, _, form := changingBrowser(t, e)
	long := strings.Repeat("a1", maxPasswordBytes)
	res := b.submit(form, "/login/change", url.Values{"current": {provisional}, "new": {long}, "confirmation": {long}})
	if got := res.fieldErrors(t, "new"); !slices.Equal(got, []string{"Le nouveau mot de passe est trop long."}) {
		t.Errorf("new: %q", got)
	}
	if len(e.accounts.forcedCalls) != 0 {
		t.Fatal("service called with an over-long password")
	}
}

func TestVoluntaryChange(t *testing.T) {
	e := newEnv(t)
	id := e.addAuthRequest(nil)
	b := e.browser()
	form := b.get("/login/password?authRequestID=" + id)
	wantContains(t, form, "Mettre à jour votre mot de passe")
	if !slices.ContainsFunc(findAll(form.doc, "a"), func(a *htmlNode) bool {
		return text(a) == "Annuler" && attr(a, "href") == "/login?authRequestID="+id
	}) {
		t.Error("« Annuler » does not lead back to the login of the same request")
	}

	e.accounts.changeErr = &account.ChangeError{CurrentWrong: true, Violations: []policy.Violation{policy.NoDigit, policy.ConfirmationMismatch}}
	res := b.submit(form, "/login/password", url.Values{"email": {agentEmail}, "current": {"faux"}, "new": {"abcdef"}, "confirmation": {"abcdeg"}})
	wantStatus(t, res, http.StatusOK)
	if got := res.fieldErrors(t, "current"); !slices.Equal(got, []string{"Adresse e-mail ou mot de passe actuel incorrect."}) {
		t.Errorf("current: %q", got)
	}
	if got := res.fieldErrors(t, "new"); !slices.Equal(got, []string{"Le nouveau mot de passe doit contenir au moins un chiffre."}) {
		t.Errorf("new: %q", got)
	}
	if got := res.fieldErrors(t, "confirmation"); !slices.Equal(got, []string{"La confirmation ne correspond pas au nouveau mot de passe."}) {
		t.Errorf("confirmation: %q", got)
	}
	if attr(res.input(t, "email"), "value") != agentEmail {
		t.Error("address not kept")
	}
	wantNoPasswordKept(t, res)

	e.accounts.changeErr = nil
	ok := b.submit(res, "/login/password", url.Values{"email": {agentEmail}, "current": {agentPassword}, "new": {"nouveau1"}, "confirmation": {"nouveau1"}})
	wantRedirect(t, ok, "/login?authRequestID="+id+"&info=password_changed")
	if !slices.Equal(e.accounts.changeCalls, []string{agentEmail, agentEmail}) {
		t.Errorf("ChangePassword calls %q", e.accounts.changeCalls)
	}
	wantContains(t, b.get(ok.resp.Header.Get("Location")), "Votre mot de passe a été modifié.")
}

func TestVoluntaryChangeWithoutAddress(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	form := b.get("/login/password")
	res := b.submit(form, "/login/password", url.Values{"email": {""}, "current": {""}, "new": {"abc"}, "confirmation": {"abc"}})
	if got := res.fieldErrors(t, "email"); !slices.Equal(got, []string{"Veuillez saisir votre adresse e-mail."}) {
		t.Errorf("email: %q", got)
	}
	if got := res.fieldErrors(t, "current"); !slices.Equal(got, []string{"Veuillez saisir votre mot de passe actuel."}) {
		t.Errorf("current: %q", got)
	}
	if got := res.fieldErrors(t, "new"); !slices.Equal(got, []string{"Le nouveau mot de passe doit contenir au moins 6 caractères.", "Le nouveau mot de passe doit contenir au moins un chiffre."}) {
		t.Errorf("new: %q", got)
	}
	if len(e.accounts.changeCalls) != 0 {
		t.Error("service asked about an empty address")
	}
}

// TestVoluntaryChangeOverlongAddressNeverReachesService: an address longer
// than any account's gets the service's answer for an unknown one (the
// current password wrong, the new one checked against the policy), with the
// address kept, without asking the service: no hash, no throttle key too
// long for the database.
func TestVoluntaryChangeOverlongAddressNeverReachesService(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	long := strings.Repeat("a", maxEmailBytes) + "@caf.example"
	res := b.submit(b.get("/login/password"), "/login/password", url.Values{"email": {long}, "current": {agentPassword}, "new": {"abcdef"}, "confirmation": {"abcdef"}})
	wantStatus(t, res, http.StatusOK)
	if got := res.fieldErrors(t, "current"); !slices.Equal(got, []string{"Adresse e-mail ou mot de passe actuel incorrect."}) {
		t.Errorf("current: %q", got)
	}
	if got := res.fieldErrors(t, "new"); !slices.Equal(got, []string{"Le nouveau mot de passe doit contenir au moins un chiffre."}) {
		t.Errorf("new: %q", got)
	}
	if attr(res.input(t, "email"), "value") != long {
		t.Error("address not kept")
	}
	wantNoPasswordKept(t, res)
	if len(e.accounts.changeCalls) != 0 {
		t.Error("service asked about an over-long address")
	}
}

func TestPolicyHelpFollowsTheActivePolicy(t *testing.T) {
	c := catalogFR()
	render := func(p policy.Policy) []string {
		var out []string
		for _, m := range policyRules(p) {
			s, err := c.resolve(m)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	if got := render(policy.Default()); !slices.Equal(got, []string{"au moins une lettre minuscule", "au moins un chiffre", "entre 6 et 20 caractères"}) {
		t.Errorf("default: %q", got)
	}
	if got := render(policy.NIST()); !slices.Equal(got, []string{"entre 15 et 64 caractères", "ne pas contenir votre adresse e-mail"}) {
		t.Errorf("NIST: %q", got)
	}
}

// TestChangeFormsThrottled: when the account rules throttle a change, both
// forms say so next to the current password, with 429, and complete nothing.
func TestChangeFormsThrottled(t *testing.T) {
	e := newEnv(t)
	b, _, form := changingBrowser(t, e)
	e.accounts.forcedErr = account.ErrThrottled
	res := b.submit(form, "/login/change", url.Values{"current": {provisional}, "new": {"nouveau1"}, "confirmation": {"nouveau1"}})
	wantStatus(t, res, http.StatusTooManyRequests)
	wantContains(t, res, "Trop de tentatives. Veuillez réessayer dans quelques minutes.")

	e.accounts.changeErr = account.ErrThrottled
	b = e.browser()
	p := b.get("/login/password")
	res = b.submit(p, "/login/password", url.Values{"email": {agentEmail}, "current": {"x"}, "new": {"nouveau1"}, "confirmation": {"nouveau1"}})
	wantStatus(t, res, http.StatusTooManyRequests)
	wantContains(t, res, "Trop de tentatives. Veuillez réessayer dans quelques minutes.")
}

// busyMessage is the answer to a password attempt the account rules could
// not check in time.
const busyMessage = "Le service est momentanément très sollicité : votre mot de passe n'a pas pu être vérifié. Veuillez réessayer dans quelques instants."

// wantBusy checks the answer to a shed attempt: 503 with Retry-After, the
// form again with the message in its announced summary, what was typed
// kept but the passwords.
func wantBusy(t *testing.T, res *page, kept map[string]string, passwords ...string) {
	t.Helper()
	wantStatus(t, res, http.StatusServiceUnavailable)
	if got := res.resp.Header.Get("Retry-After"); got != "10" {
		t.Errorf("Retry-After %q, want 10", got)
	}
	if got := res.summary(); !slices.Equal(got, []string{busyMessage}) {
		t.Errorf("summary %q, want the busy message alone", got)
	}
	for name, value := range kept {
		if got := attr(res.input(t, name), "value"); got != value {
			t.Errorf("%s %q not kept: %q", name, value, got)
		}
	}
	for _, name := range passwords {
		if hasAttr(res.input(t, name), "value") {
			t.Errorf("password field %s kept", name)
		}
	}
}

// TestShedAttemptsAskToRetry: a login or a change whose password the
// account rules could not check in time (account.ErrBusy) shows its form
// again, asking to retry in a moment, and completes nothing.
func TestShedAttemptsAskToRetry(t *testing.T) {
	e := newEnv(t)
	busy := fmt.Errorf("%w: %w", account.ErrBusy, context.DeadlineExceeded)

	e.accounts.loginErr = busy
	b := e.browser()
	id := e.addAuthRequest(nil)
	p := b.get("/login?authRequestID=" + id)
	res := b.submit(p, "/login", url.Values{"email": {agentEmail}, "password": {agentPassword}})
	wantBusy(t, res, map[string]string{"email": agentEmail}, "password")
	if b.cookie(SessionCookieName(false)) != "" || len(e.requests.completions()) != 0 {
		t.Error("a shed login opened a session or completed its request")
	}
	e.accounts.loginErr = nil

	b, _, form := changingBrowser(t, e)
	e.accounts.forcedErr = busy
	res = b.submit(form, "/login/change", url.Values{"current": {provisional}, "new": {"nouveau1"}, "confirmation": {"nouveau1"}})
	wantBusy(t, res, nil, "current", "new", "confirmation")

	e.accounts.changeErr = busy
	b = e.browser()
	p = b.get("/login/password")
	res = b.submit(p, "/login/password", url.Values{"email": {agentEmail}, "current": {"x"}, "new": {"nouveau1"}, "confirmation": {"nouveau1"}})
	wantBusy(t, res, map[string]string{"email": agentEmail}, "current", "new", "confirmation")
}
