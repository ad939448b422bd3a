package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caf-extranet/idp/migrations"
	"github.com/caf-extranet/idp/storage"
)

// openTemp opens a store on a fresh file, without migrating.
func openTemp(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func migrated(t *testing.T) *Store {
	t.Helper()
	s := openTemp(t, filepath.Join(t.TempDir(), "idp.db"))
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func TestOpenCreatesDirectoryAndSetsPragmas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "dir", "idp.db")
	s := openTemp(t, path)
	ctx := t.Context()

	for _, db := range []struct {
		name string
		q    querier
	}{{"writer", s.w}, {"reader", s.r}} {
		var mode string
		var busy, fk, synchronous int
		if err := db.q.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := db.q.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if err := db.q.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if err := db.q.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&synchronous); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || busy != 10000 || fk != 1 || synchronous != 1 {
			t.Errorf("%s: journal_mode=%s busy_timeout=%d foreign_keys=%d synchronous=%d, want wal 10000 1 1(NORMAL)",
				db.name, mode, busy, fk, synchronous)
		}
	}
}

// Instances starting together on a new file all switch it to WAL. SQLite
// answers SQLITE_BUSY to the losers of that switch at once, without its busy
// handler, and only now and then: many rounds make a missing retry show.
func TestConcurrentOpenOfANewFile(t *testing.T) {
	const rounds, openers = 100, 4
	for round := range rounds {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("idp-%d.db", round))
		errs := make([]error, openers)
		var wg sync.WaitGroup
		for i := range openers {
			wg.Go(func() {
				s, err := Open(t.Context(), path)
				if err == nil {
					err = s.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, opener %d: %v", round, i, err)
			}
		}
	}
}

func TestOpenRejectsPathsTheDriverWouldMisread(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db", filepath.Join(t.TempDir(), "a?b.db")} {
		if s, err := Open(t.Context(), p); err == nil {
			_ = s.Close()
			t.Errorf("Open(%q) succeeded, want an error", p)
		}
	}
}

func TestReaderPoolRefusesWrites(t *testing.T) {
	s := migrated(t)
	_, err := s.r.ExecContext(t.Context(), `INSERT INTO secrets (name, value) VALUES ('x', x'00')`)
	if err == nil {
		t.Fatal("a write through the read pool succeeded; it must be query_only")
	}
}

func TestMigrateIsIdempotentAndRecorded(t *testing.T) {
	s := migrated(t)
	ctx := t.Context()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	latest, err := migrations.Latest(migrations.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != latest {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, latest)
	}
	var rows int
	var appliedAt int64
	if err := s.r.QueryRowContext(ctx, `SELECT count(*), min(applied_at) FROM schema_migrations`).Scan(&rows, &appliedAt); err != nil {
		t.Fatal(err)
	}
	if rows != latest {
		t.Errorf("schema_migrations has %d rows, want %d", rows, latest)
	}
	if d := time.Since(time.UnixMilli(appliedAt)); d < 0 || d > time.Minute {
		t.Errorf("applied_at = %v, want about now", time.UnixMilli(appliedAt))
	}
}

func TestSchemaVersionBeforeMigrate(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "idp.db"))
	v, err := s.SchemaVersion(t.Context())
	if err != nil || v != 0 {
		t.Fatalf("SchemaVersion = %d, %v; want 0, nil", v, err)
	}
}

// Two processes starting at once on a new file: both Migrate calls succeed
// and every migration is applied once.
func TestConcurrentMigrateOnOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idp.db")
	const n = 4
	stores := make([]*Store, n)
	for i := range stores {
		stores[i] = openTemp(t, path)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() { errs[i] = s.Migrate(t.Context()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate %d: %v", i, err)
		}
	}
	latest, _ := migrations.Latest(migrations.SQLite)
	var rows int
	if err := stores[0].r.QueryRowContext(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != latest {
		t.Errorf("schema_migrations has %d rows, want %d", rows, latest)
	}
}

// Two stores on one file (two instances) race to exchange one authorization
// code: exactly one wins, every other gets ErrAlreadyUsed, and the winner's
// tokens end up revoked because of the reuse.
func TestExchangeAuthCodeRaceAcrossStores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idp.db")
	a := openTemp(t, path)
	if err := a.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	b := openTemp(t, path)
	ctx := t.Context()
	now := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)

	req := storage.AuthRequest{ID: "ar1", ClientID: "c1", Scopes: []string{"openid"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := a.CreateAuthRequest(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := a.SaveAuthCode(ctx, storage.AuthCode{CodeHash: "h", AuthRequestID: "ar1", ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}

	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			at := storage.AccessToken{ID: fmt.Sprintf("at%d", i), GrantID: "ar1", ClientID: "c1", UserID: "u1",
				ExpiresAt: now.Add(time.Hour), CreatedAt: now}
			errs[i] = s.ExchangeAuthCode(ctx, "h", at, nil, now)
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("calls %d and %d both won the code", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, storage.ErrAlreadyUsed):
			t.Errorf("call %d: %v, want nil or ErrAlreadyUsed", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no call won the code")
	}
	if _, err := b.GetAccessToken(ctx, fmt.Sprintf("at%d", winner), now); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("access token of a reused code: %v, want ErrNotFound (revoked)", err)
	}
}

// Concurrent writers in one process queue on the single writer connection
// rather than failing with SQLITE_BUSY, and every hit counts.
func TestConcurrentHitCounter(t *testing.T) {
	s := migrated(t)
	now := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			if _, err := s.HitCounter(t.Context(), "k", time.Minute, now); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := s.HitCounter(t.Context(), "k", time.Minute, now)
	if err != nil || got != n+1 {
		t.Fatalf("count after %d concurrent hits = %d, %v; want %d", n, got, err, n+1)
	}
}

func TestDuplicateDetectionUsesConstraintCode(t *testing.T) {
	s := migrated(t)
	ctx := t.Context()
	u := storage.User{ID: "u1", Email: "a@example.fr"}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	err := s.CreateUser(ctx, storage.User{ID: "u2", Email: " A@Example.FR "})
	if !errors.Is(err, storage.ErrDuplicate) {
		t.Errorf("same normalised e-mail: %v, want ErrDuplicate", err)
	}
	err = s.CreateUser(ctx, storage.User{ID: "u1", Email: "b@example.fr"})
	if !errors.Is(err, storage.ErrDuplicate) {
		t.Errorf("same id: %v, want ErrDuplicate", err)
	}
	// A constraint that is not a uniqueness one must not pass for a duplicate.
	_, err = s.w.ExecContext(ctx, `INSERT INTO users (id, email, created_at, updated_at) VALUES ('u3', NULL, 0, 0)`)
	if err == nil || isUniqueViolation(err) {
		t.Errorf("NOT NULL violation: %v, isUniqueViolation=%v; want an error that is not a duplicate", err, isUniqueViolation(err))
	}
}

func TestTimeAndListEncoding(t *testing.T) {
	for _, tm := range []time.Time{
		{},
		time.Date(2026, 3, 14, 9, 30, 0, 250_000_000, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999_000_000, time.UTC),
		time.Date(2026, 3, 14, 10, 30, 0, 0, time.FixedZone("CET", 3600)),
	} {
		var got time.Time
		if err := (*msTime)(&got).Scan(ms(tm)); err != nil {
			t.Fatal(err)
		}
		if !got.Equal(tm) || got.Location() != time.UTC || got.IsZero() != tm.IsZero() {
			t.Errorf("round trip of %v = %v (zero %v)", tm, got, got.IsZero())
		}
	}
	for _, l := range [][]string{nil, {}, {"b", "a", "« é »"}} {
		v, err := jsonList(l).Value()
		if err != nil {
			t.Fatal(err)
		}
		var got jsonList
		if err := got.Scan(v); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(l) || (len(l) == 0 && got != nil) {
			t.Errorf("round trip of %#v = %#v", l, got)
		}
	}
}

// Every lookup the contract implies is served by an index: the plans of the
// store's queries on large tables never scan a whole table.
func TestQueriesUseIndexes(t *testing.T) {
	s := migrated(t)
	queries := map[string]string{
		"user by email":        `SELECT id FROM users WHERE email = 'x'`,
		"users by email":       `SELECT id FROM users ORDER BY email`,
		"grant access tokens":  `UPDATE access_tokens SET revoked = 1 WHERE grant_id = 'g' AND revoked = 0`,
		"user access tokens":   `UPDATE access_tokens SET revoked = 1 WHERE user_id = 'u' AND revoked = 0`,
		"grant refresh":        `UPDATE refresh_tokens SET revoked = 1 WHERE grant_id = 'g' AND revoked = 0`,
		"user refresh":         `UPDATE refresh_tokens SET revoked = 1 WHERE user_id = 'u' AND revoked = 0`,
		"refresh by hash":      `SELECT id FROM refresh_tokens WHERE token_hash = 'h'`,
		"user sessions":        `DELETE FROM sessions WHERE user_id = 'u' AND id <> 's'`,
		"claim jobs":           `SELECT id FROM recovery_jobs WHERE claimed_until <= 5 ORDER BY requested_at LIMIT 10`,
		"claim mails":          `SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= 5 ORDER BY next_attempt_at LIMIT 10`,
		"list mails":           `SELECT id FROM outbox ORDER BY created_at DESC, rowid DESC LIMIT 10`,
		"list mails status":    `SELECT id FROM outbox WHERE status = 'sent' ORDER BY created_at DESC, rowid DESC LIMIT 10`,
		"newest key":           `SELECT id FROM signing_keys ORDER BY created_at DESC, seq DESC LIMIT 1`,
		"audit":                `SELECT id FROM audit_events WHERE 1 = 1 ORDER BY time DESC, id DESC LIMIT 10`,
		"audit since":          `SELECT id FROM audit_events WHERE 1 = 1 AND time >= 5 ORDER BY time DESC, id DESC LIMIT 10`,
		"audit email":          `SELECT id FROM audit_events WHERE 1 = 1 AND email = 'e' AND time >= 5 ORDER BY time DESC, id DESC LIMIT 10`,
		"purge sessions":       `SELECT rowid FROM sessions WHERE min(idle_expires_at, absolute_expires_at) <= 5 LIMIT 10`,
		"purge revoked at":     `SELECT rowid FROM access_tokens WHERE revoked = 1 LIMIT 10`,
		"purge revoked rt":     `SELECT rowid FROM refresh_tokens WHERE revoked = 1 LIMIT 10`,
		"purge sent mails":     `SELECT rowid FROM outbox WHERE status = 'sent' AND sent_at < 5 LIMIT 10`,
		"purge audit":          `SELECT rowid FROM audit_events WHERE time < 5 LIMIT 10`,
		"purge codes":          `SELECT rowid FROM auth_codes WHERE expires_at <= 5 LIMIT 10`,
		"purge requests":       `SELECT rowid FROM auth_requests WHERE expires_at <= 5 LIMIT 10`,
		"purge provisional":    `SELECT rowid FROM provisional_passwords WHERE expires_at <= 5 LIMIT 10`,
		"purge challenges":     `SELECT rowid FROM challenges WHERE expires_at <= 5 LIMIT 10`,
		"purge counters":       `SELECT rowid FROM counters WHERE window_end <= 5 LIMIT 10`,
		"purge throttles":      `SELECT rowid FROM throttles WHERE last_failure_at < 5 AND locked_at IS NULL LIMIT 10`,
		"client access":        `UPDATE access_tokens SET revoked = 1 WHERE client_id = 'c' AND revoked = 0`,
		"client refresh":       `UPDATE refresh_tokens SET revoked = 1 WHERE client_id = 'c' AND revoked = 0`,
		"client habilitation":  `DELETE FROM habilitations WHERE client_id = 'c'`,
		"habilitations":        `SELECT user_id FROM habilitations ORDER BY user_id, client_id`,
		"habilitations user":   `SELECT user_id FROM habilitations WHERE user_id = 'u' ORDER BY client_id`,
		"habilitations client": `SELECT user_id FROM habilitations WHERE client_id = 'c' ORDER BY user_id`,
		"code reuse":           `SELECT EXISTS (SELECT 1 FROM auth_codes WHERE auth_request_id = 'a' AND reused_at IS NOT NULL)`,
	}
	for name, q := range queries {
		plan := explain(t, s, q)
		for _, line := range plan {
			// "SCAN t USING INDEX" walks an index in order (fine for ORDER BY
			// ... LIMIT); a bare "SCAN t" or a temp B-tree sort is not fine.
			// "SCAN CONSTANT ROW" is the one row of a SELECT without FROM.
			bareScan := strings.HasPrefix(line, "SCAN ") && !strings.Contains(line, " USING ") && line != "SCAN CONSTANT ROW"
			if bareScan || strings.Contains(line, "TEMP B-TREE") {
				t.Errorf("%s: plan %q does not use an index", name, plan)
			}
		}
	}
}

func explain(t *testing.T, s *Store, q string) []string {
	t.Helper()
	rows, err := s.w.QueryContext(context.Background(), `EXPLAIN QUERY PLAN `+q)
	if err != nil {
		t.Fatalf("explain %s: %v", q, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return plan
}
