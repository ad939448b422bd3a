package sqlite

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/caf-extranet/idp/migrations"
	"github.com/caf-extranet/idp/storage"
)

// A database created by version 1 of the schema, with rows in it, is
// upgraded in place: its clients stay open to every agent, and its counters
// keep counting in their window instead of being purged early.
func TestUpgradeFromVersion1KeepsData(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t, filepath.Join(t.TempDir(), "idp.db"))
	all, err := migrations.Load(migrations.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.inTx(ctx, func(tx *sql.Tx) error { return applyMigration(ctx, tx, all[0]) }); err != nil {
		t.Fatalf("apply migration 1: %v", err)
	}
	now := time.Date(2026, time.March, 14, 9, 30, 0, 0, time.UTC)
	// Rows as the version 1 store wrote them.
	for _, q := range []string{
		`INSERT INTO clients (id, name, created_at) VALUES ('portail', 'Portail', ?1)`,
		`INSERT INTO counters (key, window_start, count) VALUES ('login:192.0.2.7', ?1, 7)`,
		`INSERT INTO auth_codes (code_hash, auth_request_id, expires_at, used_at) VALUES ('code-1', 'ar-1', ?1 + 60000, ?1)`,
	} {
		if _, err := s.w.ExecContext(ctx, q, ms(now)); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	c, err := s.GetClient(ctx, "portail")
	if err != nil {
		t.Fatalf("GetClient: %v", err)
	}
	if c.Restricted {
		t.Errorf("a client from version 1 is restricted after the upgrade")
	}

	// A code used under version 1 and replayed now revokes the token its
	// exchange issued.
	at := storage.AccessToken{ID: "at-1", GrantID: "ar-1", ClientID: "portail", UserID: "u-1", ExpiresAt: now.Add(time.Hour), CreatedAt: now}
	if err := s.CreateTokens(ctx, at, nil); err != nil {
		t.Fatalf("CreateTokens: %v", err)
	}
	if _, _, err := s.AuthRequestByCode(ctx, "code-1", now); !errors.Is(err, storage.ErrAlreadyUsed) {
		t.Errorf("AuthRequestByCode replayed after the upgrade: %v, want ErrAlreadyUsed", err)
	}
	if _, err := s.GetAccessToken(ctx, at.ID, now); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a token of the replayed grant is usable: %v, want ErrNotFound", err)
	}

	// Only the revoked token goes; the counter's window still runs.
	if n, err := s.PurgeExpired(ctx, now.Add(30*time.Minute), time.Time{}, time.Time{}); err != nil || n != 1 {
		t.Errorf("PurgeExpired inside the counter's window: %d rows, %v; want 1, nil", n, err)
	}
	if n, err := s.HitCounter(ctx, "login:192.0.2.7", time.Hour, now.Add(40*time.Minute)); err != nil || n != 8 {
		t.Errorf("HitCounter after the upgrade = %d, %v; want 8, nil", n, err)
	}
	// The hit recorded the window's end: it goes once the hour is over (with
	// the code, an hour past its expiry).
	if n, err := s.PurgeExpired(ctx, now.Add(61*time.Minute), time.Time{}, time.Time{}); err != nil || n != 2 {
		t.Errorf("PurgeExpired after the counter's window: %d rows, %v; want 2, nil", n, err)
	}
}
