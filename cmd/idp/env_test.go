package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caf-extranet/idp/account"
	"github.com/caf-extranet/idp/config"
	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/postgres/pgtest"
)

// engines runs fn once on SQLite and once on PostgreSQL.
func engines(t *testing.T, fn func(t *testing.T, databaseURL string)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, "sqlite:"+filepath.Join(t.TempDir(), "idp.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, pgtest.URL(t))
	})
}

// clock is a settable clock shared by the server under test.
type clock struct {
	mu  sync.Mutex
	now time.Time
	off time.Duration
}

// Now is real time plus the offset the test added: the OIDC library reads the
// real clock for token times, so we only ever move forward from it.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// testEnv is one provider under test, served over real HTTP.
type testEnv struct {
	t      *testing.T
	ctx    context.Context
	srv    *server
	ts     *httptest.Server
	issuer string
	clock  *clock
	cfg    config.Config
	logBuf *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t *testing.T, databaseURL string, adjust func(*config.Config)) *testEnv {
	t.Helper()
	ctx := context.Background()
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	c, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Issuer = issuer
	c.DatabaseURL = databaseURL
	c.DataDir = t.TempDir()
	c.Password.Hash.MaxConcurrent = 2
	if adjust != nil {
		adjust(&c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	logBuf := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clk := &clock{}
	srv, err := newServer(ctx, c, clk.Now, log)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.handler
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		srv.store.Close()
	})
	return &testEnv{t: t, ctx: ctx, srv: srv, ts: ts, issuer: issuer, clock: clk, cfg: c, logBuf: logBuf}
}

// addAgent creates an active agent with a personal password.
func (e *testEnv) addAgent(email, name, org, password string) storage.User {
	e.t.Helper()
	u, err := e.srv.accounts.CreateUser(e.ctx, account.NewUser{Email: email, Name: name, Organisation: org, Password: password}, account.Meta{})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// addClient registers a relying application and returns its secret ("" for
// a public client).
func (e *testEnv) addClient(id, redirect string, public bool) string {
	e.t.Helper()
	c, err := newClient(id, "Application "+id, []string{redirect}, []string{redirect + "/logged-out"}, "https://"+id+".example.fr/", public, true)
	if err != nil {
		e.t.Fatal(err)
	}
	secret := ""
	if !public {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		secret = base64.RawURLEncoding.EncodeToString(b)
		c.SecretHash = storage.HashSecret(secret)
	}
	c.CreatedAt = time.Now()
	if err := e.srv.store.CreateClient(e.ctx, c); err != nil {
		e.t.Fatal(err)
	}
	return secret
}

// deliverMail runs the background work now: recovery jobs, then the outbox.
func (e *testEnv) deliverMail() {
	e.t.Helper()
	if _, err := e.srv.accounts.ProcessRecoveryJobs(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.srv.sender.RunOnce(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

// mails returns the messages written to the mail folder, oldest first.
func (e *testEnv) mails() []*mail.Message {
	e.t.Helper()
	dir := e.cfg.MailDir()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		e.t.Fatal(err)
	}
	// Oldest first by write time: file names carry the second only, and two
	// mails often go out within one.
	type written struct {
		name string
		at   time.Time
	}
	var files []written
	for _, en := range entries {
		if info, err := en.Info(); err == nil && strings.HasSuffix(en.Name(), ".eml") {
			files = append(files, written{en.Name(), info.ModTime()})
		}
	}
	sort.SliceStable(files, func(i, j int) bool { return files[i].at.Before(files[j].at) })
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.name
	}
	var out []*mail.Message
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			e.t.Fatal(err)
		}
		m, err := mail.ReadMessage(f)
		if err != nil {
			e.t.Fatal(err)
		}
		body, _ := io.ReadAll(m.Body)
		f.Close()
		m.Body = strings.NewReader(string(body))
		out = append(out, m)
	}
	return out
}

var provisionalLine = regexp.MustCompile(`(?m)^\s*([A-Za-z2-9]{12})\s*$`)

// provisionalPassword extracts the provisional password of the last mail to
// `to`, from the text part (on a line of its own).
func (e *testEnv) provisionalPassword(to string) string {
	e.t.Helper()
	msgs := e.mails()
	for i := len(msgs) - 1; i >= 0; i-- {
		if !strings.Contains(msgs[i].Header.Get("To"), to) {
			continue
		}
		raw, _ := io.ReadAll(msgs[i].Body)
		text := decodeQP(string(raw))
		if m := provisionalLine.FindStringSubmatch(text); m != nil {
			return m[1]
		}
		e.t.Fatalf("no provisional password line in mail to %s:\n%s", to, text)
	}
	e.t.Fatalf("no mail to %s among %d", to, len(msgs))
	return ""
}

// decodeQP undoes quoted-printable soft breaks and =XX escapes well enough to
// read an ASCII password line.
func decodeQP(s string) string {
	s = strings.ReplaceAll(s, "=\r\n", "")
	s = strings.ReplaceAll(s, "=\n", "")
	return strings.ReplaceAll(s, "\r\n", "\n")
}

func (e *testEnv) get(path string) *http.Response {
	e.t.Helper()
	resp, err := http.Get(e.issuer + path)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

var accountMeta = account.Meta{ClientIP: "127.0.0.1", UserAgent: "test"}

// mimeDecoder decodes RFC 2047 headers.
type mimeDecoder = mime.WordDecoder
