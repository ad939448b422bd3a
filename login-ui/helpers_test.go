package loginui

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"golang.org/x/net/html"

	"github.com/caf-extranet/idp/e2e/htmlq"

	"github.com/caf-extranet/idp/account"
	"github.com/caf-extranet/idp/account/policy"
	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/sqlite"
)

// testClock is the injected clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeAccounts is a small in-memory account service that records calls.
type fakeAccounts struct {
	mu    sync.Mutex
	clock *testClock
	// users by id; personal and provisional passwords by e-mail.
	users       map[string]storage.User
	personal    map[string]string
	provisional map[string]string
	sessions    map[string]storage.Session // by cookie value

	authCalls     []string // e-mails
	recoveries    []string // e-mails
	forcedCalls   []string // user ids
	changeCalls   []string // e-mails
	endedSessions []string
	// recordReceipt, when set, keeps a request's receipt where the pages
	// read it, as the real service's write does.
	recordReceipt func(storage.ChallengeReceipt) error
	// forcedErr / changeErr are what the change methods return; loginErr,
	// when set, what LogIn returns.
	forcedErr error
	changeErr error
	loginErr  error
	// changedMeanwhile: another submission made the forced change while
	// this one was on its way; the agent's sessions are gone when
	// forcedErr comes.
	changedMeanwhile bool
}

func newFakeAccounts(clock *testClock) *fakeAccounts {
	return &fakeAccounts{
		clock: clock, users: map[string]storage.User{}, personal: map[string]string{},
		provisional: map[string]string{}, sessions: map[string]storage.Session{},
	}
}

func (a *fakeAccounts) addUser(u storage.User, personal, provisional string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.users[u.ID] = u
	if personal != "" {
		a.personal[u.Email] = personal
	}
	if provisional != "" {
		a.provisional[u.Email] = provisional
	}
}

func (a *fakeAccounts) byEmail(email string) (storage.User, bool) {
	for _, u := range a.users {
		if u.Email == storage.NormaliseEmail(email) {
			return u, true
		}
	}
	return storage.User{}, false
}

func (a *fakeAccounts) LogIn(ctx context.Context, email, password string, meta account.Meta) (account.Login, string, storage.Session, error) {
	if a.loginErr != nil {
		return account.Login{}, "", storage.Session{}, a.loginErr
	}
	login, err := a.authenticate(email, password)
	if err != nil {
		return account.Login{}, "", storage.Session{}, err
	}
	kind := storage.SessionActive
	if login.Provisional {
		kind = storage.SessionPasswordChange
	}
	cookie, s, err := a.StartSession(ctx, login.User.ID, kind, a.clock.Now())
	return login, cookie, s, err
}

func (a *fakeAccounts) authenticate(email, password string) (account.Login, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.authCalls = append(a.authCalls, email)
	u, ok := a.byEmail(email)
	if !ok || u.Disabled {
		return account.Login{}, account.ErrInvalidCredentials
	}
	if p := a.personal[u.Email]; p != "" && p == password {
		// As the real service: a personal login clears the pending flag.
		u.PendingPasswordChange = false
		a.users[u.ID] = u
		return account.Login{User: u}, nil
	}
	if p := a.provisional[u.Email]; p != "" && p == password {
		u.PendingPasswordChange = true
		a.users[u.ID] = u
		return account.Login{User: u, Provisional: true}, nil
	}
	return account.Login{}, account.ErrInvalidCredentials
}

func (a *fakeAccounts) RequestRecovery(_ context.Context, email string, _ account.Meta, receipt storage.ChallengeReceipt) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recoveries = append(a.recoveries, email)
	if a.recordReceipt != nil && receipt.ID != "" {
		return a.recordReceipt(receipt)
	}
	return nil
}

func (a *fakeAccounts) CompleteForcedChange(_ context.Context, userID, _, _, _ string, _ account.Meta) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.forcedCalls = append(a.forcedCalls, userID)
	if a.forcedErr != nil && !a.changedMeanwhile {
		return a.forcedErr
	}
	u := a.users[userID]
	u.PendingPasswordChange = false
	a.users[userID] = u
	// As the real store does: every session of the agent goes.
	for k, s := range a.sessions {
		if s.UserID == userID {
			delete(a.sessions, k)
		}
	}
	return a.forcedErr
}

func (a *fakeAccounts) ChangePassword(_ context.Context, email, _, _, _ string, _ account.Meta) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.changeCalls = append(a.changeCalls, email)
	return a.changeErr
}

func (a *fakeAccounts) StartSession(_ context.Context, userID, kind string, authTime time.Time) (string, storage.Session, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cookie := storage.NewSecret()
	now := a.clock.Now()
	s := storage.Session{ID: storage.HashSecret(cookie), UserID: userID, Kind: kind, AuthTime: authTime,
		CreatedAt: now, LastSeenAt: now, IdleExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(8 * time.Hour)}
	a.sessions[cookie] = s
	return cookie, s, nil
}

func (a *fakeAccounts) Session(_ context.Context, cookie string) (storage.Session, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[cookie]
	if !ok {
		return storage.Session{}, storage.ErrNotFound
	}
	return s, nil
}

func (a *fakeAccounts) SessionAndUser(ctx context.Context, cookie string) (storage.Session, storage.User, error) {
	s, err := a.Session(ctx, cookie)
	if err != nil {
		return storage.Session{}, storage.User{}, err
	}
	u, err := a.User(ctx, s.UserID)
	if err != nil {
		return storage.Session{}, storage.User{}, err
	}
	return s, u, nil
}

func (a *fakeAccounts) EndSession(_ context.Context, cookie string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.endedSessions = append(a.endedSessions, cookie)
	delete(a.sessions, cookie)
	return nil
}

func (a *fakeAccounts) User(_ context.Context, id string) (storage.User, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	u, ok := a.users[id]
	if !ok {
		return storage.User{}, storage.ErrNotFound
	}
	return u, nil
}

func (a *fakeAccounts) Policy() policy.Policy { return policy.Default() }

func (a *fakeAccounts) sessionCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.sessions)
}

// calls is everything the account service was asked to do, for the tests
// that expect nothing.
func (a *fakeAccounts) calls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.authCalls) + len(a.recoveries) + len(a.forcedCalls) + len(a.changeCalls)
}

// fakeRequests stands for the OpenID provider's bridge.
type fakeRequests struct {
	mu        sync.Mutex
	requests  map[string]storage.AuthRequest
	clients   []storage.Client
	completed []completion
	errors    []string // OAuth errors redirected with
}

type completion struct {
	AuthRequestID string
	Session       storage.Session
}

func newFakeRequests() *fakeRequests {
	return &fakeRequests{requests: map[string]storage.AuthRequest{}}
}

func (f *fakeRequests) add(ar storage.AuthRequest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests[ar.ID] = ar
}

func (f *fakeRequests) AuthRequest(_ context.Context, id string) (storage.AuthRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ar, ok := f.requests[id]
	if !ok {
		return storage.AuthRequest{}, storage.ErrNotFound
	}
	return ar, nil
}

func (f *fakeRequests) Client(_ context.Context, id string) (storage.Client, error) {
	for _, c := range f.clients {
		if c.ID == id {
			return c, nil
		}
	}
	return storage.Client{}, storage.ErrNotFound
}

func (f *fakeRequests) ClientsFor(context.Context, string) ([]storage.Client, error) {
	return f.clients, nil
}

// Finish records the completion and stands for the provider's answer with a
// redirect to CallbackURL (the real one is tested in provider and cmd/idp).
func (f *fakeRequests) Finish(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, s storage.Session) error {
	id := ar.ID
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.requests[id]; !ok {
		return storage.ErrNotFound
	}
	f.completed = append(f.completed, completion{id, s})
	http.Redirect(w, r, f.CallbackURL(id), http.StatusSeeOther)
	return nil
}

// CallbackURL is where the fake's Finish sends the browser.
func (f *fakeRequests) CallbackURL(id string) string {
	return "https://idp.example/callback?id=" + url.QueryEscape(id)
}

func (f *fakeRequests) AnswerError(w http.ResponseWriter, r *http.Request, id, oauthError, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ar, ok := f.requests[id]
	if !ok {
		return storage.ErrNotFound
	}
	delete(f.requests, id)
	f.errors = append(f.errors, oauthError)
	http.Redirect(w, r, ar.RedirectURI+"?error="+oauthError+"&state="+url.QueryEscape(ar.State), http.StatusSeeOther)
	return nil
}

func (f *fakeRequests) completions() []completion {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.completed)
}

// env is a running login UI over real HTTP, with the real SQLite store for
// the challenges and counters.
type env struct {
	t        *testing.T
	srv      *httptest.Server
	h        *Handler
	accounts *fakeAccounts
	requests *fakeRequests
	store    *sqlite.Store
	clock    *testClock
}

const (
	agentID       = "u-1"
	agentEmail    = "agent@caf.example"
	agentPassword = "perso123"
	provisional   = "Prov2024x"
	testAnswer    = "AbCdE"
)

func newEnv(t *testing.T, configure ...func(*Config)) *env {
	t.Helper()
	return newEnvBehind(t, nil, configure...)
}

// newEnvBehind is newEnv with clientIP as the client address of each
// request (nil: the peer's, as newEnv).
func newEnvBehind(t *testing.T, clientIP func(*http.Request) string, configure ...func(*Config)) *env {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	clock := &testClock{t: time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)}
	accounts := newFakeAccounts(clock)
	accounts.addUser(storage.User{ID: agentID, Email: agentEmail, Name: "Camille Martin", Organisation: "Mairie de Lille"}, agentPassword, provisional)
	accounts.recordReceipt = func(r storage.ChallengeReceipt) error {
		_, err := store.EnqueueRecoveryJob(ctx, "test:receipt", time.Hour, 1<<40,
			storage.RecoveryJob{ID: storage.NewID(), Email: agentEmail, RequestedAt: clock.Now(), Receipt: r})
		return err
	}
	requests := newFakeRequests()
	requests.clients = []storage.Client{
		{ID: "rsa", Name: "Portail RSA", HomeURL: "https://rsa.example/"},
		{ID: "stats", Name: "Statistiques"},
	}
	cfg := Config{CaptchaLength: 5, CaptchaTTL: 10 * time.Minute, CaptchaTestAnswer: testAnswer, PortalName: "services.caf.fr"}
	for _, c := range configure {
		c(&cfg)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	h, err := New(Deps{
		Accounts: accounts, AuthRequests: requests, Challenges: store, Config: cfg,
		Now: clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ChallengeKey: key,
		ClientIP: clientIP,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := mux.NewRouter()
	h.Routes(r)
	// As idp serve's catch-all to the provider, whose router answers an
	// unknown path as Go's does.
	r.PathPrefix("/").Handler(h.NotFoundPages(http.NotFoundHandler()))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, h: h, accounts: accounts, requests: requests, store: store, clock: clock}
}

// addAuthRequest registers a pending auth request and returns its id.
func (e *env) addAuthRequest(mod func(*storage.AuthRequest)) string {
	ar := storage.AuthRequest{ID: storage.NewID(), ClientID: "rsa", RedirectURI: "https://rsa.example/cb", State: "st4te",
		CreatedAt: e.clock.Now(), ExpiresAt: e.clock.Now().Add(30 * time.Minute)}
	if mod != nil {
		mod(&ar)
	}
	e.requests.add(ar)
	return ar.ID
}

// browser is one browser: its own cookie jar, redirects not followed.
type browser struct {
	e      *env
	client *http.Client
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return &browser{e: e, client: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// page is a response with its body read and parsed.
type page struct {
	resp *http.Response
	body string
	doc  *html.Node
}

func (b *browser) do(req *http.Request) *page {
	b.e.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	p := &page{resp: resp, body: string(raw)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		if p.doc, err = html.Parse(strings.NewReader(p.body)); err != nil {
			b.e.t.Fatal(err)
		}
	}
	return p
}

func (b *browser) get(path string) *page {
	b.e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.e.srv.URL+path, nil)
	if err != nil {
		b.e.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) *page {
	b.e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.e.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// submit posts the page's form (the one whose action starts with path) with
// its hidden fields and the given values.
func (b *browser) submit(p *page, path string, values url.Values) *page {
	b.e.t.Helper()
	form := p.form(b.e.t, path)
	action := attr(form, "action")
	data := url.Values{}
	for _, in := range findAll(form, "input") {
		if attr(in, "type") == "hidden" {
			data.Set(attr(in, "name"), attr(in, "value"))
		}
	}
	for k, v := range values {
		data[k] = v
	}
	return b.post(action, data)
}

func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.e.srv.URL)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *browser) setCookie(name, value string) {
	u, _ := url.Parse(b.e.srv.URL)
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

// loginAs logs the browser in, without an auth request (even when it
// already is: GET /login would then lead to the secure space).
func (b *browser) loginAs(password string) *page {
	b.e.t.Helper()
	if b.cookie("idp_csrf") == "" {
		b.get("/login/password")
	}
	return b.post("/login", url.Values{"csrf": {b.cookie("idp_csrf")}, "email": {agentEmail}, "password": {password}})
}

// HTML helpers.

type htmlNode = html.Node

var (
	findAll = htmlq.Elements
	attr    = htmlq.Attr
	text    = htmlq.Text
)

func hasAttr(n *html.Node, name string) bool {
	for _, a := range n.Attr {
		if a.Key == name {
			return true
		}
	}
	return false
}

func byID(doc *html.Node, id string) *html.Node {
	var found *html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if found != nil {
			return
		}
		if n.Type == html.ElementNode && attr(n, "id") == id {
			found = n
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return found
}

func (p *page) text() string { return text(p.doc) }

// summary is the lines of the error summary (none when there is none).
func (p *page) summary() []string {
	title := byID(p.doc, "error-summary-title")
	if title == nil {
		return nil
	}
	var out []string
	for _, li := range findAll(title.Parent, "li") {
		out = append(out, text(li))
	}
	return out
}

func (p *page) form(t *testing.T, path string) *html.Node {
	t.Helper()
	for _, f := range findAll(p.doc, "form") {
		if a := attr(f, "action"); a == path || strings.HasPrefix(a, path+"?") {
			return f
		}
	}
	t.Fatalf("no form posting to %s in:\n%s", path, p.body)
	return nil
}

func (p *page) input(t *testing.T, name string) *html.Node {
	t.Helper()
	for _, in := range findAll(p.doc, "input") {
		if attr(in, "name") == name {
			return in
		}
	}
	t.Fatalf("no input %q in:\n%s", name, p.body)
	return nil
}

func (p *page) hasInput(name string) bool {
	for _, in := range findAll(p.doc, "input") {
		if attr(in, "name") == name {
			return true
		}
	}
	return false
}

// fieldErrors returns the error messages shown next to the input with that
// id, checking they are wired: aria-invalid and aria-describedby.
func (p *page) fieldErrors(t *testing.T, id string) []string {
	t.Helper()
	in := byID(p.doc, id)
	if in == nil {
		t.Fatalf("no element #%s", id)
	}
	list := byID(p.doc, id+"-error")
	if list == nil {
		if attr(in, "aria-invalid") == "true" {
			t.Errorf("#%s is aria-invalid without an error list", id)
		}
		return nil
	}
	if attr(in, "aria-invalid") != "true" {
		t.Errorf("#%s has errors but no aria-invalid", id)
	}
	if !slices.Contains(strings.Fields(attr(in, "aria-describedby")), id+"-error") {
		t.Errorf("#%s aria-describedby=%q does not point at its errors", id, attr(in, "aria-describedby"))
	}
	var out []string
	for _, li := range findAll(list, "li") {
		out = append(out, text(li))
	}
	return out
}

func wantStatus(t *testing.T, p *page, want int) {
	t.Helper()
	if p.resp.StatusCode != want {
		t.Fatalf("status %d, want %d; body:\n%s", p.resp.StatusCode, want, p.body)
	}
}

func wantRedirect(t *testing.T, p *page, want string) {
	t.Helper()
	if p.resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d, want 303 to %s; body:\n%s", p.resp.StatusCode, want, p.body)
	}
	if got := p.resp.Header.Get("Location"); got != want {
		t.Fatalf("Location %q, want %q", got, want)
	}
}

func wantContains(t *testing.T, p *page, texts ...string) {
	t.Helper()
	full := p.text()
	for _, s := range texts {
		if !strings.Contains(full, s) {
			t.Errorf("page lacks %q; text:\n%s", s, full)
		}
	}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

var errBoom = errors.New("boom")

// The real implementations satisfy the interfaces.
var (
	_ Accounts   = (*account.Service)(nil)
	_ Challenges = (*sqlite.Store)(nil)
	_ Challenges = storage.Store(nil)
)

// fakeIDTokenPrefix makes a hint the fake provider takes for an ID token of
// the agent whose id follows.
const fakeIDTokenPrefix = "id-token-of:"

func (f *fakeRequests) LogoutHintSubject(_ context.Context, hint string) (string, bool, error) {
	sub, ok := strings.CutPrefix(hint, fakeIDTokenPrefix)
	return sub, ok, nil
}
