package loginui

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"
	"golang.org/x/net/html"

	"github.com/caf-extranet/idp/storage"
)

// FuzzReadFields: whatever the posted body, a handler is handed only valid
// UTF-8 without NUL bytes, exactly as posted; every field asked for is
// either a value or listed as bad, never both.
func FuzzReadFields(f *testing.F) {
	f.Add("email=agent%40caf.example&password=perso123")
	f.Add("email=a%00b&password=%FF%FE")
	f.Add("email=x&email=y&password=")
	f.Add("%zz=1&email=ok")
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if err := r.ParseForm(); err != nil {
			return // postForm answers 400 before any handler runs
		}
		names := []string{"email", "password", "captcha"}
		got := readFields(r, names...)
		for _, name := range names {
			v, ok := got.values[name]
			bad := slices.Contains(got.bad, name)
			if ok == bad {
				t.Fatalf("field %s: value %v, bad %v", name, ok, bad)
			}
			if ok && (!utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 || v != r.PostForm.Get(name)) {
				t.Fatalf("field %s handed on as %q (posted %q)", name, v, r.PostForm.Get(name))
			}
		}
	})
}

// FuzzAuthRequestParam: the auth request id read from a query is either
// refused, absent, or a short run of URL-safe characters that survives the
// pages' links unchanged.
func FuzzAuthRequestParam(f *testing.F) {
	f.Add("authRequestID=0123456789abcdef0123456789abcdef")
	f.Add("authRequestID=%3Cscript%3E")
	f.Add("authRequestID=a&authRequestID=b")
	f.Add("authRequestID=" + strings.Repeat("a", 129))
	f.Add("authRequestID=%zz")
	f.Fuzz(func(t *testing.T, rawQuery string) {
		r := httptest.NewRequest(http.MethodGet, "/login", nil)
		r.URL.RawQuery = rawQuery
		id, ok := authRequestParam(r)
		if !ok {
			if id != "" {
				t.Fatalf("refused id %q handed on", id)
			}
			return
		}
		if len(id) > maxAuthRequestID || id != r.URL.Query().Get(paramAuthRequest) {
			t.Fatalf("id %q from %q", id, rawQuery)
		}
		for _, c := range []byte(id) {
			if !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~", rune(c)) {
				t.Fatalf("id %q holds %q", id, c)
			}
		}
		u, err := url.Parse(link(pathLogin, id))
		if err != nil || u.Path != pathLogin || u.Query().Get(paramAuthRequest) != id {
			t.Fatalf("link for %q is %v (%v)", id, u, err)
		}
	})
}

// FuzzPlausibleEmail: an address the forms accept is short, has a local
// part and a domain, and holds no space or control character, so it can
// never break a mail header.
func FuzzPlausibleEmail(f *testing.F) {
	f.Add("agent@caf.example")
	f.Add("agent@caf.example\r\nBcc: x@y.z")
	f.Add("@caf.example")
	f.Add("agent@")
	f.Add("a\x00b@c.d")
	f.Add(`"><script>@x.fr`)
	f.Fuzz(func(t *testing.T, s string) {
		if !plausibleEmail(s) {
			return
		}
		at := strings.LastIndexByte(s, '@')
		if len(s) > maxEmailBytes || at <= 0 || at == len(s)-1 {
			t.Fatalf("accepted %q", s)
		}
		for _, c := range []byte(s) {
			if c <= ' ' || c == 0x7f {
				t.Fatalf("accepted %q with byte %#x", s, c)
			}
		}
	})
}

// fuzzChallenges keeps the CAPTCHA challenges and counters in memory.
type fuzzChallenges struct {
	mu         sync.Mutex
	challenges map[string]storage.Challenge
	receipts   map[string]bool
}

// CreateCountedChallenge: the fuzzer is never throttled either.
func (c *fuzzChallenges) CreateCountedChallenge(_ context.Context, _ string, _ time.Duration, _ int64, ch storage.Challenge, _ time.Time) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.challenges) > 1000 {
		clear(c.challenges)
	}
	c.challenges[ch.ID] = ch
	return 1, nil
}

func (c *fuzzChallenges) ConsumeChallenge(_ context.Context, id string, _ time.Time) (storage.Challenge, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.challenges[id]
	if !ok {
		return storage.Challenge{}, storage.ErrNotFound
	}
	delete(c.challenges, id)
	return ch, nil
}

// The fuzzer is never throttled: it must reach every branch.
func (c *fuzzChallenges) AddDecayingFailure(_ context.Context, key string, _ time.Duration, now time.Time) (storage.Throttle, error) {
	return storage.Throttle{Key: key, Failures: 1, LastFailureAt: now}, nil
}

func (c *fuzzChallenges) HitCounter(context.Context, string, time.Duration, time.Time) (int64, error) {
	return 1, nil
}

func (c *fuzzChallenges) TakeChallenge(ctx context.Context, id, key string, now time.Time) (*storage.Challenge, storage.Throttle, error) {
	ch, err := c.ConsumeChallenge(ctx, id, now)
	if err != nil {
		return nil, storage.Throttle{Key: key}, nil
	}
	return &ch, storage.Throttle{Key: key}, nil
}

// Receipts are kept as the store keeps them, without expiry: the fuzzer
// reaches the resubmission's branch too.
func (c *fuzzChallenges) addReceipt(r storage.ChallengeReceipt) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.receipts == nil || len(c.receipts) > 1000 {
		c.receipts = map[string]bool{}
	}
	c.receipts[r.ID] = true
	return nil
}

func (c *fuzzChallenges) ChallengeReceipt(_ context.Context, id string, _ time.Time) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.receipts[id], nil
}

// fuzzPages are the forms a browser posts.
var fuzzPages = []string{pathLogin, pathForgot, pathChange, pathPassword, pathLogout}

// FuzzPostedForms posts any query and body (with a valid CSRF token) to
// each form. Whatever it holds: no server error, no markup of the input in
// the page, redirects only within the portal or to the provider's callback,
// and the account rules only ever see clean text.
func FuzzPostedForms(f *testing.F) {
	f.Add(uint8(0), "", "email=agent%40caf.example&password=perso123")
	f.Add(uint8(0), "authRequestID=ar1", "email=agent%40caf.example&password=Prov2024x")
	f.Add(uint8(0), "authRequestID=%3Cscript%3E", "email=%22%3E%3Csvg+onload%3Dalert(1)%3E%40x.fr&password=x")
	f.Add(uint8(1), "authRequestID=ar1", "email=a%40b.fr%0D%0ABcc%3A+c%40d.fr&captcha=AbCdE&challenge=x")
	f.Add(uint8(2), "", "current=Prov2024x&new=nouveau1&confirmation=nouveau1")
	f.Add(uint8(3), "", "email=agent%40caf.example&current=perso123&new=%00&confirmation=%FF")
	f.Add(uint8(4), "", "")

	clock := &testClock{t: time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)}
	accounts := newFakeAccounts(clock)
	accounts.addUser(storage.User{ID: agentID, Email: agentEmail, Name: "Camille Martin"}, agentPassword, provisional)
	requests := newFakeRequests()
	requests.add(storage.AuthRequest{ID: "ar1", ClientID: "rsa", RedirectURI: "https://rsa.example/cb", State: "s",
		CreatedAt: clock.Now(), ExpiresAt: clock.Now().Add(time.Hour)})
	challenges := &fuzzChallenges{challenges: map[string]storage.Challenge{}}
	accounts.recordReceipt = challenges.addReceipt
	h, err := New(Deps{
		Accounts: accounts, AuthRequests: requests, Challenges: challenges,
		Config: Config{CaptchaLength: 5, CaptchaTTL: 10 * time.Minute, CaptchaTestAnswer: testAnswer, PortalName: "services.caf.fr"},
		Now:    clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ChallengeKey: make([]byte, 32),
	})
	if err != nil {
		f.Fatal(err)
	}
	router := mux.NewRouter()
	h.Routes(router)
	token := storage.NewSecret()
	// A session between the provisional login and the forced change, for
	// the change form.
	changing, _, _ := accounts.StartSession(context.Background(), agentID, storage.SessionPasswordChange, clock.Now())

	f.Fuzz(func(t *testing.T, page uint8, rawQuery, body string) {
		path := fuzzPages[int(page)%len(fuzzPages)]
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body+"&csrf="+token))
		req.URL.RawQuery = rawQuery
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: csrfCookieName(false), Value: token})
		if path == pathChange {
			req.AddCookie(&http.Cookie{Name: SessionCookieName(false), Value: changing})
		}
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, req)

		if rec.Code >= 500 {
			t.Fatalf("POST %s?%s %q: status %d", path, rawQuery, body, rec.Code)
		}
		if loc := rec.Header().Get("Location"); loc != "" {
			local := strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") && !strings.HasPrefix(loc, "/\\")
			if !local && !strings.HasPrefix(loc, requests.CallbackURL("")) {
				t.Fatalf("POST %s?%s %q redirected to %q", path, rawQuery, body, loc)
			}
		}
		if strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
			doc, err := html.Parse(rec.Body)
			if err != nil {
				t.Fatal(err)
			}
			if n := scriptable(doc); n != "" {
				t.Fatalf("POST %s?%s %q: the page holds %s", path, rawQuery, body, n)
			}
		}
		accounts.mu.Lock()
		defer accounts.mu.Unlock()
		for _, e := range slices.Concat(accounts.authCalls, accounts.changeCalls) {
			if !utf8.ValidString(e) || strings.IndexByte(e, 0) >= 0 {
				t.Fatalf("the account rules were handed %q", e)
			}
		}
		for _, e := range accounts.recoveries {
			if !plausibleEmail(e) {
				t.Fatalf("a recovery was requested for %q", e)
			}
		}
		accounts.authCalls, accounts.changeCalls, accounts.recoveries = nil, nil, nil
		// Keep the change session usable for the next input.
		for _, u := range accounts.users {
			u.PendingPasswordChange = u.ID == agentID
			accounts.users[u.ID] = u
		}
		accounts.sessions = map[string]storage.Session{changing: {ID: storage.HashSecret(changing), UserID: agentID,
			Kind: storage.SessionPasswordChange, IdleExpiresAt: clock.Now().Add(time.Hour), AbsoluteExpiresAt: clock.Now().Add(time.Hour)}}
		requests.mu.Lock()
		requests.completed = nil
		requests.mu.Unlock()
	})
}

// scriptable names the first element of the page that could run script:
// the pages have none, so any is the input's.
func scriptable(n *html.Node) string {
	if n.Type == html.ElementNode {
		if n.Data == "script" || n.Data == "svg" || n.Data == "iframe" {
			return "<" + n.Data + ">"
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(strings.ToLower(a.Key), "on") {
				return "<" + n.Data + " " + a.Key + ">"
			}
			if (a.Key == "href" || a.Key == "action" || a.Key == "src") && strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "javascript:") {
				return "<" + n.Data + " " + a.Key + "=javascript:>"
			}
		}
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if s := scriptable(c); s != "" {
			return s
		}
	}
	return ""
}
