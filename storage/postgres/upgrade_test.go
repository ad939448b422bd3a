package postgres

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caf-extranet/idp/migrations"
	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/postgres/pgtest"
)

// A database created by version 1 of the schema, with rows in it, is
// upgraded in place: its clients stay open to every agent, and a code used
// before the upgrade and replayed after it revokes its grant's tokens.
func TestUpgradeFromVersion1KeepsData(t *testing.T) {
	ctx := t.Context()
	s := internalOpen(t, pgtest.URL(t))
	all, err := migrations.Load(migrations.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.withTx(ctx, func(tx pgx.Tx) error { return applyMigration(ctx, tx, all[0]) }); err != nil {
		t.Fatalf("apply migration 1: %v", err)
	}
	now := time.Date(2026, time.March, 14, 9, 30, 0, 0, time.UTC)
	// Rows as the version 1 store wrote them.
	for _, q := range []string{
		`INSERT INTO clients (id, name, created_at) VALUES ('portail', 'Portail', $1)`,
		`INSERT INTO auth_codes (code_hash, auth_request_id, expires_at, used_at) VALUES ('code-1', 'ar-1', $1::timestamptz + interval '1 minute', $1)`,
	} {
		if _, err := s.pool.Exec(ctx, q, now); err != nil {
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
	// The token version 1's exchange of the code issued.
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
}
