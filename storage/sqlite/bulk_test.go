package sqlite

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

func bulkUsers(n int, now time.Time) iter.Seq2[storage.User, error] {
	return func(yield func(storage.User, error) bool) {
		for i := range n {
			u := storage.User{ID: storage.NewID(), Email: fmt.Sprintf(" Agent%04d@Bulk.FR ", i), Name: "Agent",
				PasswordHash: "$argon2id$x", CreatedAt: now, UpdatedAt: now}
			if !yield(u, nil) {
				return
			}
		}
	}
}

func TestImportUsers(t *testing.T) {
	s := migrated(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

	// More rows than one INSERT carries, and a remainder.
	n, err := s.ImportUsers(ctx, bulkUsers(2*importBatch+7, now))
	if err != nil || n != 2*importBatch+7 {
		t.Fatalf("import: %d, %v", n, err)
	}
	u, err := s.GetUserByEmail(ctx, "agent1006@bulk.fr")
	if err != nil || u.Email != "agent1006@bulk.fr" || u.PasswordHash != "$argon2id$x" || !u.CreatedAt.Equal(now) {
		t.Fatalf("last imported user: %+v, %v", u, err)
	}

	// The connection's settings are back to SQLite's defaults afterwards.
	var cache, temp int64
	if err := s.w.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&cache); err != nil || cache == -importCacheKiB {
		t.Fatalf("cache_size left at %d (%v)", cache, err)
	}
	if err := s.w.QueryRowContext(ctx, `PRAGMA temp_store`).Scan(&temp); err != nil || temp != 0 {
		t.Fatalf("temp_store left at %d (%v)", temp, err)
	}

	// A duplicate anywhere keeps every row out, even those before it.
	dup := func(yield func(storage.User, error) bool) {
		for u := range bulkUsers(3, now) {
			u.Email = "new-" + u.Email
			if !yield(u, nil) {
				return
			}
		}
		yield(storage.User{ID: storage.NewID(), Email: "agent0000@bulk.fr", CreatedAt: now, UpdatedAt: now}, nil)
	}
	if _, err := s.ImportUsers(ctx, dup); !errors.Is(err, storage.ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := s.GetUserByEmail(ctx, "new-agent0000@bulk.fr"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a row of a failed import was kept: %v", err)
	}

	// An error of the sequence also rolls everything back, and is returned.
	boom := errors.New("file changed")
	failing := func(yield func(storage.User, error) bool) {
		if !yield(storage.User{ID: storage.NewID(), Email: "kept@bulk.fr", CreatedAt: now, UpdatedAt: now}, nil) {
			return
		}
		yield(storage.User{}, boom)
	}
	if _, err := s.ImportUsers(ctx, failing); !errors.Is(err, boom) {
		t.Fatalf("sequence error: %v", err)
	}
	if _, err := s.GetUserByEmail(ctx, "kept@bulk.fr"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("a row before the sequence's error was kept")
	}

	// ExistingEmails normalises and checks across batches.
	var ask []string
	for i := range existingBatch + 10 {
		ask = append(ask, fmt.Sprintf("nobody%d@bulk.fr", i))
	}
	ask = append(ask, "AGENT0001@bulk.fr", " agent1000@BULK.fr")
	got, err := s.ExistingEmails(ctx, ask)
	if err != nil || len(got) != 2 {
		t.Fatalf("existing: %v, %v", got, err)
	}
}

func TestAppendAuditBatch(t *testing.T) {
	s := migrated(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var events []storage.AuditEvent
	for i := range importBatch + 3 {
		events = append(events, storage.AuditEvent{Time: now.Add(time.Duration(i) * time.Second), Type: "login.success",
			Email: "Agent@Bulk.FR", ClientIP: "10.0.0.1", Detail: fmt.Sprint(i)})
	}
	if err := s.AppendAuditBatch(ctx, events); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListAudit(ctx, storage.AuditFilter{Email: "agent@bulk.fr", Limit: 2 * importBatch})
	if err != nil || len(got) != importBatch+3 {
		t.Fatalf("%d events, %v", len(got), err)
	}
	if got[0].Detail != fmt.Sprint(importBatch+2) || got[0].ID == 0 || !got[0].Time.Equal(now.Add((importBatch+2)*time.Second)) {
		t.Fatalf("newest event: %+v", got[0])
	}
	if err := s.AppendAuditBatch(ctx, nil); err != nil {
		t.Fatal(err)
	}
}
