package account_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caf-extranet/idp/account"
	"github.com/caf-extranet/idp/account/policy"
	"github.com/caf-extranet/idp/mail"
	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/passhash"
	"github.com/caf-extranet/idp/storage/postgres"
	"github.com/caf-extranet/idp/storage/postgres/pgtest"
	"github.com/caf-extranet/idp/storage/sqlite"
)

// fixture is an account service on a real store with a settable clock.
type fixture struct {
	t   *testing.T
	ctx context.Context
	st  storage.Store
	svc *account.Service
	// instance builds another service on the same store: a second instance.
	instance func() *account.Service
	hasher   *passhash.Hasher // svc's, to count its derivations
	mu       sync.Mutex
	now      time.Time
}

func (f *fixture) clock() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

type migrator interface {
	storage.Store
	Migrate(context.Context) error
}

func engines(t *testing.T, fn func(t *testing.T, f *fixture)) {
	open := map[string]func(t *testing.T) migrator{
		"sqlite": func(t *testing.T) migrator {
			s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "a.db"))
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"postgres": func(t *testing.T) migrator {
			s, err := postgres.Open(context.Background(), pgtest.URL(t))
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			st := open[name](t)
			t.Cleanup(func() { st.Close() })
			if err := st.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			f := &fixture{t: t, ctx: context.Background(), st: st, now: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)}
			f.instance = func() *account.Service {
				h := passhash.NewHasher(passhash.Params{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}, 4)
				if f.hasher == nil {
					f.hasher = h // f.svc's
				}
				return account.New(st, h, policy.Default(), account.Config{
					ProvisionalLength: 12, ProvisionalTTL: 24 * time.Hour,
					MaxMailsPerAccountPerHour: 3, MaxRequestsPerIPPerHour: 20,
					SessionIdle: time.Hour, SessionAbsolute: 8 * time.Hour,
					Portal: mail.Portal{URL: "https://portail.example.fr/login", Name: "Portail Extranet"},
				}, f.clock, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
			}
			f.svc = f.instance()
			fn(t, f)
		})
	}
}

var meta = account.Meta{ClientIP: "192.0.2.10", UserAgent: "test"}

func (f *fixture) agent(email, password string) storage.User {
	f.t.Helper()
	u, err := f.svc.CreateUser(f.ctx, account.NewUser{Email: email, Name: "Agent", Password: password}, meta)
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

var passwordLine = regexp.MustCompile(`(?m)^\s*([A-Za-z2-9]{12})\s*$`)

// mailsTo lists the queued mails to an address, oldest first.
func (f *fixture) mailsTo(to string) []storage.OutboxMail {
	f.t.Helper()
	all, err := f.st.ListMails(f.ctx, "", 1000)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []storage.OutboxMail
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].To == to {
			out = append(out, all[i])
		}
	}
	return out
}

// recover runs the whole recovery request and returns the mailed password.
func (f *fixture) recover(email string) string {
	f.t.Helper()
	f.advance(time.Second) // mails are ordered by time: keep them apart
	if err := f.svc.RequestRecovery(f.ctx, email, meta, storage.ChallengeReceipt{}); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.svc.ProcessRecoveryJobs(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	ms := f.mailsTo(storage.NormaliseEmail(email))
	if len(ms) == 0 {
		return ""
	}
	m := passwordLine.FindStringSubmatch(ms[len(ms)-1].TextBody)
	if m == nil {
		f.t.Fatalf("no password line in %q", ms[len(ms)-1].TextBody)
	}
	return m[1]
}

func TestProvisionalPasswordRules(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		u := f.agent("claire@mairie.fr", "secret12")
		p1 := f.recover("Claire@Mairie.FR ")
		if p1 == "" {
			t.Fatal("no provisional password mailed")
		}
		// The personal password keeps working: a stranger's request locks nobody out...
		l, err := logIn(f.svc, f.ctx, "claire@mairie.fr", "secret12", meta)
		if err != nil || l.Provisional {
			t.Fatalf("personal login after a recovery request: %v %+v", err, l)
		}
		// ...and cancels the outstanding provisional password.
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", p1, meta); !errors.Is(err, account.ErrInvalidCredentials) {
			t.Fatalf("provisional password after a personal login: %v", err)
		}
		// A newer request replaces an older provisional password.
		p2 := f.recover("claire@mairie.fr")
		p3 := f.recover("claire@mairie.fr")
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", p2, meta); !errors.Is(err, account.ErrInvalidCredentials) {
			t.Fatalf("replaced provisional password still works: %v", err)
		}
		l, err = logIn(f.svc, f.ctx, "claire@mairie.fr", p3, meta)
		if err != nil || !l.Provisional || !l.User.PendingPasswordChange {
			t.Fatalf("provisional login: %v %+v", err, l)
		}
		// It stays usable (the agent may close the browser) until it expires.
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", p3, meta); err != nil {
			t.Fatalf("second provisional login: %v", err)
		}
		f.advance(24*time.Hour + time.Second)
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", p3, meta); !errors.Is(err, account.ErrInvalidCredentials) {
			t.Fatalf("expired provisional password: %v", err)
		}
		if err := f.svc.CompleteForcedChange(f.ctx, u.ID, p3, "nouveau2026", "nouveau2026", meta); !errors.Is(err, account.ErrNotPending) {
			t.Fatalf("forced change with an expired provisional password: %v", err)
		}
	})
}

// TestRecoveryRequestKeepsItsReceipt: a request's receipt (the login
// pages' answer to the same form posted again) is written with its job.
func TestRecoveryRequestKeepsItsReceipt(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		r := storage.ChallengeReceipt{ID: "receipt-of-the-form", ExpiresAt: f.now.Add(2 * time.Minute)}
		if err := f.svc.RequestRecovery(f.ctx, "inconnu@mairie.fr", meta, r); err != nil {
			t.Fatal(err)
		}
		if ok, err := f.st.ChallengeReceipt(f.ctx, r.ID, f.now); err != nil || !ok {
			t.Fatalf("receipt after the request: %v, %v", ok, err)
		}
	})
}

func TestRecoveryThrottlesAndSilence(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		f.agent("claire@mairie.fr", "secret12")
		f.agent("parti@mairie.fr", "secret12")
		if err := f.svc.SetDisabled(f.ctx, "parti@mairie.fr", true, meta); err != nil {
			t.Fatal(err)
		}
		for _, addr := range []string{"inconnu@mairie.fr", "parti@mairie.fr"} {
			if err := f.svc.RequestRecovery(f.ctx, addr, meta, storage.ChallengeReceipt{}); err != nil {
				t.Fatalf("%s: %v", addr, err)
			}
		}
		// At most 3 mails per account per hour; the answer never changes.
		for range 5 {
			if err := f.svc.RequestRecovery(f.ctx, "claire@mairie.fr", account.Meta{ClientIP: "198.51.100.7"}, storage.ChallengeReceipt{}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.svc.ProcessRecoveryJobs(f.ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(f.mailsTo("claire@mairie.fr")); n != 3 {
			t.Fatalf("%d mails in an hour, want 3", n)
		}
		if n := len(f.mailsTo("inconnu@mairie.fr")) + len(f.mailsTo("parti@mairie.fr")); n != 0 {
			t.Fatalf("%d mails to unknown or disabled addresses", n)
		}
		f.advance(time.Hour + time.Second)
		f.recover("claire@mairie.fr")
		if n := len(f.mailsTo("claire@mairie.fr")); n != 4 {
			t.Fatalf("the per-account limit did not reset after an hour: %d mails", n)
		}
		// At most 20 requests per IP per hour: beyond, nothing is even
		// recorded, and the caller is told so (no mail must be promised).
		for i := range 25 {
			err := f.svc.RequestRecovery(f.ctx, "claire@mairie.fr", account.Meta{ClientIP: "203.0.113.9"}, storage.ChallengeReceipt{})
			wantQuota(t, i, 20, err)
		}
		jobs, err := f.st.ClaimRecoveryJobs(f.ctx, f.clock(), time.Minute, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != 20 {
			t.Fatalf("%d jobs recorded from one IP in an hour, want 20", len(jobs))
		}
	})
}

// wantQuota checks the answer to the request i (from 0) of an address whose
// quota is max: nil within it, ErrThrottled past it.
func wantQuota(t *testing.T, i, max int, err error) {
	t.Helper()
	switch {
	case i < max && err != nil:
		t.Fatalf("request %d within the quota of %d: %v", i+1, max, err)
	case i >= max && !errors.Is(err, account.ErrThrottled):
		t.Fatalf("request %d past the quota of %d: %v, want ErrThrottled", i+1, max, err)
	}
}

// TestRecoveryQuotaCountsAnIPv6NetworkAsOneAddress: the per-address hourly
// quota of recovery requests holds for a client changing the low 64 bits of
// its IPv6 address at each request; the audit trail keeps each address.
func TestRecoveryQuotaCountsAnIPv6NetworkAsOneAddress(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		f.agent("claire@mairie.fr", "secret12")
		for i := range 25 {
			err := f.svc.RequestRecovery(f.ctx, "claire@mairie.fr", account.Meta{ClientIP: fmt.Sprintf("2001:db8:1:2::%x", i+1)}, storage.ChallengeReceipt{})
			wantQuota(t, i, 20, err)
		}
		jobs, err := f.st.ClaimRecoveryJobs(f.ctx, f.clock(), time.Minute, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != 20 {
			t.Fatalf("%d jobs recorded from one /64 in an hour, want 20", len(jobs))
		}
		events, err := f.st.ListAudit(f.ctx, storage.AuditFilter{Email: "claire@mairie.fr"})
		if err != nil {
			t.Fatal(err)
		}
		var throttled []string
		for _, e := range events {
			if e.Type == "recovery.throttled" {
				throttled = append(throttled, e.ClientIP)
			}
		}
		slices.Sort(throttled)
		if want := []string{"2001:db8:1:2::15", "2001:db8:1:2::16", "2001:db8:1:2::17", "2001:db8:1:2::18", "2001:db8:1:2::19"}; !slices.Equal(throttled, want) {
			t.Fatalf("throttled requests in the audit trail from %q, want %q", throttled, want)
		}
	})
}

func TestForcedChangeHasOneWinner(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		u := f.agent("claire@mairie.fr", "secret12")
		p := f.recover("claire@mairie.fr")
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", p, meta); err != nil {
			t.Fatal(err)
		}
		// Every problem at once, nothing saved.
		err := f.svc.CompleteForcedChange(f.ctx, u.ID, "wrong", "abc", "abd", meta)
		var ce *account.ChangeError
		if !errors.As(err, &ce) || !ce.CurrentWrong || len(ce.Violations) < 3 {
			t.Fatalf("change error: %v %+v", err, ce)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				pw := "nouveau" + string(rune('a'+i)) + "1"
				if err := f.svc.CompleteForcedChange(f.ctx, u.ID, p, pw, pw, meta); err == nil {
					wins.Add(1)
				} else if !errors.Is(err, account.ErrNotPending) && !errors.Is(err, account.ErrThrottled) {
					// Eight at once from one agent: past the free failures,
					// the attempts charged before their check are delayed.
					t.Errorf("loser: %v", err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d concurrent changes won, want exactly 1", wins.Load())
		}
		got, _ := f.st.GetUser(f.ctx, u.ID)
		if got.PendingPasswordChange {
			t.Fatal("still pending after the change")
		}
		if n := len(f.mailsTo("claire@mairie.fr")); n != 2 { // the provisional password, one notification
			t.Fatalf("%d mails, want the provisional one and one notification", n)
		}
	})
}

// changedWhileChecked makes the first click's change (change, once) as soon
// as the second has read what its current password is checked against: the
// agent's personal hash (voluntary form) or the provisional password
// (forced form). The second then verifies a password that was right, and
// finds the change made when it saves its own.
type changedWhileChecked struct {
	storage.Store
	once   *sync.Once
	change func()
}

func (c changedWhileChecked) GetUserByEmail(ctx context.Context, email string) (storage.User, error) {
	u, err := c.Store.GetUserByEmail(ctx, email)
	c.once.Do(c.change)
	return u, err
}

func (c changedWhileChecked) GetProvisionalPassword(ctx context.Context, userID string, now time.Time) (storage.ProvisionalPassword, error) {
	p, err := c.Store.GetProvisionalPassword(ctx, userID, now)
	c.once.Do(c.change)
	return p, err
}

// wantNothingCounted: the change form's counters of the agent and of meta's
// address hold no failure.
func (f *fixture) wantNothingCounted(email string) {
	f.t.Helper()
	th, err := f.st.GetThrottles(f.ctx, "change:account:"+email, "password:ip:"+meta.ClientIP)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, k := range th {
		if k.Failures != 0 {
			f.t.Errorf("%s counts %d failures, want none", k.Key, k.Failures)
		}
	}
}

// TestForcedChangeSubmittedTwiceGoesOn: « Valider » of the forced change
// clicked twice; the second click's provisional password is verified while
// the first makes the change. The second gets what the first got (nil: the
// login page then opens the new session), not ErrNotPending, whose page
// says the provisional password expired. A concurrent change to another
// password still leaves it ErrNotPending.
func TestForcedChangeSubmittedTwiceGoesOn(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		for _, c := range []struct {
			name, firstNew string
			want           error
		}{
			{"same password", "nouveau2026", nil},
			{"another password", "autre2026", account.ErrNotPending},
		} {
			email := strings.ReplaceAll(c.name, " ", ".") + "@mairie.fr"
			u := f.agent(email, "secret12")
			p := f.recover(email)
			if _, err := logIn(f.svc, f.ctx, email, p, meta); err != nil {
				t.Fatal(err)
			}
			second := f.serviceOn(changedWhileChecked{Store: f.st, once: new(sync.Once), change: func() {
				if err := f.svc.CompleteForcedChange(f.ctx, u.ID, p, c.firstNew, c.firstNew, meta); err != nil {
					t.Errorf("%s: first click: %v", c.name, err)
				}
			}})
			if err := second.CompleteForcedChange(f.ctx, u.ID, p, "nouveau2026", "nouveau2026", meta); !errors.Is(err, c.want) {
				t.Errorf("%s: second click: %v, want %v", c.name, err, c.want)
			}
			if _, err := logIn(f.svc, f.ctx, email, c.firstNew, meta); err != nil {
				t.Errorf("%s: the first click's password: %v", c.name, err)
			}
			if n := len(f.mailsTo(email)); n != 2 {
				t.Errorf("%s: %d mails, want the provisional password and one notification", c.name, n)
			}
			f.wantNothingCounted(email)
		}
	})
}

// TestVoluntaryChangeSubmittedTwiceGoesOn: « Mettre à jour votre mot de
// passe » posted twice; the second click's current password is verified
// while the first makes the change. The second gets nil as the first did,
// rather than « mot de passe actuel incorrect », and neither counts a
// failure. A concurrent change to another password still makes the current
// password typed no longer current, without counting a failure either.
func TestVoluntaryChangeSubmittedTwiceGoesOn(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		for _, c := range []struct {
			name, firstNew string
			currentWrong   bool
		}{
			{"same password", "nouveau2026", false},
			{"another password", "autre2026", true},
		} {
			email := strings.ReplaceAll(c.name, " ", ".") + "@mairie.fr"
			f.agent(email, "secret12")
			second := f.serviceOn(changedWhileChecked{Store: f.st, once: new(sync.Once), change: func() {
				if err := f.svc.ChangePassword(f.ctx, email, "secret12", c.firstNew, c.firstNew, meta); err != nil {
					t.Errorf("%s: first click: %v", c.name, err)
				}
			}})
			err := second.ChangePassword(f.ctx, email, "secret12", "nouveau2026", "nouveau2026", meta)
			var ce *account.ChangeError
			if got := errors.As(err, &ce) && ce.CurrentWrong; got != c.currentWrong || (!got && err != nil) {
				t.Errorf("%s: second click: %v, want current password wrong: %v", c.name, err, c.currentWrong)
			}
			if _, err := logIn(f.svc, f.ctx, email, c.firstNew, meta); err != nil {
				t.Errorf("%s: the first click's password: %v", c.name, err)
			}
			f.wantNothingCounted(email)
		}
	})
}

// TestChangeMadeIsToldOnlyToTheCurrentPassword: once a change is made, a
// submission asking for the password now in force learns that only if its
// current password is verified. Without it (a wrong one, or the password
// the change replaced: the second click of a double click that came after
// the first was saved) it is refused as any wrong password, after the same
// two hashes, and counted: otherwise the form would tell whether a guess is
// the agent's password.
func TestChangeMadeIsToldOnlyToTheCurrentPassword(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		f.agent("claire@mairie.fr", "secret12")
		if err := f.svc.ChangePassword(f.ctx, "claire@mairie.fr", "secret12", "nouveau2026", "nouveau2026", meta); err != nil {
			t.Fatal(err)
		}
		for _, current := range []string{"mauvais1", "secret12"} {
			f.advance(time.Hour)
			before := f.hasher.Derivations()
			err := f.svc.ChangePassword(f.ctx, "claire@mairie.fr", current, "nouveau2026", "nouveau2026", meta)
			var ce *account.ChangeError
			if !errors.As(err, &ce) || !ce.CurrentWrong {
				t.Errorf("current %q, new password the one in force: %v, want CurrentWrong", current, err)
			}
			if got := f.hasher.Derivations() - before; got != 2 {
				t.Errorf("current %q: %d derivations, want 2 as for any wrong password", current, got)
			}
		}
		th, err := f.st.GetThrottle(f.ctx, "change:account:claire@mairie.fr")
		if err != nil || th.Failures != 2 {
			t.Errorf("change counter %+v %v, want the 2 failures", th, err)
		}
	})
}

func TestSessions(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		u := f.agent("claire@mairie.fr", "secret12")
		raw, s, err := f.svc.StartSession(f.ctx, u.ID, storage.SessionActive, f.clock())
		if err != nil {
			t.Fatal(err)
		}
		if s.ID == raw || s.ID != storage.HashSecret(raw) {
			t.Fatal("the session id stored must be the hash of the cookie value")
		}
		f.advance(50 * time.Minute)
		if _, err := f.svc.Session(f.ctx, raw); err != nil {
			t.Fatalf("active session: %v", err)
		}
		f.advance(50 * time.Minute) // idle 1h counted from the last activity
		if _, err := f.svc.Session(f.ctx, raw); err != nil {
			t.Fatalf("touched session expired: %v", err)
		}
		f.advance(61 * time.Minute)
		if _, err := f.svc.Session(f.ctx, raw); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("idle session: %v", err)
		}
		raw, _, _ = f.svc.StartSession(f.ctx, u.ID, storage.SessionPasswordChange, f.clock())
		f.advance(31 * time.Minute)
		if _, err := f.svc.Session(f.ctx, raw); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("password-change sessions last 30 minutes at most: %v", err)
		}
	})
}

// TestLogIn: a login opens the session its password calls for and records
// its audit event with it; a refused login opens none and records its
// failure.
func TestLogIn(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		u := f.agent("claire@mairie.fr", "secret12")
		events := func(typ string) int {
			t.Helper()
			list, err := f.st.ListAudit(f.ctx, storage.AuditFilter{Email: "claire@mairie.fr"})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, e := range list {
				if e.Type == typ && e.UserID == u.ID && e.ClientIP == meta.ClientIP {
					n++
				}
			}
			return n
		}

		if _, cookie, _, err := f.svc.LogIn(f.ctx, "claire@mairie.fr", "faux-pas1", meta); !errors.Is(err, account.ErrInvalidCredentials) || cookie != "" {
			t.Fatalf("wrong password: cookie %q, %v", cookie, err)
		}
		if n := events("login.failure"); n != 1 {
			t.Fatalf("%d login.failure events, want 1", n)
		}

		l, cookie, sess, err := f.svc.LogIn(f.ctx, "Claire@Mairie.fr", "secret12", meta)
		if err != nil || l.Provisional || l.User.ID != u.ID {
			t.Fatalf("personal login: %+v, %v", l, err)
		}
		got, err := f.svc.Session(f.ctx, cookie)
		if err != nil || got.ID != sess.ID || got.Kind != storage.SessionActive || got.UserID != u.ID {
			t.Fatalf("session behind the login's cookie: %+v, %v; want the active session %s", got, err, sess.ID)
		}
		if n := events("login.success"); n != 1 {
			t.Fatalf("%d login.success events, want 1", n)
		}

		p := f.recover("claire@mairie.fr")
		l, cookie, _, err = f.svc.LogIn(f.ctx, "claire@mairie.fr", p, meta)
		if err != nil || !l.Provisional {
			t.Fatalf("provisional login: %+v, %v", l, err)
		}
		got, err = f.svc.Session(f.ctx, cookie)
		if err != nil || got.Kind != storage.SessionPasswordChange {
			t.Fatalf("session after a provisional login: %+v, %v; want a password-change session", got, err)
		}
		if n := events("login.provisional"); n != 1 {
			t.Fatalf("%d login.provisional events, want 1", n)
		}
	})
}

// sessionsDown is a store whose sessions cannot be written.
type sessionsDown struct{ storage.Store }

func (sessionsDown) CreateSession(context.Context, storage.Session, ...storage.AuditEvent) error {
	return errors.New("connection reset")
}

// TestLogInWithoutASession: when the session cannot be written after a right
// password, the login fails and the trail still records the password's
// success, alone.
func TestLogInWithoutASession(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		svc := f.serviceOn(sessionsDown{f.st})
		u := f.agent("claire@mairie.fr", "secret12")
		if _, cookie, _, err := svc.LogIn(f.ctx, "claire@mairie.fr", "secret12", meta); err == nil || cookie != "" {
			t.Fatalf("LogIn without sessions: cookie %q, %v; want an error", cookie, err)
		}
		list, err := f.st.ListAudit(f.ctx, storage.AuditFilter{Email: "claire@mairie.fr"})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range list {
			if e.Type == "login.success" && e.UserID == u.ID {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d login.success events, want 1", n)
		}
	})
}

// claimCounter counts the worker's claims on a real store.
type claimCounter struct {
	storage.Store
	claims atomic.Int64
}

func (c *claimCounter) ClaimRecoveryJobs(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]storage.RecoveryJob, error) {
	c.claims.Add(1)
	return c.Store.ClaimRecoveryJobs(ctx, now, lease, limit)
}

// TestRecoveryWorkerGathersABurst: requests arriving together are claimed
// together (one write for many jobs), and all of them are handled.
func TestRecoveryWorkerGathersABurst(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		counted := &claimCounter{Store: f.st}
		svc := account.New(counted, passhash.NewHasher(passhash.Params{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}, 4),
			policy.Default(), account.Config{ProvisionalLength: 12, ProvisionalTTL: time.Hour,
				MaxMailsPerAccountPerHour: 3, MaxRequestsPerIPPerHour: 20, SessionIdle: time.Hour, SessionAbsolute: time.Hour,
				// Longer than the burst takes even on a loaded machine.
				RecoveryGather: 300 * time.Millisecond},
			f.clock, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
		ctx, cancel := context.WithCancel(f.ctx)
		done := make(chan struct{})
		go func() { svc.RunRecoveryWorker(ctx, time.Hour); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		time.Sleep(50 * time.Millisecond) // the worker's first round, at start, is over
		before := counted.claims.Load()

		// A millisecond apart: each request would find the worker idle and
		// get a claim of its own if it did not wait for the others.
		const burst = 30
		for i := range burst {
			m := account.Meta{ClientIP: fmt.Sprintf("192.0.2.%d", i)}
			if err := svc.RequestRecovery(f.ctx, fmt.Sprintf("inconnu%d@example.fr", i), m, storage.ChallengeReceipt{}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
		waitJobsHandled(t, f, burst)
		// 30 jobs, at most 20 per claim: two claims, three if the burst
		// straddles a round.
		if claims := counted.claims.Load() - before; claims > 3 {
			t.Fatalf("%d claims for a burst of %d requests: the worker did not gather them", claims, burst)
		}
	})
}

// TestRecoveryWorkerDrainsABacklog: jobs waiting when the worker starts (an
// instance restarted, a burst faster than one round) are all handled at
// once, not one batch per poll interval: at the default 2 s, a backlog of
// 7,000 jobs left by a 10 s burst took 12 minutes.
func TestRecoveryWorkerDrainsABacklog(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		const backlog = 55 // nearly three batches
		for i := range backlog {
			j := storage.RecoveryJob{ID: storage.NewID(), Email: fmt.Sprintf("inconnu%d@example.fr", i),
				ClientIP: "192.0.2.1", RequestedAt: f.clock()}
			if _, err := f.st.EnqueueRecoveryJob(f.ctx, "test:"+j.ID, time.Hour, 1, j); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithCancel(f.ctx)
		done := make(chan struct{})
		// An hour between polls, and no request to wake it: only the
		// rounds that follow a full batch can handle the rest.
		go func() { f.svc.RunRecoveryWorker(ctx, time.Hour); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		waitJobsHandled(t, f, backlog)
	})
}

// waitJobsHandled waits up to 5 s for n recovery jobs of unknown addresses to
// have been handled (an audit event "recovery.ignored" each).
func waitJobsHandled(t *testing.T, f *fixture, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		events, err := f.st.ListAudit(f.ctx, storage.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		handled := 0
		for _, e := range events {
			if e.Type == "recovery.ignored" {
				handled++
			}
		}
		if handled == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d jobs handled after 5 s", handled, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dropCounter counts the worker's deletions of jobs on a real store, and
// fails what the test asks: the claim's lookup, or one agent's issue (a
// database hiccup on that job).
type dropCounter struct {
	storage.Store
	deletes    [][]string
	failLookup bool
	failIssue  string // user id
}

func (d *dropCounter) DeleteRecoveryJobs(ctx context.Context, ids []string, audit ...storage.AuditEvent) error {
	d.deletes = append(d.deletes, ids)
	return d.Store.DeleteRecoveryJobs(ctx, ids, audit...)
}

func (d *dropCounter) GetUsersByEmail(ctx context.Context, emails []string) ([]storage.User, error) {
	if d.failLookup {
		d.failLookup = false
		return nil, errors.New("connection reset")
	}
	return d.Store.GetUsersByEmail(ctx, emails)
}

func (d *dropCounter) IssueProvisionalPassword(ctx context.Context, p storage.ProvisionalIssue) error {
	if p.Password.UserID == d.failIssue {
		d.failIssue = ""
		return errors.New("connection reset")
	}
	return d.Store.IssueProvisionalPassword(ctx, p)
}

// logIn is the service's login without what it returns for the browser:
// these tests judge the answer, and the writes it leaves behind.
func logIn(svc *account.Service, ctx context.Context, email, password string, m account.Meta) (account.Login, error) {
	l, _, _, err := svc.LogIn(ctx, email, password, m)
	return l, err
}

// serviceOn is a service for the recovery worker's tests on st, a wrapper
// of the fixture's store that counts or injects: a per-IP quota above what
// a test requests, one-hour provisional passwords.
func (f *fixture) serviceOn(st storage.Store) *account.Service {
	return f.serviceWith(st, passhash.NewHasher(passhash.Params{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}, 4), 0)
}

// serviceWith is serviceOn with the hasher h and an attempt budget (0: the
// default).
func (f *fixture) serviceWith(st storage.Store, h *passhash.Hasher, budget time.Duration) *account.Service {
	return account.New(st, h, policy.Default(), account.Config{ProvisionalLength: 12, ProvisionalTTL: time.Hour,
		MaxMailsPerAccountPerHour: 3, MaxRequestsPerIPPerHour: 100, SessionIdle: time.Hour, SessionAbsolute: time.Hour,
		AttemptBudget: budget}, f.clock, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
}

// disablingStore runs the administrator's action while the worker hashes
// the provisional password: between the claim's lookup and the issue.
type disablingStore struct {
	storage.Store
	meanwhile func()
}

func (d *disablingStore) IssueProvisionalPassword(ctx context.Context, p storage.ProvisionalIssue) error {
	if d.meanwhile != nil {
		d.meanwhile()
		d.meanwhile = nil
	}
	return d.Store.IssueProvisionalPassword(ctx, p)
}

// TestRecoveryWorkerSkipsAnAccountDisabledMeanwhile: an agent disabled while
// the worker prepares its provisional password gets no mail and no
// password; the job is dropped with its audit event, not retried.
func TestRecoveryWorkerSkipsAnAccountDisabledMeanwhile(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		racing := &disablingStore{Store: f.st}
		svc := f.serviceOn(racing)
		u := f.agent("claire@mairie.fr", "secret12")
		racing.meanwhile = func() {
			if err := f.svc.SetDisabled(f.ctx, "claire@mairie.fr", true, meta); err != nil {
				t.Fatal(err)
			}
		}
		if err := svc.RequestRecovery(f.ctx, "claire@mairie.fr", meta, storage.ChallengeReceipt{}); err != nil {
			t.Fatal(err)
		}
		if n, err := svc.ProcessRecoveryJobs(f.ctx); err != nil || n != 1 {
			t.Fatalf("ProcessRecoveryJobs: %d, %v; want the job handled", n, err)
		}
		if racing.meanwhile != nil {
			t.Fatal("the worker never tried to issue the password")
		}
		if got := f.mailsTo("claire@mairie.fr"); len(got) != 0 {
			t.Fatalf("%d mails to the account disabled meanwhile, want none", len(got))
		}
		if _, err := f.st.GetProvisionalPassword(f.ctx, u.ID, f.clock()); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("provisional password of the disabled account: %v, want none", err)
		}
		events, err := f.st.ListAudit(f.ctx, storage.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		ignored := 0
		for _, e := range events {
			if e.Type == "recovery.ignored" && e.Detail == "account changed" && e.UserID == u.ID {
				ignored++
			}
		}
		if ignored != 1 {
			t.Fatalf("%d audit events recovery.ignored/account changed, want 1", ignored)
		}
		// Dropped, not left for a retry.
		f.advance(time.Hour)
		if n, err := svc.ProcessRecoveryJobs(f.ctx); err != nil || n != 0 {
			t.Fatalf("after the lease: %d, %v; want no job left", n, err)
		}
	})
}

// TestHelpdeskResetOfAnAccountDisabledMeanwhile: the helpdesk's reset of an
// agent disabled while its password is hashed says the account is
// disabled, and mails nothing.
func TestHelpdeskResetOfAnAccountDisabledMeanwhile(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		racing := &disablingStore{Store: f.st}
		svc := f.serviceOn(racing)
		f.agent("claire@mairie.fr", "secret12")
		racing.meanwhile = func() {
			if err := f.svc.SetDisabled(f.ctx, "claire@mairie.fr", true, meta); err != nil {
				t.Fatal(err)
			}
		}
		if err := svc.ResetPassword(f.ctx, "claire@mairie.fr", meta); !errors.Is(err, account.ErrDisabled) {
			t.Fatalf("ResetPassword: %v, want ErrDisabled", err)
		}
		if got := f.mailsTo("claire@mairie.fr"); len(got) != 0 {
			t.Fatalf("%d mails to the account disabled meanwhile, want none", len(got))
		}
	})
}

// TestRecoveryWorkerDropsAClaimInOneWrite: of one claim, the jobs that send
// nothing (unknown, disabled, over the per-account limit) are deleted in one
// write with one audit event each, while the known account's job sends its
// mail. When a job fails, the drops decided before it still go, and the
// failed job is handled once its lease has run out.
func TestRecoveryWorkerDropsAClaimInOneWrite(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		counted := &dropCounter{Store: f.st}
		svc := f.serviceOn(counted)
		f.agent("claire@mairie.fr", "secret12")
		f.agent("parti@mairie.fr", "secret12")
		if err := f.svc.SetDisabled(f.ctx, "parti@mairie.fr", true, meta); err != nil {
			t.Fatal(err)
		}
		request := func(addrs ...string) {
			t.Helper()
			for _, a := range addrs {
				f.advance(time.Millisecond) // claimed oldest first: in this order
				if err := svc.RequestRecovery(f.ctx, a, meta, storage.ChallengeReceipt{}); err != nil {
					t.Fatal(err)
				}
			}
		}
		request("inconnu1@mairie.fr", "claire@mairie.fr", "parti@mairie.fr", "inconnu2@mairie.fr",
			"claire@mairie.fr", "claire@mairie.fr", "claire@mairie.fr") // the fourth is over the limit
		n, err := svc.ProcessRecoveryJobs(f.ctx)
		if err != nil || n != 7 {
			t.Fatalf("ProcessRecoveryJobs: %d, %v; want 7 jobs", n, err)
		}
		if len(counted.deletes) != 1 || len(counted.deletes[0]) != 4 {
			t.Fatalf("deletions: %v; want one of 4 jobs (2 unknown, 1 disabled, 1 over the limit)", counted.deletes)
		}
		if got := len(f.mailsTo("claire@mairie.fr")); got != 3 {
			t.Fatalf("%d mails to the known account, want 3", got)
		}
		events, err := f.st.ListAudit(f.ctx, storage.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		why := map[string]int{}
		for _, e := range events {
			if e.Type == "recovery.ignored" || e.Type == "recovery.throttled" {
				why[e.Type+"/"+e.Detail]++
			}
		}
		if why["recovery.ignored/unknown account"] != 2 || why["recovery.ignored/disabled account"] != 1 ||
			why["recovery.throttled/per-account limit"] != 1 {
			t.Fatalf("audit of the dropped jobs: %v", why)
		}

		// The third job's issue fails: the two dropped before it are
		// deleted all the same; the third and the fourth wait for the lease.
		denise := f.agent("denise@mairie.fr", "secret12")
		counted.deletes, counted.failIssue = nil, denise.ID
		request("inconnu3@mairie.fr", "inconnu4@mairie.fr", "denise@mairie.fr", "inconnu6@mairie.fr")
		n, err = svc.ProcessRecoveryJobs(f.ctx)
		if err == nil || n != 2 {
			t.Fatalf("ProcessRecoveryJobs with a failing issue: %d, %v; want 2 and the error", n, err)
		}
		if len(counted.deletes) != 1 || len(counted.deletes[0]) != 2 {
			t.Fatalf("deletions before the failure: %v, want one of 2 jobs", counted.deletes)
		}
		f.advance(time.Hour)
		n, err = svc.ProcessRecoveryJobs(f.ctx)
		if err != nil || n != 2 {
			t.Fatalf("after the lease: %d, %v; want the 2 jobs left", n, err)
		}
		if got := len(f.mailsTo("denise@mairie.fr")); got != 1 {
			t.Fatalf("%d mails to denise after the retry, want 1", got)
		}

		// The claim's lookup fails: nothing is handled, and everything is
		// once the lease has run out.
		counted.deletes, counted.failLookup = nil, true
		request("inconnu7@mairie.fr", "inconnu8@mairie.fr")
		if n, err := svc.ProcessRecoveryJobs(f.ctx); err == nil || n != 0 || len(counted.deletes) != 0 {
			t.Fatalf("ProcessRecoveryJobs with a failing lookup: %d, %v, deletions %v; want 0, the error, none", n, err, counted.deletes)
		}
		f.advance(time.Hour)
		if n, err := svc.ProcessRecoveryJobs(f.ctx); err != nil || n != 2 {
			t.Fatalf("after the lease: %d, %v; want the 2 jobs", n, err)
		}
	})
}

// issuesAfterRead lets a recovery complete right after the login's read of
// the agent and its provisional password, while the hashes run.
type issuesAfterRead struct {
	storage.Store
	meanwhile func()
}

func (s *issuesAfterRead) GetUserWithProvisional(ctx context.Context, email string) (storage.User, *storage.ProvisionalPassword, error) {
	u, p, err := s.Store.GetUserWithProvisional(ctx, email)
	if m := s.meanwhile; m != nil {
		s.meanwhile = nil
		m()
	}
	return u, p, err
}

// TestPersonalLoginKeepsAProvisionalIssuedDuringIt: a personal-password
// login cancels the provisional password outstanding when it read the
// agent, not one mailed while its hashes ran: that one still logs in.
func TestPersonalLoginKeepsAProvisionalIssuedDuringIt(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		f.agent("claire@mairie.fr", "secret12")
		first := f.recover("claire@mairie.fr") // outstanding, a stranger's request say
		var second string
		wrap := &issuesAfterRead{Store: f.st, meanwhile: func() { second = f.recover("claire@mairie.fr") }}
		if _, err := logIn(f.serviceOn(wrap), f.ctx, "claire@mairie.fr", "secret12", meta); err != nil {
			t.Fatal(err)
		}
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", first, meta); !errors.Is(err, account.ErrInvalidCredentials) {
			t.Fatalf("the provisional password the login read: %v, want it cancelled", err)
		}
		f.advance(time.Minute)
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", second, meta); err != nil {
			t.Fatalf("the provisional password mailed during the login: %v", err)
		}
	})
}
