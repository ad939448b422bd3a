package main

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caf-extranet/idp/config"
	"github.com/caf-extranet/idp/storage"
)

func sqliteURL(t *testing.T) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "idp.db")
}

// TestOperationsJourney runs the whole journey once per engine, then looks
// at it as an operator would: the logs, the headers, the metrics, the
// audit trail.
func TestOperationsJourney(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, withJourneyCaptcha)
		useAsDefaultLogger(t, e)
		j := runJourney(t, e)
		t.Run("no secret in the logs", func(t *testing.T) { checkNoSecretInLogs(t, e, j) })
		t.Run("security headers", func(t *testing.T) { checkJourneyHeaders(t, j) })
		t.Run("metrics", func(t *testing.T) { checkJourneyMetrics(t, e, dbURL) })
		t.Run("audit trail", func(t *testing.T) { checkJourneyAudit(t, e, j, dbURL) })
	})
}

func getBody(t *testing.T, e *testEnv, path string) (int, string) {
	t.Helper()
	resp := e.get(path)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHealthAndReadiness: /healthz says the process is alive whatever the
// database; /readyz says 503 while the schema is not the one this binary
// expects (here: a newer binary migrated the database), 200 otherwise.
func TestHealthAndReadiness(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idp.db")
	e := newEnv(t, "sqlite:"+path, nil)
	if code, body := getBody(t, e, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, body := getBody(t, e, "/readyz"); code != http.StatusOK || body != "ready\n" {
		t.Fatalf("/readyz: %d %q", code, body)
	}

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'from_the_future', 0)`); err != nil {
		t.Fatal(err)
	}
	code, body := getBody(t, e, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "schema version 9999") {
		t.Fatalf("/readyz with a newer schema: %d %q", code, body)
	}
	if code, _ := getBody(t, e, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz while not ready: %d", code)
	}
	if _, err := db.Exec(`DELETE FROM schema_migrations WHERE version = 9999`); err != nil {
		t.Fatal(err)
	}
	if code, _ := getBody(t, e, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after the fix: %d", code)
	}
}

// TestJanitorPurges: the background job deletes expired auth requests,
// authorization codes, CAPTCHA challenges and sessions, and audit events older than
// audit.retention, and keeps the younger ones.
func TestJanitorPurges(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, func(c *config.Config) { c.Audit.Retention = 24 * time.Hour })
		agent := e.addAgent(agentEmail, "Claire Dupont", "", agentPass)
		st, now := e.srv.store, e.clock.Now()
		past := now.Add(-time.Minute)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(st.CreateAuthRequest(e.ctx, storage.AuthRequest{ID: "expired-ar", ClientID: "app1", RedirectURI: app1Redirect,
			Scopes: []string{"openid"}, ResponseType: "code", CreatedAt: past.Add(-time.Hour), ExpiresAt: past}))
		_, err := st.CreateCountedChallenge(e.ctx, "test:expired-ch", 10*365*24*time.Hour, 1, storage.Challenge{ID: "expired-ch",
			Kind: "image", AnswerHash: "x", BindingHash: "y", CreatedAt: past.Add(-time.Hour), ExpiresAt: past}, past)
		must(err)
		must(st.CreateSession(e.ctx, storage.Session{ID: "expired-se", UserID: agent.ID, Kind: storage.SessionActive,
			AuthTime: past.Add(-time.Hour), AMR: []string{"pwd"}, CreatedAt: past.Add(-time.Hour), LastSeenAt: past.Add(-time.Hour),
			IdleExpiresAt: past, AbsoluteExpiresAt: now.Add(time.Hour)}))
		must(st.SaveAuthCode(e.ctx, storage.AuthCode{CodeHash: "expired-code", AuthRequestID: "expired-ar", ExpiresAt: now.Add(-2 * time.Hour)}))
		must(st.AppendAudit(e.ctx, storage.AuditEvent{Time: now.Add(-25 * time.Hour), Type: "login.success", Email: "ancien@partenaire.fr"}))
		must(st.AppendAudit(e.ctx, storage.AuditEvent{Time: now.Add(-23 * time.Hour), Type: "login.success", Email: "recent@partenaire.fr"}))

		n, err := e.srv.janitor.runOnce(e.ctx)
		must(err)
		if n != 5 {
			t.Errorf("purged %d rows, want 5 (auth request, code, challenge, session, old audit event)", n)
		}
		if n, err := e.srv.janitor.runOnce(e.ctx); err != nil || n != 0 {
			t.Errorf("a second pass purged %d (%v), want nothing left", n, err)
		}
		if old, _ := st.ListAudit(e.ctx, storage.AuditFilter{Email: "ancien@partenaire.fr"}); len(old) != 0 {
			t.Errorf("an audit event older than the retention survived")
		}
		if recent, _ := st.ListAudit(e.ctx, storage.AuditFilter{Email: "recent@partenaire.fr"}); len(recent) != 1 {
			t.Errorf("an audit event within the retention was purged")
		}
	})
}

// TestJanitorKeepsTheRequestOfAValidCode: a login completed near the end of
// its auth request's life (an agent who went through « Mot de passe oublié ? »,
// waited for the mail and changed the provisional password) gets a code valid
// for tokens.code_ttl from then; the janitor passing after the request has
// expired, but before the code has, must leave the exchange working.
func TestJanitorKeepsTheRequestOfAValidCode(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil)
		e.addAgent(agentEmail, "Claire Dupont", "Mairie de Lyon", agentPass)
		secret := e.addClient("app1", app1Redirect, false)
		rp := newRP(t, e, "app1", secret, app1Redirect)
		b := newBrowser(t, e.issuer)
		p := b.get(rp.authURL())
		e.clock.advance(e.cfg.Tokens.AuthRequestTTL - 20*time.Second)
		out := login(t, b, p, agentEmail, agentPass)
		code := rp.callback(out.Location())
		// 30 s later the request has expired, the code (code_ttl 1 min) has
		// not, and the janitor passes (every 10 minutes, on every instance).
		e.clock.advance(30 * time.Second)
		if _, err := e.srv.janitor.runOnce(e.ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := rp.exchange(code); err != nil {
			t.Fatalf("exchange of a code issued 30 s ago (code_ttl %s): %v", e.cfg.Tokens.CodeTTL, err)
		}
	})
}

// TestJanitorRunsInTheBackground: the loop `idp serve` starts purges
// without being asked.
func TestJanitorRunsInTheBackground(t *testing.T) {
	e := newEnv(t, sqliteURL(t), func(c *config.Config) { c.Audit.Retention = time.Hour })
	old := storage.AuditEvent{Time: e.clock.Now().Add(-2 * time.Hour), Type: "login.success", Email: "ancien@partenaire.fr"}
	if err := e.srv.store.AppendAudit(e.ctx, old); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { e.srv.janitor.run(ctx, 20*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if evs, _ := e.srv.store.ListAudit(e.ctx, storage.AuditFilter{Email: "ancien@partenaire.fr"}); len(evs) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the janitor loop did not purge the old audit event")
}

// TestMemoryLimit: without GOMEMLIMIT the server bounds its heap to a
// baseline plus the hashes that may run at once; an administrator's
// GOMEMLIMIT wins.
func TestMemoryLimit(t *testing.T) {
	c, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Password.Hash.MaxConcurrent = 2
	got, set := memoryLimit(c, nil)
	if !set || got != 24<<20+2*2*19456<<10 {
		t.Fatalf("limit %d (set %v)", got, set)
	}
	if _, set := memoryLimit(c, []string{"GOMEMLIMIT=1GiB"}); set {
		t.Fatal("the administrator's GOMEMLIMIT was overridden")
	}
}
