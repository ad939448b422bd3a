package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/mail"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/net/html"

	"github.com/caf-extranet/idp/account"
	loginui "github.com/caf-extranet/idp/login-ui"
	"github.com/caf-extranet/idp/storage"
)

// hostileValue is one malicious or malformed input.
type hostileValue struct {
	name, value string
	// formOnly: too big for a URL (a request line of 1 MB is refused before
	// any handler runs); sent in form bodies only.
	formOnly bool
}

// hostileValues is what an attacker or a broken client types into any field.
var hostileValues = []hostileValue{
	{name: "SQL injection", value: `' OR '1'='1' --`},
	{name: "SQL injection after an address", value: agentEmail + `'; DROP TABLE users; --`},
	{name: "script", value: `<script>alert(1)</script>`},
	{name: "markup breaking out of an attribute", value: `"><svg onload=alert(1)>`},
	{name: "markup in a plausible address", value: `"><script>alert(1)</script>@exemple.fr`},
	{name: "CRLF header injection", value: agentEmail + "\r\nBcc: victime@exemple.fr"},
	{name: "NUL byte", value: "agent\x00dupont@partenaire.fr"},
	{name: "invalid UTF-8", value: "agent\xff\xfe@partenaire.fr"},
	{name: "1 MB", value: strings.Repeat("a1", 1<<19), formOnly: true},
}

// rawMarkup must never appear verbatim in a response: escaped, it is text.
var rawMarkup = []string{"<script>alert(1)</script>", "<svg onload=alert(1)>"}

// hostileClient is a browser without redirect following, to look at every
// answer on the way.
type hostileClient struct {
	t      *testing.T
	e      *testEnv
	client *http.Client
}

func newHostileClient(t *testing.T, e *testEnv) *hostileClient {
	jar, _ := cookiejar.New(nil)
	return &hostileClient{t: t, e: e, client: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// answer is a response with its body read.
type answer struct {
	resp *http.Response
	body string
}

func (a answer) location() string { return a.resp.Header.Get("Location") }

func (h *hostileClient) do(req *http.Request) answer {
	h.t.Helper()
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %.200s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return answer{resp: resp, body: string(raw)}
}

func (h *hostileClient) get(target string, header ...string) answer {
	h.t.Helper()
	if strings.HasPrefix(target, "/") {
		target = h.e.issuer + target
	}
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return h.do(req)
}

func (h *hostileClient) post(path string, form url.Values, basicAuth ...string) answer {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.e.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basicAuth) == 2 {
		req.SetBasicAuth(basicAuth[0], basicAuth[1])
	}
	return h.do(req)
}

// cookie is the value of one of the browser's cookies.
func (h *hostileClient) cookie(name string) string {
	u, _ := url.Parse(h.e.issuer)
	for _, c := range h.client.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// hiddenFields reads the hidden inputs of the form posting to path.
func hiddenFields(t *testing.T, a answer, path string) url.Values {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(a.body))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findAll(doc, isElem("form")) {
		if action := attr(f, "action"); action != path && !strings.HasPrefix(action, path+"?") {
			continue
		}
		v := url.Values{}
		for _, in := range findAll(f, isElem("input")) {
			if attr(in, "type") == "hidden" {
				v.Set(attr(in, "name"), attr(in, "value"))
			}
		}
		return v
	}
	t.Fatalf("no form posting to %s (status %d): %.800s", path, a.resp.StatusCode, a.body)
	return nil
}

// wantHarmless is what every answer to hostile input must be: no server
// error, the markup never reflected as markup, no header injected, no
// session handed out.
func wantHarmless(t *testing.T, label string, a answer) {
	t.Helper()
	if a.resp.StatusCode >= 500 {
		t.Fatalf("%s: status %d: %.500s", label, a.resp.StatusCode, a.body)
	}
	for _, m := range rawMarkup {
		if strings.Contains(a.body, m) {
			t.Fatalf("%s: the answer (%s) reflects %q unescaped: %.800s", label, a.resp.Header.Get("Content-Type"), m, a.body)
		}
	}
	if strings.HasPrefix(a.resp.Header.Get("Content-Type"), "text/html") {
		doc, err := html.Parse(strings.NewReader(a.body))
		if err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		for _, n := range findAll(doc, func(n *html.Node) bool { return n.Type == html.ElementNode }) {
			if n.Data == "script" || n.Data == "svg" {
				t.Fatalf("%s: the page holds a <%s> element: %.800s", label, n.Data, a.body)
			}
			for _, at := range n.Attr {
				if strings.HasPrefix(strings.ToLower(at.Key), "on") {
					t.Fatalf("%s: <%s> has an event handler %s=%q", label, n.Data, at.Key, at.Val)
				}
			}
		}
	}
	for k, vs := range a.resp.Header {
		if strings.EqualFold(k, "Bcc") {
			t.Fatalf("%s: a Bcc header was injected into the answer", label)
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n") {
				t.Fatalf("%s: header %s carries a line break: %q", label, k, v)
			}
		}
	}
	for _, sc := range a.resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, "idp_session=") && !strings.HasPrefix(sc, "idp_session=;") {
			t.Fatalf("%s: a session was handed out: %s", label, sc)
		}
	}
}

// TestHostileInput sends each hostile value in each form field and each
// parameter of the provider and its pages; each gets a clear refusal, and
// nothing is stored or reflected unescaped.
func TestHostileInput(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, withTestCaptcha)
		e.addAgent(agentEmail, "Claire Dupont", "Mairie de Lyon", agentPass)
		const pendingEmail = "en.attente@partenaire.fr"
		e.addAgent(pendingEmail, "Paul Attente", "", agentPass)
		secret := e.addClient("app1", app1Redirect, false)
		rp := newRP(t, e, "app1", secret, app1Redirect)

		// The pending agent holds a provisional password; changer() is a
		// browser in the forced change.
		if err := e.srv.accounts.ResetPassword(e.ctx, pendingEmail, accountMeta); err != nil {
			t.Fatal(err)
		}
		e.deliverMail()
		provisional := e.provisionalPassword(pendingEmail)
		changer := func() *hostileClient {
			h := newHostileClient(t, e)
			form := hiddenFields(t, h.get("/login"), "/login")
			form.Set("email", pendingEmail)
			form.Set("password", provisional)
			if a := h.post("/login", form); a.resp.StatusCode != http.StatusSeeOther || a.location() != "/login/change" {
				t.Fatalf("provisional login: %d %q", a.resp.StatusCode, a.location())
			}
			return h
		}

		before := snapshotState(t, e, agentEmail, pendingEmail)

		t.Run("authorize parameters", func(t *testing.T) {
			base, err := url.Parse(rp.authURL())
			if err != nil {
				t.Fatal(err)
			}
			params := []string{"client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "login_hint",
				"ui_locales", "prompt", "max_age", "code_challenge", "code_challenge_method", "response_mode",
				"display", "acr_values", "id_token_hint", "claims", "request"}
			for _, name := range params {
				for _, hv := range hostileValues {
					if hv.formOnly {
						continue
					}
					label := "/authorize " + name + "=" + hv.name
					q := base.Query()
					q.Set(name, hv.value)
					u := *base
					u.RawQuery = q.Encode()
					h := newHostileClient(t, e)
					a := h.get(u.String())
					wantHarmless(t, label, a)
					// Follow it to the login page, where login_hint and the
					// others may show.
					for hops := 0; hops < 3 && strings.HasPrefix(a.location(), "/"); hops++ {
						a = h.get(a.location())
						wantHarmless(t, label+" (then "+a.resp.Request.URL.Path+")", a)
					}
					if loc := a.location(); strings.HasPrefix(loc, app1Redirect) {
						back, err := url.Parse(loc)
						if err != nil {
							t.Fatalf("%s: redirect %q: %v", label, loc, err)
						}
						if back.Query().Get("error") == "server_error" {
							t.Fatalf("%s: a bad parameter is a server error: %q", label, loc)
						}
						if back.Query().Get("state") != q.Get("state") {
							t.Fatalf("%s: state %q came back as %q", label, q.Get("state"), back.Query().Get("state"))
						}
					}
				}
			}
		})

		t.Run("state and nonce come back exactly", func(t *testing.T) {
			for _, hv := range hostileValues {
				if hv.formOnly || !utf8.ValidString(hv.value) || strings.ContainsRune(hv.value, 0) {
					continue // PostgreSQL cannot store them: the request ends with an error (see above)
				}
				b := newBrowser(t, e.issuer)
				base, _ := url.Parse(rp.authURL())
				q := base.Query()
				q.Set("state", hv.value)
				q.Set("nonce", hv.value)
				base.RawQuery = q.Encode()
				out := login(t, b, b.get(base.String()), agentEmail, agentPass)
				back, err := url.Parse(out.Location())
				if err != nil || back.Query().Get("state") != hv.value || back.Query().Get("code") == "" {
					t.Fatalf("%s: redirect %q (%v)", hv.name, out.Location(), err)
				}
				resp, body := postForm(t, e, "/oauth/token", "app1", secret, url.Values{"grant_type": {"authorization_code"},
					"code": {back.Query().Get("code")}, "redirect_uri": {app1Redirect}, "code_verifier": {rp.pkce}})
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: exchange %d %v", hv.name, resp.StatusCode, body)
				}
				idToken, _ := body["id_token"].(string)
				if nonce := jwtClaim(t, idToken, "nonce"); nonce != hv.value {
					t.Fatalf("%s: nonce %q in the ID token", hv.name, nonce)
				}
			}
		})

		// forms: each page's form, the values a legitimate submission would
		// carry, and the fields to spoil one at a time.
		type hostileForm struct {
			path   string
			client func() *hostileClient // nil: a new browser
			valid  map[string]string
		}
		forms := []hostileForm{
			{"/login", nil, map[string]string{"email": agentEmail, "password": agentPass}},
			// An address without an account: a request that goes through
			// records a job and mails nobody.
			{"/login/forgot", nil, map[string]string{"email": "inconnu@partenaire.fr", "captcha": testCaptcha}},
			{"/login/change", changer, map[string]string{"current": provisional, "new": "nouveau2026", "confirmation": "nouveau2026"}},
			{"/login/password", nil, map[string]string{"email": agentEmail, "current": agentPass, "new": "nouveau2026", "confirmation": "nouveau2026"}},
		}
		for _, f := range forms {
			t.Run("form "+f.path, func(t *testing.T) {
				fields := []string{"csrf"}
				for k := range f.valid {
					fields = append(fields, k)
				}
				if f.path == "/login/forgot" {
					fields = append(fields, "challenge", "kind")
				}
				var h *hostileClient
				if f.client != nil {
					h = f.client()
				}
				for _, field := range fields {
					if f.path == "/login/forgot" {
						// A new CAPTCHA window per field: the per-address
						// limits on challenges and wrong answers stay out of
						// the way.
						e.clock.advance(11 * time.Minute)
					}
					for _, hv := range hostileValues {
						label := "POST " + f.path + " " + field + "=" + hv.name
						if f.client == nil {
							h = newHostileClient(t, e)
						}
						values := hiddenFields(t, h.get(f.path), f.path)
						for k, v := range f.valid {
							values.Set(k, v)
						}
						values.Set(field, hv.value)
						if field == "new" || field == "confirmation" {
							// A spoilt new password is refused either way; as
							// both, it meets the policy check, not only the
							// mismatch.
							values.Set("new", hv.value)
							values.Set("confirmation", hv.value)
						}
						a := h.post(f.path, values)
						wantHarmless(t, label, a)
						// Only the forgot form may go on: its answer is the same
						// whatever the address (and the kind of CAPTCHA
						// defaults to the image); no mail may follow.
						if a.resp.StatusCode == http.StatusSeeOther && (f.path != "/login/forgot" || a.location() != "/login/forgot/sent") {
							t.Fatalf("%s: accepted, redirected to %q", label, a.location())
						}
					}
				}
				// The auth request id in the query, on the page and its form.
				for _, hv := range hostileValues {
					if hv.formOnly {
						continue
					}
					if f.client == nil {
						h = newHostileClient(t, e)
					}
					target := f.path + "?authRequestID=" + url.QueryEscape(hv.value)
					a := h.get(target)
					wantHarmless(t, "GET "+target, a)
					values := hiddenFields(t, h.get(f.path), f.path)
					for k, v := range f.valid {
						values.Set(k, v)
					}
					values.Set("new", "x") // never a successful change
					wantHarmless(t, "POST "+target, h.post(target, values))
				}
			})
		}

		t.Run("other endpoints", func(t *testing.T) {
			for _, hv := range hostileValues {
				if hv.formOnly {
					continue
				}
				h := newHostileClient(t, e)
				v := url.QueryEscape(hv.value)
				for _, target := range []string{
					"/authorize/callback?id=" + v,
					"/end_session?id_token_hint=" + v,
					"/end_session?client_id=app1&post_logout_redirect_uri=" + v,
					"/end_session?client_id=app1&post_logout_redirect_uri=" + url.QueryEscape(app1Redirect+"/logged-out") + "&state=" + v,
					"/end_session?ui_locales=" + v,
					"/end_session?client_id=" + v,
					"/login?info=" + v,
					"/login/forgot/sent?authRequestID=" + v,
					"/espace?authRequestID=" + v,
					"/keys?kid=" + v,
				} {
					wantHarmless(t, "GET "+target+" ("+hv.name+")", h.get(target))
				}
				if !strings.ContainsAny(hv.value, "\r\n\x00") {
					a := h.get("/userinfo", "Authorization", "Bearer "+hv.value)
					wantHarmless(t, "userinfo bearer "+hv.name, a)
					if a.resp.StatusCode == http.StatusOK {
						t.Fatalf("userinfo accepted the bearer %s", hv.name)
					}
				}
				for _, form := range []url.Values{
					{"grant_type": {hv.value}},
					{"grant_type": {"authorization_code"}, "code": {hv.value}, "redirect_uri": {app1Redirect}},
					{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {hv.value}},
					{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {app1Redirect}, "code_verifier": {hv.value}},
					{"grant_type": {"refresh_token"}, "refresh_token": {hv.value}},
				} {
					a := h.post("/oauth/token", form, "app1", secret)
					wantHarmless(t, "token "+form.Encode()[:min(60, len(form.Encode()))]+" ("+hv.name+")", a)
					if a.resp.StatusCode == http.StatusOK {
						t.Fatalf("the token endpoint accepted %v", form)
					}
				}
				a := h.post("/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, hv.value, "s")
				wantHarmless(t, "token with client_id "+hv.name, a)
				a = h.post("/oauth/introspect", url.Values{"token": {hv.value}}, "app1", secret)
				wantHarmless(t, "introspect "+hv.name, a)
				if strings.Contains(a.body, `"active":true`) {
					t.Fatalf("introspection says %s is active", hv.name)
				}
				wantHarmless(t, "revoke "+hv.name, h.post("/revoke", url.Values{"token": {hv.value}, "token_type_hint": {hv.value}}, "app1", secret))
			}
		})

		// An administrator's typo or a poisoned import: line breaks in the
		// name of an agent who is then mailed.
		trapped := 0
		t.Run("CRLF in an agent's name reaches no mail header", func(t *testing.T) {
			const email = "nom.piege@partenaire.fr"
			_, err := e.srv.accounts.CreateUser(e.ctx, account.NewUser{Email: email,
				Name: "Jean\r\nBcc: victime@exemple.fr", Organisation: "Org\r\nX-Injected: 1"}, accountMeta)
			var refused *account.InputError
			if errors.As(err, &refused) {
				return // refused at creation with a clear error: nothing stored
			}
			if err != nil {
				t.Fatal(err)
			}
			trapped = 1
			e.deliverMail()
			e.provisionalPassword(email) // the mail did go out, to the agent
		})

		// Nothing was stored by a refused request: no account changed, no
		// recovery mail for anyone, the pending agent still pending. And
		// every mail has the headers it was built with, nothing injected.
		e.deliverMail()
		after := snapshotState(t, e, agentEmail, pendingEmail)
		if after.agentHash != before.agentHash || after.pendingHash != before.pendingHash || !after.pending {
			t.Fatal("a hostile request changed a password or the pending state")
		}
		if after.users != before.users+trapped {
			t.Fatalf("%d accounts before, %d after", before.users, after.users)
		}
		for _, m := range e.mails() {
			for k := range m.Header {
				if strings.EqualFold(k, "Bcc") || strings.EqualFold(k, "X-Injected") {
					t.Fatalf("a mail carries an injected %s header: %v", k, m.Header)
				}
			}
			to, err := mail.ParseAddressList(m.Header.Get("To"))
			if err != nil || len(to) != 1 {
				t.Fatalf("a mail's To is %q (%v)", m.Header.Get("To"), err)
			}
			if to[0].Address != agentEmail && to[0].Address != pendingEmail && to[0].Address != "nom.piege@partenaire.fr" {
				t.Fatalf("a mail went to %s", to[0].Address)
			}
		}
		if after.mailsTo != before.mailsTo {
			t.Fatalf("mails to the agents: %d before, %d after", before.mailsTo, after.mailsTo)
		}
	})
}

// stateSnapshot is what a refused request must leave unchanged.
type stateSnapshot struct {
	users                  int
	agentHash, pendingHash string
	pending                bool
	mailsTo                int // mails to the two agents
}

func snapshotState(t *testing.T, e *testEnv, agent, pendingAgent string) stateSnapshot {
	t.Helper()
	users, err := e.srv.store.ListUsers(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.srv.store.GetUserByEmail(e.ctx, agent)
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.srv.store.GetUserByEmail(e.ctx, pendingAgent)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range e.mails() {
		if to := m.Header.Get("To"); strings.Contains(to, agent) || strings.Contains(to, pendingAgent) {
			n++
		}
	}
	return stateSnapshot{users: len(users), agentHash: a.PasswordHash, pendingHash: p.PasswordHash,
		pending: p.PendingPasswordChange, mailsTo: n}
}

// jwtClaim reads one string claim of a JWT's payload (the signature is the
// relying party's business, checked elsewhere).
func jwtClaim(t *testing.T, jwt, name string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	s, _ := claims[name].(string)
	return s
}

// userAgentTransport sends every request with one User-Agent.
type userAgentTransport struct{ ua string }

func (u userAgentTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", u.ua)
	return http.DefaultTransport.RoundTrip(r)
}

// TestUserAgentNotUTF8: Go's server passes a header's bytes through, and
// PostgreSQL refuses text that is not UTF-8. A browser sending such a
// User-Agent still logs in and still asks for a password (the audit events
// go in the same writes as the session and the recovery job), and the
// trail keeps the header without the bytes.
func TestUserAgentNotUTF8(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, withTestCaptcha)
		e.addAgent(agentEmail, "Claire Dupont", "Mairie de Lyon", agentPass)
		h := newHostileClient(t, e)
		h.client.Transport = userAgentTransport{"Mozilla/5.0 \xff\xfe(X11)"}

		form := hiddenFields(t, h.get("/login"), "/login")
		form.Set("email", agentEmail)
		form.Set("password", agentPass)
		if a := h.post("/login", form); a.resp.StatusCode != http.StatusSeeOther || h.cookie(loginui.SessionCookieName(false)) == "" {
			t.Fatalf("login: %d %q, session cookie %q", a.resp.StatusCode, a.location(), h.cookie(loginui.SessionCookieName(false)))
		}
		form = hiddenFields(t, h.get("/login/forgot"), "/login/forgot")
		form.Set("email", agentEmail)
		form.Set("captcha", testCaptcha)
		if a := h.post("/login/forgot", form); a.resp.StatusCode != http.StatusSeeOther || a.location() != "/login/forgot/sent" {
			t.Fatalf("forgot: %d %q", a.resp.StatusCode, a.location())
		}

		events, err := e.srv.store.ListAudit(e.ctx, storage.AuditFilter{Email: agentEmail})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]string{}
		for _, ev := range events {
			seen[ev.Type] = ev.UserAgent
		}
		for _, typ := range []string{"login.success", "recovery.requested"} {
			if ua, ok := seen[typ]; !ok || ua != "Mozilla/5.0 (X11)" {
				t.Errorf("%s: recorded %v with User-Agent %q, want it with %q", typ, ok, ua, "Mozilla/5.0 (X11)")
			}
		}
	})
}

// TestOverlongAddressIsAnsweredAsWrongCredentials: an address far beyond
// any real one (RFC 5321 caps a path at 254 bytes, and the forgot form
// refuses longer) typed into the login form or the voluntary change form
// gets, on both engines, the very page an unknown address gets, with what
// was typed kept; never « Erreur technique » (on PostgreSQL the throttle
// key built from it was too large for the index of the throttles).
func TestOverlongAddressIsAnsweredAsWrongCredentials(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, _, rp1, _ := twoApps(t, dbURL)
		raw := make([]byte, 2500)
		_, _ = rand.Read(raw)
		long := hex.EncodeToString(raw) + "@partenaire.fr" // 5014 bytes, incompressible
		const unknown = "inconnu@partenaire.fr"

		// sameAnswer compares the page for the long address with the one
		// for an unknown address: status and visible text (the typed
		// values are in attributes, not text).
		sameAnswer := func(form string, got, want *page, button string) {
			t.Helper()
			if got.Status != want.Status || got.text() != want.text() {
				t.Errorf("%s with a 5 kB address: status %d, page %.300s; an unknown address gets status %d, page %.300s",
					form, got.Status, got.text(), want.Status, want.text())
			}
			if v := got.form(button).value("Adresse e-mail"); v != long {
				t.Errorf("%s: the address typed was not kept (%d bytes kept)", form, len(v))
			}
		}

		b := newBrowser(t, e.issuer)
		login := func(email string) *page {
			return b.submit(b.get(rp1.authURL()).form("Valider").set("Adresse e-mail", email).set("Mot de passe", "mauvais1"))
		}
		sameAnswer("login", login(long), login(unknown), "Valider")

		change := func(email string) *page {
			return b.submit(b.get("/login/password").form("Valider").
				set("Adresse e-mail", email).set("Mot de passe actuel", "mauvais1").
				set("Nouveau mot de passe", "nouveau12").set("Confirmation mot de passe", "nouveau12"))
		}
		sameAnswer("voluntary change", change(long), change(unknown), "Valider")
	})
}
