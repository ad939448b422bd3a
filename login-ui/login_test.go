package loginui

import (
	"bytes"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

func sessionCookieOf(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == SessionCookieName(false) || c.Name == SessionCookieName(true) {
			return c
		}
	}
	t.Fatalf("no session cookie set; headers %v", resp.Header)
	return nil
}

func TestLoginFailuresAreGenericAndKeepTheAddress(t *testing.T) {
	e := newEnv(t)
	e.accounts.addUser(storage.User{ID: "u-off", Email: "off@caf.example", Disabled: true}, "perso123", "")
	cases := map[string][2]string{
		"unknown address":   {"inconnu@caf.example", agentPassword},
		"wrong password":    {agentEmail, "mauvais1"},
		"disabled account":  {"off@caf.example", "perso123"},
		"over-long":         {agentEmail, strings.Repeat("a", maxPasswordBytes+1)},
		"over-long address": {strings.Repeat("a", maxEmailBytes) + "@caf.example", agentPassword},
		"case of password":  {agentEmail, strings.ToUpper(agentPassword)},
		"other password":    {agentEmail, "Prov2023x"},
	}
	var bodies []string
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b := e.browser()
			p := b.get("/login")
			res := b.submit(p, "/login", url.Values{"email": {c[0]}, "password": {c[1]}})
			wantStatus(t, res, http.StatusOK)
			if got := res.fieldErrors(t, "password"); !slices.Equal(got, []string{"Identifiant ou mot de passe incorrect"}) {
				t.Errorf("errors %q", got)
			}
			if got := attr(res.input(t, "email"), "value"); got != c[0] {
				t.Errorf("e-mail %q not kept: %q", c[0], got)
			}
			if hasAttr(res.input(t, "password"), "value") {
				t.Error("password kept in the form")
			}
			if b.cookie(SessionCookieName(false)) != "" {
				t.Error("a session cookie was set")
			}
			bodies = append(bodies, strings.ReplaceAll(res.body, c[0], "ADDRESS"))
		})
	}
	// Apart from the address typed (and the CSRF token of each browser),
	// every failure is the same page.
	csrf := regexp.MustCompile(`name="csrf" value="[^"]*"`)
	for _, body := range bodies[1:] {
		if csrf.ReplaceAllString(body, "") != csrf.ReplaceAllString(bodies[0], "") {
			t.Fatal("login failures differ")
		}
	}
	// The over-long password and address never reached LogIn (no account
	// has such an address; its throttle key would be too long).
	if n := len(e.accounts.authCalls); n != len(cases)-2 {
		t.Errorf("LogIn called %d times, want %d", n, len(cases)-2)
	}
}

func TestLoginEmptyFieldsAreNamed(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	res := b.submit(b.get("/login"), "/login", url.Values{"email": {""}, "password": {""}})
	if got := res.fieldErrors(t, "email"); !slices.Equal(got, []string{"Veuillez saisir votre adresse e-mail."}) {
		t.Errorf("email errors %q", got)
	}
	if got := res.fieldErrors(t, "password"); !slices.Equal(got, []string{"Veuillez saisir votre mot de passe."}) {
		t.Errorf("password errors %q", got)
	}
	if e.accounts.calls() != 0 {
		t.Error("LogIn called")
	}
}

func TestLoginPersonalPasswordCompletesAuthRequest(t *testing.T) {
	e := newEnv(t)
	id := e.addAuthRequest(nil)
	b := e.browser()
	p := b.get("/login?authRequestID=" + id)
	res := b.submit(p, "/login", url.Values{"email": {agentEmail}, "password": {agentPassword}})
	wantRedirect(t, res, e.requests.CallbackURL(id))
	c := sessionCookieOf(t, res.resp)
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.MaxAge != 0 || !c.Expires.IsZero() || c.Secure {
		t.Errorf("session cookie attributes: %+v", c)
	}
	got := e.requests.completions()
	if len(got) != 1 || got[0].AuthRequestID != id || got[0].Session.Kind != storage.SessionActive || got[0].Session.UserID != agentID {
		t.Fatalf("completions %+v", got)
	}
	if got[0].Session.ID != storage.HashSecret(c.Value) {
		t.Error("completed with another session than the cookie's")
	}
}

func TestLoginWithoutAuthRequestGoesToSecureSpace(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	wantRedirect(t, b.loginAs(agentPassword), "/espace")
	if len(e.requests.completions()) != 0 {
		t.Fatal("completed an auth request")
	}
	// Logged in, /login leads to the space too.
	wantRedirect(t, b.get("/login"), "/espace")
}

func TestLoginReplacesThePreviousSession(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.loginAs(agentPassword)
	first := b.cookie(SessionCookieName(false))
	b.loginAs(agentPassword)
	second := b.cookie(SessionCookieName(false))
	if first == "" || first == second {
		t.Fatal("session not renewed")
	}
	if _, ok := e.accounts.sessions[first]; ok {
		t.Fatal("previous session left behind")
	}
}

func TestLoginProvisionalPasswordOpensChangeSession(t *testing.T) {
	e := newEnv(t)
	id := e.addAuthRequest(nil)
	b := e.browser()
	p := b.get("/login?authRequestID=" + id)
	res := b.submit(p, "/login", url.Values{"email": {agentEmail}, "password": {provisional}})
	wantRedirect(t, res, "/login/change?authRequestID="+id)
	s, err := e.accounts.Session(t.Context(), sessionCookieOf(t, res.resp).Value)
	if err != nil || s.Kind != storage.SessionPasswordChange {
		t.Fatalf("session %+v %v", s, err)
	}
	if len(e.requests.completions()) != 0 {
		t.Fatal("auth request completed before the change")
	}
	// That session opens nothing else.
	wantRedirect(t, b.get("/espace"), "/login/change")
	wantRedirect(t, b.get("/login?authRequestID="+id), "/login/change?authRequestID="+id)
}

func TestLoginHintIsPrefilledAndEscaped(t *testing.T) {
	e := newEnv(t)
	hint := `"><script>alert(1)</script>@x.fr`
	id := e.addAuthRequest(func(ar *storage.AuthRequest) { ar.LoginHint = hint })
	p := e.browser().get("/login?authRequestID=" + id)
	if got := attr(p.input(t, "email"), "value"); got != hint {
		t.Errorf("value %q", got)
	}
	if len(findAll(p.doc, "script")) != 0 || strings.Contains(p.body, "<script>") {
		t.Fatal("login_hint injected markup")
	}
	id2 := e.addAuthRequest(func(ar *storage.AuthRequest) { ar.LoginHint = agentEmail })
	if got := attr(e.browser().get("/login?authRequestID="+id2).input(t, "email"), "value"); got != agentEmail {
		t.Errorf("hint not prefilled: %q", got)
	}
}

func TestLoginUnknownOrExpiredAuthRequest(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for _, id := range []string{"inconnu", "a%20b", strings.Repeat("x", 300)} {
		p := b.get("/login?authRequestID=" + id)
		wantStatus(t, p, http.StatusBadRequest)
		wantContains(t, p, "Votre demande de connexion a expiré")
		if !slices.ContainsFunc(findAll(p.doc, "a"), func(a *htmlNode) bool { return attr(a, "href") == "/login" }) {
			t.Error("no link back to the portal")
		}
	}
	b.get("/login")
	res := b.post("/login?authRequestID=inconnu", url.Values{"csrf": {b.cookie("idp_csrf")}, "email": {agentEmail}, "password": {agentPassword}})
	wantStatus(t, res, http.StatusBadRequest)
	if e.accounts.calls() != 0 {
		t.Error("authenticated against an expired request")
	}
}

func TestLoginRejectsBadInputClearly(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p := b.get("/login")
	res := b.submit(p, "/login", url.Values{"email": {"agent\xff@caf.example"}, "password": {"a\x00b"}})
	wantStatus(t, res, http.StatusOK)
	for _, id := range []string{"email", "password"} {
		if got := res.fieldErrors(t, id); !slices.Equal(got, []string{"Ce champ contient des caractères non valides."}) {
			t.Errorf("%s errors %q", id, got)
		}
	}
	if e.accounts.calls() != 0 {
		t.Error("LogIn called with invalid text")
	}

	huge := url.Values{"csrf": {b.cookie("idp_csrf")}, "email": {agentEmail}, "password": {strings.Repeat("a", maxFormBytes)}}
	res = b.post("/login", huge)
	wantStatus(t, res, http.StatusRequestEntityTooLarge)
	wantContains(t, res, "Le formulaire envoyé est trop volumineux.")
	if e.accounts.calls() != 0 {
		t.Error("LogIn called with an over-sized form")
	}
}

func TestCSRFRefusedOnEveryForm(t *testing.T) {
	e := newEnv(t)
	id := e.addAuthRequest(nil)
	b := e.browser()
	b.loginAs(agentPassword)
	before := e.accounts.calls()
	sessions := e.accounts.sessionCount()
	forms := map[string]url.Values{
		"/login?authRequestID=" + id:          {"email": {agentEmail}, "password": {agentPassword}},
		"/login/forgot?authRequestID=" + id:   {"email": {agentEmail}, "captcha": {testAnswer}},
		"/login/change?authRequestID=" + id:   {"current": {provisional}, "new": {"nouveau1"}, "confirmation": {"nouveau1"}},
		"/login/password?authRequestID=" + id: {"email": {agentEmail}, "current": {agentPassword}, "new": {"nouveau1"}, "confirmation": {"nouveau1"}},
		"/logout":                             {},
	}
	for path, values := range forms {
		// "wrong" differs from the real token in its first character (the
		// real one may itself start with an x).
		valid := b.cookie("idp_csrf")
		wrong := "x" + valid[1:]
		if wrong == valid {
			wrong = "y" + valid[1:]
		}
		for name, token := range map[string][]string{"missing": nil, "wrong": {wrong}, "empty": {""}} {
			v := url.Values{}
			for k, x := range values {
				v[k] = x
			}
			if token != nil {
				v["csrf"] = token
			}
			res := b.post(path, v)
			wantStatus(t, res, http.StatusForbidden)
			wantContains(t, res, "La session du formulaire a expiré. Veuillez recommencer.")
			back := strings.SplitN(path, "?", 2)[0]
			if back == "/logout" {
				back = "/espace"
			}
			if !slices.ContainsFunc(findAll(res.doc, "a"), func(a *htmlNode) bool { return strings.HasPrefix(attr(a, "href"), back) }) {
				t.Errorf("%s (%s token): no link back", path, name)
			}
		}
	}
	// A browser without the cookie is refused even with a token.
	other := e.browser()
	res := other.post("/login", url.Values{"csrf": {b.cookie("idp_csrf")}, "email": {agentEmail}, "password": {agentPassword}})
	wantStatus(t, res, http.StatusForbidden)

	if e.accounts.calls() != before || e.accounts.sessionCount() != sessions || len(e.requests.completions()) != 0 {
		t.Fatal("something was done despite the CSRF failure")
	}
}

func TestSSODecisions(t *testing.T) {
	maxAge := func(s int64) *int64 { return &s }
	cases := []struct {
		name    string
		kind    string // browser session kind; "" for none
		pending bool
		mod     func(*storage.AuthRequest)
		advance time.Duration
		want    string // "callback", "form", "change", or an OAuth error
	}{
		{name: "session, no prompt", kind: storage.SessionActive, want: "callback"},
		{name: "prompt=login", kind: storage.SessionActive, mod: func(a *storage.AuthRequest) { a.Prompt = []string{"login"} }, want: "form"},
		{name: "max_age exceeded", kind: storage.SessionActive, mod: func(a *storage.AuthRequest) { a.MaxAge = maxAge(60) }, advance: 2 * time.Minute, want: "form"},
		{name: "max_age respected", kind: storage.SessionActive, mod: func(a *storage.AuthRequest) { a.MaxAge = maxAge(600) }, advance: 2 * time.Minute, want: "callback"},
		{name: "max_age huge", kind: storage.SessionActive, mod: func(a *storage.AuthRequest) { a.MaxAge = maxAge(1 << 62) }, advance: time.Hour, want: "callback"},
		{name: "prompt=none with session", kind: storage.SessionActive, mod: func(a *storage.AuthRequest) { a.Prompt = []string{"none"} }, want: "callback"},
		{name: "prompt=none without session", mod: func(a *storage.AuthRequest) { a.Prompt = []string{"none"} }, want: "login_required"},
		{name: "prompt=none, max_age exceeded", kind: storage.SessionActive, mod: func(a *storage.AuthRequest) { a.Prompt = []string{"none"}; a.MaxAge = maxAge(10) }, advance: time.Minute, want: "login_required"},
		{name: "prompt=none, change session", kind: storage.SessionPasswordChange, mod: func(a *storage.AuthRequest) { a.Prompt = []string{"none"} }, want: "interaction_required"},
		{name: "prompt=none, pending agent", kind: storage.SessionActive, pending: true, mod: func(a *storage.AuthRequest) { a.Prompt = []string{"none"} }, want: "interaction_required"},
		{name: "change session", kind: storage.SessionPasswordChange, want: "change"},
		{name: "no session", want: "form"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			id := e.addAuthRequest(c.mod)
			b := e.browser()
			if c.kind != "" {
				cookie, _, _ := e.accounts.StartSession(t.Context(), agentID, c.kind, e.clock.Now())
				b.setCookie(SessionCookieName(false), cookie)
			}
			if c.pending {
				u := e.accounts.users[agentID]
				u.PendingPasswordChange = true
				e.accounts.users[agentID] = u
			}
			e.clock.Advance(c.advance)
			p := b.get("/login?authRequestID=" + id)
			switch c.want {
			case "callback":
				wantRedirect(t, p, e.requests.CallbackURL(id))
				if got := e.requests.completions(); len(got) != 1 || got[0].AuthRequestID != id {
					t.Fatalf("completions %+v", got)
				}
			case "form":
				wantStatus(t, p, http.StatusOK)
				p.input(t, "password")
				if len(e.requests.completions()) != 0 {
					t.Fatal("completed")
				}
			case "change":
				wantRedirect(t, p, "/login/change?authRequestID="+id)
			default:
				wantRedirect(t, p, "https://rsa.example/cb?error="+c.want+"&state=st4te")
				if len(e.requests.completions()) != 0 {
					t.Fatal("completed")
				}
			}
		})
	}
}

func TestSSOIgnoresDisabledAgent(t *testing.T) {
	e := newEnv(t)
	id := e.addAuthRequest(nil)
	b := e.browser()
	cookie, _, _ := e.accounts.StartSession(t.Context(), agentID, storage.SessionActive, e.clock.Now())
	b.setCookie(SessionCookieName(false), cookie)
	u := e.accounts.users[agentID]
	u.Disabled = true
	e.accounts.users[agentID] = u
	wantStatus(t, b.get("/login?authRequestID="+id), http.StatusOK)
	if len(e.requests.completions()) != 0 {
		t.Fatal("disabled agent signed in by SSO")
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p := b.get("/login")
	h := p.resp.Header
	want := map[string]string{
		"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
		"Cache-Control":           "no-store",
		"Content-Type":            "text/html; charset=utf-8",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if h.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS over http")
	}
	css := b.get("/static/style.css")
	wantStatus(t, css, http.StatusOK)
	if !strings.HasPrefix(css.resp.Header.Get("Content-Type"), "text/css") || strings.Contains(css.resp.Header.Get("Cache-Control"), "no-store") {
		t.Errorf("stylesheet headers %v", css.resp.Header)
	}
	if !strings.Contains(css.body, ":focus") {
		t.Error("no focus style")
	}

	rec := &headerRecorder{h: http.Header{}}
	SecurityHeaders(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), true).ServeHTTP(rec, &http.Request{})
	if !strings.HasPrefix(rec.h.Get("Strict-Transport-Security"), "max-age=") {
		t.Error("no HSTS when asked")
	}
}

type headerRecorder struct{ h http.Header }

func (r *headerRecorder) Header() http.Header         { return r.h }
func (r *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *headerRecorder) WriteHeader(int)             {}

// With an https issuer the cookies are Secure and __Host- prefixed.
func TestSecureCookies(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SecureCookies = true })
	if SessionCookieName(true) != "__Host-idp_session" || SessionCookieName(false) != "idp_session" {
		t.Fatal("session cookie names")
	}
	resp, err := http.Get(e.srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var csrf *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-idp_csrf" {
			csrf = c
		}
	}
	if csrf == nil || !csrf.Secure || !csrf.HttpOnly || csrf.Path != "/" || csrf.Domain != "" || csrf.SameSite != http.SameSiteLaxMode {
		t.Fatalf("CSRF cookie %+v", csrf)
	}
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS with an https issuer")
	}
	form := url.Values{"csrf": {csrf.Value}, "email": {agentEmail}, "password": {agentPassword}}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(csrf)
	resp, err = (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c := sessionCookieOf(t, resp)
	if c.Name != "__Host-idp_session" || !c.Secure || !c.HttpOnly || c.Path != "/" || c.MaxAge != 0 || !c.Expires.IsZero() {
		t.Fatalf("session cookie %+v", c)
	}
}

// A template that fails half-way gives the clean error page, not half a
// page; and the log holds neither the password nor the cookie.
func TestRenderErrorGivesCleanPage(t *testing.T) {
	e := newEnv(t)
	var logs bytes.Buffer
	e.h.log = slog.New(slog.NewTextHandler(&logs, nil))
	broken := template.Must(template.New("login").Funcs(e.h.catalog.funcs()).Parse(`{{define "layout"}}<p>début de page</p>{{t "no.such.key"}}{{end}}`))
	b := e.browser()
	b.loginAs(agentPassword)
	cookie := b.cookie(SessionCookieName(false))
	e.h.pages["login"] = broken
	// A notice a live session is shown: the login page renders.
	p := b.get("/login?info=password_changed")
	wantStatus(t, p, http.StatusInternalServerError)
	wantContains(t, p, "Une erreur technique est survenue.")
	if strings.Contains(p.body, "début de page") {
		t.Fatal("half a page was sent")
	}
	if !strings.Contains(logs.String(), "no.such.key") {
		t.Errorf("error not logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), agentPassword) || strings.Contains(logs.String(), cookie) {
		t.Fatal("secret in the log")
	}
}

// TestSessionOfAnotherAgentThanTheHintIsNoSession: with an id_token_hint,
// only the session of the hint's agent completes a request without a login;
// another agent's counts as none (OIDC Core 3.1.2.1).
func TestSessionOfAnotherAgentThanTheHintIsNoSession(t *testing.T) {
	now := time.Now()
	session := func(userID, kind string) browserSession {
		return browserSession{Found: true, Sess: storage.Session{Kind: kind, AuthTime: now}, User: storage.User{ID: userID}}
	}
	for _, c := range []struct {
		name   string
		hint   string
		prompt []string
		b      browserSession
		want   ssoOutcome
	}{
		{"the hint's agent", "u-a", nil, session("u-a", storage.SessionActive), completeWithSession},
		{"the hint's agent, prompt=none", "u-a", []string{"none"}, session("u-a", storage.SessionActive), completeWithSession},
		{"no hint", "", []string{"none"}, session("u-b", storage.SessionActive), completeWithSession},
		{"another agent", "u-a", nil, session("u-b", storage.SessionActive), showLoginForm},
		{"another agent, prompt=none", "u-a", []string{"none"}, session("u-b", storage.SessionActive), failLoginRequired},
		{"another agent changing its password", "u-a", nil, session("u-b", storage.SessionPasswordChange), showLoginForm},
		{"another agent changing its password, prompt=none", "u-a", []string{"none"}, session("u-b", storage.SessionPasswordChange), failLoginRequired},
	} {
		ar := storage.AuthRequest{IDTokenHintSubject: c.hint, Prompt: c.prompt}
		if got := decideSSO(ar, c.b, now); got != c.want {
			t.Errorf("%s: outcome %d, want %d", c.name, got, c.want)
		}
	}
}
